"""A child process for the application's heavy Python work (grouping the review queue, writing
exports). A worker thread would not do: CPU-bound Python in a thread of the bot's process holds
the GIL, and the event loop, which gives it up at every socket call, waits for it each time."""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class ChildWorker:
    """One child process, started with the bot or on first use ('spawn': it imports only what
    the work needs, and does not inherit the bot's threads or connections), kept for the next
    calls: what it computed stays in its memory (e.g. the review queue's similar pairs)."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the child now, in the background: its imports take seconds on a busy machine,
        which the first /review would otherwise wait for."""
        self._executor().submit(_import_the_work)

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """work(*args) in the child process; work and args must be picklable (module-level)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor(), work, *args)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _import_the_work() -> None:
    for module in ("bot.app.review_queue", "bot.app.exports"):
        importlib.import_module(module)
