"""The Telegram front end. `build_application` registers every handler in one block: it is the
table of contents of what the bot can do."""

from __future__ import annotations

from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CommandHandler,
    MessageHandler,
    filters,
)

from bot.handlers import admin, chat
from bot.service import QAService


def build_application(service: QAService) -> Application:
    settings = service.settings
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    application = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_file_base_url)
        .concurrent_updates(True)
        .rate_limiter(AIORateLimiter(max_retries=3))
        .build()
    )
    application.bot_data["service"] = service

    application.add_handlers(
        [
            CommandHandler("start", chat.start),
            CommandHandler("help", chat.help_command),
            CommandHandler("teach", admin.teach),
            CommandHandler("retrain", admin.retrain),
            CommandHandler("export", admin.export),
            MessageHandler(filters.COMMAND, chat.unknown_command),
            MessageHandler(filters.TEXT, chat.answer_question),
            MessageHandler(~filters.TEXT & ~filters.StatusUpdate.ALL, chat.answer_not_text),
        ]
    )
    application.add_error_handler(chat.on_error)
    return application
