"""The model process: answers prediction calls for the bot over a socket it inherits.

    python -m model.worker FD

The bot (bot/serving/model_process.py) starts it, so that the model's work runs beside the bot's
event loop rather than on it. Requests and replies are frames: a 4-byte big-endian length, then
a pickle (the socket is private to the two processes). A request is (call id, command, path,
...), its reply (call id, "ok", result) or (call id, "error", message).

- ("load", path): load that model directory; the two most recently loaded stay loaded, so the
  questions asked just before a model swap are still answered by the model they asked. Loads
  run on a thread of their own: a new model can take a second to read, and the questions asked
  meanwhile are answered by the models already loaded (their replies overtake the load's).
- ("predict", path, texts): AnswerModel.prediction_rows of the texts, in the order asked.

The process exits when the bot closes the socket, or dies: it needs no other shutdown.
"""

from __future__ import annotations

import contextlib
import functools
import pickle
import queue
import signal
import socket
import struct
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, BinaryIO

from threadpoolctl import threadpool_limits

from model.predictor import AnswerModel

HEADER = struct.Struct(">I")
LOADED_MODELS = 2


def read_frame(stream: BinaryIO) -> Any | None:
    """The next request, or None once the bot has closed the socket."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    body = stream.read(HEADER.unpack(header)[0])
    return pickle.loads(body)


def frame(message: object) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


# Sends one reply: (call id, "ok" or "error", result or message).
Send = Callable[[int, str, object], None]


class Worker:
    def __init__(self, send: Send) -> None:
        self.models: OrderedDict[str, AnswerModel] = OrderedDict()
        self._send = send
        self._lock = threading.Lock()  # guards models and _loads (the loader thread changes them)
        self._loads: dict[str, Future[str]] = {}  # loads asked for and not done yet
        self._load_requests: queue.SimpleQueue[tuple[int, str, Future[str]]] = queue.SimpleQueue()
        # A daemon: the process does not wait for a load once the bot has gone.
        threading.Thread(target=self._loader, name="model-load", daemon=True).start()

    def handle(self, call_id: int, command: str, path: str, *rest: Any) -> None:
        if command == "load":
            pending: Future[str] = Future()
            with self._lock:
                self._loads[path] = pending
            self._load_requests.put((call_id, path, pending))
        elif command == "predict":
            self._reply(call_id, lambda: self._model(path).prediction_rows(rest[0]))
        else:
            self._reply(call_id, lambda: _unknown(command))

    def _reply(self, call_id: int, work: Callable[[], object]) -> None:
        try:
            result = work()
        except Exception as error:  # noqa: BLE001 - the bot decides what a failed call means
            self._send(call_id, "error", f"{type(error).__name__}: {error}")
        else:
            self._send(call_id, "ok", result)

    def _model(self, path: str) -> AnswerModel:
        """The loaded model at path, waiting for its load if one is under way."""
        with self._lock:
            model, pending = self.models.get(path), self._loads.get(path)
        if model is None and pending is not None:
            pending.result()  # raises what the load raised
            with self._lock:
                model = self.models.get(path)
        if model is None:
            raise KeyError(f"no model loaded from {path}")
        return model

    def _loader(self) -> None:
        while True:
            call_id, path, pending = self._load_requests.get()
            self._reply(call_id, functools.partial(self._load, path, pending))

    def _load(self, path: str, pending: Future[str]) -> str:
        try:
            with self._lock:
                model = self.models.get(path)
            if model is None:
                model = AnswerModel.load(Path(path))
            with self._lock:
                self.models[path] = model
                self.models.move_to_end(path)
                while len(self.models) > LOADED_MODELS:
                    self.models.popitem(last=False)
        except BaseException as error:
            pending.set_exception(error)
            raise
        finally:
            with self._lock:
                if self._loads.get(path) is pending:
                    del self._loads[path]
        pending.set_result(model.version)
        return model.version


def _unknown(command: str) -> None:
    raise ValueError(f"unknown command {command!r}")


def serve(stream: BinaryIO, replies: BinaryIO) -> None:
    writing = threading.Lock()  # replies come from this thread and the loader's

    def send(call_id: int, status: str, payload: object) -> None:
        with writing, contextlib.suppress(BrokenPipeError, ConnectionResetError, ValueError):
            replies.write(frame((call_id, status, payload)))
            replies.flush()

    worker = Worker(send)
    while (request := read_frame(stream)) is not None:
        worker.handle(*request)


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group: the bot stops this process itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Small products: a second BLAS thread would only spin (see bot/run.py).
    threadpool_limits(limits=1, user_api="blas")
    with (
        socket.socket(fileno=int(sys.argv[1])) as connection,
        connection.makefile("rb") as stream,
        connection.makefile("wb") as replies,
        contextlib.suppress(BrokenPipeError, ConnectionResetError),  # the bot has gone
    ):
        serve(stream, replies)


if __name__ == "__main__":
    main()
