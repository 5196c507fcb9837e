"""A model's figures in words: named measures and the data they were measured on."""

from __future__ import annotations

from model.figures import (
    CROSS_VALIDATION,
    EVALUATION,
    GIVEN,
    HOLDOUT,
    REFIT,
    figure_phrases,
    format_figures,
)


def test_measures_are_named_with_the_data_they_come_from() -> None:
    metrics = {"validation": GIVEN, "n": 5500, "in_scope_accuracy": 0.931, "oos_recall": 0.71}
    assert format_figures(metrics) == (
        "in-scope accuracy 93.1%, out-of-scope recall 71.0%, on 5,500 validation questions"
    )


def test_a_small_sets_holdout_figures_say_they_come_before_the_final_fit() -> None:
    metrics = {"validation": REFIT, "n": 81, "in_scope_accuracy": 0.514, "oos_recall": 0.778}
    assert format_figures(metrics).endswith(
        "on 81 held-out questions, before the final fit on all pairs"
    )
    assert "held-out" in format_figures({**metrics, "validation": HOLDOUT})


def test_cross_validated_figures_say_so() -> None:
    metrics = {"validation": CROSS_VALIDATION, "n": 300, "in_scope_accuracy": 0.8}
    assert format_figures(metrics) == "in-scope accuracy 80.0%, cross-validated on 300 questions"


def test_suggestion_figures_are_shown_when_measured() -> None:
    metrics = {
        "validation": EVALUATION,
        "n": 100,
        "in_scope_accuracy": 0.9,
        "answered_or_suggested": 0.97,
        "suggested_rate": 0.06,
    }
    assert figure_phrases(metrics) == [
        "in-scope accuracy 90.0%",
        "right answer given or among the suggestions 97.0% "
        "(suggestions on 6.0% of in-scope questions)",
        "on 100 questions",
    ]


def test_a_model_without_validation_says_it_has_no_figures() -> None:
    metrics = {"validation": "none", "n": 0, "in_scope_accuracy": None, "oos_recall": None}
    assert figure_phrases(metrics) == []
    assert format_figures(metrics) == "no validation figures (trained without any)"
