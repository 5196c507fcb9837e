"""The promotion gate: a retrained candidate is compared with the live model on the same
questions (a stable held-out part of the training set, and the exchanges users rated) and
promoted only if it is not worse."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from bot.app.learning import RatedExchange
from model.datasets import QAPair, answer_key
from model.predictor import Prediction
from model.text import match_key

# Share of the training set held out to compare a retrained candidate with the live model.
HOLDOUT_PERCENT = 10


def split_holdout(pairs: Sequence[QAPair]) -> tuple[list[QAPair], list[QAPair]]:
    """A stable part of the training set (by a hash of the question, so the same questions are
    held out every time) to compare models on; answers with a single example stay in training."""
    examples = Counter(p.answer for p in pairs)
    train: list[QAPair] = []
    holdout: list[QAPair] = []
    for pair in pairs:
        digest = hashlib.sha1(match_key(pair.question).encode("utf-8")).digest()
        held = digest[0] * 100 // 256 < HOLDOUT_PERCENT and examples[pair.answer] > 1
        (holdout if held else train).append(pair)
    return train, holdout


def is_not_worse(candidate: dict[str, Any], live: dict[str, Any]) -> bool:
    """The candidate is not significantly worse: its score is at least the live model's less
    two standard errors of that score (about 95 % confidence). A young bot's held-out set is
    small, so a few questions either way are noise (measured: ±7 points between two trainings
    on the bundled set with one pair added), while a real regression, such as a poisoned
    training set, costs far more."""
    p, n = live["score"], max(live["n"], 1)
    return candidate["score"] >= p - 2 * math.sqrt(p * (1 - p) / n)


def scoring_questions(holdout: Sequence[QAPair], rated: Sequence[RatedExchange]) -> list[str]:
    """The questions score_model needs the predictions of, in its order."""
    return [p.question for p in holdout] + [r.question for r in rated]


def score_model(
    predictions: Sequence[Prediction], holdout: Sequence[QAPair], rated: Sequence[RatedExchange]
) -> dict[str, Any]:
    """Share of right replies on the held-out pairs (the fallback is right for out-of-scope ones)
    and on rated exchanges (a 👍 answer should be given again, a 👎 one should not), from a
    model's predictions of scoring_questions(holdout, rated)."""
    right_holdout = sum(
        (p.answer_id is None) if pair.out_of_scope else (p.answer_id == answer_key(pair.answer))
        for pair, p in zip(holdout, predictions, strict=False)
    )
    right_rated = sum(
        (p.answer_id == r.answer_id) if r.rating > 0 else (p.answer_id != r.answer_id)
        for r, p in zip(rated, predictions[len(holdout) :], strict=True)
    )
    total = len(holdout) + len(rated)
    return {
        "score": (right_holdout + right_rated) / total if total else 0.0,
        "holdout_accuracy": right_holdout / len(holdout) if holdout else None,
        "rated_accuracy": right_rated / len(rated) if rated else None,
        "n": total,
    }
