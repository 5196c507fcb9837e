"""The queries of the hand-off to people: questions passed to the support chat."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from bot.storage.store import Store, UserInfo
from bot.storage.tables import Exchange, Handoff, User, utcnow


class HandoffOutcome(enum.Enum):
    OPENED = "opened"
    ALREADY_OPEN = "already open"  # a second press: the question is with the people already
    UNKNOWN = "unknown"  # no such question of this user in this chat (forged, or forgotten)


async def open_handoff(
    store: Store, exchange_id: int, *, chat_id: int, user: UserInfo
) -> tuple[HandoffOutcome, Handoff | None]:
    """A hand-off of the user's own logged question (clients can forge callback data)."""
    try:
        async with store.session.begin() as session:
            exchange = await session.get(Exchange, exchange_id)
            if exchange is None or exchange.chat_id != chat_id or exchange.user_id != user.id:
                return HandoffOutcome.UNKNOWN, None
            if await session.scalar(select(Handoff.id).where(Handoff.exchange_id == exchange_id)):
                return HandoffOutcome.ALREADY_OPEN, None
            handoff = Handoff(
                exchange_id=exchange_id,
                chat_id=chat_id,
                user_id=user.id,
                question=exchange.question,
                language_code=user.language_code,
            )
            session.add(handoff)
    except IntegrityError:  # a second press committed first
        return HandoffOutcome.ALREADY_OPEN, None
    return HandoffOutcome.OPENED, handoff


async def set_support_message(store: Store, handoff_id: int, message_id: int) -> None:
    async with store.session.begin() as session:
        await session.execute(
            update(Handoff).where(Handoff.id == handoff_id).values(support_message_id=message_id)
        )


async def cancel(store: Store, handoff_id: int) -> None:
    """Forget a hand-off that never reached the support chat (the user may press again)."""
    async with store.session.begin() as session:
        handoff = await session.get(Handoff, handoff_id)
        if handoff is not None:
            await session.delete(handoff)


async def by_support_message(store: Store, message_id: int) -> Handoff | None:
    async with store.session() as session:
        return await session.scalar(select(Handoff).where(Handoff.support_message_id == message_id))


async def mark_answered(store: Store, handoff_id: int) -> None:
    async with store.session.begin() as session:
        await session.execute(
            update(Handoff)
            .where(Handoff.id == handoff_id, Handoff.answered_at.is_(None))
            .values(answered_at=utcnow())
        )


async def open_handoffs(store: Store, limit: int) -> Sequence[Handoff]:
    """The unanswered questions in the support chat, oldest first."""
    async with store.session() as session:
        return (
            await session.scalars(
                select(Handoff)
                .where(Handoff.answered_at.is_(None), Handoff.support_message_id.is_not(None))
                .order_by(Handoff.id)
                .limit(limit)
            )
        ).all()


async def take_overdue(store: Store, asked_before: datetime) -> Sequence[Handoff]:
    """The unanswered questions asked before then whose users were not told yet; they are
    marked as told (in the same transaction: a replica running the check too skips them)."""
    async with store.session.begin() as session:
        overdue = (
            await session.scalars(
                select(Handoff)
                .where(
                    Handoff.answered_at.is_(None),
                    Handoff.reminded_at.is_(None),
                    Handoff.support_message_id.is_not(None),
                    Handoff.created_at < asked_before,
                )
                .order_by(Handoff.id)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for handoff in overdue:
            handoff.reminded_at = utcnow()
        return overdue


async def user_info(store: Store, user_id: int) -> UserInfo:
    """The user as last stored (their id alone when there is no user row)."""
    async with store.session() as session:
        user = await session.get(User, user_id)
    if user is None:
        return UserInfo(user_id)
    return UserInfo(user.id, user.username, user.first_name, user.language_code)
