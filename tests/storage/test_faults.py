"""Faults: the database unreachable for a while (PostgreSQL cut off, SQLite locked), a record
the database refuses, and `kill -9` of the bot during a burst and during /retrain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from pathlib import Path

import psutil
import pytest
from sqlalchemy.exc import IntegrityError

from bot.storage import store as store_module
from bot.storage.exchange_writer import ExchangeWriter
from bot.storage.store import Store, upgrade_database
from bot.telegram import admin as telegram_admin
from bot.telegram import learning as telegram_learning
from tests.conftest import ADMIN_ID, TOKEN, TelegramBot, bot_on_fake_telegram
from tests.factories import record
from tests.fake_telegram import FakeTelegram, FakeUser
from tests.postgres import PORT, fresh_database
from tests.processes import kill_hard, qabot_process

ROOT = Path(__file__).resolve().parents[2]


# -- the database unreachable ------------------------------------------------------------------


class TcpProxy:
    """Forwards a local port to the PostgreSQL server; `cut()` makes the server unreachable
    (live connections reset, new ones refused) until `restore()`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()

    async def restore(self) -> None:
        await self.start()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


async def ask_during_outage(bot: TelegramBot, n: int) -> None:
    """Questions asked while the database is down are answered at once and kept queued."""
    async with asyncio.timeout(8):
        for i in range(n):
            await bot.tg.send_text(bot.user, f"你好 {i}")
            assert (await bot.tg.next_reply(bot.user)).text
    assert bot.app.writer.pending == n


