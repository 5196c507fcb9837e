"""Large exports: streamed from the database and written off the event loop, compressed when
large, refused with advice when too large for Telegram even compressed."""

from __future__ import annotations

import asyncio
import csv
import gzip
import io

import pytest

from bot.app import exports
from bot.app.exports import write_exchanges
from bot.settings import PROJECT_ROOT, Settings
from bot.storage.store import Store, upgrade_database
from tests.complexity import python_lines_run
from tests.conftest import TelegramBot
from tests.factories import record


async def log_exchanges(store: Store, count: int) -> None:
    await store.log_exchanges(
        [record(user_id=n % 20, question=f"question number {n}") for n in range(count)]
    )


def test_export_work_on_the_event_loop_does_not_grow_with_the_rows(settings: Settings) -> None:
    """The event loop's share of an export is per part of rows, not per row (the rows are
    formatted and written in a worker thread, which this count does not see)."""
    upgrade_database(settings.database_url)

    async def with_store(use):  # noqa: ANN001, ANN202
        store = Store(settings.database_url)
        try:
            return await use(store)
        finally:
            await store.close()

    async def export(store: Store) -> str:
        out = io.StringIO(newline="")
        await write_exchanges(store, out, "csv")
        return out.getvalue()

    work, written = [], []
    for count in (300, 2_700):  # 300, then 3,000 in all: one part of rows, then two
        asyncio.run(with_store(lambda store, c=count: log_exchanges(store, c)))
        asyncio.run(with_store(export))  # the first call of a kind imports and compiles
        work.append(
            python_lines_run(
                lambda: written.append(asyncio.run(with_store(export))), PROJECT_ROOT / "bot"
            )
        )
    assert work[1] <= work[0] + 20
    rows = list(csv.DictReader(io.StringIO(written[-1], newline="")))
    assert len(rows) == 3_000 and rows[-1]["question"] == "question number 2699"


async def test_a_large_export_is_sent_compressed_and_a_too_large_one_explained(
    telegram_bot: TelegramBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = telegram_bot
    await log_exchanges(bot.app.store, 500)
    monkeypatch.setattr(exports, "COMPRESS_ABOVE_BYTES", 10_000)
    await bot.tg.send_command(bot.admin, "/export")
    reply = await bot.tg.next_reply(bot.admin)
    assert reply.document.filename.endswith(".csv.gz") and "compressed" in reply.caption
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(reply.document.content).decode())))
    assert len(rows) == 500

    monkeypatch.setattr(exports, "UPLOAD_LIMIT_BYTES", 1_000)
    await bot.tg.send_command(bot.admin, "/export")
    refusal = (await bot.tg.next_reply(bot.admin)).text
    assert "too large for Telegram" in refusal and "/export 7d" in refusal
    assert "qabot export" in refusal
