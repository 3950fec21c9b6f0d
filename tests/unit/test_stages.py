"""Stages (gateway/exchange/stages.py): the calls of one loop iteration run back to back, each caller gets its own
answer."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.errors import Invalid
from gateway.exchange.stages import Stage


def test_calls_of_one_iteration_run_together_in_order_with_their_own_results_and_errors() -> None:
    ran: list[int] = []

    def step(n: int) -> int:
        ran.append(n)
        if n == 3:
            raise Invalid("three is refused", field="n")
        return n * 10

    stage = Stage(step)
    marks: list[str] = []

    async def caller(n: int) -> int:
        marks.append(f"queued {n}")
        return await stage.run(n)

    async def main() -> list[int | BaseException]:
        calls = [asyncio.create_task(caller(n)) for n in range(1, 6)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    assert ran == [1, 2, 3, 4, 5]  # one drain, in arrival order, after every caller had queued
    assert marks == [f"queued {n}" for n in range(1, 6)]
    assert results[:2] == [10, 20] and results[3:] == [40, 50]
    assert isinstance(results[2], Invalid) and results[2].field == "n"


def test_a_cancelled_caller_is_skipped_and_a_later_loop_gets_its_own_queue() -> None:
    ran: list[str] = []
    stage = Stage(ran.append)

    async def first_loop() -> None:
        kept = asyncio.create_task(stage.run("kept"))
        dropped = asyncio.create_task(stage.run("dropped"))
        await asyncio.sleep(0)  # both queued; the drain runs in the next iteration
        dropped.cancel()
        await kept
        with pytest.raises(asyncio.CancelledError):
            await dropped

    asyncio.run(first_loop())
    assert ran == ["kept"]

    loop = asyncio.new_event_loop()  # a loop that stops before its drain ran ...
    loop.set_exception_handler(lambda _loop, _context: None)  # its stranded task is reported when collected
    stranded = loop.create_task(stage.run("stranded"))
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.close()
    assert not stranded.done()

    async def later() -> None:  # ... leaves nothing behind for the next loop
        await stage.run("later")

    asyncio.run(later())
    assert ran == ["kept", "later"]
