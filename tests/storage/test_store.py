"""The store and its migrations on a real SQLite file."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import String, inspect, select, text
from sqlalchemy.exc import DBAPIError

from bot.settings import Settings
from bot.storage.learning_records import LearningRecords
from bot.storage.store import ChatInfo, Store, UserInfo, upgrade_database
from bot.storage.tables import Base, ReviewDecision, storable_text
from model.datasets import QAPair
from tests.factories import record


async def test_upgrade_from_empty_creates_every_table(settings: Settings) -> None:
    await asyncio.to_thread(upgrade_database, settings.database_url)
    path = settings.home / "qabot.sqlite3"
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master where type='table'")}
        journal_mode = db.execute("pragma journal_mode").fetchone()[0]
    assert set(Base.metadata.tables) <= tables
    assert journal_mode == "wal"
    # The migrations and the ORM tables agree, column by column.
    store = Store(settings.database_url)
    async with store.engine.connect() as connection:
        columns = await connection.run_sync(
            lambda sync: {
                t: {c["name"] for c in inspect(sync).get_columns(t)} for t in Base.metadata.tables
            }
        )
    await store.close()
    for name, table in Base.metadata.tables.items():
        assert columns[name] == {c.name for c in table.columns}, name


async def test_upgrade_twice_is_harmless(settings: Settings) -> None:
    await asyncio.to_thread(upgrade_database, settings.database_url)
    await asyncio.to_thread(upgrade_database, settings.database_url)


async def test_exchanges_are_logged_with_chats_and_users(store: Store) -> None:
    ids = await store.log_exchanges([record(question="你好"), record(chat_id=-100, user_id=2)])
    assert len(ids) == 2 and ids[0] < ids[1]
    # The same user again, renamed: upserted, not duplicated.
    renamed = record(question="again")
    renamed.user = UserInfo(1, "new_name", "Ann", "en")
    await store.log_exchanges([renamed])
    logged = [e async for e in store.stream_exchanges()]
    assert [e.question for e in logged] == ["你好", "hi", "again"]
    assert logged[1].chat_id == -100 and logged[1].user_id == 2
    assert await store.count_exchanges() == 3
    async with store.engine.connect() as db:
        assert (await db.execute(text("select username from users where id = 1"))).one() == (
            "new_name",
        )
        assert (await db.execute(text("select count(*) from chats"))).one() == (2,)


async def test_a_user_forgotten_by_another_replica_is_written_again(
    store: Store, database_url: str
) -> None:
    # This store remembers user 1 and chat 1 as written, and skips them from then on...
    await store.log_exchanges([record(question="first")])
    # ...until another replica (its own Store on the same database) deletes them.
    other_replica = Store(database_url)
    try:
        assert await other_replica.forget_user(1) == 1
    finally:
        await other_replica.close()
    [exchange_id] = await store.log_exchanges([record(question="after /forget elsewhere")])
    [exchange] = [e async for e in store.stream_exchanges()]
    assert (exchange.id, exchange.user_id, exchange.chat_id) == (exchange_id, 1, 1)
    async with store.engine.connect() as db:
        assert (await db.execute(text("select count(*) from users"))).one() == (1,)


async def test_sqlite_busy_with_another_writer_is_waited_for_off_the_event_loop(
    settings: Settings,
) -> None:
    """The exchange log writes SQLite on the event loop only when the file is free; while
    another connection holds the write lock, the batch waits in the async engine's thread and
    the loop keeps running."""
    await asyncio.to_thread(upgrade_database, settings.database_url)
    store = Store(settings.database_url)
    try:
        [first] = await store.log_exchanges([record(question="before")])
        locker = sqlite3.connect(settings.home / "qabot.sqlite3", isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
        loop_kept_running = asyncio.Event()

        async def tick() -> None:
            for _ in range(10):
                await asyncio.sleep(0.01)
            loop_kept_running.set()

        writing = asyncio.create_task(store.log_exchanges([record(question="while locked")]))
        ticker = asyncio.create_task(tick())
        # Had the write blocked the loop, the ticks would only run once it failed (SQLite's
        # busy timeout) or finished: either way `writing` would be done by then.
        await asyncio.wait_for(loop_kept_running.wait(), 60)
        assert not writing.done()  # waiting for the lock without holding the loop up
        locker.execute("ROLLBACK")
        locker.close()
        [second] = await asyncio.wait_for(writing, 10)
        ticker.cancel()
        assert second > first
        assert [e.question async for e in store.stream_exchanges()] == ["before", "while locked"]
    finally:
        await store.close()


async def test_channel_posts_without_a_user_are_logged(store: Store) -> None:
    await store.log_exchanges([record(user_id=None)])
    [exchange] = [e async for e in store.stream_exchanges()]
    assert exchange.user_id is None


async def test_stream_exchanges_since(store: Store) -> None:
    old = record(question="old", created_at=datetime.now(UTC) - timedelta(days=10))
    await store.log_exchanges([old, record(question="new")])
    recent = [
        e.question async for e in store.stream_exchanges(datetime.now(UTC) - timedelta(days=1))
    ]
    assert recent == ["new"]


async def test_add_pairs_skips_duplicates_and_keeps_order(store: Store) -> None:
    pairs = [QAPair("你好", "你好！"), QAPair("hello", "Hi!"), QAPair("stock price?", "")]
    assert await store.add_pairs(pairs, source="bundled") == 3
    assert await store.add_pairs([*pairs, QAPair("  hello ", "Hi!")], source="imported") == 0
    assert await store.add_pairs([QAPair("hey", "Hi!")], source="taught") == 1
    assert await store.training_pairs() == [*pairs, QAPair("hey", "Hi!")]
    assert await store.count_pairs() == 4


async def test_model_versions_are_recorded(store: Store) -> None:
    await store.record_model_version("v1", 10, {"in_scope_accuracy": 0.9}, promoted=False)
    await store.mark_promoted("v1")
    async with store.engine.connect() as db:
        n_pairs, promoted_at, metrics = (
            await db.execute(text("select n_pairs, promoted_at, metrics from model_versions"))
        ).one()
    assert n_pairs == 10 and promoted_at is not None and "0.9" in str(metrics)


UNSTORABLE = "a\ud800b\x00c\udfff"  # lone surrogates (UTF-8 cannot encode) and NUL
REPLACED = "a\ufffdb\ufffdc\ufffd"


async def test_text_that_cannot_be_encoded_is_stored_replaced_in_every_text_column(
    store: Store,
) -> None:
    learning = LearningRecords(store)
    chat = ChatInfo(-5, "group", title=UNSTORABLE)
    user = UserInfo(5, username=UNSTORABLE, first_name=UNSTORABLE, language_code=UNSTORABLE)
    exchange = replace(record(question=UNSTORABLE, answer=UNSTORABLE), chat=chat, user=user)
    [exchange_id] = await store.log_exchanges([exchange])
    assert await store.add_pairs([QAPair(UNSTORABLE, UNSTORABLE)], source="taught") == 1
    assert await learning.record_feedback(exchange_id, 5, -1, chat_id=-5)
    assert await learning.add_suggestion(exchange_id, 5, UNSTORABLE)
    assert await learning.decide([UNSTORABLE], answer=UNSTORABLE, decided_by=1)

    stored: list[str] = []
    async with store.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in await connection.execute(select(table)):
                stored += [value for value in row if isinstance(value, str)]
    assert not [text for text in stored if text != storable_text(text)]
    assert stored.count(REPLACED) >= 8  # title, names, question, answer, pair, suggestion...
    assert (await store.user_data(5))["users"][0]["first_name"] == REPLACED


def test_every_text_column_stores_only_storable_text() -> None:
    """A new text column must use StoredString or StoredText, or the text a user sends could
    make its writes fail (a lone surrogate, NUL on PostgreSQL)."""
    plain = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, String)
    ]
    assert plain == []


async def test_database_errors_do_not_show_what_users_wrote(store: Store) -> None:
    """Errors end up in logs (the writer's, Telegram's error handler): they must not carry the
    statement's parameters, which hold users' questions."""
    for table in ("exchanges", "qa_pairs"):
        await refuse_inserts(store, table)
    with pytest.raises(DBAPIError, match="inserts refused") as raised:
        await store.log_exchanges([record(question="my secret question")])
    with pytest.raises(DBAPIError, match="inserts refused") as raised_in_session:
        await store.add_pairs([QAPair("my secret question", "a")], source="taught")
    assert "my secret question" not in str(raised.value)
    assert "my secret question" not in str(raised_in_session.value)


def incompressible_text(chars: int) -> str:
    """Text PostgreSQL cannot compress below an index entry's limit (about 2.7 kB)."""
    return secrets.token_urlsafe(chars)[:chars]


