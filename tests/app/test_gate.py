"""The promotion gate: the paired sign test on constructed cases (clearly better, clearly worse,
equal, a difference within noise), which questions it pairs, and retraining through the App:
the served model learns every pair, the candidate is compared with the live version on what both
held out, and a poisoned candidate is blocked."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest

from bot.app.gate import (
    BETTER,
    NO_LIVE_MODEL,
    SAME,
    WORSE,
    binomial_tail,
    compare,
    describe,
    paired_outcomes,
    sign_test,
    unseen_rated,
)
from bot.storage.learning_records import RatedExchange
from model.datasets import QAPair, answer_key
from model.held_out import FALLBACK, HeldOutRecord
from model.predictor import Prediction
from model.text import match_key


def record(
    answers: dict[str, tuple[str, str]], trained: frozenset[str] = frozenset()
) -> HeldOutRecord:
    """A record from {question: (right answer, answer given)}."""
    return HeldOutRecord(
        {(match_key(q), right): given for q, (right, given) in answers.items()},
        frozenset(match_key(q) for q in trained),
    )


def judged(right_by: str, n: int, *, candidate: set[int], live: set[int]) -> tuple:
    """Two records on the questions q0..q{n-1} (right answer `right_by`): each side answers
    right the questions whose numbers it is given, and falls back on the others."""

    def answering(right: set[int]) -> HeldOutRecord:
        given = {f"q{i}": (right_by, right_by if i in right else FALLBACK) for i in range(n)}
        return record(given)

    return answering(candidate), answering(live)


def verdict_of(candidate: HeldOutRecord, live: HeldOutRecord):
    return compare(paired_outcomes(candidate, live), [], [], [])


def test_the_sign_test_is_exact() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(10, 0) == 1.0  # no losses: nothing says it is worse
    assert sign_test(0, 10) == pytest.approx(1 / 1024)
    assert sign_test(2, 8) == pytest.approx(56 / 1024)  # P(X >= 8), X ~ Bin(10, 1/2)
    assert sign_test(5, 5) == pytest.approx(638 / 1024)
    # With a margin, a discordant question goes against the worse side more often under the
    # null hypothesis: 1/2 + 0.01 * 100 / (2 * 20) = 0.525 here.
    exact = sum(math.comb(20, k) * 0.525**k * 0.475 ** (20 - k) for k in range(14, 21))
    assert sign_test(6, 14, n=100, margin=0.01) == pytest.approx(exact)
    # Thousands of questions: no overflow, and the tail of a fair coin is one half at the mean.
    assert sign_test(1500, 1500) == pytest.approx(0.5, abs=0.01)
    assert binomial_tail(3, 2, 0.5) == 0.0 and binomial_tail(0, 5, 0.3) == 1.0


def test_a_clearly_better_candidate_is_better() -> None:
    candidate, live = judged("a", 200, candidate=set(range(180)), live=set(range(150)))
    comparison = verdict_of(candidate, live)
    assert (comparison.n, comparison.candidate_only, comparison.live_only) == (200, 30, 0)
    assert comparison.verdict == BETTER and comparison.p_worse == 1.0
    assert comparison.score(comparison.candidate_right)["score"] == pytest.approx(0.9)


def test_a_clearly_worse_candidate_is_worse() -> None:
    candidate, live = judged("a", 200, candidate=set(range(150)), live=set(range(180)))
    comparison = verdict_of(candidate, live)
    assert comparison.verdict == WORSE and comparison.p_worse < 1e-6


def test_equal_models_are_the_same() -> None:
    candidate, live = judged("a", 100, candidate=set(range(70)), live=set(range(70)))
    comparison = verdict_of(candidate, live)
    assert comparison.verdict == SAME and comparison.p_worse == 1.0
    assert (comparison.candidate_only, comparison.live_only) == (0, 0)


def test_a_difference_within_noise_is_not_significant() -> None:
    # Right on different questions: 12 only by the live model, 8 only by the candidate.
    candidate, live = judged("a", 100, candidate={*range(60), *range(80, 88)}, live=set(range(72)))
    comparison = verdict_of(candidate, live)
    assert (comparison.candidate_only, comparison.live_only) == (8, 12)
    assert comparison.verdict == SAME and comparison.p_worse > 0.2


def test_a_point_worse_is_within_the_margin_five_points_worse_is_not() -> None:
    a_point = judged("a", 1000, candidate={*range(700), *range(900, 920)}, live=set(range(730)))
    comparison = verdict_of(*a_point)
    assert (comparison.candidate_only, comparison.live_only) == (20, 30)
    assert comparison.verdict == SAME  # the sign test alone says p = 0.10
    five = judged("a", 1000, candidate={*range(650), *range(900, 940)}, live=set(range(740)))
    comparison = verdict_of(*five)
    assert (comparison.candidate_only, comparison.live_only) == (40, 90)
    assert comparison.verdict == WORSE


def test_only_questions_both_held_out_under_the_same_answer_are_paired() -> None:
    candidate = record({"shared": ("a", "a"), "new": ("b", "b")})
    live = record({"shared": ("a", FALLBACK), "gone": ("c", "c")})
    # The same question under another answer is another item.
    live.answers[match_key("new"), "c"] = "c"
    assert paired_outcomes(candidate, live) == [(True, False)]
    # An out-of-scope question is answered right by the fallback.
    oos = record({"asdfgh": (FALLBACK, FALLBACK)})
    assert paired_outcomes(oos, record({"asdfgh": (FALLBACK, "a")})) == [(True, False)]


def test_rated_exchanges_count_when_neither_version_was_trained_on_them() -> None:
    rated = [
        RatedExchange("how do I pay", "pay", 1),
        RatedExchange("where is my order", "pay", -1),
        RatedExchange("taught question", "pay", 1),
    ]
    candidate = record({}, trained=frozenset({"taught question"}))
    live = record({})
    unseen = unseen_rated(rated, candidate, live)
    assert [r.question for r in unseen] == ["how do I pay", "where is my order"]
    pay = Prediction("pay", "Pay here.", 0.9, False, ())
    fallback = Prediction(None, None, 0.2, True, ())
    # 👍 on "pay": the candidate gives it again; 👎 on "pay": the live model gives it again.
    comparison = compare([], unseen, [pay, fallback], [fallback, pay])
    assert (comparison.n, comparison.candidate_right, comparison.live_right) == (2, 2, 0)
    assert comparison.n_held_out == 0


def test_the_decision_reads_the_same_in_every_front_end() -> None:
    candidate, live = judged("a", 200, candidate=set(range(150)), live=set(range(180)))
    comparison = verdict_of(candidate, live)
    figures = {
        "candidate": comparison.score(comparison.candidate_right),
        "live": comparison.score(comparison.live_right),
        **comparison.figures(),
    }
    text = describe(figures)
    assert "candidate 75.0% vs live 90.0%" in text and "200 questions" in text
    assert "significantly worse" in text
    assert "明显更差" in describe(figures, "zh")
    assert "significantly worse" in describe(figures, short=True)
    unpaired = {"candidate": {"score": None}, "live": None, "unpaired": NO_LIVE_MODEL}
    assert describe(unpaired) == "gate: no live model to compare with"


def test_a_growing_training_set_keeps_holding_out_the_same_questions() -> None:
    """The single fold of a large set is dealt by a hash of each question: a version with more
    pairs holds out mostly the same questions, so the gate can pair them."""
    from model.train import cross_validation_folds

    def held(pairs: list[QAPair]) -> set[QAPair]:
        (fold,) = cross_validation_folds(pairs, seed=0, n_folds=1)
        return {p for p, u in zip(fold.held_out, fold.untaught, strict=True) if not u}

    pairs = [QAPair(f"question {i} {j}", f"answer {i}") for i in range(40) for j in range(30)]
    grown = [*pairs, *(QAPair(f"new {i} {j}", f"answer {i}") for i in range(40) for j in range(3))]
    before, after = held(pairs), held(grown)
    assert len(before) >= 40 * 3 * 0.7  # a tenth of each answer, less the untaught answers
    assert len(before & after) >= 0.8 * len(before)  # drawn at random: about a tenth


def test_the_record_keeps_the_answers_of_taught_held_out_questions() -> None:
    from model.calibration import UNTAUGHT, FallbackRule
    from model.held_out import held_out_record
    from model.predictor import Mixture, Temperatures
    from model.train import HeldOut

    classes = ["a", "b", None]
    held = [QAPair("q a", "A"), QAPair("q b", "B"), QAPair("q untaught", "B"), QAPair("junk", "")]
    logits = np.array([[5.0, 0, 0], [5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    labels = np.array([0, 1, UNTAUGHT, -1])
    negative = QAPair("bundled junk", "")
    kept = held_out_record(
        [QAPair("q a", "A"), negative],
        [HeldOut(logits, None, labels), HeldOut(np.array([[0, 0, 5.0]]), None, np.array([-1]))],
        [held, [negative]],
        [answer_key("A") if c == "a" else answer_key("B") if c == "b" else None for c in classes],
        FallbackRule(0.5, 0.0),
        Mixture(Temperatures(network=1.0, gate=1.0, linear=1.0)),
        {negative},
    )
    assert kept.answers == {
        (match_key("q a"), answer_key("A")): answer_key("A"),
        (match_key("q b"), answer_key("B")): answer_key("A"),  # answered wrong
        (match_key("junk"), FALLBACK): FALLBACK,  # the out-of-scope class wins: the fallback
    }
    assert kept.trained == {match_key("q a")}


# A small FAQ for retraining through the App: six answers, five wordings each, and one answer
# of two wordings, one of which the former gate held out of the served model (its question
# hashed into the held-out tenth).
FAQ = {
    "Reset it with the link on the sign-in page.": [
        "how do I reset my password", "I forgot my password", "password reset",
        "can't log in, lost my password", "change my password",
    ],
    "We are open 9:00-17:00, Monday to Friday.": [
        "when are you open", "opening hours", "what time do you close",
        "are you open on saturday", "business hours",
    ],
    "Shipping takes 3-5 working days.": [
        "how long does shipping take", "when will my parcel arrive", "delivery time",
        "how fast do you ship", "shipping duration",
    ],
    "Send it back within 30 days for a full refund.": [
        "how do I return an item", "can I get a refund", "return policy",
        "I want my money back", "refund an order",
    ],
    "We take cards, PayPal and bank transfers.": [
        "which payment methods do you accept", "can I pay with paypal", "do you take visa",
        "payment options", "can I pay by bank transfer",
    ],
    "Write to help@example.com or call 555-0100.": [
        "how do I contact support", "customer service phone number", "support email",
        "talk to a human", "how can I reach you",
    ],
    "There is a bike rack by the main entrance.": [
        "where can I park my bike", "is there bicycle parking",
    ],
}  # fmt: skip
FORMERLY_HELD_OUT = "where can I park my bike"


def in_former_holdout(question: str) -> bool:
    """The former gate's held-out tenth: by a hash of the question."""
    return hashlib.sha1(match_key(question).encode("utf-8")).digest()[0] * 100 // 256 < 10


