"""The shared store: ``gateway.ports.Store`` on Redis (redis-py asyncio), for several gateway processes.

Every gateway process opens its own ``RedisStore`` on the same Redis and ``key_prefix``; they share one
ledger, one set of inboxes and one replay cache. Key layout and the Lua scripts: ``redis_scripts``.

Sequencing (how several processes keep ONE dense Merkle log while the receipt factory is Python):
Rule 1: every ledger-appending write (accept, record, ack) goes to this process's ONE sequencer task, which
        drains its queue into a batch (group commit, as the SQLite writer does).
Rule 2: for a batch the sequencer (a) runs ``SEQUENCE`` in check mode: ledger size N and the invalid
        operations (duplicates, foreign cursors) without writing; those fail at once, so no receipt is signed
        for a known duplicate; (b) calls the receipt factory for the k-th surviving operation with index
        N + k (a factory that raises fails only its own operation); (c) runs ``SEQUENCE`` with expected size N:
        the script writes the whole batch (messages, inbox entries, receipts, leaves) only if ``LLEN ledger``
        is still N and every operation is still valid, otherwise it writes nothing and returns the new size and
        verdicts, and the sequencer goes back to (b). The ledger size is the fencing token: a receipt signed
        for index N can only ever be stored at index N, there is no lock to expire, no index is reserved (a
        process that dies between (b) and (c) leaves nothing behind), and indexes stay dense.
Rule 3: optimistic, so two processes writing at once may sign receipts twice (the loser re-signs for the new
        size; ``conflicts`` counts these retries). Someone always wins, so there is no livelock; the cost of a
        conflict is one batch of ECDSA signatures and one round trip.
Rule 4: two accepts of the same (sender, id) never share a batch (the later waits for the next one), so the
        first decides and the second sees a plain duplicate.
Rule 5: durability is Redis's: a reply comes after the AOF write and, with ``appendfsync always``, its
        fsync. ``open`` refuses a Redis without AOF, or one that may evict keys, unless
        ``allow_no_persistence`` (development only).
Rule 6: every redis-py exception becomes ``Unavailable`` here; no redis object leaves this module.
Rule 7: redis-py never retries a command on its own: a lost reply to ``SEQUENCE`` is ambiguous (written or
        not?), and a blind re-send could append an audit leaf twice. The caller gets ``Unavailable`` (503) and
        retries; a retried submit is then a duplicate and gets the original receipt. The next command opens a
        fresh connection, so the store recovers by itself once Redis is back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.core.audit import AuditEvent, rfc3339
from gateway.core.errors import (
    BadRequest,
    DuplicateConflict,
    GatewayError,
    Internal,
    LimitExceeded,
    NotFound,
    Overloaded,
    Unavailable,
)
from gateway.infra.redis_scripts import DEAD, DEPTHS, DUE, MESSAGE_FIELDS, PULL, SEQUENCE
from gateway.ports import (
    DeliveryOutcome,
    DeliveryResult,
    DeliveryState,
    DueDelivery,
    InboxItem,
    LedgerEntry,
    ReceiptFactory,
    Store,
    StoredMessage,
)

T = TypeVar("T")

# Same bounds as the SQLite store, for the same reasons: one pull / ack / ledger read / replay key is bounded.
PULL_LIMIT_MAX = 1_000
ACK_CURSORS_MAX = 1_000
LEDGER_RANGE_MAX = 1_000
REPLAY_KEY_MAX = 512
# Operations per SEQUENCE script: a script blocks Redis while it runs; 256 small writes take well under 5 ms.
BATCH_MAX = 256
# Writes waiting for the sequencer; beyond it callers get Overloaded (429) instead of unbounded memory.
WRITE_QUEUE_MAX = 4096
# Connections to Redis per process: the sequencer uses one at a time, reads the rest.
POOL_CONNECTIONS_MAX = 32
# Each Redis command must answer within this; a hung Redis fails requests with Unavailable, never hangs them.
SOCKET_TIMEOUT_SECONDS = 10.0
# key_prefix: a short name; braces are ours (the hash tag), so they are refused in the prefix.
KEY_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# Dead letters one listing may return, cursors in one redrive (as the SQLite store).
DEAD_LETTER_PAGE_MAX = 1_000
REDRIVE_CURSORS_MAX = 1_000
# Due retries one due_deliveries call looks at (beside the never-attempted items): bounds the script's work.
DUE_RETRY_SCAN_MAX = 1_000
# Transport statuses are short ("503", "timeout"); longer ones are cut, as in the SQLite store.
STATUS_MAX = 200
# Cursors and indexes fit a Redis integer and, as ZSET scores, a double exactly.
_INT_MAX = 2**53

_NO_PERSISTENCE = "the Redis at {url} {why}; the gateway needs AOF (appendonly yes) and maxmemory-policy noeviction"


@dataclass(frozen=True, slots=True)
class RedisPersistence:
    """What ``open`` found: appendonly, appendfsync, save and maxmemory-policy as Redis reports them."""

    appendonly: str
    appendfsync: str
    save: str
    eviction: str

    @property
    def durable(self) -> bool:
        return self.appendonly == "yes" and self.eviction == "noeviction"

    def problem(self) -> str:
        if self.appendonly != "yes":
            return "has no append-only file (appendonly no" + (", RDB snapshots only)" if self.save else ")")
        return f"may evict keys (maxmemory-policy {self.eviction})"


@dataclass(slots=True)
class _Op:
    kind: str  # "A" accept, "R" record, "K" ack, "D" push attempt, "V" redrive
    leaf: bytes
    future: asyncio.Future[Any]
    message: StoredMessage | None = None
    make_receipt: ReceiptFactory | None = None
    suffix: bytes = b""
    recipient: str = ""
    cursors: list[int] = field(default_factory=list)
    delivery: DeliveryResult | None = None
    at: str = ""


class RedisStore:
    """``gateway.ports.Store`` on Redis. Build it with :meth:`open`; finish with :meth:`close`."""

    def __init__(self, client: aioredis.Redis, key_prefix: str, persistence: RedisPersistence) -> None:
        self.persistence = persistence
        self._client = client
        self._base = "{" + key_prefix + "}:"
        self._sequence = client.register_script(SEQUENCE)
        self._pull = client.register_script(PULL)
        self._due = client.register_script(DUE)
        self._dead = client.register_script(DEAD)
        self._depths = client.register_script(DEPTHS)
        self._queue: asyncio.Queue[_Op] = asyncio.Queue(maxsize=WRITE_QUEUE_MAX)
        self._held: list[_Op] = []
        self._closed = False
        self._task = asyncio.create_task(self._run(), name="cgw-redis-sequencer")
        self.conflicts = 0  # batches re-signed because another process appended first
        self.batches = 0

    @classmethod
    async def open(
        cls, url: str, *, key_prefix: str, allow_no_persistence: bool = False, password: str | None = None
    ) -> RedisStore:
        """Connect, check persistence (fail closed), start the sequencer."""
        if not KEY_PREFIX_PATTERN.fullmatch(key_prefix):
            raise Unavailable(f"key_prefix must match {KEY_PREFIX_PATTERN.pattern}", field="store.key_prefix")
        try:
            client = aioredis.Redis.from_url(
                url,
                decode_responses=False,
                password=password,
                max_connections=POOL_CONNECTIONS_MAX,
                socket_timeout=SOCKET_TIMEOUT_SECONDS,
                socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),  # Rule 7: no silent re-sends
            )
        except (ValueError, RedisError) as exc:
            raise Unavailable(f"redis store: bad redis_url: {exc}", field="store.redis_url") from exc
        safe_url = _without_password(url)
        try:
            persistence = await _persistence(client)
        except RedisError as exc:
            await client.aclose()
            raise Unavailable(f"redis store: cannot check {safe_url}: {type(exc).__name__}: {exc}") from exc
        if not persistence.durable and not allow_no_persistence:
            await client.aclose()
            raise Unavailable(_NO_PERSISTENCE.format(url=safe_url, why=persistence.problem()), field="store.redis_url")
        return cls(client, key_prefix, persistence)

    # -- writes: through the sequencer ---------------------------------------------------------------

    async def accept(self, message: StoredMessage, event: AuditEvent, make_receipt: ReceiptFactory) -> StoredMessage:
        if message.received_at.utcoffset() is None:
            raise Internal("received_at must be timezone-aware", field="received_at")
        suffix = _suffix(message.sender, message.message_id)
        result: StoredMessage = await self._submit(
            _Op("A", event.canonical(), self._future(), message=message, make_receipt=make_receipt, suffix=suffix)
        )
        return result

    async def record(self, event: AuditEvent) -> int:
        result: int = await self._submit(_Op("R", event.canonical(), self._future()))
        return result

    async def ack(self, recipient: str, cursors: Sequence[int], event: AuditEvent) -> int:
        if len(cursors) > ACK_CURSORS_MAX:
            raise LimitExceeded(f"{len(cursors)} cursors > {ACK_CURSORS_MAX}", field="cursors")
        wanted = list(cursors)
        for i, cursor in enumerate(wanted):
            if not 0 < cursor <= _INT_MAX:
                raise NotFound(f"no cursor {cursor} for {recipient}", field=f"cursors[{i}]")
        result: int = await self._submit(
            _Op("K", event.canonical(), self._future(), recipient=recipient, cursors=wanted)
        )
        return result

    async def claim_once(self, key: str, expires: datetime) -> bool:
        if len(key) > REPLAY_KEY_MAX:
            raise LimitExceeded(f"replay key of {len(key)} characters > {REPLAY_KEY_MAX}", field="key")
        if expires.utcoffset() is None:
            raise Internal("expires must be timezone-aware", field="expires")
        until_ms = max(1, math.ceil(expires.timestamp() * 1000))  # never shorter than asked
        claimed = await self._call(self._client.set(self._base + "r:" + key, b"1", nx=True, pxat=until_ms))
        return bool(claimed)

    # -- reads ---------------------------------------------------------------------------------------

    async def find_message(self, sender: str, message_id: str) -> StoredMessage | None:
        fields = await self._call(self._client.hgetall(self._base.encode() + b"m:" + _suffix(sender, message_id)))
        return _message(sender, message_id, fields) if fields else None

    async def pull(self, recipient: str, after: int, limit: int) -> list[InboxItem]:
        if limit < 1:
            raise BadRequest("limit must be positive", field="limit")
        if limit > PULL_LIMIT_MAX:
            raise LimitExceeded(f"limit {limit} > {PULL_LIMIT_MAX}", field="limit")
        if not 0 <= after <= _INT_MAX:
            raise BadRequest("after must be a cursor (>= 0)", field="after")
        flat = await self._call(self._pull(args=[self._base, recipient, after, limit]))
        return [InboxItem(cursor, recipient, _message(*_unsuffix(key), fields)) for cursor, key, fields in _items(flat)]

    async def ledger_size(self) -> int:
        return int(await self._call(self._client.llen(self._base + "ledger")))

    async def ledger_entries(self, start: int, end: int) -> list[LedgerEntry]:
        if not 0 <= start <= _INT_MAX:
            raise BadRequest("start must be >= 0", field="start")
        if not start <= end <= _INT_MAX:
            raise BadRequest("end must be >= start", field="end")
        if end - start > LEDGER_RANGE_MAX:
            raise LimitExceeded(f"range of {end - start} entries > {LEDGER_RANGE_MAX}", field="end")
        if end == start:
            return []
        leaves = await self._call(self._client.lrange(self._base + "ledger", start, end - 1))
        return [LedgerEntry(start + k, bytes(leaf)) for k, leaf in enumerate(leaves)]

    # -- push delivery state (ports.Store; see redis_scripts for the keys) --------------------------------

    async def due_deliveries(self, recipient: str, now: datetime, limit: int) -> list[DueDelivery]:
        if not 1 <= limit <= PULL_LIMIT_MAX:
            raise LimitExceeded(f"limit must be in 1..{PULL_LIMIT_MAX}", field="limit")
        args: list[str | int] = [self._base, recipient, _micros(now, "now"), limit, DUE_RETRY_SCAN_MAX]
        flat = await self._call(self._due(args=args))
        return [
            DueDelivery(InboxItem(cursor, recipient, _message(*_unsuffix(key), fields)), int(fields[b"attempts"]))
            for cursor, key, fields in _items(flat)
        ]

    async def record_delivery(self, result: DeliveryResult, event: AuditEvent) -> DeliveryState:
        if result.outcome is DeliveryOutcome.RETRY:
            if result.next_attempt_at is None:
                raise Internal("a retry needs next_attempt_at", field="next_attempt_at")
            _micros(result.next_attempt_at, "next_attempt_at")
        if not 0 < result.cursor <= _INT_MAX:
            raise NotFound(f"no cursor {result.cursor} for {result.recipient}", field="cursor")
        op = _Op("D", event.canonical(), self._future(), recipient=result.recipient, cursors=[result.cursor])
        op.delivery, op.at = result, rfc3339(_aware(result.at, "result.at"))
        state: DeliveryState = await self._submit(op)
        return state

    async def dead_letters(self, recipient: str | None, after: int, limit: int) -> list[DeliveryState]:
        if not 1 <= limit <= DEAD_LETTER_PAGE_MAX:
            raise LimitExceeded(f"limit must be in 1..{DEAD_LETTER_PAGE_MAX}", field="limit")
        after = max(0, min(after, _INT_MAX))
        flat = await self._call(self._dead(args=[self._base, recipient or "", after, limit]))
        return [_state(cursor, owner, fields) for cursor, owner, fields in _items(flat)]

    async def redrive(self, cursors: Sequence[int], event: AuditEvent) -> int:
        if len(cursors) > REDRIVE_CURSORS_MAX:
            raise LimitExceeded(f"{len(cursors)} cursors > {REDRIVE_CURSORS_MAX}", field="cursors")
        wanted = [c for c in dict.fromkeys(cursors) if 0 < c <= _INT_MAX]
        op = _Op("V", event.canonical(), self._future(), cursors=wanted, at=rfc3339(_aware(event.at, "event.at")))
        redriven: int = await self._submit(op)
        return redriven

    async def inbox_depths(self) -> dict[str, int]:
        flat = await self._call(self._depths(args=[self._base]))
        return {flat[k].decode(): int(flat[k + 1]) for k in range(0, len(flat), 2)}

    async def dead_letter_count(self) -> int:
        return int(await self._call(self._client.zcard(self._base + "x")))

    # -- lifecycle -----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish every queued write, stop the sequencer, close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._queue.join()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._client.aclose()

    async def delete_all(self) -> int:
        """Delete every key under this store's prefix (tests and ``redis_bench`` clean up with it)."""
        deleted = 0
        async for key in self._client.scan_iter(match=_glob_escape(self._base) + "*", count=1000):
            deleted += int(await self._client.delete(key))
        return deleted

    # -- the sequencer -------------------------------------------------------------------------------

    def _future(self) -> asyncio.Future[Any]:
        return asyncio.get_running_loop().create_future()

    async def _submit(self, op: _Op) -> Any:
        if self._closed:
            raise Unavailable("redis store: closed")
        try:
            self._queue.put_nowait(op)
        except asyncio.QueueFull:
            raise Overloaded(f"redis store: {WRITE_QUEUE_MAX} writes queued") from None
        return await op.future

    async def _run(self) -> None:
        while True:
            first = self._held.pop(0) if self._held else await self._queue.get()
            batch, held, keys = [first], [], {first.suffix} if first.kind == "A" else set()
            while len(batch) < BATCH_MAX and not self._queue.empty():
                op = self._queue.get_nowait()
                if op.kind == "A" and op.suffix in keys:
                    held.append(op)  # Rule 4
                    continue
                keys.add(op.suffix)
                batch.append(op)
            self._held.extend(held)
            try:
                await self._commit(batch)
            except GatewayError as exc:
                _fail(batch, exc)
            except RedisError as exc:
                _fail(batch, _unavailable(exc))
            except Exception as exc:  # the sequencer must outlive any single batch
                _fail(batch, Internal(f"redis sequencer: {type(exc).__name__}: {exc}"))
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _commit(self, batch: list[_Op]) -> None:
        self.batches += 1
        _, size, verdicts = await self._run_sequence(batch, -1, {})
        live = _reject(batch, verdicts)
        while live:
            receipts: dict[int, bytes] = {}
            survivors: list[_Op] = []
            for op in live:
                if op.kind == "A":
                    assert op.message is not None
                    assert op.make_receipt is not None
                    try:
                        receipt = op.make_receipt(size + len(survivors), op.message.received_at)
                        if not isinstance(receipt, bytes):
                            raise Internal("the receipt factory returned no bytes")
                    except Exception as exc:  # a failing factory fails only its own message
                        failed = exc if isinstance(exc, GatewayError) else Internal(f"receipt: {type(exc).__name__}")
                        _settle(op, failed)
                        continue
                    receipts[id(op)] = receipt
                survivors.append(op)
            live = survivors
            if not live:
                return
            expected = size
            written, size, values = await self._run_sequence(live, expected, receipts)
            if written:  # values: one result per operation (newly acked counts for acks)
                for k, op in enumerate(live):
                    _settle(op, _result(op, expected + k, receipts, values[k]))
                return
            self.conflicts += 1
            live = _reject(live, values)

    async def _run_sequence(
        self, batch: list[_Op], expected: int, receipts: dict[int, bytes]
    ) -> tuple[bool, int, list[Any]]:
        """Run SEQUENCE: (written, ledger size before, results if written else verdicts)."""
        args: list[bytes | str | int] = [self._base, expected, len(batch)]
        for k, op in enumerate(batch):
            if op.kind == "A":
                assert op.message is not None
                recipients = list(dict.fromkeys(op.message.recipients))
                args += ["A", op.suffix, op.leaf, len(recipients), *recipients]
                if expected < 0:
                    args.append(0)
                else:
                    values = _message_fields(op.message, receipts[id(op)], expected + k)
                    args.append(len(values))
                    for name, value in values:
                        args += [name, value]
            elif op.kind == "R":
                args += ["R", op.leaf]
            elif op.kind == "K":
                args += ["K", op.recipient, op.leaf, len(op.cursors), *op.cursors]
            elif op.kind == "D":
                d = op.delivery
                assert d is not None
                next_at = _micros(d.next_attempt_at, "next_attempt_at") if d.next_attempt_at is not None else ""
                args += ["D", op.recipient, op.leaf, op.cursors[0], d.outcome.value, d.status[:STATUS_MAX]]
                args += [op.at, next_at]
            else:
                args += ["V", op.leaf, op.at, len(op.cursors), *op.cursors]
        reply = await self._sequence(args=args)
        if reply[0] == b"OK":
            return True, int(reply[1]), list(reply[2:])
        return False, int(reply[1]), [int(v) for v in reply[2:]]

    async def _call(self, awaitable: Any) -> Any:
        if self._closed:
            raise Unavailable("redis store: closed")
        try:
            return await awaitable
        except RedisError as exc:
            raise _unavailable(exc) from exc


