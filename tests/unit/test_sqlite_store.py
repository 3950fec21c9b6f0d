"""SQLite-only behaviour of the store: group commit, crash durability, backpressure, schema, DB-level guards.

The shared Store semantics are in tests/contract; this file tests what only the SQLite backend has. To
make batching deterministic, another connection holds SQLite's write lock (``WriteLock``, as a backup tool
might): the store's ``BEGIN IMMEDIATE`` waits for it in the writer thread while the test queues requests,
which then commit together once the lock is released. The real writer, held by a real lock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import signal
import sqlite3
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import (
    BadRequest,
    DuplicateConflict,
    Internal,
    LimitExceeded,
    NotFound,
    Overloaded,
    Unavailable,
)
from gateway.infra import sqlite_schema
from gateway.infra.sqlite import (
    ACK_CURSORS_MAX,
    PULL_LIMIT_MAX,
    REPLAY_KEY_MAX,
    REPLAY_PURGE_BATCH,
    SqliteStore,
)
from gateway.infra.sqlite_writer import CHECKPOINT_FRAMES
from gateway.interfaces.protocols import DeliveryOutcome, DeliveryResult, StoredMessage, relay_queue

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def message(message_id: str | None = None, recipients: tuple[str, ...] = ("CN-GACC",)) -> StoredMessage:
    mid = message_id or str(uuid.uuid4())
    jws = f"eyJhbGciOiJFUzI1NiJ9.{mid}.c2ln"  # opaque evidence to the store
    payload = b'{"voyage":"042E"}'
    digest = hashlib.sha256(jws.encode() + b"." + payload).hexdigest()
    return StoredMessage("CARRIER-COSCO", mid, "manifest.cargo.v1", recipients, jws, payload, digest, T0)


def accepted(m: StoredMessage) -> AuditEvent:
    return AuditEvent(EventKind.ACCEPTED, m.received_at, {"id": m.message_id, "digest": m.digest})


def receipt(leaf_index: int, received_at: datetime) -> bytes:
    return f"receipt {leaf_index} {received_at.isoformat()}".encode()


class WriteLock:
    """Another connection holding the database's write lock until :meth:`release`."""

    def __init__(self, store: SqliteStore) -> None:
        self._conn = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
        self._conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self._conn.execute("ROLLBACK")
        self._conn.close()


async def queued(store: SqliteStore, count: int) -> None:
    for _ in range(100):
        if store.queued_writes >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"only {store.queued_writes} of {count} writes queued")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = await SqliteStore.open(tmp_path / "gw.db")
    try:
        yield opened
    finally:
        await opened.close()


# -- group commit ------------------------------------------------------------------------------------


async def test_a_batch_commits_many_requests_in_one_transaction(store: SqliteStore) -> None:
    lock = WriteLock(store)
    batch = [message() for _ in range(101)]
    tasks = [asyncio.create_task(store.accept(m, accepted(m), receipt)) for m in batch]
    await queued(store, 101)
    before = store.commits

    lock.release()
    results = await asyncio.gather(*tasks)

    assert store.commits - before == 1  # ONE transaction (one fsync) for all 101
    assert [r.leaf_index for r in results] == list(range(101))


class SlowCommit:
    """Traces the writer's own connection: the next COMMIT, in the writer thread, sleeps first (releasing the
    GIL) so the test can queue requests while it is in flight; optionally another connection then takes the
    write lock just before the writer would begin the queued requests' transaction (the writer's COMMIT-and-BEGIN
    hand-off, ``gateway.infra.sqlite_writer``)."""

    def __init__(self, store: SqliteStore, *, lock_before_begin: bool = False) -> None:
        self.armed = True
        self.started = asyncio.Event()  # set once that COMMIT is in flight
        self.lock: WriteLock | None = None
        self._loop = asyncio.get_running_loop()
        self._store = store
        self._lock_before_begin = lock_before_begin
        store._writer._conn.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if sql == "COMMIT" and self.armed:
            self.armed = False
            self._loop.call_soon_threadsafe(self.started.set)
            time.sleep(0.3)
        elif sql == "PRAGMA busy_timeout = 0" and self._lock_before_begin and self.lock is None:
            self.lock = WriteLock(self._store)


