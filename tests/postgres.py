"""The real PostgreSQL server for tests: a fresh database per test on 127.0.0.1:5432.

Tests skip with a message when no server is reachable, except when QABOT_REQUIRE_POSTGRES=1
(as in CI), where an unreachable server fails them instead.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

HOST, PORT, USER, MAINTENANCE_DATABASE = "127.0.0.1", 5432, "postgres", "test"
SERVER_URL = f"postgresql+asyncpg://{USER}@{HOST}:{PORT}"

_unreachable: str | None = None  # why the server could not be reached, once known


async def _connect(port: int = PORT) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=HOST, port=port, user=USER, database=MAINTENANCE_DATABASE, timeout=3
    )


async def require_server() -> None:
    """Skip (or fail, when QABOT_REQUIRE_POSTGRES=1) unless the server answers."""
    global _unreachable
    if _unreachable is None:
        try:
            connection = await _connect()
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            _unreachable = f"{type(error).__name__}: {error}"
        else:
            await connection.close()
            _unreachable = ""
    if _unreachable:
        message = (
            f"PostgreSQL is not reachable at {HOST}:{PORT} (user {USER}, database "
            f"{MAINTENANCE_DATABASE}): {_unreachable}"
        )
        if os.environ.get("QABOT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{message}; QABOT_REQUIRE_POSTGRES=1 requires it")
        pytest.skip(f"{message}; start the server (.ci/run does) to run the PostgreSQL tests")


@asynccontextmanager
async def fresh_database(port: int = PORT, template: str | None = None) -> AsyncIterator[str]:
    """Create an empty database (or a copy of the database named `template`), yield its
    SQLAlchemy URL (through `port`, which may be a proxy in front of the server), and drop it
    afterwards."""
    name = await create_database(template)
    try:
        yield database_url(name, port)
    finally:
        await drop_database(name)


def database_url(name: str, port: int = PORT) -> str:
    return f"postgresql+asyncpg://{USER}@{HOST}:{port}/{name}"


async def create_database(template: str | None = None) -> str:
    """A new database's name; a copy of `template` (which no one may be connected to)."""
    await require_server()
    name = f"qabot_test_{secrets.token_hex(6)}"
    connection = await _connect()
    try:
        copy = f' TEMPLATE "{template}"' if template else ""
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await connection.close()
    return name


async def drop_database(name: str) -> None:
    connection = await _connect()
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
