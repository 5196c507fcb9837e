"""`qabot run`: prepare the store and the first model, then serve Telegram or the console."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from telegram import Update

from bot.console import run_console
from bot.handlers import build_application
from bot.service import QAService
from bot.settings import Settings
from bot.store import Store, upgrade_database
from model.datasets import read_pairs

log = logging.getLogger(__name__)

BUNDLED_PAIRS = Path(__file__).parent / "data" / "seed_qa.csv"


async def prepare(service: QAService) -> None:
    """Load the bundled Q&A set into an empty store and train a first model if there is none."""
    if await service.store.count_pairs() == 0:
        added = await service.store.add_pairs(read_pairs(BUNDLED_PAIRS), source="bundled")
        log.info("loaded %d bundled Q&A pairs", added)
        await service.reload_known_answers()
    if service.model is None:
        log.info("no model yet: training the first one (this takes a minute)")

        async def show(event: dict[str, Any]) -> None:
            if event.get("event") == "epoch":
                log.info("training epoch %s/%s", event.get("epoch"), event.get("epochs"))

        outcome = await service.retrain(show)
        log.info("first model %s is live", outcome.trained.version)


async def serve(settings: Settings, *, console: bool) -> None:
    store = Store(settings.database_url)
    service = QAService(settings, store)
    await service.start()
    try:
        await prepare(service)
        if console or not settings.telegram_bot_token:
            await run_console(service)
        else:
            await run_telegram(service)
    finally:
        await service.stop()
        await store.close()


async def run_telegram(service: QAService) -> None:
    settings = service.settings
    application = build_application(service)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with application:
        await application.start()
        if settings.webhook_url:
            host, port = settings.webhook_host_port
            await application.updater.start_webhook(
                listen=host,
                port=port,
                url_path=urlsplit(settings.webhook_url).path.lstrip("/"),
                webhook_url=settings.webhook_url,
                secret_token=settings.webhook_secret,
                allowed_updates=Update.ALL_TYPES,
            )
            log.info("serving the webhook on %s:%d", host, port)
        else:
            await application.updater.start_polling(allowed_updates=Update.ALL_TYPES)
            log.info("polling Telegram for updates")
        await stop.wait()
        log.info("stopping")
        await application.updater.stop()
        await application.stop()


def run(settings: Settings, *, console: bool = False) -> int:
    upgrade_database(settings.database_url)
    try:
        asyncio.run(serve(settings, console=console))
    except KeyboardInterrupt:
        print(file=sys.stderr)
    return 0
