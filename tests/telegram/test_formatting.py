"""Answers with links and formatting: kept from /teach as Telegram HTML, sent with
parse_mode=HTML (as plain text when Telegram refuses the markup), checked at import, shown as
plain text in the console."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import import_pairs
from bot.console import reply_lines
from bot.settings import Settings
from bot.storage.store import ChatInfo
from model.answer_html import html_error, plain_text
from tests.conftest import TelegramBot

TEACH = "/teach how do I reset my password | See the guide, then log in again"


async def test_a_formatted_teach_answer_is_sent_with_its_formatting(
    telegram_bot: TelegramBot,
) -> None:
    bot, tg = telegram_bot, telegram_bot.tg
    bold = {"type": "bold", "offset": TEACH.index("the guide"), "length": len("the guide")}
    link = {
        "type": "text_link", "offset": TEACH.index("log in"), "length": len("log in"),
        "url": "https://example.com/login",
    }  # fmt: skip
    await tg.send_text(bot.admin, TEACH, formatting=[bold, link])
    assert (await tg.next_reply(bot.admin)).text.startswith("Learned")

    await tg.send_text(bot.user, "How do I reset my password?")
    answer = await tg.next_reply(bot.user)
    assert answer.text == (
        'See <b>the guide</b>, then <a href="https://example.com/login">log in</a> again'
    )
    assert answer.parse_mode == "HTML" and answer.buttons  # rateable as ever

    # The console shows what a reader sees.
    reply = await bot.app.answering.reply(ChatInfo(0), None, "how do I reset my password")
    assert reply_lines(reply) == ["See the guide, then log in again"]


async def test_an_answer_telegram_cannot_parse_is_sent_as_plain_text(
    telegram_bot: TelegramBot,
) -> None:
    bot, tg = telegram_bot, telegram_bot.tg
    await bot.app.learning.teach("what does the old answer say", "1 <b> 2 & 3")
    await tg.send_text(bot.user, "what does the old answer say")
    answer = await tg.next_reply(bot.user)
    assert answer.text == "1 <b> 2 & 3" and answer.parse_mode is None
    refused = [c for c in tg.calls if c.method == "sendMessage" and not c.ok]
    assert len(refused) == 1 and refused[0].params["parse_mode"] == "HTML"


async def test_an_import_with_malformed_html_is_refused_with_its_line(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "faq.csv"
    path.write_text(
        "question,answer\n"
        'hours,"We open at <b>9</b>, see <a href=""https://example.com"">the site</a>"\n'
        "refunds,Ask <i>within 30 days</b>\n",
        encoding="utf-8",
    )
    assert await import_pairs(settings, path) == 2
    error = capsys.readouterr().err
    assert "faq.csv, line 3" in error and "</b>" in error


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("plain & simple < 3", "plain & simple < 3"),
        ("<b>bold</b> &amp; <code>x &lt; y</code>", "bold & x < y"),
        ("<pre>a\nb</pre>", "a\nb"),
    ],
)
def test_valid_markup_and_its_plain_text(text: str, plain: str) -> None:
    assert html_error(text) is None and plain_text(text) == plain


@pytest.mark.parametrize(
    "text", ["<b>open", "<div>x</div>", "<b><i>x</b></i>", "<a>no link</a>", "line<br/>break"]
)
def test_malformed_markup_is_named(text: str) -> None:
    assert html_error(text) and plain_text(text) == text
