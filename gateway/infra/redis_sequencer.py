"""The sequencer of the Redis store: ONE thread per process appends to the shared ledger, in batches.

How several processes keep ONE dense Merkle log while the receipt factory is sync Python:

Rule 1: every ledger-appending write (accept, record, ack, push attempt, redrive) is queued to this process's
        sequencer thread with an asyncio future; the thread drains the queue into a batch (group commit, like
        the SQLite writer) and resolves the futures with ``call_soon_threadsafe``. A thread, not a task: the
        batch's round trips and receipt signatures do not wait behind the event loop's request work.
Rule 2: for a batch the thread (a) runs ``SEQUENCE`` in check mode: the ledger size N and the invalid
        operations (duplicates, foreign cursors), writing nothing; those fail at once, so no receipt is signed
        for a known duplicate; (b) calls the receipt factory of the k-th surviving operation with index N + k
        (a factory that raises fails only its own operation); (c) runs ``SEQUENCE`` with expected size N: the
        script writes the whole batch (messages, inbox entries, receipts, leaves) only if ``LLEN ledger`` is
        still N and every operation is still valid; otherwise it writes nothing, returns the new size and
        verdicts, and the thread goes back to (b).
Rule 3: the ledger size is the fencing token: a receipt signed for index N can only ever be stored at index N.
        There is no lock to expire, no index is reserved (a process that dies between (b) and (c) leaves
        nothing behind), and indexes stay dense. It is optimistic: two processes appending at once may sign a
        batch twice (``conflicts`` counts these retries); some process always wins, so there is no livelock.
Rule 4: two accepts of the same (sender, id) never share a batch (the later one waits for the next batch), so
        the first decides and the second sees a plain duplicate.
Rule 5: the queue is bounded (``Overloaded`` when full); ``close`` lets every queued write finish first.
Rule 6: a port decision ("P", issue 17) is a plan numbered from the port's stream length its caller read: the
        script writes it only while that length holds (else ``PortMoved``: the caller re-reads and re-plans)
        and the message is not applied yet (else the result is None), with its ``port_update`` leaf and, for a
        refused gate-out, the alert message and its leaf first: one operation, two leaves, one fencing token.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis
from redis.exceptions import RedisError

from gateway.core.errors import DuplicateConflict, GatewayError, Internal, NotFound, Overloaded, Unavailable
from gateway.infra import redis_codec as codec
from gateway.infra.redis_scripts import SEQUENCE
from gateway.interfaces.protocols import (
    DeliveryOutcome,
    DeliveryResult,
    DeliveryState,
    Recall,
    ReceiptFactory,
    Relays,
    StoredMessage,
    inbox_targets,
)

# Operations per SEQUENCE script: a script blocks Redis while it runs; 256 small writes take well under 5 ms.
BATCH_MAX = 256
# Writes waiting for the sequencer; beyond it callers get Overloaded (429) instead of unbounded memory.
WRITE_QUEUE_MAX = 4096
# Transport statuses are short ("503", "timeout"); longer ones are cut, as in the SQLite store.
STATUS_MAX = 200
CODE_MAX = 64  # a relay's peer error code (``DeliveryResult.code``)


class PortMoved(Unavailable):
    """Rule 6: the port's stream grew after the plan was made (the caller re-plans; never reaches a client)."""


@dataclass(frozen=True, slots=True)
class PortWrite:
    """What a port decision writes (Rule 6): ``changes`` as (entry, standing field, standing, B/L, container)."""

    port: str
    mark: str
    head: int
    changes: list[tuple[str, str, str, str, str]]
    result: Any  # the plan, the operation's result once written


