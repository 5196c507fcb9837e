"""The promotion gate: a retrained candidate is compared with the live model on the same
questions, none of which either was trained on, with a paired test; it is promoted unless it is
significantly worse (decision 0005).

The questions: the pairs both versions held out in their cross-validation (each version keeps
the out-of-fold answers of its training run, model/held_out.py), and the exchanges users rated
whose question neither version was trained on (answered by the two served models)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot import messages
from bot.storage.learning_records import RatedExchange
from model.held_out import HeldOutRecord
from model.predictor import Prediction
from model.text import match_key

# A candidate is blocked when the exact test on the questions only one of the two models answers
# right says, at this level, that it is worse by more than WORSE_BY (a share of the questions).
# The margin absorbs the difference two trainings on the same data make, which a paired test
# (it counts only the questions' sampling noise) would take for a real one (decision 0005).
SIGNIFICANCE = 0.05
WORSE_BY = 0.01

# Verdicts of a comparison.
BETTER, SAME, WORSE = "better", "same", "worse"


def binomial_tail(successes: int, trials: int, p: float) -> float:
    """P(X >= successes) for X ~ Binomial(trials, p); p may pass 1 (a margin on few questions)."""
    if successes > trials:
        return 0.0
    if p >= 1.0:
        return 1.0
    # Imported here: scipy.stats takes about a second to import, and only /retrain needs it.
    from scipy.stats import binom

    return float(binom.sf(successes - 1, trials, p))


def sign_test(wins: int, losses: int, n: int = 0, margin: float = 0.0) -> float:
    """One-sided p-value that the side with `losses` is worse by more than `margin` (a share of
    the n questions compared), from the questions only one side answers right (wins for the
    other side, losses for this one): McNemar's exact test, conditional on their number. With
    no margin it is the sign test: P(at least `losses` heads in wins + losses fair tosses)."""
    discordant = wins + losses
    if discordant == 0:
        return 1.0
    # At a difference of exactly `margin`, a discordant question goes against this side with
    # probability 1/2 + margin * n / (2 * discordant).
    against = 0.5 + margin * n / (2 * discordant)
    return binomial_tail(losses, discordant, against)


@dataclass(frozen=True)
class PairedComparison:
    """Two models judged on the same questions."""

    n: int  # questions both were judged on
    n_held_out: int  # of which held out in both versions' cross-validation
    candidate_right: int
    live_right: int
    candidate_only: int  # right by the candidate alone
    live_only: int  # right by the live model alone

    @property
    def p_worse(self) -> float:
        """One-sided p-value that the candidate is worse by more than WORSE_BY."""
        return sign_test(self.candidate_only, self.live_only, self.n, WORSE_BY)

    @property
    def p_better(self) -> float:
        """One-sided p-value that the candidate is better (at all)."""
        return sign_test(self.live_only, self.candidate_only)

    @property
    def verdict(self) -> str:
        if self.p_worse < SIGNIFICANCE:
            return WORSE
        return BETTER if self.p_better < SIGNIFICANCE else SAME

    def figures(self) -> dict[str, Any]:
        """The figures kept with the model version and shown to the admin."""
        return {
            "n": self.n,
            "n_held_out": self.n_held_out,
            "candidate_only": self.candidate_only,
            "live_only": self.live_only,
            "p_worse": round(self.p_worse, 4),
            "p_better": round(self.p_better, 4),
            "verdict": self.verdict,
        }

    def score(self, right: int) -> dict[str, Any]:
        """One side's figures (RetrainOutcome.candidate and .live)."""
        return {"score": right / self.n if self.n else 0.0, "right": right, "n": self.n}


def paired_outcomes(candidate: HeldOutRecord, live: HeldOutRecord) -> list[tuple[bool, bool]]:
    """(candidate right, live right) on every question both versions answered while holding it
    out, under the right answer each version was given for it."""
    return [
        (given == label, live.answers[key, label] == label)
        for (key, label), given in candidate.answers.items()
        if (key, label) in live.answers
    ]


def unseen_rated(
    rated: Sequence[RatedExchange], candidate: HeldOutRecord, live: HeldOutRecord
) -> list[RatedExchange]:
    """The rated exchanges whose question neither version was trained on."""
    seen = candidate.trained | live.trained
    return [r for r in rated if match_key(r.question) not in seen]


def rated_right(prediction: Prediction, rated: RatedExchange) -> bool:
    """A 👍 answer should be given again, a 👎 one should not."""
    if rated.rating > 0:
        return prediction.answer_id == rated.answer_id
    return prediction.answer_id != rated.answer_id


def compare(
    held_out: Sequence[tuple[bool, bool]],
    rated: Sequence[RatedExchange],
    candidate_predictions: Sequence[Prediction],
    live_predictions: Sequence[Prediction],
) -> PairedComparison:
    """The paired comparison on held_out (from paired_outcomes) and on rated exchanges, each
    answered by both served models (predictions in rated's order)."""
    outcomes = [
        *held_out,
        *(
            (rated_right(c, r), rated_right(live, r))
            for r, c, live in zip(rated, candidate_predictions, live_predictions, strict=True)
        ),
    ]
    return PairedComparison(
        n=len(outcomes),
        n_held_out=len(held_out),
        candidate_right=sum(c for c, _ in outcomes),
        live_right=sum(live for _, live in outcomes),
        candidate_only=sum(c and not live for c, live in outcomes),
        live_only=sum(live and not c for c, live in outcomes),
    )


# Why a candidate went through without a comparison (RetrainOutcome.unpaired), and its words.
NO_LIVE_MODEL = "no live model"
NO_LIVE_RECORD = "no live record"
_UNPAIRED_TEXT = {NO_LIVE_MODEL: "gate_no_live_model", NO_LIVE_RECORD: "gate_no_live_record"}


def describe(figures: dict[str, Any], lang: str = "en", *, short: bool = False) -> str:
    """The gate's decision in words, from the figures kept with a model version (RetrainOutcome.
    gate_figures): /retrain, `qabot train`, /models and `qabot models` say the same."""
    live = figures.get("live")
    if live is None or "verdict" not in figures:
        key = _UNPAIRED_TEXT.get(figures.get("unpaired") or NO_LIVE_RECORD, "gate_no_live_record")
        return messages.text(key, lang)
    n = figures["n"]
    if n == 0:  # e.g. a new training set: the versions held out no question in common
        return messages.text("gate_nothing_in_common", lang)
    shown = {
        "candidate": f"{figures['candidate']['score']:.1%}",
        "live": f"{live['score']:.1%}",
        "n": f"{n:,}",
        "verdict": messages.text(f"gate_{figures['verdict']}", lang),
    }
    if short:
        return messages.text("gate_short", lang, **shown)
    return messages.text(
        "gate_compared",
        lang,
        **shown,
        held_out=f"{figures['n_held_out']:,}",
        rated=f"{n - figures['n_held_out']:,}",
        better=figures["candidate_only"],
        worse=figures["live_only"],
        p_worse=f"{figures['p_worse']:.3g}",
    )
