"""The SQL store: every query the bot makes, as named async functions over SQLAlchemy 2."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Table,
    delete,
    event,
    exc,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.storage.tables import (
    Base,
    Chat,
    Exchange,
    ModelVersionRow,
    QAPairRow,
    ReviewDecision,
    User,
    pair_hash,
    table_of,
    utcnow,
)
from model.datasets import QAPair

log = logging.getLogger(__name__)

# How long a SQLite writer waits for another one before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 10_000
# How many chats and users log_exchanges remembers as written (about 200 bytes each).
MAX_REMEMBERED_PEOPLE = 100_000
# The source of the example pairs `qabot run` loads into an empty store.
BUNDLED = "bundled"


def create_engine(url: str) -> AsyncEngine:
    """An async engine; SQLite gets WAL mode and a busy timeout so readers never block writers.
    Its errors never show the statement's parameters: they hold what users wrote."""
    engine = create_async_engine(
        url, pool_pre_ping=not url.startswith("sqlite"), hide_parameters=True
    )
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        _set_sqlite_pragmas(engine.sync_engine, busy_timeout_ms=SQLITE_BUSY_TIMEOUT_MS)
    return engine


def _set_sqlite_pragmas(engine: Engine, *, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Deleted rows (/forget, retention) are overwritten, not left in free pages.
        cursor.execute("PRAGMA secure_delete=ON")
        cursor.close()


def _loop_log_engine(engine: AsyncEngine) -> Engine | None:
    """For a SQLite file: a synchronous engine on the same file that log_exchanges uses on the
    event loop itself. SQLite is a library, not a server: writing a batch of exchanges takes
    a fraction of a millisecond, less than handing each of its calls to aiosqlite's thread,
    and that thread's fight for the GIL slowed the whole bot under load. It never waits for
    a lock (busy timeout 0): a busy database is written through the async engine instead."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        return None
    log_engine = sqlalchemy.create_engine(engine.url.set(drivername="sqlite"), hide_parameters=True)
    _set_sqlite_pragmas(log_engine, busy_timeout_ms=0)
    return log_engine


def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply the Alembic migrations (synchronous: call it before the event loop starts)."""
    from alembic import command
    from alembic.config import Config

    from migrations import SCRIPT_LOCATION

    # Built here rather than read from alembic.ini, which an installed package does not have.
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    config.attributes["database_url"] = url
    command.upgrade(config, revision)


def is_outage(error: BaseException) -> bool:
    """Whether the database is unreachable (or locked, or hanging), as opposed to refusing one
    statement: only then is a batch kept and retried."""
    if isinstance(error, exc.DBAPIError):
        return error.connection_invalidated or isinstance(
            error, exc.OperationalError | exc.InterfaceError
        )
    return isinstance(error, OSError | TimeoutError | exc.DisconnectionError | exc.TimeoutError)


@dataclass(frozen=True)
class ChatInfo:
    id: int
    type: str = "private"
    title: str | None = None


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str | None = None
    first_name: str | None = None
    language_code: str | None = None


@dataclass
class ExchangeRecord:
    """An exchange as the service produces it, before it is written."""

    chat: ChatInfo
    user: UserInfo | None
    question: str
    answer: str
    answer_id: str | None
    confidence: float
    fallback: bool
    model_version: str | None
    latency_ms: float
    kind: str = "text"
    message_id: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    answered_by_person: bool = False


class Store:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)
        self.session = async_sessionmaker(self.engine, expire_on_commit=False)
        self._insert = (
            postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        )
        chat, user = self._insert(Chat), self._insert(User)
        self._upsert_chats = chat.on_conflict_do_update(
            index_elements=["id"], set_={"title": chat.excluded.title}
        )
        self._upsert_users = user.on_conflict_do_update(
            index_elements=["id"],
            set_={
                name: user.excluded[name] for name in ("username", "first_name", "language_code")
            },
        )
        # The ids must come back in the order of the rows. SQLAlchemy orders them for
        # PostgreSQL at no cost, but on SQLite it would insert one row per statement; there,
        # rows are numbered in the order they are inserted (the writer holds the database
        # lock and INTEGER PRIMARY KEY takes the next number), so sorting the ids is enough.
        self._ids_need_sorting = self.engine.dialect.name == "sqlite"
        self._insert_exchange = insert(Exchange).returning(
            Exchange.id, sort_by_parameter_order=not self._ids_need_sorting
        )
        # Chats and users as last written by this store (see log_exchanges).
        self._written_people: dict[tuple[str, int], ChatInfo | UserInfo] = {}
        # log_exchanges keeps its connection: taking one from the pool for each batch (with
        # its reset, and on PostgreSQL its ping) costs more CPU than writing a small batch.
        self._log_connection: AsyncConnection | None = None
        self._log_lock = asyncio.Lock()
        self._loop_log_engine = _loop_log_engine(self.engine)

    def insert_statement(self, table: type[Base]) -> Any:
        """An INSERT for this database that can take ON CONFLICT clauses."""
        return self._insert(table)

    async def close(self) -> None:
        async with self._log_lock:
            await self._drop_log_connection()
        if self._loop_log_engine is not None:
            self._loop_log_engine.dispose()
        await self.engine.dispose()

    # -- conversations --------------------------------------------------------------------

    async def log_exchanges(self, records: Sequence[ExchangeRecord]) -> list[int]:
        """Write a batch of exchanges (and their chats and users) in one transaction.

        Chats and users this store has written before, unchanged, are not written again: in
        steady state a batch is one INSERT. If one of them has gone meanwhile (another replica's
        /forget), the batch is retried once with every chat and user written.
        """
        try:
            return await self._insert_exchanges(records, skip_known=True)
        except IntegrityError:
            self._written_people.clear()
            return await self._insert_exchanges(records, skip_known=False)

    async def _insert_exchanges(
        self, records: Sequence[ExchangeRecord], *, skip_known: bool
    ) -> list[int]:
        known = self._written_people if skip_known else {}
        chats = [
            chat
            for chat in {r.chat.id: r.chat for r in records}.values()
            if known.get(("chat", chat.id)) != chat
        ]
        users = [
            user
            for user in {r.user.id: r.user for r in records if r.user}.values()
            if known.get(("user", user.id)) != user
        ]
        exchanges = [
            {
                "created_at": r.created_at,
                "chat_id": r.chat.id,
                "user_id": r.user.id if r.user else None,
                "message_id": r.message_id,
                "kind": r.kind,
                "question": r.question,
                "answer": r.answer,
                "answer_id": r.answer_id,
                "confidence": r.confidence,
                "fallback": r.fallback,
                "model_version": r.model_version,
                "latency_ms": r.latency_ms,
                "answered_by_person": r.answered_by_person,
            }
            for r in records
        ]
        ids = await self._write_in_one_transaction(
            [vars(c) for c in chats], [vars(u) for u in users], exchanges
        )
        if len(self._written_people) > MAX_REMEMBERED_PEOPLE:  # bounded memory; rewritten later
            self._written_people.clear()
        self._written_people.update({("chat", c.id): c for c in chats})
        self._written_people.update({("user", u.id): u for u in users})
        return ids

    async def _write_in_one_transaction(
        self,
        chats: list[dict[str, Any]],
        users: list[dict[str, Any]],
        exchanges: list[dict[str, Any]],
    ) -> list[int]:
        """On the event loop for a SQLite file that is free (see _loop_log_engine); otherwise,
        and on PostgreSQL, on the kept async connection."""
        if self._loop_log_engine is not None and not self._log_lock.locked():
            try:
                with self._loop_log_engine.begin() as connection:
                    return self._write_batch(connection, chats, users, exchanges)
            except OperationalError as error:
                if not str(getattr(error.orig, "sqlite_errorname", "")).startswith("SQLITE_BUSY"):
                    raise
        async with self._log_lock, self._log_transaction() as connection:
            return await connection.run_sync(self._write_batch, chats, users, exchanges)

    def _write_batch(
        self,
        connection: Connection,
        chats: list[dict[str, Any]],
        users: list[dict[str, Any]],
        exchanges: list[dict[str, Any]],
    ) -> list[int]:
        """The inserts of log_exchanges, inside the caller's transaction. Core executemany
        statements of a fixed shape: compiled once, cheap per row."""
        if chats:
            connection.execute(self._upsert_chats, chats)
        if users:
            connection.execute(self._upsert_users, users)
        result = connection.execute(self._insert_exchange, exchanges)
        return sorted(result.scalars()) if self._ids_need_sorting else list(result.scalars())

    @contextlib.asynccontextmanager
    async def _log_transaction(self) -> AsyncIterator[AsyncConnection]:
        """A transaction on the kept connection. A statement that fails leaves the connection
        usable; an outage (a lost connection, a locked file) or a cancellation drops it, and
        the next batch opens a new one."""
        if self._log_connection is None:
            self._log_connection = await self.engine.connect()
        try:
            async with self._log_connection.begin():
                yield self._log_connection
        except BaseException as error:
            if not isinstance(error, Exception) or is_outage(error):
                await self._drop_log_connection()
            raise

    async def _drop_log_connection(self) -> None:
        connection, self._log_connection = self._log_connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # it may be dead already: nothing to save
                await connection.close()

    async def stream_exchanges(self, since: datetime | None = None) -> AsyncIterator[Exchange]:
        """Every logged exchange in order, read in chunks so big logs stay out of memory."""
        query = select(Exchange).order_by(Exchange.id).execution_options(yield_per=1000)
        if since is not None:
            query = query.where(Exchange.created_at >= since)
        async with self.session() as session:
            result = await session.stream_scalars(query)
            async for exchange in result:
                yield exchange

    async def exchange_parts(
        self, columns: Sequence[str], since: datetime | None = None, part_rows: int = 2_000
    ) -> AsyncIterator[Sequence[sqlalchemy.Row[Any]]]:
        """Every logged exchange in order, these columns of it as plain rows, `part_rows` at a
        time from a server-side cursor: a large log is neither held in memory nor turned into
        Python objects on the event loop in one go."""
        table = Exchange.__table__
        query = select(*(table.c[name] for name in columns)).order_by(table.c.id)
        if since is not None:
            query = query.where(table.c.created_at >= since)
        async with self.engine.connect() as connection:
            result = await connection.stream(query.execution_options(yield_per=part_rows))
            async for part in result.partitions():
                yield part

    async def count_exchanges(self) -> int:
        async with self.session() as session:
            return await session.scalar(select(func.count(Exchange.id))) or 0

    # -- training set -----------------------------------------------------------------------

    async def add_pairs(self, pairs: Iterable[QAPair], source: str) -> int:
        """Add Q&A pairs; pairs already in the set are skipped. Returns how many were added."""
        async with self.session.begin() as session:
            return await self.insert_pairs(session, pairs, source)

    async def add_pairs_over_bundled(self, pairs: Iterable[QAPair], source: str) -> tuple[int, int]:
        """add_pairs; when the training set held nothing but the bundled pairs, they are
        deleted first, in the same transaction. Returns (added, bundled pairs deleted)."""
        async with self.session.begin() as session:
            own = select(func.count(QAPairRow.id)).where(QAPairRow.source != BUNDLED)
            deleted = 0
            if not await session.scalar(own):
                result = await session.execute(delete(QAPairRow).where(QAPairRow.source == BUNDLED))
                deleted = getattr(result, "rowcount", 0) or 0
            return await self.insert_pairs(session, pairs, source), deleted

    async def insert_pairs(
        self, session: AsyncSession, pairs: Iterable[QAPair], source: str
    ) -> int:
        """add_pairs inside the caller's transaction (which may record more, such as the review
        decision that approved them: both or neither)."""
        # dict: one row per stored pair, in the file order, so ids follow it.
        rows = {
            pair_hash(q, a): (q, a)
            for q, a in ((p.question.strip(), p.answer.strip()) for p in pairs)
            if q
        }
        if not rows:
            return 0
        before = await session.scalar(select(func.count(QAPairRow.id))) or 0
        values = [
            {"question": q, "answer": a, "pair_hash": key, "source": source, "created_at": utcnow()}
            for key, (q, a) in rows.items()
        ]
        # Chunked: SQLite caps the number of bound parameters in one statement.
        for start in range(0, len(values), 500):
            stmt = self._insert(QAPairRow).values(values[start : start + 500])
            await session.execute(stmt.on_conflict_do_nothing(index_elements=["pair_hash"]))
        after = await session.scalar(select(func.count(QAPairRow.id))) or 0
        return after - before

    async def training_pairs(self) -> list[QAPair]:
        async with self.session() as session:
            rows = await session.execute(
                select(QAPairRow.question, QAPairRow.answer).order_by(QAPairRow.id)
            )
            return [QAPair(question, answer) for question, answer in rows]

    async def count_pairs(self) -> int:
        async with self.session() as session:
            return await session.scalar(select(func.count(QAPairRow.id))) or 0

    # -- model versions ---------------------------------------------------------------------

    async def record_model_version(
        self, version: str, n_pairs: int, metrics: dict[str, Any], promoted: bool
    ) -> None:
        async with self.session.begin() as session:
            stmt = self._insert(ModelVersionRow).values(
                version=version,
                created_at=utcnow(),
                n_pairs=n_pairs,
                metrics=metrics,
                promoted_at=utcnow() if promoted else None,
            )
            await session.execute(stmt.on_conflict_do_nothing(index_elements=["version"]))

    async def gate_figures(self) -> dict[str, dict[str, Any]]:
        """What the promotion gate decided about each retrained version, by version."""
        async with self.session() as session:
            rows = await session.execute(select(ModelVersionRow.version, ModelVersionRow.metrics))
            return {version: metrics["gate"] for version, metrics in rows if "gate" in metrics}

    async def mark_promoted(self, version: str) -> bool:
        """Whether the version was recorded (and is now marked as promoted last)."""
        async with self.session.begin() as session:
            result = await session.execute(
                update(ModelVersionRow)
                .where(ModelVersionRow.version == version)
                .values(promoted_at=utcnow())
            )
            return bool(cast(CursorResult[Any], result).rowcount)  # an UPDATE's

    # -- privacy ----------------------------------------------------------------------------

    async def user_data(self, user_id: int) -> dict[str, list[dict[str, Any]]]:
        """Every stored row about a user, by table (see `_rows_about`)."""
        data: dict[str, list[dict[str, Any]]] = {}
        async with self.session() as session:
            for table, condition, _ in reversed(_rows_about(_user_subjects(user_id))):
                rows = await session.execute(select(table).where(condition))
                data[table.name] = [dict(row._mapping) for row in rows]
        return data

    async def user_questions(self, user_id: int) -> list[str]:
        """The questions a user asked (what review decisions may quote)."""
        async with self.session() as session:
            return list(
                await session.scalars(select(Exchange.question).where(Exchange.user_id == user_id))
            )

    async def forget_user(self, user_id: int, review_keys: Collection[str] = ()) -> int:
        """Delete everything about a user, and the review decisions on the questions whose keys
        are given (their questions are the user's words); returns how many exchanges went."""
        self._written_people.pop(("user", user_id), None)
        self._written_people.pop(("chat", user_id), None)
        subjects = _user_subjects(user_id)
        if review_keys:
            subjects[table_of(ReviewDecision)] = ReviewDecision.question_key.in_(set(review_keys))
        deleted = await self._delete_rows_about(subjects)
        await self._discard_deleted_text()
        return deleted

    async def delete_exchanges_before(self, cutoff: datetime) -> int:
        """Delete exchanges logged before `cutoff`, rows about them (like feedback), and review
        decisions taken before it (they quote logged questions)."""
        deleted = await self._delete_rows_about(
            {
                table_of(Exchange): Exchange.created_at < cutoff,
                table_of(ReviewDecision): ReviewDecision.decided_at < cutoff,
            }
        )
        await self._discard_deleted_text()
        return deleted

    async def _discard_deleted_text(self) -> None:
        """SQLite keeps deleted rows in its write-ahead log until a checkpoint (secure_delete
        zeroes them in the database file): checkpoint now, so deleted text leaves the disk."""
        if self.engine.dialect.name == "sqlite":
            async with self.engine.connect() as connection:
                await connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    async def _delete_rows_about(self, subjects: dict[Table, ColumnElement[bool]]) -> int:
        deleted_exchanges = 0
        async with self.session.begin() as session:
            for table, condition, links in _rows_about(subjects):
                if table in _KEPT_UNLINKED:
                    await session.execute(
                        update(table).where(condition).values(dict.fromkeys(links))
                    )
                    continue
                result = await session.execute(delete(table).where(condition))
                if table is table_of(Exchange):
                    deleted_exchanges = cast(CursorResult[Any], result).rowcount  # a DELETE's
        return deleted_exchanges


