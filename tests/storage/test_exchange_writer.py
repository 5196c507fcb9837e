"""Group commit of exchanges, and what happens while the database is unreachable."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.store import Store, UserInfo, is_outage, upgrade_database
from bot.storage.tables import Exchange, User, storable_text
from tests.factories import record


async def test_concurrent_writes_share_commits_and_all_land(store: Store) -> None:
    writer = ExchangeWriter(store, max_wait_seconds=60)
    await writer.start()
    ids = await asyncio.gather(*(writer.write(record(question=f"q{i}")) for i in range(200)))
    await writer.stop()
    assert None not in ids and len(set(ids)) == len(ids)
    assert await store.count_exchanges() == 200


async def test_while_busy_commits_are_spaced_and_a_quiet_spell_writes_at_once(
    store: Store,
) -> None:
    batches: list[int] = []
    real_log = store.log_exchanges

    async def counting(records):
        batches.append(len(records))
        return await real_log(records)

    # The writer asks whether it is busy only when the last commit is too recent: each question
    # is a commit it considered postponing.
    postponed: list[int] = []

    def busy() -> bool:
        postponed.append(len(batches))
        return True

    store.log_exchanges = counting  # type: ignore[method-assign]
    writer = ExchangeWriter(store, commit_interval=1.0, busy=busy, max_wait_seconds=60)
    await writer.start()
    await writer.write(record(question="first"))
    assert batches == [1] and postponed == []  # nothing written lately: at once

    async def write_later(delay: float, question: str) -> int | None:
        await asyncio.sleep(delay)
        return await writer.write(record(question=question))

    # They arrive well within the interval of the first commit, even on a loaded machine.
    ids = await asyncio.gather(*(write_later(0.02 * i, f"q{i}") for i in range(5)))
    await writer.stop()
    assert None not in ids
    assert postponed == [1]  # the commit after the first waited for the interval ...
    assert batches == [1, 5]  # ... and the five shared it
    assert await store.count_exchanges() == 6


async def test_with_nothing_else_in_progress_each_exchange_is_written_at_once(
    store: Store,
) -> None:
    asked = 0

    def idle() -> bool:
        nonlocal asked
        asked += 1
        return False

    # An interval far longer than the writes take: had any of them waited for it, the
    # writes would time out.
    writer = ExchangeWriter(store, commit_interval=600, busy=idle, max_wait_seconds=600)
    await writer.start()

    async def write_three() -> list[int | None]:
        return [await writer.write(record(question=f"q{i}")) for i in range(3)]

    ids = await asyncio.wait_for(write_three(), 300)
    await writer.stop()
    assert None not in ids
    assert asked == 2  # the second and third commits came too soon, and nothing else was busy
    assert await store.count_exchanges() == 3


async def test_database_outage_keeps_exchanges_until_it_is_back(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    real_log = store.log_exchanges
    outage = True

    async def flaky(records):
        if outage:
            raise OSError("database is gone")
        return await real_log(records)

    store.log_exchanges = flaky  # type: ignore[method-assign]
    writer = ExchangeWriter(store, retry_seconds=0.05)
    await writer.start()
    with caplog.at_level(logging.WARNING):
        # Callers are not held up by the outage: they learn the write is pending.
        results = await asyncio.wait_for(
            asyncio.gather(*(writer.write(record(question=f"q{i}")) for i in range(5))), 60
        )
        assert results == [None] * 5 and writer.pending == 5
        outage = False
        await asyncio.wait_for(writer.flush(), 60)
    await writer.stop()
    assert await store.count_exchanges() == 5
    assert "database unavailable" in caplog.text and "database is back" in caplog.text


async def test_a_hanging_database_holds_no_reply_longer_than_max_wait(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    real_log = store.log_exchanges
    database_answers = asyncio.Event()

    async def hanging(records):
        await database_answers.wait()
        return await real_log(records)

    store.log_exchanges = hanging  # type: ignore[method-assign]
    writer = ExchangeWriter(store, max_wait_seconds=0.8, busy=lambda: False)
    await writer.start()
    loop = asyncio.get_running_loop()
    with caplog.at_level(logging.WARNING):
        first_asked = loop.time()
        first = asyncio.create_task(writer.write(record(question="first")))
        await asyncio.sleep(0.5)
        second = asyncio.create_task(writer.write(record(question="second")))
        assert await asyncio.wait_for(first, 60) is None
        # Answered at its own deadline: not before, and well before the second's, which
        # asked half a second later and is still waiting.
        assert loop.time() - first_asked >= writer.max_wait_seconds
        assert not second.done()
        assert await asyncio.wait_for(second, 60) is None
        assert writer.pending == 2
    assert "the database is slow" in caplog.text
    database_answers.set()
    await asyncio.wait_for(writer.flush(), 60)
    await writer.stop()
    assert await store.count_exchanges() == 2
    # Once the database answers again, callers get their exchange ids.
    writer = ExchangeWriter(store, max_wait_seconds=60)
    await writer.start()
    assert isinstance(await writer.write(record(question="third")), int)
    await writer.stop()


async def test_queue_is_bounded(store: Store) -> None:
    async def down(records):
        raise OSError("down")

    store.log_exchanges = down  # type: ignore[method-assign]
    writer = ExchangeWriter(store, max_pending=3, retry_seconds=10)
    await writer.start()
    for i in range(5):
        await writer.write(record(question=f"q{i}"))
    assert writer.pending == 3 and writer.dropped == 2
    await writer.stop(timeout=0.1)


async def test_queue_is_bounded_by_bytes_and_drops_are_counted(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """100,000 long messages queued during an outage took 1.6 GB: the queue holds at most
    `max_pending_bytes`, dropping the oldest, with one log line and a count."""
    real_log = store.log_exchanges
    outage = True

    async def flaky(records):
        if outage:
            raise OSError("down")
        return await real_log(records)

    store.log_exchanges = flaky  # type: ignore[method-assign]
    writer = ExchangeWriter(store, max_pending_bytes=2**20, retry_seconds=0.05)
    await writer.start()
    long_question = "长" * 4096  # 4,096 characters of 2 bytes each in memory: 8 kB a record
    with caplog.at_level(logging.WARNING):
        for i in range(500):
            await writer.write(record(question=f"{i} {long_question}"))
        assert writer.pending_bytes <= 2**20 and writer.dropped > 300
        assert writer.pending + writer.dropped == 500
        assert caplog.text.count("exchange queue full") == 1
        kept = writer.pending
        outage = False
        await asyncio.wait_for(writer.flush(), 60)
    await writer.stop()
    assert writer.pending_bytes == 0
    assert f"{500 - kept} dropped while the queue was full" in caplog.text
    newest = [e.question.split()[0] async for e in store.stream_exchanges()]
    assert newest == [str(i) for i in range(500 - kept, 500)]


async def test_a_record_that_fails_alone_is_dropped_alone_and_logging_goes_on(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Only connection errors are an outage: a record failing with anything else (here what
    the SQLite driver raised for a lone surrogate) is dropped alone, its text kept out of the
    log, and the others are written."""
    real_log = store.log_exchanges

    async def refusing(records):
        for r in records:
            if r.question == "poison":
                raise UnicodeEncodeError("utf-8", "poison", 0, 1, "surrogates not allowed")
        return await real_log(records)

    store.log_exchanges = refusing  # type: ignore[method-assign]
    writer = ExchangeWriter(store, retry_seconds=0.05, max_wait_seconds=60)
    await writer.start()
    questions = ["a", "poison", "b", "c"]
    ids = await asyncio.wait_for(
        asyncio.gather(*(writer.write(record(question=q)) for q in questions)), 120
    )
    assert await asyncio.wait_for(writer.write(record(question="later")), 60) is not None
    await writer.stop()
    assert ids[1] is None and None not in (ids[0], *ids[2:])
    assert writer.dropped == 1 and "could not write an exchange of chat 1" in caplog.text
    assert "database unavailable" not in caplog.text and "poison" not in caplog.text
    assert sorted([e.question async for e in store.stream_exchanges()]) == [
        "a", "b", "c", "later"
    ]  # fmt: skip


