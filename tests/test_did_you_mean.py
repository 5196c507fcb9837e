""" "Did you mean …?" through the real Application and the fake Bot API: the buttons, a press
that gives the answer and fills the review item, "none of these", and forged or stale presses."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from bot import messages
from bot.app import service as service_module
from bot.app.service import Suggestion
from bot.console import run_console
from model.datasets import QAPair, answer_key
from model.predictor import Prediction
from tests.conftest import TelegramBot
from tests.fake_telegram import BotMessage

# A question the bundled model falls back on (it is an out-of-scope row of the bundled set).
HESITANT_QUESTION = "帮我订一张去上海的机票"
# Two bundled answers the model is made to hesitate between, with their best-known wordings.
OFFERED = [("你好", "你好！"), ("你喜欢什么样的食物？", "我喜欢吃蘑菇。")]


@pytest.fixture
def hesitating_model(monkeypatch: pytest.MonkeyPatch) -> list[Suggestion]:
    """The model offers OFFERED whenever it falls back. (Through the service's seam: the
    model-side rule that chooses suggestions is not part of this change.)"""
    offered = [Suggestion(answer_key(answer), answer, wording) for wording, answer in OFFERED]

    def suggestions_of(prediction: Prediction) -> tuple[Suggestion, ...]:
        return tuple(offered) if prediction.fallback else ()

    monkeypatch.setattr(service_module, "suggestions_of", suggestions_of)
    return offered


async def ask(bot: TelegramBot, user, text: str, chat=None) -> BotMessage:
    await bot.tg.send_text(user, text, chat=chat)
    return await bot.tg.next_reply(chat or user)


async def alert_after(bot: TelegramBot, since: int) -> str:
    call = await bot.tg.wait_for(lambda c: c.method == "answerCallbackQuery", since=since)
    assert call.params.get("show_alert") is True
    return call.params["text"]


async def exported_rows(bot: TelegramBot) -> list[dict[str, str]]:
    await bot.tg.send_command(bot.admin, "/export")
    document = (await bot.tg.next_reply(bot.admin)).document
    return list(csv.DictReader(io.StringIO(document.content.decode("utf-8"), newline="")))


async def test_a_press_gives_the_answer_and_fills_the_review_item(
    telegram_bot: TelegramBot, hesitating_model: list[Suggestion]
) -> None:
    bot = telegram_bot
    offer = await ask(bot, bot.user, HESITANT_QUESTION)
    assert offer.text == "我不太确定你的意思。你想问的是下面哪一个？"  # the question's language
    assert [b["text"] for b in offer.buttons] == ["你好", "你喜欢什么样的食物？", "都不是"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in offer.buttons)

    await bot.tg.press_button(bot.user, offer, text="你喜欢什么样的食物？")
    await bot.tg.wait_for(lambda c: c.method == "editMessageText")
    assert offer.text == "我喜欢吃蘑菇。"  # the question's message now holds the answer
    assert [b["text"] for b in offer.buttons] == ["👍", "👎"]  # rated like any answer

    # Logged with the exchange: exports and /stats show what the user got.
    [row] = await exported_rows(bot)
    assert (row["question"], row["answer"]) == (HESITANT_QUESTION, "我喜欢吃蘑菇。")
    assert row["answer_id"] == answer_key("我喜欢吃蘑菇。") and row["fallback"] == "false"
    await bot.tg.send_command(bot.admin, "/stats")
    stats = (await bot.tg.next_reply(bot.admin)).caption
    assert "Fallback rate: 0.0%" in stats
    assert "“Did you mean” presses: 1 chose an answer, 0 none of these" in stats

    # A suggestion, not training data: the model and the exact-match table know nothing new.
    assert (
        QAPair(HESITANT_QUESTION, "我喜欢吃蘑菇。") not in await bot.service.store.training_pairs()
    )
    again = await ask(bot, bot.user, HESITANT_QUESTION)
    assert again.text.startswith("我不太确定")

    # /review shows the pairing already filled in; one press approves it.
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert (
        HESITANT_QUESTION in item.text
        and "Askers chose (did you mean): “我喜欢吃蘑菇。” ×1" in item.text
    )
    await bot.tg.press_button(bot.admin, item, text="👆 我喜欢吃蘑菇。 (chosen ×1)")
    approved = await bot.tg.next_reply(bot.admin)
    assert "Approved" in approved.text and "我喜欢吃蘑菇。" in approved.text
    assert QAPair(HESITANT_QUESTION, "我喜欢吃蘑菇。") in await bot.service.store.training_pairs()
    assert (await ask(bot, bot.user, HESITANT_QUESTION)).text == "我喜欢吃蘑菇。"


async def test_none_of_these_gives_the_fallback_and_keeps_the_question_for_review(
    telegram_bot: TelegramBot, hesitating_model: list[Suggestion]
) -> None:
    bot = telegram_bot
    question = "what is the airspeed velocity of an unladen swallow"
    offer = await ask(bot, bot.admin, question)
    assert offer.text == "I'm not sure I understood. Did you mean one of these?"
    await bot.tg.press_button(bot.admin, offer, text="None of these")
    await bot.tg.wait_for(lambda c: c.method == "editMessageText")
    assert offer.text.startswith("Sorry, I don't know") and not offer.buttons

    [row] = await exported_rows(bot)
    assert row["answer"] == offer.text and row["answer_id"] == "" and row["fallback"] == "true"
    [item] = await bot.service.review_queue()
    assert item.question == question and item.reasons["none of these"] == 1 and not item.choices
    assert all(p.question != question for p in await bot.service.store.training_pairs())


async def test_forged_and_stale_presses_get_a_clear_answer(
    telegram_bot: TelegramBot, hesitating_model: list[Suggestion]
) -> None:
    bot = telegram_bot
    group = bot.tg.group(-100555, "Friends")
    offer = await ask(bot, bot.user, HESITANT_QUESTION, chat=group)
    [choice_data, _, none_data] = [b["callback_data"] for b in offer.buttons]
    exchange_id = int(choice_data.split(":")[1])

    def forged(data: str) -> BotMessage:
        """The offer as a modified client would show it: with a button of its own making."""
        keyboard = {"inline_keyboard": [[{"text": "forged", "callback_data": data}]]}
        return dataclasses.replace(offer, reply_markup=keyboard)

    # Someone else in the group: only the asker chooses.
    since = len(bot.tg.calls)
    await bot.tg.press_button(bot.admin, offer, text="你好")
    assert "Only the person who asked" in await alert_after(bot, since)
    for data in (
        f"dym:{exchange_id}:{'f' * 12}",  # an answer the model does not have
        f"dym:{exchange_id + 1000}:none",  # no such exchange
        "dym:123456789012345678901234:none",  # too large for any database
        "dym:1:<script>",  # malformed
        "fb:+:1:extra",  # no handler's pattern
    ):
        since = len(bot.tg.calls)
        await bot.tg.press_button(bot.user, forged(data), text="forged")
        assert await alert_after(bot, since) == messages.text("button_expired", "zh"), data
    assert offer.buttons and offer.text.startswith("我不太确定")  # nothing changed

    await bot.tg.press_button(bot.user, offer, text="你好")
    await bot.tg.wait_for(lambda c: c.method == "editMessageText")
    assert offer.text == "你好！"
    # A second press on the old buttons (a stale client) changes nothing.
    since = len(bot.tg.calls)
    await bot.tg.press_button(bot.user, forged(none_data), text="forged")
    assert await alert_after(bot, since) == messages.text("choice_already_answered", "zh")
    [row] = await exported_rows(bot)
    assert row["answer"] == "你好！" and row["fallback"] == "false"
    # None of this was an error.
    assert not [c for c in bot.tg.calls if "went wrong" in str(c.params.get("text", ""))]


async def test_the_console_shows_suggestions_as_text_one_line_each_question_when_piped(
    service, hesitating_model: list[Suggestion]
) -> None:
    stdout = io.StringIO()
    await run_console(service, io.StringIO(f"你好\n{HESITANT_QUESTION}\n"), stdout)
    assert stdout.getvalue().splitlines() == [
        "你好！",
        "我不太确定你的意思。你想问的是下面哪一个？ 1. 你好 2. 你喜欢什么样的食物？",
    ]