@dataclass(slots=True)
class Op:
    """One queued write. ``kind``: "A" accept, "F" forward, "C" recall, "R" record, "K" ack, "D" push attempt,
    "V" redrive, "P" port decision (``message``: its alert, if any)."""

    kind: str
    leaf: bytes
    message: StoredMessage | None = None
    make_receipt: ReceiptFactory | None = None
    key: bytes = b""  # the message suffix of an accept, forward or recall
    original: bytes = b""  # the suffix of the message a forward or recall refers to
    whole: bool = False  # a recall of the whole tree (``gateway.core.forwarding.recall_reaches_root``)
    port: PortWrite | None = None  # a port decision's writes
    message_leaf: bytes = b""  # the leaf of a port decision's alert message (``leaf`` is its port_update)
    recipient: str = ""
    cursors: list[int] = field(default_factory=list)
    delivery: DeliveryResult | None = None
    relays: Relays | None = None  # an accept's, forward's or recall's remote recipients by peer (ports.Store Rule 4)
    at: str = ""  # RFC 3339 time of a push attempt, redrive or ack
    future: asyncio.Future[Any] | None = None
    loop: asyncio.AbstractEventLoop | None = None


_Outcome = tuple[Op, bool, Any]
_ACCEPTS = ("A", "F", "C")  # operations that store a message (and call its receipt factory)


def _signs(op: Op) -> bool:
    """The operation stores a message, so its receipt is signed for the index of its (first) leaf."""
    return op.kind in _ACCEPTS or (op.kind == "P" and op.message is not None)


def _width(op: Op) -> int:
    """Ledger leaves the operation appends (a port decision with an alert: the alert's and its own)."""
    return 2 if op.kind == "P" and op.message is not None else 1


class Sequencer:
    """The sequencer thread over one synchronous Redis connection (its own, beside the store's async pool)."""

    def __init__(self, client: redis.Redis, base: str) -> None:
        self._client = client
        self._base = base
        self._script = client.register_script(SEQUENCE)
        self._queue: queue.Queue[Op | None] = queue.Queue(maxsize=WRITE_QUEUE_MAX)
        self._held: list[Op] = []
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="cgw-redis-sequencer", daemon=True)
        self._thread.start()
        self.batches = 0  # batches committed
        self.conflicts = 0  # batches re-signed because another process appended first

    async def submit(self, op: Op) -> Any:
        if self._closing:
            raise Unavailable("redis store: closed")
        loop = asyncio.get_running_loop()
        op.loop, op.future = loop, loop.create_future()
        try:
            self._queue.put_nowait(op)
        except queue.Full:
            raise Overloaded(f"redis store: {WRITE_QUEUE_MAX} writes queued") from None
        return await op.future

    async def close(self) -> None:
        """Finish every queued write, then stop the thread and close its connection. Idempotent."""
        if self._closing:
            return
        self._closing = True
        await asyncio.to_thread(self._queue.put, None)
        await asyncio.to_thread(self._thread.join)
        self._client.close()

    # -- the thread --------------------------------------------------------------------------------

    def _run(self) -> None:
        stop = False
        while not stop or self._held:
            batch, stop = self._next_batch(stop)
            if not batch:
                continue
            outcomes: list[_Outcome] = []
            try:
                self._commit(batch, outcomes)
            except RedisError as exc:
                down = Unavailable(f"redis store: {type(exc).__name__}: {exc}")
                outcomes += [(op, False, down) for op in batch]
            except Exception as exc:  # the thread must outlive any single batch
                error = exc if isinstance(exc, GatewayError) else Internal(f"redis sequencer: {type(exc).__name__}")
                outcomes += [(op, False, error) for op in batch]
            _post(outcomes)
        leftover: list[_Outcome] = []
        while True:  # a submit that raced close(): fail it rather than leave it waiting forever
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftover.append((item, False, Unavailable("redis store: closed")))
        _post(leftover)

    def _next_batch(self, stopped: bool) -> tuple[list[Op], bool]:
        pending, self._held = self._held, []
        if not pending and not stopped:
            first = self._queue.get()
            if first is None:
                return [], True
            pending = [first]
        stop = stopped
        while not stop and len(pending) < BATCH_MAX:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stop = True
            else:
                pending.append(item)
        batch: list[Op] = []
        keys: set[bytes] = set()
        for op in pending:
            if _signs(op) and op.key in keys:
                self._held.append(op)  # Rule 4
            elif len(batch) >= BATCH_MAX:
                self._held.append(op)
            else:
                keys.add(op.key)
                batch.append(op)
        return batch, stop

    def _commit(self, batch: list[Op], outcomes: list[_Outcome]) -> None:
        _, size, verdicts = self._sequence(batch, -1, {})
        live = _reject(batch, verdicts, outcomes)
        while live:
            receipts: dict[int, bytes] = {}
            survivors: list[Op] = []
            offset = 0
            for op in live:
                if _signs(op):
                    try:
                        receipts[id(op)] = _sign(op, size + offset)
                    except Exception as exc:  # a failing factory fails only its own message
                        failed = exc if isinstance(exc, GatewayError) else Internal(f"receipt: {type(exc).__name__}")
                        outcomes.append((op, False, failed))
                        continue
                survivors.append(op)
                offset += _width(op)
            live = survivors
            if not live:
                return
            expected = size
            written, size, values = self._sequence(live, expected, receipts)
            if written:
                self.batches += 1
                for op, index, value in zip(live, _indexes(live, expected), values, strict=True):
                    outcomes.append((op, True, _result(op, index, receipts, value)))
                return
            self.conflicts += 1
            live = _reject(live, values, outcomes)

    def _sequence(self, batch: list[Op], expected: int, receipts: dict[int, bytes]) -> tuple[bool, int, list[Any]]:
        """Run SEQUENCE: (written, ledger size before, results if written else verdicts)."""
        args: list[bytes | str | int] = [self._base, expected, len(batch)]
        for op, index in zip(batch, _indexes(batch, expected), strict=True):
            args += _encode(op, index if expected >= 0 else -1, receipts.get(id(op), b""))
        reply = self._script(args=args)
        if reply[0] == b"OK":
            return True, int(reply[1]), list(reply[2:])
        return False, int(reply[1]), [int(v) for v in reply[2:]]


