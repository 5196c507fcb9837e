"""Model registry: versions, atomic promotion, rollback, crash safety (no training needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from model.registry import POINTER_FILE, ModelRegistry, RegistryError, new_version_name


def add_version(registry: ModelRegistry, created_at: str, accuracy: float) -> str:
    """A stand-in version directory (meta.json only is enough for the registry)."""
    with registry.new_version() as (name, staging):
        meta = {"version": name, "created_at": created_at, "metrics": {"accuracy": accuracy}}
        (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return name


def test_empty_registry(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models")
    assert registry.current_version() is None
    assert registry.load_current() is None
    assert registry.versions() == []
    with pytest.raises(RegistryError, match="no earlier model version"):
        registry.rollback()


def test_promote_and_rollback(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    first = add_version(registry, "2026-11-28T10:00:00+00:00", 0.8)
    second = add_version(registry, "2026-11-28T11:00:00+00:00", 0.9)
    registry.promote(first)
    registry.promote(second)
    assert registry.current_version() == second
    assert [(v.name, v.live, v.metrics["accuracy"]) for v in registry.versions()] == [
        (second, True, 0.9),
        (first, False, 0.8),
    ]
    assert registry.rollback() == first
    assert registry.current_version() == first
    assert (registry.path(second) / "meta.json").is_file()  # rolled-back version stays on disk
    with pytest.raises(RegistryError):
        registry.rollback()


def test_promote_refuses_unknown_or_incomplete_versions(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    (tmp_path / "20260101-000000-abcd").mkdir()
    with pytest.raises(RegistryError, match="no complete model version"):
        registry.promote("20260101-000000-abcd")
    with pytest.raises(RegistryError, match="invalid"):
        registry.promote("../elsewhere")
    assert registry.current_version() is None


def test_crash_while_writing_a_version_leaves_nothing_and_keeps_current(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    live = add_version(registry, "2026-11-28T10:00:00+00:00", 0.8)
    registry.promote(live)
    pointer_before = (tmp_path / POINTER_FILE).read_bytes()
    with pytest.raises(RuntimeError, match="killed"), registry.new_version() as (_, staging):
        (staging / "weights.npz").write_bytes(b"half written")
        raise RuntimeError("killed mid-training")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([POINTER_FILE, live])
    assert (tmp_path / POINTER_FILE).read_bytes() == pointer_before
    assert [v.name for v in registry.versions()] == [live]


def test_crash_while_switching_keeps_the_old_pointer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = ModelRegistry(tmp_path)
    first = add_version(registry, "2026-11-28T10:00:00+00:00", 0.8)
    second = add_version(registry, "2026-11-28T11:00:00+00:00", 0.9)
    registry.promote(first)

    def crash(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr("model.registry.os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        registry.promote(second)
    assert registry.current_version() == first
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pointer-")]


def test_unfinished_staging_directories_are_ignored(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    leftover = tmp_path / ".staging-20260101-000000-abcd-xyz"
    leftover.mkdir()
    (leftover / "meta.json").write_text("{}", encoding="utf-8")
    assert registry.versions() == []


def test_version_names_sort_by_time() -> None:
    from datetime import UTC, datetime

    early = new_version_name(datetime(2026, 11, 28, 9, 5, 1, tzinfo=UTC))
    late = new_version_name(datetime(2026, 11, 28, 14, 5, 1, tzinfo=UTC))
    assert early.startswith("20261128-090501-") and early < late


def test_a_version_is_on_disk_before_it_is_named_and_switches_are_flushed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without fsync a power cut can leave a promoted version's files empty: every file and
    directory of a version is flushed before its rename, and the registry's directory after
    the rename and after CURRENT is replaced."""
    events: list[tuple[str, str]] = []
    real_fsync, real_rename, real_replace = os.fsync, os.rename, os.replace

    def fsync(descriptor: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}")))
        real_fsync(descriptor)

    def rename(source: str | Path, target: str | Path) -> None:
        events.append(("rename", str(Path(target).resolve())))
        real_rename(source, target)

    def replace(source: str | Path, target: str | Path) -> None:
        events.append(("replace", str(Path(target).resolve())))
        real_replace(source, target)

    monkeypatch.setattr("model.registry.os.fsync", fsync)
    monkeypatch.setattr("model.registry.os.rename", rename)
    monkeypatch.setattr("model.registry.os.replace", replace)
    root = tmp_path.resolve()
    registry = ModelRegistry(root)
    with registry.new_version() as (name, staging):
        (staging / "meta.json").write_text(json.dumps({"version": name}), encoding="utf-8")
        (staging / "network").mkdir()
        (staging / "network" / "weights.npz").write_bytes(b"weights")
    registry.promote(name)

    renamed = events.index(("rename", str(root / name)))
    flushed_before = {Path(path).name for kind, path in events[:renamed] if kind == "fsync"}
    assert {"meta.json", "weights.npz", "network"} <= flushed_before
    assert any(path.startswith(str(root / ".staging-")) for _, path in events[:renamed])
    assert events[renamed + 1] == ("fsync", str(root))
    switched = events.index(("replace", str(root / POINTER_FILE)))
    assert ("fsync", str(root)) in events[switched + 1 :]
    assert any(Path(path).name.startswith(".pointer-") for _, path in events[renamed:switched])
