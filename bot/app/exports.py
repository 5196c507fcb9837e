"""Conversation exports (CSV or JSON Lines), shared by `qabot export` and `/export`."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.storage.store import Store
from bot.storage.tables import Exchange
from model.datasets import csv_cell

log = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl")
# Exports sent to Telegram are written under QABOT_HOME/exports and deleted once sent; what a
# crash left there is deleted at start, and after each send once it is this old (a send of
# another admin may be in progress).
EXPORTS_FOLDER = "exports"
STALE_EXPORT_SECONDS = 3600
FIELDS = (
    "id",
    "created_at",
    "chat_id",
    "user_id",
    "message_id",
    "kind",
    "question",
    "answer",
    "answer_id",
    "confidence",
    "fallback",
    "model_version",
    "latency_ms",
)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the bot stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def exchange_row(exchange: Exchange) -> dict[str, Any]:
    return {
        "id": exchange.id,
        "created_at": as_utc(exchange.created_at).isoformat(),
        "chat_id": exchange.chat_id,
        "user_id": exchange.user_id,
        "message_id": exchange.message_id,
        "kind": exchange.kind,
        "question": exchange.question,
        "answer": exchange.answer,
        "answer_id": exchange.answer_id,
        "confidence": round(exchange.confidence, 6),
        "fallback": exchange.fallback,
        "model_version": exchange.model_version,
        "latency_ms": round(exchange.latency_ms, 3),
    }


async def write_exchanges(
    store: Store, out: TextIO, fmt: str = "csv", since: datetime | None = None
) -> int:
    """Write the logged exchanges to `out` (opened with newline="" for CSV); returns the count."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    writer = csv.DictWriter(out, fieldnames=FIELDS) if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    count = 0
    async for exchange in store.stream_exchanges(since):
        row = exchange_row(exchange)
        if writer is not None:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
        else:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count


def _csv_value(value: Any) -> Any:
    """CSV has no null: empty cells for missing values, true/false spelled out; text that a
    spreadsheet would run as a formula is neutralised (see `csv_cell`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return csv_cell(value) if isinstance(value, str) else value


def remove_stale_exports(exports_dir: Path, older_than: float = STALE_EXPORT_SECONDS) -> int:
    """Delete the files and folders in `exports_dir` last changed more than `older_than`
    seconds ago (0: all of them); returns how many went."""
    if not exports_dir.is_dir():
        return 0
    cutoff, removed = time.time() - older_than, 0
    for entry in exports_dir.iterdir():
        try:
            if entry.lstat().st_mtime > cutoff:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except FileNotFoundError:  # deleted meanwhile
            continue
        removed += 1
    if removed:
        log.info("deleted %d export files left behind in %s", removed, exports_dir)
    return removed
