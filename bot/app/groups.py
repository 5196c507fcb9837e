"""Group chats: when the bot speaks there, and the per-group /autoanswer setting."""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.app.answering import Answering, Reply
from bot.storage import groups
from bot.storage.store import ChatInfo, Store, UserInfo

# How long a replica trusts the /autoanswer setting it read: a change made through another
# replica is seen within this time, and a busy group costs one query a minute, not one a message.
AUTOANSWER_CACHE_SECONDS = 60.0


class GroupChats:
    """Answers in groups: a question addressed to the bot is answered (and logged) like any
    other; with /autoanswer on, unaddressed questions are answered only when the model is
    confident, and nothing is logged when it is not."""

    def __init__(
        self, store: Store, answering: Answering, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        self.answering = answering
        self._clock = clock
        self._autoanswer: dict[int, tuple[bool, float]] = {}  # chat id → (setting, read at)

    async def autoanswer(self, chat_id: int) -> bool:
        cached = self._autoanswer.get(chat_id)
        if cached is not None and self._clock() - cached[1] < AUTOANSWER_CACHE_SECONDS:
            return cached[0]
        on = await groups.autoanswer(self.store, chat_id)
        self._autoanswer[chat_id] = (on, self._clock())
        return on

    async def set_autoanswer(self, chat: ChatInfo, on: bool) -> None:
        await groups.set_autoanswer(self.store, chat, on)
        self._autoanswer[chat.id] = (on, self._clock())

    async def answer_addressed(
        self, chat: ChatInfo, user: UserInfo | None, question: str, message_id: int
    ) -> Reply:
        """A question put to the bot (mention, reply, /ask): answered and logged."""
        return await self.answering.reply(chat, user, question, message_id=message_id)

    async def answer_unaddressed(
        self, chat: ChatInfo, user: UserInfo | None, text: str, message_id: int
    ) -> Reply | None:
        """Any other message: answered when /autoanswer is on and the model is confident;
        otherwise None, and nothing is logged."""
        if not await self.autoanswer(chat.id):
            return None
        return await self.answering.reply_if_confident(chat, user, text, message_id=message_id)
