"""The model process: answers computed beside the bot, and what happens when it dies or hangs."""

from __future__ import annotations

import asyncio
import csv
import logging
import os
import shutil
import signal
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest

from bot.app.app import BUNDLED_PARAPHRASES, App
from bot.serving.model_process import (
    CALL_TIMEOUT_SECONDS,
    RESTART_LIMIT,
    ModelProcess,
    ModelProcessError,
)
from bot.settings import Settings
from bot.storage.store import ChatInfo, Store, UserInfo, upgrade_database
from model.predictor import AnswerModel, Weights
from model.text import Featurizer
from tests.conftest import TOKEN, make_settings
from tests.fake_telegram import FakeTelegram
from tests.processes import qabot_process

CHAT = ChatInfo(id=77, type="private", title=None)
HANG_GUARD_SECONDS = 300
USER = UserInfo(77, "u", "U", "en")


@pytest.fixture
def questions() -> list[str]:
    with BUNDLED_PARAPHRASES.open(encoding="utf-8") as file:
        return [row["question"] for row in csv.DictReader(file)][:12]


@pytest.fixture
def settings(home: Path) -> Settings:
    return make_settings(home, QABOT_MODEL_PROCESS="1")


async def started_app(settings: Settings) -> App:
    await asyncio.to_thread(upgrade_database, settings.database_url)
    app = App(settings, Store(settings.database_url))
    await app.start()
    return app


@pytest.fixture
def models_dir(settings: Settings, english_model_dir: Path) -> Path:
    """The small English model (tests/conftest.py): these tests are about where a model is
    served, and a model process loading it needs no Chinese dictionary."""
    shutil.copytree(english_model_dir, settings.models_dir)
    return settings.models_dir


@pytest.fixture
async def app(settings: Settings, models_dir: Path) -> AsyncIterator[App]:
    app = await started_app(settings)
    yield app
    await app.stop()
    await app.store.close()


async def replies(app: App, questions: list[str]) -> list[tuple[str | None, bool]]:
    """(answer id, fallback) of the bot's reply to each question."""
    answered = await asyncio.gather(*(app.answering.reply(CHAT, USER, q) for q in questions))
    return [(reply.answer_id, reply.fallback) for reply in answered]


def expected_replies(app: App, questions: list[str]) -> list[tuple[str | None, bool]]:
    """What the model replies when it runs in this process."""
    assert app.models.current is not None
    local = AnswerModel.load(app.models.current.path)
    return [(p.answer_id, p.fallback) for p in local.predict_batch(questions)]


async def until(process: ModelProcess, condition: Callable[[], bool]) -> None:
    """Wait for the model process to reach a state (the guard only turns a hang into a
    failure: nothing is expected to take this long)."""
    async with asyncio.timeout(HANG_GUARD_SECONDS):
        await process.wait_until(condition)


async def test_answers_come_from_the_model_process(app: App, questions: list[str]) -> None:
    process = app.models.process
    assert process is not None and app.models.current is not None
    assert process.serves(app.models.current.path)
    got = await replies(app, questions)
    assert got == expected_replies(app, questions)
    # The weights are in the model process only.
    assert not app.models.current.holds_weights
    # It holds no secret.
    assert TOKEN not in str(psutil.Process(process.pid).environ())


