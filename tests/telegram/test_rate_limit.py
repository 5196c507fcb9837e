"""The per-user rate limit: token buckets, and a flooder through the real Application."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest
from telegram.ext import AIORateLimiter

from bot.settings import RateLimit, parse_rate_limit
from bot.storage.store import Store
from bot.telegram.rate_limit import UserRateLimiter, Verdict
from tests.complexity import python_lines_run
from tests.conftest import bot_on_fake_telegram


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refill_and_one_warning_per_flood() -> None:
    clock = Clock()
    limiter = UserRateLimiter(RateLimit(3, 1.0), clock)
    verdicts = [limiter.check(1) for _ in range(6)]
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.WARN, Verdict.DROP, Verdict.DROP]
    assert limiter.check(2) is Verdict.ALLOW  # others are not affected
    clock.now = 1.0  # one token back
    assert [limiter.check(1), limiter.check(1)] == [Verdict.ALLOW, Verdict.WARN]
    clock.now = 100.0  # a long pause refills the bucket up to the burst only
    assert [limiter.check(1) for _ in range(4)] == [Verdict.ALLOW] * 3 + [Verdict.WARN]


def test_refilled_buckets_are_forgotten_without_changing_verdicts() -> None:
    clock = Clock()
    limiter = UserRateLimiter(RateLimit(2, 1.0), clock)
    limiter.check(0)
    limiter.check(0)
    for user_id in range(1, 1_000):
        limiter.check(user_id)
    clock.now = 1.0
    assert limiter.check(0) is Verdict.ALLOW  # one token back, spent again
    assert len(limiter) == 1_000
    clock.now = 2.5  # everyone but user 0 is full again: forgotten
    assert limiter.check(5_000) is Verdict.ALLOW
    assert len(limiter) == 2
    # User 0's bucket was kept: 1.5 tokens, not a new user's 2.
    assert [limiter.check(0) for _ in range(3)] == [Verdict.ALLOW, Verdict.WARN, Verdict.DROP]


def test_a_message_costs_the_same_however_many_users_are_recent() -> None:
    """Constant work per message: a new user among 20,000 recent ones costs what one among
    1,000 does (no scan of the other users' buckets)."""
    clock = Clock()
    limiter = UserRateLimiter(RateLimit(10, 1.0), clock)
    work: dict[int, int] = {}
    for user_id in range(20_001):
        if user_id in (1_000, 20_000):
            work[user_id] = python_lines_run(functools.partial(limiter.check, user_id))
        else:
            limiter.check(user_id)
    assert work[20_000] == work[1_000]
    assert len(limiter) == 20_001


def test_settings_parse_and_zero_disables() -> None:
    assert parse_rate_limit("10/1") == RateLimit(10, 1.0)
    assert not parse_rate_limit("0").enabled
    with pytest.raises(ValueError):
        UserRateLimiter(parse_rate_limit("0"))
    with pytest.raises(ValueError):
        parse_rate_limit("ten")


async def test_a_flooder_is_told_once_and_others_are_answered(
    home: Path, seeded_store: Store, seed_model_dir: Path
) -> None:
    async with bot_on_fake_telegram(
        home, seeded_store, seed_model_dir, QABOT_RATE_LIMIT="5/0.1"
    ) as bot:
        for i in range(12):
            await bot.tg.send_text(bot.admin, f"hello {i}")
        await bot.tg.send_text(bot.user, "你好")
        assert (await bot.tg.next_reply(bot.user)).text == "你好！"
        replies = [(await bot.tg.next_reply(bot.admin)).text for _ in range(6)]
        await asyncio.sleep(0.3)
        assert len(bot.tg.replies(bot.admin)) == 6  # nothing more for the flooder
        assert sum("too fast" in text for text in replies) == 1
        await bot.app.writer.flush()
        assert await bot.app.store.count_exchanges() == 6  # 5 answered + the other user


async def test_zero_turns_the_limit_off(
    home: Path, seeded_store: Store, seed_model_dir: Path
) -> None:
    async with bot_on_fake_telegram(home, seeded_store, seed_model_dir) as bot:
        assert "rate_limiter" not in bot.application.bot_data
        for i in range(30):
            await bot.tg.send_text(bot.admin, f"hello {i}")
        texts = [(await bot.tg.next_reply(bot.admin)).text for _ in range(30)]
        assert not any("too fast" in text for text in texts)


async def test_outgoing_calls_go_through_telegrams_limits(
    home: Path, seeded_store: Store, seed_model_dir: Path
) -> None:
    async with bot_on_fake_telegram(home, seeded_store, seed_model_dir) as bot:
        limiter = bot.application.bot.rate_limiter
        assert isinstance(limiter, AIORateLimiter)
        assert limiter._base_limiter.max_rate == 30  # Telegram: 30 messages a second overall
        # Flood control answered with retry_after: the limiter waits and sends again.
        bot.tg.fail("sendMessage", status=429, retry_after=1)
        await bot.tg.send_text(bot.user, "你好")
        assert (await bot.tg.next_reply(bot.user)).text == "你好！"
        attempts = [call for call in bot.tg.calls if call.method == "sendMessage"]
        assert [call.status for call in attempts] == [429, 200]
        assert attempts[1].time - attempts[0].time >= 1
