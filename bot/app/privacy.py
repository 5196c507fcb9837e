"""Users' control over their data: an export of everything stored about them, deletion on
request, and deletion of old conversation logs after QABOT_RETENTION_DAYS."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.learning_records import review_key
from bot.storage.store import Store

log = logging.getLogger(__name__)

RETENTION_INTERVAL_SECONDS = 24 * 3600
# How long /mydata and /forget wait for exchanges still queued to reach the database.
FLUSH_TIMEOUT_SECONDS = 10.0


class DatabaseUnavailableError(RuntimeError):
    """The database cannot be reached right now; the request can be repeated later."""


async def export_user_data(store: Store, writer: ExchangeWriter, user_id: int) -> bytes:
    """Everything stored about a user, as one UTF-8 JSON document (table name → rows)."""
    await _flush(writer)
    data = await store.user_data(user_id)
    document = {
        "user_id": user_id,
        "exported_at": datetime.now(UTC).isoformat(),
        "tables": data,
    }
    return json.dumps(document, ensure_ascii=False, indent=2, default=_json_value).encode()


async def forget_user(store: Store, writer: ExchangeWriter, user_id: int) -> int:
    """Delete a user's exchanges, feedback (given and received), review decisions on their
    questions and user record; returns how many exchanges went."""
    await _flush(writer)
    # Review decisions quote the questions they decided: those on this user's questions go too.
    review_keys = {review_key(question) for question in await store.user_questions(user_id)}
    deleted = await store.forget_user(user_id, review_keys)
    log.info("forgot a user on request: %d exchanges deleted", deleted)  # not who: that is gone
    return deleted


async def delete_expired(store: Store, retention_days: int, now: datetime | None = None) -> int:
    """Delete the exchanges older than `retention_days`; returns how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    deleted = await store.delete_exchanges_before(cutoff)
    log.info(
        "retention: deleted %d exchanges logged before %s (%d days)",
        deleted,
        cutoff.isoformat(timespec="seconds"),
        retention_days,
    )
    return deleted


async def run_retention(
    store: Store, retention_days: int, interval: float = RETENTION_INTERVAL_SECONDS
) -> None:
    """Apply the retention period now and then every `interval` seconds, until cancelled.
    Replicas may all run it: deleting what is already deleted is harmless."""
    while True:
        try:
            await delete_expired(store, retention_days)
        except Exception:  # the database may be down for a while: try again next time
            log.exception("retention: could not delete old exchanges; trying again later")
        await asyncio.sleep(interval)


async def _flush(writer: ExchangeWriter) -> None:
    try:
        await asyncio.wait_for(writer.flush(), FLUSH_TIMEOUT_SECONDS)
    except TimeoutError:
        raise DatabaseUnavailableError("queued exchanges could not be written") from None


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


class Privacy:
    """Users' own data, the one road for /mydata, /forget and the retention task."""

    def __init__(self, store: Store, writer: ExchangeWriter, retention_days: int | None) -> None:
        self.store = store
        self.writer = writer
        self.retention_days = retention_days

    async def user_data(self, user_id: int) -> bytes:
        """Everything stored about a user, as one JSON document (raises
        DatabaseUnavailableError when the database cannot be reached)."""
        return await export_user_data(self.store, self.writer, user_id)

    async def forget(self, user_id: int) -> int:
        """Delete everything stored about a user; returns how many exchanges went."""
        return await forget_user(self.store, self.writer, user_id)

    def start_retention(self) -> asyncio.Task[None] | None:
        """The daily deletion of old exchanges, when QABOT_RETENTION_DAYS is set."""
        if self.retention_days is None:
            return None
        return asyncio.create_task(run_retention(self.store, self.retention_days), name="retention")