async def test_requests_queued_during_a_commit_begin_in_the_same_handoff(store: SqliteStore) -> None:
    slow = SlowCommit(store)
    handoffs, commits = store._writer.handoffs, store.commits
    first = asyncio.create_task(store.record(AuditEvent(EventKind.ADMIN, T0, {"n": 0})))
    await asyncio.wait_for(slow.started.wait(), 5)  # the first batch's COMMIT is in flight (and sleeps)
    rest = [asyncio.create_task(store.record(AuditEvent(EventKind.ADMIN, T0, {"n": n}))) for n in range(1, 6)]
    assert await asyncio.gather(first, *rest) == list(range(6))

    assert store.commits - commits == 2
    assert store._writer.handoffs - handoffs == 3  # BEGIN; COMMIT + the next BEGIN; COMMIT (not 4)


async def test_a_busy_lock_after_a_commit_neither_delays_its_callers_nor_loses_the_queued(
    store: SqliteStore,
) -> None:
    slow = SlowCommit(store, lock_before_begin=True)
    first = asyncio.create_task(store.record(AuditEvent(EventKind.ADMIN, T0, {"n": 0})))
    await asyncio.wait_for(slow.started.wait(), 5)
    rest = [asyncio.create_task(store.record(AuditEvent(EventKind.ADMIN, T0, {"n": n}))) for n in range(1, 4)]

    assert await asyncio.wait_for(first, 2) == 0  # answered although another connection now holds the lock
    assert slow.lock is not None
    await asyncio.sleep(0.2)
    assert not any(task.done() for task in rest)  # their own BEGIN waits for the lock (busy_timeout) ...
    slow.lock.release()
    assert await asyncio.gather(*rest) == [1, 2, 3]  # ... and commits once it is free
    assert await store.ledger_size() == 4


async def test_the_wal_checkpoint_runs_after_its_batch_is_answered(store: SqliteStore) -> None:
    """The COMMIT that makes a checkpoint due is answered first; the checkpoint (made slow
    here, in the writer thread) is a hand-off of its own, and the requests queued meanwhile begin after it."""
    writer = store._writer
    writer._checkpoint_aim = (1, 1)  # due after the next commit
    loop = asyncio.get_running_loop()
    started = asyncio.Event()

    def trace(sql: str) -> None:  # in the writer thread
        if sql.startswith("PRAGMA wal_checkpoint") and not started.is_set():
            loop.call_soon_threadsafe(started.set)
            time.sleep(0.5)

    writer._conn.set_trace_callback(trace)
    first = asyncio.create_task(store.record(AuditEvent(EventKind.ADMIN, T0, {"n": 0})))
    await asyncio.wait_for(started.wait(), 5)
    assert await asyncio.wait_for(first, 0.3) == 0  # answered while its checkpoint still runs
    rest = [asyncio.create_task(store.record(AuditEvent(EventKind.ADMIN, T0, {"n": n}))) for n in range(1, 4)]
    assert await asyncio.gather(*rest) == [1, 2, 3]  # they began once the checkpoint was done
    writer._conn.set_trace_callback(None)
    assert writer.checkpoints >= 1 and writer.checkpoint_failures == 0
    assert writer._checkpoint_aim > (1, 1)  # aimed again from the frames the checkpoint found


