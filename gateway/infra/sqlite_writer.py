"""Group commit: ONE write connection commits many requests at once; only its waits leave the event loop.

Rule 1: the event loop never waits on the database. The statements of a write request are a function of the
        write connection that runs ON the loop, between a ``BEGIN IMMEDIATE`` and a ``COMMIT`` that run in the
        writer's own thread: those two are where SQLite waits (for another process's write lock, for the WAL
        fsync and the checkpoint). Inside the transaction the statements only touch pages in the connection's
        cache (sized by ``CACHE_KIB`` so that a full batch never spills to disk before the COMMIT).
        A request's statements take microseconds; handing each one to a thread made the loop and the writer
        trade the GIL several times per message, which cost more than the statements themselves.
Rule 2: one batch is every request queued when its transaction has begun, up to ``batch_max``, in ONE
        transaction (one fsync); each request runs inside its own SAVEPOINT, so a request that fails is rolled
        back alone and the rest of the batch still commits. Requests that arrive while a COMMIT is in flight
        form the next batch.
Rule 3: no future is resolved before the COMMIT that makes its write durable has returned. If BEGIN or
        COMMIT fails, every request of the batch fails with ``Unavailable`` and none of it is on disk.
Rule 4: the queue is bounded: when it is full, ``submit`` raises ``Overloaded`` at once (backpressure
        instead of unbounded memory).
Rule 5: requests commit in the order they were submitted, so whatever they number (ledger leaves, inbox
        cursors) is numbered in submission order.
Rule 6: ``close`` refuses new requests, lets every queued one commit, then closes the connection and stops the
        thread. A caller that is cancelled while waiting does not undo its write: its request still runs.
Rule 7: the connection is used by one side at a time: the loop runs statements only while no BEGIN or
        COMMIT is in the thread, and the thread runs nothing else.
Rule 8: the WAL is checkpointed by the writer's own connection (a checkpoint that runs beside a writer that
        never pauses, tried: PASSIVE from another connection, never finds the WAL fully copied, so SQLite never
        starts it again from the beginning and it grows without bound: 300 MB after 22,000 messages). At close
        the last checkpoint truncates it.
Rule 9: under load the writer thread is handed one call per batch, not two: when requests are already queued
        as a COMMIT returns, the same call begins their transaction (``_commit_and_begin``), exactly as the
        next batch would have at once. Each hand-off wakes the thread, which preempts the loop on its core;
        at a few requests per batch (the fsync is short) that cost as much as the requests' statements. That
        BEGIN does not wait for another process's write lock (the COMMIT's callers would wait with it): busy,
        or failing, it is left to the next batch's own BEGIN, which waits or reports the error (Rule 3).
Rule 10: the checkpoint runs after the batch whose COMMIT made it due has been answered, as a hand-off of its
        own (a checkpoint inside a COMMIT, SQLite's ``wal_autocheckpoint``, made that batch's callers wait for
        it: 10 - 35 ms, 20 - 30 times per 10,000 messages). It is due after so many commits or so many
        requests, whichever comes first, both aimed after each checkpoint at :data:`CHECKPOINT_FRAMES` of WAL
        from the frames it found (a commit costs pages of its own, a request pages of its own: when batches
        grow, the request count says it is due; when they shrink, the commit count); the next batch begins
        after it. SQLite's own checkpoint stays as a backstop at :data:`BACKSTOP_FRAMES`. A checkpoint that
        fails fails no request (they are durable already): the next one, or the backstop, copies what it left.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from gateway.core.errors import GatewayError, Internal, Overloaded, Unavailable
from gateway.infra.sqlite_schema import BUSY_TIMEOUT_MS, connect_writer, sqlite_unavailable

T = TypeVar("T")

WriteOp = Callable[[sqlite3.Connection], Any]

# Requests waiting for the writer. At ~5-10k small commits/s per batch this is well under a second of work;
# beyond it callers get Overloaded (429) instead of the gateway growing memory and latency without bound.
WRITE_QUEUE_MAX = 4096

# Requests per transaction. Larger batches amortise the fsync further but raise the latency of the batch's
# first request; 256 keeps a batch of typical messages well under 10 ms of SQL work.
BATCH_MAX_DEFAULT = 256
BATCH_MAX_LIMIT = 10_000  # a sanity ceiling on the setting, not a tuning value

# The write connection's page cache (KiB): a batch of 256 messages with their evidence, receipts, ledger
# leaves and index pages dirties ~3-4 MB; SQLite writes dirty pages to the WAL early only when the cache is
# full, which would be file I/O on the event loop (Rule 1).
CACHE_KIB = 64 * 1024

# Rule 10: the WAL size (4 KiB pages) each checkpoint aims at (SQLite's default autocheckpoint, ~4 MB), and the
# size at which SQLite checkpoints inside a COMMIT should the writer's own checkpoints fall behind.
CHECKPOINT_FRAMES = 1000
BACKSTOP_FRAMES = 8 * CHECKPOINT_FRAMES
CHECKPOINT_AIM_FIRST = (8, 256)  # (commits, requests) before the first checkpoint has measured the WAL's growth
CHECKPOINT_AIM_MAX = (4096, 1_000_000)
_NOTHING_QUEUED: deque[Any] = deque()  # what _commit_and_begin sees when a checkpoint comes first (Rule 10)


@dataclass(slots=True)
class _Request:
    op: WriteOp
    future: asyncio.Future[Any]


class GroupCommitWriter:
    """The single writer of one SQLite file. Build it with :meth:`start`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        thread: ThreadPoolExecutor,
        *,
        batch_max: int,
        queue_max: int,
    ) -> None:
        self._conn = conn
        self._thread = thread
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._queue: deque[_Request] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._began = False  # a transaction is open for the next batch (Rule 9)
        # Successful COMMITs (one fsync each), requests committed, and calls handed to the thread (Rule 9).
        self.commits = 0
        self.committed_requests = 0
        self.handoffs = 0
        self.checkpoints = 0  # Rule 10: run (and failed) after a batch was answered
        self.checkpoint_failures = 0
        self._checkpoint_aim = CHECKPOINT_AIM_FIRST  # (commits, requests): due when either is reached
        self._since_checkpoint = (0, 0)

    @classmethod
    async def start(cls, path: Path, *, batch_max: int, queue_max: int) -> GroupCommitWriter:
        """Open (and if needed create) the database in the writer thread; fails with ``Unavailable``."""
        if not 1 <= batch_max <= BATCH_MAX_LIMIT:
            raise Internal(f"batch_max must be in 1..{BATCH_MAX_LIMIT}", field="batch_max")
        if queue_max < 1:
            raise Internal("queue_max must be positive", field="queue_max")
        thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cgw-sqlite-writer")
        try:
            conn = await asyncio.get_running_loop().run_in_executor(thread, _open, path)
        except BaseException as exc:
            thread.shutdown(wait=False)
            if not isinstance(exc, Exception) or isinstance(exc, GatewayError):
                raise
            raise _translate(exc) from exc
        return cls(conn, thread, batch_max=batch_max, queue_max=queue_max)

    @property
    def queued(self) -> int:
        """Requests waiting for their transaction (for metrics and tests)."""
        return len(self._queue)

    async def submit(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in the next batch; return its result once the batch is durably committed."""
        if self._closing:
            raise Unavailable("sqlite store: closed")
        if len(self._queue) >= self._queue_max:
            raise Overloaded(f"sqlite store: {self._queue_max} writes already queued")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(_Request(op, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="cgw-sqlite-group-commit")
        return cast(T, await future)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._flusher is not None:
            await asyncio.shield(self._flusher)  # every queued request commits first (Rule 6)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._thread, _close, self._conn)
        finally:
            self._thread.shutdown(wait=True)

    # -- batches -----------------------------------------------------------------------------------

    async def _flush(self) -> None:
        """Commit batches until the queue is empty (one task at a time: ``_flusher``)."""
        try:
            while self._queue:
                await self._commit_next_batch()
        finally:
            self._flusher = None
            if self._began:  # only if the loop above was interrupted: nothing was written in that transaction
                self._began = False
                await self._in_thread(_rollback, self._conn)

    async def _commit_next_batch(self) -> None:
        if not self._began:
            try:
                await self._in_thread(_begin, self._conn)
            except Exception as exc:  # the database is unusable now: this batch fails, the next one tries again
                self._fail(self._take(), exc)
                return
        self._began = False
        batch = self._take()  # everything that queued while BEGIN (or the last COMMIT) waited joins (Rule 2)
        commits, requests = self._since_checkpoint[0] + 1, self._since_checkpoint[1] + len(batch)
        checkpoint = commits >= self._checkpoint_aim[0] or requests >= self._checkpoint_aim[1]  # Rule 10
        try:
            results = [_run_one(self._conn, request.op) for request in batch]
            queue = _NOTHING_QUEUED if checkpoint else self._queue  # the next BEGIN waits for the checkpoint
            self._began = await self._in_thread(_commit_and_begin, self._conn, queue)
        except Exception as exc:  # a SAVEPOINT or the COMMIT failed: nothing of this batch is durable (Rule 3)
            await self._in_thread(_rollback, self._conn)
            self._fail(batch, exc)
            return
        self.commits += 1
        self.committed_requests += len(batch)
        self._since_checkpoint = (commits, requests)
        for request, (ok, value) in zip(batch, results, strict=True):
            _resolve(request.future, ok, value)
        if checkpoint:
            await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Rule 10: copy the WAL into the database now that its batch is answered; aim the next one."""
        since, self._since_checkpoint = self._since_checkpoint, (0, 0)
        try:
            frames = max(1, await self._in_thread(_checkpoint_wal, self._conn))
        except Exception:  # the next checkpoint (or SQLite's backstop) copies what this one left
            self.checkpoint_failures += 1
            return
        self.checkpoints += 1
        self._checkpoint_aim = (
            max(1, min(CHECKPOINT_AIM_MAX[0], since[0] * CHECKPOINT_FRAMES // frames)),
            max(1, min(CHECKPOINT_AIM_MAX[1], since[1] * CHECKPOINT_FRAMES // frames)),
        )

    async def _in_thread(self, call: Callable[..., T], *args: Any) -> T:
        self.handoffs += 1
        return await asyncio.get_running_loop().run_in_executor(self._thread, call, *args)

    def _take(self) -> list[_Request]:
        count = min(len(self._queue), self._batch_max)
        return [self._queue.popleft() for _ in range(count)]

    @staticmethod
    def _fail(batch: list[_Request], exc: Exception) -> None:
        for request in batch:
            _resolve(request.future, False, _translate(exc))


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():
        return  # the caller was cancelled; its write (if it succeeded) is committed regardless (Rule 6)
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _open(path: Path) -> sqlite3.Connection:
    conn = connect_writer(path)
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_FRAMES}")  # the writer checkpoints first (Rule 10)
    return conn


def _checkpoint_wal(conn: sqlite3.Connection) -> int:
    """A PASSIVE checkpoint on the writer's connection (no transaction open); the WAL's size in frames."""
    _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    return int(frames)


def _close(conn: sqlite3.Connection) -> None:
    """The last checkpoint runs here, as the last connection closes: the database file is complete again.

    When it cannot run (a full disk) the connection closes all the same and the error is raised after it:
    every commit is in the WAL, which the next start replays (Rule 6's promise holds)."""
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        conn.close()
        raise sqlite_unavailable(
            exc,
            "sqlite store: the closing checkpoint did not run (the WAL keeps every commit; the next start replays it)",
        ) from exc
    conn.close()


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")  # waits (busy_timeout) for another process's write lock


def _commit_and_begin(conn: sqlite3.Connection, queue: deque[_Request]) -> bool:
    """COMMIT (the WAL fsync, synchronous=FULL, and a checkpoint now and then); then, when requests queued
    meanwhile, BEGIN their transaction in the same hand-off (Rule 9). True when that transaction is open."""
    conn.execute("COMMIT")  # when this raises, the batch is not durable and fails (Rule 3)
    if not queue:  # read from this thread: len() of a deque is atomic, and only the loop appends
        return False
    try:  # from here on the batch is durable: nothing below may fail it
        conn.execute("PRAGMA busy_timeout = 0")  # the COMMIT's callers are not kept waiting for another process
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    except sqlite3.Error:  # busy, or worse: the next batch's own BEGIN waits, or fails that batch (Rule 3)
        _rollback(conn)  # in case BEGIN went through and only the PRAGMA after it failed
        return False
    return True


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
        return sqlite_unavailable(exc, "sqlite store")
    error = Internal(f"store write failed: {type(exc).__name__}")
    error.__cause__ = exc
    return error
