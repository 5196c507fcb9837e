"""The held-out-wording protocol of bench/small_faq.py (the splits; no training)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bench.small_faq import (
    MIN_WORDINGS_TO_HOLD_OUT,
    hold_out_language,
    hold_out_wordings,
    is_chinese,
    synthetic_faq,
)
from model.datasets import QAPair, answer_key, read_pairs, write_pairs_csv
from model.text import match_key

COWORKING = read_pairs(Path(__file__).parents[1] / "data" / "coworking_faq.csv")


def wordings_per_answer(pairs: list[QAPair]) -> Counter[str]:
    return Counter(answer_key(a) for a, _ in {(p.answer, match_key(p.question)) for p in pairs})


def test_one_wording_of_each_answer_with_three_or_more_is_held_out() -> None:
    training, held_out = hold_out_wordings(COWORKING, draw=0)
    counts = wordings_per_answer(COWORKING)
    eligible = {key for key, count in counts.items() if count >= MIN_WORDINGS_TO_HOLD_OUT}
    assert sorted(answer_key(p.answer) for p in held_out) == sorted(eligible)
    held_keys = {match_key(p.question) for p in held_out}
    # A held-out wording is never trained on, not even as a repeated row; the others all are.
    assert not held_keys & {match_key(p.question) for p in training}
    assert len(training) + sum(match_key(p.question) in held_keys for p in COWORKING) == len(
        COWORKING
    )
    assert wordings_per_answer(training) == {
        key: count - (key in eligible) for key, count in counts.items()
    }


def test_one_language_of_the_answers_asked_in_both_is_held_out() -> None:
    languages: dict[str, set[bool]] = {}
    for pair in COWORKING:
        languages.setdefault(answer_key(pair.answer), set()).add(is_chinese(pair.question))
    both = {key for key, seen in languages.items() if len(seen) == 2}
    assert both and len(both) < len(languages)
    for chinese in (True, False):
        training, held_out = hold_out_language(COWORKING, chinese)
        assert len(training) + len(held_out) == len(COWORKING)
        assert {answer_key(p.answer) for p in held_out} == both
        assert all(is_chinese(p.question) == chinese for p in held_out)
        # Every such answer keeps its other language, every other answer all its wordings.
        taught = {answer_key(p.answer) for p in training if is_chinese(p.question) != chinese}
        assert both <= taught
        assert {answer_key(p.answer) for p in training} == set(languages)


def test_draws_are_seeded_and_differ() -> None:
    first = hold_out_wordings(COWORKING, draw=1)[1]
    assert first == hold_out_wordings(COWORKING, draw=1)[1]
    assert first != hold_out_wordings(COWORKING, draw=2)[1]


def test_a_synthetic_faq_has_the_answers_asked_with_one_to_eight_wordings(tmp_path: Path) -> None:
    source = [QAPair(f"question {a} {q}", f"answer_{a}") for a in range(30) for q in range(12)]
    write_pairs_csv(source, tmp_path / "train.csv")
    faq = synthetic_faq("synthetic", tmp_path / "train.csv", 20)
    counts = Counter(p.answer for p in faq.pairs)
    assert len(counts) == 20
    assert all(1 <= count <= 8 for count in counts.values())
    assert len(set(counts.values())) > 1
    assert set(faq.pairs) <= set(source)
    assert faq == synthetic_faq("synthetic", tmp_path / "train.csv", 20)
