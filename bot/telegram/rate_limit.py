"""Per-user rate limit (QABOT_RATE_LIMIT): a token bucket per user. A flooder's extra messages
are ignored and they are told to slow down once; other users are not affected."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot import messages
from bot.settings import RateLimit
from bot.telegram.common import user_lang

log = logging.getLogger(__name__)


class Verdict(Enum):
    ALLOW = "allow"
    WARN = "warn"  # the first refused message of a flood: tell the user
    DROP = "drop"  # further refused messages: ignore them silently


@dataclass
class _Bucket:
    tokens: float
    updated: float
    warned: bool = False


class UserRateLimiter:
    """`limit.burst` messages at once per user, then `limit.per_second` messages a second.

    A bucket left alone long enough to refill is the same as a new one: it is forgotten. The
    buckets are kept in the order of their last message, so the ones to forget are always at
    the front, and each message does constant work however many users there are."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        if not limit.enabled:
            raise ValueError("the rate limit is off")
        self.limit = limit
        self.clock = clock
        self._refills_in = limit.burst / limit.per_second  # seconds from empty to full
        self._buckets: OrderedDict[int, _Bucket] = OrderedDict()  # least recently used first

    def check(self, user_id: int) -> Verdict:
        now = self.clock()
        self._forget_full_buckets(now)
        bucket = self._buckets.get(user_id)
        if bucket is None:
            bucket = self._buckets[user_id] = _Bucket(float(self.limit.burst), now)
        else:
            refill = (now - bucket.updated) * self.limit.per_second
            bucket.tokens = min(float(self.limit.burst), bucket.tokens + refill)
            bucket.updated = now
            self._buckets.move_to_end(user_id)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.warned = False
            return Verdict.ALLOW
        if bucket.warned:
            return Verdict.DROP
        bucket.warned = True
        return Verdict.WARN

    def _forget_full_buckets(self, now: float) -> None:
        """Drop the buckets that have refilled: each is dropped once, so this is constant work
        per message on average."""
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest.updated < self._refills_in:
                return
            buckets.popitem(last=False)

    def __len__(self) -> int:
        """The number of users whose bucket is remembered."""
        return len(self._buckets)


async def enforce_rate_limit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Runs before every other handler: stops the update of a user over their limit."""
    user = update.effective_user
    if user is None:
        return
    limiter: UserRateLimiter = context.application.bot_data["rate_limiter"]
    verdict = limiter.check(user.id)
    if verdict is Verdict.ALLOW:
        return
    if verdict is Verdict.WARN:
        log.warning("a user is over the rate limit: ignoring their messages for now")
        if update.effective_chat is not None:
            await context.bot.send_message(
                update.effective_chat.id, messages.text("slow_down", user_lang(update))
            )
    raise ApplicationHandlerStop
