"""Push delivery: the worker that pushes inbox items to members whose registry endpoint is not ``pull``.

Rule 1: the inbox IS the queue. A push member's unacknowledged items are its push work; a successful push
        acknowledges the item in the same durable write as its ledger event (``Store.record_delivery``), so
        nothing acknowledged is ever pushed again.
Rule 2: at-least-once. The outcome is recorded after the push; if the process dies in between, the item is
        still due after the restart and is pushed again with the SAME bytes (the deliverers build them
        deterministically); recipients de-duplicate on ``(sender, message id)`` (the CloudEvent ``id``).
Rule 3: every attempt is a ledger event: ``delivered``, or ``delivery_failed`` with outcome ``retry`` or
        ``dead`` (status, attempt number, endpoint kind; never the URL or any body).
Rule 4: a failed attempt is retried after an exponential backoff with jitter (:func:`backoff_delay`); after
        ``max_attempts`` attempts, or at once for a permanent refusal, the item becomes a dead letter until an
        operator redrives it (``gateway.delivery.deadletters``). Every retryable failure backs off alike: a 5xx, a
        timeout, a refused or reset connection, and an exception a deliverer failed to translate. The defaults make the
        retries of one item span at least an hour (:func:`retry_span`), so an endpoint outage shorter than that
        dead-letters nothing.
Rule 5: at most ``concurrency_per_recipient`` pushes are in flight per recipient, and one item is never in
        flight twice in this process. A push finishing while due work is being read may have recorded its outcome
        after the read saw the row: every item that was in flight when the read began is left for the next
        dispatch (which reads after that outcome), so a row read before an outcome is never pushed again.
Rule 5a: a recorded outcome is final on every store: ``Store.record_delivery`` records an attempt only when its
        number follows the stored attempts of a still pending item, and refuses a stale one (``DuplicateConflict``,
        nothing written). Whatever pushed from an outdated row, its outcome cannot add a second ``delivered``
        leaf or an attempt past ``max_attempts``.
Rule 6: ``stop`` stops dispatching and waits up to a grace period for pushes in flight; the rest are
        cancelled with their outcome unrecorded, so they are pushed again after the restart (Rule 2).
Rule 6a: relay entries (issue 19; ``ports.relay_queue``) are push work like any other: the worker relays each peer
        gateway's entries through the ``Relayer`` (``gateway.infra.relay_client``) under Rules 1-7, one peer being
        one recipient. A delivered relay records the peer's verified receipt with its outcome and a
        ``relay_delivered`` ledger event naming the peer and the receipt's SHA-256; a failed one is a
        ``delivery_failed`` event with the peer and, for a refusal, the peer's error code (kept with the entry's
        state too, for status and dead-letter listings). The peers are those of
        the directory in force; while it is expired, no relay starts (the entries stay due).
Rule 6b: a recall never overtakes its original on the way to a peer: a relay entry of an ``intel.recall.v1`` is not
        started while the recalled message's relay entry to the SAME peer is still to go (pending or retrying)
        or in flight in this process; it stays due and starts at a later dispatch (every finished attempt wakes
        the worker). Why: a peer that gets the recall first answers ``NOT_FOUND`` and keeps the original when it
        arrives. Across processes (Redis) an attempt in flight elsewhere is not seen here: the relay client
        retries a recall's ``NOT_FOUND`` (``gateway.core.peerreceipt.recall_retryable``).
Rule 7: one process pushes an item at a time, even with several processes on one store: before a push the
        worker takes a lease ``Store.claim_once(lease_key(recipient, cursor, attempts))`` that expires after
        the longest an attempt may take (:func:`lease_seconds`), re-reads the due work to drop an item another
        process finished between the read and the claim, and releases the lease once the outcome is recorded.
        A process that dies mid-push leaves its lease to expire: the item is pushed again after it (Rule 2).
        Leases are for stores several processes share (``leases=True``, the Redis backend); a one-process store
        needs none (Rule 5 holds in the process), and a restart there re-pushes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.directory import PeerGateway
from gateway.core.errors import DuplicateConflict, GatewayError, Unavailable
from gateway.core.forwarding import RECALL_TYPE, stored_header
from gateway.core.model import Endpoint, Member
from gateway.core.payloads import validate_payload
from gateway.exchange.faults import NO_CRASH, CrashPoint
from gateway.exchange.metrics import Metrics
from gateway.exchange.state import GatewayState
from gateway.interfaces.config import Delivery
from gateway.interfaces.protocols import (
    Clock,
    Deliverer,
    DeliveryAttempt,
    DeliveryOutcome,
    DeliveryResult,
    Disposition,
    DueDelivery,
    InboxItem,
    Relayer,
    Store,
    StoredMessage,
    relay_queue,
)

log = structlog.get_logger("gateway.delivery.worker")

# A deliverer must honour its own timeout; this outer bound (a multiple of it) catches one that does not.
OUTER_TIMEOUT_FACTOR = 2.0
# Due items read per recipient per dispatch (the store's page bound is 1000; concurrency rarely needs more).
DUE_FETCH_MAX = 500
# Exponents above this would only overflow; the cap has long been reached by then.
MAX_BACKOFF_EXPONENT = 62
# A push lease outlives the attempt's outer timeout by this much: recording the outcome takes a store write.
LEASE_MARGIN_SECONDS = 5.0
LEASE_PREFIX = "push-lease:"


def lease_key(recipient: str, cursor: int, attempts: int) -> str:
    """Rule 7: the lease of one attempt (attempts already made) of one inbox item."""
    return f"{LEASE_PREFIX}{recipient}:{cursor}:{attempts}"


def lease_seconds(timeout_seconds: float) -> float:
    """Rule 7: the longest one attempt holds its item: the outer attempt bound plus the outcome write."""
    return timeout_seconds * OUTER_TIMEOUT_FACTOR + LEASE_MARGIN_SECONDS


def backoff_delay(attempts: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait after ``attempts`` (>= 1) failed attempts: ``min(cap, base * 2**(attempts-1))``, of
    which half is fixed and half uniformly random (jitter spreads retries of many items hitting one outage)."""
    ceiling = min(cap, base * 2.0 ** min(max(attempts, 1) - 1, MAX_BACKOFF_EXPONENT))
    return ceiling / 2 + rng.uniform(0.0, ceiling / 2)


