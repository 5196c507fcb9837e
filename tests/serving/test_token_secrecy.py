"""The bot token never shows in logs, errors, exports or exception reports: `qabot run` against
the fake Bot API, with failures injected, and every line it logged and every file it wrote is
searched for the token."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path
from urllib.parse import quote

import pytest

from bot.cli import SETUP_ERROR
from tests.conftest import ADMIN_ID, TOKEN
from tests.fake_telegram import FakeTelegram
from tests.processes import log_path, qabot_process

SECRET_PART = TOKEN.split(":", 1)[1]


def assert_no_token(data: bytes, where: str) -> None:
    assert TOKEN.encode() not in data and SECRET_PART.encode() not in data, where


@pytest.mark.slow
async def test_failures_exports_and_crashes_never_reveal_the_token(bot_home: Path) -> None:
    async with FakeTelegram(token=TOKEN) as tg:
        admin = tg.user(ADMIN_ID, "Ada", language_code="en")
        user = tg.user(1001, "Bo", language_code="en")
        documents: list[bytes] = []
        async with qabot_process(tg, bot_home) as process:
            # Errors that carry the token in their text, and a broken long poll.
            tg.fail("getUpdates", status=502, times=2)
            for fault in (f"Bad Request: chat {TOKEN} broken", f"Internal error at /bot{TOKEN}/x"):
                tg.fail("sendMessage", status=400, description=fault)
                await tg.send_text(user, "hello")
                assert "went wrong" in (await tg.next_reply(user, timeout=600)).text
            for who, command in ((admin, "/export"), (admin, "/export jsonl"), (user, "/mydata")):
                await tg.send_command(who, command)
                documents.append((await tg.next_reply(who, timeout=600)).document.content)
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 30)
    log = log_path(bot_home).read_bytes()
    assert b"error while handling an update" in log  # the failures were logged...
    assert_no_token(log, "the log")  # ...without the token
    assert json.loads(documents[2])["tables"]["exchanges"]
    for number, document in enumerate(documents):
        assert_no_token(document, f"exported document {number}")
    for path in bot_home.rglob("*"):
        if path.is_file():
            assert_no_token(path.read_bytes(), str(path))


@pytest.mark.slow
async def test_a_rejected_token_is_reported_without_it(bot_home: Path) -> None:
    # The server knows another token: the bot's is refused, and the error quotes it.
    async with (
        FakeTelegram(token="999:another-bot") as tg,
        qabot_process(tg, bot_home, wait_until_polling=False) as process,
    ):
        # A setup mistake: explained in a line or two, with the setup error's exit code.
        assert await asyncio.to_thread(process.wait, 600) == SETUP_ERROR
    log = log_path(bot_home).read_bytes()
    assert b"the Bot API refused TELEGRAM_BOT_TOKEN" in log
    assert_no_token(log, "the log")


async def test_the_training_worker_gets_no_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.serving.retraining import TrainingFailedError, TrainingRunner
    from model.datasets import QAPair

    secrets = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": "webhook-secret-42",
        "QABOT_DATABASE_URL": "postgresql+asyncpg://bot:db-password-42@db/qabot",
        "PGPASSWORD": "db-password-42",
        "AWS_SECRET_ACCESS_KEY": "cloud-secret-42",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    runner = TrainingRunner(tmp_path / "models", tmp_path / "work")
    runner.worker_module = "tests.environment_reporting_trainer"
    seen: list[dict[str, str]] = []

    async def record(event: dict) -> None:
        seen.append(event["variables"])

    with pytest.raises(TrainingFailedError):
        await runner.train([QAPair("q", "a"), QAPair("r", "b")], record)
    [variables] = seen
    assert "PATH" in variables
    for value in secrets.values():
        assert not any(value in v for v in variables.values())


def test_worker_processes_get_a_minimal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model process's environment too (the training worker's is checked above)."""
    from bot.serving.environment import child_environment

    monkeypatch.setenv("PGPASSWORD", "db-password-42")
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", "webhook-secret-42")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    environment = child_environment()
    assert "PGPASSWORD" not in environment and "TELEGRAM_WEBHOOK_SECRET" not in environment
    assert environment["LC_ALL"] == "C.UTF-8" and "PATH" in environment


@pytest.mark.parametrize("shown", [TOKEN, SECRET_PART, quote(TOKEN, safe="")])
def test_the_token_is_redacted_in_every_form(shown: str) -> None:
    """Whole (a Bot API URL), percent-encoded (a URL a library quoted), or its secret part
    alone: in a log line, and in the setup error of an unreachable Bot API."""
    from telegram.error import NetworkError

    from bot.logs import REDACTED, RedactingFormatter
    from bot.settings import Settings
    from bot.startup import explain_bot_api_error

    formatter = RedactingFormatter("%(message)s", [TOKEN])
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, "GET https://api/bot%s/getMe", (shown,), None
    )
    line = formatter.format(record)
    assert_no_token(line.encode(), line)
    assert REDACTED in line
    settings = Settings(_env_file=None, TELEGRAM_BOT_TOKEN=TOKEN)
    error = explain_bot_api_error(settings, NetworkError(f"cannot connect to /bot{shown}/getMe"))
    assert error is not None
    assert_no_token(str(error).encode(), str(error))
