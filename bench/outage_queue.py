"""Memory of the exchanges kept while the database is unreachable.

    .venv/bin/python bench/outage_queue.py [--messages 100000] [--chars 4096]

Queues that many exchanges, each question that long (CJK: 2 bytes a character in memory),
into an ExchangeWriter whose store always fails, once bounded by count only (as before
QABOT_OUTAGE_QUEUE_MB) and once with the default byte bound; prints, for each, how many were
kept and dropped, the writer's own estimate and the memory tracemalloc saw.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.settings import Settings  # noqa: E402
from bot.storage.exchange_writer import ExchangeWriter  # noqa: E402
from bot.storage.store import ChatInfo, ExchangeRecord, UserInfo  # noqa: E402


class UnreachableStore:
    async def log_exchanges(self, records: object) -> list[int]:
        raise OSError("the database is unreachable")


async def queue_during_outage(messages: int, chars: int, max_bytes: int) -> str:
    writer = ExchangeWriter(UnreachableStore(), retry_seconds=3600, max_pending_bytes=max_bytes)  # type: ignore[arg-type]
    await writer.start()
    tracemalloc.start()
    for i in range(messages):
        question = f"{i:07d}" + "长" * (chars - 7)
        user = UserInfo(i, f"user{i}", "Name", "zh-hans")
        await writer.write(
            ExchangeRecord(ChatInfo(i), user, question, "答", None, 0.0, True, None, 1.0)
        )
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    figures = (
        f"kept {writer.pending:,}, dropped {writer.dropped:,}, estimated "
        f"{writer.pending_bytes / 2**20:,.0f} MB, traced {traced / 2**20:,.0f} MB"
    )
    await writer.stop(timeout=0)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--chars", type=int, default=4096)
    args = parser.parse_args()
    default_mb = Settings.model_fields["outage_queue_mb"].default
    logging.disable(logging.ERROR)  # the outage's own log lines
    for label, max_bytes in (("count only", 2**62), (f"{default_mb} MB bound", default_mb * 2**20)):
        print(
            f"{label:>14}: {asyncio.run(queue_during_outage(args.messages, args.chars, max_bytes))}"
        )


if __name__ == "__main__":
    main()