@pytest.mark.postgres
async def test_postgres_cut_off_then_back(
    home: Path, seed_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = TcpProxy(PORT)
    await proxy.start()
    async with fresh_database(port=proxy.port) as url:
        await asyncio.to_thread(upgrade_database, url)
        store = Store(url)
        try:
            async with bot_on_fake_telegram(home, store, seed_model_dir) as bot:
                bot.app.writer.retry_seconds = 0.2
                await bot.tg.send_text(bot.user, "你好")
                assert (await bot.tg.next_reply(bot.user)).text == "你好！"
                with caplog.at_level(logging.INFO):
                    await proxy.cut()
                    await ask_during_outage(bot, 3)
                    assert "database unavailable" in caplog.text
                    await proxy.restore()
                    await asyncio.wait_for(bot.app.writer.flush(), 20)
                assert "database is back" in caplog.text
                assert await store.count_exchanges() == 4
        finally:
            await store.close()
            await proxy.cut()


async def test_sqlite_locked_by_another_connection_then_released(
    home: Path,
    seed_model_dir: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    url = f"sqlite+aiosqlite:///{home / 'qabot.sqlite3'}"
    await asyncio.to_thread(upgrade_database, url)
    store = Store(url)
    try:
        async with bot_on_fake_telegram(home, store, seed_model_dir) as bot:
            bot.app.writer.retry_seconds = 0.2
            await bot.tg.send_text(bot.user, "你好")
            await bot.tg.next_reply(bot.user)
            locker = sqlite3.connect(home / "qabot.sqlite3", isolation_level=None)
            with caplog.at_level(logging.INFO):
                locker.execute("BEGIN EXCLUSIVE")
                await ask_during_outage(bot, 3)
                assert "database unavailable (OperationalError)" in caplog.text
                locker.execute("ROLLBACK")
                locker.close()
                await asyncio.wait_for(bot.app.writer.flush(), 10)
            assert "database is back" in caplog.text
            assert await store.count_exchanges() == 4
    finally:
        await store.close()


async def test_export_and_stats_answer_during_an_outage_saying_what_is_not_written(
    home: Path, seed_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SQLITE_BUSY_TIMEOUT_MS", 200)
    # /export and /stats wait this long (5 s) for the queued exchanges: patched where they read it.
    for handlers in (telegram_admin, telegram_learning):
        monkeypatch.setattr(handlers, "PENDING_WAIT_SECONDS", 0.5)
    url = f"sqlite+aiosqlite:///{home / 'qabot.sqlite3'}"
    await asyncio.to_thread(upgrade_database, url)
    store = Store(url)
    try:
        async with bot_on_fake_telegram(home, store, seed_model_dir) as bot:
            bot.app.writer.retry_seconds = 0.2
            locker = sqlite3.connect(home / "qabot.sqlite3", isolation_level=None)
            locker.execute("BEGIN EXCLUSIVE")
            await ask_during_outage(bot, 3)
            chinese_admin = bot.tg.user(ADMIN_ID, "Ada", username="ada", language_code="zh")
            async with asyncio.timeout(20):
                for command in ("/export", "/stats"):
                    await bot.tg.send_command(bot.admin, command)
                    assert (await bot.tg.next_reply(bot.admin)).text == (
                        "3 exchanges not yet written; the database is unreachable. "
                        "Try again once they are written."
                    )
                await bot.tg.send_command(chinese_admin, "/stats")
                assert (await bot.tg.next_reply(chinese_admin)).text == (
                    "还有 3 条对话没有写入：数据库无法访问。请等它们写入后再试。"
                )
            locker.execute("ROLLBACK")
            locker.close()
            await bot.tg.send_command(bot.admin, "/export")
            assert (await bot.tg.next_reply(bot.admin)).document.content.count(b"\n") == 4
    finally:
        await store.close()


async def test_a_record_the_database_refuses_is_dropped_alone(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    real_log = store.log_exchanges

    async def refusing(records):
        if any(r.question == "refused" for r in records):
            raise IntegrityError("INSERT ...", {}, Exception("violates a constraint"))
        return await real_log(records)

    store.log_exchanges = refusing  # type: ignore[method-assign]
    writer = ExchangeWriter(store)
    await writer.start()
    questions = ["a", "refused", "b", "c"]
    ids = await asyncio.gather(*(writer.write(record(question=q)) for q in questions))
    await writer.stop()
    assert ids[1] is None and None not in (ids[0], *ids[2:])
    assert writer.dropped == 1 and "could not write an exchange of chat" in caplog.text
    assert sorted([e.question async for e in store.stream_exchanges()]) == ["a", "b", "c"]


# -- kill -9 --------------------------------------------------------------------------------------


def integrity_check(home: Path) -> str:
    with sqlite3.connect(home / "qabot.sqlite3") as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def logged_messages(home: Path) -> set[tuple[int, int]]:
    with sqlite3.connect(home / "qabot.sqlite3") as db:
        return set(db.execute("select chat_id, message_id from exchanges"))


def live_version(home: Path) -> str:
    return json.loads((home / "models" / "CURRENT").read_text())["version"]


async def answered_after_restart(tg: FakeTelegram, user: FakeUser) -> None:
    """The restarted bot answers (messages it sent before the kill are skipped)."""
    await tg.send_text(user, "你好")
    async with asyncio.timeout(20):
        while (await tg.next_reply(user)).text != "你好！":
            pass


@pytest.mark.slow
async def test_kill_9_during_a_burst_loses_no_acknowledged_exchange(bot_home: Path) -> None:
    async with FakeTelegram(token=TOKEN) as tg:
        # Group chats, where the bot quotes the question: each reply names its message.
        users = [tg.user(2000 + n, f"u{n}") for n in range(20)]
        groups = {user.id: tg.group(-5000 - n, f"g{n}") for n, user in enumerate(users)}
        async with qabot_process(tg, bot_home) as process:
            for i in range(15):
                for user in users:
                    await tg.send_text(user, f"@qabot_test_bot hello {i}", chat=groups[user.id])
            async with asyncio.timeout(30):
                while sum(call.method == "sendMessage" for call in tg.calls) < 60:
                    await asyncio.sleep(0.005)
            kill_hard(process)
        acknowledged = {
            (call.params["chat_id"], call.params["reply_parameters"]["message_id"])
            for call in tg.calls
            if call.method == "sendMessage" and call.ok and "reply_parameters" in call.params
        }
        assert len(acknowledged) >= 60
        assert len(acknowledged) < 300, "the bot answered everything before it was killed"
        assert integrity_check(bot_home) == "ok"
        assert acknowledged <= logged_messages(bot_home)

        async with qabot_process(tg, bot_home):
            await answered_after_restart(tg, users[0])
    assert integrity_check(bot_home) == "ok"


@pytest.mark.slow
async def test_kill_9_during_retrain_keeps_the_previous_model(bot_home: Path) -> None:
    version = live_version(bot_home)
    async with FakeTelegram(token=TOKEN) as tg:
        admin = tg.user(ADMIN_ID, "Ada", language_code="en")
        async with qabot_process(tg, bot_home) as process:
            await tg.send_command(admin, "/retrain")
            # Killed while the worker trains: its first progress report has come in.
            await tg.wait_for(
                lambda call: call.method == "editMessageText" and "epoch" in call.params["text"],
                timeout=120,
            )
            workers = [
                child
                for child in psutil.Process(process.pid).children(recursive=True)
                if "model.worker" not in child.cmdline()  # the model process, not training
            ]
            assert workers, "no training worker was running"
            kill_hard(process)
        assert live_version(bot_home) == version
        assert integrity_check(bot_home) == "ok"

        async with qabot_process(tg, bot_home):
            await answered_after_restart(tg, admin)
        assert live_version(bot_home) == version
    assert not any(worker.is_running() for worker in workers)


# -- text no database can store -----------------------------------------------------------------


async def test_a_lone_surrogate_or_nul_loses_nothing(telegram_bot: TelegramBot) -> None:
    """A JSON update can carry a lone surrogate, and PostgreSQL refuses NUL: such a message,
    from a user whose name holds them too, is logged with U+FFFD in their place, and logging,
    /mydata, /export and /stats go on working for everyone."""
    bot = telegram_bot
    eve = bot.tg.user(1003, "Eve\ud800", username="eve", language_code="en")
    await bot.tg.send_text(eve, "hi \ud800 there\x00")
    assert (await bot.tg.next_reply(eve)).text
    await bot.tg.send_text(bot.user, "你好")
    assert (await bot.tg.next_reply(bot.user)).text == "你好！"
    await asyncio.wait_for(bot.app.writer.flush(), 20)
    assert bot.app.writer.dropped == 0
    questions = [e.question async for e in bot.app.store.stream_exchanges()]
    assert questions == ["hi \ufffd there\ufffd", "你好"]

    await bot.tg.send_command(eve, "/mydata")
    mine = json.loads((await bot.tg.next_reply(eve)).document.content)
    assert mine["tables"]["users"][0]["first_name"] == "Eve\ufffd"
    await bot.tg.send_command(bot.admin, "/export jsonl")
    exported = (await bot.tg.next_reply(bot.admin)).document.content.decode("utf-8")
    assert "hi \ufffd there\ufffd" in exported and "你好" in exported
    await bot.tg.send_command(bot.admin, "/stats")
    assert "Questions: 2 from 2 users" in (await bot.tg.next_reply(bot.admin)).caption
