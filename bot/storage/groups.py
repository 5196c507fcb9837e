"""The queries about group chats: their /autoanswer setting."""

from __future__ import annotations

from sqlalchemy import select

from bot.storage.store import ChatInfo, Store
from bot.storage.tables import Chat, utcnow


async def autoanswer(store: Store, chat_id: int) -> bool:
    """Whether the group answers confident questions without being addressed."""
    async with store.session() as session:
        return bool(await session.scalar(select(Chat.autoanswer).where(Chat.id == chat_id)))


async def set_autoanswer(store: Store, chat: ChatInfo, on: bool) -> None:
    """Store the group's /autoanswer setting (the chat row is written if it is not yet)."""
    statement = store.insert_statement(Chat).values(
        id=chat.id, type=chat.type, title=chat.title, created_at=utcnow(), autoanswer=on
    )
    async with store.session.begin() as session:
        await session.execute(
            statement.on_conflict_do_update(index_elements=["id"], set_={"autoanswer": on})
        )
