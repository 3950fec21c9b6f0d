"""A stage: one synchronous pipeline step, run for every submission that reached it in one loop iteration, together.

Rule 1: ``await stage.run(...)`` queues the call; the first call of an event-loop iteration schedules the stage's
        drain (``call_soon``), which runs every queued call back to back, in arrival order, and hands each caller
        its own result or exception.
Rule 2: why: the pipeline's steps cost 1.5 - 2 times as much interleaved with each other and with the TLS and
        HTTP work of other requests as in a loop of their own (CPU caches: the interpreter's code for the step,
        OpenSSL's P-256 tables). Run back to back, the second verification of a drain finds them still cached.
        ``bench/README.md`` has the figures.
Rule 3: a call whose caller was cancelled before the drain is skipped, so only steps without side effects are
        staged (verification, validation). Exceptions that are not ``Exception`` are not caught.
Rule 4: a stage follows the running loop: when a call comes from another loop than the one that was to drain
        (tests run several loops, one after another), the queue starts again on the new loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class Stage(Generic[P, R]):
    def __init__(self, step: Callable[P, R]) -> None:
        self._step = step
        self._queued: list[tuple[Any, Any, asyncio.Future[R]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._scheduled = False

    async def run(self, *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # Rule 4
            self._loop, self._queued, self._scheduled = loop, [], False
        future: asyncio.Future[R] = loop.create_future()
        self._queued.append((args, kwargs, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._drain)
        return await future

    def _drain(self) -> None:
        self._scheduled = False
        queued, self._queued = self._queued, []
        for args, kwargs, future in queued:
            if future.done():
                continue  # the caller was cancelled (Rule 3)
            try:
                result = self._step(*args, **kwargs)
            except Exception as exc:  # the caller's own error, raised where it awaits
                future.set_exception(exc)
            else:
                future.set_result(result)
