"""/stats counts in the database: the bot's own work does not grow with the exchanges."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from bot.settings import PROJECT_ROOT, Settings
from bot.storage.learning_records import LearningRecords
from bot.storage.store import Store, upgrade_database
from tests.complexity import python_lines_run
from tests.factories import record


async def log_exchanges(url: str, count: int) -> None:
    store = Store(url)
    # All on one day, two days ago: the chart has one day either way.
    start = (datetime.now(UTC) - timedelta(days=2)).replace(hour=1, minute=0)
    try:
        await store.log_exchanges([
            record(
                user_id=n % 50, question=f"question {n % 7}", fallback=n % 3 == 0,
                created_at=start + timedelta(seconds=n),
            )
            for n in range(count)
        ])  # fmt: skip
    finally:
        await store.close()


async def stats(url: str) -> dict:
    store = Store(url)
    try:
        return await LearningRecords(store).stats()
    finally:
        await store.close()


def test_stats_work_does_not_grow_with_the_exchanges(settings: Settings) -> None:
    upgrade_database(settings.database_url)
    url, work, figures = settings.database_url, [], []
    for count in (300, 2_700):  # 300, then 3,000 in all
        asyncio.run(log_exchanges(url, count))
        asyncio.run(stats(url))  # the first call of a kind imports and compiles
        work.append(
            python_lines_run(lambda: figures.append(asyncio.run(stats(url))), PROJECT_ROOT / "bot")
        )
    assert work[1] == work[0]
    assert figures[-1]["exchanges"] == 3_000
    assert figures[-1]["fallback_rate"] == 1_000 / 3_000
    assert [(n, f) for _, n, f in figures[-1]["daily"]] == [(3_000, 1_000)]
    # Fallbacks: n = 0, 3, 6, ... of each batch; their questions cycle through seven texts.
    busiest = Counter(n % 7 for count in (300, 2_700) for n in range(0, count, 3))
    shown = figures[-1]["busiest_unanswered"]
    assert [n for _, n in shown] == sorted(busiest.values(), reverse=True)[:5]
    assert all(busiest[int(question.split()[-1])] == n for question, n in shown)
