"""The learning loop's queries: feedback on answers and "did you mean" choices, the rows the
review queue is built from, review decisions, rated exchanges for the promotion gate, and usage
statistics."""

from __future__ import annotations

import enum
import functools
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVarTuple

from sqlalchemy import Date, Row, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.store import Store
from bot.storage.tables import AnswerChoice, Exchange, Feedback, QAPairRow, ReviewDecision
from model.datasets import QAPair, answer_key
from model.text import match_key

# Answers less sure than this go to the review queue even when they were given.
REVIEW_BELOW_CONFIDENCE = 0.5
# How far back the review queue and the busiest-questions list look.
REVIEW_WINDOW = 20_000

# /stats: how many of the most asked unanswered texts are read to find the busiest questions.
BUSIEST_WORDINGS_READ = 200
# Rows read from the database at a time when a query returns many.
ROWS_PER_PART = 2_000
# The column types of a query, for helpers that keep them in the rows they return.
_Columns = TypeVarTuple("_Columns")


class ChoiceOutcome(enum.Enum):
    """What became of a press on a "did you mean" button."""

    ANSWERED = "answered"  # the chosen answer was given (or, for "none of these", the fallback)
    NOT_THE_ASKER = "not the asker"  # someone else pressed: only the asker chooses
    ALREADY_ANSWERED = "already answered"  # a second press, or the exchange had an answer
    UNKNOWN = "unknown"  # no such exchange in this chat (forged, or deleted by /forget)


@dataclass(frozen=True)
class RatedExchange:
    question: str
    answer_id: str
    rating: int  # +1: the answer was right; -1: it was wrong


