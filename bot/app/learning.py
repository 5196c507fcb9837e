"""The learning loop: /teach, feedback on answers, the review queue's decisions, and usage
statistics.

Nothing a user says becomes training data by itself: a pair joins the training set only when an
admin teaches it or approves a review item."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.app.known_answers import KnownAnswers
from bot.app.review_queue import ReviewItem, ReviewKind, ReviewQueue, ReviewQueues
from bot.app.text import clean_question
from bot.messages import CatalogError
from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.learning_records import LearningRecords
from bot.storage.store import Store
from model.datasets import QAPair
from model.predictor import FEATURES_FILE
from model.text import match_key

if TYPE_CHECKING:
    from bot.app.models import ModelLifecycle


class TeachRefusedError(CatalogError, ValueError):
    """A pair /teach cannot add (its reason is a key of bot.messages)."""


@dataclass(frozen=True)
class ConfirmedApproval:
    """A CONFIRMED group approved: its questions, the answer, and whether any was undecided."""

    questions: list[str]
    answer: str
    approved: bool


class LearningLoop:
    """What admins and users do to teach the bot: /teach, ratings and suggestions, /review
    (grouped in the live model's feature space), its decisions, and /stats. The one road for
    the Telegram commands and `qabot review`."""

    def __init__(
        self,
        store: Store,
        records: LearningRecords,
        queues: ReviewQueues,
        models: ModelLifecycle,
        known: KnownAnswers,
        writer: ExchangeWriter,
    ) -> None:
        self.store = store
        self.records = records
        self.queues = queues
        self.models = models
        self.known = known
        self.writer = writer

    async def teach(self, question: str, answer: str) -> bool:
        """Add a pair to the training set; it is answered at once. False if it was known;
        TeachRefusedError for a pair that cannot be taught."""
        question, answer = clean_question(question), clean_question(answer)
        if not answer:
            raise TeachRefusedError("teach_empty_answer")
        if not match_key(question):
            # It would match every message without letters or digits ("?", "...", "👍").
            raise TeachRefusedError("teach_question_without_key")
        added = await self.store.add_pairs([QAPair(question, answer)], source="taught")
        self.known.remember([question], answer)
        return added > 0

    async def rate(
        self, exchange_id: int, user_id: int | None, rating: int, *, chat_id: int
    ) -> bool:
        """A 👍 (+1) or 👎 (-1) on an answer (see LearningRecords.record_feedback)."""
        return await self.records.record_feedback(exchange_id, user_id, rating, chat_id=chat_id)

    async def suggest(self, exchange_id: int, user_id: int | None, text: str) -> bool:
        """A user's suggested answer after their 👎: it waits in the review queue."""
        return await self.records.add_suggestion(exchange_id, user_id, text)

    async def review_queue(self) -> ReviewQueue:
        """The review queue, similar wordings grouped in the live model's feature space."""
        model = self.models.current
        if model is None:
            return await self.queues.build(self.known.keys())
        return await self.queues.build(self.known.keys(), model.path / FEATURES_FILE, model.path)

    async def review_group(self, exchange_id: int) -> list[str]:
        """The wordings of the review group holding this exchange (just its own question when
        it is no longer queued); empty when the exchange is unknown."""
        item = (await self.review_queue()).group_of(exchange_id)
        if item is not None:
            return list(item.wordings.values())
        question = await self.records.exchange_question(exchange_id)
        return [question] if question is not None else []

    async def candidate_answers(self, item: ReviewItem) -> list[tuple[str, str, float]]:
        """The live model's best guesses for a review item: (answer id, answer, probability),
        best first."""
        model = self.models.current
        if model is None:
            return []
        [prediction] = await self.models.predict_batch(model, [item.question])
        return list(prediction.candidates)

    async def answer_by_id(self, answer_id: str) -> str | None:
        """The text of one of the live model's answers."""
        model = self.models.current
        return model.answers().get(answer_id) if model is not None else None

    async def chosen_answer(self, choice_id: int) -> str | None:
        """The answer an asker chose on a "did you mean" button."""
        return await self.records.chosen_answer(choice_id)

    async def suggested_answer(self, feedback_id: int) -> str | None:
        """The answer a user suggested after a 👎."""
        return await self.records.suggestion(feedback_id)

    async def person_answer(self, exchange_id: int) -> str | None:
        """The answer a support member gave in a hand-off's exchange."""
        return await self.records.person_answer(exchange_id)

    async def approve(self, questions: list[str], answer: str, admin_id: int | None) -> bool:
        """Approve a review group: its wordings join the training set, answered at once."""
        approved = await self.records.decide(questions, answer=answer, decided_by=admin_id)
        if approved:
            self.known.remember(questions, answer)
        return approved

    async def approve_confirmed(
        self, exchange_id: int, admin_id: int | None
    ) -> ConfirmedApproval | None:
        """Approve the CONFIRMED group holding this exchange (its item's exchange_id, as shown)
        with the answer users confirmed: all its questions confirmed by then join the training
        set in one decision (those confirmed since wait for the next). None when no such group
        holds it (decided already, or a 👎 came since)."""
        item = (await self.review_queue()).group_of(exchange_id)
        if item is None or item.kind != ReviewKind.CONFIRMED or not item.answer:
            return None
        questions = [
            wording
            for key, wording in item.wordings.items()
            if item.first_confirmed[key] <= exchange_id
        ]
        approved = await self.approve(questions, item.answer, admin_id)
        return ConfirmedApproval(questions, item.answer, approved)

    async def mark_out_of_scope(self, questions: list[str], admin_id: int | None) -> bool:
        """A review group the bot should not answer: its wordings join the training set as
        out-of-scope rows; the next retraining teaches the model to fall back on them."""
        return await self.records.decide(
            questions, answer=None, decided_by=admin_id, out_of_scope=True
        )

    async def ignore(self, questions: list[str], admin_id: int | None) -> bool:
        """Leave a review group out of the queue without teaching anything."""
        return await self.records.decide(questions, answer=None, decided_by=admin_id)

    async def stats(self, pending_wait_seconds: float) -> dict[str, Any]:
        """Usage figures, once the exchanges still queued are written (raises
        ExchangesNotWrittenError, saying how many are not, when that takes longer)."""
        await self.writer.flush(pending_wait_seconds)
        return await self.records.stats()
