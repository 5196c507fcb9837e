"""Shared fixtures: an isolated QABOT_HOME per test, a migrated SQLite store, and a model trained
once per test session on the bundled Q&A set (each test gets its own copy of it)."""

from __future__ import annotations

import asyncio
import fcntl
import functools
import hashlib
import multiprocessing
import os
import shutil
import sqlite3
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import hypothesis
import pytest
from sqlalchemy.engine import make_url
from telegram.ext import Application

from bot.app.app import BUNDLED_PAIRS, App
from bot.app.workers import ChildWorker
from bot.settings import Settings
from bot.storage.store import Store, upgrade_database
from bot.telegram.application import build_application
from model.chinese import has_chinese
from model.datasets import QAPair, read_pairs
from tests.fake_telegram import FakeTelegram, FakeUser, running_application
from tests.linear_trainer import linear_network
from tests.postgres import create_database, drop_database, fresh_database
from tests.postgres import database_url as postgres_url

TOKEN = "123456:TEST-token-that-must-never-be-logged"
ADMIN_ID = 4242


def make_settings(home: Path, **overrides: Any) -> Settings:
    """Settings for a test. The bot answers in its own process unless the test asks for the
    model process (QABOT_MODEL_PROCESS="1"): starting one costs a test about a second, and
    tests/serving/test_model_process.py and the `qabot run` process tests cover it."""
    values: dict[str, Any] = {
        "QABOT_HOME": home,
        "QABOT_ADMIN_IDS": str(ADMIN_ID),
        "QABOT_RATE_LIMIT": "0",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "QABOT_MODEL_PROCESS": "0",
    }
    values.update(overrides)
    # Settings reads the environment too; explicit values win over it.
    return Settings(**values, _env_file=None)


# Tests train at the bot's own priority. The training worker is made 10 nicer by default, and on
# a machine shared with other work such a training crawls (about a tenth of a core beside one busy
# process); the tests check what a training does, tests/serving/test_retraining.py its priority.
os.environ.setdefault("QABOT_TRAINING_NICENESS", "0")

# Hypothesis fails an example that takes longer than 200 ms by default: on a busy machine a
# wall-clock limit fails tests that are right. The quick run (-m "not slow") tries a fifth of
# the examples of each property; `make test` all of them.
hypothesis.settings.register_profile("qabot", deadline=None)
hypothesis.settings.register_profile("qabot-quick", deadline=None, max_examples=20)
hypothesis.settings.load_profile("qabot")


def pytest_configure(config: pytest.Config) -> None:
    if "not slow" in (config.option.markexpr or ""):
        hypothesis.settings.load_profile("qabot-quick")


