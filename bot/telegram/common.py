"""Helpers every handler module uses: the application, who is asking, and the admin check."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from telegram import CallbackQuery, Chat, Message, Update, User
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot import messages
from bot.app.app import App
from bot.storage.exchange_writer import ExchangesNotWrittenError
from bot.storage.store import ChatInfo, UserInfo
from model.datasets import short_text

log = logging.getLogger(__name__)

# Telegram rejects longer messages (and captions).
MAX_MESSAGE_CHARS, MAX_CAPTION_CHARS = 4096, 1024
# How much of a user's text an admin message quotes.
QUOTE_CHARS = 300
# How long /export and /stats wait for the exchanges still queued to reach the database.
PENDING_WAIT_SECONDS = 5.0

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]
_Part = TypeVar("_Part")


def _required(part: _Part | None, what: str) -> _Part:
    # python-telegram-bot types every part of an update as optional; a handler's filter
    # (a command, text, a button pattern) guarantees the parts it uses.
    if part is None:
        raise ValueError(f"this update has no {what}, which its handler's filter requires")
    return part


def message_of(update: Update) -> Message:
    """The message a command or message handler was called for."""
    return _required(update.effective_message, "message")


def sender_of(update: Update) -> User:
    """Who sent the message or pressed the button."""
    return _required(update.effective_user, "sender")


def chat_of(update: Update) -> Chat:
    """The chat the update happened in."""
    return _required(update.effective_chat, "chat")


def query_of(update: Update) -> CallbackQuery:
    """The button press a callback-query handler was called for."""
    return _required(update.callback_query, "button press")


def query_data(query: CallbackQuery) -> str:
    """The data of a pressed button (the bot's buttons all carry text)."""
    data = query.data
    if not isinstance(data, str):
        raise ValueError(f"a button press without text data: {data!r}")
    return data


def pressed_message(query: CallbackQuery) -> Message:
    """The message whose button was pressed (Telegram omits it when the message is too old)."""
    message = query.message
    if not isinstance(message, Message):
        raise ValueError("the pressed button's message is no longer accessible")
    return message


def app_of(context: ContextTypes.DEFAULT_TYPE) -> App:
    """The application layer: the only road from a handler to what the bot does."""
    app: App = context.application.bot_data["app"]
    return app


def chat_info(update: Update) -> ChatInfo:
    chat = chat_of(update)
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


def shortened(text: str, limit: int) -> str:
    """Text on one line, cut with an ellipsis to `limit` characters."""
    return short_text(" ".join(text.split()), limit)


def quoted(text: str, limit: int = QUOTE_CHARS) -> str:
    """User text inside a bot message, in quotes and shortened, so that a long question cannot
    push the message past what Telegram accepts."""
    return f"“{shortened(text, limit)}”"


def quoted_list(
    texts: Sequence[str], shown: int = 5, limit: int = QUOTE_CHARS, lang: str = "en"
) -> str:
    """`“a”, “b” and 7 more`: a few quoted texts of a list that may be long."""
    listed = ", ".join(quoted(text, limit) for text in texts[:shown])
    more = len(texts) - shown
    return listed + (messages.text("and_more", lang, n=more) if more > 0 else "")


def fit_message(text: str) -> str:
    """Text cut to what Telegram accepts in one message (for messages that embed user text)."""
    return short_text(text, MAX_MESSAGE_CHARS)


def not_yet_written(error: ExchangesNotWrittenError, lang: str = "en") -> str:
    """What /export and /stats say when exchanges still queued could not be written in time."""
    return messages.text("not_yet_written", lang, error=error.in_language(lang))


def admin_only(handler: Handler) -> Handler:
    """Runs `handler` for QABOT_ADMIN_IDS; anyone else gets a refusal and nothing changes."""

    @functools.wraps(handler)
    async def checked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        if not app_of(context).settings.is_admin(user.id if user else None):
            log.warning("refused %s to a user who is not an admin", handler.__name__)
            refusal = messages.text("not_admin", user_lang(update))
            if update.callback_query:  # a button: answer the press itself, privately
                await update.callback_query.answer(refusal, show_alert=True)
            elif update.effective_message:
                await update.effective_message.reply_text(refusal)
            return
        await handler(update, context)

    return checked


def _in_private_chats_only(refusal: str) -> Callable[[Handler], Handler]:
    """A decorator that runs the handler in a private chat only; elsewhere the sender gets the
    `refusal` (a key of `bot.messages`) in that chat, and nothing else."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            chat = update.effective_chat
            if chat is None or chat.type != ChatType.PRIVATE or update.effective_user is None:
                log.info("refused %s outside a private chat", handler.__name__)
                if update.effective_message:
                    await update.effective_message.reply_text(
                        messages.text(refusal, user_lang(update))
                    )
                return
            await handler(update, context)

        return checked

    return decorate


# A user's own data (/mydata, /forget) is shown and deleted in their private chat only.
private_chat_only = _in_private_chats_only("private_only")
# Admin commands that send logged conversations, the training set or figures about users
# (/export, /pairs, /review, /stats) must not post them to a group the admin is in.
admin_data_private_only = _in_private_chats_only("admin_private_only")
