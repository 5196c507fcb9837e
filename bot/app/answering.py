"""Answering: the one reply path of every front end (Telegram, console, tests). A question is
cleaned, matched against the taught questions, else given to the model; the exchange is logged
whatever the outcome."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from bot import messages
from bot.app.known_answers import KnownAnswers
from bot.app.models import ModelLifecycle
from bot.app.text import clean_question
from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.learning_records import ChoiceOutcome, LearningRecords
from bot.storage.store import ChatInfo, ExchangeRecord, UserInfo
from model.datasets import answer_key
from model.predictor import Suggestion

# Telegram allows 4,096 characters; the model only needs the start of a long message.
MAX_MODEL_INPUT_CHARS = 1_000


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


class Answering:
    def __init__(
        self,
        models: ModelLifecycle,
        known: KnownAnswers,
        records: LearningRecords,
        writer: ExchangeWriter,
    ) -> None:
        self.models = models
        self.known = known
        self.records = records
        self.writer = writer

    async def reply(
        self, chat: ChatInfo, user: UserInfo | None, text: str, *, message_id: int | None = None
    ) -> Reply:
        """Answer a question and log the exchange."""
        started = time.perf_counter()
        fields = await self._answer(text, user)
        return await self._log(chat, user, text, started=started, message_id=message_id, **fields)

    async def reply_if_confident(
        self, chat: ChatInfo, user: UserInfo | None, text: str, *, message_id: int | None = None
    ) -> Reply | None:
        """The answer when the model is confident (logged, as `reply` logs it); None, with
        nothing logged, when it would fall back or hesitate (a group's unaddressed message)."""
        started = time.perf_counter()
        fields = await self._answer(text, user)
        if fields["fallback"]:
            return None
        return await self._log(chat, user, text, started=started, message_id=message_id, **fields)

    async def _answer(self, text: str, user: UserInfo | None) -> dict[str, Any]:
        """The reply to a user's text, as the fields `_log` takes."""
        question = clean_question(text)
        lang = messages.language_of(question, user.language_code if user else None)
        model = self.models.current
        answer_id: str | None = None
        confidence = 0.0
        suggestions: tuple[Suggestion, ...] = ()
        if not question:
            answer = messages.text("empty", lang)
            fallback = True
        elif (known := self.known.lookup(question)) is not None:
            answer, answer_id, confidence, fallback = known, answer_key(known), 1.0, False
        elif model is None:
            answer, fallback = messages.text("no_model", lang), True
        else:
            prediction = await self.models.batcher.predict(model, question[:MAX_MODEL_INPUT_CHARS])
            confidence, fallback = prediction.confidence, prediction.fallback
            if suggestions := prediction.suggestions:
                answer, fallback = messages.text("did_you_mean", lang), True
                suggestions = tuple(self._worded_in(s, lang) for s in suggestions)
            elif fallback or prediction.answer is None:
                answer, fallback = messages.text("fallback", lang), True
            else:
                answer, answer_id = prediction.answer, prediction.answer_id
        return {
            "kind": "text", "lang": lang, "answer": answer, "suggestions": suggestions,
            "answer_id": answer_id, "confidence": confidence, "fallback": fallback,
            "model_version": model.version if model else None,
        }  # fmt: skip

    def _worded_in(self, suggestion: Suggestion, lang: str) -> Suggestion:
        """The suggestion with a wording in the asker's language when its answer has one: the
        model's best-known wording of an answer asked both ways may be the other language's."""
        if messages.language_of(suggestion.wording) == lang:
            return suggestion
        wording = self.known.wording(suggestion.answer_id, lang)
        return suggestion._replace(wording=wording) if wording else suggestion

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
        question = await self.records.exchange_question(exchange_id)
        lang = messages.language_of(question)
        if answer_id is None:
            reply = messages.text("fallback", lang)
        else:
            model = self.models.current
            answer = model.answers().get(answer_id) if model is not None else None
            if answer is None:  # the model changed since the buttons were sent
                return Choice(ChoiceOutcome.UNKNOWN)
            reply = answer
        outcome = await self.records.record_choice(
            exchange_id, chat_id=chat_id, user_id=user_id, answer_id=answer_id, reply=reply
        )
        if outcome is not ChoiceOutcome.ANSWERED:
            return Choice(outcome)
        return Choice(outcome, reply, answer_id)
