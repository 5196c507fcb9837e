"""The learning-loop simulation of bench/learning_curve.py on a small shop FAQ: three days of
users asking and an admin reviewing through the application layer, a retraining each night."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.learning_loop import make_plan, run_deployment
from model.datasets import read_pair_files

DATA = Path(__file__).parent.parent / "data"


@pytest.mark.slow
async def test_accuracy_rises_and_every_approved_label_is_trained_on(tmp_path: Path) -> None:
    train = read_pair_files([DATA / "shop_faq_train.csv"])
    test = read_pair_files([DATA / "shop_faq_test.csv"])
    plan = make_plan(
        train, test, start_k=2, questions_per_day=40, reviews_per_day=8, days=3, seed=0,
        rate_share=0.3, users=20, during_training=10,
    )  # fmt: skip
    run = await run_deployment(
        plan, tmp_path / "bot", "queue", seed=0, training_worker="tests.linear_trainer",
        model_process=False,
    )  # fmt: skip
    first, last = run.days[0], run.days[-1]
    assert [day.day for day in run.days] == [0, 1, 2, 3]
    assert first.live is not None and last.live is not None
    assert first.live.in_scope_accuracy is not None and last.live.in_scope_accuracy is not None
    assert last.live.in_scope_accuracy > first.live.in_scope_accuracy, [
        day.live for day in run.days
    ]
    assert last.labels == 3 * 8 and len(run.approved) >= last.labels
    training_set = set(run.training_pairs)
    assert all(pair in training_set for pair in run.approved)
    # The bot kept answering while it retrained: some of each next day's questions were
    # asked during the retraining.
    assert sum(day.replies_during_training for day in run.days) > 0
