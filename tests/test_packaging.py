"""The project as an installable package: where its data goes, and the built wheel itself."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

import bot.settings
from bot import cli
from bot.run import BUNDLED_PAIRS
from bot.settings import PROJECT_ROOT, Settings
from tests.conftest import TelegramBot


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


@pytest.fixture
def serving_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the `train` extra were not installed: importing TensorFlow fails, and looking it
    up finds nothing."""
    monkeypatch.setitem(sys.modules, "tensorflow", None)


def test_train_without_the_training_extra_says_what_to_install(
    serving_only: None,
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QABOT_HOME", str(home))
    assert cli.main(["train", "--data", str(BUNDLED_PAIRS)]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "pip install 'qabot[train]'" in line and str(home / "models") in line
    assert not (home / "models").exists()


def test_run_without_a_model_or_the_training_extra_says_what_to_do(
    serving_only: None,
    monkeypatch: pytest.MonkeyPatch,
    home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("QABOT_HOME", str(home))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "")
    monkeypatch.setenv("QABOT_MODEL_PROCESS", "0")
    monkeypatch.setattr(sys, "stdin", io.StringIO("hello\n"))
    assert cli.main(["run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = [text for text in captured.err.splitlines() if "qabot[train]" in text]
    assert line.startswith("qabot: no model to serve yet") and str(home / "models") in line


async def test_retrain_without_the_training_extra_says_so_and_keeps_serving(
    serving_only: None, telegram_bot: TelegramBot
) -> None:
    bot = telegram_bot
    live = bot.service.registry.current_version()
    await bot.tg.send_command(bot.admin, "/retrain")
    reply = (await bot.tg.next_reply(bot.admin)).text
    assert "cannot retrain" in reply and "pip install 'qabot[train]'" in reply
    assert bot.service.registry.current_version() == live
    await bot.tg.send_text(bot.user, "你好")
    assert (await bot.tg.next_reply(bot.user)).text == "你好！"
