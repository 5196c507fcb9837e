"""/review's grouping of similar wordings: the same groups as comparing every pair, with work
and memory linear in the queue, computed in a child process and remembered between presses."""

from __future__ import annotations

import os
import random
import re
import shutil
import tracemalloc
from collections import Counter
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import sparse

import bot.app.similarity
from bot.app.app import BUNDLED_PAIRS, BUNDLED_PARAPHRASES, App
from bot.app.review_queue import (
    SIMILAR_QUESTIONS,
    ReviewItem,
    ReviewKind,
    ReviewQueue,
    grouped_queue,
    merge_similar,
    rescored_head,
)
from bot.app.similarity import EARLIER_PER_KEY, SimilarWordings, similar_pairs
from bot.storage.learning_records import read_queue_rows
from model.datasets import read_pairs
from model.text import Featurizer
from tests.factories import record


@pytest.fixture(scope="module")
def featurizer() -> Featurizer:
    """Features of the bundled questions, as the bundled model's."""
    return Featurizer.fit([p.question for p in read_pairs(BUNDLED_PAIRS)])


def made_up_questions(count: int, seed: int = 0) -> list[str]:
    """Distinct questions of 3-7 words of the bundled set's vocabulary, plus some near twins
    (one word changed), so there is something to group."""
    vocabulary = sorted(
        {w for p in read_pairs(BUNDLED_PAIRS) for w in re.findall(r"[a-z]+", p.question.lower())}
    )
    rng = random.Random(seed)
    questions: list[str] = []
    while len(questions) < count:
        question = rng.sample(vocabulary, rng.randint(3, 7))
        questions.append(" ".join(question))
        if rng.random() < 0.2 and len(questions) < count:
            question[rng.randrange(len(question))] = rng.choice(vocabulary)
            questions.append(" ".join(question) + "?")
    return questions


async def queue_questions(app: App, questions: list[str]) -> None:
    """Log the questions as fallbacks, so they are all in the review queue."""
    records = [record(question=q, fallback=True, confidence=0.1, answer_id=None) for q in questions]
    await app.store.log_exchanges(records)


Pairs = set[tuple[int, int]]


def every_similar_pair(featurizer: Featurizer, texts: list[str]) -> tuple[Pairs, Pairs]:
    """(similar, unclear): the pairs (i, j), i < j, of texts whose features' cosine is at least
    SIMILAR_QUESTIONS, by comparing every pair; unclear: those within float rounding of it,
    which may fall either way."""
    features = sparse.csr_matrix(featurizer.transform(texts), dtype=np.float64)
    norms = np.sqrt(np.asarray(features.multiply(features).sum(axis=1)).ravel())
    features = sparse.csr_matrix(sparse.diags(1 / np.maximum(norms, 1e-12)) @ features)
    similar: Pairs = set()
    unclear: Pairs = set()
    for start in range(0, len(texts), 500):
        cosines = np.triu((features[start : start + 500] @ features.T).toarray(), k=start + 1)
        for found, mask in (
            (similar, cosines >= SIMILAR_QUESTIONS),
            (unclear, np.abs(cosines - SIMILAR_QUESTIONS) <= 1e-5),
        ):
            found |= {(int(i) + start, int(j)) for i, j in zip(*np.nonzero(mask), strict=True)}
    return similar, unclear


def realistic_questions() -> list[str]:
    """The bundled questions and their paraphrases, unrelated questions, short ones sharing one
    word ("yes" / "i vote yes"), families of questions sharing all words but one (as many as
    compared per key), and near twins."""
    files = (
        BUNDLED_PAIRS,
        BUNDLED_PARAPHRASES,
        Path(__file__).parent.parent / "data/unrelated_questions.csv",
    )
    questions = [p.question for f in files for p in read_pairs(f)]
    questions += ["yes", "i vote yes", "thanks", "thanks a lot", "ok", "ok then"]
    vocabulary = sorted({w for q in questions for w in re.findall(r"[a-z]+", q.lower())})
    family = EARLIER_PER_KEY + 1
    questions += [f"how do i reset my {word} password" for word in vocabulary[:family]]
    questions += [f"what does {word} mean" for word in vocabulary[-family:]]
    return list(dict.fromkeys(questions + made_up_questions(2_000, seed=3)))