def _result(op: _Op, index: int, receipts: dict[int, bytes], value: Any) -> Any:
    if op.kind == "A":
        assert op.message is not None
        return dataclasses.replace(op.message, receipt=receipts[id(op)], leaf_index=index)
    if op.kind == "R":
        return index
    if op.kind == "D":
        d = op.delivery
        assert d is not None
        attempts, outcome, suffix = value
        sender, message_id = _unsuffix(suffix)
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
        )
    return int(value)  # ack: newly acknowledged; redrive: redriven


def _reject(batch: list[_Op], verdicts: list[int]) -> list[_Op]:
    """Fail the operations the script found invalid; return the rest (in order)."""
    live: list[_Op] = []
    for op, verdict in zip(batch, verdicts, strict=True):
        if verdict == 0:
            live.append(op)
        elif verdict < 0:
            assert op.message is not None
            m = op.message
            _settle(op, DuplicateConflict(f"{m.sender}/{m.message_id} already accepted", field="id"))
        else:
            cursor = op.cursors[verdict - 1]
            path = "cursor" if op.kind == "D" else f"cursors[{verdict - 1}]"
            _settle(op, NotFound(f"no cursor {cursor} for {op.recipient}", field=path))
    return live


def _settle(op: _Op, outcome: Any) -> None:
    if op.future.done():
        return  # the caller was cancelled; a write that succeeded stands regardless
    if isinstance(outcome, BaseException):
        op.future.set_exception(outcome)
    else:
        op.future.set_result(outcome)


