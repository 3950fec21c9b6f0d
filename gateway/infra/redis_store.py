"""The shared store: ``gateway.interfaces.protocols.Store`` on Redis (redis-py), for several gateway processes.

Every gateway process opens its own ``RedisStore`` on the same Redis and ``key_prefix``; they share one
ledger, one set of inboxes, one replay cache and one push-delivery state. Key layout and the Lua scripts:
``redis_scripts``; how the ledger stays ONE dense Merkle log across processes: ``redis_sequencer``.

Rule 1: every write that appends a ledger leaf goes through this process's sequencer (one thread, batches, the
        ledger size as fencing token). Reads and the replay claim go straight to Redis on an asyncio pool; each
        read that needs several keys is one script, hence one consistent snapshot.
Rule 2: durability is Redis's: a reply comes after the AOF write and, with ``appendfsync always``, its fsync.
        ``open`` refuses a Redis without AOF, one that never fsyncs it (``appendfsync no``), or one that may
        evict keys, unless ``allow_no_persistence`` (development only).
Rule 3: every redis-py exception becomes ``Unavailable`` here or in the sequencer; no redis object leaves
        these modules.
Rule 4: redis-py never retries a command on its own: a lost reply to ``SEQUENCE`` is ambiguous (written or
        not?), and a blind re-send could append an audit leaf twice. The caller gets ``Unavailable`` (503) and
        retries; a retried submit is then a duplicate and gets the original receipt. The next command opens a
        fresh connection, so the store recovers by itself once Redis is back.
Rule 5: every untrusted number or list that reaches the store is bounded by a named limit below (the same
        limits as the SQLite store).
Rule 6: a cursor that does not exist and a cursor of another recipient get the same ``NotFound``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from gateway.core.audit import AuditEvent, rfc3339
from gateway.core.errors import BadRequest, LimitExceeded, NotFound, Unavailable
from gateway.infra import redis_codec as codec
from gateway.infra.redis_scripts import COPIES, DEAD, DEPTHS, DUE, PULL, STATES
from gateway.infra.redis_sequencer import Op, PortWrite, Sequencer
from gateway.interfaces.protocols import (
    DeliveryOutcome,
    DeliveryResult,
    DeliveryState,
    DueDelivery,
    InboxItem,
    LedgerEntry,
    PolicyBoard,
    PortLedger,
    Recall,
    ReceiptFactory,
    RecipientState,
    Relays,
    RelayStore,
    Store,
    StoredMessage,
    check_relays,
)

# Items one pull (or due_deliveries) may return, cursors in one ack, entries in one ledger read.
PULL_LIMIT_MAX = 1_000
ACK_CURSORS_MAX = 1_000
LEDGER_RANGE_MAX = 1_000
# Replay keys are ids and fingerprints; anything longer is not one of ours.
REPLAY_KEY_MAX = 512
# Dead letters one listing may return, cursors in one redrive.
DEAD_LETTER_PAGE_MAX = 1_000
REDRIVE_CURSORS_MAX = 1_000
# Due retries one due_deliveries call looks at (beside the never-attempted items): bounds the script's work.
DUE_RETRY_SCAN_MAX = 1_000
# Connections to Redis per process for reads and replay claims (the sequencer has its own one).
POOL_CONNECTIONS_MAX = 32
# The key ``probe_write`` sets expires after this (it is rewritten at each readiness probe).
PROBE_TTL_MS = 60_000
# ``probe_write`` calls Redis full below this much room under maxmemory: room for a batch of messages of the
# largest accepted size (limits.max_body_bytes, 2 MiB by default) with their evidence and receipts.
MEMORY_HEADROOM_BYTES = 4 << 20
# Each Redis command must answer within this; a hung Redis fails requests with Unavailable, never hangs them.
SOCKET_TIMEOUT_SECONDS = 10.0
# key_prefix: a short name; braces are ours (the hash tag), so they are refused in the prefix.
KEY_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
# A policy set digest (SHA-256, hex), as published on the policy board.
POLICY_DIGEST = re.compile(r"[0-9a-f]{64}")
# Cursors and indexes fit a Redis integer and, as ZSET scores, a double exactly.
_INT_MAX = 2**53

# The appendfsync policies with a bounded loss window: "always" (none) and "everysec" (about a second). With "no"
# the kernel flushes the AOF when it likes (tens of seconds on Linux): receipts would outlive their messages.
FSYNC_POLICIES = frozenset({"always", "everysec"})

_NO_PERSISTENCE = (
    "the Redis at {url} {why}; the gateway needs AOF (appendonly yes, appendfsync always or everysec) and "
    "maxmemory-policy noeviction"
)


@dataclass(frozen=True, slots=True)
class RedisPersistence:
    """What ``open`` found: appendonly, appendfsync, save and maxmemory-policy as Redis reports them."""

    appendonly: str
    appendfsync: str
    save: str
    eviction: str

    @property
    def durable(self) -> bool:
        return self.appendonly == "yes" and self.appendfsync in FSYNC_POLICIES and self.eviction == "noeviction"

    def problem(self) -> str:
        if self.appendonly != "yes":
            return "has no append-only file (appendonly no" + (", RDB snapshots only)" if self.save else ")")
        if self.appendfsync not in FSYNC_POLICIES:
            return f"never fsyncs its append-only file (appendfsync {self.appendfsync}: the OS decides when)"
        return f"may evict keys (maxmemory-policy {self.eviction})"


class RedisStore:
    """``gateway.interfaces.protocols.Store`` on Redis. Build it with :meth:`open`; finish with :meth:`close`."""

    def __init__(
        self, client: aioredis.Redis, sequencer: Sequencer, key_prefix: str, persistence: RedisPersistence
    ) -> None:
        self.persistence = persistence
        self._client = client
        self._sequencer = sequencer
        self._base = "{" + key_prefix + "}:"
        self._pull = client.register_script(PULL)
        self._due = client.register_script(DUE)
        self._dead = client.register_script(DEAD)
        self._depths = client.register_script(DEPTHS)
        self._copies = client.register_script(COPIES)
        self._states = client.register_script(STATES)
        self._closed = False

    @classmethod
    async def open(
        cls, url: str, *, key_prefix: str, allow_no_persistence: bool = False, password: str | None = None
    ) -> RedisStore:
        """Connect, check persistence (fail closed), start the sequencer."""
        if not KEY_PREFIX_PATTERN.fullmatch(key_prefix):
            raise Unavailable(f"key_prefix must match {KEY_PREFIX_PATTERN.pattern}", field="store.key_prefix")
        options: dict[str, Any] = {
            "decode_responses": False,
            "password": password,
            "socket_timeout": SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": SOCKET_TIMEOUT_SECONDS,
        }
        try:
            client = aioredis.Redis.from_url(
                url, max_connections=POOL_CONNECTIONS_MAX, retry=AsyncRetry(NoBackoff(), 0), **options
            )
            sync_client = redis.Redis.from_url(url, max_connections=1, retry=Retry(NoBackoff(), 0), **options)
        except (ValueError, RedisError) as exc:
            raise Unavailable(f"redis store: bad redis_url: {exc}", field="store.redis_url") from exc
        safe_url = re.sub(r"//[^@/]*@", "//***@", url)
        try:
            persistence = await _persistence(client)
        except RedisError as exc:
            await client.aclose()
            sync_client.close()
            raise Unavailable(f"redis store: cannot check {safe_url}: {type(exc).__name__}: {exc}") from exc
        if not persistence.durable and not allow_no_persistence:
            await client.aclose()
            sync_client.close()
            raise Unavailable(_NO_PERSISTENCE.format(url=safe_url, why=persistence.problem()), field="store.redis_url")
        return cls(client, Sequencer(sync_client, "{" + key_prefix + "}:"), key_prefix, persistence)

    @property
    def conflicts(self) -> int:
        """Batches this process re-signed because another process appended first (contention metric)."""
        return self._sequencer.conflicts

    @property
    def batches(self) -> int:
        """Batches this process committed (each is one SEQUENCE script, one AOF write)."""
        return self._sequencer.batches

    # -- writes that append a ledger leaf: through the sequencer ------------------------------------

    async def accept(
        self, message: StoredMessage, event: AuditEvent, make_receipt: ReceiptFactory, *, relays: Relays | None = None
    ) -> StoredMessage:
        codec.aware(message.received_at, "received_at")
        key = codec.suffix(message.sender, message.message_id)
        relays = check_relays(message, relays)
        op = Op("A", event.canonical(), message=message, make_receipt=make_receipt, key=key, relays=relays)
        result: StoredMessage = await self._sequencer.submit(op)
        return result

    async def accept_forward(
        self,
        message: StoredMessage,
        original: tuple[str, str],
        event: AuditEvent,
        make_receipt: ReceiptFactory,
        *,
        relays: Relays | None = None,
    ) -> StoredMessage:
        """``accept`` and link ``message`` to ``original`` (its parent) and to the ROOT original of ``original``
        (``NotFound`` when unknown)."""
        op = self._accept_op("F", message, event, make_receipt, original)
        op.relays = check_relays(message, relays)
        result: StoredMessage = await self._sequencer.submit(op)
        return result

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
        """``accept`` the recall and, in the same script, withdraw every inbox entry of the copies it reaches
        (``gateway.core.forwarding.recalled_copies``) and give every holder one entry for the recall (its remote
        recipients: their peer's relay entry; ``ports.RelayStore`` Rule 3)."""
        op = self._accept_op("C", message, event, make_receipt, original)
        op.whole = whole_tree
        op.relays = check_relays(message, relays)
        result: Recall = await self._sequencer.submit(op)
        return result

    @staticmethod
    def _accept_op(
        kind: str, message: StoredMessage, event: AuditEvent, make_receipt: ReceiptFactory, original: tuple[str, str]
    ) -> Op:
        codec.aware(message.received_at, "received_at")
        key = codec.suffix(message.sender, message.message_id)
        return Op(
            kind,
            event.canonical(),
            message=message,
            make_receipt=make_receipt,
            key=key,
            original=codec.suffix(*original),
        )

    async def port_apply(self, write: PortWrite, ledger: PortLedger) -> Any:
        """A port decision with its ledger writes, as one sequencer operation, written only while the port's
        stream still has the length the plan was numbered from (``gateway.infra.redis_sequencer``):
        ``write.result`` once written, None when the message was applied before, ``PortMoved`` when the port's
        stream moved on."""
        op = Op("P", ledger.event.canonical(), port=write)
        if ledger.alert is not None:
            alert = ledger.alert
            codec.aware(alert.message.received_at, "received_at")
            op.message, op.make_receipt = alert.message, alert.make_receipt
            op.key = codec.suffix(alert.message.sender, alert.message.message_id)
            op.message_leaf = alert.event.canonical()
        return await self._sequencer.submit(op)

    async def record(self, event: AuditEvent) -> int:
        result: int = await self._sequencer.submit(Op("R", event.canonical()))
        return result

    async def ack(self, recipient: str, cursors: Sequence[int], event: AuditEvent) -> int:
        if len(cursors) > ACK_CURSORS_MAX:
            raise LimitExceeded(f"{len(cursors)} cursors > {ACK_CURSORS_MAX}", field="cursors")
        wanted = list(cursors)
        for i, cursor in enumerate(wanted):
            if not 0 < cursor <= _INT_MAX:
                raise NotFound(f"no cursor {cursor} for {recipient}", field=f"cursors[{i}]")
        at = rfc3339(codec.aware(event.at, "event.at"))
        op = Op("K", event.canonical(), recipient=recipient, cursors=wanted, at=at)
        result: int = await self._sequencer.submit(op)
        return result

    async def record_delivery(self, result: DeliveryResult, event: AuditEvent) -> DeliveryState:
        if result.outcome is DeliveryOutcome.RETRY:
            if result.next_attempt_at is None:
                raise BadRequest("a retry needs next_attempt_at", field="next_attempt_at")
            codec.micros(result.next_attempt_at, "next_attempt_at")
        if not 0 < result.cursor <= _INT_MAX:
            raise NotFound(f"no cursor {result.cursor} for {result.recipient}", field="cursor")
        at = rfc3339(codec.aware(result.at, "result.at"))
        op = Op("D", event.canonical(), recipient=result.recipient, cursors=[result.cursor], delivery=result, at=at)
        state: DeliveryState = await self._sequencer.submit(op)
        return state

    async def redrive(self, cursors: Sequence[int], event: AuditEvent) -> int:
        if len(cursors) > REDRIVE_CURSORS_MAX:
            raise LimitExceeded(f"{len(cursors)} cursors > {REDRIVE_CURSORS_MAX}", field="cursors")
        wanted = [c for c in dict.fromkeys(cursors) if 0 < c <= _INT_MAX]
        at = rfc3339(codec.aware(event.at, "event.at"))
        redriven: int = await self._sequencer.submit(Op("V", event.canonical(), cursors=wanted, at=at))
        return redriven

    # -- the replay cache --------------------------------------------------------------------------

    async def claim_once(self, key: str, expires: datetime) -> bool:
        """``SET NX PXAT``: Redis expires the claim itself (by its own clock, rounded up to the millisecond)."""
        if len(key) > REPLAY_KEY_MAX:
            raise LimitExceeded(f"replay key of {len(key)} characters > {REPLAY_KEY_MAX}", field="key")
        until_ms = max(1, math.ceil(codec.aware(expires, "expires").timestamp() * 1000))
        claimed = await self._call(self._client.set(self._base + "r:" + key, b"1", nx=True, pxat=until_ms))
        return bool(claimed)

    async def release_claim(self, key: str) -> None:
        if len(key) > REPLAY_KEY_MAX:
            raise LimitExceeded(f"replay key of {len(key)} characters > {REPLAY_KEY_MAX}", field="key")
        await self._call(self._client.delete(self._base + "r:" + key))

    # -- reads -------------------------------------------------------------------------------------

    async def find_message(self, sender: str, message_id: str) -> StoredMessage | None:
        key = self._base.encode() + b"m:" + codec.suffix(sender, message_id)
        fields = await self._call(self._client.hgetall(key))
        return codec.message(sender, message_id, fields) if fields else None

    async def pull(self, recipient: str, after: int, limit: int) -> list[InboxItem]:
        if limit < 1:
            raise BadRequest("limit must be positive", field="limit")
        if limit > PULL_LIMIT_MAX:
            raise LimitExceeded(f"limit {limit} > {PULL_LIMIT_MAX}", field="limit")
        if not 0 <= after <= _INT_MAX:
            raise BadRequest("after must be a cursor (>= 0)", field="after")
        flat = await self._call(self._pull(args=[self._base, recipient, after, limit]))
        return [InboxItem(c, recipient, codec.message(*codec.unsuffix(k), f)) for c, k, f in codec.items(flat)]

    async def forward_of(self, sender: str, message_id: str) -> tuple[str, str] | None:
        root = await self._call(self._client.get(self._base.encode() + b"f:" + codec.suffix(sender, message_id)))
        return None if root is None else codec.unsuffix(root)

    async def forwards_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        names = [self._base.encode() + b"f:" + codec.suffix(sender, message_id) for sender, message_id in wanted]
        roots = await self._call(self._client.mget(names))
        return {key: codec.unsuffix(root) for key, root in zip(wanted, roots, strict=True) if root is not None}

    async def copies(self, sender: str, message_id: str) -> list[StoredMessage]:
        flat = await self._call(self._copies(args=[self._base, codec.suffix(sender, message_id)]))
        return [codec.message(*codec.unsuffix(k), f) for _, k, f in codec.items(flat)]

    async def inbox_owners(self, cursors: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        wanted = sorted({c for c in cursors if 0 < c <= _INT_MAX})
        if len(wanted) > ACK_CURSORS_MAX:
            raise LimitExceeded(f"{len(wanted)} cursors > {ACK_CURSORS_MAX}", field="cursors")
        if not wanted:
            return {}
        owners = await self._call(self._client.hmget(self._base + "cursors", wanted))
        found: dict[int, tuple[str, str, str]] = {}
        for cursor, owner in zip(wanted, owners, strict=True):
            if owner is not None:
                recipient, _, suffix = owner.partition(b"\n")
                found[cursor] = (recipient.decode(), *codec.unsuffix(suffix))
        return found

    async def ledger_size(self) -> int:
        return int(await self._call(self._client.llen(self._base + "ledger")))

    async def probe_write(self) -> None:
        """``SET <prefix>probe <time> PX ...``: Redis refuses it as it would refuse our writes (OOM at maxmemory
        with noeviction, MISCONF when it cannot write its AOF, no answer when it is down). A write that small
        still fits when Redis is a few bytes under maxmemory, so ``INFO memory`` must also show
        :data:`MEMORY_HEADROOM_BYTES` free below ``maxmemory`` (when one is set)."""
        if self._closed:
            raise Unavailable("redis store: closed")
        try:
            await self._client.set(self._base + "probe", str(time.time()), px=PROBE_TTL_MS)
            memory: dict[str, Any] = await self._client.info("memory")
        except RedisError as exc:
            raise Unavailable(f"redis store: {_write_refusal(exc)}") from exc
        used, limit = int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))
        if limit and limit - used < MEMORY_HEADROOM_BYTES:
            raise Unavailable(f"redis store: at maxmemory, writes refused (OOM): {used} of {limit} bytes used")

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

    async def due_deliveries(self, recipient: str, now: datetime, limit: int) -> list[DueDelivery]:
        if not 1 <= limit <= PULL_LIMIT_MAX:
            raise LimitExceeded(f"limit must be in 1..{PULL_LIMIT_MAX}", field="limit")
        args: list[str | int] = [self._base, recipient, codec.micros(now, "now"), limit, DUE_RETRY_SCAN_MAX]
        flat = await self._call(self._due(args=args))
        return [
            DueDelivery(InboxItem(c, recipient, codec.message(*codec.unsuffix(k), f)), int(f[b"attempts"]))
            for c, k, f in codec.items(flat)
        ]

    async def dead_letters(self, recipient: str | None, after: int, limit: int) -> list[DeliveryState]:
        if not 1 <= limit <= DEAD_LETTER_PAGE_MAX:
            raise LimitExceeded(f"limit must be in 1..{DEAD_LETTER_PAGE_MAX}", field="limit")
        after = max(0, min(after, _INT_MAX))
        flat = await self._call(self._dead(args=[self._base, recipient or "", after, limit]))
        return [codec.delivery_state(cursor, owner, fields) for cursor, owner, fields in codec.items(flat)]

    async def inbox_depths(self) -> dict[str, int]:
        flat = await self._call(self._depths(args=[self._base]))
        return {flat[k].decode(): int(flat[k + 1]) for k in range(0, len(flat), 2)}

    async def dead_letter_count(self) -> int:
        return int(await self._call(self._client.zcard(self._base + "x")))

    async def recipient_states(self, sender: str, message_id: str) -> list[RecipientState]:
        key = codec.suffix(sender, message_id)
        flat = await self._call(self._states(args=[self._base, key]))
        return codec.recipient_states(key, flat)

    # -- the policy board (ports.PolicyBoard): the digest every process of the deployment follows ----------

    async def publish_policy(self, digest: str) -> None:
        if not POLICY_DIGEST.fullmatch(digest):
            raise BadRequest("a policy digest is 64 lowercase hex characters", field="digest")
        await self._call(self._client.set(self._base + "policy", digest.encode()))

    async def published_policy(self) -> str | None:
        value = await self._call(self._client.get(self._base + "policy"))
        if value is None:
            return None
        digest = bytes(value).decode("ascii", errors="replace")
        if not POLICY_DIGEST.fullmatch(digest):
            raise Unavailable(f"redis store: the published policy digest is not one ({digest[:80]!r})")
        return digest

    # -- lifecycle ---------------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish every queued write, stop the sequencer, close the connections. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await self._sequencer.close()
        await self._client.aclose()

    async def delete_all(self) -> int:
        """Delete every key under this store's prefix (tests and ``bench/redis_bench.py`` clean up with it)."""
        deleted = 0
        pattern = re.sub(r"([\\*?\[\]])", r"\\\1", self._base) + "*"
        async for key in self._client.scan_iter(match=pattern, count=1000):
            deleted += int(await self._client.delete(key))
        return deleted

    async def _call(self, awaitable: Any) -> Any:
        if self._closed:
            raise Unavailable("redis store: closed")
        try:
            return await awaitable
        except RedisError as exc:
            raise Unavailable(f"redis store: {type(exc).__name__}: {exc}") from exc