# Two real training runs in child processes: the PostgreSQL run is `slow`, the SQLite one is
# the fast tests' retraining through the App.
@pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow])],
    indirect=True,
)
async def test_retraining_serves_a_model_of_every_pair_and_blocks_a_poisoned_one(
    settings, store
) -> None:
    from bot.app.app import App

    pairs = [QAPair(q, answer) for answer, questions in FAQ.items() for q in questions]
    assert in_former_holdout(FORMERLY_HELD_OUT)
    await store.add_pairs(pairs, source="imported")
    app = App(settings, store)
    # The real training run with a linear network in place of Keras (seconds, not minutes).
    app.models.trainer.worker_module = "tests.linear_trainer"
    await app.start()
    try:
        first = await app.models.retrain()
        assert first.promoted and first.unpaired == NO_LIVE_MODEL and first.live is None
        served = app.models.current
        assert served is not None and served.version == first.trained.version
        # The model itself (not the exact-match table of taught questions) answers it.
        bikes = served.predict(FORMERLY_HELD_OUT)
        assert bikes.answer_id == answer_key("There is a bike rack by the main entrance.")
        kept = HeldOutRecord.load(Path(first.trained.path))
        assert kept is not None and kept.trained == {match_key(p.question) for p in pairs}

        # The same data again: compared on the questions both versions held out; not worse.
        second = await app.models.retrain()
        assert second.comparison is not None and second.comparison.n_held_out >= 20
        assert second.live is not None and second.comparison.verdict != WORSE
        assert second.promoted and app.models.current.version == second.trained.version

        # Poisoned: every question also mapped to spam. Blocked; the live model keeps serving.
        await store.add_pairs([QAPair(p.question, "Buy crypto now!") for p in pairs], "imported")
        third = await app.models.retrain()
        assert third.comparison is not None and third.comparison.verdict == WORSE, third
        assert not third.promoted
        assert app.models.current.version == second.trained.version
        assert app.models.registry.current_version() == second.trained.version
        gate = (await store.gate_figures())[third.trained.version]
        assert gate["verdict"] == WORSE and gate["promoted"] is False
        assert "significantly worse" in describe(gate)
        listed = {v.name: v for v in await app.models.versions()}
        assert listed[third.trained.version].metrics["gate"]["verdict"] == WORSE
    finally:
        await app.stop()
