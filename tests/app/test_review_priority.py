"""/review's order (what a decision is expected to teach, not only how often a question was
asked) and its 👍 groups: questions users confirmed an answer for, approved in one press in
Telegram or with `qabot review --approve`, leaving the same store behind."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from bot.app.app import BUNDLED_PAIRS, BUNDLED_PARAPHRASES, App
from bot.app.review_queue import ReviewKind
from bot.cli import main
from bot.storage.learning_records import review_key
from bot.storage.store import ChatInfo, UserInfo
from bot.storage.tables import QAPairRow, ReviewDecision
from model.datasets import QAPair, answer_key, read_pairs
from tests.conftest import TelegramBot
from tests.factories import record


def by_margin(app: App) -> list[str]:
    """New wordings (bundled questions with a word added), the live model's surest last."""
    known = app.known_answers.keys()
    variants = [f"hey, {p.question}" for p in read_pairs(BUNDLED_PAIRS)]
    new = [q for q in variants if review_key(q) not in known]
    scores = margins(app, new)  # one batch: a model call per question took seconds
    return [new[i] for i in sorted(range(len(new)), key=scores.__getitem__)]


async def log_queue(app: App) -> dict[str, str]:
    """Four groups in the log, by role (the 👎 pressed through the learning loop):
    - confident: asked three times, answered with confidence 0.49 (the model was nearly sure)
      by its best-known answer; one the live model is sure of. It leads a queue ordered by
      frequency alone.
    - rejected: asked twice, answered with confidence 0.9 (the live model's answer), and both
      answers rated 👎.
    - uncertain: asked twice, the fallback with confidence 0.02; the live model is unsure too.
    - rare: asked once, answered with confidence 0.45; one the live model is sure of."""
    assert app.models.current is not None
    model = app.models.current
    ordered = by_margin(app)
    # The surest three, of three different answers (or /review would group them).
    predictions = model.predict_batch(ordered)
    # The surest of each answer last.
    surest = {p.answer_id: q for p, q in zip(predictions, ordered, strict=True)}
    confident, rejected, rare = sorted(surest.values(), key=lambda q: -margin(app, q))[:3]
    groups = {"confident": confident, "rejected": rejected, "rare": rare, "uncertain": ordered[0]}
    assert margin(app, groups["uncertain"]) < 0.3 and margin(app, groups["rare"]) > 0.9
    pairs = await app.store.training_pairs()
    [(best_known, _)] = Counter(answer_key(p.answer) for p in pairs if p.answer).most_common(1)
    [(live_answer, *_), *_] = model.predict(groups["rejected"]).candidates
    records = [
        *(
            record(question=groups["confident"], confidence=0.49, answer_id=best_known)
            for _ in range(3)
        ),
        *(
            record(question=groups["rejected"], confidence=0.9, answer_id=live_answer)
            for _ in range(2)
        ),
        *(
            record(question=groups["uncertain"], fallback=True, confidence=0.02, answer_id=None)
            for _ in range(2)
        ),
        record(question=groups["rare"], confidence=0.45, answer_id=best_known),
    ]
    ids = await app.store.log_exchanges(records)
    for exchange_id, logged in zip(ids, records, strict=True):
        if logged.question == groups["rejected"]:
            assert await app.learning.rate(exchange_id, 1, -1, chat_id=1)
    return groups


async def test_uncertain_and_rejected_groups_come_before_a_more_asked_confident_one(
    telegram_bot: TelegramBot,
) -> None:
    bot = telegram_bot
    groups = await log_queue(bot.app)
    # By what the log stored with each reply (no model to ask)...
    stored = await bot.app.learning.queues.build(bot.app.known_answers.keys())
    assert [item.question for item in stored] == [
        groups["rejected"],
        groups["uncertain"],
        groups["confident"],
        groups["rare"],
    ]
    assert [item.count for item in stored] == [2, 2, 3, 1]
    assert stored[0].priority > stored[1].priority > stored[2].priority > stored[3].priority
    # ... and as /review orders it, with the live model's predictions.
    queue = await bot.app.learning.review_queue()
    first, second = {groups["rejected"], groups["uncertain"]}, {groups["confident"], groups["rare"]}
    assert {item.question for item in queue[:2]} == first
    assert {item.question for item in queue[2:]} == second
    # /review shows the first; deciding it brings the next.
    await bot.tg.send_command(bot.admin, "/review")
    item = await bot.tg.next_reply(bot.admin)
    assert queue[0].question in item.text and "Asked 2×" in item.text
    await bot.tg.press_button(bot.admin, item, text="🙅 Out of scope")
    assert "Out of scope" in (await bot.tg.next_reply(bot.admin)).text
    await bot.tg.send_command(bot.admin, "/review")
    assert queue[1].question in (await bot.tg.next_reply(bot.admin)).text


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
    predictions = app.models.current.predict_batch([pair.question for pair in candidates])
    for pair, prediction in zip(candidates, predictions, strict=True):
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


def margin(app: App, question: str) -> float:
    """The live model's margin between its two likeliest answers for the question."""
    [one] = margins(app, [question])
    return one


def margins(app: App, questions: list[str]) -> list[float]:
    """margin() of each question, computed in one batch."""
    model = app.models.current
    assert model is not None
    probabilities = model.probabilities(questions)
    if model.oos_class is not None:
        probabilities = np.delete(probabilities, model.oos_class, axis=1)
    ranked = np.sort(probabilities, axis=1)
    return [float(m) for m in ranked[:, -1] - ranked[:, -2]]


async def test_the_live_model_scores_the_head_of_the_queue_again(app: App) -> None:
    """A question an older model fell back on twice, which the live model now knows, comes after
    one asked once that the live model is unsure of."""
    ordered = by_margin(app)
    unsure, known_now = ordered[0], ordered[-1]
    assert margin(app, known_now) > 0.7 and margin(app, unsure) < 0.3
    await app.store.log_exchanges(
        [
            *(
                record(question=known_now, fallback=True, confidence=0.0, answer_id=None)
                for _ in range(2)
            ),
            record(question=unsure, fallback=True, confidence=0.3, answer_id=None),
        ]
    )
    # By the log alone, the question asked twice with no confidence at all comes first.
    stored = await app.learning.queues.build(app.known_answers.keys())
    assert [item.question for item in stored] == [known_now, unsure]
    live = await app.learning.review_queue()
    assert [item.question for item in live] == [unsure, known_now]
    assert live[0].priority > live[1].priority
