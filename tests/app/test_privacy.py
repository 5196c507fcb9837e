"""/mydata, /forget and the retention period, on both database engines and through Telegram."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.app import privacy
from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.store import Store
from bot.storage.tables import Feedback, ReviewDecision
from model.datasets import QAPair
from tests.conftest import TOKEN, TelegramBot
from tests.factories import record


async def test_user_data_holds_their_rows_only(store: Store) -> None:
    await store.log_exchanges(
        [record(user_id=7, chat_id=7, question="mine"), record(user_id=8, chat_id=8)]
    )
    data = await store.user_data(7)
    assert [row["id"] for row in data["users"]] == [7]
    assert [row["id"] for row in data["chats"]] == [7]
    assert [row["question"] for row in data["exchanges"]] == ["mine"]


async def test_forget_deletes_a_user_and_nothing_else(store: Store) -> None:
    await store.add_pairs([QAPair("q", "a")], source="reviewed")
    await store.log_exchanges(
        [
            record(user_id=7, chat_id=7, question="private"),
            record(user_id=7, chat_id=-100, question="in a group"),
            record(user_id=8, chat_id=-100, question="someone else"),
        ]
    )
    assert await store.forget_user(7) == 2
    assert all(rows == [] for rows in (await store.user_data(7)).values())
    remaining = [e.question async for e in store.stream_exchanges()]
    assert remaining == ["someone else"]
    assert await store.count_pairs() == 1  # the training set keeps its pairs
    assert await store.forget_user(7) == 0  # twice is harmless


async def test_delete_exchanges_before(store: Store) -> None:
    now = datetime.now(UTC)
    await store.log_exchanges(
        [
            record(question="old", created_at=now - timedelta(days=31)),
            record(question="recent", created_at=now - timedelta(days=29)),
        ]
    )
    assert await privacy.delete_expired(store, 30, now=now) == 1
    assert [e.question async for e in store.stream_exchanges()] == ["recent"]


async def test_retention_runs_at_once_and_then_periodically(store: Store) -> None:
    await store.log_exchanges([record(created_at=datetime.now(UTC) - timedelta(days=2))])
    task = asyncio.create_task(privacy.run_retention(store, 1, interval=0.05))
    try:
        async with asyncio.timeout(5):
            while await store.count_exchanges():
                await asyncio.sleep(0.01)
            await store.log_exchanges([record(created_at=datetime.now(UTC) - timedelta(days=3))])
            while await store.count_exchanges():
                await asyncio.sleep(0.01)
    finally:
        # Stopped before the store closes: cancelled in the middle of a query on a closed
        # store, the task never finished and closing the test's event loop waited for ever.
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_export_flushes_queued_exchanges_first(store: Store) -> None:
    writer = ExchangeWriter(store)
    await writer.start()
    pending = asyncio.ensure_future(writer.write(record(user_id=7, chat_id=7, question="q")))
    document = json.loads(await privacy.export_user_data(store, writer, 7))
    await pending
    await writer.stop()
    assert document["user_id"] == 7
    assert [row["question"] for row in document["tables"]["exchanges"]] == ["q"]


async def test_mydata_and_forget_through_telegram(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    other = bot.tg.user(1002, "Cy", language_code="en")
    for user, text in ((bot.user, "你好"), (bot.user, "量子引力"), (other, "hello")):
        await bot.tg.send_text(user, text)
        await bot.tg.next_reply(user)

    await bot.tg.send_command(bot.user, "/mydata")
    document = (await bot.tg.next_reply(bot.user)).document
    exported = json.loads(document.content)
    assert [e["question"] for e in exported["tables"]["exchanges"]] == ["你好", "量子引力"]
    assert exported["tables"]["users"][0]["username"] == "bo"
    assert TOKEN not in document.content.decode()

    await bot.tg.send_command(bot.user, "/forget")
    question = await bot.tg.next_reply(bot.user)
    assert "删除" in question.text
    # Someone else pressing the button (e.g. in a forwarded message) deletes nothing.
    await bot.tg.press_button(other, question, text=question.buttons[0]["text"])
    await bot.tg.wait_for(lambda call: call.method == "answerCallbackQuery")
    assert len((await bot.app.store.user_data(bot.user.id))["exchanges"]) == 2

    await bot.tg.press_button(bot.user, question, text=question.buttons[0]["text"])
    await bot.tg.wait_for(lambda call: call.method == "editMessageText")
    assert "2" in bot.tg.message(bot.user, question.message_id).text
    assert (await bot.app.store.user_data(bot.user.id))["exchanges"] == []
    assert [e.user_id async for e in bot.app.store.stream_exchanges()] == [other.id]


async def test_forget_can_be_cancelled_and_is_private_only(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await bot.tg.send_text(bot.admin, "hello")
    await bot.tg.next_reply(bot.admin)
    await bot.tg.send_command(bot.admin, "/forget")
    question = await bot.tg.next_reply(bot.admin)
    await bot.tg.press_button(bot.admin, question, text="Cancel")
    await bot.tg.wait_for(lambda call: call.method == "editMessageText")
    assert "nothing was deleted" in bot.tg.message(bot.admin, question.message_id).text
    assert await bot.app.store.count_exchanges() == 1

    group = bot.tg.group(-100555, "Friends")
    await bot.tg.send_command(bot.admin, "/mydata", chat=group)
    assert "private chat" in (await bot.tg.next_reply(group)).text


async def test_forget_deletes_feedback_given_and_received(store: Store) -> None:
    own, others = await store.log_exchanges(
        [record(user_id=7, chat_id=-100, question="mine"), record(user_id=8, chat_id=-100)]
    )
    async with store.session.begin() as session:
        session.add_all(
            [
                Feedback(exchange_id=own, user_id=8, rating=1),  # on their exchange
                Feedback(exchange_id=others, user_id=7, rating=-1, suggestion="by them"),
                Feedback(exchange_id=others, user_id=9, rating=1),
            ]
        )
    exported = await store.user_data(7)
    assert sorted(row["rating"] for row in exported["feedback"]) == [-1, 1]
    await store.forget_user(7)
    async with store.session() as session:
        kept = (await session.execute(select(Feedback.user_id, Feedback.exchange_id))).all()
    assert kept == [(9, others)]


async def everything_stored(store: Store) -> str:
    """Every value of every row of every table, as text."""
    from sqlalchemy import text as sql

    from bot.storage.tables import Base

    values = []
    async with store.session() as session:
        for table in Base.metadata.sorted_tables:
            for row in await session.execute(sql(f"SELECT * FROM {table.name}")):
                values += [str(value) for value in row]
    return "\n".join(values)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_after_forget_nothing_of_the_user_remains_anywhere(
    telegram_bot: TelegramBot, home: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = telegram_bot
    caplog.set_level(logging.INFO)
    group = bot.tg.group(-100888, "Friends")
    asker = bot.tg.user(7390514862, "Dee", language_code="en")
    rater = bot.tg.user(7390514863, "Eli", language_code="en")  # only rates and suggests
    secrets = {
        asker: ["Zorblax recipe for Quuxberry pie?", str(asker.id)],
        rater: ["Try the Vexwhistle bakery!", str(rater.id)],
    }
    await bot.tg.send_text(asker, secrets[asker][0])
    await bot.tg.next_reply(asker)
    answer = await answered(bot, bot.admin, "你好", group)
    await bot.tg.press_button(rater, answer, text="👎")
    prompt = await bot.tg.next_reply(group)
    await bot.tg.send_text(rater, secrets[rater][0], chat=group, reply_to=prompt)
    assert "admin will review" in (await bot.tg.next_reply(group)).text
    # The admin decides the asker's question (a decision quotes it), and exports the log.
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    if secrets[asker][0] not in item.text:  # the group's 👎 item may come first
        await bot.tg.press_button(bot.admin, item, text="🚫 Ignore")
        await bot.tg.next_reply(bot.admin)
        await bot.tg.send_command(bot.admin, "/review")
        item = await bot.tg.next_reply(bot.admin)
    await bot.tg.press_button(bot.admin, item, text="🚫 Ignore")
    assert "Ignored" in (await bot.tg.next_reply(bot.admin)).text
    await bot.tg.send_command(bot.admin, "/export")
    assert (await bot.tg.next_reply(bot.admin)).document is not None

    # /mydata of the one who only rated shows the rating and the suggestion.
    await bot.tg.send_command(rater, "/mydata")
    rated = json.loads((await bot.tg.next_reply(rater)).document.content)
    assert [row["suggestion"] for row in rated["tables"]["feedback"]] == [secrets[rater][0]]

    for user in (asker, rater):
        await bot.tg.send_command(user, "/forget")
        question = await bot.tg.next_reply(user)
        await bot.tg.press_button(user, question, text=question.buttons[0]["text"])
        await bot.tg.wait_for(lambda c: c.method == "editMessageText")
    async with asyncio.timeout(30):
        while "Done" not in bot.tg.message(rater, question.message_id).text:
            await asyncio.sleep(0.01)

    stored = await everything_stored(bot.app.store)
    files = {path: path.read_bytes() for path in home.rglob("*") if path.is_file()}
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for text in secrets[asker] + secrets[rater]:
        assert text not in stored, f"{text!r} in the database"
        for path, content in files.items():
            assert text.encode() not in content, f"{text!r} in {path}"
        assert text not in logged, f"{text!r} in the log"
    assert "Friends" in stored  # what is not theirs is still there


async def answered(bot: TelegramBot, user, text: str, chat):
    await bot.tg.send_text(user, f"@qabot_test_bot {text}", chat=chat)  # addressed to the bot
    return await bot.tg.next_reply(chat)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_retention_removes_review_decisions_quoting_old_questions(store: Store) -> None:
    from bot.storage.learning_records import LearningRecords

    old = datetime.now(UTC) - timedelta(days=40)
    await store.log_exchanges([record(question="Quuxberry pie?", created_at=old)])
    await LearningRecords(store).decide(["Quuxberry pie?"], answer=None, decided_by=1)
    async with store.session.begin() as session:
        await session.execute(update(ReviewDecision).values(decided_at=old))
    await privacy.delete_expired(store, 30)
    assert "Quuxberry" not in await everything_stored(store)


async def test_export_files_left_by_a_crash_are_deleted_at_start(
    settings, seeded_store: Store, models_dir: Path
) -> None:
    from bot.app.app import App

    left = settings.home / "exports" / "tmpcrash"
    left.mkdir(parents=True)
    (left / "qabot-exchanges.csv").write_text("id,question\n1,secret\n")
    app = App(settings, seeded_store)
    await app.start()
    await app.stop()
    assert not left.exists()


def test_files_the_bot_writes_are_private(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.cli import main

    monkeypatch.setenv("QABOT_HOME", str(home))
    for name in ("QABOT_DATABASE_URL", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    umask = os.umask(0o022)
    try:
        assert main(["db", "upgrade"]) == 0
    finally:
        os.umask(umask)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in home.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
