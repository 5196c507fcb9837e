"""Writes logged exchanges to the store in batches (group commit), and keeps them in a bounded
queue while the database is unreachable, so the bot keeps answering and loses nothing it can
hold."""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.messages import CatalogError
from bot.storage.store import ExchangeRecord, Store, is_outage

log = logging.getLogger(__name__)

# Memory a queued exchange takes besides its question and answer (the record, its chat and
# user, the caller's future): 1.6 kB with empty texts, measured with tracemalloc.
RECORD_OVERHEAD_BYTES = 1_500


class ExchangesNotWrittenError(CatalogError, RuntimeError):
    """Exchanges are still waiting for the database (see ExchangeWriter.flush)."""

    def __init__(self, count: int, *, outage: bool) -> None:
        self.count = count
        why = "outage" if outage else "slow"
        super().__init__(f"exchanges_not_written_{why}", count=count)


def _record_bytes(record: ExchangeRecord) -> int:
    return sys.getsizeof(record.question) + sys.getsizeof(record.answer) + RECORD_OVERHEAD_BYTES


@dataclass
class _Pending:
    record: ExchangeRecord
    deadline: float  # loop time after which the caller is answered without waiting for it
    size: int  # bytes it holds in memory (see _record_bytes)
    written: asyncio.Future[int | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ExchangeWriter:
    """One background task writes whatever has queued up since its last commit, in one
    transaction: under load many exchanges share a commit, and each caller still learns when
    its own exchange is durable.

    A commit has a fixed cost (0.3-1 ms of CPU, whatever its size), so while other messages
    are being handled (`busy`), commits start at most every `commit_interval` seconds (the
    exchanges meanwhile join the next one); otherwise an exchange is written at once. Under
    load, the 30 ms this adds to a reply at most is small beside Telegram's own round trips.
    """

    def __init__(
        self,
        store: Store,
        *,
        max_batch: int = 500,
        max_pending: int = 100_000,
        max_pending_bytes: int = 256 * 2**20,
        retry_seconds: float = 1.0,
        max_wait_seconds: float = 5.0,
        commit_interval: float = 0.03,
        busy: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        # The queue kept during an outage holds at most this many exchanges and bytes: when it
        # is full, the oldest are dropped (and counted) to make room.
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self._pending_bytes = 0
        self._dropped_while_full = 0  # since the queue last had room (logged then)
        self.retry_seconds = retry_seconds
        # A database that hangs (rather than fails) must not hold replies up for longer.
        self.max_wait_seconds = max_wait_seconds
        self.commit_interval = commit_interval
        self.busy = busy
        self._last_commit_started = float("-inf")
        self.dropped = 0
        self._queue: deque[_Pending] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._in_flight: list[_Pending] = []
        self._failing_since_batch = False
        self._overdue_check: asyncio.TimerHandle | None = None

    @property
    def pending(self) -> int:
        """Exchanges not yet in the database (queued or being written)."""
        return len(self._queue) + len(self._in_flight)

    @property
    def pending_bytes(self) -> int:
        """Memory the exchanges not yet in the database take (estimated)."""
        return self._pending_bytes

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="exchange-writer")

    async def stop(self, timeout: float = 10.0) -> None:
        """Flush what is queued (within `timeout`), then stop."""
        if self._task is None:
            return
        self._wakeup.set()
        try:
            await self.flush(timeout)
        except ExchangesNotWrittenError as error:
            log.error("stopping with %s", error)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None
        if self._overdue_check is not None:
            self._overdue_check.cancel()
            self._overdue_check = None

    async def write(self, record: ExchangeRecord) -> int | None:
        """Queue an exchange and wait until it is committed; returns its id, or None when the
        database failed or did not answer within `max_wait_seconds` (the exchange then stays
        queued and is written once it is back)."""
        loop = asyncio.get_running_loop()
        item = _Pending(
            record, deadline=loop.time() + self.max_wait_seconds, size=_record_bytes(record)
        )
        self._make_room(item.size)
        self._queue.append(item)
        self._pending_bytes += item.size
        if self._failing_since_batch:
            # Known outage: don't hold the reply up; the record is written once it is back.
            item.written.set_result(None)
        elif self._overdue_check is None:
            self._overdue_check = loop.call_at(item.deadline, self._release_overdue)
        self._wakeup.set()
        # One timer for all callers rather than asyncio.wait_for per caller (25 µs each). A
        # cancelled caller cancels its future only: the exchange is still written.
        return await item.written

    def _make_room(self, size: int) -> None:
        """Drop the oldest queued exchanges until one of `size` bytes fits in the bounds."""
        while self._queue and (
            self.pending >= self.max_pending or self._pending_bytes + size > self.max_pending_bytes
        ):
            oldest = self._queue.popleft()
            self._finish(oldest, None)
            self.dropped += 1
            if not self._dropped_while_full:
                log.error(
                    "exchange queue full (%d exchanges, %d MB): dropping the oldest unwritten "
                    "exchanges until the database is back",
                    self.pending + 1,
                    (self._pending_bytes + oldest.size) // 2**20,
                )
            self._dropped_while_full += 1

    def _release_overdue(self) -> None:
        """Answer (None) the callers whose exchange is still not written after
        `max_wait_seconds`: a database that hangs rather than fails. Their exchanges stay
        queued; the check runs again at the next caller's deadline."""
        self._overdue_check = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        released = 0
        # Oldest first: what is being written, then the queue, in the order of arrival.
        for pending in itertools.chain(self._in_flight, self._queue):
            if pending.written.done():
                continue
            if pending.deadline > now:
                self._overdue_check = loop.call_at(pending.deadline, self._release_overdue)
                break
            pending.written.set_result(None)
            released += 1
        if released:
            log.warning(
                "the database is slow: answered %d messages before their exchanges were written",
                released,
            )

    async def flush(self, timeout: float | None = None) -> None:
        """Wait until everything queued so far is written; after `timeout` seconds, raise
        ExchangesNotWrittenError saying how many are not and why."""
        try:
            async with asyncio.timeout(timeout):
                while self.pending:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            raise ExchangesNotWrittenError(self.pending, outage=self._failing_since_batch) from None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                wait = self._last_commit_started + self.commit_interval - loop.time()
                if wait > 0 and len(self._queue) < self.max_batch and self.busy():
                    await asyncio.sleep(wait)
                self._last_commit_started = loop.time()
                count = min(self.max_batch, len(self._queue))
                self._in_flight = [self._queue.popleft() for _ in range(count)]
                try:
                    await self._write_in_flight()
                except Exception as error:  # noqa: BLE001 - any database failure: keep and retry
                    self._queue.extendleft(reversed(self._in_flight))
                    self._in_flight = []
                    self._on_failure(error)
                    await asyncio.sleep(self.retry_seconds)
                    continue
                if self._failing_since_batch:
                    self._failing_since_batch = False
                    log.warning(
                        "database is back: wrote the queued exchanges (%d still queued, %d "
                        "dropped while the queue was full)",
                        self.pending,
                        self._dropped_while_full,
                    )
                    self._dropped_while_full = 0

    async def _write_in_flight(self) -> None:
        try:
            ids = await self.store.log_exchanges([p.record for p in self._in_flight])
        except Exception as error:
            if is_outage(error):
                raise
            # Some record cannot be written: that is no outage, and retrying the batch would
            # block the queue forever. Write one by one; drop only what fails alone.
            await self._write_one_by_one()
            return
        for pending, exchange_id in zip(self._in_flight, ids, strict=True):
            self._finish(pending, exchange_id)
        self._in_flight = []

    async def _write_one_by_one(self) -> None:
        while self._in_flight:
            pending = self._in_flight[0]
            try:
                [exchange_id] = await self.store.log_exchanges([pending.record])
            except Exception as error:
                if is_outage(error):
                    raise
                exchange_id = None
                self.dropped += 1
                # The error's text may quote the record's: its type alone is logged.
                log.error(
                    "could not write an exchange of chat %s (%s): dropped it",
                    pending.record.chat.id,
                    type(getattr(error, "orig", None) or error).__name__,
                )
            self._in_flight.pop(0)
            self._finish(pending, exchange_id)

    def _finish(self, pending: _Pending, exchange_id: int | None) -> None:
        """The exchange is written (its id) or dropped (None): it leaves memory."""
        self._pending_bytes -= pending.size
        if not pending.written.done():
            pending.written.set_result(exchange_id)

    def _on_failure(self, error: Exception) -> None:
        if not self._failing_since_batch:
            self._failing_since_batch = True
            log.error(
                "database unavailable (%s): answering anyway and keeping %d exchanges queued "
                "until it is back",
                type(error).__name__,
                self.pending,
            )
        # Callers learn that their exchange is not durable yet; the record itself stays queued.
        for pending in self._queue:
            if not pending.written.done():
                pending.written.set_result(None)
