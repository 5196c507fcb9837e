"""Conversation exports (CSV or JSON Lines), shared by `qabot export` and `/export`."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import logging
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.storage.store import Store
from model.datasets import csv_cell

log = logging.getLogger(__name__)

FORMATS = ("csv", "jsonl")
# Telegram refuses documents over 50 MB from bots. Exports above a few megabytes are sent
# compressed (uploads go faster, and ten times the rows fit).
UPLOAD_LIMIT_BYTES = 50 * 1000 * 1000
COMPRESS_ABOVE_BYTES = 5 * 1000 * 1000
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
    "answered_by_person",  # a member of the support chat answered (a hand-off)
)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the bot stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def exchange_row(values: Sequence[Any]) -> dict[str, Any]:
    """An export row from the FIELDS of an exchange, in that order."""
    row = dict(zip(FIELDS, values, strict=True))
    row["created_at"] = as_utc(row["created_at"]).isoformat()
    row["confidence"] = round(row["confidence"], 6)
    row["latency_ms"] = round(row["latency_ms"], 3)
    return row


async def write_exchanges(
    store: Store, out: TextIO, fmt: str = "csv", since: datetime | None = None
) -> int:
    """Write the logged exchanges to `out` (opened with newline="" for CSV); returns the count.
    Rows come from the database a part at a time and are formatted and written in a worker
    thread: 100,000 of them are seconds of Python work that must not hold up the event loop."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS)
        writer.writeheader()

        def write(rows: Sequence[Sequence[Any]]) -> None:
            writer.writerows(
                {k: _csv_value(v) for k, v in exchange_row(values).items()} for values in rows
            )
    else:

        def write(rows: Sequence[Sequence[Any]]) -> None:
            out.writelines(
                json.dumps(exchange_row(values), ensure_ascii=False) + "\n" for values in rows
            )

    count = 0
    async for part in store.exchange_parts(FIELDS, since):
        await asyncio.to_thread(write, part)
        count += len(part)
    return count


def fit_for_upload(path: Path) -> Path | None:
    """The file to send for an export written at path: itself when small, else compressed
    (gzip: text logs shrink about tenfold); None when even that is over UPLOAD_LIMIT_BYTES.
    Blocking: run it in a worker thread.
    """
    if path.stat().st_size <= COMPRESS_ABOVE_BYTES:
        return path
    compressed = path.with_name(path.name + ".gz")
    with path.open("rb") as plain, gzip.open(compressed, "wb", compresslevel=6) as packed:
        shutil.copyfileobj(plain, packed, 1 << 20)
    path.unlink()
    return compressed if compressed.stat().st_size <= UPLOAD_LIMIT_BYTES else None


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
