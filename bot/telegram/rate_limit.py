"""Per-user rate limit (QABOT_RATE_LIMIT): a token bucket per user. A flooder's extra messages
are ignored and they are told to slow down once; other users are not affected."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.settings import RateLimit
from bot.telegram.common import user_lang

log = logging.getLogger(__name__)

SLOW_DOWN = {
    "en": "You are sending messages too fast. Please wait a moment; I'll answer again then.",
    "zh": "你发消息太快了，请稍等片刻，我之后会继续回答。",
}
# Buckets are pruned when there are more than this many (only full ones, which a new user's
# bucket equals, so pruning changes no verdict).
PRUNE_ABOVE = 10_000


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
    """`limit.burst` messages at once per user, then `limit.per_second` messages a second."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        if not limit.enabled:
            raise ValueError("the rate limit is off")
        self.limit = limit
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def check(self, user_id: int) -> Verdict:
        now = self.clock()
        bucket = self._buckets.get(user_id)
        if bucket is None:
            if len(self._buckets) >= PRUNE_ABOVE:
                self._prune(now)
            bucket = self._buckets[user_id] = _Bucket(float(self.limit.burst), now)
        else:
            refill = (now - bucket.updated) * self.limit.per_second
            bucket.tokens = min(float(self.limit.burst), bucket.tokens + refill)
            bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.warned = False
            return Verdict.ALLOW
        if bucket.warned:
            return Verdict.DROP
        bucket.warned = True
        return Verdict.WARN

    def _prune(self, now: float) -> None:
        full_after = self.limit.burst / self.limit.per_second
        self._buckets = {
            user_id: bucket
            for user_id, bucket in self._buckets.items()
            if now - bucket.updated < full_after
        }


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
        log.warning("user %s is over the rate limit: ignoring their messages for now", user.id)
        if update.effective_chat is not None:
            await context.bot.send_message(update.effective_chat.id, SLOW_DOWN[user_lang(update)])
    raise ApplicationHandlerStop
