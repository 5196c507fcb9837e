"""The /stats chart is drawn off the event loop, so drawing must be safe in several threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

from bot.app.charts import stats_chart


def test_charts_drawn_in_parallel_threads_are_all_whole() -> None:
    daily = [(date(2026, 11, 1) + timedelta(days=i), 40 + i, i % 7) for i in range(30)]
    alone = stats_chart(daily)
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda _: stats_chart(daily), range(4)))
    assert alone.startswith(b"\x89PNG\r\n\x1a\n")
    assert together == [alone] * 4
