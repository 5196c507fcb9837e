"""The model process: the bot's predictions computed in a child process (model/worker.py).

Answering takes the bot's event loop about 1.2 ms of CPU per call of ~18 questions under load,
most of it Python and NumPy overhead with cold caches, which no worker thread can take off it
(the featurizer holds the GIL). In its own process the model's work runs on another core: the
event loop only sends the questions and reads back a few numbers per question (0.2 ms a call).
The weights live in that process alone; the bot holds the answers and the rules.

If the process dies or hangs, every call in flight fails (the batcher then answers those
questions in the bot's own process, so no one goes unanswered), and it is restarted, loading
the models it served. Those stay the models to serve until a restart has loaded them all: a
restart that fails (the new process dies, or does not load them within LOAD_TIMEOUT_SECONDS)
is tried again. After RESTART_LIMIT restarts in a row that did not last, the bot answers in its
own process from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import pickle
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.serving.environment import child_environment
from bot.settings import PROJECT_ROOT
from model.predictor import PredictionRow
from model.worker import HEADER, LOADED_MODELS, frame

log = logging.getLogger(__name__)

# A call not answered within this time means the process hangs: it is killed and restarted.
CALL_TIMEOUT_SECONDS = 30.0
# Loading reads and unpacks a model directory: a large model takes far longer than a call.
LOAD_TIMEOUT_SECONDS = 300.0
RESTART_LIMIT = 3
# A process that answered for this long counts as a success: the restart count starts over.
STABLE_SECONDS = 60.0
# The child needs no secret: it never talks to Telegram or the database.


class ModelProcessError(Exception):
    """The model process is gone, hangs, or could not be started."""


class ModelTimeoutError(ModelProcessError):
    """The model process did not answer a call in time: it is killed and restarted."""


class ModelCallError(Exception):
    """The model process could not do what it was asked, e.g. load a broken model directory
    (the message says why)."""


class ModelProcess:
    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        # Calls in flight by id (a load's reply can come after later predictions'), each with
        # the time by which it must be answered and the timeout that set it.
        self._calls: dict[int, tuple[asyncio.Future[Any], float, float]] = {}
        self._call_ids = itertools.count()
        self._watchdog: asyncio.TimerHandle | None = None
        # The model paths to serve, newest last. A restart loads them all again, and they stay
        # the ones to serve until a restart has done so.
        self._models: list[str] = []
        self._ready = False  # the running process holds every one of self._models
        self._restart_task: asyncio.Task[None] | None = None
        self._failed_restarts = 0
        self._started_at = 0.0
        self._stopping = False
        self._changed = asyncio.Event()
        self.gave_up = False
        self.call_timeout = CALL_TIMEOUT_SECONDS
        self.load_timeout = LOAD_TIMEOUT_SECONDS
        # The process's module (`python -m ...`); tests swap in one that fails.
        self.worker_module = "model.worker"
        # Variables added to the process's minimal environment (tests pass their settings).
        self.extra_environment: dict[str, str] = {}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def serves(self, path: Path) -> bool:
        """Whether calls for this model directory go to the process."""
        return self._ready and str(path) in self._models

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once condition() holds; it is checked again whenever the process starts,
        stops, loads a model or is given up on."""
        while not condition():
            await self._changed.wait()

    def _announce(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def start(self) -> None:
        await self._spawn()
        self._ready = True
        self._announce()

    async def _spawn(self) -> None:
        parent_end, child_end = socket.socketpair()
        env = {**child_environment(), **self.extra_environment}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])
        )
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self.worker_module, str(child_end.fileno()),
                pass_fds=(child_end.fileno(),), stdin=asyncio.subprocess.DEVNULL, env=env,
            )  # fmt: skip
        except OSError as error:
            parent_end.close()
            raise ModelProcessError(f"cannot start the model process: {error}") from error
        finally:
            child_end.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=parent_end)
        self._started_at = asyncio.get_running_loop().time()
        self._reader_task = asyncio.create_task(self._read_replies(reader), name="model-replies")
        log.info("model process %d started", self._process.pid)

    async def load(self, path: Path) -> str:
        """Have the process load a model directory; returns its version. ModelCallError when the
        model cannot be loaded, ModelProcessError when the process is gone or restarting (the
        restart then loads this model too)."""
        key = str(path)
        if self.gave_up:
            raise ModelProcessError("the model process was given up on")
        previous = self._models
        # The process keeps the LOADED_MODELS it loaded last.
        self._models = [*(p for p in previous if p != key), key][-LOADED_MODELS:]
        if not self._ready:
            raise ModelProcessError("the model process is restarting")
        try:
            version = await self._call(("load", key), self.load_timeout)
        except ModelCallError:
            self._models = previous  # the process, too, keeps what it had
            raise
        except ModelTimeoutError:
            # This load hung the process: its restart serves what was served before, without
            # loading this model again (which would hang it again, restart after restart).
            self._models = previous
            raise
        self._announce()
        return version

    def predict(self, path: Path, texts: list[str]) -> asyncio.Future[list[PredictionRow]]:
        """prediction_rows of the texts by the model at path (which the process has loaded)."""
        return self._call(("predict", str(path), texts), self.call_timeout)

    def _call(self, request: tuple, timeout: float) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()
        if self._writer is None:
            result.set_exception(ModelProcessError("the model process is not running"))
            return result
        call_id = next(self._call_ids)
        self._writer.write(frame((call_id, *request)))
        deadline = loop.time() + timeout
        self._calls[call_id] = (result, deadline, timeout)
        self._arm_watchdog(loop, deadline)
        return result

    def _arm_watchdog(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Have the watchdog look no later than this deadline."""
        if self._watchdog is None or self._watchdog.when() > deadline:
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._watchdog = loop.call_at(deadline, self._check_overdue)

    def _check_overdue(self) -> None:
        self._watchdog = None
        if not self._calls:
            return
        loop = asyncio.get_running_loop()
        _, deadline, timeout = min(self._calls.values(), key=lambda call: call[1])
        if deadline > loop.time():
            self._arm_watchdog(loop, deadline)
            return
        log.error("the model process did not answer for %g s: killing it", timeout)
        now = loop.time()
        for call_id in [i for i, (_, due, _) in self._calls.items() if due <= now]:
            result, _, waited = self._calls.pop(call_id)
            if not result.done():
                result.set_exception(
                    ModelTimeoutError(f"the model process did not answer within {waited:g} s")
                )
        if self._process is not None and self._process.returncode is None:
            self._process.kill()  # the reader then sees the socket close

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                body = await reader.readexactly(HEADER.unpack(header)[0])
                call_id, status, payload = pickle.loads(body)
                call = self._calls.pop(call_id, None)
                if call is None or call[0].done():  # overdue, or its caller was cancelled
                    continue
                result = call[0]
                if status == "ok":
                    result.set_result(payload)
                else:
                    result.set_exception(ModelCallError(payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            self._on_exit()

    def _on_exit(self) -> None:
        """The socket closed: fail the calls in flight and replace the process (unless a
        restart is under way: it replaces the process itself)."""
        self._ready = False
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        calls, self._calls = self._calls, {}
        for result, _, _ in calls.values():
            if not result.done():
                result.set_exception(ModelProcessError("the model process has stopped"))
        self._announce()
        restarting = self._restart_task is not None and not self._restart_task.done()
        if not self._stopping and not restarting:
            self._restart_task = asyncio.create_task(self._restart(), name="model-process-restart")

    async def _restart(self) -> None:
        """Replace the process that stopped, until one has loaded the models it served."""
        if asyncio.get_running_loop().time() - self._started_at >= STABLE_SECONDS:
            self._failed_restarts = 0
        while True:
            exit_code = await self._reap()
            if self._failed_restarts >= RESTART_LIMIT:
                self.gave_up = True
                self._announce()
                log.error(
                    "the model process stopped again (exit code %s): answering in the bot's own "
                    "process from now on",
                    exit_code,
                )
                return
            log.error(
                "the model process stopped (exit code %s): answering in the bot's own process "
                "until it is restarted",
                exit_code,
            )
            self._failed_restarts += 1
            await asyncio.sleep(self._failed_restarts - 1)  # 0, 1, 2 s: no busy loop of crashes
            try:
                await self._spawn()
                await self._load_models()
            except ModelProcessError as error:
                log.error("could not restart the model process: %s", error)
                await self._end_process()
                continue
            self._ready = True
            self._announce()
            log.info(
                "model process restarted, serving %s",
                ", ".join(Path(p).name for p in self._models) or "no model yet",
            )
            return

    async def _load_models(self) -> None:
        """Load every model to serve into the new process, including any asked for meanwhile.
        A model that can no longer be loaded (e.g. its directory was deleted) is dropped."""
        loaded: set[str] = set()
        while missing := [p for p in self._models if p not in loaded]:
            for path in missing:
                try:
                    await self._call(("load", path), self.load_timeout)
                except ModelCallError as error:
                    log.error("the restarted model process cannot load %s: %s", path, error)
                    self._models.remove(path)
                loaded.add(path)

    async def _end_process(self) -> None:
        """Kill the process if it still runs and wait until its reader has seen it go."""
        if self._writer is not None and self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)

    async def _reap(self) -> int | None:
        """The exit code of the process whose socket closed (killed if it lingers)."""
        if self._process is None:
            return None
        try:
            return await asyncio.wait_for(self._process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
            return await self._process.wait()

    async def stop(self) -> None:
        self._stopping = True
        self._ready = False
        if self._restart_task is not None:
            self._restart_task.cancel()
            await asyncio.gather(self._restart_task, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()  # the process exits when it reads the end of the socket
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._process is not None and self._process.returncode is None:
            try:
                await asyncio.wait_for(self._process.wait(), 5)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