async def test_the_writer_keeps_the_wal_near_its_checkpoint_size(tmp_path: Path) -> None:
    """With SQLite's own checkpoint moved to BACKSTOP_FRAMES, the writer's checkpoints keep the WAL at
    about CHECKPOINT_FRAMES, whatever the batch sizes."""
    store = await SqliteStore.open(tmp_path / "gw.db")
    try:
        padding = "x" * 3000  # ~1 page per leaf
        written = 0
        for size in (1, 7, 64, 3):  # batch sizes change under the writer's aim
            for _ in range(600 // size):
                events = [AuditEvent(EventKind.ADMIN, T0, {"p": padding, "n": written + n}) for n in range(size)]
                await asyncio.gather(*(store.record(e) for e in events))
                written += size
        wal = (tmp_path / "gw.db-wal").stat().st_size
        assert store._writer.checkpoints >= 3, store._writer.checkpoints
        assert wal < 2 * CHECKPOINT_FRAMES * 4200, wal  # never near BACKSTOP_FRAMES
        assert await store.ledger_size() == written
    finally:
        await store.close()
    left = tmp_path / "gw.db-wal"
    assert not left.exists() or left.stat().st_size == 0  # the last checkpoint emptied it


async def test_a_checkpoint_after_every_commit_keeps_submission_order(store: SqliteStore) -> None:
    """Rules 5 and 10: with a checkpoint due after every commit (and so no BEGIN fused with a COMMIT), requests
    from many tasks still commit in submission order, none lost."""
    writer = store._writer
    indexes: list[int] = []
    for group in range(10):
        writer._checkpoint_aim = (1, 1)  # the next commit makes one due (the checkpoint aims the next one again)
        first = asyncio.ensure_future(store.record(AuditEvent(EventKind.ADMIN, T0, {"n": group * 30})))
        await asyncio.sleep(0)  # its batch is being committed; the rest queue behind its checkpoint
        rest = [store.record(AuditEvent(EventKind.ADMIN, T0, {"n": group * 30 + n})) for n in range(1, 30)]
        indexes += await asyncio.gather(first, *rest)
        for _ in range(200):  # the checkpoint runs after the answers: wait for it before the next group
            if writer.checkpoints > group:
                break
            await asyncio.sleep(0.01)
    assert indexes == list(range(300))
    assert writer.checkpoints == 10 and writer.checkpoint_failures == 0
    assert await store.ledger_size() == 300


async def test_a_failed_checkpoint_fails_no_request(store: SqliteStore) -> None:
    """The requests of a batch are durable before its checkpoint; when the checkpoint fails (here: SQLite
    interrupts it), they keep their answers and the writer goes on."""
    writer = store._writer
    writer._checkpoint_aim = (1, 1)
    state = {"in_checkpoint": False}

    def trace(sql: str) -> None:
        state["in_checkpoint"] = sql.startswith("PRAGMA wal_checkpoint")

    writer._conn.set_trace_callback(trace)
    writer._conn.set_progress_handler(lambda: 1 if state["in_checkpoint"] else 0, 1)
    assert await store.record(AuditEvent(EventKind.ADMIN, T0, {"n": 0})) == 0  # answered before its checkpoint
    for _ in range(200):
        if writer.checkpoint_failures:
            break
        await asyncio.sleep(0.01)
    assert writer.checkpoint_failures == 1
    assert writer.checkpoints == 0
    writer._conn.set_progress_handler(None, 1)
    writer._conn.set_trace_callback(None)
    assert await store.record(AuditEvent(EventKind.ADMIN, T0, {"n": 1})) == 1
    assert await store.ledger_size() == 2


async def test_batch_max_caps_the_requests_per_transaction(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "gw.db", batch_max=10)
    try:
        lock = WriteLock(store)
        tasks = [asyncio.create_task(store.record(AuditEvent(EventKind.ADMIN, T0, {"n": n}))) for n in range(96)]
        await queued(store, 96)
        before = store.commits
        lock.release()
        await asyncio.gather(*tasks)
        assert store.commits - before == 10  # ceil(96 / 10)
        assert [t.result() for t in tasks] == list(range(96))
    finally:
        await store.close()


async def test_failures_inside_a_batch_do_not_poison_the_rest(store: SqliteStore) -> None:
    first = message("dup")
    await store.accept(first, accepted(first), receipt)
    lock = WriteLock(store)

    def boom(leaf_index: int, received_at: datetime) -> bytes:
        raise ValueError("signer crashed")

    ok = [message(), message(), message()]
    dup = message("dup")
    bad = message()
    tasks = [
        asyncio.create_task(store.accept(ok[0], accepted(ok[0]), receipt)),
        asyncio.create_task(store.accept(dup, accepted(dup), receipt)),
        asyncio.create_task(store.accept(ok[1], accepted(ok[1]), receipt)),
        asyncio.create_task(store.accept(bad, accepted(bad), boom)),
        asyncio.create_task(store.accept(ok[2], accepted(ok[2]), receipt)),
        asyncio.create_task(store.ack("CN-GACC", [999_999], accepted(ok[0]))),
    ]
    await queued(store, len(tasks))
    before = store.commits
    lock.release()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert store.commits - before == 1  # the whole mixed batch in ONE transaction
    assert isinstance(results[1], DuplicateConflict)
    assert isinstance(results[3], Internal)  # a foreign exception is wrapped, with its cause kept
    assert isinstance(results[3].__cause__, ValueError)
    assert "signer crashed" not in results[3].public
    assert isinstance(results[5], NotFound)
    assert [r.leaf_index for r in results if isinstance(r, StoredMessage)] == [1, 2, 3]
    assert await store.ledger_size() == 4
    assert await store.find_message(bad.sender, bad.message_id) is None


async def test_a_cancelled_caller_does_not_undo_its_write(store: SqliteStore) -> None:
    lock = WriteLock(store)
    m = message()
    task = asyncio.create_task(store.accept(m, accepted(m), receipt))
    await queued(store, 1)
    task.cancel()
    lock.release()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.record(AuditEvent(EventKind.ADMIN, T0, {}))  # a later write proves the batch committed
    assert await store.find_message(m.sender, m.message_id) is not None


# -- backpressure and lifecycle -----------------------------------------------------------------------


async def test_a_full_queue_refuses_writes_with_overloaded(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "gw.db", queue_max=8)
    try:
        lock = WriteLock(store)
        batch = [message() for _ in range(8)]
        tasks = [asyncio.create_task(store.accept(m, accepted(m), receipt)) for m in batch]
        await queued(store, 8)

        extra = message()
        with pytest.raises(Overloaded) as refused:
            await store.accept(extra, accepted(extra), receipt)
        assert refused.value.code == "RATE_LIMITED"
        with pytest.raises(Overloaded):
            await store.claim_once("jti:x", T0)

        lock.release()
        assert len(await asyncio.gather(*tasks)) == 8
        assert (await store.accept(extra, accepted(extra), receipt)).leaf_index == 8  # room again
    finally:
        await store.close()


async def test_close_finishes_queued_writes_then_refuses(tmp_path: Path) -> None:
    store = await SqliteStore.open(tmp_path / "gw.db")
    lock = WriteLock(store)
    tasks = [asyncio.create_task(store.record(AuditEvent(EventKind.ADMIN, T0, {"n": n}))) for n in range(20)]
    await queued(store, 20)
    closing = asyncio.create_task(store.close())
    await asyncio.sleep(0)
    with pytest.raises(Unavailable):  # closing: no new requests
        await store.record(AuditEvent(EventKind.ADMIN, T0, {}))
    lock.release()
    await closing
    assert [t.result() for t in tasks] == list(range(20))
    with pytest.raises(Unavailable):
        await store.record(AuditEvent(EventKind.ADMIN, T0, {}))
    with pytest.raises(Unavailable):
        await store.ledger_size()


# -- crash durability ------------------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from pathlib import Path
from gateway.core.audit import AuditEvent, EventKind
from gateway.infra.sqlite import SqliteStore
from gateway.interfaces.protocols import StoredMessage

async def worker(store, w):
    n = 0
    while True:
        at = datetime.now(UTC)
        mid = f"crash-{w}-{n}"
        m = StoredMessage("CARRIER-COSCO", mid, "manifest.cargo.v1", ("CN-GACC",), "h.p.s", b"{}", "00", at)
        event = AuditEvent(EventKind.ACCEPTED, at, {"id": mid})
        stored = await store.accept(m, event, lambda i, t: b"r%d" % i)
        print(stored.leaf_index, mid, flush=True)
        n += 1

async def main():
    store = await SqliteStore.open(Path(sys.argv[1]))
    await asyncio.gather(*(worker(store, w) for w in range(8)))

asyncio.run(main())
"""


async def test_every_receipted_message_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(path), cwd=REPO, stdout=asyncio.subprocess.PIPE
    )
    assert child.stdout is not None
    receipted: dict[str, int] = {}
    try:
        while len(receipted) < 200:
            line = await asyncio.wait_for(child.stdout.readline(), timeout=15)
            assert line, "the child exited early"
            index, mid = line.decode().split()
            receipted[mid] = int(index)
    finally:
        child.send_signal(signal.SIGKILL)
        rest = await child.stdout.read()  # lines printed before the kill count as receipted too
        await child.wait()
    for line in rest.decode().splitlines():
        index, mid = line.split()
        receipted[mid] = int(index)
    assert child.returncode == -signal.SIGKILL

    store = await SqliteStore.open(path)
    try:
        size = await store.ledger_size()
        assert size >= len(receipted)
        for mid, index in receipted.items():
            found = await store.find_message("CARRIER-COSCO", mid)
            assert found is not None
            assert found.leaf_index == index
            assert found.receipt == b"r%d" % index
        entries = await store.ledger_entries(0, min(size, 1000))
        assert [e.index for e in entries] == list(range(len(entries)))  # dense after the crash
    finally:
        await store.close()


# -- schema and database-level guards ------------------------------------------------------------------


async def test_open_sets_wal_and_records_the_schema_version(store: SqliteStore) -> None:
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION
    conn.close()


async def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    await (await SqliteStore.open(path)).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE schema_version SET version = ?", (sqlite_schema.SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(Unavailable, match="schema version"):
        await SqliteStore.open(path)


async def test_a_version_3_file_is_migrated_and_its_forwards_withdraw_less_never_more(tmp_path: Path) -> None:
    """Schema 4 keeps a forward's parent (``gateway.core.forwarding.recalled_copies`` follows the parents). A version-3
    file (forwards linked to the root only) is migrated in place; its forwards count as children of the root, so a
    forwarder's recall withdraws its own forward and never reaches the root."""
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path)
    root = await store.accept(message(recipients=("NL-DOUANE",)), accepted(message()), receipt)
    by_b = dataclasses.replace(message(recipients=("US-CBP",)), sender="NL-DOUANE")
    await store.accept_forward(by_b, (root.sender, root.message_id), accepted(by_b), receipt)
    by_c = dataclasses.replace(message(recipients=("CN-GACC",)), sender="US-CBP")
    await store.accept_forward(by_c, (by_b.sender, by_b.message_id), accepted(by_c), receipt)
    await store.close()
    conn = sqlite3.connect(path)  # back to the version-3 layout: no parent columns, no port tables (v5), no relays
    with conn:  # (v6), no relay error codes (v7)
        conn.execute("DROP TABLE relays")
        conn.execute("ALTER TABLE deliveries DROP COLUMN last_code")
        conn.execute("ALTER TABLE deliveries DROP COLUMN receipt")
        conn.execute("ALTER TABLE forwards DROP COLUMN parent_sender")
        conn.execute("ALTER TABLE forwards DROP COLUMN parent_id")
        for table in ("port_stream", "port_standings", "port_meta", "port_applied"):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("UPDATE schema_version SET version = 3")
    conn.close()
    store = await SqliteStore.open(path)
    try:
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == sqlite_schema.SCHEMA_VERSION
            assert conn.execute("SELECT COUNT(*) FROM forwards WHERE parent_sender IS NULL").fetchone()[0] == 2
        conn.close()
        recall = dataclasses.replace(message(recipients=("US-CBP",)), sender="NL-DOUANE")
        done = await store.recall(recall, (by_b.sender, by_b.message_id), accepted(recall), receipt)
        assert done.withdrawn == ((by_b.sender, by_b.message_id),)
        assert [i.message.message_id for i in await store.pull("NL-DOUANE", 0, 10)] == [root.message_id]
        assert [i.message.message_id for i in await store.pull("CN-GACC", 0, 10)] == [by_c.message_id]
    finally:
        await store.close()


