"""Settings: one typed class read from the environment (and an optional `.env` file)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def default_home() -> Path:
    """`var/` in a checkout (git-ignored); once installed as a package, the user's data
    directory, since the code then lives in site-packages."""
    if (PROJECT_ROOT / "pyproject.toml").is_file():
        return PROJECT_ROOT / "var"
    from platformdirs import user_data_path

    return user_data_path("qabot", appauthor=False)


@dataclass(frozen=True)
class RateLimit:
    """Token bucket per user: `burst` messages at once, refilled at `per_second`."""

    burst: int
    per_second: float

    @property
    def enabled(self) -> bool:
        return self.burst > 0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    home: Path = Field(default_factory=default_home, alias="QABOT_HOME")
    database_url_setting: str | None = Field(None, alias="QABOT_DATABASE_URL")
    telegram_bot_token: str | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_base_url: str = Field(
        "https://api.telegram.org/bot", alias="TELEGRAM_API_BASE_URL"
    )
    telegram_file_base_url: str = Field(
        "https://api.telegram.org/file/bot", alias="TELEGRAM_FILE_BASE_URL"
    )
    # NoDecode: the variable is a plain comma-separated list, not JSON.
    admin_ids: Annotated[frozenset[int], NoDecode] = Field(frozenset(), alias="QABOT_ADMIN_IDS")
    webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    webhook_listen: str = Field("127.0.0.1:8443", alias="QABOT_WEBHOOK_LISTEN")
    webhook_secret: str | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    rate_limit_setting: str = Field("10/1", alias="QABOT_RATE_LIMIT")
    # Messages a second the bot sends over all chats (Telegram asks for at most 30); 0 turns
    # the limiter off, which only a benchmark against a local fake Bot API should do.
    send_rate: float = Field(30.0, ge=0, allow_inf_nan=False, alias="QABOT_SEND_RATE")
    # At least a day (0 or less would delete what was just logged); at most a century (a date
    # further back than the year 1 cannot be computed).
    retention_days: int | None = Field(None, ge=1, le=36_500, alias="QABOT_RETENTION_DAYS")
    # A Telegram group of people who answer what the bot cannot (hand-off); none: no hand-off.
    support_chat_id: int | None = Field(None, alias="QABOT_SUPPORT_CHAT_ID")
    # After this long without a person's answer, the user is told nobody has picked it up yet.
    handoff_timeout_minutes: float = Field(
        60.0, gt=0, allow_inf_nan=False, alias="QABOT_HANDOFF_TIMEOUT_MINUTES"
    )
    # Memory for the exchanges kept while the database is unreachable (the oldest are dropped
    # beyond it): at 100,000 exchanges of 4,096 characters a queue bounded by count held 1.6 GB.
    outage_queue_mb: int = Field(256, ge=1, alias="QABOT_OUTAGE_QUEUE_MB")
    # Training seeds NumPy's generators, which take 0 to 2**32 - 1.
    seed: int = Field(0, ge=0, le=2**32 - 1, alias="QABOT_SEED")
    # Answer in a model process beside the bot (bot/serving/); off: in the bot's own.
    model_process: bool = Field(True, alias="QABOT_MODEL_PROCESS")
    # The training worker runs this much nicer than the bot (0 to 19; 0: at the bot's priority)
    # and with at most this many threads per thread pool (0: one fewer than the cores).
    training_niceness: int = Field(10, ge=0, le=19, alias="QABOT_TRAINING_NICENESS")
    training_threads: int = Field(0, ge=0, alias="QABOT_TRAINING_THREADS")

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _parse_admin_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part for part in value.replace(" ", "").split(",") if part]
            if not all(part.lstrip("-").isdigit() for part in parts):
                raise ValueError(
                    f"QABOT_ADMIN_IDS must be numeric Telegram user ids separated by commas, "
                    f"got {value!r}"
                )
            return frozenset(int(part) for part in parts)
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator(
        "database_url_setting",
        "telegram_bot_token",
        "webhook_url",
        "webhook_secret",
        "retention_days",
        "support_chat_id",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("database_url_setting")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        return None if value is None else async_database_url(value)

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
        return value

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> Settings:
        # Without it, anyone who finds the URL can send the bot updates as any user or admin.
        if self.webhook_url and not self.webhook_secret:
            raise ValueError(
                "TELEGRAM_WEBHOOK_SECRET must be set when TELEGRAM_WEBHOOK_URL is (webhook mode): "
                "1-256 characters of A-Z, a-z, 0-9, _ and -, e.g. from `openssl rand -hex 32`"
            )
        return self

    @field_validator("webhook_listen")
    @classmethod
    def _check_webhook_listen(cls, value: str) -> str:
        _, _, port = value.rpartition(":")
        if not (port.isdecimal() and 1 <= int(port) <= 65535):
            raise ValueError(
                f"QABOT_WEBHOOK_LISTEN must look like HOST:PORT (a port from 1 to 65535), "
                f"got {value!r}"
            )
        return value

    @field_validator("rate_limit_setting")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)
        return value

    @cached_property
    def database_url(self) -> str:
        return self.database_url_setting or f"sqlite+aiosqlite:///{self.home / 'qabot.sqlite3'}"

    @cached_property
    def models_dir(self) -> Path:
        return self.home / "models"

    @cached_property
    def rate_limit(self) -> RateLimit:
        return parse_rate_limit(self.rate_limit_setting)

    @cached_property
    def webhook_host_port(self) -> tuple[str, int]:
        host, _, port = self.webhook_listen.rpartition(":")
        return host or "127.0.0.1", int(port)

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_ids


def parse_rate_limit(value: str) -> RateLimit:
    """`"10/1"` → burst 10, refill 1 a second; `"0"` turns the limit off."""
    value = value.strip()
    if value in ("", "0"):
        return RateLimit(0, 0.0)
    burst, sep, per_second = value.partition("/")
    try:
        limit = RateLimit(int(burst), float(per_second) if sep else 1.0)
    except ValueError:
        raise ValueError(
            f"QABOT_RATE_LIMIT must look like BURST/PER_SECOND, got {value!r}"
        ) from None
    if limit.burst < 0 or not 0 < limit.per_second < math.inf:
        raise ValueError(
            f"QABOT_RATE_LIMIT must be a positive, finite BURST/PER_SECOND, got {value!r}"
        )
    return limit


# The async driver qabot uses for each database it supports.
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg", "postgres": "asyncpg"}
DATABASE_URL_EXAMPLES = (
    "sqlite+aiosqlite:///path/to/qabot.sqlite3 or postgresql+asyncpg://user:password@host/db"
)


def async_database_url(value: str) -> str:
    """The URL with the async driver qabot needs: `sqlite://` and `postgresql://` are taken to
    mean `sqlite+aiosqlite://` and `postgresql+asyncpg://`. ValueError for anything else (the
    message never repeats the URL, which may hold a password)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(value)
    except (ArgumentError, ValueError):
        raise ValueError(
            f"QABOT_DATABASE_URL is not a database URL: write it like {DATABASE_URL_EXAMPLES}"
        ) from None
    backend = url.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(
            f"QABOT_DATABASE_URL names a {backend} database; qabot works with SQLite and "
            f"PostgreSQL: write it like {DATABASE_URL_EXAMPLES}"
        )
    if backend == "sqlite" and (
        url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    ):
        # Each connection would see a database of its own, empty, and all of it lost at exit.
        raise ValueError(
            "QABOT_DATABASE_URL names an in-memory SQLite database: give the database file's "
            "path, like sqlite+aiosqlite:///path/to/qabot.sqlite3 (or unset it for one in "
            "QABOT_HOME)"
        )
    driver = ASYNC_DRIVERS[backend]
    # The scheme alone is replaced: the rest stays exactly as written.
    scheme = f"{'postgresql' if backend == 'postgres' else backend}+{driver}"
    return scheme + value[value.index("://") :]
