"""The Telegram front end: one small handler per thing the bot does, registered in
`build_application`, whose handler list is the table of contents of the bot."""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatAction
from telegram.error import BadRequest
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot import messages
from bot.exports import FORMATS, write_exchanges
from bot.retraining import TrainingBusyError, TrainingFailedError
from bot.service import QAService
from bot.store import ChatInfo, UserInfo

log = logging.getLogger(__name__)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]

# Telegram rejects longer messages.
MAX_MESSAGE_CHARS = 4096
# Message parts that are not text, in the order they are checked, for the "text only" hint.
NON_TEXT_KINDS = (
    "sticker", "photo", "voice", "video_note", "video", "animation", "audio", "document",
    "location", "venue", "contact", "poll", "dice", "game", "story",
)  # fmt: skip


def service_of(context: ContextTypes.DEFAULT_TYPE) -> QAService:
    return context.application.bot_data["service"]


def chat_info(update: Update) -> ChatInfo:
    chat = update.effective_chat
    assert chat is not None
    return ChatInfo(id=chat.id, type=chat.type, title=chat.title)


def user_info(update: Update) -> UserInfo | None:
    user = update.effective_user
    if user is None:
        return None
    return UserInfo(user.id, user.username, user.first_name, user.language_code)


def user_lang(update: Update) -> str:
    user = update.effective_user
    return messages.language_of(None, user.language_code if user else None)


def command_argument(message: Message) -> str:
    """The text after the command (`/teach a | b` → `a | b`)."""
    return (message.text or "").partition(" ")[2].strip()


def admin_only(handler: Handler) -> Handler:
    """Runs `handler` for QABOT_ADMIN_IDS; anyone else gets a refusal and nothing changes."""

    @functools.wraps(handler)
    async def checked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if not service_of(context).settings.is_admin(user.id if user else None):
            log.warning("refused %s to user %s", handler.__name__, user.id if user else None)
            if update.effective_message:
                await update.effective_message.reply_text(
                    messages.text("not_admin", user_lang(update))
                )
            return
        await handler(update, context)

    return checked


# -- everyone -------------------------------------------------------------------------------


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet the user."""
    user = update.effective_user
    name = f", {user.first_name}" if user and user.first_name else ""
    await update.effective_message.reply_text(messages.text("start", user_lang(update), name=name))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List what the bot does."""
    await update.effective_message.reply_text(messages.text("help", user_lang(update)))


async def answer_question(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a text message (new or edited) with the model's answer or the fallback."""
    message = update.effective_message
    reply = await service_of(context).reply(
        chat_info(update), user_info(update), message.text or "", message_id=message.message_id
    )
    await message.reply_text(reply.text[:MAX_MESSAGE_CHARS])


async def answer_not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice notes, documents...: say that the bot reads text."""
    message = update.effective_message
    kind = next((k for k in NON_TEXT_KINDS if getattr(message, k, None)), "other")
    reply = await service_of(context).reply_not_text(
        chat_info(update), user_info(update), kind, message_id=message.message_id
    )
    await message.reply_text(reply.text)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command the bot does not have."""
    await update.effective_message.reply_text(messages.text("unknown_command", user_lang(update)))


# -- admins ---------------------------------------------------------------------------------


@admin_only
async def teach(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/teach question | answer: add a pair, answered at once."""
    message = update.effective_message
    question, sep, answer = command_argument(message).partition("|")
    if not sep or not question.strip() or not answer.strip():
        await message.reply_text("Usage: /teach question | answer")
        return
    added = await service_of(context).teach(question, answer)
    status = "Learned" if added else "I already knew that"
    await message.reply_text(f"{status}: “{question.strip()}” → “{answer.strip()}”")


@admin_only
async def retrain(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/retrain: train a new model in a worker process; report progress and the result."""
    service = service_of(context)
    message = update.effective_message
    if service.trainer.busy:
        await message.reply_text("A training run is already in progress; I'll report when it ends.")
        return
    status = await message.reply_text("Retraining started. I keep answering everyone meanwhile.")
    context.application.create_task(
        _run_retraining(service, message, status), update=update, name="retrain"
    )


async def _run_retraining(service: QAService, request: Message, status: Message) -> None:
    async def show_progress(event: dict[str, Any]) -> None:
        if event.get("event") == "epoch":
            accuracy = event.get("val_accuracy")
            shown = f", validation accuracy {accuracy:.1%}" if isinstance(accuracy, float) else ""
            await _edit(status, f"Training… epoch {event['epoch']}/{event['epochs']}{shown}")

    try:
        trained = await service.retrain(show_progress)
    except TrainingBusyError:
        await request.reply_text("A training run is already in progress.")
        return
    except TrainingFailedError as error:
        await request.reply_text(
            f"Training failed; the current model keeps serving. Reason: {error}"
        )
        return
    await _edit(status, "Training finished.")
    await request.reply_text(
        f"New model {trained.version} is live.\n{format_metrics(trained.metrics)}"
    )


def format_metrics(metrics: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("in_scope_accuracy", "validation accuracy"),
        ("oos_recall", "out-of-scope recall"),
    ):
        if isinstance(metrics.get(key), int | float):
            parts.append(f"{label} {metrics[key]:.1%}")
    if isinstance(metrics.get("threshold"), int | float):
        parts.append(f"threshold {metrics['threshold']:.2f}")
    if isinstance(metrics.get("n"), int):
        parts.append(f"{metrics['n']} validation questions")
    return ", ".join(parts) or "(no validation figures)"


async def _edit(message: Message, text: str) -> None:
    try:
        await message.edit_text(text)
    except BadRequest as error:  # "message is not modified" and the like: not worth failing for
        log.debug("could not edit progress message: %s", error)


@admin_only
async def export(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/export [csv|jsonl]: send the logged conversations as a document."""
    message = update.effective_message
    fmt = command_argument(message).lower() or "csv"
    if fmt not in FORMATS:
        await message.reply_text(f"Usage: /export [{'|'.join(FORMATS)}]")
        return
    service = service_of(context)
    await service.writer.flush()
    await message.reply_chat_action(ChatAction.UPLOAD_DOCUMENT)
    exports_dir = service.settings.home / "exports"
    exports_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    with tempfile.TemporaryDirectory(dir=exports_dir) as tmp:
        path = Path(tmp) / f"qabot-exchanges-{stamp}.{fmt}"
        with path.open("w", encoding="utf-8", newline="") as out:
            count = await write_exchanges(service.store, out, fmt)
        await message.reply_document(path, filename=path.name, caption=f"{count} exchanges")


# -- errors ---------------------------------------------------------------------------------


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure and apologise to the user."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat:
        try:
            await context.bot.send_message(
                update.effective_chat.id, messages.text("error", user_lang(update))
            )
        except Exception:  # the apology itself failed (network down): already logged above
            log.warning("could not send the apology")


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
            CommandHandler("start", start),
            CommandHandler("help", help_command),
            CommandHandler("teach", teach),
            CommandHandler("retrain", retrain),
            CommandHandler("export", export),
            MessageHandler(filters.COMMAND, unknown_command),
            MessageHandler(filters.TEXT, answer_question),
            MessageHandler(~filters.TEXT & ~filters.StatusUpdate.ALL, answer_not_text),
        ]
    )
    application.add_error_handler(on_error)
    return application