async def test_a_version_5_file_is_migrated_and_its_delivery_states_read_back(tmp_path: Path) -> None:
    """Schema 6 adds relay entries (issue 19): a version-5 file's push states read back with no receipt, and
    relays are stored once it is migrated."""
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path)
    old = await store.accept(message(recipients=("PORT-NLRTM",)), accepted(message()), receipt)
    [due] = await store.due_deliveries("PORT-NLRTM", T0, 10)
    dead = DeliveryResult("PORT-NLRTM", due.item.cursor, 1, DeliveryOutcome.DEAD, "410", T0)
    await store.record_delivery(dead, AuditEvent(EventKind.DELIVERY_FAILED, T0, {}))
    await store.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE relays")
        conn.execute("ALTER TABLE deliveries DROP COLUMN last_code")
        conn.execute("ALTER TABLE deliveries DROP COLUMN receipt")
        conn.execute("UPDATE schema_version SET version = 5")
    conn.close()
    store = await SqliteStore.open(path)
    try:
        [letter] = await store.dead_letters(None, 0, 10)
        assert (letter.cursor, letter.last_status, letter.receipt, letter.peer) == (due.item.cursor, "410", b"", None)
        [state] = await store.recipient_states(old.sender, old.message_id)
        assert (state.recipient, state.peer) == ("PORT-NLRTM", None)
        relayed = message(recipients=("NL-DOUANE",))
        await store.accept(relayed, accepted(relayed), receipt, relays={"NL-DOUANE": ("NL-DOUANE",)})
        assert [s.peer for s in await store.recipient_states(relayed.sender, relayed.message_id)] == ["NL-DOUANE"]
    finally:
        await store.close()