def _indexes(batch: list[Op], first: int) -> list[int]:
    """The ledger index of each operation's first leaf when the batch is written from ``first``."""
    indexes: list[int] = []
    for op in batch:
        indexes.append(first)
        first += _width(op)
    return indexes


def _sign(op: Op, index: int) -> bytes:
    assert op.message is not None
    assert op.make_receipt is not None
    receipt = op.make_receipt(index, op.message.received_at)
    if not isinstance(receipt, bytes):
        raise Internal("the receipt factory returned no bytes")
    return receipt


def _encode(op: Op, index: int, receipt: bytes) -> list[bytes | str | int]:
    """One operation's SEQUENCE arguments (see redis_scripts); index -1: check mode (no message fields)."""
    if op.kind in _ACCEPTS:
        args: list[bytes | str | int] = [op.kind]
        if op.kind != "A":
            args.append(op.original)
        if op.kind == "C":
            args.append("1" if op.whole else "0")
        return args + _message_args(op, op.leaf, index, receipt)
    if op.kind == "P":
        w = op.port
        assert w is not None
        args = ["P", w.port, w.mark, w.head, len(w.changes)]
        for change in w.changes:
            args += change
        args.append(op.leaf)
        if op.message is None:
            return [*args, "0"]
        return [*args, "1", *_message_args(op, op.message_leaf, index, receipt)]
    if op.kind == "R":
        return ["R", op.leaf]
    if op.kind == "K":
        return ["K", op.recipient, op.leaf, op.at, len(op.cursors), *op.cursors]
    if op.kind == "D":
        d = op.delivery
        assert d is not None
        next_at = codec.micros(d.next_attempt_at, "next_attempt_at") if d.next_attempt_at is not None else ""
        status = d.status[:STATUS_MAX]
        receipt = d.receipt if d.outcome is DeliveryOutcome.DELIVERED else b""
        return [
            "D",
            op.recipient,
            op.leaf,
            op.cursors[0],
            d.outcome.value,
            status,
            op.at,
            next_at,
            d.attempt - 1,
            receipt,
            d.code[:CODE_MAX],
        ]
    return ["V", op.leaf, op.at, len(op.cursors), *op.cursors]


