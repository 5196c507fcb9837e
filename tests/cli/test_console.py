"""The console chat: in-process, and through `make run` on a fresh home with piped input."""

from __future__ import annotations

import io
import os
import subprocess

import pytest

from bot.app.app import App
from bot.console import run_console
from bot.settings import PROJECT_ROOT


async def test_piped_console_prints_one_answer_per_line(app: App) -> None:
    questions = ["你好", "", "what's your name", "line with\ttab", "😀"]
    stdout = io.StringIO()
    await run_console(app, io.StringIO("\n".join(questions) + "\n"), stdout)
    answers = stdout.getvalue().splitlines()
    assert len(answers) == len(questions)
    assert answers[0] == "你好！"
    assert answers[2] == "My name is Chatbot."
    await app.writer.flush()
    assert await app.store.count_exchanges() == len(questions)


@pytest.mark.slow
def test_make_run_first_start_answers_piped_questions(tmp_path) -> None:
    """A fresh home: `make run` migrates, loads the bundled set, trains, then answers stdin."""
    env = {**os.environ, "QABOT_HOME": str(tmp_path / "home")}
    for name in ("TELEGRAM_BOT_TOKEN", "QABOT_DATABASE_URL", "MAKEFLAGS", "MAKELEVEL"):
        env.pop(name, None)
    questions = "你好\n你的名字是什么？\nhello there\n\n"
    result = subprocess.run(
        ["make", "--no-print-directory", "run"],
        cwd=PROJECT_ROOT,
        input=questions,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    answers = result.stdout.splitlines()
    assert answers[:2] == ["你好！", "我的名字是 Chatbot。"]
    assert len(answers) == 4 and all(answers)
    assert "first model" in result.stderr
    assert (tmp_path / "home" / "qabot.sqlite3").exists()


async def test_console_answers_cannot_drive_the_terminal(app: App) -> None:
    from model.datasets import QAPair

    # An approved suggestion is a user's words: here with escape sequences and a line break.
    answer = "\x1b]0;owned\x07\x1b[2Jcleared\nsecond line\rover"
    await app.store.add_pairs([QAPair("zorblax quux", answer)], source="reviewed")
    await app.known_answers.reload(app.store)
    stdout = io.StringIO()
    await run_console(app, io.StringIO("zorblax quux\n"), stdout)
    [line] = stdout.getvalue().splitlines()
    assert not any(ch in line for ch in "\x1b\x07\r")
    assert line == "\\x1b]0;owned\\x07\\x1b[2Jcleared second line over"


async def test_the_interactive_banner_follows_the_terminals_language(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot import messages

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for locale, lang in (("zh_CN.UTF-8", "zh"), ("en_US.UTF-8", "en"), ("C.UTF-8", "en")):
        monkeypatch.delenv("LC_ALL", raising=False)
        monkeypatch.delenv("LC_MESSAGES", raising=False)
        monkeypatch.setenv("LANG", locale)
        stdout = io.StringIO()
        assert await run_console(app, Terminal(""), stdout) == 0
        assert stdout.getvalue().startswith(messages.text("console_banner", lang) + "\n")
