"""Answers may carry Telegram's HTML subset (links, bold, italics, underline, strikethrough,
spoilers, code, quotes; line breaks are plain newlines): how to check an answer's markup and
how to read it as plain text (the console, buttons, quotes)."""

from __future__ import annotations

import html
from html.parser import HTMLParser

# The tags the Bot API accepts with parse_mode=HTML.
TELEGRAM_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
     "tg-emoji", "code", "pre", "blockquote"}
)  # fmt: skip


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open_tags: list[str] = []
        self.plain: list[str] = []
        self.error: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in TELEGRAM_TAGS:
            self._fail(
                f"<{tag}> is not one of Telegram's tags ({', '.join(sorted(TELEGRAM_TAGS))})"
            )
        elif tag == "a" and not dict(attrs).get("href"):
            self._fail("<a> needs an href")
        self.open_tags.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._fail(f"<{tag}/>: Telegram has no empty tags (use a newline for a line break)")

    def handle_endtag(self, tag: str) -> None:
        if not self.open_tags or self.open_tags[-1] != tag:
            expected = f"</{self.open_tags[-1]}>" if self.open_tags else "no end tag"
            self._fail(f"</{tag}> where {expected} was expected")
        else:
            self.open_tags.pop()

    def handle_data(self, data: str) -> None:
        self.plain.append(data)

    def _fail(self, error: str) -> None:
        self.error = self.error or error


def _parse(text: str) -> _Checker:
    checker = _Checker()
    checker.feed(text)
    checker.close()
    if checker.error is None and checker.open_tags:
        checker.error = f"<{checker.open_tags[-1]}> is never closed"
    return checker


def html_error(text: str) -> str | None:
    """What is wrong with the answer's markup for Telegram, or None when it is fine (text
    without any tag always is)."""
    if "<" not in text:
        return None
    return _parse(text).error


def plain_text(text: str) -> str:
    """The text a reader sees: tags dropped and entities decoded; an answer whose markup is
    not valid is shown as it is stored."""
    if "<" not in text and "&" not in text:
        return text
    checker = _parse(text)
    return text if checker.error else html.unescape("".join(checker.plain))