def grouped(texts: list[str], pairs: Pairs) -> list[list[str]]:
    """The review groups of texts (in queue order) given their similar pairs."""
    queue = [
        ReviewItem(t, t, n, count=len(texts) - n, wordings={t: t}) for n, t in enumerate(texts)
    ]
    earlier, later = (np.array(side, dtype=np.int64) for side in zip(*sorted(pairs), strict=True))
    return [list(item.wordings) for item in merge_similar(queue, (earlier, later))]


def test_similar_pairs_group_as_comparing_every_pair(featurizer: Featurizer) -> None:
    """The signatures find the pairs that make the groups: on near twins, every similar pair;
    on realistic questions, the same groups (beyond EARLIER_PER_KEY wordings sharing a key,
    not every pair is compared: larger families may be split)."""
    for texts in (made_up_questions(1_500), realistic_questions()):
        expected, unclear = every_similar_pair(featurizer, texts)
        found = set(zip(*(a.tolist() for a in similar_pairs(
            featurizer.transform(texts), SIMILAR_QUESTIONS, len(featurizer.words)
        )), strict=True))  # fmt: skip
        assert len(expected) > 50  # the near twins (and the families)
        assert found <= expected | unclear
        assert grouped(texts, expected - unclear) == grouped(texts, found - unclear)
        if len(texts) == 1_500:
            assert found - unclear == expected - unclear


