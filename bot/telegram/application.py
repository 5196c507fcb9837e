"""The Telegram front end. `build_application` registers every handler in one block: it is the
table of contents of what the bot can do."""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.app.app import App
from bot.settings import Settings
from bot.telegram import admin, chat, groups, handoff, learning, privacy
from bot.telegram.bot_api_request import BOT_API_CONNECTIONS, QueuedHTTPXRequest
from bot.telegram.rate_limit import UserRateLimiter, enforce_rate_limit

PRIVATE = filters.ChatType.PRIVATE


def application_builder(settings: Settings) -> ApplicationBuilder:
    """The Bot API connection and update processing the settings ask for (no handlers)."""
    if not settings.telegram_bot_token:
        raise ValueError("TELEGRAM_BOT_TOKEN is not set")
    builder = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token)
        .base_url(settings.telegram_api_base_url)
        .base_file_url(settings.telegram_file_base_url)
        .concurrent_updates(True)
        .request(QueuedHTTPXRequest(BOT_API_CONNECTIONS))
    )
    if settings.send_rate > 0:  # Telegram's flood limits on what the bot sends
        builder.rate_limiter(AIORateLimiter(overall_max_rate=settings.send_rate, max_retries=3))
    return builder


def build_application(app: App) -> Application:
    settings = app.settings
    application = application_builder(settings).build()
    application.bot_data["app"] = app
    # No support chat: a filter that matches no chat.
    support = filters.Chat(chat_id=settings.support_chat_id or ())
    app.messages_in_progress = lambda: application.update_processor.current_concurrent_updates
    if settings.rate_limit.enabled:  # group -1: runs before every other handler
        application.bot_data["rate_limiter"] = UserRateLimiter(settings.rate_limit)
        application.add_handler(TypeHandler(Update, enforce_rate_limit), group=-1)

    application.add_handlers(
        [
            CommandHandler("start", chat.start),
            CommandHandler("help", chat.help_command),
            CommandHandler("ask", groups.ask),
            CommandHandler("autoanswer", groups.autoanswer),
            CommandHandler("mydata", privacy.mydata),
            CommandHandler("forget", privacy.forget),
            CallbackQueryHandler(privacy.forget_button, pattern=privacy.FORGET_PATTERN),
            CommandHandler("teach", admin.teach),
            CommandHandler("retrain", admin.retrain),
            CommandHandler("export", admin.export),
            CommandHandler("pairs", admin.pairs),
            CommandHandler("models", admin.models),
            CommandHandler("rollback", admin.rollback),
            CommandHandler("review", learning.review),
            CommandHandler("stats", learning.stats),
            CommandHandler("open", handoff.open_questions),
            CallbackQueryHandler(learning.rate_answer, pattern=r"^fb:[+-]:\d+$"),
            CallbackQueryHandler(learning.decide_review, pattern=r"^rv:[msniocpa]:\d+(:\w+)?$"),
            CallbackQueryHandler(chat.choose_suggestion, pattern=chat.CHOICE_PATTERN),
            CallbackQueryHandler(handoff.ask_a_person, pattern=handoff.HANDOFF_PATTERN),
            CallbackQueryHandler(chat.expired_button),
            # The support chat is the people's: the bot takes their replies to questions.
            MessageHandler(filters.TEXT & ~filters.COMMAND & support, handoff.take_support_reply),
            # In groups (and channels) only what is put to the bot: other bots' commands,
            # stickers, photos and other people's conversations are not the bot's business.
            MessageHandler(filters.TEXT & ~filters.COMMAND & ~PRIVATE, groups.answer_in_group),
            MessageHandler(filters.COMMAND & PRIVATE, chat.unknown_command),
            MessageHandler(filters.TEXT & PRIVATE, chat.answer_question),
            MessageHandler(
                ~filters.TEXT & ~filters.StatusUpdate.ALL & PRIVATE, chat.answer_not_text
            ),
        ]
    )
    application.add_error_handler(chat.on_error)
    return application
