"""Load benchmark: qabot against a bare echo bot on the same Telegram stack, through a local
fake Bot API server.

    .venv/bin/python bench/load.py [--users 50] [--messages 20] [--send-rate 0]

Each bot runs as its own process (`qabot run`, and bench/echo_bot.py) polling the fake server
that this process serves. Fifty users send twenty messages each, twice over ("rounds"):

- closed loop: every user sends a message, waits for the answer, sends the next one;
- burst: all messages arrive at once, then the answers are awaited.

Each scenario runs five times per round, alternating between the bots (the machine's speed
drifts while it runs: medians of five move less than medians of three). It prints throughput
(the median of the runs), p50/p99 reply latency (over all runs) and CPU time per message (of
the bot's processes, qabot's model process included; median of the runs: the bot keeps one core
busy, so this is what throughput follows, and it is steadier than throughput on a shared
machine) for both bots, qabot's share of the echo bot's throughput (the target is at least 0.8),
the number of logged exchanges against the number of messages sent (every message must be
logged), and qabot's resident memory, its model process included, after each round (the target
is at most 300 MB, with no growth in the second round). The per-user rate limit is off
(QABOT_RATE_LIMIT=0) for both, and so is the limiter of outgoing calls (Telegram's 30 a second
would cap both bots alike) unless --send-rate is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app.app import BUNDLED_PARAPHRASES  # noqa: E402
from tests.fake_telegram import FakeTelegram, FakeUser  # noqa: E402

TOKEN = "987654:load-benchmark-token"
QABOT = [sys.executable, "-m", "bot.cli", "run"]
ECHO_BOT = [sys.executable, str(ROOT / "bench" / "echo_bot.py")]
FIRST_USER_ID = 10_000
WARM_UP_MESSAGES = 5  # per user
MAX_RSS_MB = 300
MIN_THROUGHPUT_RATIO = 0.8


@dataclass
class Result:
    """One bot, round and scenario, run `len(seconds)` times (interleaved with the other bot)."""

    bot: str
    round: int
    scenario: str
    messages: int  # per run
    seconds: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)  # the bot processes', per run

    @property
    def throughput(self) -> float:
        """Messages a second, the median over the runs (the machine may be busy meanwhile)."""
        return statistics.median(self.messages / seconds for seconds in self.seconds)

    @property
    def cpu_ms_per_message(self) -> float:
        """The bot's CPU time (all threads) per message, the median over the runs."""
        return statistics.median(1000 * cpu / self.messages for cpu in self.cpu_seconds)

    def percentile(self, q: int) -> float:
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[q - 1]


def questions() -> list[str]:
    """Paraphrases of the bundled questions (answered by the model) and a few it cannot know."""
    with BUNDLED_PARAPHRASES.open(encoding="utf-8") as file:
        known = [row["question"] for row in csv.DictReader(file)]
    return [*known, "what is the boiling point of tungsten", "量子色动力学是什么", "🙂"]


class BotProcess:
    """A bot process polling the fake server; stderr goes to a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path):
        self.name, self.command, self.env, self.log_path = name, command, env, log_path
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, tg: FakeTelegram, timeout: float) -> None:
        since = len(tg.calls)
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *self.command, cwd=ROOT, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log,
            )  # fmt: skip
        # Ready once it polls (qabot trains its first model before that).
        await tg.wait_for(lambda call: call.method == "getUpdates", timeout, since=since)

    def processes(self) -> list[psutil.Process]:
        """The bot's process and its children (qabot's model process)."""
        assert self.process is not None
        main = psutil.Process(self.process.pid)
        return [main, *main.children(recursive=True)]

    def rss_mb(self) -> float:
        return sum(process.memory_info().rss for process in self.processes()) / 2**20

    def cpu_seconds(self) -> float:
        """CPU time of the bot's processes (a child that exited meanwhile is not counted)."""
        return sum(sum(process.cpu_times()[:2]) for process in self.processes())

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)


async def closed_loop(
    tg: FakeTelegram, users: list[FakeUser], messages: int, texts: list[str]
) -> tuple[float, list[float]]:
    latencies: list[float] = []

    async def one_user(number: int, user: FakeUser) -> None:
        for i in range(messages):
            started = time.perf_counter()
            await tg.send_text(user, texts[(number * messages + i) % len(texts)])
            await tg.next_reply(user, timeout=120)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one_user(n, user) for n, user in enumerate(users)))
    return time.perf_counter() - started, latencies


async def burst(
    tg: FakeTelegram, users: list[FakeUser], messages: int, texts: list[str]
) -> tuple[float, list[float]]:
    sent_at: dict[int, list[float]] = {user.id: [] for user in users}
    latencies: list[float] = []

    async def collect(user: FakeUser) -> None:
        for i in range(messages):
            await tg.next_reply(user, timeout=300)
            latencies.append((time.perf_counter() - sent_at[user.id][i]) * 1000)

    collectors = [asyncio.create_task(collect(user)) for user in users]
    started = time.perf_counter()
    for i in range(messages):
        for number, user in enumerate(users):
            sent_at[user.id].append(time.perf_counter())
            await tg.send_text(user, texts[(number * messages + i) % len(texts)])
    await asyncio.gather(*collectors)
    return time.perf_counter() - started, latencies


def logged_exchanges(home: Path) -> int:
    with sqlite3.connect(home / "qabot.sqlite3") as db:
        return db.execute("select count(*) from exchanges").fetchone()[0]


@dataclass
class BotUnderLoad:
    """A bot process with its own fake Bot API server and users."""

    name: str
    tg: FakeTelegram
    process: BotProcess
    users: list[FakeUser]
    home: Path
    sent: int = 0


