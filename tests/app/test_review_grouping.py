"""/review's grouping of similar wordings: the same groups as comparing every pair, with memory
linear in the queue, computed in a child process and remembered between presses."""

from __future__ import annotations

import os
import random
import re
import shutil
import tracemalloc
from pathlib import Path

import numpy as np

from bot.app.app import BUNDLED_PAIRS, App
from bot.app.learning import SIMILAR_QUESTIONS, grouped_queue, read_queue_rows, rescored_head
from bot.app.similarity import SimilarWordings, similar_pairs
from model.datasets import read_pairs
from tests.factories import record


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


def test_similar_pairs_are_those_of_comparing_every_pair(app: App) -> None:
    assert app.models.current is not None
    features = app.models.current.featurizer.transform(made_up_questions(1_500))
    earlier, later = similar_pairs(features, SIMILAR_QUESTIONS)

    dense = features.toarray().astype(np.float64)
    dense /= np.maximum(np.linalg.norm(dense, axis=1, keepdims=True), 1e-12)
    similarity = np.triu(dense @ dense.T, k=1)
    # Pairs within float rounding of the threshold may fall either way.
    clear = np.abs(similarity - SIMILAR_QUESTIONS) > 1e-5
    expected = {
        (int(i), int(j))
        for i, j in zip(*np.nonzero((similarity >= SIMILAR_QUESTIONS) & clear), strict=True)
    }
    found = {(int(i), int(j)) for i, j in zip(earlier, later, strict=True)}
    assert len(expected) > 50  # the near twins
    assert expected == {pair for pair in found if clear[pair]}


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


async def test_review_queue_is_built_in_a_child_process_and_remembered(
    app: App, tmp_path: Path
) -> None:
    await queue_questions(app, made_up_questions(300, seed=2))
    first = await app.learning.review_queue()
    assert first.built_by_pid != os.getpid() and len(first) > 1
    computed = first.similar_computed
    # The same as grouping here, with the same model (which scores the head again).
    assert app.models.current is not None
    rows = await read_queue_rows(app.store)
    grouped = grouped_queue(
        rows, app.known_answers.keys(), app.models.current.featurizer,
        SimilarWordings(SIMILAR_QUESTIONS),
    )  # fmt: skip
    here = rescored_head(grouped, app.models.current, rows.wordings_per_answer)
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
