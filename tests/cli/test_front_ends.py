"""The command line and Telegram are two front ends of one application layer: training and
rollback through either leave the store's model_versions as the other does, the registry and
the store agree on the live version, and both list the same figures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.serving.retraining import TrainingRunner
from bot.storage.store import Store
from bot.storage.tables import ModelVersionRow
from model.figures import format_figures
from tests.conftest import TelegramBot


async def recorded_versions(store: Store) -> dict[str, ModelVersionRow]:
    async with store.session() as session:
        return {row.version: row for row in await session.scalars(select(ModelVersionRow))}


async def live_in_store(store: Store) -> str:
    """The version the store says was promoted last."""
    promoted = {
        row.promoted_at: version
        for version, row in (await recorded_versions(store)).items()
        if row.promoted_at is not None
    }
    return promoted[max(promoted)]


def what_training_recorded(row: ModelVersionRow) -> dict[str, Any]:
    """A trained version's record, without what differs between two runs (times, figures)."""
    gate = row.metrics["gate"]
    return {
        "n_pairs": row.n_pairs,
        "promoted": row.promoted_at is not None,
        "figures": sorted(row.metrics),
        "gate": (gate["promoted"], gate["forced"], sorted(gate)),
    }


async def test_training_and_rollback_leave_the_same_records_from_either_front_end(
    telegram_bot: TelegramBot, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    bot = telegram_bot
    store, registry = bot.app.store, bot.app.models.registry
    # The real training run with a linear network in place of Keras, in every runner.
    monkeypatch.setattr(TrainingRunner, "worker_module", "tests.linear_trainer")
    monkeypatch.setenv("QABOT_HOME", str(bot.app.settings.home))
    monkeypatch.setenv("QABOT_DATABASE_URL", store.engine.url.render_as_string(False))
    seed = registry.current_version()
    assert seed is not None and seed not in await recorded_versions(store)

    # `qabot train` trains as /retrain force does.
    await bot.tg.send_command(bot.admin, "/retrain force")
    await bot.tg.next_reply(bot.admin)  # the progress message
    done = await bot.tg.next_reply(bot.admin, timeout=600)
    by_telegram = registry.current_version()
    assert by_telegram is not None and by_telegram != seed and by_telegram in done.text
    assert await asyncio.to_thread(main, ["train"]) == 0
    by_cli = registry.current_version()
    assert by_cli is not None and by_cli not in (seed, by_telegram)
    records = await recorded_versions(store)
    assert what_training_recorded(records[by_cli]) == what_training_recorded(records[by_telegram])
    assert await live_in_store(store) == by_cli

    # Both list every version with the same figures.
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["models"]) == 0
    in_cli = capsys.readouterr().out
    await bot.tg.send_command(bot.admin, "/models")
    in_telegram = (await bot.tg.next_reply(bot.admin)).text
    for version in await bot.app.models.versions():
        figures = format_figures(version.metrics)
        assert f"{version.name}  {figures}" in in_cli
        assert f"{version.name}" in in_telegram and figures in in_telegram

    # A rollback through either: the store's live version follows the registry's, also back
    # to a version it had not recorded (one trained elsewhere).
    assert await asyncio.to_thread(main, ["rollback"]) == 0
    assert registry.current_version() == by_telegram == await live_in_store(store)
    await bot.tg.send_command(bot.admin, "/rollback")
    assert seed in (await bot.tg.next_reply(bot.admin)).text
    assert registry.current_version() == seed == await live_in_store(store)