STORAGE_TESTS = Path(__file__).parent / "storage"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The PostgreSQL run of a test is `slow` unless the test is the storage layer's own
    (tests/storage/): `make test` runs every test on both databases, the quick run
    (-m "not slow") runs every test on SQLite and the storage tests on PostgreSQL too. A test
    through the Telegram handlers or the application layer takes the same road above the store
    on either database, and its PostgreSQL run cost about twice its SQLite one (a database made
    and dropped, the server's share of the work): over half the quick run's CPU."""
    for item in items:
        if item.get_closest_marker("postgres") and STORAGE_TESTS not in item.path.parents:
            item.add_marker(pytest.mark.slow)


class SharedChildProcess:
    """One child process for every app of the test session (see shared_child_worker)."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None

    def executor(self) -> ProcessPoolExecutor:
        if self.pool is None or self.pool._broken:  # a test killed it: a new one
            self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self.pool

    def shutdown(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="session")
def shared_child_process() -> Iterator[SharedChildProcess]:
    shared = SharedChildProcess()
    yield shared
    shared.shutdown()


@pytest.fixture(autouse=True)
def shared_child_worker(
    monkeypatch: pytest.MonkeyPatch, shared_child_process: SharedChildProcess
) -> None:
    """Every app's heavy work (review queue, exports) runs in one child process of the test
    session, still a separate process started with 'spawn' as in the bot: starting one per app
    (a fresh interpreter importing the store and the learning loop) cost most tests more CPU
    than the rest of the test. What the child remembers is keyed by the model's files, which
    each test has its own copy of."""
    monkeypatch.setattr(ChildWorker, "_executor", lambda worker: shared_child_process.executor())
    # An app stops: the child stays for the next test's.
    monkeypatch.setattr(ChildWorker, "close", lambda worker: None)


@pytest.fixture(scope="session", autouse=True)
def one_tls_context() -> Iterator[None]:
    """Every HTTP client of the session shares one TLS context. httpx builds one per client,
    reading the whole certificate bundle each time (tens of milliseconds of CPU; a bot and its
    fake Bot API make a few clients per test), and the tests only speak plain HTTP to
    127.0.0.1."""
    from httpx._transports import default

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(default, "create_ssl_context", functools.cache(default.create_ssl_context))
        yield


@pytest.fixture(scope="session")
def seed_model_dir(request: pytest.FixtureRequest) -> Path:
    """A model registry holding one version built from the bundled set (see shared_model), as
    `qabot run` trains its first model.

    Its network is fitted without Keras (tests/linear_trainer.py): the model directory, features,
    calibration and fallback rule are those of a real training run, in seconds instead of the
    half minute TensorFlow takes to import and train. Tests of training itself are `slow`."""
    return shared_model(request, "seed", lambda: read_pairs(BUNDLED_PAIRS))


@pytest.fixture(scope="session")
def english_model_dir(request: pytest.FixtureRequest) -> Path:
    """A small model registry for tests of where a model is served, not of what it answers:
    the bundled set's English pairs (its own out-of-scope ones among them) without the bundled
    out-of-scope questions, whose Chinese would make every process that loads the model read
    jieba's dictionary (about a second of CPU; the seed model has Chinese words). A third of
    the seed model's size, built in half a second."""

    def english_pairs() -> list[QAPair]:
        return [
            pair
            for pair in read_pairs(BUNDLED_PAIRS)
            if not has_chinese(pair.question) and not has_chinese(pair.answer)
        ]

    return shared_model(request, "english", english_pairs, min_own_out_of_scope=0)


def shared_model(
    request: pytest.FixtureRequest,
    name: str,
    pairs: Callable[[], list[QAPair]],
    **tuning: Any,
) -> Path:
    """A registry of one model trained (with a linear network, see seed_model_dir) from
    `pairs`, kept in pytest's cache folder under a key of everything the training reads: the
    pairs, the tuning, the model package's code and data, the linear trainer and the versions
    of the libraries it fits with. A run after a change to any of them builds it again; other
    runs reuse it (building the seed model took about 4 s of CPU, during which a second
    pytest-xdist worker waited for it). Without pytest's cache (-p no:cacheprovider) it is
    built once per run.

    Under pytest-xdist each worker is a session of its own: the first to get here builds the
    model, the others wait for it and share it. Tests only read this folder (each copies it)."""
    from model import train

    training_pairs = pairs()
    key = model_key(training_pairs, tuning)
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        folder = cache.mkdir(f"models-{name}")
    else:
        run_folder = request.getfixturevalue("tmp_path_factory").getbasetemp()
        if os.environ.get("PYTEST_XDIST_WORKER"):  # each worker has a folder in the run's
            run_folder = run_folder.parent
        folder = run_folder / f"models-{name}"
        folder.mkdir(exist_ok=True)
    root, built = folder / key, folder / f"{key}.built"
    with open(folder / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not built.exists():
            for old in folder.iterdir():  # models of earlier code, and a stopped build
                if old.name != "lock":
                    shutil.rmtree(old) if old.is_dir() else old.unlink()
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(train, "_fit_network", linear_network)
                train.train(training_pairs, root, seed=0, **tuning)
            built.touch()
    return root


def model_key(pairs: list[QAPair], tuning: dict[str, Any]) -> str:
    """A digest of what a shared model's training reads."""
    from importlib.metadata import version

    digest = hashlib.sha256()
    digest.update(repr((pairs, sorted(tuning.items()), sys.version)).encode())
    for package in ("numpy", "scipy", "scikit-learn", "jieba"):
        digest.update(f"{package} {version(package)}".encode())
    project = Path(__file__).resolve().parent.parent
    sources = [
        *sorted((project / "model").rglob("*.py")),
        *sorted((project / "model").glob("data/*")),
    ]
    for path in [*sources, project / "tests" / "linear_trainer.py"]:
        digest.update(str(path.relative_to(project)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture
def bot_home(tmp_path: Path, seed_model_dir: Path) -> Path:
    """A home with the session's model in it, so `qabot run` needs no training at start."""
    home = tmp_path / "home"
    shutil.copytree(seed_model_dir, home / "models")
    return home


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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest, settings: Settings, prepared_databases: PreparedDatabases
) -> AsyncIterator[str]:
    """Every store test runs on SQLite and on the real PostgreSQL (a fresh database each; the
    PostgreSQL run is `slow` outside tests/storage/, see pytest_collection_modifyitems).

    For a test that uses `store` the database is a copy of one migrated once per session, and
    of one holding the bundled Q&A set too when it uses `seeded_store`: migrating and loading
    the set took each test about a second. Otherwise the database is empty."""
    contents = prepared_contents(request)
    if request.param == "sqlite":
        if contents is not None:
            await prepared_databases.copy_sqlite(contents, settings.database_url)
        yield settings.database_url
        return
    template = None if contents is None else await prepared_databases.postgres(contents)
    async with fresh_database(template=template) as url:
        yield url


def prepared_contents(request: pytest.FixtureRequest) -> DatabaseContents | None:
    """What the test's database is to hold, from the fixtures it uses."""
    if "seeded_store" in request.fixturenames:
        return "seeded"
    return "migrated" if "store" in request.fixturenames else None


DatabaseContents = Literal["migrated", "seeded"]


class PreparedDatabases:
    """Databases migrated (and seeded) once per session, which tests get copies of."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sqlite_files: dict[DatabaseContents, Path] = {}
        self.postgres_names: dict[DatabaseContents, str] = {}

    async def copy_sqlite(self, contents: DatabaseContents, url: str) -> None:
        if contents not in self.sqlite_files:
            path = self.folder / f"{contents}.sqlite3"
            await prepare_database(f"sqlite+aiosqlite:///{path}", contents)
            self.sqlite_files[contents] = path
        target = Path(make_url(url).database or "")
        target.parent.mkdir(parents=True, exist_ok=True)
        # SQLite's backup copies a consistent database, whatever its write-ahead log holds.
        with (
            closing(sqlite3.connect(self.sqlite_files[contents])) as source,
            closing(sqlite3.connect(target)) as copy,
        ):
            source.backup(copy)

    async def postgres(self, contents: DatabaseContents) -> str:
        """The name of the prepared PostgreSQL database (no one stays connected to it)."""
        if contents not in self.postgres_names:
            name = await create_database()
            await prepare_database(postgres_url(name), contents)
            self.postgres_names[contents] = name
        return self.postgres_names[contents]

    async def drop(self) -> None:
        for name in self.postgres_names.values():
            await drop_database(name)


async def prepare_database(url: str, contents: DatabaseContents) -> None:
    await asyncio.to_thread(upgrade_database, url)
    if contents == "seeded":
        store = Store(url)
        try:
            await store.add_pairs(read_pairs(BUNDLED_PAIRS), source="bundled")
        finally:
            await store.close()


@pytest.fixture(scope="session")
def prepared_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PreparedDatabases]:
    prepared = PreparedDatabases(tmp_path_factory.mktemp("prepared-databases"))
    yield prepared
    if prepared.postgres_names:
        asyncio.run(prepared.drop())


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    """A migrated store (see database_url); upgrading is then only a check."""
    await asyncio.to_thread(upgrade_database, database_url)
    store = Store(database_url)
    yield store
    await store.close()


@pytest.fixture
async def seeded_store(store: Store) -> Store:
    """The store, holding the bundled Q&A set (see database_url)."""
    return store


def app_for_tests(settings: Settings, store: Store) -> App:
    """An App whose replies wait for their exchange to be written however busy the machine:
    released after the default 5 s, an answer goes out without its rating buttons, which the
    tests press. Only the exchange writer's own tests test that release."""
    app = App(settings, store)
    app.writer.max_wait_seconds = 120
    return app


@pytest.fixture
async def app(settings: Settings, seeded_store: Store, models_dir: Path) -> AsyncIterator[App]:
    app = app_for_tests(settings, seeded_store)
    await app.start()
    yield app
    await app.stop()


@pytest.fixture
def bundled_pairs() -> Iterator[list]:
    yield read_pairs(BUNDLED_PAIRS)


@dataclass
class TelegramBot:
    """The real Application, started against the fake Bot API, with its app."""

    tg: FakeTelegram
    app: App
    application: Application
    admin: FakeUser
    user: FakeUser


@pytest.fixture
async def telegram_bot(
    home: Path, seeded_store: Store, seed_model_dir: Path
) -> AsyncIterator[TelegramBot]:
    """The bot polling a fake Bot API server on 127.0.0.1, with the bundled model loaded."""
    async with bot_on_fake_telegram(home, seeded_store, seed_model_dir) as bot:
        yield bot


@asynccontextmanager
async def bot_on_fake_telegram(
    home: Path,
    store: Store,
    seed_model_dir: Path,
    mode: Literal["polling", "webhook"] = "polling",
    **settings: object,
) -> AsyncIterator[TelegramBot]:
    """The real Application against a new fake Bot API server, with these settings."""
    async with FakeTelegram(token=TOKEN) as tg:
        bot_settings = make_settings(
            home,
            TELEGRAM_API_BASE_URL=f"{tg.url}/bot",
            TELEGRAM_FILE_BASE_URL=f"{tg.url}/file/bot",
            **settings,
        )
        shutil.copytree(seed_model_dir, bot_settings.models_dir)
        app = app_for_tests(bot_settings, store)
        await app.start()
        application = build_application(app)
        try:
            async with running_application(application, tg, mode=mode, poll_timeout=1):
                yield TelegramBot(
                    tg,
                    app,
                    application,
                    admin=tg.user(ADMIN_ID, "Ada", username="ada", language_code="en"),
                    user=tg.user(1001, "Bo", username="bo", language_code="zh-hans"),
                )
        finally:
            await app.stop()
