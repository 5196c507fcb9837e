"""The project as an installable package: where its data goes, and the built wheel itself."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import bot.settings
from bot import cli
from bot.app.app import BUNDLED_PAIRS
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


def locked_pins() -> dict[str, str]:
    """requirements.lock as {package: version}."""
    lock = (PROJECT_ROOT / "requirements.lock").read_text()
    return dict(re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", lock, re.M))


def test_the_lock_pins_every_declared_dependency_within_its_range() -> None:
    pins = {canonicalize_name(name): Version(version) for name, version in locked_pins().items()}
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    for text in [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert pins[name] in requirement.specifier, f"{name}=={pins[name]}: run `make lock`"


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
    live = bot.app.models.registry.current_version()
    await bot.tg.send_command(bot.admin, "/retrain")
    reply = (await bot.tg.next_reply(bot.admin)).text or ""
    assert "cannot retrain" in reply and "pip install 'qabot[train]'" in reply
    assert bot.app.models.registry.current_version() == live
    await bot.tg.send_text(bot.user, "你好")
    assert (await bot.tg.next_reply(bot.user)).text == "你好！"


# What the wheel is built from: the files the package consists of.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "bot", "model", "migrations")
QUESTIONS = ["你好", "what can you do?", "", "量子引力是什么"]


def build_wheel(work: Path) -> Path:
    """The project's wheel, built from a copy of its sources (nothing written to the checkout)."""
    source = work / "source"
    source.mkdir()
    for name in WHEEL_SOURCES:
        if (PROJECT_ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(PROJECT_ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(PROJECT_ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--quiet"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", work / "dist", source], check=True)
    [wheel] = (work / "dist").glob("qabot-*.whl")
    return wheel


def locked_constraints(work: Path) -> Path:
    """The lock's pins as pip constraints, without their hashes (in a constraints file, hashes
    would be demanded of the wheel itself too): the versions tested."""
    constraints = work / "constraints.txt"
    constraints.write_text(
        "".join(f"{name}=={version}\n" for name, version in locked_pins().items())
    )
    return constraints


def install_offline_when_possible(
    venv: Path, wheel: Path, constraints: Path, wheelhouse: Path
) -> None:
    """`pip install` the wheel, its dependencies from `wheelhouse` (a folder kept between
    runs): they are downloaded only when it lacks one, not on every run."""
    pip: list[str | Path] = [venv / "bin" / "python", "-m", "pip", "--quiet"]
    install = [*pip, "install", "--no-index", "--find-links", wheelhouse, "-c", constraints, wheel]
    if subprocess.run(install, capture_output=True).returncode != 0:
        # Wheels, not downloads: a dependency published only as source (jieba) is built here,
        # where the index is reachable, so the offline install needs no build tools.
        subprocess.run([*pip, "wheel", "-w", wheelhouse, "-c", constraints, wheel], check=True)
        for own_wheel in wheelhouse.glob("qabot-*.whl"):  # only its dependencies are kept
            own_wheel.unlink()
        subprocess.run(install, check=True)


def installed_command_env(home: Path) -> dict[str, str]:
    """The environment of a user of the installed package: no settings of ours, and a home
    folder of their own (so the data folder is the default, in their data directory)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("QABOT_", "TELEGRAM_", "XDG_", "VIRTUAL_ENV", "PYTHON"))
    }
    return {**env, "HOME": str(home)}


@pytest.mark.slow
def test_the_wheel_installs_and_serves_from_an_empty_folder(
    tmp_path: Path, seed_model_dir: Path, request: pytest.FixtureRequest
) -> None:
    """`pip install qabot` (the wheel alone, no training extra) into a fresh virtual
    environment outside the checkout, then `qabot run` in an empty folder."""
    wheel = build_wheel(tmp_path)
    wheelhouse = request.config.cache.mkdir("qabot-wheelhouse")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    try:
        install_offline_when_possible(venv, wheel, locked_constraints(tmp_path), wheelhouse)
        user_home, folder = tmp_path / "user", tmp_path / "empty"
        folder.mkdir()
        env = installed_command_env(user_home)

        def qabot_run(questions: list[str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [venv / "bin" / "qabot", "run"],
                input="".join(f"{question}\n" for question in questions),
                cwd=folder, env=env, capture_output=True, text=True,
            )  # fmt: skip

        # No model yet, and this install cannot train one: one line says what to do.
        first = qabot_run(QUESTIONS)
        assert first.returncode == 2, first.stderr
        assert first.stdout == ""
        data_dir = user_home / ".local" / "share" / "qabot"
        [advice] = [line for line in first.stderr.splitlines() if "qabot[train]" in line]
        assert str(data_dir / "models") in advice

        # With a model trained elsewhere in the data directory, it answers every question.
        shutil.copytree(seed_model_dir, data_dir / "models")
        served = qabot_run(QUESTIONS)
        assert served.returncode == 0, served.stderr
        answers = served.stdout.splitlines()
        assert len(answers) == len(QUESTIONS) and all(answers)
        assert answers[0] == "你好！"
        assert (data_dir / "qabot.sqlite3").is_file()
        assert list(folder.iterdir()) == []
    finally:
        shutil.rmtree(venv)


def test_make_clean_keeps_the_database_and_models(tmp_path: Path) -> None:
    """`make clean` removes what setup and the tools made, never var/ (the SQLite database and
    every model version)."""
    shutil.copy2(PROJECT_ROOT / "Makefile", tmp_path / "Makefile")
    kept = [tmp_path / "var" / "qabot.sqlite3", tmp_path / "var" / "models" / "v1" / "meta.json"]
    kept.append(tmp_path / "var" / "__pycache__" / "x.pyc")  # however odd, it is var/'s
    removed = [tmp_path / ".venv" / "bin" / "python", tmp_path / "bot" / "__pycache__" / "x.pyc"]
    for path in kept + removed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    subprocess.run(["make", "--no-print-directory", "clean"], cwd=tmp_path, check=True,
                   capture_output=True)  # fmt: skip
    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in removed)
