"""Webhook mode (several replicas behind a load balancer) and model hand-over between replicas."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from bot.app.service import QAService
from bot.run import receive_updates
from bot.storage.store import Store
from bot.telegram.application import build_application
from model.predictor import META_FILE
from model.registry import ModelRegistry
from tests.conftest import TOKEN, make_settings
from tests.fake_telegram import FakeTelegram, free_port

SECRET = "s3cret-Token_42"


def copy_version(registry: ModelRegistry, version: str, new_version: str) -> None:
    """A new (unpromoted) version: a copy of an existing one under another name."""
    shutil.copytree(registry.path(version), registry.path(new_version))
    meta_path = registry.path(new_version) / META_FILE
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta_path.write_text(json.dumps({**meta, "version": new_version}), encoding="utf-8")


async def test_webhook_with_secret_answers_and_refuses_forged_calls(
    home: Path, seeded_store: Store, seed_model_dir: Path
) -> None:
    port = free_port()
    async with FakeTelegram(token=TOKEN) as tg:
        settings = make_settings(
            home,
            TELEGRAM_API_BASE_URL=f"{tg.url}/bot",
            TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram/hook",
            QABOT_WEBHOOK_LISTEN=f"127.0.0.1:{port}",
            TELEGRAM_WEBHOOK_SECRET=SECRET,
        )
        shutil.copytree(seed_model_dir, settings.models_dir)
        service = QAService(settings, seeded_store)
        await service.start()
        application = build_application(service)
        try:
            async with application:
                await application.start()
                await receive_updates(application, settings)
                try:
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
                    await asyncio.sleep(0.2)
                    assert len(tg.replies(user)) == 1
                finally:
                    await application.updater.stop()
                    await application.stop()
        finally:
            await service.stop()
    # Stopping one replica must not unregister the webhook the others still serve.
    assert not any(call.method == "deleteWebhook" for call in tg.calls)


def test_a_webhook_secret_telegram_would_refuse_is_rejected_early(home: Path) -> None:
    with pytest.raises(ValueError, match="TELEGRAM_WEBHOOK_SECRET"):
        make_settings(home, TELEGRAM_WEBHOOK_SECRET="has spaces!")


async def test_a_model_promoted_by_one_replica_is_served_by_the_other(
    home: Path, seeded_store: Store, models_dir: Path
) -> None:
    settings = make_settings(home)
    first, second = QAService(settings, seeded_store), QAService(settings, seeded_store)
    await first.start()
    await second.start()
    try:
        old = first.model.version
        assert second.model.version == old
        copy_version(ModelRegistry(models_dir), old, "20990101-000000-beef")
        # Replica one promotes (as after /retrain); replica two is not told.
        await asyncio.to_thread(first.registry.promote, "20990101-000000-beef")
        await first.reload_model()
        assert first.model.version == "20990101-000000-beef"
        async with asyncio.timeout(5):
            while second.model.version != "20990101-000000-beef":
                await asyncio.sleep(0.05)
    finally:
        await first.stop()
        await second.stop()