def _message_args(op: Op, leaf: bytes, index: int, receipt: bytes) -> list[bytes | str | int]:
    """A message's SEQUENCE arguments: suffix leaf n_recipients recipient... n_fields field value ..."""
    assert op.message is not None
    # a recall's inbox entries are its holders, which the script finds (it sends the recall's own recipients)
    targets = op.message.recipients if op.kind == "C" else inbox_targets(op.message.recipients, op.relays or {})
    recipients = list(dict.fromkeys(targets))
    args: list[bytes | str | int] = [op.key, leaf, len(recipients), *recipients]
    if index < 0:
        return [*args, 0]
    values = codec.message_fields(op.message, receipt, index)
    if op.relays:
        values.append(("relays", codec.relays_field(op.relays)))
    args.append(len(values))
    for name, value in values:
        args += [name, value]
    return args


def _result(op: Op, index: int, receipts: dict[int, bytes], value: Any) -> Any:
    if op.kind in _ACCEPTS:
        assert op.message is not None
        stored = op.message.with_receipt(receipts[id(op)], index)
        if op.kind != "C":
            return stored
        holders, copies = value
        return Recall(stored, tuple(h.decode() for h in holders), tuple(codec.unsuffix(c) for c in copies))
    if op.kind == "R":
        return index
    if op.kind == "P":
        assert op.port is not None
        return op.port.result
    if op.kind == "D":
        d = op.delivery
        assert d is not None
        attempts, outcome, key = value
        sender, message_id = codec.unsuffix(key)
        kept = DeliveryOutcome(outcome.decode())
        return DeliveryState(
            cursor=d.cursor,
            recipient=d.recipient,
            sender=sender,
            message_id=message_id,
            attempts=int(attempts),
            outcome=kept,
            last_status=d.status[:STATUS_MAX],
            updated_at=datetime.fromisoformat(op.at),
            next_attempt_at=d.next_attempt_at if kept is DeliveryOutcome.RETRY else None,
            receipt=d.receipt if kept is DeliveryOutcome.DELIVERED else b"",
            code=d.code[:CODE_MAX],
        )
    return int(value)  # ack: newly acknowledged; redrive: redriven


def _reject(batch: list[Op], verdicts: list[int], outcomes: list[_Outcome]) -> list[Op]:
    """Fail the operations the script found invalid; return the rest (in order)."""
    live: list[Op] = []
    for op, verdict in zip(batch, verdicts, strict=True):
        if verdict == 0:
            live.append(op)
        elif verdict == -4:  # Rule 6: applied before (a recovery pass or another process)
            outcomes.append((op, True, None))
        elif verdict == -3:
            assert op.port is not None
            outcomes.append((op, False, PortMoved(f"port {op.port.port} moved past seq {op.port.head}")))
        elif verdict == -5:
            assert op.delivery is not None
            d = op.delivery
            stale = DuplicateConflict(f"attempt {d.attempt} of cursor {d.cursor} is stale", field="attempt")
            outcomes.append((op, False, stale))
        elif verdict == -2:
            original = "/".join(codec.unsuffix(op.original))
            outcomes.append((op, False, NotFound(f"no message {original}", field="original")))
        elif verdict < 0:
            assert op.message is not None
            m = op.message
            outcomes.append((op, False, DuplicateConflict(f"{m.sender}/{m.message_id} already accepted", field="id")))
        else:
            cursor = op.cursors[verdict - 1]
            path = "cursor" if op.kind == "D" else f"cursors[{verdict - 1}]"
            outcomes.append((op, False, NotFound(f"no cursor {cursor} for {op.recipient}", field=path)))
    return live


def _post(outcomes: list[_Outcome]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        assert outcome[0].loop is not None
        by_loop.setdefault(outcome[0].loop, []).append(outcome)
    for loop, mine in by_loop.items():
        # RuntimeError: the loop is closed, so nobody is waiting any more; the writes themselves stand.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, mine)


def _resolve(outcomes: list[_Outcome]) -> None:
    for op, ok, value in outcomes:
        future = op.future
        if future is None or future.done():
            continue  # the caller was cancelled; a write that succeeded stands regardless
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
