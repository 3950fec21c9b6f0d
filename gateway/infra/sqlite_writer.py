"""Group commit: ONE writer thread owns the SQLite write connection and commits many requests at once.

Rule 1: the event loop never blocks on the database: a write request is a function of the write connection,
        queued together with an asyncio future; the writer thread resolves the future through
        ``loop.call_soon_threadsafe`` (one call per batch).
Rule 2: the writer drains up to ``batch_max`` queued requests and runs them in ONE transaction (one fsync);
        each request runs inside its own SAVEPOINT, so a request that fails is rolled back alone and the rest
        of the batch still commits.
Rule 3: no future is resolved before the COMMIT that makes its write durable has returned. If BEGIN or
        COMMIT fails, every request of the batch fails with ``Unavailable`` and none of it is on disk.
Rule 4: the queue is bounded: when it is full, ``submit`` raises ``Overloaded`` at once (backpressure
        instead of unbounded memory). It is a ``queue.SimpleQueue`` (C, one lock-free hand-off per request;
        ``queue.Queue``'s Python condition variables cost the loop thread ~10 us per put), bounded by its
        size at ``submit``.
Rule 5: requests commit in the order they were submitted, so whatever they number (ledger leaves, inbox
        cursors) is numbered in submission order.
Rule 6: ``close`` refuses new requests, lets the writer finish every queued one, then stops the thread and
        closes the connection. A caller that is cancelled while waiting does not undo its write.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from gateway.core.errors import GatewayError, Internal, Overloaded, Unavailable
from gateway.infra.sqlite_schema import connect_writer

T = TypeVar("T")

WriteOp = Callable[[sqlite3.Connection], Any]

# Requests waiting for the writer. At ~5-10k small commits/s per batch this is well under a second of work;
# beyond it callers get Overloaded (429) instead of the gateway growing memory and latency without bound.
WRITE_QUEUE_MAX = 4096

# Requests per transaction. Larger batches amortise the fsync further but raise the latency of the batch's
# first request; 256 keeps a batch of typical messages well under 10 ms of SQL work.
BATCH_MAX_DEFAULT = 256
BATCH_MAX_LIMIT = 10_000  # a sanity ceiling on the setting, not a tuning value


@dataclass(slots=True)
class _Request:
    op: WriteOp
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


_Outcome = tuple[asyncio.Future[Any], bool, Any]  # (future, succeeded, result or exception)


class GroupCommitWriter:
    """The single writer of one SQLite file. Build it with :meth:`start`."""

    def __init__(self, path: Path, *, batch_max: int, queue_max: int) -> None:
        if not 1 <= batch_max <= BATCH_MAX_LIMIT:
            raise Internal(f"batch_max must be in 1..{BATCH_MAX_LIMIT}", field="batch_max")
        if queue_max < 1:
            raise Internal("queue_max must be positive", field="queue_max")
        self._path = path
        self._batch_max = batch_max
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._queue_max = queue_max
        self._thread: threading.Thread | None = None
        self._closing = False
        # Successful COMMITs (one fsync each) and requests committed; written only by the writer thread.
        self.commits = 0
        self.committed_requests = 0

    @classmethod
    async def start(cls, path: Path, *, batch_max: int, queue_max: int) -> GroupCommitWriter:
        """Start the writer thread; it opens (and if needed creates) the database before this returns."""
        writer = cls(path, batch_max=batch_max, queue_max=queue_max)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        writer._thread = threading.Thread(target=writer._run, args=(loop, ready), name="cgw-sqlite-writer", daemon=True)
        writer._thread.start()
        try:
            await ready
        except BaseException:
            # Opening failed (the thread has ended) or we were cancelled: make sure the thread ends.
            writer._closing = True
            writer._queue.put_nowait(None)
            raise
        return writer

    @property
    def queued(self) -> int:
        """Requests waiting for the writer (approximate; for metrics and tests)."""
        return self._queue.qsize()

    async def submit(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in the next batch; return its result once the batch is durably committed."""
        if self._closing:
            raise Unavailable("sqlite store: closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._queue.qsize() >= self._queue_max:
            raise Overloaded(f"sqlite store: {self._queue_max} writes already queued")
        self._queue.put_nowait(_Request(op, loop, future))
        return cast(T, await future)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        self._queue.put_nowait(None)  # after every queued request: the writer finishes them first
        await asyncio.to_thread(thread.join)

    # -- the writer thread -------------------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = connect_writer(self._path)
        except Exception as exc:  # reported to open(); the thread ends
            self._closing = True
            _post(loop, [(ready, False, _translate(exc))])
            return
        _post(loop, [(ready, True, None)])
        try:
            stop = False
            while not stop:
                batch, stop = self._next_batch()
                if batch:
                    self._commit(conn, batch)
        finally:
            conn.close()

    def _next_batch(self) -> tuple[list[_Request], bool]:
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self._batch_max:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _commit(self, conn: sqlite3.Connection, batch: list[_Request]) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for request in batch:
                results.append(_run_one(conn, request.op))
            conn.execute("COMMIT")
        except Exception as exc:  # BEGIN/COMMIT/SAVEPOINT failed: nothing of this batch is durable
            _rollback(conn)
            self._settle(batch, [(False, _translate(exc)) for _ in batch])
            return
        self.commits += 1
        self.committed_requests += len(batch)
        self._settle(batch, results)

    @staticmethod
    def _settle(batch: list[_Request], results: list[tuple[bool, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
        for request, (ok, value) in zip(batch, results, strict=True):
            by_loop.setdefault(request.loop, []).append((request.future, ok, value))
        for loop, outcomes in by_loop.items():
            _post(loop, outcomes)


def _run_one(conn: sqlite3.Connection, op: WriteOp) -> tuple[bool, Any]:
    """One request inside its own SAVEPOINT; its failure is rolled back and returned, not raised."""
    conn.execute("SAVEPOINT request")
    try:
        value = op(conn)
    except Exception as exc:
        # If the error already ended the whole transaction (I/O error, disk full) this raises and the
        # batch fails as a whole, which is what we want.
        conn.execute("ROLLBACK TO request")
        conn.execute("RELEASE request")
        return False, _translate(exc)
    conn.execute("RELEASE request")
    return True, value


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass  # the connection already rolled back on its own


def _translate(exc: BaseException) -> GatewayError:
    """The one place where foreign exceptions of a store write become gateway errors."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, sqlite3.Error):
        error: GatewayError = Unavailable(f"sqlite store: {type(exc).__name__}: {exc}")
    else:
        error = Internal(f"store write failed: {type(exc).__name__}")
    error.__cause__ = exc
    return error


def _post(loop: asyncio.AbstractEventLoop, outcomes: list[_Outcome]) -> None:
    # RuntimeError: the loop is closed, so nobody is waiting any more; the writes themselves stand.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve, outcomes)


def _resolve(outcomes: list[_Outcome]) -> None:
    for future, ok, value in outcomes:
        if future.done():
            continue  # the caller was cancelled; its write (if it succeeded) is committed regardless
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
