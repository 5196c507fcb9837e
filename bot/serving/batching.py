"""Micro-batching of predictions: the questions that reach the model in the same turn of the
event loop are answered by one `predict_batch` call.

Telegram delivers updates in batches (one getUpdates answer, or webhook posts arriving
together), and every handler of such a batch asks the model before its first real wait. One
model call for eight questions costs about what two single calls cost (the featurizer's fixed
cost dominates a single question), so under load the bot spends its time on Telegram, not on
the model. A lone question is answered in the same loop turn: batching adds no waiting.
While other messages are being handled (`busy`), model calls start at most every `interval`
seconds, so that a busy bot answers them in batches rather than one by one: once
python-telegram-bot's limit of concurrent updates is reached, each finished update lets the
next one in, so updates trickle in one at a time. In the load benchmark's bursts, a 5 ms
interval left most calls with one or two questions (0.8 ms of model CPU per message); 20 ms
gives batches of 3-6 (0.33 ms).

With a model process (bot/serving/model_process.py) the batch is answered there, and the answers are
handed out when it replies; the questions of a call it cannot answer (it died meanwhile) are
answered here instead, once the model's weights are read in a worker thread (the first time:
they live in the model process until then, and reading them takes far too long for the loop).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from bot.serving.model_process import ModelProcess
from model.predictor import Prediction, PredictionRow


class BatchedModel(Protocol):
    """What the batcher asks of a model (an AnswerModel; tests wrap one to count calls)."""

    @property
    def path(self) -> Path: ...
    @property
    def is_loaded(self) -> bool: ...
    def load_all(self) -> None: ...
    def predict_batch(self, texts: Sequence[str]) -> list[Prediction]: ...
    def predictions(self, rows: Sequence[PredictionRow]) -> list[Prediction]: ...


Waiting = list[tuple[BatchedModel, str, asyncio.Future[Prediction]]]


class PredictionBatcher:
    def __init__(
        self,
        interval: float = 0.02,
        busy: Callable[[], bool] = lambda: True,
        model_process: ModelProcess | None = None,
    ) -> None:
        self.interval = interval
        # Whether other messages are in progress: only then can waiting fill a batch.
        self.busy = busy
        self.model_process = model_process
        self._waiting: Waiting = []
        self._last_call = float("-inf")

    async def predict(self, model: BatchedModel, text: str) -> Prediction:
        loop = asyncio.get_running_loop()
        if not self._waiting:
            # Runs once every handler already scheduled in this loop turn has asked, or, when
            # busy, once `interval` has passed since the last model call.
            delay = self._last_call + self.interval - loop.time()
            if delay > 0 and self.busy():
                loop.call_later(delay, self._predict_waiting)
            else:
                loop.call_soon(self._predict_waiting)
        future: asyncio.Future[Prediction] = loop.create_future()
        self._waiting.append((model, text, future))
        return await future

    def _predict_waiting(self) -> None:
        self._last_call = asyncio.get_running_loop().time()
        waiting, self._waiting = self._waiting, []
        # A model swap can land between two questions of a turn: each keeps the model it asked.
        by_model: dict[int, Waiting] = {}
        for item in waiting:
            by_model.setdefault(id(item[0]), []).append(item)
        for items in by_model.values():
            model = items[0][0]
            if self.model_process is not None and self.model_process.serves(model.path):
                rows = self.model_process.predict(model.path, [text for _, text, _ in items])
                rows.add_done_callback(functools.partial(self._answer_from_process, items))
            else:
                _answer_here(items)

    @staticmethod
    def _answer_from_process(items: Waiting, rows: asyncio.Future[list[PredictionRow]]) -> None:
        if rows.exception() is not None:  # the process died: answer here instead
            _answer_here(items)
            return
        model = items[0][0]
        for (_, _, future), prediction in zip(items, model.predictions(rows.result()), strict=True):
            if not future.done():  # the asker may have been cancelled meanwhile
                future.set_result(prediction)


# Tasks reading a model for _answer_here (the loop keeps only weak references to tasks).
_loading: set[asyncio.Task[None]] = set()


def _answer_here(items: Waiting) -> None:
    """Answer one model's waiting questions in this process."""
    model = items[0][0]
    if not model.is_loaded:
        task = asyncio.get_running_loop().create_task(_load_then_answer(items))
        _loading.add(task)
        task.add_done_callback(_loading.discard)
        return
    try:
        predictions = model.predict_batch([text for _, text, _ in items])
    except Exception as error:  # noqa: BLE001 - each asker gets it, as with a direct call
        for _, _, future in items:
            if not future.done():
                future.set_exception(error)
        return
    for (_, _, future), prediction in zip(items, predictions, strict=True):
        if not future.done():  # the asker may have been cancelled meanwhile
            future.set_result(prediction)


async def _load_then_answer(items: Waiting) -> None:
    try:
        await asyncio.to_thread(items[0][0].load_all)
    except Exception as error:  # noqa: BLE001 - a broken model: each asker gets it
        for _, _, future in items:
            if not future.done():
                future.set_exception(error)
        return
    _answer_here(items)
