"""Setup mistakes (a bad setting, an unreachable database or Bot API) explained in one or two
lines that name the setting and what to do; the command line exits with code 2 on them.

Standard library only at import: the command line imports this before knowing its command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

    from bot.settings import Settings

# Settings whose values an error message must never repeat.
SECRET_SETTINGS = frozenset({"TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "QABOT_DATABASE_URL"})


class SetupError(Exception):
    """A mistake in how the bot is set up; str() says which setting and what to do."""


def load_settings() -> Settings:
    from pydantic import ValidationError

    from bot.settings import Settings

    try:
        return Settings()
    except ValidationError as error:
        raise SetupError(explain_settings(error)) from None


def explain_settings(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if name not in message:
            got = "" if name in SECRET_SETTINGS else f", got {item['input']!r}"
            message = f"{name}: {message}{got}"
        problems.append(message)
    return "; ".join(problems) + "\nfix it in the environment (or the .env file) and try again"


def keep_files_private(home: Path) -> None:
    """What the bot writes holds users' conversations: the database, models, exports and any
    other file under QABOT_HOME (or given with --out) is readable by the bot's user only."""
    os.umask(0o077)
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        home.chmod(0o700)
    except OSError as error:
        raise SetupError(
            f"cannot use QABOT_HOME ({home}): {error.strerror}\n"
            "set QABOT_HOME to a folder qabot may write to"
        ) from None


def migrate_database(settings: Settings) -> None:
    """Apply the migrations: the bot's first contact with the database, where a wrong URL or
    an unreachable server shows."""
    from sqlalchemy.exc import DBAPIError

    from bot.storage.store import upgrade_database

    try:
        upgrade_database(settings.database_url)
    except (OSError, DBAPIError) as error:
        raise SetupError(explain_database_error(settings, error)) from None


def explain_database_error(settings: Settings, error: Exception) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if settings.database_url_setting is None:
        return (
            f"cannot open the SQLite database in QABOT_HOME ({settings.home}): {reason}\n"
            "set QABOT_HOME to a folder qabot may write to"
        )
    url = make_url(settings.database_url)
    where = url.render_as_string(hide_password=True)
    advice = (
        "check that the path is a file (or none yet) in a folder qabot may write to"
        if url.get_backend_name() == "sqlite"
        else "check that the server runs and that the URL's host, port, user, password and "
        "database are right"
    )
    return f"cannot use the database of QABOT_DATABASE_URL ({where}): {reason}\n{advice}"


def explain_bot_api_error(settings: Settings, error: Exception) -> SetupError | None:
    """The setup mistake behind an error of the first Bot API call, if it is one."""
    from telegram.error import BadRequest, InvalidToken, NetworkError

    if isinstance(error, InvalidToken):
        return SetupError(
            "the Bot API refused TELEGRAM_BOT_TOKEN\n"
            "check the token (BotFather gives it) and TELEGRAM_API_BASE_URL if you set it"
        )
    # The Bot API answered, refusing the request (BadRequest is a NetworkError to the library).
    if isinstance(error, NetworkError) and not isinstance(error, BadRequest):
        message = (
            f"cannot reach the Bot API at {settings.telegram_api_base_url}: {error}\n"
            "check the network, or TELEGRAM_API_BASE_URL if you set it"
        )
        from bot.logs import REDACTED, secret_forms

        for form in secret_forms(settings.telegram_bot_token):
            message = message.replace(form, REDACTED)
        return SetupError(message)
    return None


def explain_webhook_error(settings: Settings, error: Exception) -> SetupError:
    """Why webhook mode could not start: QABOT_WEBHOOK_LISTEN cannot be served (an OSError,
    e.g. the port is taken), or the Bot API refused TELEGRAM_WEBHOOK_URL."""
    if isinstance(error, OSError):
        return SetupError(
            f"cannot serve the webhook on QABOT_WEBHOOK_LISTEN ({settings.webhook_listen}): "
            f"{error.strerror or error}\n"
            "set QABOT_WEBHOOK_LISTEN to a free port of an address of this machine"
        )
    unreachable = explain_bot_api_error(settings, error)
    if unreachable is not None:
        return unreachable
    from bot.logs import REDACTED, secret_forms

    message = (
        f"the Bot API refused TELEGRAM_WEBHOOK_URL ({settings.webhook_url}): {error}\n"
        "set it to the public https:// URL (port 443, 80, 88 or 8443) that reaches "
        "QABOT_WEBHOOK_LISTEN"
    )
    for form in secret_forms(settings.telegram_bot_token):
        message = message.replace(form, REDACTED)
    return SetupError(message)
