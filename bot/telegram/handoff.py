"""The hand-off to people in Telegram: the "Ask a person" button (on a fallback in a private
chat, and after a 👎), the question forwarded to the support chat, a member's reply sent back
to the user, /open, and telling users whose question nobody picked up."""

from __future__ import annotations

import asyncio
import html
import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import Application, ContextTypes

from bot import messages
from bot.app.answering import Reply
from bot.app.handoff import HandoffDesk, handoff_lang
from bot.app.text import clean_question
from bot.storage.handoffs import HandoffOutcome
from bot.telegram.common import (
    app_of,
    chat_info,
    chat_of,
    fit_message,
    message_of,
    pressed_message,
    query_data,
    query_of,
    quoted,
    sender_of,
    user_info,
    user_lang,
)
from bot.telegram.formatting import send_formatted

log = logging.getLogger(__name__)

# "Ask a person" buttons: `ho:<exchange id>`.
HANDOFF_PATTERN = r"^ho:\d{1,18}$"
# How often the bot looks for questions nobody answered within the timeout (at most).
REMINDER_CHECK_SECONDS = 60.0


def desk_of(context: ContextTypes.DEFAULT_TYPE) -> HandoffDesk:
    return app_of(context).handoff


def ask_a_person_keyboard(exchange_id: int, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(
            messages.text("ask_a_person", lang), callback_data=f"ho:{exchange_id}"
        )]]
    )  # fmt: skip


def offer_on_fallback(
    update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply
) -> InlineKeyboardMarkup | None:
    """The "Ask a person" button for a fallback to a question in a private chat, when there is
    a support chat; None otherwise."""
    chat = update.effective_chat
    if (
        not desk_of(context).enabled
        or chat is None
        or chat.type != ChatType.PRIVATE
        or not reply.fallback
        or reply.suggestions
        or reply.exchange_id is None
        or reply.text == messages.text("empty", reply.lang)
    ):
        return None
    return ask_a_person_keyboard(reply.exchange_id, reply.lang)


async def offer_after_thumbs_down(
    update: Update, context: ContextTypes.DEFAULT_TYPE, exchange_id: int
) -> None:
    """After a 👎 in a private chat: a person may answer instead."""
    chat = update.effective_chat
    if desk_of(context).enabled and chat is not None and chat.type == ChatType.PRIVATE:
        lang = user_lang(update)
        await context.bot.send_message(
            chat.id,
            messages.text("handoff_offer", lang),
            reply_markup=ask_a_person_keyboard(exchange_id, lang),
        )


async def ask_a_person(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An "Ask a person" press: the question goes to the support chat with the user's name and
    language; the user is told a person will answer."""
    query, desk, lang = query_of(update), desk_of(context), user_lang(update)
    user = user_info(update)
    outcome, handoff = HandoffOutcome.UNKNOWN, None
    if desk.enabled and user is not None:
        outcome, handoff = await desk.request(
            int(query_data(query).split(":")[1]), chat_id=chat_info(update).id, user=user
        )
    if handoff is None or desk.support_chat_id is None:
        notice = "handoff_already" if outcome is HandoffOutcome.ALREADY_OPEN else "button_expired"
        await query.answer(messages.text(notice, lang), show_alert=True)
        return
    await query.answer()
    try:
        sent = await context.bot.send_message(
            desk.support_chat_id, fit_message(_support_copy(update, handoff.id, handoff.question))
        )
    except TelegramError as error:
        log.error("could not forward a question to the support chat: %s", error)
        await desk.not_forwarded(handoff)
        await pressed_message(query).reply_text(messages.text("handoff_failed", lang))
        return
    await desk.forwarded(handoff, sent.message_id)
    await query.edit_message_reply_markup(reply_markup=None)
    await pressed_message(query).reply_text(messages.text("handoff_sent", handoff_lang(handoff)))


def _support_copy(update: Update, handoff_id: int, question: str) -> str:
    user = sender_of(update)
    name = " ".join(filter(None, (user.first_name, user.last_name)))
    if user.username:
        name += f" (@{user.username})"
    # The support chat is shared by its members and has no language of its own: English.
    return messages.text(
        "support_copy",
        "en",
        id=handoff_id,
        name=name,
        language=user.language_code or messages.text("support_unknown_language", "en"),
        question=quoted(question, 3000),
    )


async def take_support_reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A message in the support chat: a reply to a forwarded question goes to the user who
    asked (formatting kept), is logged as answered by a person, and joins /review."""
    message = message_of(update)
    replied = message.reply_to_message
    if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
        return
    answer = clean_question(message.text_html or "")
    if not answer:
        return
    result = await desk_of(context).answer(replied.message_id, answer)
    if result is None:
        return
    handoff, persons = result
    header = html.escape(messages.text("handoff_answer", persons.lang))
    try:
        await send_formatted(context.bot, persons.chat_id, f"{header}\n\n{answer}")
    except TelegramError as error:
        log.warning("could not send a person's answer to the user: %s", error)
        await message.reply_text(
            messages.text("support_not_sent", user_lang(update), error=error.message)
        )
        return
    await message.reply_text(messages.text("support_sent", user_lang(update), id=handoff.id))


async def open_questions(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/open in the support chat: the questions no one has answered yet, oldest first."""
    desk, message, lang = desk_of(context), message_of(update), user_lang(update)
    if not desk.enabled or chat_of(update).id != desk.support_chat_id:
        await message.reply_text(messages.text("support_chat_only", lang))
        return
    waiting = await desk.open_questions()
    if not waiting:
        await message.reply_text(messages.text("support_none_open", lang))
        return
    lines = [messages.text("support_open", lang, count=len(waiting))]
    lines += [
        messages.text(
            "support_open_line",
            lang,
            id=h.id,
            minutes=desk.waiting_minutes(h),
            question=quoted(h.question, 200),
        )
        for h in waiting
    ]
    await message.reply_text(fit_message("\n".join(lines)))


async def remind_unanswered(application: Application) -> int:
    """Tell the users whose question nobody picked up within the timeout (once each);
    returns how many were told."""
    desk: HandoffDesk = application.bot_data["app"].handoff
    told = 0
    for handoff in await desk.take_overdue():
        try:
            await application.bot.send_message(
                handoff.chat_id, messages.text("handoff_waiting", handoff_lang(handoff))
            )
            told += 1
        except TelegramError as error:
            log.warning("could not tell a user their question is still open: %s", error)
    return told


async def remind_unanswered_forever(application: Application) -> None:
    """remind_unanswered every minute (or more often for a short timeout), until cancelled."""
    desk: HandoffDesk = application.bot_data["app"].handoff
    interval = min(REMINDER_CHECK_SECONDS, desk.timeout.total_seconds() / 4)
    while True:
        await asyncio.sleep(interval)
        try:
            await remind_unanswered(application)
        except Exception:  # the database may be down for a while: try again next time
            log.exception("could not look for unanswered hand-offs; trying again later")
