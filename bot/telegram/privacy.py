"""/mydata and /forget: a user sees everything stored about them, and can have it deleted."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from bot import messages
from bot.app import privacy
from bot.telegram.common import (
    app_of,
    message_of,
    private_chat_only,
    query_data,
    query_of,
    sender_of,
    user_lang,
)

log = logging.getLogger(__name__)

FORGET_CONFIRM, FORGET_CANCEL = "forget:yes", "forget:no"
# Button presses of /forget; callback data is "forget:yes:<user id>" or "forget:no".
FORGET_PATTERN = r"^forget:"


def _text(update: Update, key: str, **values: object) -> str:
    return messages.text(key, user_lang(update), **values)


@private_chat_only
async def mydata(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/mydata: send the user a JSON file of everything stored about them."""
    message, user = message_of(update), sender_of(update)
    try:
        document = await app_of(context).privacy.user_data(user.id)
    except (privacy.DatabaseUnavailableError, SQLAlchemyError, OSError):
        log.exception("/mydata failed")
        await message.reply_text(_text(update, "unavailable"))
        return
    await message.reply_document(
        document, filename=f"qabot-mydata-{user.id}.json", caption=_text(update, "mydata_caption")
    )


@private_chat_only
async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/forget: ask for confirmation before deleting everything stored about the user."""
    message, user = message_of(update), sender_of(update)
    keyboard = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    _text(update, "forget_yes"), callback_data=f"{FORGET_CONFIRM}:{user.id}"
                ),
                InlineKeyboardButton(_text(update, "forget_no"), callback_data=FORGET_CANCEL),
            ]
        ]
    )
    await message.reply_text(_text(update, "forget_ask"), reply_markup=keyboard)


async def forget_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The answer to /forget's question: delete (only the asker's own data), or keep."""
    query = query_of(update)
    if query_data(query) == FORGET_CANCEL:
        await query.answer()
        await query.edit_message_text(_text(update, "kept"))
        return
    owner = query_data(query).removeprefix(f"{FORGET_CONFIRM}:")
    if owner != str(query.from_user.id):
        await query.answer(_text(update, "not_yours"), show_alert=True)
        return
    try:
        count = await app_of(context).privacy.forget(query.from_user.id)
    except (privacy.DatabaseUnavailableError, SQLAlchemyError, OSError):
        log.exception("/forget failed")
        await query.answer()
        await query.edit_message_text(_text(update, "unavailable"))
        return
    await query.answer()
    await query.edit_message_text(_text(update, "forgotten", count=count))
