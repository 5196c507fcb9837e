"""/mydata and /forget: a user sees everything stored about them, and can have it deleted."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

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

TEXTS: dict[str, dict[str, str]] = {
    "mydata_caption": {
        "en": "Everything I have stored about you. /forget deletes it.",
        "zh": "我保存的关于你的全部数据。发送 /forget 可以删除。",
    },
    "forget_ask": {
        "en": "Delete everything I have stored about you (your questions, my answers and your "
        "feedback)? This cannot be undone.",
        "zh": "要删除我保存的关于你的全部数据（你的问题、我的回答和你的反馈）吗？删除后无法恢复。",
    },
    "forget_yes": {"en": "Yes, delete it", "zh": "确定删除"},
    "forget_no": {"en": "Cancel", "zh": "取消"},
    "forgotten": {
        "en": "Done: I deleted {count} of your messages and everything linked to them.",
        "zh": "已删除：你的 {count} 条消息以及相关的全部数据。",
    },
    "kept": {"en": "Cancelled: nothing was deleted.", "zh": "已取消，没有删除任何数据。"},
    "not_yours": {"en": "This button is not for you.", "zh": "这个按钮不是给你的。"},
    "unavailable": {
        "en": "Sorry, my database is not reachable right now. Please try again in a few minutes.",
        "zh": "抱歉，数据库暂时无法访问，请过几分钟再试。",
    },
}


def _text(update: Update, key: str, **values: object) -> str:
    return TEXTS[key][user_lang(update)].format(**values)


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
