"""Group items that arrive together (from many connections) into one call of a batch
function run in a worker thread: the MLLP listener's messages become one
``IngestService.receive_hl7v2_batch`` call, so a group costs two commits instead of two per
message.

One batch runs at a time. While it runs, new items queue up and form the next batch by
themselves, so under load batches grow to ``max_batch`` and an idle engine answers a lone
message after at most ``max_wait`` seconds of waiting for company. Each caller awaits its
own result; the ACK it carries is sent only after the batch function returned, i.e. after
the commits it vouches for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Batcher"]

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """``await batcher.submit(item)`` → ``run([... item ...])[its position]``.

    ``run`` must return one result per item, in order; if it raises, every caller of that
    batch gets the exception (the MLLP listener then closes those connections and their
    senders resend, as for any handler failure).
    """

    def __init__(
        self,
        run: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 32,
        max_wait: float = 0.002,
    ) -> None:
        self._run = run
        self._max_batch = max(1, max_batch)
        self._max_wait = max(0.0, max_wait)
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._arrived: asyncio.Event | None = None
        self._full: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self.batches = 0  # counters for tests and metrics
        self.items = 0

    async def submit(self, item: T) -> R:
        if self._worker is None:
            self._arrived, self._full = asyncio.Event(), asyncio.Event()
            self._worker = asyncio.create_task(self._loop())
        assert self._arrived is not None and self._full is not None
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._arrived.set()
        if len(self._queue) >= self._max_batch:
            self._full.set()
        return await future

    async def _loop(self) -> None:
        assert self._arrived is not None and self._full is not None
        while True:
            await self._arrived.wait()
            if len(self._queue) < self._max_batch and self._max_wait:
                # A few ms for the other connections' messages to join this batch.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._max_wait)
            batch = self._queue[: self._max_batch]
            del self._queue[: self._max_batch]
            if len(self._queue) < self._max_batch:
                self._full.clear()
            if not self._queue:
                self._arrived.clear()
            batch = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if not batch:
                continue
            self.batches += 1
            self.items += len(batch)
            try:
                results = await asyncio.to_thread(self._run, [item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError("batch function returned the wrong number of results")
            except Exception as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def close(self) -> None:
        """Stop the worker; callers still waiting get CancelledError (their senders
        resend what was not acknowledged)."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for _, fut in self._queue:
            fut.cancel()
        self._queue.clear()
