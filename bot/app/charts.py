"""The /stats chart, drawn in a child process (`python -m bot.app.charts`): importing matplotlib
and drawing hold the GIL for up to a third of a second at a time (measured), which from a
worker thread would stall the bot's event loop all the same."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections.abc import Sequence
from datetime import date

from bot.serving.environment import child_environment
from bot.settings import PROJECT_ROOT


async def draw_stats_chart(daily: Sequence[tuple[date, int, int]]) -> bytes:
    """stats_chart(daily), drawn by a child process."""
    env = child_environment()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.app.charts",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip
    days = json.dumps([(day.isoformat(), n, fallbacks) for day, n, fallbacks in daily])
    png, errors = await process.communicate(days.encode())
    if process.returncode != 0:
        raise RuntimeError(f"drawing the /stats chart failed: {errors.decode()[-500:]}")
    return png


def stats_chart(daily: Sequence[tuple[date, int, int]]) -> bytes:
    """PNG: daily question volume (bars) and fallback rate (line). Drawn on an Agg canvas of
    its own, without pyplot's global state, so it is safe in a worker thread.

    Its labels are English whatever the admin's language: matplotlib's bundled font (DejaVu)
    has no CJK glyphs, so Chinese labels would be drawn as empty boxes, and the image ships
    no font of its own. The figures an admin reads come in the caption sent with the chart,
    which is in their language (bot/telegram/learning.py: stats)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    volume_axis = figure.subplots()
    days = [d for d, _, _ in daily]
    # matplotlib plots dates (through its unit converters), but its stubs type x as numbers.
    volume_axis.bar(
        days,  # type: ignore[arg-type]
        [n for _, n, _ in daily],
        color="#8fb3de",
        label="questions",
    )
    volume_axis.set_ylabel("questions a day")
    rate_axis = volume_axis.twinx()
    rate_axis.plot(
        days,  # type: ignore[arg-type]
        [f / n if n else 0 for _, n, f in daily],
        color="#d9534f",
        marker="o",
    )
    rate_axis.set_ylabel("fallback rate")
    rate_axis.set_ylim(0, 1)
    volume_axis.set_title("qabot: daily questions and fallback rate")
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def main() -> None:
    """Read the daily series as JSON on stdin, write the PNG on stdout."""
    daily = [(date.fromisoformat(day), n, f) for day, n, f in json.load(sys.stdin)]
    sys.stdout.buffer.write(stats_chart(daily))


if __name__ == "__main__":
    main()
