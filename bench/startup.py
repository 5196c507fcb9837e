"""Start-up time, memory and answer latency of the bot, as a user meets them.

    .venv/bin/python bench/startup.py

1. First run on an empty home: `qabot chat` migrates, loads the bundled set, trains the first
   model, then answers: time from start to the first answer.
2. Second run on the same home (model exists): time to the first answer, and the resident
   memory of the bot once it has answered (its process and its model process).
3. Answer latency through the reply path (app.reply: features, model, logging), p50/p99.

With --model-dir D (a registry that `qabot train --model-dir D` wrote, e.g. the CLINC150
model), the first run is skipped and the bot starts with that model instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
QABOT = [sys.executable, "-m", "bot.cli", "chat"]
QUESTIONS = ["你好", "what can you do?", "你喜欢什么样的食物？", "tell me a joke", "怎么教你新东西"]


def first_answer(home: Path) -> tuple[float, int]:
    """Seconds from process start to the first answer line, and the bot's RSS then (with its
    model process)."""
    env = {**os.environ, "QABOT_HOME": str(home)}
    env.pop("TELEGRAM_BOT_TOKEN", None)
    started = time.perf_counter()
    process = subprocess.Popen(
        QABOT, cwd=ROOT, env=env, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdin and process.stdout
    process.stdin.write(QUESTIONS[0] + "\n")
    process.stdin.flush()
    answer = process.stdout.readline()
    elapsed = time.perf_counter() - started
    bot = psutil.Process(process.pid)
    rss = sum(p.memory_info().rss for p in [bot, *bot.children(recursive=True)])
    process.stdin.close()
    process.wait(timeout=60)
    assert answer.strip(), "no answer"
    return elapsed, rss


async def reply_latency(home: Path, rounds: int = 200) -> list[float]:
    from bot.app.app import App
    from bot.settings import Settings
    from bot.storage.store import ChatInfo, Store, UserInfo

    settings = Settings(QABOT_HOME=home, _env_file=None)
    store = Store(settings.database_url)
    app = App(settings, store)
    await app.start()
    chat, user = ChatInfo(1), UserInfo(1)
    latencies = []
    for i in range(rounds):
        question = f"{QUESTIONS[i % len(QUESTIONS)]} {i}"  # not an exact training question
        started = time.perf_counter()
        await app.answering.reply(chat, user, question)
        latencies.append((time.perf_counter() - started) * 1000)
    await app.stop()
    await store.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", type=Path, help="start with this model registry")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        cold = None
        if args.model_dir:
            shutil.copytree(args.model_dir, home / "models")
        else:
            cold, _ = first_answer(home)
        warm = [first_answer(home) for _ in range(3)]
        latencies = asyncio.run(reply_latency(home))
    warm_seconds = statistics.median(t for t, _ in warm)
    rss_mb = statistics.median(r for _, r in warm) / 2**20
    cuts = statistics.quantiles(latencies, n=100)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print("| measure | value |")
    print("| --- | --- |")
    if cold is not None:
        print(f"| first run, empty home → first answer (trains the first model) | {cold:.1f} s |")
    print(f"| start with an existing model → first answer (median of 3) | {warm_seconds:.2f} s |")
    print(f"| memory after answering, bot and model process (median of 3) | {rss_mb:.0f} MB |")
    print(f"| reply latency incl. logging, p50 / p99 ({len(latencies)} questions) "
          f"| {cuts[49]:.2f} / {cuts[98]:.2f} ms |")  # fmt: skip


if __name__ == "__main__":
    main()
