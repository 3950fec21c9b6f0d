"""The embedded store: messages, inboxes, replay cache and ledger leaves in one SQLite file.

``SqliteStore`` implements ``gateway.interfaces.protocols.Store`` (read its rules). How it keeps them:

Rule 1: every write (accept, record, ack, claim_once) is a request to the ONE group-commit writer of
        ``sqlite_writer``, which commits many requests per transaction (group commit) and resolves each
        caller only after that COMMIT (WAL, ``synchronous=FULL``) has returned: what a caller was told is on
        disk.
Rule 2: ``accept`` appends the ledger leaf, calls the receipt factory with the leaf's index, and inserts the
        message and one inbox row per recipient, all in one SAVEPOINT; any failure (duplicate, a receipt
        factory exception) rolls back only that request.
Rule 3: the ledger index is ``MAX(idx) + 1`` read by the single writer inside the transaction, so indexes are
        dense and in submission order however many tasks write at once.
Rule 4: reads run on a small pool of reader threads, each with its own ``query_only`` connection; WAL lets
        them read beside the writer. Each read is one SELECT, hence one consistent snapshot.
Rule 4b: the one read on every submission, ``find_message`` (a primary-key lookup: the replay check), runs
        on the event loop's own ``query_only`` connection instead: a WAL reader never waits for the writer,
        and the lookup costs a few microseconds where a thread hop costs tens. That connection never waits
        for a lock (``busy_timeout`` 0): when SQLite answers busy or locked, the read goes to the threads.
Rule 4c: the lookups asked for in one event-loop iteration run together, in ONE read transaction on that
        connection: a WAL reader whose snapshot is older than the last COMMIT starts with an empty page cache,
        and under load every lookup found a new COMMIT (~10 us a lookup alone, ~4 in a batch of 16). The
        transaction is opened and closed around the batch, so it holds no snapshot beyond it (the WAL is
        never kept from a checkpoint) and every lookup sees every accept that returned before it was asked.
Rule 5: every untrusted number or list that reaches the store is bounded by a named limit below.
Rule 6: a cursor that does not exist and a cursor of another recipient get the same ``NotFound``, so a
        recipient cannot probe other inboxes.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gateway.core.audit import AuditEvent, rfc3339
from gateway.core.errors import (
    BadRequest,
    LimitExceeded,
    NotFound,
    Unavailable,
)
from gateway.core.release import Plan
from gateway.infra import sqlite_delivery, sqlite_messages, sqlite_relay
from gateway.infra.sqlite_schema import connect_reader, require_aware, to_micros
from gateway.infra.sqlite_writer import BATCH_MAX_DEFAULT, WRITE_QUEUE_MAX, GroupCommitWriter
from gateway.interfaces.protocols import (
    Clock,
    DeliveryResult,
    DeliveryState,
    DueDelivery,
    InboxItem,
    LedgerEntry,
    PortRecord,
    Recall,
    ReceiptFactory,
    RecipientState,
    Relays,
    RelayStore,
    Store,
    StoredMessage,
    check_relays,
)

T = TypeVar("T")

# Items one pull may return: a hard ceiling above the adapters' configurable page size (settings), so a
# caller cannot make one read materialise an unbounded number of payloads.
PULL_LIMIT_MAX = 1_000
# Cursors in one ack: bounds the work (and the lock time) of a single write request.
ACK_CURSORS_MAX = 1_000
# Ledger entries one range read may return (auditors page through larger ranges).
LEDGER_RANGE_MAX = 1_000
# Replay keys are ids and fingerprints; anything longer is not one of ours.
REPLAY_KEY_MAX = 512
# Expired replay rows removed per claim: keeps the purge opportunistic and each claim's cost bounded.
REPLAY_PURGE_BATCH = 64
# Reader threads: reads are short indexed SELECTs; a few threads keep the default executor free.
READER_THREADS = 4
# The row ``probe_write`` writes: a replay key outside every caller's namespace (``jti:``, leases), purged
# like any expired claim once the probes stop.
PROBE_KEY = "probe:write"
PROBE_ROW_TTL_MICROS = 60_000_000

_SQLITE_INT_MAX = 2**63 - 1


class _Busy:
    """What a loop-thread read returns when SQLite would have to wait (Rule 4b)."""


_BUSY = _Busy()


class _UtcClock:
    """Wall-clock UTC (the default when ``open`` is given no clock); only the replay purge uses it."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SqliteStore:
    """``gateway.interfaces.protocols.Store`` on one SQLite file. Build it with :meth:`open`; finish with
    :meth:`close`."""

    def __init__(self, path: Path, writer: GroupCommitWriter, clock: Clock) -> None:
        self.path = path
        self._writer = writer
        self._clock = clock
        self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="cgw-sqlite-read")
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()
        self._loop_conn: sqlite3.Connection | None = None  # Rule 4b, used only on the event loop
        self._finds: list[tuple[str, str, asyncio.Future[StoredMessage | _Busy | None]]] = []  # Rule 4c
        self._finds_loop: asyncio.AbstractEventLoop | None = None  # the loop that will run the queued batch
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        batch_max: int = BATCH_MAX_DEFAULT,
        queue_max: int = WRITE_QUEUE_MAX,
        clock: Clock | None = None,
    ) -> SqliteStore:
        """Open (creating if absent) the store at ``path``; ``Unavailable`` for an unknown schema version."""
        writer = await GroupCommitWriter.start(path, batch_max=batch_max, queue_max=queue_max)
        return cls(path, writer, clock if clock is not None else _UtcClock())

    @property
    def commits(self) -> int:
        """Transactions committed so far (each is one fsync); a batch of N requests counts once."""
        return self._writer.commits

    @property
    def committed_requests(self) -> int:
        """Write requests committed so far (successful or rolled back to their savepoint)."""
        return self._writer.committed_requests

    @property
    def queued_writes(self) -> int:
        """Write requests waiting for their transaction (for metrics and tests)."""
        return self._writer.queued

    # -- writes --------------------------------------------------------------------------------------

    async def accept(
        self, message: StoredMessage, event: AuditEvent, make_receipt: ReceiptFactory, *, relays: Relays | None = None
    ) -> StoredMessage:
        insert = sqlite_messages.inserter(message, event, make_receipt, check_relays(message, relays))
        return await self._writer.submit(lambda conn: insert(conn, message.recipients))

    # -- forwards and recalls (ports.RelayStore; gateway/infra/sqlite_relay.py) ----------------------------

    async def accept_forward(
        self,
        message: StoredMessage,
        original: tuple[str, str],
        event: AuditEvent,
        make_receipt: ReceiptFactory,
        *,
        relays: Relays | None = None,
    ) -> StoredMessage:
        insert = sqlite_messages.inserter(message, event, make_receipt, check_relays(message, relays))
        return await self._writer.submit(lambda conn: sqlite_relay.accept_forward(conn, message, original, insert))

    async def forward_of(self, sender: str, message_id: str) -> tuple[str, str] | None:
        return await self._read(lambda conn: sqlite_relay.forward_of(conn, (sender, message_id)))

    async def forwards_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        return await self._read(lambda conn: sqlite_relay.forwards_of(conn, wanted))

    async def copies(self, sender: str, message_id: str) -> list[StoredMessage]:
        def op(conn: sqlite3.Connection) -> list[StoredMessage]:
            keys = sqlite_relay.copy_keys(conn, (sender, message_id))
            return [
                sqlite_messages.message_from_row(conn.execute(sqlite_messages.FIND_SQL, key).fetchone()) for key in keys
            ]

        return await self._read(op)

    async def recall(
        self,
        message: StoredMessage,
        original: tuple[str, str],
        event: AuditEvent,
        make_receipt: ReceiptFactory,
        *,
        whole_tree: bool = False,
        relays: Relays | None = None,
    ) -> Recall:
        relays = check_relays(message, relays)
        insert = sqlite_messages.inserter(message, event, make_receipt, relays)
        withdrawn_at = rfc3339(require_aware(event.at, "event.at"))
        relayed = frozenset(m for members in (relays or {}).values() for m in members)
        return await self._writer.submit(
            lambda conn: sqlite_relay.recall(
                conn, message, original, withdrawn_at, insert, whole_tree=whole_tree, relayed=relayed
            )
        )

    # -- port release streams in this database (ports.PortStreamStore; gateway/infra/sqlite_ports.py) -------

    async def port_apply(self, apply: Callable[[sqlite3.Connection], Plan | None], record: PortRecord) -> Plan | None:
        """``apply`` (the port tables) and ``record``'s ledger writes in ONE transaction
        (``gateway.infra.sqlite_ports``: one apply is one request of the group-commit writer)."""

        def op(conn: sqlite3.Connection) -> Plan | None:
            plan = apply(conn)
            if plan is None:
                return None
            writes = record(plan)
            alert = writes.alert
            if alert is not None and not sqlite_messages.stored(conn, alert.message.sender, alert.message.message_id):
                sqlite_messages.inserter(alert.message, alert.event, alert.make_receipt)(conn, alert.message.recipients)
            sqlite_messages.append_leaf(conn, writes.event.canonical())
            return plan

        return await self._writer.submit(op)

    async def port_read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return await self._read(op)

    async def port_write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        return await self._writer.submit(op)

    async def record(self, event: AuditEvent) -> int:
        leaf = event.canonical()
        return await self._writer.submit(lambda conn: sqlite_messages.append_leaf(conn, leaf))

    async def ack(self, recipient: str, cursors: Sequence[int], event: AuditEvent) -> int:
        if len(cursors) > ACK_CURSORS_MAX:
            raise LimitExceeded(f"{len(cursors)} cursors > {ACK_CURSORS_MAX}", field="cursors")
        wanted = list(cursors)
        for i, cursor in enumerate(wanted):
            if not 0 < cursor <= _SQLITE_INT_MAX:
                raise NotFound(f"no cursor {cursor} for {recipient}", field=f"cursors[{i}]")
        acked_at = rfc3339(require_aware(event.at, "event.at"))
        leaf = event.canonical()

        def op(conn: sqlite3.Connection) -> int:
            newly = 0
            for i, cursor in enumerate(wanted):
                row = conn.execute("SELECT recipient FROM inbox WHERE cursor = ?", (cursor,)).fetchone()
                if row is None or row[0] != recipient:
                    raise NotFound(f"no cursor {cursor} for {recipient}", field=f"cursors[{i}]")
                newly += conn.execute(
                    "UPDATE inbox SET acked_at = ? WHERE cursor = ? AND acked_at IS NULL", (acked_at, cursor)
                ).rowcount
            sqlite_messages.append_leaf(conn, leaf)
            return newly

        return await self._writer.submit(op)

    async def claim_once(self, key: str, expires: datetime) -> bool:
        if len(key) > REPLAY_KEY_MAX:
            raise LimitExceeded(f"replay key of {len(key)} characters > {REPLAY_KEY_MAX}", field="key")
        until = to_micros(require_aware(expires, "expires"))
        now = to_micros(require_aware(self._clock.now(), "clock.now()"))

        def op(conn: sqlite3.Connection) -> bool:
            conn.execute(
                "DELETE FROM replay WHERE key IN (SELECT key FROM replay WHERE expires <= ? ORDER BY expires LIMIT ?)",
                (now, REPLAY_PURGE_BATCH),
            )
            conn.execute("DELETE FROM replay WHERE key = ? AND expires <= ?", (key, now))
            inserted = conn.execute("INSERT OR IGNORE INTO replay (key, expires) VALUES (?, ?)", (key, until)).rowcount
            return inserted == 1

        return await self._writer.submit(op)

    async def release_claim(self, key: str) -> None:
        if len(key) > REPLAY_KEY_MAX:
            raise LimitExceeded(f"replay key of {len(key)} characters > {REPLAY_KEY_MAX}", field="key")

        def op(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM replay WHERE key = ?", (key,))

        await self._writer.submit(op)

    # -- reads ---------------------------------------------------------------------------------------

    async def find_message(self, sender: str, message_id: str) -> StoredMessage | None:
        if self._closed:
            raise Unavailable("sqlite store: closed")
        loop = asyncio.get_running_loop()
        if self._finds_loop is not loop:  # lookups queued on a loop that stopped before their batch ran
            self._finds, self._finds_loop = [], loop
        future: asyncio.Future[StoredMessage | _Busy | None] = loop.create_future()
        self._finds.append((sender, message_id, future))
        if len(self._finds) == 1:  # the first of this iteration schedules the batch (Rule 4c)
            loop.call_soon(self._find_batch)
        found = await future
        if isinstance(found, _Busy):  # SQLite would have made the loop wait: a reader thread asks (Rule 4b)
            rows = await self._read(lambda conn: sqlite_messages.find_rows(conn, [(sender, message_id)]))
            return None if rows[0] is None else sqlite_messages.message_from_row(rows[0])
        return found

    def _find_batch(self) -> None:
        """Rule 4c: every lookup queued in this iteration, in one read transaction on the loop's connection; when
        SQLite would make that wait, each goes to the reader threads (Rule 4b)."""
        batch = [entry for entry in self._finds if not entry[2].done()]  # a cancelled caller needs no answer
        self._finds = []
        if not batch:
            return
        keys = [(sender, message_id) for sender, message_id, _ in batch]
        try:
            rows = self._loop_read(lambda conn: sqlite_messages.find_rows(conn, keys))
        except Unavailable as exc:
            for _, _, future in batch:
                future.set_exception(exc)
            return
        if isinstance(rows, _Busy) and self._loop_conn is not None and self._loop_conn.in_transaction:
            stuck, self._loop_conn = self._loop_conn, None  # even its ROLLBACK failed: never keep a snapshot open
            stuck.close()
        answers: list[Any] = [_BUSY] * len(batch) if isinstance(rows, _Busy) else rows
        for (_, _, future), row in zip(batch, answers, strict=True):
            try:
                future.set_result(row if row is None or row is _BUSY else sqlite_messages.message_from_row(row))
            except Exception as exc:  # a row that does not read back: its caller gets the error, the rest their rows
                future.set_exception(exc)

    async def pull(self, recipient: str, after: int, limit: int) -> list[InboxItem]:
        if limit < 1:
            raise BadRequest("limit must be positive", field="limit")
        if limit > PULL_LIMIT_MAX:
            raise LimitExceeded(f"limit {limit} > {PULL_LIMIT_MAX}", field="limit")
        if not 0 <= after <= _SQLITE_INT_MAX:
            raise BadRequest("after must be a cursor (>= 0)", field="after")

        def op(conn: sqlite3.Connection) -> list[InboxItem]:
            rows = conn.execute(sqlite_messages.PULL_SQL, (recipient, after, limit)).fetchall()
            return [InboxItem(row[0], recipient, sqlite_messages.message_from_row(row[1:])) for row in rows]

        return await self._read(op)

    async def inbox_owners(self, cursors: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        wanted = sorted({c for c in cursors if 0 < c <= _SQLITE_INT_MAX})
        if len(wanted) > ACK_CURSORS_MAX:
            raise LimitExceeded(f"{len(wanted)} cursors > {ACK_CURSORS_MAX}", field="cursors")

        def op(conn: sqlite3.Connection) -> dict[int, tuple[str, str, str]]:
            marks = ",".join("?" * len(wanted))
            sql = f"SELECT cursor, recipient, sender, message_id FROM inbox WHERE cursor IN ({marks})"  # noqa: S608 - placeholders only
            return {row[0]: (row[1], row[2], row[3]) for row in conn.execute(sql, wanted)}

        return await self._read(op) if wanted else {}

    async def ledger_size(self) -> int:
        def op(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger").fetchone()[0])

        return await self._read(op)

    async def probe_write(self) -> None:
        """One replay-cache row (a key no caller can claim), written through the group-commit writer like
        every other write: BEGIN, the row, COMMIT with its WAL fsync. A full disk fails it with ``Unavailable``."""
        expires = to_micros(require_aware(self._clock.now(), "clock.now()")) + PROBE_ROW_TTL_MICROS

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO replay (key, expires) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires = ?",
                (PROBE_KEY, expires, expires),
            )

        await self._writer.submit(op)

    async def ledger_entries(self, start: int, end: int) -> list[LedgerEntry]:
        if not 0 <= start <= _SQLITE_INT_MAX:
            raise BadRequest("start must be >= 0", field="start")
        if not start <= end <= _SQLITE_INT_MAX:
            raise BadRequest("end must be >= start", field="end")
        if end - start > LEDGER_RANGE_MAX:
            raise LimitExceeded(f"range of {end - start} entries > {LEDGER_RANGE_MAX}", field="end")

        def op(conn: sqlite3.Connection) -> list[LedgerEntry]:
            rows = conn.execute(
                "SELECT idx, data FROM ledger WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end)
            ).fetchall()
            return [LedgerEntry(int(idx), bytes(data)) for idx, data in rows]

        return await self._read(op)

    # -- push delivery state (gateway.infra.sqlite_delivery) ------------------------------------------

    async def due_deliveries(self, recipient: str, now: datetime, limit: int) -> list[DueDelivery]:
        if not 1 <= limit <= PULL_LIMIT_MAX:
            raise LimitExceeded(f"limit must be in 1..{PULL_LIMIT_MAX}", field="limit")
        at = to_micros(require_aware(now, "now"))

        def op(conn: sqlite3.Connection) -> list[DueDelivery]:
            rows = conn.execute(sqlite_delivery.DUE_SQL, (recipient, at, limit)).fetchall()
            return [
                DueDelivery(InboxItem(row[1], recipient, sqlite_messages.message_from_row(row[2:])), int(row[0]))
                for row in rows
            ]

        return await self._read(op)

    async def record_delivery(self, result: DeliveryResult, event: AuditEvent) -> DeliveryState:
        return await self._writer.submit(
            sqlite_delivery.record_op(result, event.canonical(), sqlite_messages.append_leaf)
        )

    async def dead_letters(self, recipient: str | None, after: int, limit: int) -> list[DeliveryState]:
        return await self._read(sqlite_delivery.dead_letters_op(recipient, after, limit))

    async def redrive(self, cursors: Sequence[int], event: AuditEvent) -> int:
        return await self._writer.submit(
            sqlite_delivery.redrive_op(cursors, event.canonical(), sqlite_messages.append_leaf, event.at)
        )

    async def inbox_depths(self) -> dict[str, int]:
        return await self._read(sqlite_delivery.inbox_depths)

    async def dead_letter_count(self) -> int:
        return await self._read(sqlite_delivery.dead_letter_count)

    async def recipient_states(self, sender: str, message_id: str) -> list[RecipientState]:
        return await self._read(sqlite_delivery.recipient_states_op(sender, message_id))

    # -- lifecycle -----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish every queued write, stop the writer, then close the reader connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._writer.close()  # Unavailable when its closing checkpoint cannot run (a full disk)
        finally:
            await self._close_readers()

    async def _close_readers(self) -> None:
        await asyncio.to_thread(self._readers.shutdown, True)
        with self._reader_lock:
            conns, self._reader_conns = self._reader_conns, []
        if self._loop_conn is not None:
            conns.append(self._loop_conn)
            self._loop_conn = None
        for conn in conns:
            conn.close()

    async def _read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise Unavailable("sqlite store: closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._run_read, op)

    def _loop_read(self, op: Callable[[sqlite3.Connection], T]) -> T | _Busy:
        """Rule 4b: ``op`` on the event loop's connection, or ``_BUSY`` when SQLite would make it wait."""
        if self._closed:
            raise Unavailable("sqlite store: closed")
        conn = self._loop_conn
        try:
            if conn is None:
                conn = self._loop_conn = connect_reader(self.path, busy_timeout_ms=0)
            return op(conn)
        except sqlite3.OperationalError:
            return _BUSY  # busy, locked (or worse: then the reader threads report it as Unavailable)
        except sqlite3.Error as exc:
            raise Unavailable(f"sqlite store read: {type(exc).__name__}: {exc}") from exc

    def _run_read(self, op: Callable[[sqlite3.Connection], T]) -> T:
        try:
            conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
            if conn is None:
                conn = connect_reader(self.path)
                self._local.conn = conn
                with self._reader_lock:
                    self._reader_conns.append(conn)
            return op(conn)
        except sqlite3.Error as exc:
            raise Unavailable(f"sqlite store read: {type(exc).__name__}: {exc}") from exc


if TYPE_CHECKING:

    def _satisfies_the_port(store: SqliteStore) -> Store:  # mypy checks SqliteStore against ports.Store
        return store

    def _relays(store: SqliteStore) -> RelayStore:  # ... and against ports.RelayStore (forwards, recalls)
        return store
