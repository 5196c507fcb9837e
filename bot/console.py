"""Console chat through the application layer, as Telegram. Interactive on a terminal;
otherwise one question per input line and exactly one answer per output line (logs go to
stderr). "Did you mean" suggestions are shown as text: a line each on a terminal, on the
answer's line otherwise."""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
from typing import TextIO

from bot import messages
from bot.app.answering import Reply
from bot.app.app import App
from bot.storage.store import ChatInfo, UserInfo
from model.answer_html import plain_text

# The console is chat 0 / user 0 in the log (Telegram ids are never 0).
CONSOLE_CHAT = ChatInfo(id=0, type="console", title="console")


def terminal_safe(text: str) -> str:
    """Text from users for a terminal: control characters (ANSI escape sequences, carriage
    returns, line breaks, bells) shown as escapes such as \\x1b instead of run by the terminal."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def terminal_language() -> str:
    """The language of the terminal's locale (LC_ALL, LC_MESSAGES or LANG), as Telegram's
    language code is a user's: "zh" for a Chinese one."""
    locale = next(
        (os.environ[name] for name in ("LC_ALL", "LC_MESSAGES", "LANG") if os.environ.get(name)),
        None,
    )
    return messages.language_of(None, locale)


def console_user() -> UserInfo:
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = None
    return UserInfo(id=0, username=name, first_name=name)


def reply_lines(reply: Reply) -> list[str]:
    """The reply's text, then its "did you mean" suggestions numbered (each the best-known
    wording of an answer the user may ask again)."""
    numbered = (
        f"{n}. {' '.join(s.wording.split())}" for n, s in enumerate(reply.suggestions, start=1)
    )
    # Answers may hold users' words (an approved suggestion): no control characters.
    text = plain_text(reply.text)  # answers are stored as Telegram HTML
    return [terminal_safe(line) for line in (*text.splitlines(), *numbered)]


async def run_console(app: App, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Answer until the input ends; returns how many lines were read."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    interactive = stdin.isatty()
    user = console_user()
    questions = 0
    if interactive:
        print(messages.text("console_banner", terminal_language()), file=stdout)
    while True:
        if interactive:
            print("you> ", end="", file=stdout, flush=True)
        # Reading in a thread keeps the event loop (and the log writer) running meanwhile.
        line = await asyncio.to_thread(stdin.readline)
        if not line:
            break
        questions += 1
        reply = await app.answering.reply(CONSOLE_CHAT, user, line.rstrip("\r\n"))
        if interactive:
            print("bot> " + "\n     ".join(reply_lines(reply)), file=stdout, flush=True)
        else:
            print(" ".join(reply_lines(reply)), file=stdout, flush=True)  # one line, always
    if interactive:
        print(file=stdout)
    return questions
