"""Webhook mode (several replicas behind a load balancer) and model hand-over between replicas."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import psutil
import pytest

from bot.app.app import App
from bot.run import receiving_updates
from bot.settings import Settings
from bot.storage.store import Store
from bot.telegram.application import build_application
from model.predictor import META_FILE
from model.registry import ModelRegistry
from tests.conftest import TOKEN, make_settings
from tests.fake_telegram import FakeTelegram, free_port
from tests.processes import ROOT

SECRET = "s3cret-Token_42"


def copy_version(registry: ModelRegistry, version: str, new_version: str) -> None:
    """A new (unpromoted) version: a copy of an existing one under another name."""
    shutil.copytree(registry.path(version), registry.path(new_version))
    meta_path = registry.path(new_version) / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta_path.write_text(json.dumps({**meta, "version": new_version}), encoding="utf-8")


@asynccontextmanager
async def webhook_bot(
    home: Path, store: Store, seed_model_dir: Path
) -> AsyncIterator[tuple[FakeTelegram, Settings, int]]:
    """The bot serving its webhook (with SECRET) against a fake Bot API; yields that, the bot's
    settings and its port."""
    async with (
        FakeTelegram(token=TOKEN) as tg,
        _webhook_bot(tg, home, store, seed_model_dir) as (settings, port),
    ):
        yield tg, settings, port


@asynccontextmanager
async def _webhook_bot(
    tg: FakeTelegram, home: Path, store: Store, seed_model_dir: Path
) -> AsyncIterator[tuple[Settings, int]]:
    port = free_port()
    settings = make_settings(
        home,
        TELEGRAM_API_BASE_URL=f"{tg.url}/bot",
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/hook",
        QABOT_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
    )
    shutil.copytree(seed_model_dir, settings.models_dir)
    app = App(settings, store)
    await app.start()
    application = build_application(app)
    try:
        async with application:
            await application.start()
            try:
                async with receiving_updates(application, settings):
                    yield settings, port
            finally:
                await application.stop()
    finally:
        await app.stop()


async def test_webhook_with_secret_answers_and_refuses_forged_calls(
    home: Path, seeded_store: Store, seed_model_dir: Path
) -> None:
    async with webhook_bot(home, seeded_store, seed_model_dir) as (tg, settings, _):
        set_webhook = await tg.wait_for(lambda call: call.method == "setWebhook")
        assert set_webhook.params["url"] == settings.webhook_url
        assert set_webhook.params["secret_token"] == SECRET
        user = tg.user(1001, "Bo", language_code="zh-hans")
        await tg.send_text(user, "你好")
        assert (await tg.next_reply(user)).text == "你好！"
        assert not any(call.method == "getUpdates" for call in tg.calls)

        forged = {
            "update_id": 999,
            "message": {
                "message_id": 1, "date": 0, "text": "你好",
                "chat": {"id": 1001, "type": "private"},
                "from": {"id": 1001, "is_bot": False, "first_name": "Eve"},
            },
        }  # fmt: skip
        assert await tg.post_to_webhook(forged, "wrong") == 403
        assert await tg.post_to_webhook(forged, None) == 403
        # A later genuine update is answered; the forged ones never were.
        await tg.send_text(user, "你好")
        await tg.next_reply(user)
        assert len(tg.replies(user)) == 2
    # Stopping one replica must not unregister the webhook the others still serve.
    assert not any(call.method == "deleteWebhook" for call in tg.calls)


async def post_huge_body(
    port: int, secret: str | None, size: int, *, chunked: bool = False
) -> tuple[str, int]:
    """POST `size` bytes to the webhook, 1 MB at a time, as long as the server takes them;
    returns the status line of the answer ("" when the server hung up without one) and how
    many bytes were sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    headers = [
        "POST /telegram/hook HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}",
    ] + ([f"X-Telegram-Bot-Api-Secret-Token: {secret}"] if secret else [])  # fmt: skip
    writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
    chunk = b"x" * (1024 * 1024)
    framed = b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk
    sent, status = 0, ""
    try:
        while sent < size and not reader.at_eof():
            writer.write(framed)
            await writer.drain()
            sent += len(chunk)
        status = (await reader.readline()).decode().strip()
    except ConnectionError:
        pass
    finally:
        writer.close()
    return status, sent


