"""The one reply path for every front end (Telegram, console, tests), and the admin actions
behind the commands: teach, review, retrain (gated), rollback."""

from __future__ import annotations

import asyncio
import logging
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import messages
from bot.app.exports import EXPORTS_FOLDER, remove_stale_exports
from bot.app.learning import (
    ChoiceOutcome,
    Learning,
    ReviewItem,
    is_not_worse,
    score_model,
    scoring_questions,
    split_holdout,
)
from bot.serving.batching import PredictionBatcher
from bot.serving.model_process import ModelCallError, ModelProcess, ModelProcessError
from bot.serving.retraining import ProgressCallback, TrainedVersion, TrainingRunner
from bot.settings import Settings
from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.store import ChatInfo, ExchangeRecord, Store, UserInfo
from model.datasets import QAPair, answer_key
from model.predictor import AnswerModel, Prediction, Suggestion
from model.registry import ModelRegistry
from model.text import CharacterFilter, match_key

log = logging.getLogger(__name__)

# Telegram allows 4,096 characters; the model only needs the start of a long message.
MAX_MODEL_INPUT_CHARS = 1_000
# How often a replica looks for a model promoted elsewhere (by another replica or the CLI).
MODEL_WATCH_SECONDS = 2.0


@dataclass(frozen=True)
class RetrainOutcome:
    trained: TrainedVersion
    promoted: bool
    candidate: dict[str, Any]  # score_model figures of the new version
    live: dict[str, Any] | None  # the same figures of the model it was compared with


@dataclass(frozen=True)
class Reply:
    text: str
    answer_id: str | None
    confidence: float
    fallback: bool
    model_version: str | None
    latency_ms: float
    exchange_id: int | None
    lang: str = "en"  # the language the bot's own words are in
    # When the model hesitated: the answers to offer ("did you mean"); text asks which one.
    suggestions: tuple[Suggestion, ...] = ()


@dataclass(frozen=True)
class Choice:
    """A "did you mean" press: what became of it, and the reply to show when it was taken."""

    outcome: ChoiceOutcome
    text: str = ""
    answer_id: str | None = None


_NOT_IN_QUESTIONS = CharacterFilter(
    lambda ch: ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co")
)


def clean_question(text: str) -> str:
    """Drop control and format characters (keeping line breaks) and outer whitespace."""
    if text.isprintable():  # the usual case: no such character (str.isprintable is C)
        return text.strip()
    return text.translate(_NOT_IN_QUESTIONS).strip()


