"""The learning loop through the real Application and the fake Bot API: ratings, review,
gated retraining, model versions and statistics."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest

from bot import messages
from bot.telegram.learning import prompt_of
from model.datasets import QAPair
from model.registry import new_version_name
from tests.conftest import ADMIN_ID, TelegramBot


async def ask(bot: TelegramBot, user, text: str):
    await bot.tg.send_text(user, text)
    return await bot.tg.next_reply(user)


async def test_answers_carry_rating_buttons_and_a_press_is_stored(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    answer = await ask(bot, bot.user, "你好")
    assert [b["text"] for b in answer.buttons] == ["👍", "👎"]
    assert all(len(b["callback_data"].encode()) <= 64 for b in answer.buttons)
    await bot.tg.press_button(bot.user, answer, text="👍")
    await bot.tg.wait_for(lambda c: c.method == "answerCallbackQuery")
    await bot.tg.wait_for(lambda c: c.method == "editMessageReplyMarkup")
    assert answer.reply_markup is None  # buttons removed
    [rated] = await bot.app.learning.records.rated_exchanges()
    assert rated.rating == 1 and rated.question == "你好"
    # Fallbacks carry no buttons. Gibberish, far from every bundled question: whatever the
    # model, it falls back on it.
    question = "zxqvbn wplorft qwertyuiop"
    fallback = await ask(bot, bot.user, question)
    assert fallback.text == messages.text("fallback", messages.language_of(question))
    assert not fallback.buttons


async def test_thumbs_down_with_a_suggestion_reaches_review(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    question = "早上好呀"
    answer = await ask(bot, bot.user, question)
    await bot.tg.press_button(bot.user, answer, text="👎")
    prompt = await bot.tg.next_reply(bot.user)
    # The user's Telegram language is Chinese: so are the prompt and the thanks.
    assert prompt_of(prompt.text or "") is not None and (prompt.reply_markup or {})["force_reply"]
    await bot.tg.send_text(bot.user, "早上好！今天也要加油。", reply_to=prompt)
    assert (await bot.tg.next_reply(bot.user)).text == messages.text("suggestion_thanks", "zh")
    # Nothing joined the training set by itself.
    assert QAPair(question, "早上好！今天也要加油。") not in await bot.app.store.training_pairs()

    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert question in item.text and "👎 ×1" in item.text and "早上好！今天也要加油。" in item.text
    await bot.tg.press_button(bot.admin, item, text="💡 早上好！今天也要加油。")
    assert "Approved" in (await bot.tg.next_reply(bot.admin)).text
    assert QAPair(question, "早上好！今天也要加油。") in await bot.app.store.training_pairs()
    # Answered at once, before any retraining; and the item left the queue.
    assert (await ask(bot, bot.user, question)).text == "早上好！今天也要加油。"
    await bot.tg.send_command(bot.admin, "/review")
    assert question not in (await bot.tg.next_reply(bot.admin)).text


async def test_review_write_an_answer_and_ignore(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    for _ in range(2):
        await ask(bot, bot.user, "苹果股价多少")
    await ask(bot, bot.user, "zxcvbnm qwerty")
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert "苹果股价多少" in item.text and "Asked 2×" in item.text  # most frequent first
    await bot.tg.press_button(bot.admin, item, text="✍️ Write an answer")
    prompt = await bot.tg.next_reply(bot.admin)
    await bot.tg.send_text(bot.admin, "我不提供股价信息。", reply_to=prompt)
    assert "Approved" in (await bot.tg.next_reply(bot.admin)).text
    assert (await ask(bot, bot.user, "苹果股价多少？")).text == "我不提供股价信息。"

    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert "zxcvbnm qwerty" in item.text
    await bot.tg.press_button(bot.admin, item, text="🚫 Ignore")
    assert "Ignored" in (await bot.tg.next_reply(bot.admin)).text
    await bot.tg.send_command(bot.admin, "/review")
    assert "empty" in (await bot.tg.next_reply(bot.admin)).text


async def test_a_user_reply_cannot_answer_a_review_item(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await ask(bot, bot.user, "苹果股价多少")
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    await bot.tg.press_button(bot.admin, item, text="✍️ Write an answer")
    prompt = await bot.tg.next_reply(bot.admin)
    await bot.tg.send_text(bot.user, "free pizza", reply_to=prompt)  # not an admin
    await bot.tg.next_reply(bot.user)
    assert QAPair("苹果股价多少", "free pizza") not in await bot.app.store.training_pairs()


async def test_models_and_rollback(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    registry = bot.app.models.registry
    first = registry.current_version()
    assert first is not None
    second = new_version_name()
    shutil.copytree(registry.path(first), registry.path(second))
    meta_file = registry.path(second) / "meta.json"
    meta_file.write_text(json.dumps({**json.loads(meta_file.read_text()), "version": second}))
    await bot.app.models.promote(second)
    assert bot.app.models.current.version == second

    await bot.tg.send_command(bot.admin, "/models")
    listing = (await bot.tg.next_reply(bot.admin)).text
    assert f"{second} (live)" in listing and first in listing
    await bot.tg.send_command(bot.admin, "/rollback")
    assert first in (await bot.tg.next_reply(bot.admin)).text
    assert bot.app.models.current.version == first == registry.current_version()


async def test_stats_with_a_chart(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    answer = await ask(bot, bot.user, "你好")
    await bot.tg.press_button(bot.user, answer, text="👍")
    await ask(bot, bot.user, "帮我订一张去上海的机票")
    await ask(bot, bot.admin, "帮我订一张去上海的机票")
    await bot.tg.wait_for(lambda c: c.method == "editMessageReplyMarkup")
    await bot.tg.send_command(bot.admin, "/stats")
    report = await bot.tg.next_reply(bot.admin)
    assert report.photo.startswith(b"\x89PNG")
    assert "Questions: 3 from 2 users" in report.caption
    assert "Fallback rate: 66.7%" in report.caption
    assert "👍 1 / 👎 0" in report.caption and "2× “帮我订一张去上海的机票”" in report.caption
    # The chart's labels stay English (no CJK font ships); its caption is the admin's language.
    chinese_admin = bot.tg.user(ADMIN_ID, "Ada", username="ada", language_code="zh")
    await bot.tg.send_command(chinese_admin, "/stats")
    chinese = await bot.tg.next_reply(chinese_admin)
    assert chinese.photo.startswith(b"\x89PNG")
    assert chinese.caption.splitlines()[:2] == [
        "问题：3 个，来自 2 位用户",
        "未能回答的比例：66.7%",
    ]
    assert "最常见的未回答问题：" in chinese.caption and "Questions" not in chinese.caption


async def test_pairs_sends_the_training_set(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await bot.tg.send_command(bot.admin, "/pairs")
    document = (await bot.tg.next_reply(bot.admin)).document
    rows = list(csv.DictReader(io.StringIO(document.content.decode("utf-8"), newline="")))
    assert [QAPair(r["question"], r["answer"]) for r in rows] == (
        await bot.app.store.training_pairs()
    )


async def test_export_filters(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await ask(bot, bot.user, "你好")
    await bot.tg.send_command(bot.admin, "/export jsonl 7d")
    document = (await bot.tg.next_reply(bot.admin)).document
    assert document.filename.endswith(".jsonl") and document.content.count(b"\n") == 1
    await bot.tg.send_command(bot.admin, "/export csv 2999-01-01")
    assert (await bot.tg.next_reply(bot.admin)).document.content.count(b"\n") == 1  # header
    await bot.tg.send_command(bot.admin, "/export sometime")
    assert "Usage" in (await bot.tg.next_reply(bot.admin)).text


async def test_a_crashed_training_worker_leaves_everything_intact(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    version, pairs = bot.app.models.current.version, await bot.app.store.count_pairs()
    bot.app.models.trainer.worker_module = "tests.crashing_trainer"
    await bot.tg.send_command(bot.admin, "/retrain")
    await bot.tg.next_reply(bot.admin)
    failure = await bot.tg.next_reply(bot.admin, timeout=600)
    assert "Training failed; the current model keeps serving" in failure.text
    assert bot.app.models.current.version == version == bot.app.models.registry.current_version()
    assert await bot.app.store.count_pairs() == pairs
    assert (await ask(bot, bot.user, "你好")).text == "你好！"
    assert not bot.app.models.trainer.busy


@pytest.mark.slow
async def test_approved_item_is_learned_and_a_regressing_candidate_is_not_promoted(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    question, answer = "qwertyuiop asdfgh", "That looks like a keyboard smash! 😄"
    assert (await ask(bot, bot.user, question)).text.startswith("Sorry")
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert question in item.text
    await bot.tg.press_button(bot.admin, item, text="✍️ Write an answer")
    await bot.tg.send_text(bot.admin, answer, reply_to=await bot.tg.next_reply(bot.admin))
    assert "Approved" in (await bot.tg.next_reply(bot.admin)).text
    assert QAPair(question, answer) in await bot.app.store.training_pairs()

    await bot.tg.send_command(bot.admin, "/retrain")
    progress = await bot.tg.next_reply(bot.admin)
    done = await bot.tg.next_reply(bot.admin, timeout=600)
    assert "is live" in done.text, done.text
    # The data report heads the progress message; the progress line ends it.
    assert progress.edits >= 2 and progress.text.endswith("Training finished.")
    assert progress.text.startswith("data: "), progress.text
    edits = [c.params["text"] for c in bot.tg.calls if c.method == "editMessageText"]
    assert any("epoch" in text and "validation accuracy" in text for text in edits), edits
    # The model itself (not only the exact-match table) has learned the new answer.
    assert bot.app.models.current.predict(question).candidates[0][1] == answer
    assert (await ask(bot, bot.user, question)).text == answer
    learned_version = bot.app.models.current.version

    # Poison the training set: every question also mapped to spam. The candidate gets worse
    # on the held-out questions and is not promoted.
    pairs = await bot.app.store.training_pairs()
    await bot.app.store.add_pairs(
        [QAPair(p.question, "Buy crypto now!") for p in pairs], "imported"
    )
    await bot.tg.send_command(bot.admin, "/retrain")
    await bot.tg.next_reply(bot.admin)
    verdict = await bot.tg.next_reply(bot.admin, timeout=600)
    assert "NOT promoted" in verdict.text, verdict.text
    assert (
        bot.app.models.current.version
        == learned_version
        == bot.app.models.registry.current_version()
    )


async def test_review_buttons_are_refused_to_others(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await ask(bot, bot.user, "苹果股价多少")
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    await bot.tg.press_button(bot.user, item, text="🚫 Ignore")
    refusal = await bot.tg.wait_for(lambda c: c.method == "answerCallbackQuery")
    assert "只有管理员" in refusal.params["text"] and refusal.params["show_alert"] is True
    queue = await bot.app.learning.queues.build()
    assert [i.question for i in queue] == ["苹果股价多少"]


async def test_similar_questions_are_reviewed_together(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    wordings = ["how do I reset my router password", "how can I reset my router password?"]
    for wording in wordings:
        await ask(bot, bot.admin, wording)
    await ask(bot, bot.admin, "苹果股价多少")
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert "Asked 2×" in item.text and "Also asked as" in item.text
    await bot.tg.press_button(bot.admin, item, text="✍️ Write an answer")
    prompt = await bot.tg.next_reply(bot.admin)
    await bot.tg.send_text(bot.admin, "Hold the reset button for ten seconds.", reply_to=prompt)
    assert "Approved" in (await bot.tg.next_reply(bot.admin)).text
    pairs = await bot.app.store.training_pairs()
    for wording in wordings:
        assert QAPair(wording, "Hold the reset button for ten seconds.") in pairs
    [remaining] = await bot.app.learning.review_queue()
    assert remaining.question == "苹果股价多少"
