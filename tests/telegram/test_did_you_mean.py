""" "Did you mean …?" through the real Application and the fake Bot API: the buttons, a press
that gives the answer and fills the review item, "none of these", forged or stale presses, and
the console."""

from __future__ import annotations

import csv
import dataclasses
import io

import pytest

from bot import messages
from bot.app.app import BUNDLED_PAIRS, BUNDLED_PARAPHRASES, App
from bot.console import run_console
from bot.telegram.common import quoted, shortened
from bot.telegram.learning import BUTTON_TEXT_CHARS
from model.datasets import QAPair, answer_key, read_pairs
from model.predictor import Prediction, Suggestion
from tests.conftest import TelegramBot
from tests.fake_telegram import BotMessage


def candidate_questions() -> list[str]:
    """Questions a model trained on the bundled set was never taught: the bundled paraphrases,
    and questions that ask two bundled things at once."""
    wordings = {p.answer: p.question for p in read_pairs(BUNDLED_PAIRS) if p.answer}.values()
    one_each = list(wordings)
    mixed = [f"{a} {b}" for a, b in zip(one_each, one_each[1:], strict=False)]
    return [p.question for p in read_pairs(BUNDLED_PARAPHRASES)] + mixed


async def hesitant_question(app: App) -> tuple[str, Prediction]:
    """The first candidate question on which the bundled model hesitates (offers buttons)."""
    questions = candidate_questions()
    model = app.models.current
    assert model is not None
    predictions = await app.models.predict_batch(model, questions)
    for question, prediction in zip(questions, predictions, strict=True):
        if prediction.suggestions:
            return question, prediction
    pytest.fail(f"the bundled model offers suggestions on none of {len(questions)} questions")


async def ask(bot: TelegramBot, user, text: str) -> BotMessage:
    await bot.tg.send_text(user, text)
    return await bot.tg.next_reply(user)


async def alert_after(bot: TelegramBot, since: int) -> str:
    call = await bot.tg.wait_for(lambda c: c.method == "answerCallbackQuery", since=since)
    assert call.params.get("show_alert") is True
    return call.params["text"]


async def exported_rows(bot: TelegramBot) -> list[dict[str, str]]:
    await bot.tg.send_command(bot.admin, "/export")
    document = (await bot.tg.next_reply(bot.admin)).document
    return list(csv.DictReader(io.StringIO(document.content.decode("utf-8"), newline="")))


def button_text(wording: str) -> str:
    return shortened(wording, BUTTON_TEXT_CHARS)


