"""Questions of the training set, matched exactly (up to case, spaces and punctuation) before
the model is asked: a taught or approved pair is answered at once, before any retraining."""

from __future__ import annotations

from collections.abc import Iterable

from bot.storage.store import Store
from model.text import match_key


class KnownAnswers:
    def __init__(self) -> None:
        self._answers: dict[str, str] = {}  # match key → answer

    async def reload(self, store: Store) -> None:
        pairs = await store.training_pairs()
        self._answers = {
            key: p.answer for p in pairs if p.answer and (key := match_key(p.question))
        }

    def lookup(self, question: str) -> str | None:
        """The answer taught for exactly this question, if any."""
        key = match_key(question)
        return self._answers.get(key) if key else None

    def remember(self, questions: Iterable[str], answer: str) -> None:
        """Answer these questions with `answer` from now on (questions with an empty match key,
        e.g. only punctuation, are never matched exactly: they would match every such message)."""
        self._answers.update((key, answer) for q in questions if (key := match_key(q)))

    def keys(self) -> frozenset[str]:
        return frozenset(self._answers)
