"""The hand-off to people, through the real Application against the fake Bot API: a fallback's
"Ask a person" button, the support chat's reply back to the user, /open, the reminder when
nobody answers, /review and /forget."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import messages
from bot.app.handoff import HandoffDesk
from bot.storage.store import Store
from bot.telegram.handoff import remind_unanswered
from tests.conftest import TelegramBot, bot_on_fake_telegram

SUPPORT_CHAT_ID = -100777
# A question about a service the bundled FAQ does not cover (nor its out-of-scope set).
UNKNOWN = "can you recommend a dentist near the train station"


@pytest.fixture
async def support_bot(
    home: Path, seeded_store: Store, seed_model_dir: Path
) -> AsyncIterator[TelegramBot]:
    async with bot_on_fake_telegram(
        home, seeded_store, seed_model_dir, QABOT_SUPPORT_CHAT_ID=str(SUPPORT_CHAT_ID)
    ) as bot:
        bot.tg.group(SUPPORT_CHAT_ID, "Support")
        yield bot


def desk(bot: TelegramBot) -> HandoffDesk:
    return bot.app.handoff


async def hand_off(bot: TelegramBot, user, question: str):
    """The user asks what the bot cannot answer and presses "Ask a person"; the copy of the
    question in the support chat."""
    tg = bot.tg
    support = tg.group(SUPPORT_CHAT_ID, "Support")
    lang = messages.language_of(question)
    await tg.send_text(user, question)
    fallback = await tg.next_reply(user)
    assert fallback.text == messages.text("fallback", lang)
    await tg.press_button(user, fallback, text=messages.text("ask_a_person", lang))
    copy = await tg.next_reply(support)
    assert (await tg.next_reply(user)).text == messages.text("handoff_sent", lang)
    assert tg.message(user, fallback.message_id).buttons == []  # pressed once
    return support, copy


async def test_a_person_answers_what_the_bot_cannot(support_bot: TelegramBot) -> None:
    bot, tg = support_bot, support_bot.tg
    asker = tg.user(1002, "Eve", last_name="Ng", username="eve", language_code="en")
    support, copy = await hand_off(bot, asker, UNKNOWN)
    assert "Eve Ng (@eve)" in copy.text and "language en" in copy.text and UNKNOWN in copy.text

    await tg.send_command(bot.admin, "/open", chat=support)
    assert UNKNOWN in (await tg.next_reply(support)).text

    member = tg.user(5005, "Sam", language_code="en")
    answer = "Open Settings, then Invoices, then Export."
    await tg.send_text(member, answer, chat=support, reply_to=copy)
    delivered = await tg.next_reply(asker)
    assert delivered.text.endswith(answer) and "A person answered" in delivered.text
    assert "Sent" in (await tg.next_reply(support)).text
    await tg.send_command(member, "/open", chat=support)
    assert "No open questions" in (await tg.next_reply(support)).text

    # Logged as answered by a person, and exports say so.
    await tg.send_command(bot.admin, "/export")
    rows = list(
        csv.DictReader(io.StringIO((await tg.next_reply(bot.admin)).document.content.decode()))
    )
    assert [(r["question"], r["answered_by_person"]) for r in rows] == [
        (UNKNOWN, "false"),
        (UNKNOWN, "true"),
    ]
    assert rows[1]["answer"] == answer and rows[1]["user_id"] == str(asker.id)

    # In /review as a suggestion; approving it teaches the pair (nothing before that).
    assert not any(p.answer == answer for p in await bot.app.store.training_pairs())
    await tg.send_command(bot.admin, "/review")
    item = await tg.next_reply(bot.admin)
    assert "A person answered" in item.text and UNKNOWN in item.text
    await tg.press_button(bot.admin, item, text=f"🧑 {answer[:39]}…")
    assert (await tg.next_reply(bot.admin)).text.startswith("Approved")
    assert any(p.answer == answer for p in await bot.app.store.training_pairs())


async def test_the_user_is_told_when_nobody_picks_the_question_up(
    support_bot: TelegramBot,
) -> None:
    bot, tg = support_bot, support_bot.tg
    await hand_off(bot, bot.user, "帮我查一下明天上海到北京的高铁票")
    assert await remind_unanswered(bot.application) == 0  # not yet overdue
    later = datetime.now(UTC) + desk(bot).timeout + timedelta(minutes=1)
    desk(bot).clock = lambda: later
    assert await remind_unanswered(bot.application) == 1
    assert "还没有人" in (await tg.next_reply(bot.user)).text  # in the user's language
    assert await remind_unanswered(bot.application) == 0  # told once


async def test_a_thumbs_down_offers_a_person_and_forget_removes_hand_offs(
    support_bot: TelegramBot,
) -> None:
    bot, tg = support_bot, support_bot.tg
    await tg.send_text(bot.user, "你好")
    answer = await tg.next_reply(bot.user)
    exchange_id = answer.buttons[1]["callback_data"].rsplit(":", 1)[1]
    await tg.press_button(bot.user, answer, f"fb:-:{exchange_id}")
    await tg.next_reply(bot.user)  # the prompt for the right answer
    offer = await tg.next_reply(bot.user)
    await tg.press_button(bot.user, offer, text="🙋 请真人回答")
    assert "你好" in (await tg.next_reply(SUPPORT_CHAT_ID)).text
    await tg.next_reply(bot.user)
    assert (await bot.app.store.user_data(bot.user.id))["handoffs"] != []

    await tg.send_command(bot.user, "/forget")
    confirm = await tg.next_reply(bot.user)
    await tg.press_button(bot.user, confirm, text=confirm.buttons[0]["text"])
    await tg.wait_for(lambda call: call.method == "editMessageText")
    assert (await bot.app.store.user_data(bot.user.id))["handoffs"] == []
