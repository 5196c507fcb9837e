"""The "did you mean …?" rule: when the model hesitates between a few answers, it offers them.

A question gets suggestions when its best answer is not sure (probability below `below`) and
the best three answers together hold most of the probability (at least `min_mass`): the model
hesitates between a few answers rather than knowing none of them (then the out-of-scope class
or a spread over many answers takes the mass). It gets them too when the second and third
answers together hold at least `runners_up`, however sure the best one looks: a confident
answer with a close rival is often wrong. The rule is chosen on validation data, like the
fallback rule, and kept in the model's meta. NumPy only.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np

MAX_SUGGESTIONS = 3
# An answer this unlikely is not worth a button, whatever the rule.
MIN_SUGGESTION_PROBABILITY = 0.02
# What choose_suggestion_rule aims at: the right answer given or among the buttons for this
# share of the in-scope validation questions, with buttons on at most MAX_SUGGESTED_RATE of them.
# Half a point above the 97 % wanted of new questions, which the rule has not seen (on CLINC150
# it costs buttons on 7.5 % of the questions rather than 4.4 %: decision 0013).
TARGET_ANSWERED_OR_SUGGESTED = 0.975
MAX_SUGGESTED_RATE = 0.10
_BELOW_GRID = np.round(np.arange(0.05, 1.0001, 0.05), 2)
_MASS_GRID = np.round(np.arange(0.05, 1.0001, 0.05), 2)
# The second and third answers hold at most 2/3 of the probability: 1.0 never fires.
NO_RUNNERS_UP = 1.0
_RUNNERS_UP_GRID = (*np.round(np.arange(0.05, 0.5, 0.02), 2), NO_RUNNERS_UP)


@dataclass(frozen=True)
class SuggestionRule:
    below: float = 0.5  # suggestions when the best answer's probability is below this
    min_mass: float = 0.6  # ... and the best MAX_SUGGESTIONS answers hold at least this much
    runners_up: float = NO_RUNNERS_UP  # or the answers after the best hold at least this much

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> SuggestionRule:
        return cls(**data) if data else cls()


def top_answers(in_scope: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, probabilities) of the best MAX_SUGGESTIONS answers per row, best first.
    in_scope: answer probabilities in which the out-of-scope class can never be the best."""
    k = min(MAX_SUGGESTIONS, in_scope.shape[1])
    top = np.argpartition(-in_scope, k - 1, axis=1)[:, :k]
    top_probs = np.take_along_axis(in_scope, top, axis=1)
    best_first = np.argsort(-top_probs, axis=1, kind="stable")
    return np.take_along_axis(top, best_first, axis=1), np.take_along_axis(top_probs, best_first, 1)


def offered(top_probs: np.ndarray, rule: SuggestionRule) -> np.ndarray:
    """Per row and rank (same shape as top_probs): whether that answer is offered as a button."""
    hesitates = _hesitates(top_probs, rule.below, rule.min_mass, np.asarray([rule.runners_up]))
    return hesitates & (top_probs >= MIN_SUGGESTION_PROBABILITY)


def _hesitates(
    top_probs: np.ndarray, below: float, min_mass: float, runners_up: np.ndarray
) -> np.ndarray:
    """Rows (first axis) × runners_up values: whether the rule offers suggestions."""
    top_probs = np.clip(top_probs, 0.0, None)
    unsure = (top_probs[:, 0] < below) & (top_probs.sum(axis=1) >= min_mass)
    return unsure[:, None] | (top_probs[:, 1:].sum(axis=1)[:, None] >= runners_up[None, :])


def suggestion_figures(
    top: np.ndarray,
    top_probs: np.ndarray,
    answered_right: np.ndarray,
    labels: np.ndarray,
    rule: SuggestionRule,
) -> dict[str, float]:
    """suggested_rate and answered_or_suggested over the rows of in-scope questions given
    (labels: their right classes; answered_right: whether the answer given was right)."""
    buttons = offered(top_probs, rule)
    right_offered = (buttons & (top == labels[:, None])).any(axis=1)
    return {
        "suggested_rate": float(buttons.any(axis=1).mean()),
        "answered_or_suggested": float((answered_right | right_offered).mean()),
    }


def choose_suggestion_rule(
    top: np.ndarray,
    top_probs: np.ndarray,
    answered_right: np.ndarray,
    labels: np.ndarray,
    in_scope: np.ndarray,
) -> SuggestionRule:
    """The rule with the fewest buttons (on all validation questions) that reaches
    TARGET_ANSWERED_OR_SUGGESTED with buttons on at most MAX_SUGGESTED_RATE of the in-scope
    ones; when none reaches it, the one that gets closest within that rate.

    top, top_probs: top_answers of every validation question; labels: right classes (any value
    for out-of-scope rows); answered_right: the answer given was right; in_scope: row mask.
    """
    # Every runners_up value of the grid at once: rows × values.
    runners_up = np.asarray(_RUNNERS_UP_GRID)
    can_offer = top_probs[:, 0] >= MIN_SUGGESTION_PROBABILITY
    right_can_be_offered = (
        (top == labels[:, None]) & (top_probs >= MIN_SUGGESTION_PROBABILITY)
    ).any(1)
    best: tuple[tuple[float, ...], SuggestionRule] | None = None
    for below, min_mass in itertools.product(_BELOW_GRID, _MASS_GRID):
        hesitates = _hesitates(top_probs, below, min_mass, runners_up)
        buttons = hesitates & can_offer[:, None]
        suggested_rate = buttons[in_scope].mean(axis=0)
        right = answered_right[:, None] | (hesitates & right_can_be_offered[:, None])
        answered_or_suggested = right[in_scope].mean(axis=0)
        shown = buttons.mean(axis=0)
        for j in np.flatnonzero(suggested_rate <= MAX_SUGGESTED_RATE):
            reached = min(answered_or_suggested[j], TARGET_ANSWERED_OR_SUGGESTED)
            key = (reached, -shown[j], answered_or_suggested[j])
            if best is None or key > best[0]:
                rule = SuggestionRule(float(below), float(min_mass), float(runners_up[j]))
                best = (key, rule)
    return SuggestionRule() if best is None else best[1]
