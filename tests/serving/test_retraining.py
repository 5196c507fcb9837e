"""The training worker runs in the background: nicer than the bot, its thread pools bounded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from bot.app.models import ModelLifecycle
from bot.serving.retraining import (
    THREAD_VARIABLES,
    TrainingFailedError,
    TrainingRunner,
    default_training_threads,
)
from bot.storage.learning_records import LearningRecords
from bot.storage.store import Store
from model.datasets import QAPair
from tests.conftest import make_settings


async def worker_report(runner: TrainingRunner) -> dict[str, Any]:
    """What tests/environment_reporting_trainer.py saw of itself when this runner started it."""
    runner.worker_module = "tests.environment_reporting_trainer"
    events: list[dict[str, Any]] = []

    async def record(event: dict[str, Any]) -> None:
        events.append(event)

    with pytest.raises(TrainingFailedError):
        await runner.train([QAPair("q", "a"), QAPair("r", "b")], record)
    [event] = events
    return event


async def test_the_bot_trains_at_a_lower_priority_with_bounded_threads(home: Path) -> None:
    settings = make_settings(home, QABOT_TRAINING_NICENESS="7", QABOT_TRAINING_THREADS="3")
    store = Store(settings.database_url)
    try:
        models = ModelLifecycle(settings, store, LearningRecords(store), busy=lambda: False)
        report = await worker_report(models.trainer)
    finally:
        await store.close()
    # Lowered before the worker's code runs: the threads it starts are as nice as it is.
    lowered = min(os.getpriority(os.PRIO_PROCESS, 0) + 7, 19)
    assert report["niceness"] == {"process": lowered, "thread": lowered}
    assert {name: report["variables"][name] for name in THREAD_VARIABLES} == dict.fromkeys(
        THREAD_VARIABLES, "3"
    )


async def test_by_default_training_leaves_a_core_to_the_bot(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("QABOT_TRAINING_NICENESS", raising=False)  # tests/conftest.py sets it
    settings = make_settings(home)
    store = Store(settings.database_url)
    try:
        models = ModelLifecycle(settings, store, LearningRecords(store), busy=lambda: False)
    finally:
        await store.close()
    assert models.trainer.niceness == 10
    cores = len(os.sched_getaffinity(0))
    assert models.trainer.threads == default_training_threads() == max(1, cores - 1)
