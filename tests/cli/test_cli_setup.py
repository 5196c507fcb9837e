"""`qabot` as a real process: setup mistakes end in one or two lines that name the setting,
with exit code 2 and no traceback; help imports nothing heavy; a closed pipe ends quietly."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import TOKEN
from tests.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
SETUP_ERROR = 2
# What `qabot --help` must not wait for (each takes a tenth of a second to seconds to import).
HEAVY_MODULES = ("telegram", "sqlalchemy", "numpy", "scipy", "tensorflow", "model.predictor")


def qabot(
    home: Path, *args: str, stdin: str | None = "", **settings: str
) -> subprocess.CompletedProcess[str]:
    """`python -m bot.cli ARGS` with only these settings (run outside the checkout, so that no
    `.env` file there applies); stdin None: the null device, as a service gets."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "TELEGRAM_"))}
    env.update(QABOT_HOME=str(home), PYTHONPATH=str(ROOT), **settings)
    home.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=home.parent, env=env, input=stdin, capture_output=True, text=True,
        stdin=subprocess.DEVNULL if stdin is None else None,
    )  # fmt: skip


def assert_setup_error(result: subprocess.CompletedProcess[str], setting: str) -> list[str]:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == SETUP_ERROR, result.stderr
    assert "Traceback" not in result.stderr
    assert 1 <= len(lines) <= 2, result.stderr
    assert setting in lines[0]
    return lines


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("QABOT_RATE_LIMIT", "abc"),
        ("QABOT_ADMIN_IDS", "x"),
        ("QABOT_RETENTION_DAYS", "soon"),
        # Would delete every exchange as soon as it is logged.
        ("QABOT_RETENTION_DAYS", "-3"),
        ("QABOT_SEND_RATE", "-1"),
        ("QABOT_RATE_LIMIT", "10/nan"),
        ("QABOT_HANDOFF_TIMEOUT_MINUTES", "inf"),
        ("QABOT_SEED", "-1"),
        ("QABOT_WEBHOOK_LISTEN", "localhost"),
        ("QABOT_DATABASE_URL", "not a url"),
        # In memory: each connection would get an empty database of its own.
        ("QABOT_DATABASE_URL", "sqlite://"),
    ],
)
def test_a_bad_setting_is_named_in_one_or_two_lines(
    home: Path, setting: str, value: str, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through main() in this process: a setting is read the same way there, and a fresh
    interpreter per setting cost half a second of CPU each (the next test is the process's)."""
    for name in os.environ:
        if name.startswith(("QABOT_", "TELEGRAM_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("QABOT_HOME", str(home))
    monkeypatch.setenv(setting, value)
    home.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(home.parent)  # no `.env` file of the checkout applies
    code = main(["export"])
    result = subprocess.CompletedProcess(["qabot", "export"], code, *capsys.readouterr())
    assert_setup_error(result, setting)


def test_a_bad_setting_ends_the_process_with_code_2(home: Path) -> None:
    assert_setup_error(qabot(home, "export", QABOT_RATE_LIMIT="abc"), "QABOT_RATE_LIMIT")


def test_a_database_qabot_cannot_use_is_explained_without_its_password(home: Path) -> None:
    result = qabot(home, "db", "upgrade", QABOT_DATABASE_URL="mysql://u:secret-pw@db/qa")
    lines = assert_setup_error(result, "QABOT_DATABASE_URL")
    assert "SQLite and PostgreSQL" in lines[0]
    assert "secret-pw" not in result.stderr


def test_an_unreachable_database_is_explained_without_its_password(home: Path) -> None:
    # Nothing listens on port 1.
    url = "postgresql+asyncpg://postgres:secret-pw@127.0.0.1:1/test"
    result = qabot(home, "db", "upgrade", QABOT_DATABASE_URL=url)
    lines = assert_setup_error(result, "QABOT_DATABASE_URL")
    assert "127.0.0.1:1" in lines[0]
    assert "secret-pw" not in result.stderr


def test_a_home_that_is_not_a_folder_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("a file, not a folder")
    assert_setup_error(qabot(home, "db", "upgrade"), "QABOT_HOME")


def test_a_sqlite_path_qabot_cannot_open_is_named(home: Path, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}"  # a folder, not a file
    lines = assert_setup_error(qabot(home, "db", "upgrade", QABOT_DATABASE_URL=url), str(tmp_path))
    assert "QABOT_DATABASE_URL" in lines[0] and "folder qabot may write to" in lines[1]


def test_a_plain_sqlite_url_is_taken_as_the_async_one(home: Path, tmp_path: Path) -> None:
    database = tmp_path / "plain.sqlite3"
    result = qabot(home, "db", "upgrade", QABOT_DATABASE_URL=f"sqlite:///{database}")
    assert result.returncode == 0, result.stderr
    assert database.stat().st_size > 0


@pytest.mark.slow
async def test_an_unreachable_bot_api_is_explained_without_the_token(home: Path) -> None:
    result = await asyncio.to_thread(
        qabot, home, "run",
        TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL="http://127.0.0.1:1/bot",
        QABOT_MODEL_PROCESS="0",
    )  # fmt: skip
    lines = assert_setup_error(result, "Bot API")
    assert "TELEGRAM_API_BASE_URL" in "\n".join(lines)
    assert TOKEN not in result.stderr and TOKEN.split(":")[1] not in result.stderr


@pytest.mark.slow
async def test_a_refused_token_is_named_but_never_shown(home: Path) -> None:
    wrong_token = "999:a-token-the-bot-api-does-not-know"
    async with FakeTelegram(token=TOKEN) as tg:
        result = await asyncio.to_thread(
            qabot, home, "run",
            TELEGRAM_BOT_TOKEN=wrong_token, TELEGRAM_API_BASE_URL=f"{tg.url}/bot",
            QABOT_MODEL_PROCESS="0",
        )  # fmt: skip
    assert_setup_error(result, "TELEGRAM_BOT_TOKEN")
    assert wrong_token.split(":")[1] not in result.stderr


@pytest.mark.slow
def test_run_without_a_token_says_it_answers_standard_input(bot_home: Path) -> None:
    result = qabot(bot_home, "run", stdin="hello\n", QABOT_MODEL_PROCESS="0")
    assert result.returncode == 0, result.stderr
    assert "TELEGRAM_BOT_TOKEN is not set" in result.stderr
    assert "standard input" in result.stderr
    assert len(result.stdout.splitlines()) == 1  # the answer


def test_run_without_a_token_or_any_input_is_a_setup_error(home: Path) -> None:
    """As a service started without its token: said at once, before any model is trained."""
    lines = assert_setup_error(qabot(home, "run", stdin=None), "TELEGRAM_BOT_TOKEN")
    assert "standard input" in lines[0]
    assert not (home / "models").exists()


@pytest.mark.slow
def test_run_without_a_token_on_an_empty_pipe_is_a_setup_error(bot_home: Path) -> None:
    result = qabot(bot_home, "run", stdin="", QABOT_MODEL_PROCESS="0")
    assert result.returncode == SETUP_ERROR, result.stderr
    assert result.stderr.splitlines()[-2].startswith("qabot: TELEGRAM_BOT_TOKEN is not set")


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    commands = [[], ["run"], ["chat"], ["train"], ["eval"], ["export"], ["import"], ["models"],
                ["rollback"], ["review"], ["db"], ["db", "upgrade"]]  # fmt: skip
    script = f"""
import contextlib, io, json, sys
from bot.cli import main
for command in {commands!r}:
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:
        main([*command, "--help"])
    assert "usage: qabot" in out.getvalue(), command
print(json.dumps([m for m in {HEAVY_MODULES!r} if m in sys.modules]))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []


@pytest.mark.slow
def test_export_into_a_closed_pipe_ends_quietly(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Far more than a pipe holds, so the export is still writing when the reader leaves.
    pairs = tmp_path / "many.csv"
    padding = "x" * 200
    rows = (f"question {i} {padding},answer {i % 50}\n" for i in range(3_000))
    pairs.write_text("question,answer\n" + "".join(rows), encoding="utf-8")
    monkeypatch.setenv("QABOT_HOME", str(home))
    monkeypatch.delenv("QABOT_DATABASE_URL", raising=False)
    assert main(["import", str(pairs)]) == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "TELEGRAM_"))}
    env.update(QABOT_HOME=str(home), PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "export", "--pairs"], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == "question,answer\n"
    process.stdout.close()  # as `| head -1` does
    stderr = process.stderr.read()
    process.wait()
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
    assert stderr == ""