def test_is_outage_only_for_connection_errors() -> None:
    lost = OperationalError("SELECT 1", None, ConnectionResetError("reset"))
    refused = DBAPIError("INSERT ...", None, ValueError("invalid input"))
    invalidated = DBAPIError("INSERT ...", None, Exception("gone"), connection_invalidated=True)
    assert is_outage(lost) and is_outage(invalidated) and is_outage(ConnectionRefusedError())
    assert is_outage(TimeoutError()) and is_outage(InterfaceError("SELECT 1", None, Exception()))
    assert not is_outage(refused) and not is_outage(IntegrityError("INSERT", None, Exception()))
    assert not is_outage(UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"))


# -- any text, on both engines -----------------------------------------------------------------

# Whatever a str can hold: lone surrogates, NUL and other control characters, 10 kB strings.
unicode_text = (
    st.text(st.characters(exclude_categories=()), max_size=100)
    | st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zs"]), max_size=30)
    | st.text(st.characters(exclude_categories=()), min_size=1, max_size=30).map(
        lambda unit: (unit * (10_240 // len(unit) + 1))[:10_240]
    )
)


def test_any_text_is_stored_through_the_writer_and_read_back_replaced(database_url: str) -> None:
    with asyncio.Runner() as runner:
        runner.run(asyncio.to_thread(upgrade_database, database_url))
        store = Store(database_url)
        writer = ExchangeWriter(store, max_wait_seconds=60)
        runner.run(writer.start())

        async def write_and_read(
            question: str, answer: str, name: str
        ) -> tuple[str, str, str | None]:
            user = UserInfo(7, username=None, first_name=name)
            exchange_id = await writer.write(
                replace(record(question=question, answer=answer), user=user)
            )
            assert exchange_id is not None
            async with store.session() as session:
                row = await session.get(Exchange, exchange_id)
                first_name = await session.scalar(select(User.first_name).where(User.id == 7))
            return row.question, row.answer, first_name

        @settings_(deadline=None)
        @given(question=unicode_text, answer=unicode_text, name=unicode_text)
        def stored_as_replaced(question: str, answer: str, name: str) -> None:
            stored = runner.run(write_and_read(question, answer, name))
            assert stored == (
                storable_text(question), storable_text(answer), storable_text(name[:256])
            )  # fmt: skip

        try:
            stored_as_replaced()
        finally:
            runner.run(writer.stop())
            runner.run(store.close())
