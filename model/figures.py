"""A model's figures in words, the same wherever they are shown (`qabot models`, `/models`,
`qabot train`, `qabot eval`, `/retrain`)."""

from __future__ import annotations

from typing import Any

# How figures were obtained (metrics["validation"] of model.train; qabot eval's EVALUATION).
GIVEN = "given"
CROSS_VALIDATION = "cross-validation, then trained on all pairs"
NO_VALIDATION = "none"
EVALUATION = "evaluation"
# Kinds of models trained before cross-validation: a held-out share, and on small sets a refit.
HOLDOUT = "holdout"
REFIT = "holdout, then refitted on all pairs"


def _on_what(kind: str | None, n: int | None) -> str:
    """The data the figures were measured on."""
    count = "?" if n is None else f"{n:,}"
    if kind == GIVEN:
        return f"on {count} validation questions"
    if kind == HOLDOUT:
        return f"on {count} held-out questions"
    if kind == REFIT:
        # A small set's holdout model lacked these questions; the served one learned them too.
        # Shown as the served model's "validation accuracy", it looked like a bad model.
        return f"on {count} held-out questions, before the final fit on all pairs"
    if kind == EVALUATION:
        return f"on {count} questions"
    if kind == CROSS_VALIDATION:
        return f"cross-validated on {count} questions"
    return f"on {count} questions ({kind})" if kind else f"on {count} questions"


def _percent(value: Any) -> str | None:
    return f"{value:.1%}" if isinstance(value, int | float) else None


def figure_phrases(metrics: dict[str, Any]) -> list[str]:
    """The named measures of metrics (a model's meta["metrics"] or an evaluation), and on what
    data they were measured; empty when there are none (a model trained without validation)."""
    phrases = []
    named = (("in_scope_accuracy", "in-scope accuracy"), ("oos_recall", "out-of-scope recall"))
    for key, name in named:
        if (shown := _percent(metrics.get(key))) is not None:
            phrases.append(f"{name} {shown}")
    if (shown := _percent(metrics.get("answered_or_suggested"))) is not None:
        buttons = _percent(metrics.get("suggested_rate"))
        phrases.append(
            f"right answer given or among the suggestions {shown}"
            + (f" (suggestions on {buttons} of in-scope questions)" if buttons else "")
        )
    if phrases:
        phrases.append(_on_what(metrics.get("validation"), metrics.get("n")))
    return phrases


def format_figures(metrics: dict[str, Any]) -> str:
    """figure_phrases on one line, or a sentence saying there are none."""
    return ", ".join(figure_phrases(metrics)) or "no validation figures (trained without any)"
