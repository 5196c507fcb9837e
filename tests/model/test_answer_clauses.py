"""The clauses of an answer's text as more training questions of it, and their weights."""

from __future__ import annotations

import numpy as np

from model.calibration import OUT_OF_SCOPE
from model.datasets import QAPair
from model.text import words_of
from model.train import (
    ANSWER_CLAUSE_MAX_WORDS,
    ANSWER_CLAUSE_WEIGHT,
    ANSWER_CLAUSES_PER_ANSWER,
    _example_weights,
    answer_clauses,
)

DAY_PASS = (
    "A day pass costs ¥80 and includes coffee, Wi-Fi and a hot desk until closing. "
    "Lockers are ¥150/month; ask at the front desk!"
)
HOURS_ZH = "营业时间：每天 8:00–22:00，周末也开放。会员持门禁卡可 24 小时进入。"


def test_each_clause_of_an_answer_is_one_more_wording_of_it() -> None:
    pairs = [QAPair("can I just come for a day", DAY_PASS), QAPair("几点开门", HOURS_ZH)]
    assert answer_clauses(pairs) == [
        # The first run of the first sentence is answer_wordings' one: left out.
        QAPair("wi-fi and a hot desk until closing", DAY_PASS),
        QAPair("lockers are ¥150/month", DAY_PASS),
        QAPair("ask at the front desk", DAY_PASS),
        # Chinese marks end clauses too; times keep their colons.
        QAPair("营业时间:每天 8:00–22:00", HOURS_ZH),
        QAPair("周末也开放", HOURS_ZH),
        QAPair("会员持门禁卡可 24 小时进入", HOURS_ZH),
    ]


def test_identifiers_short_answers_and_questions_already_asked_give_no_clause() -> None:
    pairs = [
        QAPair("how do I set a new code for my card", "pin_change"),
        QAPair("when will it arrive", "Orders ship within two working days."),
        QAPair("lockers are ¥150/month", DAY_PASS),  # asked: not repeated as a clause
        QAPair("asdfgh", ""),
    ]
    clauses = answer_clauses(pairs)
    assert [c.question for c in clauses] == [
        "wi-fi and a hot desk until closing",
        "ask at the front desk",
    ]


def test_a_long_answer_gives_short_runs_and_a_bounded_number_of_them() -> None:
    sentence = "Clause {} says that members share the space, its furniture and its network."
    terms = " ".join(sentence.format(i) for i in range(200))
    assert len(terms) > 4096
    clauses = answer_clauses([QAPair("what are the terms", terms)])
    assert len(clauses) == ANSWER_CLAUSES_PER_ANSWER
    for clause in clauses:
        assert 2 <= len(words_of(clause.question)) <= ANSWER_CLAUSE_MAX_WORDS
    # A decimal point does not end a clause.
    price = "Black and white printing costs ¥0.5 a page, colour costs ¥2 a page."
    assert [c.question for c in answer_clauses([QAPair("can I print", price)])] == [
        "black and white printing costs ¥0.5",
        "a page, colour costs ¥2 a page",
    ]


def test_clauses_weigh_less_and_out_of_scope_questions_share_the_answered_weight() -> None:
    labels = np.array([0, 0, 1, 0, 1, *[OUT_OF_SCOPE] * 10])
    importance = np.ones(len(labels), dtype=np.float32)
    importance[3:5] = ANSWER_CLAUSE_WEIGHT  # two answer clauses
    weights = _example_weights(labels, importance)
    np.testing.assert_allclose(weights[:5], [1, 1, 1, ANSWER_CLAUSE_WEIGHT, ANSWER_CLAUSE_WEIGHT])
    answered_weight = 3 + 2 * ANSWER_CLAUSE_WEIGHT
    np.testing.assert_allclose(weights[5:].sum(), answered_weight, rtol=1e-6)
    # Without clauses: every question weighs 1, the out-of-scope ones share the answered ones'.
    np.testing.assert_allclose(_example_weights(labels)[5:], [5 / 10] * 10, rtol=1e-6)