async def test_webhook_checks_the_secret_first_and_caps_bodies(
    home: Path, seeded_store: Store, seed_model_dir: Path
) -> None:
    huge = 95 * 1024 * 1024
    rss = psutil.Process().memory_info().rss
    async with webhook_bot(home, seeded_store, seed_model_dir) as (tg, _, port):
        for secret in ("wrong", None, "wrong", None):  # four unauthenticated 95 MB posts
            status, sent = await post_huge_body(port, secret, huge)
            assert status in ("", "HTTP/1.1 403 Forbidden") and sent < huge / 4
        # With the secret: a declared length over the cap is refused from the headers...
        status, sent = await post_huge_body(port, SECRET, huge)
        assert status in ("", "HTTP/1.1 413 Request Entity Too Large") and sent < huge / 4
        # ...and a body sent in chunks is cut off at the cap.
        status, sent = await post_huge_body(port, SECRET, huge, chunked=True)
        assert " 200 " not in status and sent < huge / 4
        grown = psutil.Process().memory_info().rss - rss
        # The genuine updates still get through.
        user = tg.user(1001, "Bo", language_code="zh-hans")
        await tg.send_text(user, "你好")
        assert (await tg.next_reply(user)).text == "你好！"
    assert grown < 60 * 1024 * 1024, f"the process grew by {grown / 2**20:.0f} MB"


def test_webhook_mode_without_a_secret_is_refused(home: Path) -> None:
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET must be set"):
        make_settings(home, TELEGRAM_WEBHOOK_URL="https://bot.example.com/hook")


def test_qabot_run_in_webhook_mode_without_a_secret_exits_2(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv("QABOT_HOME", str(home))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", "https://bot.example.com/hook")
    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET", raising=False)
    assert main(["run"]) == 2
    error = capsys.readouterr().err
    assert "TELEGRAM_WEBHOOK_SECRET must be set" in error and "Traceback" not in error
    assert len(error.strip().splitlines()) <= 2 and TOKEN not in error


def test_a_webhook_secret_telegram_would_refuse_is_rejected_early(home: Path) -> None:
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        make_settings(home, TELEGRAM_WEBHOOK_SECRET="has spaces!")


async def test_a_model_promoted_by_one_replica_is_served_by_the_other(
    home: Path, seeded_store: Store, models_dir: Path
) -> None:
    settings = make_settings(home)
    first, second = App(settings, seeded_store), App(settings, seeded_store)
    await first.start()
    await second.start()
    try:
        old = first.models.current.version
        assert second.models.current.version == old
        copy_version(ModelRegistry(models_dir), old, "20990101-000000-beef")
        # Replica one promotes (as after /retrain); replica two is not told.
        await asyncio.to_thread(first.models.registry.promote, "20990101-000000-beef")
        await first.models.reload()
        assert first.models.current.version == "20990101-000000-beef"
        async with asyncio.timeout(5):
            while second.models.current.version != "20990101-000000-beef":
                await asyncio.sleep(0.05)
    finally:
        await first.stop()
        await second.stop()


async def run_in_webhook_mode(tg: FakeTelegram, home: Path, port: int) -> tuple[int, list[str]]:
    """`qabot run` (a process of its own: it handles signals) in webhook mode against the fake
    Bot API: its exit code and the lines of its stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QABOT_", "TELEGRAM_"))}
    env.update(
        QABOT_HOME=str(home),
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=f"{tg.url}/bot",
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/hook",
        QABOT_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        TELEGRAM_WEBHOOK_SECRET=SECRET,
        QABOT_MODEL_PROCESS="0",
        PYTHONPATH=str(ROOT),
    )
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "bot.cli", "run"], cwd=home.parent, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return done.returncode, done.stderr.strip().splitlines()


@pytest.mark.slow  # a `qabot run` process
async def test_a_webhook_port_in_use_is_a_setup_error(bot_home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        async with FakeTelegram(token=TOKEN) as tg:
            code, error = await run_in_webhook_mode(tg, bot_home, taken.getsockname()[1])
    assert code == 2, error
    assert error[-2].startswith("qabot: cannot serve the webhook on QABOT_WEBHOOK_LISTEN")
    assert "QABOT_WEBHOOK_LISTEN" in error[-1]


@pytest.mark.slow  # a `qabot run` process
async def test_a_webhook_url_the_bot_api_refuses_is_a_setup_error(bot_home: Path) -> None:
    async with FakeTelegram(token=TOKEN) as tg:
        refusal = "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
        tg.fail("setWebhook", status=400, description=refusal)
        code, error = await run_in_webhook_mode(tg, bot_home, free_port())
    assert code == 2, error
    assert error[-2].startswith("qabot: the Bot API refused TELEGRAM_WEBHOOK_URL")
    assert "https url must be provided" in error[-2].lower() and "https://" in error[-1]
    assert not any(TOKEN.split(":")[1] in line for line in error)