async def test_a_version_6_file_is_migrated_and_keeps_a_relays_error_code(tmp_path: Path) -> None:
    """Schema 7 keeps a failed relay attempt's peer error code (issue 19): a version-6 file's states read back
    with none, and a failed relay recorded after the migration keeps its code, in dead letters and status."""
    path = tmp_path / "gw.db"
    store = await SqliteStore.open(path)
    old = await store.accept(message(recipients=("PORT-NLRTM",)), accepted(message()), receipt)
    [due] = await store.due_deliveries("PORT-NLRTM", T0, 10)
    dead = DeliveryResult("PORT-NLRTM", due.item.cursor, 1, DeliveryOutcome.DEAD, "410", T0)
    await store.record_delivery(dead, AuditEvent(EventKind.DELIVERY_FAILED, T0, {}))
    await store.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("ALTER TABLE deliveries DROP COLUMN last_code")
        conn.execute("UPDATE schema_version SET version = 6")
    conn.close()
    store = await SqliteStore.open(path)
    try:
        [letter] = await store.dead_letters(None, 0, 10)
        assert (letter.cursor, letter.code) == (due.item.cursor, "")
        relayed = message(recipients=("NL-DOUANE",))
        await store.accept(relayed, accepted(relayed), receipt, relays={"NL-DOUANE": ("NL-DOUANE",)})
        [relay] = await store.due_deliveries(relay_queue("NL-DOUANE"), T0, 10)
        refused = DeliveryResult(
            relay_queue("NL-DOUANE"), relay.item.cursor, 1, DeliveryOutcome.DEAD, "403", T0, code="FORBIDDEN"
        )
        await store.record_delivery(refused, AuditEvent(EventKind.DELIVERY_FAILED, T0, {}))
        assert [(d.peer, d.code) for d in await store.dead_letters(None, 0, 10)] == [
            (None, ""),
            ("NL-DOUANE", "FORBIDDEN"),
        ]
        [state] = await store.recipient_states(relayed.sender, relayed.message_id)
        assert state.delivery is not None and (state.peer, state.delivery.code) == ("NL-DOUANE", "FORBIDDEN")
        assert [s.delivery.code for s in await store.recipient_states(old.sender, old.message_id) if s.delivery] == [""]
    finally:
        await store.close()