@pytest.mark.slow  # starts the model process again and again
async def test_killed_model_process_is_restarted_and_no_question_goes_unanswered(
    app: App, questions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    process = app.models.process
    assert process is not None and process.pid is not None and app.models.current is not None
    path, first_pid = app.models.current.path, process.pid
    expected = expected_replies(app, questions)
    caplog.set_level(logging.INFO)
    asking = asyncio.ensure_future(replies(app, questions))
    os.kill(first_pid, signal.SIGKILL)
    assert await asking == expected
    # Meanwhile answered in the bot's process, then by a new model process.
    assert await replies(app, questions) == expected
    await until(process, lambda: process.pid != first_pid and process.serves(path))
    assert await replies(app, questions) == expected
    assert "the model process stopped (exit code -9)" in caplog.text
    assert "model process restarted" in caplog.text


async def test_answering_without_the_model_process_reads_the_model_off_the_event_loop(
    app: App, questions: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The weights (89 MB for a 150-answer model) live in the model process; when it dies, the
    bot reads them to answer itself, in a worker thread, never on the event loop."""
    loop_thread = threading.current_thread()
    read_on: list[threading.Thread] = []

    def recording(load):  # noqa: ANN001, ANN202
        def read(cls, path):  # noqa: ANN001, ANN202
            read_on.append(threading.current_thread())
            return load(path)

        return classmethod(read)

    monkeypatch.setattr(Weights, "load", recording(Weights.load))
    monkeypatch.setattr(Featurizer, "load", recording(Featurizer.load))
    process = app.models.process
    assert process is not None and process.pid is not None and app.models.current is not None
    assert not app.models.current.is_loaded
    expected = expected_replies(app, questions)
    read_on.clear()  # expected_replies loaded a model of its own

    async def cannot_spawn() -> None:
        raise ModelProcessError("not restarted in this test")

    monkeypatch.setattr(process, "_spawn", cannot_spawn)
    os.kill(process.pid, signal.SIGKILL)
    async with asyncio.timeout(10):
        while process.serves(app.models.current.path):
            await asyncio.sleep(0.02)
    assert await replies(app, questions) == expected  # answered here
    assert app.models.current.is_loaded
    assert len(read_on) == 2 and loop_thread not in read_on


def gated_candidate(app: App, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(the live model, a copy of it as the candidate, the FIFO its load waits on)."""
    assert app.models.current is not None
    live = app.models.current.path
    candidate = tmp_path / "candidate"
    shutil.copytree(live, candidate)
    gate = tmp_path / "load-gate"
    os.mkfifo(gate)
    return live, candidate, gate


async def gated_process(candidate: Path, gate: Path) -> ModelProcess:
    """A started model process whose load of candidate waits until gate is written to."""
    process = ModelProcess()
    process.worker_module = "tests.model_worker_gated_load"
    process.extra_environment = {
        "QABOT_TEST_GATED_MODEL": str(candidate),
        "QABOT_TEST_LOAD_GATE": str(gate),
    }
    await process.start()
    return process


async def test_questions_are_answered_while_a_new_model_loads(
    app: App, questions: list[str], tmp_path: Path
) -> None:
    """A model's load (a second or more for a large one) holds up no question: the models the
    process has loaded answer meanwhile."""
    live, candidate, gate = gated_candidate(app, tmp_path)
    process = await gated_process(candidate, gate)
    # Opening the gate for writing returns once the load has opened it for reading.
    at_gate = asyncio.ensure_future(asyncio.to_thread(gate.open, "wb"))
    try:
        await process.load(live)
        loading = asyncio.ensure_future(process.load(candidate))
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            with await at_gate as gate_writer:
                rows = await process.predict(live, questions)
                assert not loading.done(), "the candidate's load did not wait at its gate"
                gate_writer.write(b"x")  # the load goes on
        got = [(p.answer_id, p.fallback) for p in app.models.current.predictions(rows)]
        assert got == expected_replies(app, questions)
        assert await loading == app.models.current.version
        assert await process.predict(candidate, questions) == rows
    finally:
        if not at_gate.done():  # the load never came: let the opening thread go
            os.close(os.open(gate, os.O_RDONLY | os.O_NONBLOCK))
        await process.stop()


async def test_a_load_that_hangs_is_given_up_and_the_restart_serves_what_was_served(
    app: App, questions: list[str], tmp_path: Path
) -> None:
    """A load has its own timeout; the process it hung is killed, and the restart loads the
    models served before it, not the one whose load hung (which would hang it again)."""
    # The gate is never opened for writing: the candidate's load never ends.
    live, candidate, gate = gated_candidate(app, tmp_path)
    process = await gated_process(candidate, gate)
    try:
        await process.load(live)
        first_pid = process.pid
        expected = await process.predict(live, questions)
        process.load_timeout = 5.0  # the small model loads in well under a second
        with pytest.raises(ModelProcessError, match="did not answer within 5 s"):
            await process.load(candidate)

        def restarted_or_given_up() -> bool:
            return process.gave_up or (process.pid != first_pid and process.serves(live))

        await until(process, restarted_or_given_up)
        assert not process.gave_up and not process.serves(candidate)
        assert await process.predict(live, questions) == expected
    finally:
        await process.stop()


@pytest.mark.slow  # starts the model process again and again
async def test_hung_model_process_is_killed_and_its_questions_answered_here(
    app: App, questions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    process = app.models.process
    assert process is not None and process.pid is not None and app.models.current is not None
    path, hung_pid = app.models.current.path, process.pid
    # A stopped process never answers, however long it is given: no need to wait 30 s.
    process.call_timeout = 0.5
    os.kill(hung_pid, signal.SIGSTOP)
    try:
        got = await replies(app, questions)
    finally:
        if psutil.pid_exists(hung_pid):
            os.kill(hung_pid, signal.SIGKILL)
    process.call_timeout = CALL_TIMEOUT_SECONDS
    assert got == expected_replies(app, questions)
    assert "the model process did not answer" in caplog.text
    # The new process loads the model under its own (load) timeout, not the short one.
    await until(process, lambda: process.pid != hung_pid and process.serves(path))
    assert await replies(app, questions) == got


@pytest.mark.slow  # starts the model process again and again
async def test_a_failed_restart_is_tried_again_and_the_model_served_by_the_process(
    app: App,
    questions: list[str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    process = app.models.process
    assert process is not None and process.pid is not None and app.models.current is not None
    path, first_pid = app.models.current.path, process.pid
    expected = expected_replies(app, questions)
    marker = tmp_path / "fail-once"
    marker.touch()
    process.extra_environment = {"QABOT_TEST_FAIL_ONCE": str(marker)}
    process.worker_module = "tests.model_worker_failing_once"
    os.kill(first_pid, signal.SIGKILL)
    await until(process, lambda: process.pid != first_pid and process.serves(path))
    assert not marker.exists(), "the first restart did not run the failing process"
    assert "could not restart the model process" in caplog.text
    assert "the model process stopped (exit code 3)" in caplog.text
    assert await replies(app, questions) == expected
    # Answered by the process: the bot's copy of the model never read its weights.
    assert not app.models.current.holds_weights
    assert not process.gave_up


@pytest.mark.slow  # starts the model process again and again
async def test_after_repeated_crashes_the_bot_answers_in_its_own_process(
    app: App, questions: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    process = app.models.process
    assert process is not None and app.models.current is not None
    path = app.models.current.path
    expected = expected_replies(app, questions)
    for _ in range(RESTART_LIMIT + 1):
        await until(process, lambda: process.serves(path))
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        await until(process, lambda: not process.serves(path))
    await until(process, lambda: process.gave_up)
    assert "answering in the bot's own process from now on" in caplog.text
    assert await replies(app, questions) == expected
    # A new model version is then loaded here too.
    app.models.current = None
    await app.models.reload()
    assert app.models.current is not None and app.models.current.holds_weights
    assert await replies(app, questions) == expected


async def test_model_process_can_be_turned_off(
    home: Path, models_dir: Path, questions: list[str]
) -> None:
    app = await started_app(make_settings(home, QABOT_MODEL_PROCESS="0"))
    try:
        assert app.models.process is None
        assert app.models.current is not None and app.models.current.holds_weights
        assert await replies(app, questions) == expected_replies(app, questions)
    finally:
        await app.stop()
        await app.store.close()


async def test_model_process_exits_with_the_bot(app: App) -> None:
    process = app.models.process
    assert process is not None and process.pid is not None
    child = psutil.Process(process.pid)
    await app.stop()
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


@pytest.mark.slow
async def test_model_process_exits_when_the_bot_is_killed(bot_home: Path) -> None:
    async with FakeTelegram(token=TOKEN) as tg, qabot_process(tg, bot_home) as bot:
        [child] = [
            process
            for process in psutil.Process(bot.pid).children(recursive=True)
            if "model.worker" in process.cmdline()
        ]
        os.kill(bot.pid, signal.SIGKILL)  # the bot only, not its process group
        bot.wait(timeout=60)
        # The socket's end tells the model process that the bot is gone.
        gone, _ = await asyncio.to_thread(psutil.wait_procs, [child], timeout=60)
        assert gone == [child]
