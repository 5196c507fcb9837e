"""Handlers for groups and supergroups: the bot answers when addressed (a mention of its
username, a reply to one of its messages, /ask), and, with /autoanswer on, the questions it
is confident about. Other messages are ignored and not logged."""

from __future__ import annotations

import logging
import re

from telegram import Message, Update
from telegram.constants import ChatMemberStatus, ChatType
from telegram.ext import ContextTypes

from bot import messages
from bot.app.answering import Reply
from bot.app.groups import GroupChats
from bot.telegram.chat import send_reply
from bot.telegram.common import (
    app_of,
    chat_info,
    chat_of,
    command_argument,
    message_of,
    user_info,
    user_lang,
)
from bot.telegram.learning import take_reply_to_prompt

log = logging.getLogger(__name__)

GROUP_TYPES = (ChatType.GROUP, ChatType.SUPERGROUP)
# What may stand between a mention and the question: "@qabot, how …", "how …? @qabot".
_AROUND_MENTION = " \t\n,:;"


def groups_of(context: ContextTypes.DEFAULT_TYPE) -> GroupChats:
    return app_of(context).groups


def addressed_question(message: Message, bot_id: int, bot_username: str) -> str | None:
    """The question when the message is put to the bot (a mention of its username, removed
    from the text, or a reply to one of its messages); None for any other message."""
    text = message.text or ""
    mention = re.compile(rf"(?<!\w)@{re.escape(bot_username)}\b", re.IGNORECASE)
    without_mention = mention.sub(" ", text)
    replied = message.reply_to_message
    to_the_bot = (
        replied is not None and replied.from_user is not None and replied.from_user.id == bot_id
    )
    if without_mention == text and not to_the_bot:
        return None
    return " ".join(part.strip(_AROUND_MENTION) for part in without_mention.split(" ")).strip()


async def answer_in_group(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A text message in a group: answered when addressed, or confidently with /autoanswer."""
    message = message_of(update)
    if await take_reply_to_prompt(update, context):
        return
    groups = groups_of(context)
    question = addressed_question(message, context.bot.id, context.bot.username)
    reply: Reply | None
    if question is not None:
        reply = await groups.answer_addressed(
            chat_info(update), user_info(update), question, message.message_id
        )
    else:
        reply = await groups.answer_unaddressed(
            chat_info(update), user_info(update), message.text or "", message.message_id
        )
    if reply is not None:
        await send_reply(update, context, reply)


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ask <question> (also /ask@botname): a question put to the bot, in any chat."""
    message = message_of(update)
    question = command_argument(message)
    if not question:
        await message.reply_text(messages.text("ask_usage", user_lang(update)))
        return
    reply = await groups_of(context).answer_addressed(
        chat_info(update), user_info(update), question, message.message_id
    )
    await send_reply(update, context, reply)


async def autoanswer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/autoanswer on|off: a group admin lets the bot answer confident questions unasked."""
    message, chat = message_of(update), update.effective_chat
    lang = user_lang(update)
    if chat is None or chat.type not in GROUP_TYPES:
        await message.reply_text(messages.text("autoanswer_groups_only", lang))
        return
    groups = groups_of(context)
    setting = command_argument(message).lower()
    if setting not in ("on", "off"):
        state = messages.text(
            "autoanswer_on_state" if await groups.autoanswer(chat.id) else "autoanswer_off_state",
            lang,
        )
        await message.reply_text(messages.text("autoanswer_usage", lang, state=state))
        return
    if not await _is_group_admin(update, context):
        log.warning("refused /autoanswer to a member who is not a group admin")
        await message.reply_text(messages.text("autoanswer_not_admin", lang))
        return
    await groups.set_autoanswer(chat_info(update), setting == "on")
    await message.reply_text(messages.text(f"autoanswer_{setting}", lang))


async def _is_group_admin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """A bot admin, an administrator of this group as the Bot API says, or the group itself
    (an anonymous administrator writes as the group)."""
    user, chat, message = update.effective_user, chat_of(update), message_of(update)
    if message.sender_chat is not None and message.sender_chat.id == chat.id:
        return True
    if user is None:
        return False
    if app_of(context).settings.is_admin(user.id):
        return True
    member = await context.bot.get_chat_member(chat.id, user.id)
    return member.status in (ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER)
