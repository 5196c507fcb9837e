"""The model process: answers prediction calls for the bot over a socket it inherits.

    python -m model.worker FD

The bot (bot/serving/model_process.py) starts it, so that the model's work runs beside the bot's
event loop rather than on it. Requests and replies are frames: a 4-byte big-endian length, then
a pickle (the socket is private to the two processes). Requests are handled in order, one reply
each: ("ok", result) or ("error", message).

- ("load", path): load that model directory; the two most recently loaded stay loaded, so the
  questions asked just before a model swap are still answered by the model they asked.
- ("predict", path, texts): AnswerModel.prediction_rows of the texts.

The process exits when the bot closes the socket, or dies: it needs no other shutdown.
"""

from __future__ import annotations

import contextlib
import pickle
import signal
import socket
import struct
import sys
from collections import OrderedDict
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


class Worker:
    def __init__(self) -> None:
        self.models: OrderedDict[str, AnswerModel] = OrderedDict()

    def handle(self, request: tuple) -> object:
        command, path, *rest = request
        if command == "load":
            if path not in self.models:
                self.models[path] = AnswerModel.load(path)
            self.models.move_to_end(path)
            while len(self.models) > LOADED_MODELS:
                self.models.popitem(last=False)
            return self.models[path].version
        if command == "predict":
            return self.models[path].prediction_rows(rest[0])
        raise ValueError(f"unknown command {command!r}")


def serve(stream: BinaryIO, replies: BinaryIO) -> None:
    worker = Worker()
    while (request := read_frame(stream)) is not None:
        try:
            reply: tuple = ("ok", worker.handle(request))
        except Exception as error:  # noqa: BLE001 - the bot decides what a failed call means
            reply = ("error", f"{type(error).__name__}: {error}")
        replies.write(frame(reply))
        replies.flush()


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
