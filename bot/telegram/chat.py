"""Handlers for everyone: greeting, help, answers, non-text messages, errors."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ContextTypes

from bot import messages
from bot.telegram.common import chat_info, fit_message, service_of, user_info, user_lang
from bot.telegram.learning import feedback_keyboard, take_reply_to_prompt

log = logging.getLogger(__name__)

# Message parts that are not text, in the order they are checked, for the "text only" hint.
NON_TEXT_KINDS = (
    "sticker", "photo", "voice", "video_note", "video", "animation", "audio", "document",
    "location", "venue", "contact", "poll", "dice", "game", "story",
)  # fmt: skip


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
    if await take_reply_to_prompt(update, context):
        return
    reply = await service_of(context).reply(
        chat_info(update), user_info(update), message.text or "", message_id=message.message_id
    )
    # Answers (not fallbacks or hints) can be rated; the rating needs the logged exchange.
    rateable = not reply.fallback and reply.exchange_id is not None
    await message.reply_text(
        fit_message(reply.text),
        api_kwargs=feedback_keyboard(reply.exchange_id) if rateable else None,
    )


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
