"""/review's grouping of similar wordings: the same groups as comparing every pair, with memory
linear in the queue, computed off the event loop and remembered between presses."""

from __future__ import annotations

import random
import re
import threading
import tracemalloc

import numpy as np
import pytest

from bot.app.app import BUNDLED_PAIRS, App
from bot.app.learning import SIMILAR_QUESTIONS
from bot.app.similarity import SimilarWordings, similar_pairs
from model.datasets import read_pairs
from model.text import Featurizer
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
    """Twice the queue, about twice the memory (comparing every pair took four times)."""
    peaks = []
    questions = made_up_questions(4_500, seed=1)
    for batch in (questions[:1_500], questions[1_500:]):
        await queue_questions(app, batch)
        await app.learning.review_queue()  # what is loaded once (the featurizer) is not counted
        app.learning.records.similar_wordings = SimilarWordings(SIMILAR_QUESTIONS)
        tracemalloc.start()
        queue = await app.learning.review_queue()
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert sum(len(item.wordings) for item in queue) == len(set(batch))
        wordings = [w for item in queue for w in item.wordings.values()]
        await app.learning.records.decide(wordings, answer=None, decided_by=None)
    assert peaks[1] < 2.6 * peaks[0], peaks


async def test_review_grouping_runs_off_the_event_loop_and_is_remembered(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_thread = threading.current_thread()
    batches: list[tuple[int, threading.Thread]] = []
    transform = Featurizer.transform

    def recording(self, texts, **options):  # noqa: ANN001, ANN202
        batches.append((len(texts), threading.current_thread()))
        return transform(self, texts, **options)

    monkeypatch.setattr(Featurizer, "transform", recording)
    await queue_questions(app, made_up_questions(300, seed=2))

    def groupings() -> list[threading.Thread]:
        """The threads of the featurizations of the whole queue so far."""
        return [thread for size, thread in batches if size >= 100]

    first = await app.learning.review_queue()
    assert len(groupings()) == 1 and loop_thread not in groupings()
    assert [item.key for item in await app.learning.review_queue()] == [item.key for item in first]
    assert len(groupings()) == 1  # remembered
    # A decision takes a group out of the queue: the rest keep their groups.
    await app.learning.records.decide(
        list(first[0].wordings.values()), answer=None, decided_by=None
    )
    assert [item.key for item in await app.learning.review_queue()] == [i.key for i in first[1:]]
    assert len(groupings()) == 1
    # A new question, or a new model, and the queue is grouped again.
    await queue_questions(app, ["how do I change my wifi password"])
    await app.learning.review_queue()
    assert len(groupings()) == 2
    assert app.models.current is not None
    app.models.current._featurizer = Featurizer.from_json(app.models.current.featurizer.to_json())
    await app.learning.review_queue()
    assert len(groupings()) == 3 and loop_thread not in groupings()
