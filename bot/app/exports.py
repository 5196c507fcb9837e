"""Conversation exports (CSV or JSON Lines), shared by `qabot export` and `/export`."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from bot.app.workers import ChildWorker
from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.store import Store
from model.datasets import csv_cell, read_pairs, write_pairs_csv

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


def write_exchanges_file(
    database_url: str, path: Path, fmt: str, since: datetime | None
) -> tuple[int, int]:
    """write_exchanges into the file at path, from a store of its own: what a child process
    runs for /export. Returns (the count, the id of the process that wrote them)."""

    async def write() -> int:
        store = Store(database_url)
        try:
            with path.open("w", encoding="utf-8", newline="") as out:
                return await write_exchanges(store, out, fmt, since)
        finally:
            await store.close()
            await store.engine.dispose()

    return asyncio.run(write()), os.getpid()


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


@dataclass(frozen=True)
class ImportedPairs:
    added: int
    known: int  # already in the training set, or twice in the file
    bundled_removed: int


@dataclass(frozen=True)
class ExportFile:
    """An export written for sending: `path` is None when even compressed it is over
    UPLOAD_LIMIT_BYTES."""

    path: Path | None
    count: int
    size_mb: float

    @property
    def compressed(self) -> bool:
        return self.path is not None and self.path.suffix == ".gz"


class Exports:
    """Conversations and the training set out, Q&A files in: the one road for /export, /pairs,
    `qabot export` and `qabot import`."""

    def __init__(
        self, store: Store, writer: ExchangeWriter, home: Path, worker: ChildWorker
    ) -> None:
        self.store = store
        self.writer = writer
        self.folder = home / EXPORTS_FOLDER
        self.worker = worker
        self.last_writer_pid: int | None = None  # the process that wrote the last export file

    async def write_conversations(
        self,
        out: TextIO,
        fmt: str = "csv",
        since: datetime | None = None,
        *,
        pending_wait_seconds: float | None = None,
    ) -> int:
        """Write the logged exchanges; with `pending_wait_seconds`, first wait that long at most
        for those still queued (raises ExchangesNotWrittenError, saying how many, if they are
        not written by then)."""
        if pending_wait_seconds is not None:
            await self.writer.flush(pending_wait_seconds)
        return await write_exchanges(self.store, out, fmt, since)

    async def write_conversations_file(
        self,
        path: Path,
        fmt: str = "csv",
        since: datetime | None = None,
        *,
        pending_wait_seconds: float | None = None,
    ) -> int:
        """write_conversations into a file, written by the child process: formatting 100,000
        rows is seconds of Python work that would stall the event loop even in a thread."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
        if pending_wait_seconds is not None:
            await self.writer.flush(pending_wait_seconds)
        url = self.store.engine.url.render_as_string(hide_password=False)
        count, self.last_writer_pid = await self.worker.run(
            write_exchanges_file, url, path, fmt, since
        )
        return count

    async def write_pairs_file(self, path: Path) -> int:
        """write_pairs into a new file."""
        training_set = await self.store.training_pairs()

        def write() -> None:
            with path.open("w", encoding="utf-8", newline="") as out:
                write_pairs_csv(training_set, out)

        await asyncio.to_thread(write)
        return len(training_set)

    async def write_pairs(self, out: TextIO) -> int:
        """Write the training set in the import format (CSV question,answer)."""
        training_set = await self.store.training_pairs()
        await asyncio.to_thread(write_pairs_csv, training_set, out)
        return len(training_set)

    async def import_pairs(self, path: Path, *, keep_bundled: bool = False) -> ImportedPairs:
        """Add the pairs of a Q&A file to the training set. The first file an admin imports
        replaces the bundled example pairs (the set held nothing else), unless keep_bundled:
        a bot for one's own FAQ should not also answer the examples' small talk and questions
        about qabot. Raises ValueError, with one line saying what is wrong, for a file it cannot
        read (nothing is then changed)."""
        pairs = await asyncio.to_thread(read_pairs, path)
        if keep_bundled:
            added, removed = await self.store.add_pairs(pairs, source="imported"), 0
        else:
            added, removed = await self.store.add_pairs_over_bundled(pairs, source="imported")
        return ImportedPairs(added, len(pairs) - added, removed)

    def remove_stale(self, older_than: float = STALE_EXPORT_SECONDS) -> int:
        """Delete what earlier sends (or a crash) left in the exports folder."""
        return remove_stale_exports(self.folder, older_than)

    @asynccontextmanager
    async def file_to_send(
        self, name: str, write: Callable[[Path], Awaitable[int]]
    ) -> AsyncIterator[ExportFile]:
        """An export written by `write` (given the file's path) into a private temporary folder
        under QABOT_HOME, compressed when large; deleted after the block (a crash's leftovers:
        remove_stale)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem, _, suffix = name.rpartition(".")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        try:
            with tempfile.TemporaryDirectory(dir=self.folder) as tmp:
                path = Path(tmp) / f"{stem}-{stamp}.{suffix}"
                count = await write(path)
                size_mb = path.stat().st_size / 1e6
                sendable = await asyncio.to_thread(fit_for_upload, path)
                yield ExportFile(sendable, count, size_mb)
        finally:
            await asyncio.to_thread(self.remove_stale)
