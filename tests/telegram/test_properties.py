"""Property-based tests of the message path: arbitrary Unicode, lengths and update shapes sent
through the real Application and the fake Bot API never raise and always get a reply."""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app.app import BUNDLED_PAIRS, App
from bot.storage.store import ChatInfo, Store, UserInfo, upgrade_database
from bot.telegram.application import build_application
from model.datasets import read_pairs
from tests.conftest import TOKEN, make_settings
from tests.fake_telegram import FakeTelegram, running_application

PRIVATE_CHAT, GROUP_CHAT = 3001, -3002
TELEGRAM_MAX_CHARS = 4096


@dataclass
class LiveBot:
    """The bot running on an event loop in a background thread, for synchronous Hypothesis
    tests to drive."""

    loop: asyncio.AbstractEventLoop
    tg: FakeTelegram
    app: App
    errors: list[logging.LogRecord]

    def run(self, coroutine: Coroutine[Any, Any, Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)


class _ErrorRecords(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def live_bot(tmp_path_factory: pytest.TempPathFactory, seed_model_dir: Path) -> Iterator[LiveBot]:
    home = tmp_path_factory.mktemp("properties") / "home"
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    started, stop = threading.Event(), asyncio.Event()
    errors: list[logging.LogRecord] = []
    handler = _ErrorRecords(errors)
    logging.getLogger().addHandler(handler)
    box: dict[str, LiveBot] = {}

    async def serve() -> None:
        async with FakeTelegram(token=TOKEN) as tg:
            # Without the outgoing limiter: Telegram's 20 messages a minute per group would
            # make this test wait (tests/telegram/test_rate_limit.py covers the limiter).
            bot_settings = make_settings(
                home, TELEGRAM_API_BASE_URL=f"{tg.url}/bot", QABOT_SEND_RATE="0"
            )
            await asyncio.to_thread(upgrade_database, bot_settings.database_url)
            store = Store(bot_settings.database_url)
            await store.add_pairs(read_pairs(BUNDLED_PAIRS), source="bundled")
            shutil.copytree(seed_model_dir, bot_settings.models_dir)
            app = App(bot_settings, store)
            await app.start()
            tg.user(PRIVATE_CHAT, "Pat")
            tg.group(GROUP_CHAT, "Group")
            try:
                async with running_application(build_application(app), tg, poll_timeout=1):
                    box["bot"] = LiveBot(loop, tg, app, errors)
                    started.set()
                    await stop.wait()
            finally:
                await app.stop()
                await store.close()

    served = asyncio.run_coroutine_threadsafe(serve(), loop)
    assert started.wait(60), "the bot did not start"
    try:
        yield box["bot"]
    finally:
        loop.call_soon_threadsafe(stop.set)
        served.result(30)
        logging.getLogger().removeHandler(handler)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


# -- update shapes ---------------------------------------------------------------------------

texts = st.text(max_size=TELEGRAM_MAX_CHARS + 200) | st.text(
    alphabet=st.characters(codec="utf-8"), min_size=1, max_size=60
)
users = st.fixed_dictionaries(
    {"id": st.integers(1, 2**40), "is_bot": st.booleans(), "first_name": st.text(max_size=64)},
    optional={
        "last_name": st.text(max_size=64),
        "username": st.from_regex(r"[a-z][a-z0-9_]{4,20}", fullmatch=True),
        "language_code": st.sampled_from(["en", "zh-hans", "zh", "ru", "", "xx-YY"]),
    },
)


@st.composite
def text_updates(draw: st.DrawFn) -> dict[str, Any]:
    """A text message as Telegram could deliver it: new or edited, private, group or channel,
    with or without a sender, with or without a leading command and its entity."""
    kind = draw(st.sampled_from(["message", "edited_message", "channel_post"]))
    chat_id = PRIVATE_CHAT if kind != "channel_post" and draw(st.booleans()) else GROUP_CHAT
    chat_type = {"channel_post": "channel"}.get(kind, "private" if chat_id > 0 else "supergroup")
    text = draw(texts)
    if chat_id == GROUP_CHAT:
        # In groups and channels the bot answers what is put to it: a mention, or in groups a
        # command of its own (others may be other bots').
        if kind != "channel_post" and draw(st.booleans()):
            text = draw(st.sampled_from(["/start", "/help", "/teach", "/forget"])) + " " + text
        else:
            text = "@qabot_test_bot " + text
    elif draw(st.booleans()):
        text = draw(st.sampled_from(["/start", "/help", "/nope", "/teach", "/forget"])) + text
    message: dict[str, Any] = {
        "message_id": draw(st.integers(1, 2**31 - 1)),
        "date": draw(st.integers(0, 2**31 - 1)),
        "chat": {"id": chat_id, "type": chat_type, "title": draw(st.text(max_size=20))},
        "text": text,
    }
    if kind != "channel_post":
        message["from"] = draw(users)
    if kind == "edited_message":
        message["edit_date"] = message["date"]
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0] if text.split() else text
        utf16_length = len(command.encode("utf-16-le")) // 2
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_length}]
    return {kind: message}


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(update=text_updates())
def test_every_text_update_gets_a_reply_and_nothing_raises(
    live_bot: LiveBot, update: dict[str, Any]
) -> None:
    chat_id = next(iter(update.values()))["chat"]["id"]

    async def send_and_wait() -> None:
        since = len(live_bot.tg.calls)
        await live_bot.tg.send_update(update, chat_id)
        await live_bot.tg.wait_for(
            lambda call: call.method.startswith("send") and call.params.get("chat_id") == chat_id,
            timeout=20,
            since=since,
        )

    live_bot.run(send_and_wait())
    assert not live_bot.errors, [record.getMessage() for record in live_bot.errors]


@settings(max_examples=200, deadline=None)
@given(text=texts, language=st.sampled_from([None, "en", "zh-hans", "de"]))
def test_the_reply_path_answers_any_text(live_bot: LiveBot, text: str, language: str) -> None:
    user = UserInfo(PRIVATE_CHAT, None, "Pat", language)
    reply = live_bot.run(live_bot.app.answering.reply(ChatInfo(PRIVATE_CHAT), user, text))
    assert reply.text.strip() and len(reply.text) <= TELEGRAM_MAX_CHARS
    assert 0.0 <= reply.confidence <= 1.0
