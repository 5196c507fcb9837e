"""Upgrading a database made by an earlier revision keeps its data."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from asyncio.subprocess import PIPE

import pytest
from sqlalchemy import text

from bot.settings import Settings
from bot.storage.store import Store, upgrade_database
from model.datasets import QAPair
from tests.processes import ROOT


async def insert_pairs_before_0004(url: str, pairs: list[QAPair]) -> None:
    """Pairs as the store wrote them before revision 0004 (which added pair_hash)."""
    store = Store(url)
    try:
        async with store.engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO qa_pairs (question, answer, source, created_at) "
                    "VALUES (:question, :answer, 'bundled', CURRENT_TIMESTAMP)"
                ),
                [{"question": p.question, "answer": p.answer} for p in pairs],
            )
    finally:
        await store.close()


async def insert_exchange_at_0001(url: str) -> int:
    """An exchange as the first revision's schema holds it (the store now writes columns that
    later revisions added)."""
    store = Store(url)
    try:
        async with store.engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO chats (id, type, created_at) "
                    "VALUES (1, 'private', CURRENT_TIMESTAMP)"
                )
            )
            result = await connection.execute(
                text(
                    "INSERT INTO exchanges (created_at, chat_id, kind, question, answer, "
                    "answer_id, confidence, fallback, latency_ms) VALUES (CURRENT_TIMESTAMP, "
                    "1, 'text', '你好', '你好！', 'a1', 1.0, false, 1.0) RETURNING id"
                )
            )
            return result.scalar_one()
    finally:
        await store.close()


async def test_upgrade_from_the_first_revision_keeps_data(settings: Settings) -> None:
    await asyncio.to_thread(upgrade_database, settings.database_url, "0001")
    exchange_id = await insert_exchange_at_0001(settings.database_url)
    await insert_pairs_before_0004(settings.database_url, [QAPair("你好", "你好！")])
    with sqlite3.connect(settings.home / "qabot.sqlite3") as db:
        assert "feedback" not in {r[0] for r in db.execute("select name from sqlite_master")}

    await asyncio.to_thread(upgrade_database, settings.database_url)

    store = Store(settings.database_url)
    try:
        assert [e.question async for e in store.stream_exchanges()] == ["你好"]
        assert await store.training_pairs() == [QAPair("你好", "你好！")]
        from bot.storage.learning_records import LearningRecords

        learning = LearningRecords(store)
        assert await learning.record_feedback(exchange_id, 1, -1, chat_id=1)
        [rated] = await learning.rated_exchanges()
        assert rated.question == "你好" and rated.rating == -1
    finally:
        await store.close()


async def test_upgrade_to_pair_hashes_keeps_the_training_set(database_url: str) -> None:
    """Revision 0004 moves the pairs' uniqueness from the texts to a hash of them."""
    await asyncio.to_thread(upgrade_database, database_url, "0003")
    pairs = [QAPair("你好", "你好！"), QAPair("bye", ""), QAPair("hi", "Hello!")]
    await insert_pairs_before_0004(database_url, pairs)

    await asyncio.to_thread(upgrade_database, database_url)

    store = Store(database_url)
    try:
        assert await store.training_pairs() == pairs
        assert await store.add_pairs([*pairs, QAPair("hi", "Hey")], source="imported") == 1
    finally:
        await store.close()


# Imports first, then waits for a line on stdin: the three processes migrate at the same moment.
UPGRADE_WHEN_TOLD = """
import sys
from bot.storage.store import upgrade_database
print("ready", flush=True)
sys.stdin.readline()
upgrade_database(sys.argv[1])
"""


@pytest.mark.slow
async def test_three_replicas_migrating_a_fresh_database_together_all_succeed(
    database_url: str,
) -> None:
    replicas = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            UPGRADE_WHEN_TOLD,
            database_url,
            cwd=ROOT,
            stdin=PIPE,
            stdout=PIPE,
            stderr=PIPE,
        )  # fmt: skip
        for _ in range(3)
    ]
    for replica in replicas:
        assert await asyncio.wait_for(replica.stdout.readline(), 60) == b"ready\n"
    for replica in replicas:
        replica.stdin.write(b"go\n")
    await asyncio.gather(*(replica.stdin.drain() for replica in replicas))
    results = await asyncio.gather(*(replica.communicate() for replica in replicas))
    errors = [stderr.decode()[-2000:] for _, stderr in results if stderr]
    assert [replica.returncode for replica in replicas] == [0, 0, 0], errors
    store = Store(database_url)
    try:
        assert await store.add_pairs([QAPair("你好", "你好！")], source="bundled") == 1
        async with store.engine.connect() as connection:
            versions = (await connection.execute(text("SELECT * FROM alembic_version"))).all()
        assert len(versions) == 1
    finally:
        await store.close()