def retry_span(max_attempts: int, *, base: float, cap: float) -> tuple[float, float]:
    """Rule 4: the (shortest, longest) time from an item's first attempt to its last, when every attempt fails
    retryably: the sum of the backoff ceilings after attempts 1 .. max_attempts-1, half of it and all of it."""
    ceilings = sum(min(cap, base * 2.0 ** min(n - 1, MAX_BACKOFF_EXPONENT)) for n in range(1, max_attempts))
    return ceilings / 2, ceilings


def decide(attempt: DeliveryAttempt, attempts: int, max_attempts: int) -> DeliveryOutcome:
    """The outcome of an attempt, given how many attempts have now been made (this one included)."""
    if attempt.delivered:
        return DeliveryOutcome.DELIVERED
    if not attempt.retryable or attempts >= max_attempts:
        return DeliveryOutcome.DEAD
    return DeliveryOutcome.RETRY


@dataclass(frozen=True, slots=True)
class _Target:
    """Where one recipient's due work goes: a member's push endpoint, or a peer gateway (Rule 6a)."""

    recipient: str  # the inbox: a member id, or ``relay_queue(peer)``
    kind: str  # the endpoint kind ("webhook", "grpc", "soap") or "relay"
    send: Callable[[InboxItem], Awaitable[DeliveryAttempt]]
    peer: str | None = None


def recalled_by(message: StoredMessage) -> tuple[str, str] | None:
    """Rule 6b: the (sender, id) a recall names; None for any other message (or evidence that is no JWS)."""
    if message.type != RECALL_TYPE:
        return None
    try:
        media = stored_header(message.jws).payload.media
        return validate_payload(message.type, media, message.payload).recalled
    except GatewayError:  # accepted evidence validated once; a SOAP document has no JWS header to read
        return None


# Rule 6b: the recalled message's relay entry is still to go in these states
_TO_GO = frozenset({Disposition.PENDING, Disposition.RETRYING})


def push_endpoint(member: Member, kinds: Sequence[str]) -> Endpoint | None:
    """The member's first endpoint this gateway can push to (None: pull only)."""
    for endpoint in member.endpoints:
        if endpoint.kind in kinds:
            return endpoint
    return None


