"""/mydata, /forget and the retention period, on both database engines and through Telegram."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from bot.app import privacy
from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.store import Store
from bot.storage.tables import Feedback
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
        task.cancel()


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
    assert len((await bot.service.store.user_data(bot.user.id))["exchanges"]) == 2

    await bot.tg.press_button(bot.user, question, text=question.buttons[0]["text"])
    await bot.tg.wait_for(lambda call: call.method == "editMessageText")
    assert "2" in bot.tg.message(bot.user, question.message_id).text
    assert (await bot.service.store.user_data(bot.user.id))["exchanges"] == []
    assert [e.user_id async for e in bot.service.store.stream_exchanges()] == [other.id]


async def test_forget_can_be_cancelled_and_is_private_only(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await bot.tg.send_text(bot.admin, "hello")
    await bot.tg.next_reply(bot.admin)
    await bot.tg.send_command(bot.admin, "/forget")
    question = await bot.tg.next_reply(bot.admin)
    await bot.tg.press_button(bot.admin, question, text="Cancel")
    await bot.tg.wait_for(lambda call: call.method == "editMessageText")
    assert "nothing was deleted" in bot.tg.message(bot.admin, question.message_id).text
    assert await bot.service.store.count_exchanges() == 1

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
