"""The webhook server: Telegram POSTs each update to TELEGRAM_WEBHOOK_URL.

python-telegram-bot's own server reads a whole body (up to 100 MB) before it looks at the secret
token, so anyone who can reach the port can make the bot hold hundreds of megabytes. This one
checks the secret from the headers first, refuses a call without it before reading any of the
body, and reads at most MAX_UPDATE_BYTES of a body (Telegram's updates are a few kilobytes)."""

from __future__ import annotations

import hmac
import json
import logging
import re
from http import HTTPStatus
from types import TracebackType
from urllib.parse import urlsplit

import tornado.httpserver
import tornado.web
from telegram import Update
from telegram.ext import Application, ExtBot
from tornado.http1connection import HTTP1Connection

from bot.settings import Settings

log = logging.getLogger(__name__)

MAX_UPDATE_BYTES = 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@tornado.web.stream_request_body
class UpdateHandler(tornado.web.RequestHandler):
    """One webhook call: secret and size checked on the headers, then the update queued."""

    def initialize(self, telegram_app: Application, secret: str) -> None:
        self.telegram_app = telegram_app
        self.secret = secret.encode()
        self.chunks: list[bytes] = []

    def prepare(self) -> None:
        # Called on the headers, before any of the body is read (stream_request_body).
        token = self.request.headers.get(SECRET_HEADER, "").encode()
        self.forged = not hmac.compare_digest(token, self.secret)
        length = self.request.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_UPDATE_BYTES:
            status = HTTPStatus.FORBIDDEN if self.forged else HTTPStatus.REQUEST_ENTITY_TOO_LARGE
            raise tornado.web.HTTPError(status)  # the connection closes unread
        # Also for bodies sent in chunks, without a length: the connection is closed past it.
        connection = self.request.connection
        assert isinstance(connection, HTTP1Connection)  # what tornado's HTTPServer gives
        connection.set_max_body_size(MAX_UPDATE_BYTES)

    def data_received(self, chunk: bytes) -> None:
        # A small forged body is read to its end (and dropped), so that the client reliably
        # gets its 403 instead of a reset connection.
        if not self.forged:
            self.chunks.append(chunk)

    async def post(self) -> None:
        if self.forged:
            raise tornado.web.HTTPError(HTTPStatus.FORBIDDEN)
        bot = self.telegram_app.bot
        try:
            update = Update.de_json(json.loads(b"".join(self.chunks)), bot)
        except Exception:  # not JSON, or not an update
            log.warning("webhook: refused a body that is not an update")
            raise tornado.web.HTTPError(HTTPStatus.BAD_REQUEST) from None
        if isinstance(bot, ExtBot):
            bot.insert_callback_data(update)
        await self.telegram_app.update_queue.put(update)

    def log_exception(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not isinstance(value, tornado.web.HTTPError):  # refusals are not errors
            super().log_exception(typ, value, tb)


class WebhookServer:
    """Serves TELEGRAM_WEBHOOK_URL's path on QABOT_WEBHOOK_LISTEN and registers the URL."""

    def __init__(self, application: Application, settings: Settings) -> None:
        if not settings.webhook_url or not settings.webhook_secret:
            raise ValueError("webhook mode needs TELEGRAM_WEBHOOK_URL and TELEGRAM_WEBHOOK_SECRET")
        self.application = application
        self.settings = settings
        path = urlsplit(settings.webhook_url).path.rstrip("/")
        routes = tornado.web.Application(
            [
                (
                    rf"{re.escape(path)}/?",
                    UpdateHandler,
                    {"telegram_app": application, "secret": settings.webhook_secret},
                )
            ],
            log_function=lambda handler: None,  # no access log: it would show every call
        )
        self.http_server = tornado.httpserver.HTTPServer(routes, max_body_size=MAX_UPDATE_BYTES)

    async def start(self) -> None:
        host, port = self.settings.webhook_host_port
        self.http_server.listen(port, address=host)
        # Replicas behind a load balancer all register the same URL.
        await self.application.bot.set_webhook(
            self.settings.webhook_url,
            secret_token=self.settings.webhook_secret,
            allowed_updates=Update.ALL_TYPES,
        )
        log.info("serving the webhook on %s:%d (secret token required)", host, port)

    async def stop(self) -> None:
        """Stop serving; the webhook stays registered for the other replicas."""
        self.http_server.stop()
        await self.http_server.close_all_connections()
