"""Shared fixtures: an isolated QABOT_HOME per test, a migrated SQLite store, and a model trained
once per test session on the bundled Q&A set (each test gets its own copy of it)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.app import BUNDLED_PAIRS
from bot.settings import Settings
from bot.store import Store, upgrade_database
from model.datasets import read_pairs

TOKEN = "123456:TEST-token-that-must-never-be-logged"
ADMIN_ID = 4242


def make_settings(home: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "QABOT_HOME": home,
        "QABOT_ADMIN_IDS": str(ADMIN_ID),
        "QABOT_RATE_LIMIT": "0",
        "TELEGRAM_BOT_TOKEN": TOKEN,
    }
    values.update(overrides)
    # Settings reads the environment too; explicit values win over it.
    return Settings(**values, _env_file=None)


@pytest.fixture(scope="session")
def seed_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model registry holding one version trained on the bundled set (trained once)."""
    from model.train import train

    root = tmp_path_factory.mktemp("seed-models")
    train(read_pairs(BUNDLED_PAIRS), root, seed=0)
    return root


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def settings(home: Path) -> Settings:
    return make_settings(home)


@pytest.fixture
def models_dir(settings: Settings, seed_model_dir: Path) -> Path:
    """This test's own copy of the seed model registry, at the settings' models dir."""
    shutil.copytree(seed_model_dir, settings.models_dir)
    return settings.models_dir


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    import asyncio

    await asyncio.to_thread(upgrade_database, settings.database_url)
    store = Store(settings.database_url)
    yield store
    await store.close()


@pytest.fixture
async def seeded_store(store: Store) -> Store:
    await store.add_pairs(read_pairs(BUNDLED_PAIRS), source="bundled")
    return store


@pytest.fixture
async def service(settings: Settings, seeded_store: Store, models_dir: Path) -> AsyncIterator:
    from bot.service import QAService

    service = QAService(settings, seeded_store)
    await service.start()
    yield service
    await service.stop()


@pytest.fixture
def bundled_pairs() -> Iterator[list]:
    yield read_pairs(BUNDLED_PAIRS)
