"""/review's order (what a decision is expected to teach, not only how often a question was
asked) and its 👍 groups: questions users confirmed an answer for, approved in one press in
Telegram or with `qabot review --approve`, leaving the same store behind."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app.app import BUNDLED_PAIRS, BUNDLED_PARAPHRASES, App
from bot.app.learning import ReviewKind, review_key
from bot.cli import main
from bot.storage.store import ChatInfo, UserInfo
from bot.storage.tables import QAPairRow, ReviewDecision
from model.datasets import QAPair, answer_key, read_pairs
from tests.conftest import TelegramBot
from tests.factories import record

# Three times, answered with confidence 0.49 (the model was nearly sure), by its best-known
# answer: it would lead a queue ordered by frequency alone.
CONFIDENT = "what time does the swimming pool open"
# Twice, answered with confidence 0.9, and both answers rated 👎.
REJECTED = "can I bring my dog to the office"
# Twice, the fallback with confidence 0.02: the model had no idea.
UNCERTAIN = "how do I renew my parking permit"
# Once, answered with confidence 0.45.
RARE = "is there a discount for students"


async def log_queue(app: App) -> None:
    """The four groups above, in the log; the 👎 pressed through the learning loop."""
    pairs = await app.store.training_pairs()
    [(best_known, _)] = Counter(answer_key(p.answer) for p in pairs if p.answer).most_common(1)
    records = [
        *(record(question=CONFIDENT, confidence=0.49, answer_id=best_known) for _ in range(3)),
        *(record(question=REJECTED, confidence=0.9) for _ in range(2)),
        *(
            record(question=UNCERTAIN, fallback=True, confidence=0.02, answer_id=None)
            for _ in range(2)
        ),
        record(question=RARE, confidence=0.45, answer_id=best_known),
    ]
    ids = await app.store.log_exchanges(records)
    for exchange_id, logged in zip(ids, records, strict=True):
        if logged.question == REJECTED:
            assert await app.learning.rate(exchange_id, 1, -1, chat_id=1)


async def test_uncertain_and_rejected_groups_come_before_a_more_asked_confident_one(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    await log_queue(bot.app)
    queue = await bot.app.learning.review_queue()
    assert [item.question for item in queue] == [REJECTED, UNCERTAIN, CONFIDENT, RARE]
    assert [item.count for item in queue] == [2, 2, 3, 1]
    assert queue[0].priority > queue[1].priority > queue[2].priority > queue[3].priority > 0
    # /review shows the first; deciding it brings the next.
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert REJECTED in item.text and "Asked 2×" in item.text and "👎 ×2" in item.text
    await bot.tg.press_button(bot.admin, item, text="🙅 Out of scope")
    assert "Out of scope" in (await bot.tg.next_reply(bot.admin)).text
    await bot.tg.send_command(bot.admin, "/review")
    assert UNCERTAIN in (await bot.tg.next_reply(bot.admin)).text


def confirmed_questions(app: App, count: int = 2) -> tuple[list[str], str]:
    """`count` new wordings (bundled paraphrases, or bundled questions with a word added)
    that the live model answers, rightly and at once, with the same answer: what users would
    rate 👍."""
    assert app.models.current is not None
    known = app.known_answers.keys()
    candidates = read_pairs(BUNDLED_PARAPHRASES) + [
        QAPair(f"{prefix}{pair.question}", pair.answer)
        for pair in read_pairs(BUNDLED_PAIRS)
        for prefix in ("hey, ", "请问")
    ]
    right: dict[str, list[str]] = {}
    for pair in candidates:
        prediction = app.models.current.predict(pair.question)
        answered = not prediction.fallback and not prediction.suggestions
        if answered and prediction.answer == pair.answer and review_key(pair.question) not in known:
            right.setdefault(pair.answer, []).append(pair.question)
    answer = next(a for a, questions in right.items() if len(questions) >= count)
    return right[answer][:count], answer


async def reviewed_state(app: App) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    """What review decisions left in the store: the reviewed pairs and the decisions."""
    async with app.store.session() as session:
        pairs = await session.execute(
            select(QAPairRow.question, QAPairRow.answer).where(QAPairRow.source == "reviewed")
        )
        decisions = await session.execute(
            select(ReviewDecision.question_key, ReviewDecision.status, ReviewDecision.answer)
        )
        return sorted((q, a) for q, a in pairs), sorted((k, s, a or "") for k, s, a in decisions)


def expected_state(
    questions: list[str], answer: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str]]]:
    return (
        sorted((q, answer) for q in questions),
        sorted((review_key(q), "approved", answer) for q in questions),
    )


async def ask_and_confirm(bot: TelegramBot, question: str, answer: str) -> None:
    await bot.tg.send_text(bot.user, question)
    reply = await bot.tg.next_reply(bot.user)
    assert reply.text == answer
    since = len(bot.tg.calls)
    await bot.tg.press_button(bot.user, reply, text="👍")
    await bot.tg.wait_for(lambda c: c.method == "answerCallbackQuery", since=since)


async def test_a_confirmed_group_is_approved_in_one_press(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    [*questions, later], answer = confirmed_questions(bot.app, 3)
    for question in questions:
        await ask_and_confirm(bot, question, answer)
    # Nothing a user does trains the model by itself.
    pairs = await bot.app.store.training_pairs()
    assert not any(QAPair(q, answer) in pairs for q in questions)

    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert f"users confirmed this answer with 👍 (wordings: {len(questions)})" in item.text
    assert all(question in item.text for question in questions)
    # Confirmed after the item was shown: not approved by this press, unseen.
    await ask_and_confirm(bot, later, answer)
    await bot.tg.press_button(bot.admin, item, text=f"✅ Approve all {len(questions)}")
    assert "Approved" in (await bot.tg.next_reply(bot.admin)).text
    pairs = await bot.app.store.training_pairs()
    assert all(QAPair(q, answer) in pairs for q in questions)
    assert await reviewed_state(bot.app) == expected_state(questions, answer)
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert "users confirmed this answer with 👍 (wordings: 1)" in item.text and later in item.text


async def test_qabot_review_approves_a_confirmed_group_as_telegram_does(
    app: App, home: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QABOT_HOME", str(home))
    monkeypatch.setenv("QABOT_DATABASE_URL", app.store.engine.url.render_as_string(False))
    questions, answer = confirmed_questions(app)
    for question in questions:
        reply = await app.answering.reply(ChatInfo(5), UserInfo(6), question)
        assert reply.exchange_id is not None
        assert await app.learning.rate(reply.exchange_id, 6, 1, chat_id=5)
    await app.writer.flush()
    [group] = await app.learning.review_queue()
    assert group.kind == ReviewKind.CONFIRMED and group.answer == answer

    assert await asyncio.to_thread(main, ["review"]) == 0
    listed = capsys.readouterr().out
    [item_id] = re.findall(r"^#(\d+) .* confirmed -> ", listed, re.MULTILINE)
    assert all(question in listed for question in questions)
    # Only a confirmed group is approved that way.
    assert await asyncio.to_thread(main, ["review", "--approve", "#999999"]) == 1
    assert "not a group of confirmed questions" in capsys.readouterr().err

    assert await asyncio.to_thread(main, ["review", "--approve", f"#{item_id}"]) == 0
    assert "approved: " in capsys.readouterr().err
    assert await reviewed_state(app) == expected_state(questions, answer)
    assert len(await app.learning.review_queue()) == 0