@contextlib.asynccontextmanager
async def started_bot(
    name: str, command: list[str], env: dict[str, str], users: int, work: Path
) -> AsyncIterator[BotUnderLoad]:
    async with FakeTelegram(token=TOKEN) as tg:
        env = {
            **env,
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE_URL": f"{tg.url}/bot",
            "TELEGRAM_FILE_BASE_URL": f"{tg.url}/file/bot",
        }
        process = BotProcess(name, command, env, work / f"{name}.log")
        print(f"starting {name} ...", file=sys.stderr)
        await process.start(tg, timeout=600)
        try:
            yield BotUnderLoad(
                name,
                tg,
                process,
                [tg.user(FIRST_USER_ID + n, f"user{n}") for n in range(users)],
                Path(env["QABOT_HOME"]),
            )
        finally:
            await process.stop()


async def run_load(
    echo: BotUnderLoad, qabot: BotUnderLoad, args: argparse.Namespace
) -> tuple[list[Result], list[float], list[tuple[int, int]]]:
    """Both rounds, each scenario run on one bot right after the other (so that whatever else
    the machine does weighs on both alike): results, qabot's RSS and (logged, sent) per round."""
    texts = questions()
    results: list[Result] = []
    rss: list[float] = []
    logged: list[tuple[int, int]] = []
    for bot in (echo, qabot):  # warm-up: connections, caches
        await closed_loop(bot.tg, bot.users, WARM_UP_MESSAGES, texts)
        bot.sent += WARM_UP_MESSAGES * len(bot.users)
    for round_number in (1, 2):
        for scenario, drive in (("closed loop", closed_loop), ("burst", burst)):
            by_bot = {
                bot.name: Result(bot.name, round_number, scenario, args.messages * len(bot.users))
                for bot in (echo, qabot)
            }
            for _ in range(args.repeats):
                for bot in (echo, qabot):
                    cpu_before = bot.process.cpu_seconds()
                    seconds, latencies = await drive(bot.tg, bot.users, args.messages, texts)
                    by_bot[bot.name].cpu_seconds.append(bot.process.cpu_seconds() - cpu_before)
                    bot.sent += len(latencies)
                    by_bot[bot.name].seconds.append(seconds)
                    by_bot[bot.name].latencies_ms.extend(latencies)
            results.extend(by_bot.values())
        rss.append(qabot.process.rss_mb())
        if not args.database_url:
            logged.append((logged_exchanges(qabot.home), qabot.sent))
    return results, rss, logged


def print_report(
    results: list[Result], rss: list[float], logged: list[tuple[int, int]], locked: int
) -> bool:
    print(f"{'round':>5}  {'scenario':<12} {'bot':<6} {'messages':>8} {'runs':>4} "
          f"{'msg/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms/msg':>10}")  # fmt: skip
    for result in sorted(results, key=lambda r: (r.round, r.scenario, r.bot)):
        print(
            f"{result.round:>5}  {result.scenario:<12} {result.bot:<6} {result.messages:>8} "
            f"{len(result.seconds):>4} {result.throughput:>7.1f} {result.percentile(50):>8.1f} "
            f"{result.percentile(99):>8.1f} {result.cpu_ms_per_message:>10.2f}"
        )
    ok = True
    print()
    for round_number in (1, 2):
        for scenario in ("closed loop", "burst"):
            by_bot = {
                r.bot: r for r in results if r.round == round_number and r.scenario == scenario
            }
            ratio = by_bot["qabot"].throughput / by_bot["echo"].throughput
            ok &= ratio >= MIN_THROUGHPUT_RATIO
            print(
                f"round {round_number} {scenario:<12} qabot/echo throughput: {ratio:.3f} "
                f"(target ≥ {MIN_THROUGHPUT_RATIO})"
            )
    for round_number, (rows, sent) in enumerate(logged, 1):
        ok &= rows == sent
        print(f"round {round_number}: {rows} exchanges logged of {sent} messages sent")
    growth = rss[1] - rss[0]
    ok &= max(rss) <= MAX_RSS_MB and growth < 10
    print(
        f"qabot resident memory: {rss[0]:.0f} MB after round 1, {rss[1]:.0f} MB after round 2 "
        f"(growth {growth:+.1f} MB; target ≤ {MAX_RSS_MB} MB, no growth)"
    )
    ok &= locked == 0
    print(f'"database is locked" in qabot\'s log: {locked} times')
    print("PASS" if ok else "FAIL: a target was missed")
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--messages", type=int, default=20, help="per user and scenario")
    parser.add_argument(
        "--repeats", type=int, default=5, help="runs of each scenario per round (median taken)"
    )
    parser.add_argument(
        "--send-rate", default="0", help="QABOT_SEND_RATE for both bots (0: no outgoing limiter)"
    )
    parser.add_argument("--database-url", help="QABOT_DATABASE_URL for qabot (default: SQLite)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qabot-load-") as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "QABOT_HOME": str(work / "home"),
            "QABOT_RATE_LIMIT": "0",
            "QABOT_SEND_RATE": args.send_rate,
            "QABOT_ADMIN_IDS": "",
        }
        env.pop("TELEGRAM_WEBHOOK_URL", None)
        env.pop("QABOT_DATABASE_URL", None)
        if args.database_url:
            env["QABOT_DATABASE_URL"] = args.database_url
        async with (
            started_bot("echo", ECHO_BOT, env, args.users, work) as echo,
            started_bot("qabot", QABOT, env, args.users, work) as qabot,
        ):
            results, rss, logged = await run_load(echo, qabot, args)
        locked = (work / "qabot.log").read_text(errors="replace").count("database is locked")
    return 0 if print_report(results, rss, logged, locked) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
