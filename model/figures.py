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


# The figures' words in English; a front end may pass the same keys in another language
# (bot/messages.py: the catalog's figures_<key> entries, whose English are these).
WORDS: dict[str, str] = {
    "in_scope_accuracy": "in-scope accuracy {value}",
    "oos_recall": "out-of-scope recall {value}",
    "answered_or_suggested": "right answer given or among the suggestions {value}",
    "suggested_rate": " (suggestions on {value} of in-scope questions)",
    "on_given": "on {count} validation questions",
    "on_holdout": "on {count} held-out questions",
    # A small set's holdout model lacked these questions; the served one learned them too.
    # Shown as the served model's "validation accuracy", it looked like a bad model.
    "on_refit": "on {count} held-out questions, before the final fit on all pairs",
    "on_evaluation": "on {count} questions",
    "on_cross_validation": "cross-validated on {count} questions",
    "on_other": "on {count} questions ({kind})",
    "separator": ", ",
    "none": "no validation figures (trained without any)",
}
_ON_WHAT = {
    GIVEN: "on_given",
    HOLDOUT: "on_holdout",
    REFIT: "on_refit",
    EVALUATION: "on_evaluation",
    CROSS_VALIDATION: "on_cross_validation",
}


def _on_what(kind: str | None, n: int | None, words: dict[str, str]) -> str:
    """The data the figures were measured on."""
    count = "?" if n is None else f"{n:,}"
    key = _ON_WHAT.get(kind or "", "on_other" if kind else "on_evaluation")
    return words[key].format(count=count, kind=kind)


def _percent(value: Any) -> str | None:
    return f"{value:.1%}" if isinstance(value, int | float) else None


def figure_phrases(metrics: dict[str, Any], words: dict[str, str] = WORDS) -> list[str]:
    """The named measures of metrics (a model's meta["metrics"] or an evaluation), and on what
    data they were measured; empty when there are none (a model trained without validation)."""
    phrases = []
    for key in ("in_scope_accuracy", "oos_recall"):
        if (shown := _percent(metrics.get(key))) is not None:
            phrases.append(words[key].format(value=shown))
    if (shown := _percent(metrics.get("answered_or_suggested"))) is not None:
        buttons = _percent(metrics.get("suggested_rate"))
        phrases.append(
            words["answered_or_suggested"].format(value=shown)
            + (words["suggested_rate"].format(value=buttons) if buttons else "")
        )
    if phrases:
        phrases.append(_on_what(metrics.get("validation"), metrics.get("n"), words))
    return phrases


def format_figures(metrics: dict[str, Any], words: dict[str, str] = WORDS) -> str:
    """figure_phrases on one line, or a sentence saying there are none."""
    return words["separator"].join(figure_phrases(metrics, words)) or words["none"]