# The training set outlives the conversations it came from: it only loses its link to them.
_KEPT_UNLINKED = frozenset({table_of(QAPairRow)})


def _user_subjects(user_id: int) -> dict[Table, ColumnElement[bool]]:
    """A user's own rows: the user, their private chat (whose id is theirs), and in every table
    with a `user_id` column the rows naming them, whether or not they have a user row (someone
    who only rated answers in a group has none)."""
    subjects = {
        table_of(User): User.id == user_id,
        table_of(Chat): (Chat.id == user_id) & (Chat.type == "private"),
    }
    for table in Base.metadata.sorted_tables:
        if "user_id" in table.c:
            subjects[table] = table.c.user_id == user_id
    return subjects


def _rows_about(
    subjects: dict[Table, ColumnElement[bool]],
) -> list[tuple[Table, ColumnElement[bool], list[str]]]:
    """The subject rows and, in every table, the rows referring to them by a foreign key
    (feedback, review items, ... whatever the schema adds), as (table, condition, referring
    columns); referring tables come before the tables they refer to, so deleting in this order
    keeps every foreign key valid."""
    found = []
    for table in reversed(Base.metadata.sorted_tables):
        links = [(fk.parent, fk.column) for fk in table.foreign_keys if fk.column.table in subjects]
        conditions = [subjects[table]] if table in subjects else []
        conditions += [
            col.in_(select(refers).where(subjects[refers.table])) for col, refers in links
        ]
        if conditions:
            found.append((table, or_(*conditions), [col.name for col, _ in links]))
    return found
