"""The database tables (SQLAlchemy 2 typed ORM). The schema changes only through Alembic
revisions in migrations/; keep this module and the newest revision in step."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so Alembic batch migrations on SQLite can refer to them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments INTEGER PRIMARY KEY, so big ids are plain integers there.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


# Characters no database column can hold: NUL (PostgreSQL text refuses it) and UTF-16
# surrogates, which a str can carry (a JSON "\\ud800" escape, the console's undecodable bytes)
# but UTF-8 cannot encode.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """The text as every column stores it: NUL and lone surrogates become U+FFFD (a surrogate
    pair becomes the character it encodes)."""
    if _UNSTORABLE.search(text) is None:
        return text
    text = text.replace("\x00", "\ufffd")
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def pair_hash(question: str, answer: str) -> str:
    """What keeps training pairs unique: a SHA-256 of the pair as stored (PostgreSQL cannot
    index texts over about 2.7 kB). NUL separates the two: stored text never holds one."""
    stored = f"{storable_text(question)}\x00{storable_text(answer)}"
    return hashlib.sha256(stored.encode()).hexdigest()


class StoredString(TypeDecorator[str]):
    """String(n) that is always storable (see storable_text): over-long values are cut to n
    characters rather than refused. Every text column uses it or StoredText, so no text a user
    sends can make a write fail."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        impl = self.impl_instance  # the String(n) instance; `impl` names its class
        length = impl.length if isinstance(impl, String) else None
        return storable_text(value if length is None else value[:length])


class StoredText(StoredString):
    """Text that is always storable (see storable_text)."""

    impl = Text
    cache_ok = True


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON}


def table_of(model: type[Base]) -> Table:
    """A mapped class's table (SQLAlchemy types `__table__` as any selectable)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class Chat(Base):
    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(StoredString(16))
    title: Mapped[str | None] = mapped_column(StoredString(256))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Groups only: answer confident questions without being addressed (/autoanswer).
    autoanswer: Mapped[bool] = mapped_column(server_default=false())


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(StoredString(64))
    first_name: Mapped[str | None] = mapped_column(StoredString(256))
    language_code: Mapped[str | None] = mapped_column(StoredString(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Exchange(Base):
    """One question and the reply the bot gave to it."""

    __tablename__ = "exchanges"
    __table_args__ = (Index("ix_exchanges_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    # "text" for questions; "sticker", "photo", ... for messages answered with a hint.
    kind: Mapped[str] = mapped_column(StoredString(16), default="text")
    question: Mapped[str] = mapped_column(StoredText)
    answer: Mapped[str] = mapped_column(StoredText)
    answer_id: Mapped[str | None] = mapped_column(StoredString(32))
    confidence: Mapped[float] = mapped_column(default=0.0)
    fallback: Mapped[bool] = mapped_column(default=False)
    model_version: Mapped[str | None] = mapped_column(StoredString(64))
    latency_ms: Mapped[float] = mapped_column(default=0.0)
    # A member of the support chat answered (a hand-off), not the model.
    answered_by_person: Mapped[bool] = mapped_column(server_default=false())


class QAPairRow(Base):
    """The training set. An empty answer marks an out-of-scope example."""

    __tablename__ = "qa_pairs"
    __table_args__ = (UniqueConstraint("pair_hash", name="uq_qa_pairs_pair_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    question: Mapped[str] = mapped_column(StoredText)
    answer: Mapped[str] = mapped_column(StoredText, default="")
    pair_hash: Mapped[str] = mapped_column(StoredString(64))  # see pair_hash()
    # bundled | imported | taught | reviewed
    source: Mapped[str] = mapped_column(StoredString(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersionRow(Base):
    """A trained model version and its figures; the files live in the model registry."""

    __tablename__ = "model_versions"

    version: Mapped[str] = mapped_column(StoredString(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    promoted_at: Mapped[datetime | None]
    n_pairs: Mapped[int] = mapped_column(default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Feedback(Base):
    """A 👍/👎 press on an answer, and the right answer a user may suggest after a 👎."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("exchange_id", "user_id", name="uq_feedback_exchange_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    exchange_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("exchanges.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    # +1 for 👍, -1 for 👎
    rating: Mapped[int] = mapped_column(Integer)
    answer_id: Mapped[str | None] = mapped_column(StoredString(32))
    model_version: Mapped[str | None] = mapped_column(StoredString(64))
    suggestion: Mapped[str | None] = mapped_column(StoredText)


class AnswerChoice(Base):
    """A press on a "did you mean" button: the answer the asker chose among the bot's
    suggestions (or none of them: no answer). It is a suggestion for the review queue, never
    training data by itself; the exchange records the reply the user got."""

    __tablename__ = "answer_choices"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # One choice per exchange: a second press finds the question answered.
    exchange_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("exchanges.id", ondelete="CASCADE"), unique=True
    )
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    answer_id: Mapped[str | None] = mapped_column(StoredString(32))  # None: "none of these"
    answer: Mapped[str | None] = mapped_column(StoredText)


class ReviewDecision(Base):
    """An admin's decision on a group of similar logged questions (same match key): approved
    with an answer (which joins the training set), marked out of scope (joins it as a question
    the bot should not answer), or ignored. Decided groups leave the queue."""

    __tablename__ = "review_decisions"

    question_key: Mapped[str] = mapped_column(StoredString(255), primary_key=True)
    question: Mapped[str] = mapped_column(StoredText)
    # approved | ignored | out_of_scope (the wordings joined the training set with no answer)
    status: Mapped[str] = mapped_column(StoredString(16))
    answer: Mapped[str | None] = mapped_column(StoredText)
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class Handoff(Base):
    """A question a user asked to pass to a person (QABOT_SUPPORT_CHAT_ID): the support chat's
    copy of it, and whether someone answered. The answer itself is logged as an exchange
    answered by a person."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # One hand-off per question: a second press finds it open.
    exchange_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("exchanges.id", ondelete="CASCADE"), unique=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger)  # the user's private chat
    user_id: Mapped[int] = mapped_column(BigInteger, index=True)
    question: Mapped[str] = mapped_column(StoredText)
    language_code: Mapped[str | None] = mapped_column(StoredString(16))
    # The message in the support chat that members answer by replying to.
    support_message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    answered_at: Mapped[datetime | None]
    # When the user was told that nobody had picked the question up yet.
    reminded_at: Mapped[datetime | None]
