"""The async batcher in front of the batched intake: concurrent callers share one batch,
each gets its own result, a failure reaches every caller of that batch only."""

from __future__ import annotations

import asyncio
import threading

import pytest

from huitong.ingest.batcher import Batcher


def test_concurrent_items_form_one_batch_and_results_keep_their_order():
    calls: list[list[int]] = []

    def run(items: list[int]) -> list[int]:
        calls.append(items)
        return [i * 10 for i in items]

    async def main() -> list[int]:
        batcher: Batcher[int, int] = Batcher(run, max_batch=8, max_wait=0.05)
        try:
            return await asyncio.gather(*(batcher.submit(i) for i in range(5)))
        finally:
            await batcher.close()

    assert asyncio.run(main()) == [0, 10, 20, 30, 40]
    assert calls == [[0, 1, 2, 3, 4]]


@pytest.mark.parametrize(("max_batch", "sizes"), [(2, [2, 2, 1]), (1, [1, 1, 1, 1, 1])])
def test_batches_never_exceed_max_batch(max_batch, sizes):
    calls: list[int] = []

    def run(items: list[int]) -> list[int]:
        calls.append(len(items))
        return items

    async def main() -> None:
        batcher: Batcher[int, int] = Batcher(run, max_batch=max_batch, max_wait=0.05)
        await asyncio.gather(*(batcher.submit(i) for i in range(5)))
        await batcher.close()

    asyncio.run(main())
    assert calls == sizes


def test_items_arriving_while_a_batch_runs_form_the_next_batch():
    gate = threading.Event()
    calls: list[list[str]] = []

    def run(items: list[str]) -> list[str]:
        calls.append(items)
        if items == ["a"]:
            gate.wait(5)
        return items

    async def main() -> None:
        batcher: Batcher[str, str] = Batcher(run, max_batch=8, max_wait=0)
        first = asyncio.create_task(batcher.submit("a"))
        await asyncio.sleep(0.05)  # "a" is running now
        rest = [asyncio.create_task(batcher.submit(x)) for x in "bcd"]
        await asyncio.sleep(0.05)
        gate.set()
        assert await first == "a"
        assert [await t for t in rest] == ["b", "c", "d"]
        await batcher.close()

    asyncio.run(main())
    assert calls == [["a"], ["b", "c", "d"]]


def test_a_failing_batch_fails_its_callers_and_the_next_batch_runs():
    def run(items: list[int]) -> list[int]:
        if 0 in items:
            raise RuntimeError("boom")
        return items

    async def main() -> None:
        batcher: Batcher[int, int] = Batcher(run, max_batch=8, max_wait=0.02)
        outcomes = await asyncio.gather(batcher.submit(0), batcher.submit(1),
                                        return_exceptions=True)
        assert all(isinstance(o, RuntimeError) for o in outcomes)
        assert await batcher.submit(2) == 2
        await batcher.close()

    asyncio.run(main())