async def test_a_press_gives_the_answer_and_fills_the_review_item(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    question, prediction = await hesitant_question(bot.app)
    lang = messages.language_of(question)
    offer = await ask(bot, bot.user, question)
    assert offer.text == messages.text("did_you_mean", lang)
    assert [b["text"] for b in offer.buttons] == [
        *(button_text(s.wording) for s in prediction.suggestions),
        messages.text("none_of_these", lang),
    ]
    assert all(len(b["callback_data"].encode()) <= 64 for b in offer.buttons)

    chosen = prediction.suggestions[-1]
    await bot.tg.press_button(bot.user, offer, text=button_text(chosen.wording))
    await bot.tg.wait_for(lambda c: c.method == "editMessageText")
    assert offer.text == chosen.answer  # the question's message now holds the answer
    assert [b["text"] for b in offer.buttons] == ["👍", "👎"]  # rated like any answer

    # Logged with the exchange: exports and /stats show what the user got.
    [row] = await exported_rows(bot)
    assert (row["question"], row["answer"]) == (question, chosen.answer)
    assert row["answer_id"] == chosen.answer_id and row["fallback"] == "false"
    await bot.tg.send_command(bot.admin, "/stats")
    stats = (await bot.tg.next_reply(bot.admin)).caption
    assert "Fallback rate: 0.0%" in stats
    assert "“Did you mean” presses: 1 chose an answer, 0 none of these" in stats

    # A suggestion, not training data: the model and the exact-match table know nothing new.
    pairing = QAPair(question, chosen.answer)
    assert pairing not in await bot.app.store.training_pairs()
    assert (await ask(bot, bot.user, question)).text == messages.text("did_you_mean", lang)

    # /review shows the pairing already filled in; one press approves it.
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert question in item.text
    assert f"Askers chose (did you mean): {quoted(chosen.answer)} ×1" in item.text
    await bot.tg.press_button(
        bot.admin, item, text=f"👆 {shortened(chosen.answer, BUTTON_TEXT_CHARS)} (chosen ×1)"
    )
    assert "Approved" in (await bot.tg.next_reply(bot.admin)).text
    assert pairing in await bot.app.store.training_pairs()
    assert (await ask(bot, bot.user, question)).text == chosen.answer


async def test_none_of_these_gives_the_fallback_and_keeps_the_question_for_review(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    question, _ = await hesitant_question(bot.app)
    lang = messages.language_of(question)
    offer = await ask(bot, bot.admin, question)
    await bot.tg.press_button(bot.admin, offer, text=messages.text("none_of_these", lang))
    await bot.tg.wait_for(lambda c: c.method == "editMessageText")
    assert offer.text == messages.text("fallback", lang) and not offer.buttons

    [row] = await exported_rows(bot)
    assert row["answer"] == offer.text and row["answer_id"] == "" and row["fallback"] == "true"
    [item] = await bot.app.learning.review_queue()
    assert item.question == question and item.reasons["none of these"] == 1 and not item.choices
    assert all(p.question != question for p in await bot.app.store.training_pairs())


async def test_forged_and_stale_presses_get_a_clear_answer(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    question, prediction = await hesitant_question(bot.app)
    group = bot.tg.group(-100555, "Friends")
    await bot.tg.send_command(bot.user, f"/ask {question}", chat=group)  # addressed to the bot
    offer = await bot.tg.next_reply(group)
    first_data, none_data = offer.buttons[0]["callback_data"], offer.buttons[-1]["callback_data"]
    exchange_id = int(first_data.split(":")[1])

    def forged(data: str) -> BotMessage:
        """The offer as a modified client would show it: with a button of its own making."""
        keyboard = {"inline_keyboard": [[{"text": "forged", "callback_data": data}]]}
        return dataclasses.replace(offer, reply_markup=keyboard)

    # Someone else in the group: only the asker chooses (the admin's language is English).
    since = len(bot.tg.calls)
    await bot.tg.press_button(bot.admin, offer, callback_data=first_data)
    assert await alert_after(bot, since) == messages.text("choice_not_yours", "en")
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
    lang = messages.language_of(question)
    assert offer.buttons and offer.text == messages.text("did_you_mean", lang)  # unchanged

    await bot.tg.press_button(bot.user, offer, callback_data=first_data)
    await bot.tg.wait_for(lambda c: c.method == "editMessageText")
    assert offer.text == prediction.suggestions[0].answer
    # A second press on the old buttons (a stale client) changes nothing.
    since = len(bot.tg.calls)
    await bot.tg.press_button(bot.user, forged(none_data), text="forged")
    assert await alert_after(bot, since) == messages.text("choice_already_answered", "zh")
    [row] = await exported_rows(bot)
    assert row["answer"] == prediction.suggestions[0].answer and row["fallback"] == "false"
    # None of this was an error.
    assert not [c for c in bot.tg.calls if "went wrong" in str(c.params.get("text", ""))]


async def test_the_console_shows_suggestions_as_text_one_line_each_question_when_piped(
    app: App,
) -> None:
    question, prediction = await hesitant_question(app)
    stdout = io.StringIO()
    await run_console(app, io.StringIO(f"你好\n{question}\n"), stdout)
    numbered = [f"{n}. {s.wording}" for n, s in enumerate(prediction.suggestions, start=1)]
    assert stdout.getvalue().splitlines() == [
        "你好！",
        " ".join([messages.text("did_you_mean", messages.language_of(question)), *numbered]),
    ]


PARKING = "Parking: the garage on Harbor Road, ¥10 an hour."
MEMBERSHIP = "A month costs ¥1,200 for a hot desk."
BILINGUAL = [
    ("is there parking", PARKING), ("停车怎么收费", PARKING), ("车停哪里", PARKING),
    ("how much is a monthly membership", MEMBERSHIP), ("会员价格", MEMBERSHIP),
]  # fmt: skip


async def test_buttons_show_wordings_in_the_askers_language(
    telegram_bot: TelegramBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An answer asked in both languages has one best-known wording: a Chinese user who asked
    "停车多少钱" was offered "is there parking" although "停车怎么收费" is in the training set."""
    bot = telegram_bot
    await bot.app.store.add_pairs([QAPair(q, a) for q, a in BILINGUAL], source="imported")
    await bot.app.known_answers.reload(bot.app.store)
    # The model's best-known wordings: one English, one Chinese.
    by_model = {PARKING: "is there parking", MEMBERSHIP: "会员价格"}
    suggestions = tuple(Suggestion(answer_key(a), a, wording) for a, wording in by_model.items())
    hesitant = Prediction(None, None, 0.4, True, (), suggestions)

    async def predict(model: object, text: str) -> Prediction:
        return hesitant

    monkeypatch.setattr(bot.app.models.batcher, "predict", predict)

    offer = await ask(bot, bot.user, "停车多少钱")
    assert [b["text"] for b in offer.buttons] == [
        "停车怎么收费", "会员价格", messages.text("none_of_these", "zh"),
    ]  # fmt: skip

    offer = await ask(bot, bot.user, "where can I leave my car")
    assert [b["text"] for b in offer.buttons][:2] == [
        "is there parking", "how much is a monthly membership",
    ]  # fmt: skip
