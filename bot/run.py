"""`qabot run`: prepare the store and the first model, then serve Telegram or the console."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import TextIO

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application
from threadpoolctl import threadpool_limits

from bot.app.app import App
from bot.console import run_console
from bot.serving.retraining import TrainingNotInstalledError
from bot.settings import Settings
from bot.startup import SetupError, explain_bot_api_error, explain_webhook_error
from bot.storage.store import Store
from bot.telegram.application import build_application
from bot.telegram.handoff import remind_unanswered_forever
from bot.telegram.webhook import WebhookServer

log = logging.getLogger(__name__)

# Allocations between two young-generation garbage collections (Python's default: 700).
# Each update makes thousands of short-lived objects: under the load benchmark, collections
# took 0.17 ms of CPU per message at the default, 0.07 ms with this and gc.freeze().
GC_YOUNG_THRESHOLD = 10_000


def tune_garbage_collector() -> None:
    """Exempt what start-up built (modules, the model, the store) from collections, which then
    scan only the objects of the messages in flight, and run them less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


# `qabot run` without a token answers standard input; with nothing there (a service started
# without its token, stdin /dev/null) it would end at once, successfully, having served nothing.
NOTHING_TO_SERVE = (
    "TELEGRAM_BOT_TOKEN is not set and standard input holds no question: nothing to serve\n"
    "set TELEGRAM_BOT_TOKEN (from BotFather) to serve Telegram, or run qabot in a terminal or "
    "pipe questions into it to chat"
)


def reads_nothing(stdin: TextIO | None) -> bool:
    """Standard input is closed or the null device: no question can come from it."""
    if stdin is None:
        return True
    try:
        return os.path.samestat(os.fstat(stdin.fileno()), os.stat(os.devnull))
    except (OSError, ValueError):  # not a file descriptor (a test's StringIO): it may hold text
        return False


async def serve(settings: Settings, *, console: bool) -> None:
    # The bot's matrix products are small (a few questions at a time): one BLAS thread does
    # them as fast, and a second one would spin between calls, eating half a core under load.
    threadpool_limits(limits=1, user_api="blas")
    use_telegram = not console and settings.telegram_bot_token is not None
    if not console and not use_telegram:
        if reads_nothing(sys.stdin):
            raise SetupError(NOTHING_TO_SERVE)
        log.warning(
            "TELEGRAM_BOT_TOKEN is not set: answering questions from %s instead of Telegram",
            "this terminal" if sys.stdin.isatty() else "standard input, one per line",
        )
    store = Store(settings.database_url)
    app = App(settings, store)
    await app.start()
    retention = app.privacy.start_retention()
    try:
        async with contextlib.AsyncExitStack() as stack:
            # Connected before the (maybe minute-long) preparation: a wrong token shows at once.
            application = (
                await stack.enter_async_context(connected_application(app))
                if use_telegram
                else None
            )
            await app.prepare_first_run()
            tune_garbage_collector()
            if application is None:
                questions = await run_console(app)
                if not questions and not console and not sys.stdin.isatty():
                    raise SetupError(NOTHING_TO_SERVE)  # an empty pipe, a file left empty
            else:
                await run_telegram(application, settings)
    finally:
        if retention is not None:
            retention.cancel()
            await asyncio.gather(retention, return_exceptions=True)
        await app.stop()
        await store.close()


@contextlib.asynccontextmanager
async def connected_application(app: App) -> AsyncIterator[Application]:
    """The Telegram front end, initialized: its first Bot API call (getMe) checks the token and
    the Bot API URL, and a mistake there ends in a SetupError."""
    application = build_application(app)
    try:
        await application.initialize()
    except TelegramError as error:
        await application.shutdown()
        raise explain_bot_api_error(app.settings, error) or error from None
    try:
        yield application
    finally:
        await application.shutdown()


async def run_telegram(application: Application, settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await application.start()
    reminders = (
        asyncio.create_task(remind_unanswered_forever(application), name="handoff-reminders")
        if settings.support_chat_id is not None
        else None
    )
    try:
        async with receiving_updates(application, settings):
            await stop.wait()
            log.info("stopping")
    finally:  # also when updates could not be received (a setup error): shut down cleanly
        if reminders is not None:
            reminders.cancel()
            await asyncio.gather(reminders, return_exceptions=True)
        await application.stop()


@contextlib.asynccontextmanager
async def receiving_updates(application: Application, settings: Settings) -> AsyncIterator[None]:
    """Fetch updates while inside: a webhook server when TELEGRAM_WEBHOOK_URL is set (replicas
    behind a load balancer all register the same URL), else long polling."""
    if settings.webhook_url:
        server = WebhookServer(application, settings)
        try:
            await server.start()
        except (OSError, TelegramError) as error:
            await server.stop()
            raise explain_webhook_error(settings, error) from None
        try:
            yield
        finally:
            await server.stop()
        return
    updater = application.updater
    if updater is None:  # the builder makes one unless told not to
        raise RuntimeError("the application was built without an updater to poll with")
    await updater.start_polling(allowed_updates=Update.ALL_TYPES)
    log.info("polling Telegram for updates")
    try:
        yield
    finally:
        await updater.stop()


def run(settings: Settings, *, console: bool = False) -> int:
    """Serve until stopped (the database is migrated already). A SetupError is left to the
    caller, which explains it."""
    try:
        asyncio.run(serve(settings, console=console))
    except KeyboardInterrupt:
        print(file=sys.stderr)
    except TrainingNotInstalledError as error:
        raise SetupError(f"no model to serve yet, and {error}") from None
    except (SetupError, BrokenPipeError):  # the command line explains or ends quietly
        raise
    except Exception:
        # Through the log, not Python's own traceback printer: the log redacts the token,
        # which some errors (a rejected token, a failed Bot API URL) carry.
        log.critical("qabot stopped after an error", exc_info=True)
        return 1
    return 0