class QAService:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.registry = ModelRegistry(settings.models_dir)
        # How many messages the front end is handling (Telegram's update processor tells; the
        # console handles one at a time). Only with others in progress do questions wait to
        # share a model call or a commit: a lone question is answered without delay.
        self.messages_in_progress: Callable[[], int] = lambda: 1
        self.writer = ExchangeWriter(
            store, busy=self._busy, max_pending_bytes=settings.outage_queue_mb * 2**20
        )
        self.learning = Learning(store)
        self.trainer = TrainingRunner(
            settings.models_dir, settings.home / "training", settings.seed
        )
        self.model: AnswerModel | None = None
        self.model_process = ModelProcess() if settings.model_process else None
        self.batcher = PredictionBatcher(busy=self._busy, model_process=self.model_process)
        # Exact questions of the training set (up to case, spaces and punctuation) → answer:
        # a taught pair is answered right away, before any retraining.
        self._known_answers: dict[str, str] = {}
        self._watch_task: asyncio.Task[None] | None = None

    def _busy(self) -> bool:
        return self.messages_in_progress() > 1

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        # Exports a crash left behind hold users' conversations.
        await asyncio.to_thread(remove_stale_exports, self.settings.home / EXPORTS_FOLDER, 0)
        await self.writer.start()
        if self.model_process is not None:
            try:
                await self.model_process.start()
            except ModelProcessError as error:
                log.error("%s: answering in the bot's own process", error)
                self.model_process = self.batcher.model_process = None
        await self.reload_model()
        await self.reload_known_answers()
        self._watch_task = asyncio.create_task(self._watch_models(), name="model-watch")

    async def stop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            await asyncio.gather(self._watch_task, return_exceptions=True)
        await self.writer.stop()
        if self.model_process is not None:
            await self.model_process.stop()

    async def reload_model(self) -> None:
        """Load the registry's current version unless it is the one already serving."""
        current = self.registry.current_version()
        if current is None or (self.model is not None and self.model.version == current):
            return
        try:
            model = await self._load(self.registry.path(current))
        except (OSError, ValueError, ModelCallError) as error:
            # A broken or outdated version: keep serving what we have (`qabot run` trains a
            # new model when there is none).
            log.error("cannot load model %s: %s", current, error)
            return
        self.model = model
        log.info("serving model %s (threshold %.3f)", model.version, model.threshold)

    async def open_for_review(self) -> None:
        """What reviewing needs, without serving (the `qabot review` command): the current
        model's rules and featurizer (its weights stay on disk) and the training set's
        questions, so the queue is grouped as /review groups it."""
        current = self.registry.current_version()
        if current is not None:
            path = self.registry.path(current)
            self.model = await asyncio.to_thread(AnswerModel.load, path, weights=False)
        await self.reload_known_answers()

    async def _load(self, path: Path) -> AnswerModel:
        """The model in this directory; its weights are loaded by the model process when there
        is one that runs, else here."""
        model = await asyncio.to_thread(AnswerModel.load, path, weights=False)
        process = self.model_process
        if process is not None and not process.gave_up:
            try:
                await process.load(path)
                return model
            except ModelProcessError as error:
                log.error("%s: loading model %s in the bot's own process", error, path.name)
        await asyncio.to_thread(model.load_all)
        return model

    async def predict_batch(self, model: AnswerModel, texts: list[str]) -> list[Prediction]:
        """Predictions for many texts at once (admin work: scoring, review), computed by the
        model process when it serves this model, else in a worker thread."""
        process = self.model_process
        if process is not None and process.serves(model.path):
            try:
                return model.predictions(await process.predict(model.path, texts))
            except ModelProcessError:
                pass  # it died meanwhile: predict here
        return await asyncio.to_thread(model.predict_batch, texts)

    def known_question_keys(self) -> frozenset[str]:
        return frozenset(self._known_answers)

    async def reload_known_answers(self) -> None:
        pairs = await self.store.training_pairs()
        self._known_answers = {
            key: p.answer for p in pairs if p.answer and (key := match_key(p.question))
        }

    async def _watch_models(self) -> None:
        while True:
            await asyncio.sleep(MODEL_WATCH_SECONDS)
            try:
                await self.reload_model()
            except Exception:  # whatever goes wrong, the watcher must keep watching
                log.exception("could not load the current model; still serving the previous one")

    # -- answering --------------------------------------------------------------------------

    async def reply(
        self, chat: ChatInfo, user: UserInfo | None, text: str, *, message_id: int | None = None
    ) -> Reply:
        """Answer a question and log the exchange."""
        started = time.perf_counter()
        question = clean_question(text)
        lang = messages.language_of(question, user.language_code if user else None)
        fields = await self._answer(question, lang)
        return await self._log(
            chat, user, text, kind="text", started=started, message_id=message_id, lang=lang,
            **fields,
        )  # fmt: skip

    async def reply_if_confident(
        self, chat: ChatInfo, user: UserInfo | None, text: str, *, message_id: int | None = None
    ) -> Reply | None:
        """The answer when the model is confident (logged, as `reply` logs it); None, with
        nothing logged, when it would fall back or hesitate (a group's unaddressed message)."""
        started = time.perf_counter()
        question = clean_question(text)
        lang = messages.language_of(question, user.language_code if user else None)
        fields = await self._answer(question, lang)
        if fields["fallback"]:
            return None
        return await self._log(
            chat, user, text, kind="text", started=started, message_id=message_id, lang=lang,
            **fields,
        )  # fmt: skip

    async def _answer(self, question: str, lang: str) -> dict[str, Any]:
        """The reply to a cleaned question, as the fields `_log` takes."""
        model = self.model
        answer_id: str | None = None
        confidence = 0.0
        suggestions: tuple[Suggestion, ...] = ()
        if not question:
            answer = messages.text("empty", lang)
            fallback = True
        elif (known := self._known_answer(question)) is not None:
            answer, answer_id, confidence, fallback = known, answer_key(known), 1.0, False
        elif model is None:
            answer, fallback = messages.text("no_model", lang), True
        else:
            prediction = await self.batcher.predict(model, question[:MAX_MODEL_INPUT_CHARS])
            confidence, fallback = prediction.confidence, prediction.fallback
            if suggestions := prediction.suggestions:
                answer, fallback = messages.text("did_you_mean", lang), True
            elif fallback or prediction.answer is None:
                answer, fallback = messages.text("fallback", lang), True
            else:
                answer, answer_id = prediction.answer, prediction.answer_id
        return {
            "answer": answer, "suggestions": suggestions, "answer_id": answer_id,
            "confidence": confidence, "fallback": fallback,
            "model_version": model.version if model else None,
        }  # fmt: skip

    async def reply_not_text(
        self, chat: ChatInfo, user: UserInfo | None, kind: str, *, message_id: int | None = None
    ) -> Reply:
        """A sticker, photo, voice note, ...: a hint that the bot reads text, logged too."""
        started = time.perf_counter()
        lang = messages.language_of(None, user.language_code if user else None)
        answer = messages.text("not_text", lang)
        return await self._log(
            chat, user, f"[{kind}]", answer, kind=kind, started=started, message_id=message_id,
            lang=lang, answer_id=None, confidence=0.0, fallback=True, model_version=None,
        )  # fmt: skip

    async def _log(
        self,
        chat: ChatInfo,
        user: UserInfo | None,
        question: str,
        answer: str,
        *,
        kind: str,
        started: float,
        lang: str,
        suggestions: tuple[Suggestion, ...] = (),
        **fields: Any,
    ) -> Reply:
        latency_ms = (time.perf_counter() - started) * 1000
        record = ExchangeRecord(
            chat=chat, user=user, question=question, answer=answer, kind=kind,
            latency_ms=latency_ms, **fields,
        )  # fmt: skip
        exchange_id = await self.writer.write(record)
        return Reply(
            text=answer,
            answer_id=record.answer_id,
            confidence=record.confidence,
            fallback=record.fallback,
            model_version=record.model_version,
            latency_ms=latency_ms,
            exchange_id=exchange_id,
            lang=lang,
            suggestions=suggestions,
        )

    async def choose(
        self, exchange_id: int, answer_id: str | None, *, chat_id: int, user_id: int | None
    ) -> Choice:
        """A press on a "did you mean" button of an exchange: the chosen answer (answer_id None:
        "none of these", the fallback), logged with the exchange; the pairing waits in the
        review queue. Nothing the user chooses trains the model by itself."""
        question = await self.learning.exchange_question(exchange_id)
        lang = messages.language_of(question)
        if answer_id is None:
            reply = messages.text("fallback", lang)
        else:
            model = self.model
            answer = model.answers().get(answer_id) if model is not None else None
            if answer is None:  # the model changed since the buttons were sent
                return Choice(ChoiceOutcome.UNKNOWN)
            reply = answer
        outcome = await self.learning.record_choice(
            exchange_id, chat_id=chat_id, user_id=user_id, answer_id=answer_id, reply=reply
        )
        if outcome is not ChoiceOutcome.ANSWERED:
            return Choice(outcome)
        return Choice(outcome, reply, answer_id)

    # -- admin actions ----------------------------------------------------------------------

    async def teach(self, question: str, answer: str) -> bool:
        """Add a pair to the training set; it is answered at once. False if it was known."""
        question, answer = clean_question(question), clean_question(answer)
        if not answer:
            raise ValueError("the answer is empty")
        if not match_key(question):
            # It would match every message without letters or digits ("?", "...", "👍").
            raise ValueError("the question needs at least one letter, digit or symbol")
        added = await self.store.add_pairs([QAPair(question, answer)], source="taught")
        self._remember([question], answer)
        return added > 0

    async def review_queue(self) -> list[ReviewItem]:
        """The review queue, similar wordings grouped in the live model's feature space."""
        model = self.model
        featurizer = None
        if model is not None:
            # Read on first use (a model process holds the rest of the model), off the loop.
            featurizer = await asyncio.to_thread(lambda: model.featurizer)
        return await self.learning.review_queue(self.known_question_keys(), featurizer)

    async def review_group(self, exchange_id: int) -> list[str]:
        """The wordings of the review group holding this exchange (just its own question when
        it is no longer queued); empty when the exchange is unknown."""
        for item in await self.review_queue():
            if exchange_id in item.exchange_ids:
                return list(item.wordings.values())
        question = await self.learning.exchange_question(exchange_id)
        return [question] if question is not None else []

    async def mark_out_of_scope(self, questions: list[str], admin_id: int | None) -> bool:
        """A review group the bot should not answer: its wordings join the training set as
        out-of-scope rows; the next retraining teaches the model to fall back on them."""
        return await self.learning.decide(
            questions, answer=None, decided_by=admin_id, out_of_scope=True
        )

    async def approve(self, questions: list[str], answer: str, admin_id: int | None) -> bool:
        """Approve a review group: its wordings join the training set, answered at once."""
        approved = await self.learning.decide(questions, answer=answer, decided_by=admin_id)
        if approved:
            self._remember(questions, answer)
        return approved

    def _known_answer(self, question: str) -> str | None:
        """The answer taught for exactly this question (by match key), if any."""
        key = match_key(question)
        return self._known_answers.get(key) if key else None

    def _remember(self, questions: Iterable[str], answer: str) -> None:
        """Answer these questions with `answer` from now on (questions with an empty match
        key, e.g. only punctuation, are never matched exactly)."""
        self._known_answers.update((key, answer) for q in questions if (key := match_key(q)))

    async def retrain(
        self, on_progress: ProgressCallback | None = None, *, force: bool = False
    ) -> RetrainOutcome:
        """Train a candidate in a worker process on the training set less a stable held-out
        part; score it and the live model on that part plus the rated exchanges; promote it
        (and serve it, no restart) only if it is not worse, or when forced."""
        pairs = await self.store.training_pairs()
        train_pairs, holdout = split_holdout(pairs)
        trained = await self.trainer.train(train_pairs, on_progress)
        candidate_model = await self._load(trained.path)
        rated = await self.learning.rated_exchanges()
        questions = scoring_questions(holdout, rated)
        candidate = score_model(
            await self.predict_batch(candidate_model, questions), holdout, rated
        )
        live = None
        if self.model is not None:
            live = score_model(await self.predict_batch(self.model, questions), holdout, rated)
        promoted = force or live is None or is_not_worse(candidate, live)
        metrics = {**trained.metrics, "gate": {"candidate": candidate, "live": live}}
        await self.store.record_model_version(trained.version, len(pairs), metrics, promoted=False)
        if promoted:
            await self.promote(trained.version)
        return RetrainOutcome(trained, promoted, candidate, live)

    async def promote(self, version: str) -> None:
        await asyncio.to_thread(self.registry.promote, version)
        await self.store.mark_promoted(version)
        await self.reload_model()

    async def rollback(self) -> str:
        """Serve the previously promoted version again, at once."""
        version = await asyncio.to_thread(self.registry.rollback)
        await self.store.mark_promoted(version)
        await self.reload_model()
        return version
