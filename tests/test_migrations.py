"""Upgrading a database made by an earlier revision keeps its data."""

from __future__ import annotations

import asyncio
import sqlite3

from bot.settings import Settings
from bot.storage.store import Store, upgrade_database
from model.datasets import QAPair
from tests.factories import record


async def test_upgrade_from_the_first_revision_keeps_data(settings: Settings) -> None:
    await asyncio.to_thread(upgrade_database, settings.database_url, "0001")
    store = Store(settings.database_url)
    [exchange_id] = await store.log_exchanges([record(question="你好", answer="你好！")])
    await store.add_pairs([QAPair("你好", "你好！")], source="bundled")
    await store.close()
    with sqlite3.connect(settings.home / "qabot.sqlite3") as db:
        assert "feedback" not in {r[0] for r in db.execute("select name from sqlite_master")}

    await asyncio.to_thread(upgrade_database, settings.database_url)

    store = Store(settings.database_url)
    try:
        assert [e.question async for e in store.stream_exchanges()] == ["你好"]
        assert await store.training_pairs() == [QAPair("你好", "你好！")]
        from bot.app.learning import Learning

        learning = Learning(store)
        assert await learning.record_feedback(exchange_id, 1, -1, chat_id=1)
        [rated] = await learning.rated_exchanges()
        assert rated.question == "你好" and rated.rating == -1
    finally:
        await store.close()
