"""Handlers for everyone: greeting, help, answers ("did you mean" buttons included), non-text
messages, errors."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot import messages
from bot.app.answering import Reply
from bot.storage.learning_records import ChoiceOutcome
from bot.telegram.common import (
    app_of,
    chat_info,
    chat_of,
    fit_message,
    message_of,
    query_data,
    query_of,
    shortened,
    user_info,
    user_lang,
)
from bot.telegram.formatting import edit_formatted, reply_formatted
from bot.telegram.handoff import offer_on_fallback
from bot.telegram.learning import BUTTON_TEXT_CHARS, feedback_keyboard, take_reply_to_prompt

log = logging.getLogger(__name__)

# Message parts that are not text, in the order they are checked, for the "text only" hint.
NON_TEXT_KINDS = (
    "sticker", "photo", "voice", "video_note", "video", "animation", "audio", "document",
    "location", "venue", "contact", "poll", "dice", "game", "story",
)  # fmt: skip
# "Did you mean" buttons: `dym:<exchange id>:<answer id>`, or `:none` for "none of these".
# Ids of at most 18 digits fit every database's 64-bit integers.
CHOICE_PATTERN = r"^dym:\d{1,18}:(?:[0-9a-f]{1,32}|none)$"
_NONE = "none"


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Greet the user."""
    user = update.effective_user
    name = f", {user.first_name}" if user and user.first_name else ""
    await message_of(update).reply_text(messages.text("start", user_lang(update), name=name))


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """List what the bot does."""
    await message_of(update).reply_text(messages.text("help", user_lang(update)))


async def answer_question(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer a text message (new or edited) with the model's answer or the fallback."""
    message = message_of(update)
    if await take_reply_to_prompt(update, context):
        return
    reply = await app_of(context).answering.reply(
        chat_info(update), user_info(update), message.text or "", message_id=message.message_id
    )
    await send_reply(update, context, reply)


async def send_reply(update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply) -> None:
    """Send a reply to the message that asked (quoted in groups): an answer (formatted) with
    its 👍/👎 buttons, "did you mean" buttons, or the fallback ("Ask a person" when there is
    a support chat)."""
    if reply.suggestions:
        await _offer_suggestions(update, reply)
        return
    message = message_of(update)
    # Answers (not fallbacks or hints) can be rated; the rating needs the logged exchange.
    if not reply.fallback and reply.exchange_id is not None:
        await reply_formatted(
            message, fit_message(reply.text), api_kwargs=feedback_keyboard(reply.exchange_id)
        )
        return
    await message.reply_text(
        fit_message(reply.text), reply_markup=offer_on_fallback(update, context, reply)
    )


async def _offer_suggestions(update: Update, reply: Reply) -> None:
    """ "Did you mean …?": one button per suggested answer, showing its best-known wording,
    and "none of these". A press is understood only with the logged exchange: without it (the
    database is down), the wordings are listed for the user to ask again."""
    if reply.exchange_id is None:
        lines = [reply.text, *(f"• {s.wording}" for s in reply.suggestions)]
        await message_of(update).reply_text(fit_message("\n".join(lines)))
        return
    rows = [
        [InlineKeyboardButton(
            shortened(s.wording, BUTTON_TEXT_CHARS),
            callback_data=f"dym:{reply.exchange_id}:{s.answer_id}",
        )]
        for s in reply.suggestions
    ]  # fmt: skip
    rows.append([InlineKeyboardButton(
        messages.text("none_of_these", reply.lang), callback_data=f"dym:{reply.exchange_id}:{_NONE}"
    )])  # fmt: skip
    await message_of(update).reply_text(reply.text, reply_markup=InlineKeyboardMarkup(rows))


async def choose_suggestion(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A "did you mean" press: the asker gets the chosen answer (or the fallback) in place of
    the question; anyone else, or a stale or forged press, gets a short notice."""
    query = query_of(update)
    _, exchange_id, answer_id = query_data(query).split(":")
    user, chat = update.effective_user, update.effective_chat
    choice = await app_of(context).answering.choose(
        int(exchange_id),
        None if answer_id == _NONE else answer_id,
        chat_id=chat.id if chat else 0,
        user_id=user.id if user else None,
    )
    if choice.outcome is not ChoiceOutcome.ANSWERED:
        notice = {
            ChoiceOutcome.NOT_THE_ASKER: "choice_not_yours",
            ChoiceOutcome.ALREADY_ANSWERED: "choice_already_answered",
        }.get(choice.outcome, "button_expired")
        await query.answer(messages.text(notice, user_lang(update)), show_alert=True)
        return
    await query.answer()
    # A chosen answer can be rated like any other; the fallback cannot.
    await edit_formatted(
        query,
        fit_message(choice.text),
        api_kwargs=feedback_keyboard(int(exchange_id)) if choice.answer_id else None,
    )


async def expired_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press whose data no handler understands (forged, or from an older version)."""
    await query_of(update).answer(
        messages.text("button_expired", user_lang(update)), show_alert=True
    )


async def answer_not_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, photos, voice notes, documents...: say that the bot reads text."""
    message = message_of(update)
    kind = next((k for k in NON_TEXT_KINDS if getattr(message, k, None)), "other")
    reply = await app_of(context).answering.reply_not_text(
        chat_info(update), user_info(update), kind, message_id=message.message_id
    )
    await message.reply_text(reply.text)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command the bot does not have."""
    await message_of(update).reply_text(messages.text("unknown_command", user_lang(update)))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the failure and apologise to the user."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat:
        try:
            await context.bot.send_message(
                chat_of(update).id, messages.text("error", user_lang(update))
            )
        except Exception:  # the apology itself failed (network down): already logged above
            log.warning("could not send the apology")