class DeliveryWorker:
    def __init__(
        self,
        *,
        store: Store,
        state: GatewayState,
        clock: Clock,
        deliverers: Sequence[Deliverer],
        config: Delivery,
        metrics: Metrics | None = None,
        crash: CrashPoint = NO_CRASH,
        rng: random.Random | None = None,
        leases: bool = False,
        relayer: Relayer | None = None,
        peers: Callable[[], Sequence[PeerGateway]] | None = None,
    ) -> None:
        self._store = store
        self._state = state
        self._clock = clock
        self._deliverers = {d.kind: d for d in deliverers}
        self._config = config
        self._metrics = metrics
        self._crash = crash
        self._rng = rng or random.SystemRandom()
        self._leases = leases  # Rule 7: several processes share the store
        self._relayer = relayer  # Rule 6a: relay entries go to the peer gateways
        self._peers = peers
        self._inflight: dict[str, set[int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.create_task(self._run(), name="cgw-delivery")

    def wake(self) -> None:
        """Look for due work now (after an accept or a redrive) instead of at the next poll."""
        self._wake.set()

    async def stop(self, grace: float) -> None:
        """Rule 6: no new pushes; wait up to ``grace`` seconds for those in flight, cancel the rest."""
        self._stopping = True
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.dispatch()
            except GatewayError as exc:  # store or trust unavailable: keep the loop, try again later
                log.error("delivery dispatch failed", code=exc.code, detail=exc.detail[:200])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._config.poll_interval_seconds)

    # -- dispatch -------------------------------------------------------------------------------------

    def _targets(self) -> list[_Target]:
        """Every push member with its endpoint, then every peer gateway of the directory in force (Rule 6a)."""
        registry = self._state.require_trust().registry
        kinds = list(self._deliverers)
        targets: list[_Target] = []
        for member in registry.members.values():
            endpoint = push_endpoint(member, kinds)
            if endpoint is None or member.suspended:
                continue
            deliver = functools.partial(self._deliverers[endpoint.kind].deliver, member, endpoint)
            targets.append(_Target(member.id, endpoint.kind, deliver))
        relayer = self._relayer
        if relayer is not None and self._peers is not None:
            try:
                peers = self._peers()
            except Unavailable as exc:  # an expired directory: relay nothing until a valid one is in force
                log.error("no relays: the federation directory is not in force", code=exc.code, detail=exc.detail)
                peers = ()
            for peer in peers:
                send = functools.partial(relayer.relay, peer)
                targets.append(_Target(relay_queue(peer.id), relayer.kind, send, peer.id))
        return targets

    async def dispatch(self) -> int:
        """Start pushes for every push member's and peer's due items (within the concurrency bound); return how
        many."""
        started = 0
        for target in self._targets():
            inflight = self._inflight.setdefault(target.recipient, set())
            free = self._config.concurrency_per_recipient - len(inflight)
            if free <= 0:
                continue
            now = self._clock.now()
            limit = min(free + len(inflight), DUE_FETCH_MAX)
            busy = set(inflight)  # Rule 5: in flight when the read begins (finishing during it, perhaps)
            due = await self._store.due_deliveries(target.recipient, now, limit)
            free = self._config.concurrency_per_recipient - len(inflight)
            fresh = [d for d in due if d.item.cursor not in busy and d.item.cursor not in inflight]
            fresh = (await self._in_order(target, fresh))[: max(free, 0)]
            for work in await self._leased(target.recipient, fresh, limit):
                inflight.add(work.item.cursor)
                task = asyncio.create_task(self._push(target, work), name=f"cgw-push-{work.item.cursor}")
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started += 1
        return started

    async def _in_order(self, target: _Target, candidates: Sequence[DueDelivery]) -> list[DueDelivery]:
        """Rule 6b: the candidates that may start now (a peer's recall waits for its original's relay entry)."""
        if target.peer is None:
            return list(candidates)
        ready: list[DueDelivery] = []
        for work in candidates:
            recalled = recalled_by(work.item.message)
            if recalled is not None and await self._original_to_go(target, recalled):
                log.info(
                    "recall relay waits for its original",
                    peer=target.peer,
                    cursor=work.item.cursor,
                    recalls=f"{recalled[0]}/{recalled[1]}",
                )
                continue
            ready.append(work)
        return ready

    async def _original_to_go(self, target: _Target, recalled: tuple[str, str]) -> bool:
        """Rule 6b: is the recalled message's relay entry to ``target``'s peer pending, retrying or in flight?"""
        inflight = self._inflight.get(target.recipient, set())
        for state in await self._store.recipient_states(*recalled):
            if state.peer == target.peer and (state.cursor in inflight or state.disposition in _TO_GO):
                return True
        return False

    async def _leased(self, recipient: str, candidates: Sequence[DueDelivery], limit: int) -> list[DueDelivery]:
        """Rule 7: the candidates this process now holds a lease on and that are still due as read (re-read with
        the same ``limit``: one pushed out of it by an older retry falling due is released, leased next time)."""
        if not candidates or not self._leases:
            return list(candidates)
        now = self._clock.now()
        expires = now + timedelta(seconds=lease_seconds(self._config.timeout_seconds))
        keys = [lease_key(recipient, w.item.cursor, w.attempts) for w in candidates]
        claimed = await asyncio.gather(*(self._store.claim_once(key, expires) for key in keys))
        held = [(w, key) for w, key, ok in zip(candidates, keys, claimed, strict=True) if ok]
        if not held:
            return []
        # another process may have recorded an item's outcome (and released its lease) after our read
        due = await self._store.due_deliveries(recipient, now, limit)
        still = {(d.item.cursor, d.attempts) for d in due}
        stale = [key for w, key in held if (w.item.cursor, w.attempts) not in still]
        await asyncio.gather(*(self._release(key) for key in stale))
        return [w for w, _ in held if (w.item.cursor, w.attempts) in still]

    async def _push(self, target: _Target, work: DueDelivery) -> None:
        recipient = target.recipient
        try:
            await self._attempt(target, work)
        except Exception:  # a bug must not kill the worker; the item stays due and is retried
            log.exception("delivery attempt failed unexpectedly", recipient=recipient, cursor=work.item.cursor)
        finally:
            self._inflight.get(recipient, set()).discard(work.item.cursor)
            if self._leases:
                await self._release(lease_key(recipient, work.item.cursor, work.attempts))
            self._wake.set()  # a slot is free: more due work for this recipient may start

    async def _release(self, key: str) -> None:
        """Rule 7: the outcome is recorded (or the item stays due): another process may push the item now."""
        try:
            await self._store.release_claim(key)
        except GatewayError as exc:  # the lease then simply expires
            log.warning("push lease not released", code=exc.code, key=key)

    async def _attempt(self, target: _Target, work: DueDelivery) -> None:
        item = work.item
        recipient, kind = target.recipient, target.kind
        self._crash.hit("before-delivery")
        started = time.perf_counter()
        timeout = self._config.timeout_seconds * OUTER_TIMEOUT_FACTOR
        try:
            attempt = await asyncio.wait_for(target.send(item), timeout=timeout)
        except TimeoutError:
            attempt = DeliveryAttempt(delivered=False, retryable=True, status="timeout")
        except GatewayError as exc:
            attempt = DeliveryAttempt(delivered=False, retryable=True, status=exc.code, detail=exc.detail[:200])
        except Exception as exc:  # Rule 4: a deliverer's untranslated failure backs off like any other
            log.exception("deliverer raised", recipient=recipient, cursor=item.cursor, endpoint=kind)
            attempt = DeliveryAttempt(delivered=False, retryable=True, status="error", detail=type(exc).__name__)
        seconds = time.perf_counter() - started
        if attempt.delivered:
            self._crash.hit("during-delivery")  # crash-safety tests: pushed, outcome not yet recorded
        attempts = work.attempts + 1
        outcome = decide(attempt, attempts, self._config.max_attempts)
        now = self._clock.now()
        next_at = None
        if outcome is DeliveryOutcome.RETRY:
            delay = backoff_delay(
                attempts, base=self._config.backoff_base_seconds, cap=self._config.backoff_max_seconds, rng=self._rng
            )
            next_at = now + timedelta(seconds=delay)
        message = item.message
        fields: dict[str, object] = {
            "recipient": recipient,
            "cursor": item.cursor,
            "sender": message.sender,
            "message_id": message.message_id,
            "endpoint": kind,
            "status": attempt.status[:64],
            "attempt": attempts,
            "outcome": outcome.value,
        }
        event_kind = EventKind.DELIVERED if outcome is DeliveryOutcome.DELIVERED else EventKind.DELIVERY_FAILED
        receipt = attempt.receipt if outcome is DeliveryOutcome.DELIVERED else b""
        if target.peer is not None:  # Rule 6a
            fields["peer"] = target.peer
            if attempt.code:
                fields["code"] = attempt.code[:64]
            if outcome is DeliveryOutcome.DELIVERED:
                event_kind = EventKind.RELAY_DELIVERED
                fields["receipt_sha256"] = hashlib.sha256(receipt).hexdigest()
        code = attempt.code[:64] if target.peer is not None and outcome is not DeliveryOutcome.DELIVERED else ""
        result = DeliveryResult(recipient, item.cursor, attempts, outcome, attempt.status, now, next_at, receipt, code)
        try:
            await self._store.record_delivery(result, AuditEvent(event_kind, now, fields))
        except DuplicateConflict as exc:  # Rule 5a: the item's outcome was recorded by another attempt
            log.warning(
                "stale delivery outcome not recorded", recipient=recipient, cursor=item.cursor, detail=exc.detail
            )
            return
        except GatewayError as exc:  # Rule 2: unrecorded, so still due: it will be pushed again
            log.error("delivery outcome not recorded", code=exc.code, recipient=recipient, cursor=item.cursor)
            return
        if self._metrics is not None:
            self._metrics.delivery(kind=kind, outcome=outcome.value, seconds=seconds)
        log.info(
            "delivery",
            recipient=recipient,
            sender=message.sender,
            message_id=message.message_id,
            endpoint=kind,
            status=attempt.status,
            detail=attempt.detail[:200],
            attempt=attempts,
            outcome=outcome.value,
            latency_ms=round(seconds * 1000, 3),
        )