class LearningRecords:
    """The learning loop's records in the store: feedback, "did you mean" choices, what the
    review queue is built from, review decisions and usage figures."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- feedback ---------------------------------------------------------------------------

    async def record_feedback(
        self, exchange_id: int, user_id: int | None, rating: int, *, chat_id: int
    ) -> bool:
        """Store a 👍 (+1) or 👎 (-1) with the exchange's answer and model version; a second
        press by the same user replaces the first. False when the exchange is unknown or not
        of `chat_id`, the chat the button was pressed in (clients can forge callback data)."""
        async with self.store.session.begin() as session:
            exchange = await session.get(Exchange, exchange_id)
            if exchange is None or exchange.chat_id != chat_id:
                return False
            existing = await session.scalar(
                select(Feedback).where(
                    Feedback.exchange_id == exchange_id, Feedback.user_id == user_id
                )
            )
            if existing is None:
                existing = Feedback(exchange_id=exchange_id, user_id=user_id)
                session.add(existing)
            existing.rating = rating
            existing.answer_id = exchange.answer_id
            existing.model_version = exchange.model_version
            return True

    async def record_choice(
        self,
        exchange_id: int,
        *,
        chat_id: int,
        user_id: int | None,
        answer_id: str | None,
        reply: str,
    ) -> ChoiceOutcome:
        """A "did you mean" press by `user_id` in `chat_id`: the exchange now records `reply`
        (the chosen answer, or the fallback when `answer_id` is None: "none of these"), and the
        choice waits in the review queue as a suggestion. Only the asker's first press on an
        exchange still answered with the fallback counts (clients can forge callback data)."""
        try:
            async with self.store.session.begin() as session:
                exchange = await session.get(Exchange, exchange_id)
                if exchange is None or exchange.chat_id != chat_id:
                    return ChoiceOutcome.UNKNOWN
                if exchange.user_id != user_id:
                    return ChoiceOutcome.NOT_THE_ASKER
                if not exchange.fallback or await session.scalar(
                    select(AnswerChoice.id).where(AnswerChoice.exchange_id == exchange_id)
                ):
                    return ChoiceOutcome.ALREADY_ANSWERED
                session.add(
                    AnswerChoice(
                        exchange_id=exchange_id,
                        user_id=user_id,
                        answer_id=answer_id,
                        answer=reply if answer_id else None,
                    )
                )
                exchange.answer = reply
                exchange.answer_id = answer_id
                exchange.fallback = answer_id is None
        except IntegrityError:  # a second press committed first
            return ChoiceOutcome.ALREADY_ANSWERED
        return ChoiceOutcome.ANSWERED

    async def chosen_answer(self, choice_id: int) -> str | None:
        async with self.store.session() as session:
            return await session.scalar(
                select(AnswerChoice.answer).where(AnswerChoice.id == choice_id)
            )

    async def add_suggestion(self, exchange_id: int, user_id: int | None, text: str) -> bool:
        """Attach a suggested answer to the user's own 👎 on the exchange; False (nothing
        stored) when this user did not rate it 👎."""
        async with self.store.session.begin() as session:
            feedback = await session.scalar(
                select(Feedback).where(
                    Feedback.exchange_id == exchange_id,
                    Feedback.user_id == user_id,
                    Feedback.rating < 0,
                )
            )
            if feedback is None:
                return False
            feedback.suggestion = text
            return True

    async def person_answer(self, exchange_id: int) -> str | None:
        """The answer a person gave in an exchange of a hand-off."""
        async with self.store.session() as session:
            return await session.scalar(
                select(Exchange.answer).where(
                    Exchange.id == exchange_id, Exchange.answered_by_person.is_(True)
                )
            )

    async def suggestion(self, feedback_id: int) -> str | None:
        async with self.store.session() as session:
            return await session.scalar(
                select(Feedback.suggestion).where(Feedback.id == feedback_id)
            )

    async def rated_exchanges(self) -> list[RatedExchange]:
        async with self.store.session() as session:
            rows = await session.execute(
                select(Exchange.question, Feedback.answer_id, Feedback.rating)
                .join(Exchange, Exchange.id == Feedback.exchange_id)
                .where(Feedback.answer_id.is_not(None))
            )
            # `a is not None` again for the type checker: the query already leaves None out.
            return [RatedExchange(q, a, r) for q, a, r in rows if a is not None]

    # -- review -----------------------------------------------------------------------------

    async def review_changes(self) -> tuple[Any, ...]:
        """What changes when the review queue does (ratings and suggestions change in place)."""
        async with self.store.session() as session:
            return (await session.execute(select(
                select(func.max(Exchange.id)).scalar_subquery(),
                select(func.count(Exchange.id)).scalar_subquery(),
                select(func.count(Exchange.id)).where(Exchange.answered_by_person.is_(True))
                .scalar_subquery(),
                select(func.count()).select_from(ReviewDecision).scalar_subquery(),
                select(func.count(AnswerChoice.id)).scalar_subquery(),
                select(func.count(Feedback.id)).scalar_subquery(),
                select(func.sum(Feedback.rating)).scalar_subquery(),
                select(func.sum(func.length(Feedback.suggestion))).scalar_subquery(),
                select(func.count(QAPairRow.id)).scalar_subquery(),
            ))).one()  # fmt: skip

    async def exchange_question(self, exchange_id: int) -> str | None:
        async with self.store.session() as session:
            return await session.scalar(select(Exchange.question).where(Exchange.id == exchange_id))

    async def decide(
        self,
        questions: Sequence[str],
        *,
        answer: str | None,
        decided_by: int | None,
        out_of_scope: bool = False,
    ) -> bool:
        """Approve (with an answer: each wording joins the training set as "reviewed"), mark out
        of scope (each wording joins it as "reviewed" with no answer: the bot should fall back
        on it), or ignore (neither) a review group's wordings. False if all were decided
        already."""
        status = "approved" if answer else "out_of_scope" if out_of_scope else "ignored"
        undecided = []
        # One transaction: a decision is recorded only with its pairs, or an approval that
        # fails would leave the queue without ever joining the training set.
        async with self.store.session.begin() as session:
            for question in questions:
                key = review_key(question)
                if await session.get(ReviewDecision, key) is not None:
                    continue
                undecided.append(question)
                session.add(
                    ReviewDecision(
                        question_key=key,
                        question=question,
                        status=status,
                        answer=answer,
                        decided_by=decided_by,
                    )
                )
            if status != "ignored" and undecided:
                await self.store.insert_pairs(
                    session, [QAPair(q, answer or "") for q in undecided], source="reviewed"
                )
        return bool(undecided)

    # -- statistics -------------------------------------------------------------------------

    async def stats(self, days: int = 30) -> dict[str, Any]:
        """Totals, fallback rate, 👍/👎 per model version, "did you mean" presses, busiest
        unanswered questions and the daily series behind the chart. Counted by the database:
        the bot reads a few rows, however many exchanges there are."""
        since = datetime.now(UTC) - timedelta(days=days)
        async with self.store.session() as session:
            total, users, fallbacks = (
                await session.execute(
                    select(
                        func.count(Exchange.id),
                        func.count(func.distinct(Exchange.user_id)),
                        func.count(Exchange.id).filter(Exchange.fallback.is_(True)),
                    ).where(Exchange.kind == "text")
                )
            ).one()
            ratings = (
                await session.execute(
                    select(
                        Feedback.model_version, Feedback.rating, func.count(Feedback.id)
                    ).group_by(Feedback.model_version, Feedback.rating)
                )
            ).all()
            chose_answer, chose_none = (
                await session.execute(
                    select(
                        func.count(AnswerChoice.id).filter(AnswerChoice.answer_id.is_not(None)),
                        func.count(AnswerChoice.id).filter(AnswerChoice.answer_id.is_(None)),
                    )
                )
            ).one()
            day = func.date(Exchange.created_at, type_=Date)  # stored in UTC
            daily = (
                await session.execute(
                    select(
                        day,
                        func.count(Exchange.id),
                        func.count(Exchange.id).filter(Exchange.fallback.is_(True)),
                    )
                    .where(Exchange.kind == "text", Exchange.created_at >= since)
                    .group_by(day)
                    .order_by(day)
                )
            ).all()
            latest_fallbacks = (
                select(Exchange.question)
                .where(Exchange.kind == "text", Exchange.fallback.is_(True))
                .order_by(Exchange.id.desc())
                .limit(REVIEW_WINDOW)
                .subquery()
            )
            asked = func.count()
            unanswered = (
                await session.execute(
                    select(latest_fallbacks.c.question, asked)
                    .group_by(latest_fallbacks.c.question)
                    .order_by(asked.desc(), latest_fallbacks.c.question)
                    .limit(BUSIEST_WORDINGS_READ)
                )
            ).all()

        by_version: dict[str, dict[str, int]] = defaultdict(lambda: {"up": 0, "down": 0})
        for version, rating, count in ratings:
            by_version[version or "-"]["up" if rating > 0 else "down"] += count
        # The most asked texts, counted together when they differ only in case, spaces or
        # punctuation.
        wordings: dict[str, str] = {}
        counts: Counter[str] = Counter()
        for question, n in unanswered:
            key = match_key(question)
            if key:
                wordings.setdefault(key, question)
                counts[key] += n
        return {
            "exchanges": total,
            "users": users,
            "fallback_rate": fallbacks / total if total else 0.0,
            "ratings": dict(by_version),
            # "did you mean" presses: an answer chosen, or none of them
            "choices": {"answer": chose_answer, "none": chose_none},
            "busiest_unanswered": [(wordings[k], n) for k, n in counts.most_common(5)],
            "daily": [(day, n, f) for day, n, f in daily],
        }


# No repr: asyncio.run (Python 3.11) formats its main task, result included, when it restores
# the SIGINT handler, and a repr of 40,000 rows took 0.1 s.
@dataclass(repr=False)
class QueueRows:
    """What the review queue is built from."""

    # id, question, fallback, confidence, answer_id; newest first
    exchanges: list[Row[*tuple[Any, ...]]]
    feedback: list[Row[*tuple[Any, ...]]]  # id, exchange_id, rating, suggestion
    choices: list[Row[*tuple[Any, ...]]]  # id, exchange_id, answer
    person_answers: dict[int, str]  # exchange id -> the answer a person gave
    decided: set[str]  # review keys with a decision
    # Answers rated 👍 by someone and 👎 by nobody: id, question, confidence, answer_id,
    # answer; newest first.
    confirmed: list[Row[*tuple[Any, ...]]] = field(default_factory=list)
    # How many wordings each answer has in the training set: answer id -> count.
    wordings_per_answer: dict[str, int] = field(default_factory=dict)


async def read_queue_rows(store: Store) -> QueueRows:
    """The rows of the review window and what refers to them."""
    async with store.session() as session:
        thumbs_down = select(Feedback.exchange_id).where(Feedback.rating < 0).scalar_subquery()
        thumbs_up = select(Feedback.exchange_id).where(Feedback.rating > 0).scalar_subquery()
        chosen = select(AnswerChoice.exchange_id).scalar_subquery()
        window = (
            select(
                Exchange.id, Exchange.question, Exchange.fallback, Exchange.confidence,
                Exchange.answer_id,
            )
            .where(Exchange.kind == "text")
            .where(
                or_(
                    Exchange.fallback.is_(True),
                    Exchange.confidence < REVIEW_BELOW_CONFIDENCE,
                    Exchange.id.in_(thumbs_down),
                    Exchange.id.in_(chosen),
                )
            )
            .order_by(Exchange.id.desc())
            .limit(REVIEW_WINDOW)
        )  # fmt: skip
        in_window = select(window.subquery().c.id)
        rows = await _all_rows(session, window)
        feedback = await _all_rows(
            session,
            select(Feedback.id, Feedback.exchange_id, Feedback.rating, Feedback.suggestion).where(
                Feedback.exchange_id.in_(in_window)
            ),
        )
        choices = await _all_rows(
            session,
            select(AnswerChoice.id, AnswerChoice.exchange_id, AnswerChoice.answer).where(
                AnswerChoice.exchange_id.in_(in_window)
            ),
        )
        person_answers = await _all_rows(
            session,
            select(Exchange.id, Exchange.answer).where(
                Exchange.answered_by_person.is_(True), Exchange.id.in_(in_window)
            ),
        )
        confirmed = await _all_rows(
            session,
            select(
                Exchange.id, Exchange.question, Exchange.confidence, Exchange.answer_id,
                Exchange.answer,
            )
            .where(
                Exchange.kind == "text",
                Exchange.fallback.is_(False),
                Exchange.answered_by_person.is_(False),
                Exchange.answer_id.is_not(None),
                Exchange.id.in_(thumbs_up),
                Exchange.id.not_in(thumbs_down),
            )
            .order_by(Exchange.id.desc())
            .limit(REVIEW_WINDOW),
        )  # fmt: skip
    person = dict(row._tuple() for row in person_answers)
    decided, wordings_per_answer = await read_decision_rows(store)
    return QueueRows(rows, feedback, choices, person, decided, confirmed, wordings_per_answer)


async def read_decision_rows(store: Store) -> tuple[set[str], dict[str, int]]:
    """What review decisions change: the review keys decided, and how many wordings each
    answer has in the training set (answer id -> count)."""
    async with store.session() as session:
        per_answer = await _all_rows(
            session,
            select(QAPairRow.answer, func.count(QAPairRow.id))
            .where(QAPairRow.answer != "")
            .group_by(QAPairRow.answer),
        )
        decided = set(row.question_key for row in await _all_rows(
            session, select(ReviewDecision.question_key)
        ))  # fmt: skip
    wordings_per_answer: Counter[str] = Counter()
    for answer, n in per_answer:  # answers the same up to NFC and spaces share an id
        wordings_per_answer[answer_key(answer)] += n
    return decided, dict(wordings_per_answer)


@functools.lru_cache(maxsize=4 * REVIEW_WINDOW)
def review_key(question: str) -> str:
    """The key that groups wordings in the review queue and names a decision on them
    (remembered: each build of the queue asks it for every question of the window)."""
    return match_key(question)[:255]


async def _all_rows(session: AsyncSession, query: Select[*_Columns]) -> list[Row[*_Columns]]:
    """The rows of a query, read in parts: the event loop turns rows into Python objects, a
    part at a time, between which it serves other chats."""
    rows: list[Row[*_Columns]] = []
    result = await session.stream(query.execution_options(yield_per=ROWS_PER_PART))
    async for part in result.partitions():
        rows += part
    return rows
