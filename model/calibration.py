"""Choosing the temperature and the fallback rule on validation data (NumPy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.predictor import decide, softmax, without_oos

# Labels of validation examples that no model class can answer correctly.
OUT_OF_SCOPE = -1  # the fallback is the right reply
UNKNOWN_ANSWER = -2  # an in-scope answer the model was not trained on: always counted wrong
# An answer held out whole in cross-validation: like OUT_OF_SCOPE, the fallback is the right
# reply, but its recall is counted apart (see choose_rule).
UNTAUGHT = -3

# Fallback threshold used when the validation data has no out-of-scope examples to tune it on.
DEFAULT_THRESHOLD = 0.4
MARGINS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2)
THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.005), 3)
# The gate's temperature is the answer probabilities' one (fitted for likelihood) times one of
# these: the one whose rules, for recall targets around the target (RECALL_BAND), keep the most
# held-out questions answered right (decision 0006). A softer gate reads more of the logits than
# the gap between the two best answers.
GATE_TEMPERATURE_FACTORS = (1.0, 1.5, 2.0, 3.0)
RECALL_BAND = (-0.1, -0.05, 0.0, 0.05, 0.1)


@dataclass(frozen=True)
class FallbackRule:
    threshold: float
    margin: float


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of labels (labels < 0 are ignored)."""
    known = labels >= 0
    if known.sum() < 10:
        return 1.0
    logits, labels = logits[known], labels[known]

    def nll(log_t: float) -> float:
        probs = softmax(logits / np.exp(log_t))
        return float(-np.log(probs[np.arange(len(labels)), labels] + 1e-12).mean())

    # Golden-section search on log T in [ln 0.05, ln 20]: NLL is unimodal in T.
    low, high = np.log(0.05), np.log(20.0)
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a = high - ratio * (high - low)
        b = low + ratio * (high - low)
        if nll(a) < nll(b):
            high = b
        else:
            low = a
    return float(np.exp((low + high) / 2))


def choose_gate_temperature(
    logits: np.ndarray,
    probs: np.ndarray,
    labels: np.ndarray,
    oos_class: int | None,
    target_oos_recall: float,
    temperature: float,
) -> float:
    """The temperature of the gate (the network's probabilities the fallback rule reads): the
    factor of GATE_TEMPERATURE_FACTORS times temperature with the best mean in-scope accuracy
    over the rules chosen for the recall targets of RECALL_BAND around target_oos_recall; ties
    go to the smaller factor. Without out-of-scope examples, temperature itself.

    One recall target alone would pick among the factors by a handful of questions; the band
    compares the curves where the rule will be."""
    if not should_fall_back(labels).any():
        return temperature

    def band_accuracy(factor: float) -> float:
        gate = softmax(logits / (temperature * factor))
        accuracies = []
        for offset in RECALL_BAND:
            target = float(np.clip(target_oos_recall + offset, 0.0, 1.0))
            rule = choose_rule(probs, labels, oos_class, target, gate)
            accuracies.append(scores(probs, labels, oos_class, rule, gate)["in_scope_accuracy"])
        return float(np.mean(accuracies))

    return temperature * max(GATE_TEMPERATURE_FACTORS, key=band_accuracy)


def scores(
    probs: np.ndarray,
    labels: np.ndarray,
    oos_class: int | None,
    rule: FallbackRule,
    gate: np.ndarray | None = None,
) -> dict:
    """In-scope accuracy (a fallback counts as wrong) and out-of-scope recall under a rule.

    gate: the probabilities the rule reads, when they are not probs (see decide)."""
    decision = decide(probs, oos_class, rule.threshold, rule.margin, gate)
    in_scope = ~should_fall_back(labels)
    correct = ~decision.fallback & (decision.top_class == labels)
    return {
        "in_scope_accuracy": float(correct[in_scope].mean()) if in_scope.any() else float("nan"),
        "oos_recall": float(decision.fallback[~in_scope].mean())
        if (~in_scope).any()
        else float("nan"),
    }


def should_fall_back(labels: np.ndarray) -> np.ndarray:
    return (labels == OUT_OF_SCOPE) | (labels == UNTAUGHT)


def choose_rule(
    probs: np.ndarray,
    labels: np.ndarray,
    oos_class: int | None,
    target_oos_recall: float,
    gate: np.ndarray | None = None,
) -> FallbackRule:
    """The rule with the best in-scope accuracy among those reaching the target out-of-scope recall.

    When no rule reaches the target, the one maximising accuracy + recall. With UNTAUGHT
    labels the recall is the lower of two: on them (questions of the domain the model was never
    taught, the hard ones) and on the other out-of-scope questions (mostly small talk and other
    domains): pooled, the many easy ones would hide the hard ones. Without out-of-scope
    examples, DEFAULT_THRESHOLD, lowered if needed so at most 5 % of right answers are lost.
    gate: the probabilities the rule reads, when they are not probs (see decide).
    """
    gate = probs if gate is None else gate
    in_scope = ~should_fall_back(labels)
    # The rule reads the gate's confidence; whether an answer is right depends on probs.
    decision = decide(gate, oos_class, 0.0, 0.0)
    right = decide(probs, oos_class, 0.0, 0.0).top_class == labels
    if not (~in_scope).any():
        right_confidence = decision.confidence[in_scope & right & ~decision.fallback]
        threshold = DEFAULT_THRESHOLD
        if len(right_confidence):
            threshold = min(threshold, float(np.quantile(right_confidence, 0.05)))
        return FallbackRule(threshold=round(threshold, 3), margin=0.0)

    masked = without_oos(gate, oos_class)
    best_two = -np.partition(-masked, 1, axis=1)[:, :2] if masked.shape[1] > 1 else None
    gap = best_two[:, 0] - best_two[:, 1] if best_two is not None else np.ones(len(gate))
    oos_win = decision.fallback  # with threshold 0 and margin 0 only the OOS class falls back

    # Rows of the grid: margins; columns: thresholds. Answered = confident, clear, not OOS.
    thresholds = THRESHOLDS[None, :, None]
    margins = np.asarray(MARGINS)[:, None, None]
    answered = (
        (decision.confidence[None, None, :] >= thresholds)
        & (gap[None, None, :] >= margins)
        & ~oos_win[None, None, :]
    )
    accuracy = (answered & right)[:, :, in_scope].mean(axis=2)
    kinds = [labels == kind for kind in (OUT_OF_SCOPE, UNTAUGHT) if (labels == kind).any()]
    recall = np.min([(~answered[:, :, kind]).mean(axis=2) for kind in kinds], axis=0)
    feasible = recall >= target_oos_recall - 1e-9
    if feasible.any():
        # Ties go to the higher recall, then to the smaller margin (grid order).
        objective = np.where(feasible, accuracy + 1e-6 * recall, -1.0)
    else:
        objective = accuracy + recall
    m = int(np.argmax(objective.max(axis=1)))
    # Thresholds doing equally well on validation form a plateau: take its middle, the choice
    # least tied to the exact validation examples.
    tied = np.flatnonzero(objective[m] >= objective[m].max() - 1e-12)
    return FallbackRule(threshold=float(THRESHOLDS[tied[len(tied) // 2]]), margin=float(MARGINS[m]))
