"""The HTTP requests the bot makes to the Telegram Bot API."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram.request import HTTPXRequest

BOT_API_CONNECTIONS = 8


class QueuedHTTPXRequest(HTTPXRequest):
    """python-telegram-bot's HTTPX request with the waiting for a connection done in asyncio.

    httpcore looks through its whole queue of waiting requests each time a connection frees up:
    when a burst (or a group commit) releases hundreds of replies at once, that costs more than
    the replies. Here at most `connections` requests are inside httpcore; the rest wait on a
    semaphore, whose queue costs nothing per request. (A large pool is no cure: httpcore then
    checks every pooled connection on each request.) A few connections carry Telegram's 30
    messages a second.
    """

    def __init__(self, connections: int) -> None:
        super().__init__(connection_pool_size=connections)
        self._slots = asyncio.Semaphore(connections)

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        async with self._slots:
            return await super().do_request(*args, **kwargs)