async def test_a_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE accounts (id INTEGER)")
    conn.close()
    with pytest.raises(Unavailable):
        await SqliteStore.open(path)


async def test_the_database_itself_keeps_the_ledger_append_only_and_dense(store: SqliteStore) -> None:
    await store.record(AuditEvent(EventKind.ADMIN, T0, {}))
    conn = sqlite3.connect(store.path)
    try:
        for sql in (
            "UPDATE ledger SET data = x'00' WHERE idx = 0",
            "DELETE FROM ledger WHERE idx = 0",
            "INSERT INTO ledger (idx, data) VALUES (5, x'00')",
        ):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(sql)
    finally:
        conn.close()


# -- limits and inputs -------------------------------------------------------------------------------------


async def test_named_limits_refuse_oversized_requests(store: SqliteStore) -> None:
    with pytest.raises(LimitExceeded) as pull:
        await store.pull("CN-GACC", 0, PULL_LIMIT_MAX + 1)
    assert pull.value.field == "limit"
    with pytest.raises(BadRequest):
        await store.pull("CN-GACC", 0, 0)
    with pytest.raises(LimitExceeded) as ack:
        await store.ack("CN-GACC", list(range(1, ACK_CURSORS_MAX + 2)), AuditEvent(EventKind.ADMIN, T0, {}))
    assert ack.value.field == "cursors"
    with pytest.raises(LimitExceeded):
        await store.claim_once("k" * (REPLAY_KEY_MAX + 1), T0)
    assert await store.ledger_size() == 0


async def test_naive_times_are_refused(store: SqliteStore) -> None:
    naive = StoredMessage("A", "1", "t", ("B",), "j", b"", "d", datetime(2025, 1, 1))
    with pytest.raises(Internal):
        await store.accept(naive, accepted(naive), receipt)


