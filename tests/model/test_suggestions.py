"""The "did you mean …?" rule: when it offers answers, which ones, and how it is chosen."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.predictor import AnswerModel, Suggestion
from model.suggestions import (
    MAX_SUGGESTED_RATE,
    SuggestionRule,
    choose_suggestion_rule,
    suggestion_figures,
    top_answers,
)

ANSWERS = {"a": "Answer A", "b": "Answer B", "c": "Answer C", "d": "Answer D", "e": "Answer E"}
WORDINGS = {key: f"how do I {key}?" for key in ANSWERS}
CLASSES: list[str | None] = [*ANSWERS, None]  # the last class is out-of-scope


def a_model(threshold: float = 0.5, rule: SuggestionRule | None = None) -> AnswerModel:
    """A model with rules only: enough to turn probabilities into predictions."""
    meta = {
        "version": "test",
        "threshold": threshold,
        "suggestions": (rule or SuggestionRule(below=0.6, min_mass=0.7)).to_json(),
    }
    return AnswerModel(Path("unused"), meta, CLASSES, ANSWERS, WORDINGS)


def predict(model: AnswerModel, probs: list[float]):
    row = np.array([probs])
    return model.predictions(model._rows(row, row))[0]


def test_two_close_answers_are_offered_with_their_best_known_wording() -> None:
    prediction = predict(a_model(), [0.4, 0.38, 0.1, 0.05, 0.04, 0.03])
    assert prediction.fallback
    assert prediction.suggestions == (
        Suggestion("a", "Answer A", "how do I a?"),
        Suggestion("b", "Answer B", "how do I b?"),
        Suggestion("c", "Answer C", "how do I c?"),
    )


def test_at_most_three_answers_are_offered() -> None:
    prediction = predict(a_model(), [0.3, 0.25, 0.2, 0.13, 0.1, 0.02])
    assert len(prediction.suggestions) == 3


def test_a_confident_answer_comes_without_suggestions() -> None:
    prediction = predict(a_model(), [0.9, 0.05, 0.02, 0.01, 0.01, 0.01])
    assert not prediction.fallback and prediction.answer == "Answer A"
    assert prediction.suggestions == ()


def test_out_of_scope_and_spread_out_questions_get_no_suggestions() -> None:
    out_of_scope = predict(a_model(), [0.15, 0.1, 0.05, 0.0, 0.0, 0.7])
    spread_out = predict(a_model(), [0.2, 0.2, 0.2, 0.2, 0.2, 0.0])
    assert out_of_scope.fallback and out_of_scope.suggestions == ()
    assert spread_out.fallback and spread_out.suggestions == ()


def test_unlikely_answers_get_no_button() -> None:
    prediction = predict(a_model(), [0.5, 0.49, 0.005, 0.003, 0.001, 0.001])
    assert [s.answer_id for s in prediction.suggestions] == ["a", "b"]


def test_the_out_of_scope_class_is_never_suggested_when_there_are_few_answers() -> None:
    model = AnswerModel(
        Path("unused"),
        {"version": "t", "threshold": 0.9, "suggestions": {"below": 1.0, "min_mass": 0.0}},
        ["a", "b", None],
        ANSWERS,
        WORDINGS,
    )
    prediction = predict(model, [0.4, 0.35, 0.25])
    assert [s.answer_id for s in prediction.suggestions] == ["a", "b"]
    assert [c[0] for c in prediction.candidates] == ["a", "b"]


def test_models_without_wordings_offer_suggestions_without_them() -> None:
    model = AnswerModel(Path("unused"), {"version": "t", "threshold": 0.5}, CLASSES, ANSWERS)
    prediction = predict(model, [0.45, 0.44, 0.05, 0.02, 0.02, 0.02])
    assert prediction.suggestions[0] == Suggestion("a", "Answer A", "")


def test_the_rule_chosen_reaches_the_target_with_few_buttons() -> None:
    rng = np.random.default_rng(0)
    n, n_classes = 400, 5
    labels = rng.integers(0, n_classes, n)
    probs = rng.dirichlet(np.ones(n_classes) * 0.3, n)
    # Most questions: the right answer clearly first; a few hesitate between it and another.
    confident = rng.random(n) < 0.93
    probs[confident] = 0.02
    probs[confident, labels[confident]] = 0.92
    unsure = ~confident
    probs[unsure] = 0.02
    probs[unsure, labels[unsure]] = 0.45
    probs[unsure, (labels[unsure] + 1) % n_classes] = 0.47
    top, top_probs = top_answers(probs)
    answered_right = top_probs[:, 0] >= 0.5
    in_scope = np.ones(n, dtype=bool)
    rule = choose_suggestion_rule(top, top_probs, answered_right, labels, in_scope)
    figures = suggestion_figures(top, top_probs, answered_right, labels, rule)
    assert figures["answered_or_suggested"] == 1.0
    assert 0 < figures["suggested_rate"] <= MAX_SUGGESTED_RATE
    assert figures["suggested_rate"] == unsure.mean()


def test_a_confident_answer_with_a_close_rival_can_get_suggestions() -> None:
    confident_but_close = [0.6, 0.3, 0.05, 0.02, 0.02, 0.01]
    without = predict(a_model(rule=SuggestionRule(below=0.5, min_mass=0.6)), confident_but_close)
    with_rivals = predict(
        a_model(rule=SuggestionRule(below=0.5, min_mass=0.6, runners_up=0.3)), confident_but_close
    )
    assert without.answer == "Answer A" and without.suggestions == ()
    assert [s.answer_id for s in with_rivals.suggestions] == ["a", "b", "c"]


def test_models_saved_before_the_runners_up_rule_never_use_it() -> None:
    rule = SuggestionRule.from_json({"below": 0.5, "min_mass": 0.6})
    prediction = predict(a_model(rule=rule), [0.5, 0.25, 0.24, 0.005, 0.005, 0.0])
    assert prediction.answer == "Answer A" and prediction.suggestions == ()


def test_the_rule_chosen_offers_rivals_of_confident_answers_when_they_are_the_mistakes() -> None:
    rng = np.random.default_rng(1)
    n, n_classes = 400, 5
    labels = rng.integers(0, n_classes, n)
    # Most answers are right, with the rest spread out; a few are surer but wrong, the right
    # answer second: only the runners-up's share tells them apart, not the best one's.
    probs = np.full((n, n_classes), 0.45 / (n_classes - 1))
    mistaken = rng.random(n) < 0.06
    probs[~mistaken, labels[~mistaken]] = 0.55
    probs[mistaken] = 0.01
    probs[mistaken, (labels[mistaken] + 1) % n_classes] = 0.7
    probs[mistaken, labels[mistaken]] = 0.27
    top, top_probs = top_answers(probs)
    answered_right = top == labels[:, None]
    rule = choose_suggestion_rule(
        top, top_probs, answered_right[:, 0], labels, np.ones(n, dtype=bool)
    )
    figures = suggestion_figures(top, top_probs, answered_right[:, 0], labels, rule)
    assert rule.runners_up < 1.0
    assert figures["answered_or_suggested"] == 1.0
    assert figures["suggested_rate"] == mistaken.mean()