def _fail(batch: list[_Op], error: GatewayError) -> None:
    for op in batch:
        _settle(op, error)


def _unavailable(exc: RedisError) -> Unavailable:
    error = Unavailable(f"redis store: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


async def _persistence(client: aioredis.Redis) -> RedisPersistence:
    found: dict[str, str] = {}
    for name in ("appendonly", "appendfsync", "save", "maxmemory-policy"):
        reply: dict[Any, Any] = await client.config_get(name)
        found[name] = _text(reply.get(name.encode(), reply.get(name, b"")))
    return RedisPersistence(found["appendonly"], found["appendfsync"], found["save"], found["maxmemory-policy"])


def _items(flat: list[Any]) -> list[tuple[int, bytes, dict[bytes, bytes]]]:
    """Split a flat script reply {cursor, key, n, field, value, ...} into (cursor, key, fields)."""
    items: list[tuple[int, bytes, dict[bytes, bytes]]] = []
    i = 0
    while i < len(flat):
        end = i + 3 + int(flat[i + 2])
        items.append((int(flat[i]), flat[i + 1], dict(zip(flat[i + 3 : end : 2], flat[i + 4 : end : 2], strict=True))))
        i = end
    return items


def _state(cursor: int, owner: bytes, fields: dict[bytes, bytes]) -> DeliveryState:
    recipient, _, suffix = owner.decode().partition("\n")
    sender, message_id = _unsuffix(suffix.encode())
    outcome = DeliveryOutcome(fields[b"outcome"].decode())
    next_at = fields.get(b"next_at", b"")
    return DeliveryState(
        cursor=cursor,
        recipient=recipient,
        sender=sender,
        message_id=message_id,
        attempts=int(fields[b"attempts"]),
        outcome=outcome,
        last_status=fields[b"status"].decode(),
        updated_at=datetime.fromisoformat(fields[b"updated_at"].decode()),
        next_attempt_at=_from_micros(int(next_at)) if next_at else None,
    )


def _aware(at: datetime, name: str) -> datetime:
    if at.utcoffset() is None:
        raise Internal(f"{name} must be timezone-aware", field=name)
    return at


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(at: datetime, name: str) -> int:
    return (_aware(at, name) - _EPOCH) // timedelta(microseconds=1)


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _suffix(sender: str, message_id: str) -> bytes:
    """Unambiguous key part for (sender, id): the sender's length first, so no separator can be forged."""
    s = sender.encode()
    return str(len(s)).encode() + b":" + s + b":" + message_id.encode()


def _unsuffix(suffix: bytes) -> tuple[str, str]:
    length, _, rest = suffix.partition(b":")
    n = int(length)
    return rest[:n].decode(), rest[n + 1 :].decode()


def _message_fields(message: StoredMessage, receipt: bytes, index: int) -> list[tuple[str, bytes | str | int]]:
    values: dict[str, bytes | str | int] = {
        "type": message.type,
        "recipients": json.dumps(list(message.recipients)),
        "jws": message.jws,
        "payload": message.payload,
        "digest": message.digest,
        "received_at": rfc3339(message.received_at),
        "receipt": receipt,
        "leaf_index": index,
    }
    return [(name, values[name]) for name in MESSAGE_FIELDS]


def _message(sender: str, message_id: str, fields: dict[bytes, bytes]) -> StoredMessage:
    return StoredMessage(
        sender=sender,
        message_id=message_id,
        type=fields[b"type"].decode(),
        recipients=tuple(str(r) for r in json.loads(fields[b"recipients"])),
        jws=fields[b"jws"].decode(),
        payload=bytes(fields[b"payload"]),
        digest=fields[b"digest"].decode(),
        received_at=datetime.fromisoformat(fields[b"received_at"].decode()).astimezone(UTC),
        receipt=bytes(fields[b"receipt"]),
        leaf_index=int(fields[b"leaf_index"]),
    )


def _without_password(url: str) -> str:
    return re.sub(r"//[^@/]*@", "//***@", url)


def _glob_escape(text: str) -> str:
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


if TYPE_CHECKING:

    def _satisfies_the_port(store: RedisStore) -> Store:  # mypy checks RedisStore against ports.Store
        return store
