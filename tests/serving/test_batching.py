"""Micro-batching of predictions: questions asked in one event-loop turn share a model call."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.serving.batching import PredictionBatcher
from model.predictor import AnswerModel, Prediction, PredictionRow
from model.registry import ModelRegistry

QUESTIONS = ["你好", "what can you do", "how do I reset my password", "量子色动力学是什么"]


@pytest.fixture(scope="module")
def model(seed_model_dir: Path) -> AnswerModel:
    loaded = ModelRegistry(seed_model_dir).load_current()
    assert loaded is not None
    return loaded


def same(a: Prediction, b: Prediction) -> bool:
    """Equal up to float rounding (a batch and a single row take different product paths)."""
    return (
        (a.answer_id, a.answer, a.fallback) == (b.answer_id, b.answer, b.fallback)
        and a.confidence == pytest.approx(b.confidence, abs=1e-5)
        and [c[0] for c in a.candidates] == [c[0] for c in b.candidates]
    )


class CountingModel:
    """Wraps a model and records the batches it is asked."""

    def __init__(self, model: AnswerModel, fail: bool = False):
        self.model, self.fail = model, fail
        self.batches: list[list[str]] = []

    @property
    def path(self) -> Path:
        return self.model.path

    @property
    def is_loaded(self) -> bool:
        return self.model.is_loaded

    def load_all(self) -> None:
        self.model.load_all()

    def predictions(self, rows: Sequence[PredictionRow]) -> list[Prediction]:
        return self.model.predictions(rows)

    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]:
        self.batches.append(list(texts))
        if self.fail:
            raise RuntimeError("model broke")
        return self.model.predict_batch(texts)


async def test_questions_of_one_turn_share_one_model_call(model: AnswerModel) -> None:
    counting, batcher = CountingModel(model), PredictionBatcher()
    predictions = await asyncio.gather(*(batcher.predict(counting, q) for q in QUESTIONS))
    assert counting.batches == [QUESTIONS]
    # Each asker gets the prediction of its own question, as a direct call gives it.
    assert all(same(p, model.predict(q)) for p, q in zip(predictions, QUESTIONS, strict=True))


async def test_questions_of_later_turns_get_their_own_call(model: AnswerModel) -> None:
    counting, batcher = CountingModel(model), PredictionBatcher()
    first = await batcher.predict(counting, QUESTIONS[0])
    second = await batcher.predict(counting, QUESTIONS[1])
    assert counting.batches == [[QUESTIONS[0]], [QUESTIONS[1]]]
    assert same(first, model.predict(QUESTIONS[0])) and same(second, model.predict(QUESTIONS[1]))


async def test_while_busy_questions_of_the_next_turns_wait_for_one_call(
    model: AnswerModel,
) -> None:
    counting, batcher = CountingModel(model), PredictionBatcher(interval=0.2)
    await batcher.predict(counting, QUESTIONS[0])  # after a quiet spell: at once
    started = asyncio.get_running_loop().time()

    async def ask_later(turns: int, question: str) -> Prediction:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await batcher.predict(counting, question)

    await asyncio.gather(*(ask_later(n, q) for n, q in enumerate(QUESTIONS[1:])))
    assert counting.batches == [QUESTIONS[:1], QUESTIONS[1:]]
    assert asyncio.get_running_loop().time() - started >= 0.15


async def test_with_nothing_else_in_progress_a_question_never_waits(model: AnswerModel) -> None:
    counting = CountingModel(model)
    batcher = PredictionBatcher(interval=0.5, busy=lambda: False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for question in QUESTIONS:  # one after the other, each right after the previous call
        await batcher.predict(counting, question)
    assert counting.batches == [[q] for q in QUESTIONS]
    assert loop.time() - started < 0.4


async def test_each_question_keeps_the_model_it_asked(model: AnswerModel) -> None:
    old, new, batcher = CountingModel(model), CountingModel(model), PredictionBatcher()
    await asyncio.gather(
        batcher.predict(old, "a"), batcher.predict(new, "b"), batcher.predict(old, "c")
    )
    assert (old.batches, new.batches) == ([["a", "c"]], [["b"]])


async def test_a_failing_model_call_reaches_every_asker_and_the_next_turn_works(
    model: AnswerModel,
) -> None:
    broken, batcher = CountingModel(model, fail=True), PredictionBatcher()
    results = await asyncio.gather(
        *(batcher.predict(broken, q) for q in QUESTIONS[:2]), return_exceptions=True
    )
    assert [str(r) for r in results] == ["model broke", "model broke"]
    assert same(await batcher.predict(CountingModel(model), "你好"), model.predict("你好"))


async def test_a_cancelled_asker_does_not_disturb_the_others(model: AnswerModel) -> None:
    counting, batcher = CountingModel(model), PredictionBatcher()
    cancelled = asyncio.ensure_future(batcher.predict(counting, QUESTIONS[0]))
    kept = asyncio.ensure_future(batcher.predict(counting, QUESTIONS[1]))
    await asyncio.sleep(0)  # both have asked
    cancelled.cancel()
    assert same(await kept, model.predict(QUESTIONS[1]))
    assert cancelled.cancelled()