def _write_refusal(exc: RedisError) -> str:
    """Why Redis refused a write, in words an operator acts on (the reply text, never the URL)."""
    if isinstance(exc, OutOfMemoryError):
        return "at maxmemory, writes refused (OOM)"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return f"unreachable ({type(exc).__name__})"
    if str(exc).startswith("MISCONF"):
        return "cannot persist, writes refused (MISCONF)"
    return f"{type(exc).__name__}: {exc}"


async def _persistence(client: aioredis.Redis) -> RedisPersistence:
    found: dict[str, str] = {}
    for name in ("appendonly", "appendfsync", "save", "maxmemory-policy"):
        reply: dict[Any, Any] = await client.config_get(name)
        value = reply.get(name.encode(), reply.get(name, b""))
        found[name] = value.decode() if isinstance(value, bytes) else str(value)
    return RedisPersistence(found["appendonly"], found["appendfsync"], found["save"], found["maxmemory-policy"])


if TYPE_CHECKING:

    def _satisfies_the_port(store: RedisStore) -> Store:  # mypy checks RedisStore against ports.Store
        return store

    def _relays(store: RedisStore) -> RelayStore:  # ... and against ports.RelayStore (forwards, recalls)
        return store

    def _board(store: RedisStore) -> PolicyBoard:  # ... and against ports.PolicyBoard
        return store
