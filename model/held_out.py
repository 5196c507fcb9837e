"""What a model version said about questions it was not trained on: the out-of-fold answers of
its cross-validation (or its answers on the validation data), kept in the version's directory.

The promotion gate (bot/app/gate.py) pairs a candidate's record with the live version's on the
questions both hold out, so that two versions are compared on questions neither was trained on
while each served model is trained on all of its pairs. The record also lists the questions the
version was trained on, so that other questions (rated exchanges) can be judged fairly."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from model.calibration import OUT_OF_SCOPE, FallbackRule
from model.datasets import QAPair, answer_key
from model.predictor import Mixture, decide
from model.text import match_key

if TYPE_CHECKING:
    from model.train import HeldOut

HELD_OUT_FILE = "held_out.json"

# The label and the answer of an out-of-scope question (the fallback is its right answer).
FALLBACK = ""


def item_label(pair: QAPair) -> str:
    return FALLBACK if pair.out_of_scope else answer_key(pair.answer)


@dataclass(frozen=True)
class HeldOutRecord:
    # (question's match key, right answer key or FALLBACK) -> the answer key given, or FALLBACK.
    answers: dict[tuple[str, str], str] = field(default_factory=dict)
    # Match keys of the questions the served model was trained on (the admin's, not the bundled
    # out-of-scope questions, which every version may add).
    trained: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, object]:
        return {
            "answers": [[key, label, given] for (key, label), given in self.answers.items()],
            "trained": sorted(self.trained),
        }

    @classmethod
    def from_json(cls, data: dict[str, list]) -> HeldOutRecord:
        answers = {(key, label): given for key, label, given in data.get("answers", [])}
        return cls(answers, frozenset(data.get("trained", [])))

    def save(self, directory: Path) -> None:
        (directory / HELD_OUT_FILE).write_text(
            json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> HeldOutRecord | None:
        """The record of the version in directory; None for a version trained without one."""
        path = directory / HELD_OUT_FILE
        if not path.is_file():
            return None
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


def held_out_record(
    trained_pairs: Iterable[QAPair],
    held_out: Sequence[HeldOut],
    held_pairs: Sequence[Sequence[QAPair]],
    classes: Sequence[str | None],
    rule: FallbackRule,
    mixture: Mixture,
    leave_out: Collection[QAPair] = (),
) -> HeldOutRecord:
    """The answers of the fold models (or of the model given validation data) under the served
    version's fallback rule, for the held-out questions of answers the model was taught (an
    answer held out whole is no test of the version) and held-out out-of-scope questions;
    leave_out (the bundled out-of-scope questions) is not recorded."""
    oos_class = classes.index(None) if None in classes else None
    answers: dict[tuple[str, str], str] = {}
    for held, pairs in zip(held_out, held_pairs, strict=True):
        gate, probs = held.probabilities(mixture, oos_class)
        decision = decide(probs, oos_class, rule.threshold, rule.margin, gate)
        judged = (held.labels >= 0) | (held.labels == OUT_OF_SCOPE)
        for row in np.flatnonzero(judged).tolist():
            pair = pairs[row]
            if pair in leave_out:
                continue
            given = classes[decision.top_class[row]]
            answer = FALLBACK if decision.fallback[row] or given is None else given
            answers[match_key(pair.question), item_label(pair)] = answer
    trained = frozenset(match_key(p.question) for p in trained_pairs if p not in leave_out)
    return HeldOutRecord(answers, trained)
