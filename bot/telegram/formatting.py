"""Answers are stored as Telegram HTML (links, bold, italics, code, line breaks) and sent with
parse_mode=HTML; one Telegram refuses (an answer imported or taught before its markup was
checked, or cut in the middle of a tag) is sent again as plain text rather than not at all."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Bot, CallbackQuery, Message
from telegram.constants import ParseMode
from telegram.error import BadRequest

log = logging.getLogger(__name__)


def _unparsable(error: BadRequest) -> bool:
    return "can't parse entities" in error.message.lower()


async def send_formatted(bot: Bot, chat_id: int, text: str, **kwargs: Any) -> Message:
    """Send an answer in HTML, or as plain text when Telegram cannot parse it."""
    try:
        return await bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, **kwargs)
    except BadRequest as error:
        if not _unparsable(error):
            raise
        log.warning("an answer's HTML was refused (%s); sent as plain text", error.message)
        return await bot.send_message(chat_id, text, **kwargs)


async def reply_formatted(message: Message, text: str, **kwargs: Any) -> Message:
    """Reply with an answer in HTML, or as plain text when Telegram cannot parse it."""
    try:
        return await message.reply_text(text, parse_mode=ParseMode.HTML, **kwargs)
    except BadRequest as error:
        if not _unparsable(error):
            raise
        log.warning("an answer's HTML was refused (%s); sent as plain text", error.message)
        return await message.reply_text(text, **kwargs)


async def edit_formatted(query: CallbackQuery, text: str, **kwargs: Any) -> Any:
    """Edit the pressed message into an answer in HTML, or plain text when Telegram cannot
    parse it."""
    try:
        return await query.edit_message_text(text, parse_mode=ParseMode.HTML, **kwargs)
    except BadRequest as error:
        if not _unparsable(error):
            raise
        log.warning("an answer's HTML was refused (%s); sent as plain text", error.message)
        return await query.edit_message_text(text, **kwargs)
