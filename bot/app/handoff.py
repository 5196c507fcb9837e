"""A person when the bot doesn't know: a user's question is passed to the support chat
(QABOT_SUPPORT_CHAT_ID), a member's reply goes back to the user, is logged as an exchange
answered by a person, and waits in the review queue. Nothing enters the training set without
an admin's review."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot import messages
from bot.settings import Settings
from bot.storage import handoffs
from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.handoffs import HandoffOutcome
from bot.storage.store import ChatInfo, ExchangeRecord, Store, UserInfo
from bot.storage.tables import Handoff

# How many open questions /open lists.
OPEN_LISTED = 20


@dataclass(frozen=True)
class PersonsAnswer:
    """A support member's answer, ready to send to the user who asked."""

    chat_id: int
    lang: str  # the language of the bot's own words to that user
    exchange_id: int | None


def handoff_lang(handoff: Handoff) -> str:
    """The language to speak to the user in: their question's, else their Telegram one."""
    return messages.language_of(handoff.question or None, handoff.language_code)


class HandoffDesk:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        writer: ExchangeWriter,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.writer = writer
        self.support_chat_id = settings.support_chat_id
        self.timeout = timedelta(minutes=settings.handoff_timeout_minutes)
        self.clock = clock  # injectable: tests move time instead of waiting

    @property
    def enabled(self) -> bool:
        return self.support_chat_id is not None

    async def request(
        self, exchange_id: int, *, chat_id: int, user: UserInfo
    ) -> tuple[HandoffOutcome, Handoff | None]:
        """The user asked for a person on their question `exchange_id`."""
        return await handoffs.open_handoff(self.store, exchange_id, chat_id=chat_id, user=user)

    async def forwarded(self, handoff: Handoff, support_message_id: int) -> None:
        """The question reached the support chat as this message."""
        await handoffs.set_support_message(self.store, handoff.id, support_message_id)

    async def not_forwarded(self, handoff: Handoff) -> None:
        await handoffs.cancel(self.store, handoff.id)

    async def answer(
        self, support_message_id: int, answer: str
    ) -> tuple[Handoff, PersonsAnswer] | None:
        """A support member replied to a forwarded question with `answer`: logged as an
        exchange answered by a person (it joins the review queue); None when the message
        replied to is not a forwarded question (or the user has been forgotten since)."""
        started = time.perf_counter()
        store = self.store
        handoff = await handoffs.by_support_message(store, support_message_id)
        if handoff is None:
            return None
        user = await handoffs.user_info(store, handoff.user_id)
        record = ExchangeRecord(
            chat=ChatInfo(handoff.chat_id),
            user=user,
            question=handoff.question,
            answer=answer,
            answer_id=None,
            confidence=0.0,
            fallback=False,
            model_version=None,
            latency_ms=(time.perf_counter() - started) * 1000,
            answered_by_person=True,
        )
        exchange_id = await self.writer.write(record)
        await handoffs.mark_answered(store, handoff.id)
        return handoff, PersonsAnswer(handoff.chat_id, handoff_lang(handoff), exchange_id)

    async def open_questions(self) -> Sequence[Handoff]:
        return await handoffs.open_handoffs(self.store, OPEN_LISTED)

    async def take_overdue(self) -> Sequence[Handoff]:
        """The questions nobody answered within the timeout whose users are to be told so
        (each is returned once)."""
        return await handoffs.take_overdue(self.store, self.clock() - self.timeout)

    def waiting_minutes(self, handoff: Handoff) -> int:
        created = handoff.created_at
        if created.tzinfo is None:  # SQLite hands back naive datetimes, stored in UTC
            created = created.replace(tzinfo=UTC)
        return int((self.clock() - created).total_seconds() // 60)