@dataclass
class SteppingClock:
    at: datetime

    def now(self) -> datetime:
        return self.at


async def test_expired_replay_rows_are_purged_a_bounded_batch_at_a_time(tmp_path: Path) -> None:
    clock = SteppingClock(T0)
    store = await SqliteStore.open(tmp_path / "gw.db", clock=clock)
    try:
        await asyncio.gather(*(store.claim_once(f"k{n}", T0 + timedelta(seconds=1)) for n in range(100)))
        clock.at = T0 + timedelta(seconds=2)
        assert await store.claim_once("fresh", T0 + timedelta(hours=1))
        conn = sqlite3.connect(store.path)
        try:
            assert conn.execute("SELECT COUNT(*) FROM replay").fetchone()[0] == 100 - REPLAY_PURGE_BATCH + 1
        finally:
            conn.close()
        assert await store.claim_once("k99", T0 + timedelta(hours=1))  # expired: claimable again
    finally:
        await store.close()


async def test_writes_from_many_tasks_keep_submission_order(store: SqliteStore) -> None:
    events = [AuditEvent(EventKind.ADMIN, T0, {"n": n}) for n in range(300)]
    indexes = await asyncio.gather(*(store.record(e) for e in events))
    assert indexes == list(range(300))  # tasks queue in creation order; the writer keeps that order
    again = await store.accept(m := message(), accepted(m), receipt)
    with pytest.raises(DuplicateConflict):
        await store.accept(again, accepted(again), receipt)


async def test_an_unopenable_path_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(Unavailable):
        await SqliteStore.open(tmp_path / "missing-dir" / "gw.db")


# -- the replay lookup on the event loop (gateway.infra.sqlite) --------------------------------------------


async def test_the_replay_lookup_goes_to_the_reader_threads_when_sqlite_would_wait(store: SqliteStore) -> None:
    """When the loop connection's read fails with an OperationalError (busy, locked: here SQLite's own
    "interrupted", from a progress handler), the lookup is answered by a reader thread instead."""
    first = message()
    await store.accept(first, accepted(first), receipt)
    assert await store.find_message(first.sender, first.message_id) is not None  # the loop connection is open
    loop_conn = store._loop_conn
    assert loop_conn is not None
    interrupted: list[int] = []

    def interrupt() -> int:
        interrupted.append(1)
        return 1  # non-zero: SQLite abandons the statement with SQLITE_INTERRUPT

    loop_conn.set_progress_handler(interrupt, 1)
    with pytest.raises(sqlite3.OperationalError):
        loop_conn.execute("SELECT count(*) FROM messages").fetchone()
    interrupted.clear()
    found = await store.find_message(first.sender, first.message_id)
    assert interrupted  # the loop connection was tried first ...
    assert found is not None and found.receipt == receipt(found.leaf_index, found.received_at)  # ... then a thread
    loop_conn.set_progress_handler(None, 1)
    assert await store.find_message(first.sender, "absent") is None


async def test_the_lookups_of_one_loop_iteration_share_one_read_transaction(store: SqliteStore) -> None:
    """Lookups asked for together run in one read transaction on the loop connection, each with its
    own answer; a caller cancelled before the batch ran is skipped."""
    stored = [message() for _ in range(3)]
    for m in stored:
        await store.accept(m, accepted(m), receipt)
    assert await store.find_message(stored[0].sender, stored[0].message_id) is not None  # opens the connection
    loop_conn = store._loop_conn
    assert loop_conn is not None
    statements: list[str] = []
    loop_conn.set_trace_callback(statements.append)
    cancelled = asyncio.ensure_future(store.find_message(stored[0].sender, stored[0].message_id))
    asked = [store.find_message(m.sender, m.message_id) for m in stored] + [store.find_message("X", "absent")]
    tasks = [asyncio.ensure_future(a) for a in asked]
    await asyncio.sleep(0)  # every lookup is queued; the batch runs after this test's next step
    cancelled.cancel()
    found = await asyncio.gather(*tasks)
    loop_conn.set_trace_callback(None)
    assert [f.message_id if f else None for f in found] == [m.message_id for m in stored] + [None]
    assert [f.receipt if f else None for f in found[:3]] == [receipt(f.leaf_index, f.received_at) for f in found[:3]]
    assert [s.split()[0] for s in statements] == ["BEGIN"] + ["SELECT"] * 4 + ["COMMIT"]
    assert cancelled.cancelled()
    assert not loop_conn.in_transaction


