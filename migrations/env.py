"""Alembic environment: runs the revisions on the bot's own (async) engine, one migrating
process at a time (replicas may start together on a fresh database)."""

import asyncio
import contextlib
import fcntl
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

from bot.settings import Settings
from bot.storage.store import create_engine
from bot.storage.tables import Base

config = context.config
target_metadata = Base.metadata

# Any fixed number, the same in every replica: the PostgreSQL advisory lock they take turns on.
MIGRATION_LOCK_KEY = 0x71_61_62_6F_74  # "qabot"


def database_url() -> str:
    return config.attributes.get("database_url") or Settings().database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    # Batch mode lets ALTER TABLE work on SQLite (it copies the table).
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Held until this transaction ends: a replica waiting here then finds the version
            # table made and the revisions applied, instead of creating them a second time.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def run_migrations_online() -> None:
    engine = create_engine(database_url())
    async with engine.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


@contextlib.contextmanager
def sqlite_file_lock(url: str) -> Iterator[None]:
    """For a SQLite file: an exclusive lock on a file beside it while migrating. SQLite runs
    DDL outside the driver's transactions, so two processes migrating at once could both create
    the same table; the lock makes them take turns (the kernel releases it if one dies)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        yield
        return
    lock_path = Path(f"{parsed.database}.migration-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run_until_drivers_stop(migrating: Coroutine[None, None, None]) -> None:
    """asyncio.run, but the loop closes only once the SQLite driver's threads have ended: when
    a database cannot be opened, aiosqlite stops its thread with a call back into the loop that
    it does not wait for, and a closed loop makes that call print a traceback."""
    before = set(threading.enumerate())
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(migrating)
    finally:
        for thread in set(threading.enumerate()) - before:
            if "_connection_worker_thread" in thread.name:  # aiosqlite's
                thread.join(timeout=10)
        loop.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    with sqlite_file_lock(database_url()):
        run_until_drivers_stop(run_migrations_online())