def test_similar_pairs_work_is_linear_in_the_queue(
    featurizer: Featurizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twice the queue, about twice the pairs compared, even when a family of similar questions
    grows with the queue (comparing every pair of it: four times)."""
    compared: list[int] = []
    cosines = bot.app.similarity._cosines

    def counting(x: Any, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        compared[-1] += len(i)
        return cosines(x, i, j)

    monkeypatch.setattr(bot.app.similarity, "_cosines", counting)
    for size in (2_000, 4_000):
        # Half of them alike but for a number: all similar to each other.
        texts = made_up_questions(size // 2, seed=5) + [
            f"how do i reset my password {n}" for n in range(size // 2)
        ]
        compared.append(0)
        similar_pairs(featurizer.transform(texts), SIMILAR_QUESTIONS, len(featurizer.words))
    assert compared[0] > 1_000
    assert compared[1] < 2.3 * compared[0], compared


class CountingFeaturizer:
    """A featurizer that counts the texts it featurizes."""

    def __init__(self, featurizer: Featurizer) -> None:
        self.featurizer = featurizer
        self.words = featurizer.words
        self.featurized: list[int] = []

    def transform(self, texts: Sequence[str]) -> Any:
        self.featurized.append(len(texts))
        return self.featurizer.transform(texts)


def test_similar_wordings_featurize_only_new_wordings(featurizer: Featurizer) -> None:
    counting = CountingFeaturizer(featurizer)
    similar = SimilarWordings(SIMILAR_QUESTIONS)
    texts = made_up_questions(300, seed=6)
    similar.pairs(texts, texts, counting)
    # A decided wording leaves, a new one comes: one text featurized, the pairs computed again.
    later = [*texts[1:150], "how do i change my wifi password", *texts[150:]]
    pairs = similar.pairs(later, later, counting)
    assert counting.featurized == [300, 1] and similar.computed == 2
    afresh = SimilarWordings(SIMILAR_QUESTIONS).pairs(later, later, featurizer)
    assert len(pairs[0]) > 5
    assert sorted(zip(*(p.tolist() for p in pairs), strict=True)) == sorted(
        zip(*(p.tolist() for p in afresh), strict=True)
    )


@pytest.mark.slow  # 4,500 questions queued and grouped: seconds of CPU
async def test_review_grouping_memory_is_linear_in_the_queue(app: App) -> None:
    """Twice the queue, about twice the memory (comparing every pair took four times). Measured
    on the grouping function itself, here (the bot runs it in its child process)."""
    assert app.models.current is not None
    featurizer = app.models.current.featurizer
    peaks = []
    questions = made_up_questions(4_500, seed=1)
    for batch in (questions[:1_500], questions[1_500:]):
        await queue_questions(app, batch)
        rows = await read_queue_rows(app.store)
        tracemalloc.start()
        queue = grouped_queue(rows, frozenset(), featurizer, SimilarWordings(SIMILAR_QUESTIONS))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert sum(len(item.wordings) for item in queue) == len(set(batch))
        wordings = [w for item in queue for w in item.wordings.values()]
        await app.learning.records.decide(wordings, answer=None, decided_by=None)
    assert peaks[1] < 2.6 * peaks[0], peaks


async def queue_built_here(app: App) -> list[ReviewItem]:
    """The review queue built from scratch in this process, with the live model."""
    assert app.models.current is not None
    rows = await read_queue_rows(app.store)
    grouped = grouped_queue(
        rows, app.known_answers.keys(), app.models.current.featurizer,
        SimilarWordings(SIMILAR_QUESTIONS),
    )  # fmt: skip
    return rescored_head(grouped, app.models.current, rows.wordings_per_answer)


async def test_review_queue_is_built_in_a_child_process_and_remembered(
    app: App, tmp_path: Path
) -> None:
    await queue_questions(app, made_up_questions(300, seed=2))
    first = await app.learning.review_queue()
    assert first.built_by_pid != os.getpid() and len(first) > 1
    computed = first.similar_computed
    # The same as grouping here, with the same model (which scores the head again).
    here = await queue_built_here(app)
    assert [(i.key, i.count, i.wordings) for i in first] == [
        (i.key, i.count, i.wordings) for i in here
    ]
    assert await app.learning.review_queue() is first  # nothing changed: remembered
    # A decision takes a group out of the queue: the rest keep their groups, the similar pairs
    # are not computed again.
    await app.learning.records.decide(
        list(first[0].wordings.values()), answer=None, decided_by=None
    )
    after = await app.learning.review_queue()
    assert sorted(item.key for item in after) == sorted(item.key for item in first[1:])
    assert after.similar_computed == computed
    group = first[1]
    assert await app.learning.review_group(min(group.exchange_ids)) == list(group.wordings.values())
    # A new question, or a new model, and the queue is grouped again.
    await queue_questions(app, ["how do I change my wifi password"])
    assert (await app.learning.review_queue()).similar_computed == computed + 1
    new_model = tmp_path / "new-model"
    shutil.copytree(app.models.current.path, new_model)
    app.models.current.path = new_model
    assert (await app.learning.review_queue()).similar_computed == computed + 2


def test_review_items_reach_the_bot_whole() -> None:
    item = ReviewItem(
        "key", "question", 7, count=3, kind=ReviewKind.CONFIRMED, answer="<b>a</b>",
        answer_id="a1", expected_wrong=1.5, likely_answers=Counter({"a1": 2}),
        rejected_answers=Counter({"b1": 1}), priority=2.5, first_confirmed={"key": 5},
        reasons=Counter({"👍": 2}), suggestions=[(1, "try this")], person_answers=[(2, "p")],
        choices={"answer": (3, 1)}, wordings={"key": "question"}, exchange_ids={5, 7},
    )  # fmt: skip
    unset = ReviewItem("", "", 0)
    assert [f.name for f in fields(item) if getattr(item, f.name) == getattr(unset, f.name)] == []
    copy = ReviewQueue([item])[0]  # pickled and unpickled
    assert copy == item and type(copy.kind) is ReviewKind
    assert {type(copy.likely_answers), type(copy.rejected_answers), type(copy.reasons)} == {Counter}


async def test_after_a_decision_the_queue_is_the_one_built_afresh(app: App) -> None:
    """The child keeps the log's rows and the head's predictions from one build to the next,
    and reads the decisions and the training set again: an approval's new wordings change the
    priorities (coverage) as they would in a queue built from scratch."""
    await queue_questions(app, made_up_questions(300, seed=3))
    first = await app.learning.review_queue()
    assert app.models.current is not None
    # The answer the model guesses for most items: approving wordings for it lowers theirs.
    [(answer_id, _)] = Counter(a for item in first for a in item.likely_answers).most_common(1)
    answer = app.models.current.answers()[answer_id]
    for item in first[:3]:
        await app.learning.approve(list(item.wordings.values()), answer, admin_id=None)
        after = await app.learning.review_queue()
        afresh = await queue_built_here(app)
        assert [(i.key, i.wordings) for i in after] == [(i.key, i.wordings) for i in afresh]
        # Equal to float32 precision (a priority may be summed in float32 on one road and in
        # float64 on the other, and the sentence encoder's vectors of a question differ in their
        # last bits with the batch it is encoded in).
        assert [i.priority for i in after] == pytest.approx([i.priority for i in afresh], rel=1e-5)
