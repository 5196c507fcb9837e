"""`qabot run` as a real process against the fake Bot API, for crash and secrecy tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from tests.conftest import ADMIN_ID, TOKEN
from tests.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent


@contextlib.asynccontextmanager
async def qabot_process(
    tg: FakeTelegram, home: Path, *, wait_until_polling: bool = True
) -> AsyncIterator[subprocess.Popen]:
    """`qabot run` polling the fake server (stderr in `log_path(home)`); SIGKILLed, with its
    children, at the end unless it has exited."""
    env = {
        **os.environ,
        "QABOT_HOME": str(home),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": f"{tg.url}/bot",
        "TELEGRAM_FILE_BASE_URL": f"{tg.url}/file/bot",
        "QABOT_ADMIN_IDS": str(ADMIN_ID),
        "QABOT_RATE_LIMIT": "0",
        "QABOT_SEND_RATE": "0",
    }
    for name in ("QABOT_DATABASE_URL", "TELEGRAM_WEBHOOK_URL", "QABOT_RETENTION_DAYS"):
        env.pop(name, None)
    since = len(tg.calls)
    with log_path(home).open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    try:
        if wait_until_polling:
            await tg.wait_for(lambda call: call.method == "getUpdates", 60, since=since)
        yield process
    finally:
        kill_hard(process)


def kill_hard(process: subprocess.Popen) -> None:
    """SIGKILL the bot, then any worker it left behind (its session is its own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def log_path(home: Path) -> Path:
    return home.parent / "qabot.log"
