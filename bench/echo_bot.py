"""A bare echo bot on qabot's own Telegram stack and settings: the yardstick of bench/load.py.

    TELEGRAM_BOT_TOKEN=... TELEGRAM_API_BASE_URL=... .venv/bin/python bench/echo_bot.py

The same `application_builder` (python-telegram-bot, concurrent updates, outgoing rate limiter
as QABOT_SEND_RATE says) and the same polling as `qabot run`; every text is sent straight back.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.logs import setup_logging  # noqa: E402
from bot.run import receiving_updates  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.telegram.application import application_builder  # noqa: E402


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the text back."""
    message = update.effective_message
    assert message is not None and message.text is not None  # a text handler's message
    await message.reply_text(message.text)


async def main() -> None:
    settings = Settings()
    setup_logging(settings.telegram_bot_token)
    application = application_builder(settings).build()
    application.add_handler(MessageHandler(filters.TEXT, echo))
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with application:
        await application.start()
        async with receiving_updates(application, settings):
            await stop.wait()
        await application.stop()


if __name__ == "__main__":
    asyncio.run(main())
