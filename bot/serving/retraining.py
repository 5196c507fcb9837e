"""Retraining in a separate worker process, so the bot keeps answering while a model trains
and a crash of the trainer cannot take the bot (or the live model) down."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.serving.environment import child_environment
from model.data_checks import DataReport
from model.datasets import QAPair, write_pairs_csv

log = logging.getLogger(__name__)

# Receives the worker's events as it prints them: the data checks' report ("data_report", before
# training), then "start", "epoch", ... (see model/train.py).
ProgressCallback = Callable[[dict[str, Any]], Awaitable[None]]


class TrainingBusyError(RuntimeError):
    """A training run is already going on."""


class TrainingFailedError(RuntimeError):
    """The worker process failed; the message says why (its last error lines)."""


class TrainingNotInstalledError(TrainingFailedError):
    """This install serves models but cannot train them: TensorFlow is the `train` extra."""

    def __init__(self, models_dir: Path) -> None:
        super().__init__(
            "training is not installed here (a serving-only install): "
            f"run `pip install 'qabot[train]'`, or train elsewhere and copy the models folder "
            f"into {models_dir}"
        )


def training_installed() -> bool:
    """Whether the training extra is installed (looked up without importing TensorFlow)."""
    return all(importlib.util.find_spec(name) is not None for name in ("tensorflow", "keras"))


class TrainingRefusedError(TrainingFailedError):
    """The training set cannot make a useful model (e.g. a single answer); nothing was trained.
    `report` holds every finding of the data checks, `str(error)` what to do."""

    def __init__(self, message: str, report: DataReport) -> None:
        super().__init__(message)
        self.report = report


# The longest line of events read from the training worker.
WORKER_LINE_LIMIT = 64 * 2**20
# The variables that bound the thread pools of the worker's numeric libraries: TensorFlow's
# (within and between operations), OpenMP's (oneDNN) and the BLAS libraries'.
THREAD_VARIABLES = (
    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
)  # fmt: skip


def default_training_threads() -> int:
    """One thread fewer than the cores this process may run on (at least one): a core is left
    for the bot and its model process."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) - 1)


@dataclass
class TrainedVersion:
    version: str
    path: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    # The data checks the worker ran before training (warnings worth showing the admin).
    data_report: DataReport | None = None


class TrainingRunner:
    """Runs `python -m model.train` on a set of pairs, one run at a time, in the background:
    `niceness` nicer than the bot (bot/serving/background.py; the bot's settings make it 10),
    so that the bot and its model process get a core at once when a question comes while a
    model trains, and with its thread pools bounded to `threads` (0: default_training_threads)."""

    # The worker's module (`python -m ...`); tests swap in one that crashes, or a quicker one
    # for every runner (a command-line run makes its own).
    worker_module = "model.train"

    def __init__(
        self,
        models_dir: Path,
        work_dir: Path,
        seed: int = 0,
        *,
        niceness: int = 0,
        threads: int = 0,
    ) -> None:
        self.models_dir = models_dir
        self.work_dir = work_dir
        self.seed = seed
        self.niceness = niceness
        self.threads = threads or default_training_threads()
        self._lock = asyncio.Lock()

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    async def train(
        self, pairs: Sequence[QAPair], on_progress: ProgressCallback | None = None
    ) -> TrainedVersion:
        """Train a new (not yet promoted) version from `pairs`."""
        if not training_installed():
            raise TrainingNotInstalledError(self.models_dir)
        if self._lock.locked():
            raise TrainingBusyError("a training run is already in progress")
        async with self._lock:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                "w", suffix=".csv", dir=self.work_dir, encoding="utf-8", newline="", delete=False
            ) as data_file:
                write_pairs_csv(pairs, data_file)
            try:
                return await self._run_worker(Path(data_file.name), on_progress)
            finally:
                Path(data_file.name).unlink(missing_ok=True)

    async def _run_worker(self, data: Path, on_progress: ProgressCallback | None) -> TrainedVersion:
        command = [
            sys.executable, "-m", "bot.serving.background", str(self.niceness), self.worker_module,
            "--data", str(data),
            "--model-dir", str(self.models_dir),
            "--seed", str(self.seed),
            "--no-promote",
            "--progress-json",
        ]  # fmt: skip
        env = {
            **child_environment(),
            **dict.fromkeys(THREAD_VARIABLES, str(self.threads)),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
        }
        process = await asyncio.create_subprocess_exec(
            *command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            # The worker's events are JSON lines; its data report and final figures can be far
            # longer than asyncio's default 64 KiB line limit.
            limit=WORKER_LINE_LIMIT,
        )
        stderr_task = asyncio.create_task(_tail(process.stderr))
        done: dict[str, Any] | None = None
        report: DataReport | None = None
        assert process.stdout is not None
        async for raw_line in process.stdout:
            try:
                event = json.loads(raw_line)
            except ValueError:
                continue
            if event.get("event") == "done":
                done = event
                continue
            if event.get("event") == "data_report":  # before training: shown to the admin too
                report = DataReport.from_dict(event["report"])
            if on_progress is not None:
                try:
                    await on_progress(event)
                except Exception:  # a progress message that cannot be shown must not stop training
                    log.exception("progress callback failed")
        code = await process.wait()
        error_tail = await stderr_task
        if report is not None and report.refused:
            raise TrainingRefusedError(report.refusal(), report)
        if code != 0 or done is None:
            reason = error_tail[-1] if error_tail else f"exit code {code}"
            log.error("training worker failed (exit code %s): %s", code, "\n".join(error_tail))
            raise TrainingFailedError(reason)
        return TrainedVersion(
            done["version"], Path(done["path"]), done.get("metrics", {}), data_report=report
        )


async def _tail(stream: asyncio.StreamReader | None, keep: int = 20) -> list[str]:
    lines: list[str] = []
    if stream is None:
        return lines
    async for raw_line in stream:
        line = raw_line.decode("utf-8", "replace").rstrip()
        if line:
            lines = [*lines[-(keep - 1) :], line]
    return lines
