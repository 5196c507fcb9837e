"""Logging set-up: to stderr, with the bot token redacted from every line."""

from __future__ import annotations

import logging
import sys
from urllib.parse import quote

REDACTED = "<token>"


def secret_forms(secret: str | None) -> list[str]:
    """How a secret can appear in a text: whole, percent-encoded in a URL, and for the bot token
    its secret part (after the bot's id and the colon) alone."""
    if not secret:
        return []
    forms = {secret, quote(secret, safe="")}
    _, colon, part = secret.partition(":")
    if colon and part:
        forms.add(part)
    return sorted(forms, key=len, reverse=True)  # the longest first: the whole token is one


class RedactingFormatter(logging.Formatter):
    """Formats as usual, then removes secrets (the token appears in Bot API URLs and in some
    library error messages)."""

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt)
        self.secrets = sorted(
            {form for secret in secrets for form in secret_forms(secret)}, key=len, reverse=True
        )

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        for secret in self.secrets:
            line = line.replace(secret, REDACTED)
        return line


def setup_logging(*secrets: str | None, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s", [s for s in secrets if s]
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request URL, and Bot API URLs carry the token.
    for noisy in ("httpx", "httpcore", "apscheduler", "aiosqlite", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