def test_lookups_left_queued_by_a_stopped_loop_do_not_hold_up_the_next_loop(tmp_path: Path) -> None:
    """A batch of lookups is scheduled on the loop of the first lookup queued; when that loop stopped before the
    batch ran, a lookup on the next loop starts a batch of its own instead of waiting behind the dead one."""
    stored = message()
    first = asyncio.new_event_loop()
    try:
        store = first.run_until_complete(SqliteStore.open(tmp_path / "gw.db"))
        first.run_until_complete(store.accept(stored, accepted(stored), receipt))
        left = first.create_task(store.find_message(stored.sender, stored.message_id))
        first.call_soon(first.stop)  # one iteration: the lookup is queued, its batch would run in the next
        first.run_forever()
        assert len(store._finds) == 1 and not left.done()
        left.cancel()
    finally:
        first.close()

    async def look_up_and_close() -> StoredMessage | None:
        try:
            return await asyncio.wait_for(store.find_message(stored.sender, stored.message_id), 5)
        finally:
            await store.close()

    found = asyncio.run(look_up_and_close())
    assert found is not None and found.message_id == stored.message_id


async def test_a_batch_the_loop_connection_cannot_read_goes_to_the_threads(store: SqliteStore) -> None:
    """When SQLite refuses a batch of lookups (here every statement is interrupted, its ROLLBACK too),
    each lookup is answered by a reader thread, and the loop connection holds no transaction afterwards."""
    stored = [message() for _ in range(2)]
    for m in stored:
        await store.accept(m, accepted(m), receipt)
    assert await store.find_message(stored[0].sender, stored[0].message_id) is not None
    loop_conn = store._loop_conn
    assert loop_conn is not None
    loop_conn.set_progress_handler(lambda: 1, 1)  # SQLITE_INTERRUPT on every statement
    found = await asyncio.gather(*(store.find_message(m.sender, m.message_id) for m in stored))
    assert [f.message_id if f else None for f in found] == [m.message_id for m in stored]
    if store._loop_conn is loop_conn:
        assert not loop_conn.in_transaction
        loop_conn.set_progress_handler(None, 1)
    again = await asyncio.gather(*(store.find_message(m.sender, m.message_id) for m in stored))
    assert [f.message_id if f else None for f in again] == [m.message_id for m in stored]
    assert store._loop_conn is not None and not store._loop_conn.in_transaction


async def test_the_replay_lookup_sees_every_committed_accept_at_once(store: SqliteStore) -> None:
    """No stale snapshot on the loop connection: a message is found as soon as its accept returned."""
    for _ in range(20):
        m = message()
        assert await store.find_message(m.sender, m.message_id) is None
        await store.accept(m, accepted(m), receipt)
        found = await store.find_message(m.sender, m.message_id)
        assert found is not None and found.digest == m.digest


# -- the WAL stays bounded under writes that never pause (the writer's own checkpoints) ------------------------


async def test_the_wal_stays_bounded_under_sustained_writes_and_is_truncated_at_close(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    wal = path.with_name(path.name + "-wal")
    store = await SqliteStore.open(path)
    largest = 0
    try:
        for _ in range(50):  # ~13 MB of rows in batches of 32, one right after the other
            batch = [message() for _ in range(32)]
            bulky = [dataclasses.replace(m, payload=b"x" * 8_000) for m in batch]
            await asyncio.gather(*(store.accept(m, accepted(m), receipt) for m in bulky))
            largest = max(largest, wal.stat().st_size)
        assert path.stat().st_size > 8_000_000  # the rows reached the database file ...
    finally:
        await store.close()
    assert largest < 8_000_000  # ... while the WAL was checkpointed and started again (~4 MB at most)
    assert not wal.exists() or wal.stat().st_size == 0  # the last close checkpoints and truncates it


def test_with_receipt_is_replace_of_receipt_and_index_and_keeps_every_other_field() -> None:
    original = message(recipients=("CN-GACC", "NL-DOUANE"))
    stored = original.with_receipt(b"receipt", 7)
    # equality compares every field: one added to StoredMessage and not carried over by with_receipt fails here
    assert stored == dataclasses.replace(original, receipt=b"receipt", leaf_index=7)
