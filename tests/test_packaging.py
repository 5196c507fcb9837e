"""The project as an installable package: where its data goes, and the built wheel itself."""

from __future__ import annotations

from pathlib import Path

import pytest

import bot.settings
from bot.settings import PROJECT_ROOT, Settings


def test_data_folder_is_var_in_a_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QABOT_HOME", raising=False)
    assert Settings(_env_file=None).home == PROJECT_ROOT / "var"


def test_data_folder_is_the_users_data_directory_when_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site_packages = tmp_path / "site-packages"  # no pyproject.toml: not a checkout
    site_packages.mkdir()
    monkeypatch.setattr(bot.settings, "PROJECT_ROOT", site_packages)
    monkeypatch.delenv("QABOT_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert Settings(_env_file=None).home == tmp_path / "data" / "qabot"


def test_qabot_home_always_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bot.settings, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("QABOT_HOME", str(tmp_path / "mine"))
    assert Settings(_env_file=None).home == tmp_path / "mine"
