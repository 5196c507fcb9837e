"""Questions of the training set, matched exactly (up to case, spaces and punctuation) before
the model is asked: a taught or approved pair is answered at once, before any retraining. And
each answer's first wording in each language, for "did you mean" buttons in the asker's."""

from __future__ import annotations

from collections.abc import Iterable

from bot.messages import language_of
from bot.storage.store import Store
from model.datasets import answer_key
from model.text import match_key


class KnownAnswers:
    def __init__(self) -> None:
        self._answers: dict[str, str] = {}  # match key → answer
        self._wordings: dict[tuple[str, str], str] = {}  # (answer id, language) → question

    async def reload(self, store: Store) -> None:
        pairs = await store.training_pairs()
        self._answers = {
            key: p.answer for p in pairs if p.answer and (key := match_key(p.question))
        }
        self._wordings = {}
        for pair in pairs:
            if pair.answer:
                self._remember_wording(pair.question, pair.answer)

    def wording(self, answer_id: str, lang: str) -> str | None:
        """The answer's first question in the training set written in lang ("zh" or "en")."""
        return self._wordings.get((answer_id, lang))

    def _remember_wording(self, question: str, answer: str) -> None:
        if question := question.strip():
            self._wordings.setdefault((answer_key(answer), language_of(question)), question)

    def lookup(self, question: str) -> str | None:
        """The answer taught for exactly this question, if any."""
        key = match_key(question)
        return self._answers.get(key) if key else None

    def remember(self, questions: Iterable[str], answer: str) -> None:
        """Answer these questions with `answer` from now on (questions with an empty match key,
        e.g. only punctuation, are never matched exactly: they would match every such message)."""
        for question in questions:
            if key := match_key(question):
                self._answers[key] = answer
            self._remember_wording(question, answer)

    def keys(self) -> frozenset[str]:
        return frozenset(self._answers)
