"""Versioned model directories under one root, with an atomically switched CURRENT pointer."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from model.predictor import META_FILE, AnswerModel

POINTER_FILE = "CURRENT"
# Versions being written live under names starting with this; they are never listed or loaded.
STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class VersionInfo:
    name: str
    created_at: str
    metrics: dict
    live: bool


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to)."""


# Said by `qabot rollback`, and by /rollback in English (bot/messages.py translates it).
NO_EARLIER_VERSION = "no earlier model version to roll back to"


class NoEarlierVersionError(RegistryError):
    """Rollback with no version promoted before the live one."""


class ModelRegistry:
    """Root folder: one sub-folder per model version and a CURRENT file naming the live one.

    CURRENT is JSON: {"version": live name, "history": [earlier live names, oldest first]}, and
    is only ever replaced whole (temporary file + os.replace), so readers see the old or the new.
    A version's files are on disk (fsync) before it appears under its name, and a rename or
    replace is on disk before the call returns: after a power cut, CURRENT names a complete
    version, the new one or the one before.
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, version: str) -> Path:
        if not version or "/" in version or "\\" in version or version.startswith("."):
            raise RegistryError(f"invalid model version name {version!r}")
        return self.root / version

    def current_version(self) -> str | None:
        return self._read_pointer().get("version")

    def load_current(self) -> AnswerModel | None:
        version = self.current_version()
        return None if version is None else AnswerModel.load(self.path(version))

    def promote(self, version: str) -> None:
        if not (self.path(version) / META_FILE).is_file():
            raise RegistryError(f"no complete model version {version!r} in {self.root}")
        pointer = self._read_pointer()
        history = list(pointer.get("history", []))
        live = pointer.get("version")
        if live == version:
            return
        if live is not None:
            history.append(live)
        self._write_pointer({"version": version, "history": history})

    def rollback(self) -> str:
        """Make the previously promoted version live again and return its name."""
        pointer = self._read_pointer()
        history = [v for v in pointer.get("history", []) if (self.path(v) / META_FILE).is_file()]
        if not history:
            raise NoEarlierVersionError(NO_EARLIER_VERSION)
        previous = history.pop()
        self._write_pointer({"version": previous, "history": history})
        return previous

    def versions(self) -> list[VersionInfo]:
        """Complete versions, newest first."""
        if not self.root.is_dir():
            return []
        live = self.current_version()
        infos = []
        for entry in self.root.iterdir():
            meta_path = entry / META_FILE
            if entry.name.startswith(".") or not meta_path.is_file():
                continue
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            infos.append(
                VersionInfo(
                    name=entry.name,
                    created_at=meta.get("created_at", ""),
                    metrics=meta.get("metrics", {}),
                    live=entry.name == live,
                )
            )
        infos.sort(key=lambda info: (info.created_at, info.name), reverse=True)
        return infos

    @contextmanager
    def new_version(self) -> Iterator[tuple[str, Path]]:
        """Yield (name, staging dir) to fill; the version appears only if the block succeeds."""
        self.root.mkdir(parents=True, exist_ok=True)
        name = new_version_name()
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{name}-", dir=self.root))
        try:
            yield name, staging
            _fsync_tree(staging)
            os.rename(staging, self.path(name))
            _fsync_directory(self.root)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _read_pointer(self) -> dict:
        try:
            return json.loads((self.root / POINTER_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def _write_pointer(self, pointer: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=".pointer-", dir=self.root)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(pointer, file)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp_name, self.root / POINTER_FILE)
            _fsync_directory(self.root)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise


def _fsync_tree(root: Path) -> None:
    """Flush every file under `root` to disk, then each directory's entries (deepest first)."""
    for directory, _, files in os.walk(root, topdown=False):
        for name in files:
            _fsync_path(Path(directory) / name, os.O_RDONLY)
        _fsync_directory(Path(directory))


def _fsync_directory(path: Path) -> None:
    """A rename or a new file is durable only once its directory is flushed too."""
    _fsync_path(path, os.O_RDONLY | os.O_DIRECTORY)


def _fsync_path(path: Path, flags: int) -> None:
    descriptor = os.open(path, flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def new_version_name(now: datetime | None = None) -> str:
    """A name that sorts by creation time, e.g. 20261128-140501-3f2a."""
    now = now or datetime.now(UTC)
    return f"{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