async def test_long_pairs_can_be_taught_imported_and_approved(store: Store) -> None:
    question, answer = incompressible_text(6000), incompressible_text(6000)
    assert await store.add_pairs([QAPair(question, answer)], source="taught") == 1
    assert await store.add_pairs([QAPair(question, answer)], source="imported") == 0
    other = incompressible_text(4000)
    assert await LearningRecords(store).decide([other], answer=answer, decided_by=1)
    assert await store.training_pairs() == [QAPair(question, answer), QAPair(other, answer)]


async def refuse_inserts(store: Store, table: str) -> None:
    """A trigger that makes every insert into `table` fail ("inserts refused")."""
    statements = {
        "sqlite": [
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
            "BEGIN SELECT RAISE(ABORT, 'inserts refused'); END"
        ],
        "postgresql": [
            "CREATE OR REPLACE FUNCTION refuse_inserts() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'inserts refused'; END $$",
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse_inserts()",
        ],
    }
    async with store.engine.begin() as connection:
        for statement in statements[store.engine.dialect.name]:
            await connection.execute(text(statement))


async def test_an_approval_whose_pairs_fail_records_no_decision(store: Store) -> None:
    """Else the group leaves the review queue and never joins the training set."""
    await refuse_inserts(store, "qa_pairs")
    learning = LearningRecords(store)
    with pytest.raises(DBAPIError, match="inserts refused"):
        await learning.decide(["how do I reset it"], answer="Like this.", decided_by=1)
    async with store.session() as session:
        assert (await session.scalars(select(ReviewDecision))).all() == []
    assert await learning.decide(["how do I reset it"], answer=None, decided_by=1)  # ignoring
