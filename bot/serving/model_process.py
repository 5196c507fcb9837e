"""The model process: the bot's predictions computed in a child process (model/worker.py).

Answering takes the bot's event loop about 1.2 ms of CPU per call of ~18 questions under load,
most of it Python and NumPy overhead with cold caches, which no worker thread can take off it
(the featurizer holds the GIL). In its own process the model's work runs on another core: the
event loop only sends the questions and reads back a few numbers per question (0.2 ms a call).
The weights live in that process alone; the bot holds the answers and the rules.

If the process dies or hangs, every call in flight fails (the batcher then answers those
questions in the bot's own process, so no one goes unanswered), and it is restarted, loading
the model it served. After RESTART_LIMIT restarts in a row that did not last, the bot answers
in its own process from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import socket
import sys
from collections import deque
from pathlib import Path
from typing import Any

from bot.settings import PROJECT_ROOT
from model.predictor import PredictionRow
from model.worker import HEADER, LOADED_MODELS, frame

log = logging.getLogger(__name__)

# A call not answered within this time means the process hangs: it is killed and restarted.
CALL_TIMEOUT_SECONDS = 30.0
RESTART_LIMIT = 3
# A process that answered for this long counts as a success: the restart count starts over.
STABLE_SECONDS = 60.0
# The child needs no secret: it never talks to Telegram or the database.
SECRET_VARIABLES = ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "QABOT_DATABASE_URL")


class ModelProcessError(Exception):
    """The model process is gone, hangs, or could not be started."""


class ModelCallError(Exception):
    """The model process could not do what it was asked, e.g. load a broken model directory
    (the message says why)."""


class ModelProcess:
    def __init__(self) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        # Calls in flight, oldest first: the process answers them in order.
        self._calls: deque[tuple[asyncio.Future[Any], float]] = deque()
        self._watchdog: asyncio.TimerHandle | None = None
        self._loaded: list[str] = []  # model paths the process holds, newest last
        self._restart_task: asyncio.Task[None] | None = None
        self._failed_restarts = 0
        self._started_at = 0.0
        self._stopping = False
        self.gave_up = False
        self.call_timeout = CALL_TIMEOUT_SECONDS

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def serves(self, path: Path) -> bool:
        """Whether calls for this model directory go to the process."""
        return self._writer is not None and str(path) in self._loaded

    async def start(self) -> None:
        parent_end, child_end = socket.socketpair()
        env = {key: value for key, value in os.environ.items() if key not in SECRET_VARIABLES}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])
        )
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "model.worker", str(child_end.fileno()),
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
        model cannot be loaded, ModelProcessError when the process is gone."""
        version = await self._call(("load", str(path)))
        key = str(path)
        # The process keeps the LOADED_MODELS it loaded last.
        self._loaded = [*(p for p in self._loaded if p != key), key][-LOADED_MODELS:]
        return version

    def predict(self, path: Path, texts: list[str]) -> asyncio.Future[list[PredictionRow]]:
        """prediction_rows of the texts by the model at path (which the process has loaded)."""
        return self._call(("predict", str(path), texts))

    def _call(self, request: tuple) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Any] = loop.create_future()
        if self._writer is None:
            result.set_exception(ModelProcessError("the model process is not running"))
            return result
        self._writer.write(frame(request))
        deadline = loop.time() + self.call_timeout
        self._calls.append((result, deadline))
        if self._watchdog is None or self._watchdog.when() > deadline:
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._watchdog = loop.call_at(deadline, self._check_overdue)
        return result

    def _check_overdue(self) -> None:
        self._watchdog = None
        if not self._calls:
            return
        deadline = self._calls[0][1]
        loop = asyncio.get_running_loop()
        if deadline > loop.time():
            self._watchdog = loop.call_at(deadline, self._check_overdue)
            return
        log.error("the model process did not answer for %.0f s: killing it", self.call_timeout)
        if self._process is not None and self._process.returncode is None:
            self._process.kill()  # the reader then sees the socket close

    async def _read_replies(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                status, payload = pickle.loads(await reader.readexactly(HEADER.unpack(header)[0]))
                result, _ = self._calls.popleft()
                if result.done():  # its caller was cancelled
                    continue
                if status == "ok":
                    result.set_result(payload)
                else:
                    result.set_exception(ModelCallError(payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            self._on_exit()

    def _on_exit(self) -> None:
        """The socket closed: fail the calls in flight and replace the process."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        while self._calls:
            result, _ = self._calls.popleft()
            if not result.done():
                result.set_exception(ModelProcessError("the model process has stopped"))
        if not self._stopping:
            self._restart_task = asyncio.create_task(self._replace(), name="model-process-restart")

    async def _replace(self) -> None:
        exit_code = await self._reap()
        if asyncio.get_running_loop().time() - self._started_at >= STABLE_SECONDS:
            self._failed_restarts = 0
        if self._failed_restarts >= RESTART_LIMIT:
            self.gave_up = True
            log.error(
                "the model process stopped again (exit code %s): answering in the bot's own "
                "process from now on",
                exit_code,
            )
            return
        log.error(
            "the model process stopped (exit code %s): answering in the bot's own process until "
            "it is restarted",
            exit_code,
        )
        self._failed_restarts += 1
        await asyncio.sleep(self._failed_restarts - 1)  # 0, 1, 2 s: no busy loop of crashes
        paths, self._loaded = self._loaded, []
        try:
            await self.start()
            for path in paths:
                await self.load(Path(path))
        except (ModelProcessError, ModelCallError) as error:
            log.error("could not restart the model process: %s", error)
            return  # its reader, if it started, reports the exit and tries again
        log.info("model process restarted, serving %s", ", ".join(Path(p).name for p in paths))

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
