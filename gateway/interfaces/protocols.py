"""The interfaces between the pipeline and the outside world (``typing.Protocol``), with the values they pass:
the message store (``Store``, with its relay, port-stream, policy-board and witness parts), the push deliverers
(``Deliverer``) and the verifiers of document-signed submissions (``DocumentVerifier``).

The stores are implemented in ``gateway.infra`` twice: SQLite, the embedded default (one process), and Redis
(several processes sharing one state and one ledger); ``gateway.infra.backends`` maps ``[store] backend`` to one
of them. The deliverers are the webhook (``gateway.infra.webhook``), SOAP and gRPC ones (``adapters``), the
document verifier is SOAP's WS-Security. ``gateway.app.main`` is the only place that chooses them. A contract test
suite (``tests/contract``) runs the same assertions against every store implementation.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from gateway.core.audit import AuditEvent
from gateway.core.directory import PeerGateway
from gateway.core.envelope import SignedClaims
from gateway.core.errors import Internal, Unavailable
from gateway.core.model import ChainValidator, Endpoint, Header, Member
from gateway.core.release import Plan, PortNotice, Standing
from gateway.core.witness import Cosigned


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """An accepted message as kept: the exact signed evidence plus the bytes it binds."""

    sender: str
    message_id: str
    type: str
    recipients: tuple[str, ...]
    jws: str  # the exact JWS compact string the sender signed (evidence)
    payload: bytes
    digest: str  # hex SHA-256 over jws || "." || payload: identifies "the same bytes" for duplicates
    received_at: datetime
    receipt: bytes = b""  # the gateway-signed receipt (filled in by the store via the receipt factory)
    leaf_index: int = -1  # ledger index of the "accepted" event (filled in by the store)

    def with_receipt(self, receipt: bytes, leaf_index: int) -> StoredMessage:
        """This message as stored: its receipt and ledger index filled in (``dataclasses.replace`` costs ~5 us)."""
        return StoredMessage(
            self.sender,
            self.message_id,
            self.type,
            self.recipients,
            self.jws,
            self.payload,
            self.digest,
            self.received_at,
            receipt,
            leaf_index,
        )


@dataclass(frozen=True, slots=True)
class InboxItem:
    cursor: int  # strictly increasing per recipient; pull(after=cursor) resumes after it
    recipient: str
    message: StoredMessage
    acked: bool = False
    # A forward (ports.RelayStore): the original message it forwards, whose signed evidence travels beside it.
    forward_of: StoredMessage | None = None
    # What the gateway recorded with the accepted message and delivers beside it (not part of the signed
    # evidence), e.g. {"aeo": ...}: the AEO recognition results of its trader parties
    # (gateway/features/aeo/recognition.py).
    annotations: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    index: int
    data: bytes  # canonical audit event bytes (the leaf before hashing)


RELAY_QUEUE_PREFIX = "relay:"


def relay_queue(peer: str) -> str:
    """The inbox name under which a message waits to be relayed to the peer gateway ``peer`` (issue 19).

    Why: a relay row IS an inbox entry of this name, so the push machinery (due work, attempts, leases, dead
    letters, redrive; ``gateway.delivery.worker``) carries relays too, with one retry policy. A member id can never
    contain ``:`` (``gateway.core.registry.MEMBER_ID``), so no member can pull or own this inbox."""
    return RELAY_QUEUE_PREFIX + peer


def relay_peer(recipient: str) -> str | None:
    """The peer gateway id of a relay inbox name (``relay_queue``); None for a member's inbox."""
    return recipient[len(RELAY_QUEUE_PREFIX) :] if recipient.startswith(RELAY_QUEUE_PREFIX) else None


Relays = Mapping[str, tuple[str, ...]]
"""Remote recipients of one message by peer gateway id: peer -> the recipients it serves (issue 19)."""


def inbox_targets(recipients: Sequence[str], relays: Relays) -> tuple[str, ...]:
    """Where ``accept`` puts a message: one inbox entry per local recipient (in order), then one relay entry
    (``relay_queue``) per peer gateway that serves some of them, by peer id."""
    remote = {r for members in relays.values() for r in members}
    local = tuple(r for r in dict.fromkeys(recipients) if r not in remote)
    return local + tuple(relay_queue(peer) for peer in sorted(relays) if relays[peer])


def check_relays(message: StoredMessage, relays: Relays | None) -> Relays | None:
    """``relays`` as ``Store.accept`` takes it (Rule 4), checked: every remote recipient is one of the message's,
    served by one peer; empty lists are dropped. ``Internal`` otherwise (a routing bug, never the sender's)."""
    if not relays:
        return None
    seen: set[str] = set()
    checked: dict[str, tuple[str, ...]] = {}
    for peer, members in relays.items():
        if not peer or relay_peer(peer) is not None:
            raise Internal(f"malformed peer gateway id {peer!r}", field="relays")
        for member in members:
            if member not in message.recipients or member in seen:
                raise Internal(f"relay of {member!r} to {peer} is not one recipient's route", field="relays")
            seen.add(member)
        if members:
            checked[peer] = tuple(dict.fromkeys(members))
    return checked or None


ReceiptFactory = Callable[[int, datetime], bytes]
"""Builds the signed receipt for an accepted message given its ledger leaf index and received time.

Called by the store inside the durable write, so the receipt is stored atomically with the message."""


class Store(Protocol):
    """Messages, inboxes, replay cache and the ledger's leaves, with one durability discipline.

    Rule 1: ``accept`` stores the message, its inbox entries, the ledger leaf and the receipt in ONE atomic,
            durable step; it returns only after the data is on disk (fsync'd).
    Rule 2: ledger indexes are dense and strictly increasing from 0; nothing is ever updated or deleted there.
    Rule 3: ``(sender, message_id)`` is unique; a second ``accept`` of the same pair raises
            ``DuplicateConflict`` (the pipeline then compares digests).
    Rule 4: a recipient served by a peer gateway (``relays``) gets no inbox entry of its own: the message gets
            ONE relay entry per peer (``relay_queue``), written in the same atomic step, pushed by the delivery
            worker like any push entry; ``recipient_states`` reports each remote recipient with its peer's entry.
    """

    async def find_message(self, sender: str, message_id: str) -> StoredMessage | None: ...

    async def accept(
        self, message: StoredMessage, event: AuditEvent, make_receipt: ReceiptFactory, *, relays: Relays | None = None
    ) -> StoredMessage:
        """Persist atomically; return the message with ``receipt`` and ``leaf_index`` filled in. ``relays``: the
        remote recipients by peer gateway (Rule 4); each must be one of ``message.recipients``."""
        ...

    async def record(self, event: AuditEvent) -> int:
        """Durably append one audit event (rejections, acks, admin actions); return its leaf index."""
        ...

    async def pull(self, recipient: str, after: int, limit: int) -> list[InboxItem]:
        """Unacknowledged items with cursor > after, oldest first, at most ``limit``."""
        ...

    async def ack(self, recipient: str, cursors: Sequence[int], event: AuditEvent) -> int:
        """Mark these cursors of the recipient acknowledged and record ``event`` atomically.

        Returns how many were newly acknowledged (acking twice is harmless and counts 0)."""
        ...

    async def claim_once(self, key: str, expires: datetime) -> bool:
        """Replay cache: True the first time ``key`` is claimed (until ``expires``), False afterwards."""
        ...

    async def release_claim(self, key: str) -> None:
        """End a claim before it expires (a lease, e.g. a push lease, whose holder is done); a no-op for a key
        not claimed. Replay claims are never released."""
        ...

    async def inbox_owners(self, cursors: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        """Whose inbox item each known cursor is: cursor -> (recipient, sender, message id); unknown cursors are
        left out (the audit console ties an ``acknowledged`` leaf, which names cursors, to its message)."""
        ...

    async def ledger_size(self) -> int: ...

    async def probe_write(self) -> None:
        """A real, durable write of nothing the gateway keeps (readiness asks it): returns once the write is on
        disk, or raises ``Unavailable`` whose detail says why the store cannot write (disk full, out of
        memory, unreachable)."""
        ...

    async def ledger_entries(self, start: int, end: int) -> list[LedgerEntry]:
        """Entries with start <= index < end."""
        ...

    # -- push delivery state (gateway/delivery/worker.py); one row per inbox item that was ever attempted -----------

    async def due_deliveries(self, recipient: str, now: datetime, limit: int) -> list[DueDelivery]:
        """Push work for ``recipient``: unacknowledged inbox items that are not dead letters and are due
        (never attempted, redriven, or ``next_attempt_at <= now``), oldest cursor first, at most ``limit``,
        each with the attempts made so far (0 when never attempted or redriven)."""
        ...

    async def record_delivery(self, result: DeliveryResult, event: AuditEvent) -> DeliveryState:
        """Record one push attempt and its ledger ``event`` in ONE atomic, durable step; return the new state.

        ``attempts`` grows by one. ``delivered``: the inbox item is acknowledged (it is never pushed or pulled
        again). ``retry``: due again at ``result.next_attempt_at``. ``dead``: a dead letter until redriven.
        ``NotFound`` when the cursor is not one of the recipient's.

        A recorded outcome is final: the attempt is recorded only if ``result.attempt`` follows the attempts
        stored (0 when never attempted or redriven) and the item is still pending (unacknowledged, neither
        delivered nor a dead letter). Otherwise the result is stale (an attempt made from an outdated read, or
        recorded twice) and NOTHING is written: ``DuplicateConflict`` (field ``attempt``)."""
        ...

    async def dead_letters(self, recipient: str | None, after: int, limit: int) -> list[DeliveryState]:
        """Dead letters (of ``recipient``, or of everyone for None) with cursor > after, oldest first."""
        ...

    async def redrive(self, cursors: Sequence[int], event: AuditEvent) -> int:
        """Make these dead letters due now again (attempts back to 0) and record ``event``, atomically.

        Returns how many were dead letters; other cursors (unknown, delivered, pending) are left alone."""
        ...

    async def inbox_depths(self) -> dict[str, int]:
        """Unacknowledged inbox items per recipient (recipients with none are absent)."""
        ...

    async def dead_letter_count(self) -> int:
        """Dead letters waiting for an operator."""
        ...

    async def recipient_states(self, sender: str, message_id: str) -> list[RecipientState]:
        """Where the message ``sender/message_id`` stands with each of its recipients: one state per inbox entry
        (its cursor, when it left the inbox, its push state, the recall that withdrew it), oldest cursor first;
        empty when the message is unknown. Reads only (the status endpoint; issue 20)."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Recall:
    """What ``RelayStore.recall`` did: the stored recall, who got it, and the copies it withdrew."""

    message: StoredMessage
    holders: tuple[str, ...]  # sorted; every local member that holds a withdrawn copy, plus the recall's local
    # recipients (remote ones are reached through the recall's relay entries: RelayStore Rule 3)
    withdrawn: tuple[tuple[str, str], ...]  # (sender, message_id) of each withdrawn copy, in acceptance order


@runtime_checkable
class RelayStore(Store, Protocol):
    """A :class:`Store` that also keeps forwards and recalls (issue 3, issue 17).

    Rule 1: a forward is an accepted message of its own (the forwarder's signed envelope over the ORIGINAL
            payload bytes) linked to the message it forwards (its PARENT) and to the ROOT original of the tree
            (``forward_of``); the original's evidence is never changed.
    Rule 2: a recall is an accepted message too; in the same atomic, durable step every inbox entry of each
            copy it withdraws (``gateway.core.forwarding.recalled_copies``: the named message and what is downstream of
            it when the recaller sent it; else only the recaller's own forwards below it, and what is
            downstream of those; the whole tree with ``whole_tree``) is withdrawn (never pulled or pushed
            again) and every holder of a withdrawn copy gets one inbox entry for the recall.
    Rule 3: forwards and recalls cross gateways like plain messages (issue 19; ``Store`` Rule 4): ``relays``
            names the remote recipients of the forward or recall by peer gateway; they get no inbox entry of
            their own but one relay entry per peer, in the same atomic step. A withdrawn copy's relay entry is
            withdrawn like any inbox entry (a message not yet relayed never leaves). The remote recipients a
            withdrawn copy was relayed to are no local holders: they get no inbox entry for the recall (the
            recall reaches them only as a relayed recall addressed to them, through ``relays``).
    """

    async def accept_forward(
        self,
        message: StoredMessage,
        original: tuple[str, str],
        event: AuditEvent,
        make_receipt: ReceiptFactory,
        *,
        relays: Relays | None = None,
    ) -> StoredMessage:
        """``accept`` (same atomicity, duplicates, receipt, ``relays``), and record that ``message`` forwards the
        message ``original`` = (sender, message_id) (its parent, itself a root or a forward), which must have
        been accepted (else ``NotFound``)."""
        ...

    async def forward_of(self, sender: str, message_id: str) -> tuple[str, str] | None:
        """(sender, message_id) of the ROOT original of this forward's tree; None for a message that is not a
        forward (or is unknown)."""
        ...

    async def forwards_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
        """``forward_of`` for many (sender, message_id) keys in one round trip (a pulled inbox page): the root
        original of every key that is a forward; keys that are not forwards (or unknown) are absent."""
        ...

    async def copies(self, sender: str, message_id: str) -> list[StoredMessage]:
        """The original ``(sender, message_id)`` followed by every accepted forward of it, in acceptance
        order; empty when the original is unknown."""
        ...

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
        """``accept`` the recall ``message`` of ``original`` and, atomically with it (Rule 2), withdraw every
        inbox entry of the copies it reaches and give each holder one inbox entry for ``message``.

        The holders are the recipients of every withdrawn copy, plus ``message.recipients``; the recall's
        sender gets no entry, nor does a remote recipient (Rule 3): those in ``relays`` get the peer's relay
        entry instead, the others none. ``NotFound`` when ``original`` was never accepted; ``DuplicateConflict``
        like ``accept``."""
        ...


def relay_store(store: Store) -> RelayStore:
    """Forwards and recalls need a :class:`RelayStore`; on any other backend both are refused with
    ``Unavailable`` (fail closed) rather than half-done."""
    if not isinstance(store, RelayStore):
        raise Unavailable(f"the {type(store).__name__} backend does not keep forwards and recalls")
    return store


class PolicyBoard(Protocol):
    """Where the gateway processes sharing one store publish the policy set in force (issue 17 item 9).

    Rule 1: the process that accepts a policy set (startup or reload) publishes its digest; the last one wins.
    Rule 2: every process reads it about once a second and follows it (``gateway.ops.policyadmin``): it re-reads its
            policy directory and swaps only a set whose digest is the published one.
    A one-process store (SQLite) needs no board: the local set is the published one.
    """

    async def publish_policy(self, digest: str) -> None:
        """Make ``digest`` (64 hex characters, SHA-256) the policy set every process should run."""
        ...

    async def published_policy(self) -> str | None:
        """The digest last published (None: none yet)."""
        ...


class WitnessStore(Protocol):
    """The witness's memory: per log origin, the latest checkpoint it cosigned (C2SP tlog-witness).

    Rule 1: ``compare_and_set`` checks the stored state and writes the new one in ONE atomic step (SQLite: one
            transaction; Redis: one script), so two concurrent add-checkpoint requests can never roll the
            witness back to a smaller tree or let it cosign two roots for one size.
    Rule 2: a written state is durable before the call returns (the cosignature goes out after it).
    """

    async def latest(self, origin: str) -> Cosigned | None:
        """The latest cosigned (size, root) for ``origin``; None when the witness never cosigned it."""
        ...

    async def compare_and_set(self, origin: str, expected: Cosigned | None, new: Cosigned) -> bool:
        """Store ``new`` only if the stored state still equals ``expected`` (None: nothing stored); True if
        written, False (nothing written) when another request changed it first."""
        ...

    async def close(self) -> None: ...


PortDecide = Callable[[Sequence[Standing]], Plan]
"""Pure planning (``gateway.core.release.plan_notice`` / ``plan_gate_out``) run inside the store's transaction."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message the gateway itself writes (signed with its key), with its ``accepted``-like ledger event."""

    message: StoredMessage
    event: AuditEvent
    make_receipt: ReceiptFactory


@dataclass(frozen=True, slots=True)
class PortLedger:
    """The ledger's account of one applied plan, written in the SAME atomic step as the plan (issue 17)."""

    event: AuditEvent  # the ``port_update`` leaf
    alert: NewMessage | None = None  # a refused gate-out's alert: stored, in the home inbox, and ledgered first


PortRecord = Callable[[Plan], PortLedger]
"""Builds the ledger writes of a numbered plan; runs inside the store's atomic write, so it must be quick."""


class PortStreamStore(Protocol):
    """Per-port release standings and the ports' ordered streams (issue 8; ``gateway.core.release``).

    Rule 1: ``apply`` reads the standings, runs ``decide`` and appends its changes with the port's next dense
            sequence numbers (from 1), updates the standings, marks ``key`` applied AND appends ``record``'s
            ledger writes (the alert message with its leaf, then the ``port_update`` leaf) in ONE atomic,
            durable write of the message store's ledger; a key applied before changes nothing and returns None
            (no double application). So no stream entry exists without its ledger event, and no refused
            gate-out without its alert (issue 17).
    Rule 2: a snapshot is consistent: the open standings as of exactly the ``seq`` it returns.
    """

    async def apply(
        self,
        port: str,
        key: tuple[str, str],
        transport_document: str,
        containers: Sequence[str],
        decide: PortDecide,
        *,
        record: PortRecord,
    ) -> Plan | None:
        """``decide`` sees the port's standings of ``transport_document`` and of ``containers`` (any B/L);
        returns the plan with its changes numbered, or None when ``key`` was applied before."""
        ...

    async def notices(self, port: str, after: int, limit: int) -> list[PortNotice]:
        """Stream entries with seq > after, in order, at most ``limit``."""
        ...

    async def snapshot(self, port: str) -> tuple[int, list[Standing]]:
        """(the last seq, the open standings in force at it)."""
        ...

    async def applied(self, key: tuple[str, str]) -> bool: ...

    async def ledger_scanned(self) -> int:
        """The ledger size up to which start-up recovery has looked for unapplied messages (0 at first)."""
        ...

    async def set_ledger_scanned(self, size: int) -> None: ...

    async def close(self) -> None: ...


class DeliveryOutcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True, slots=True)
class DueDelivery:
    item: InboxItem
    attempts: int  # attempts already made (0: never attempted, or redriven)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What the delivery worker decided after one attempt (input to ``Store.record_delivery``)."""

    recipient: str
    cursor: int
    attempt: int  # this attempt's number (1: the first since accepted or redriven): it must follow the stored count
    outcome: DeliveryOutcome
    status: str  # the transport status of the attempt ("200", "503", "timeout", ...)
    at: datetime
    next_attempt_at: datetime | None = None  # required for RETRY, ignored otherwise
    receipt: bytes = b""  # a relay's DELIVERED: the peer gateway's signed receipt (compact JWS), kept with it
    code: str = ""  # a relay the peer refused or failed: the stable error code of its answer (e.g. FORBIDDEN)


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """The push state of one inbox item."""

    cursor: int
    recipient: str
    sender: str
    message_id: str
    attempts: int
    outcome: DeliveryOutcome  # of the last attempt
    last_status: str
    updated_at: datetime
    next_attempt_at: datetime | None  # None unless outcome is RETRY
    receipt: bytes = b""  # a delivered relay entry: the peer gateway's signed receipt; else empty
    code: str = ""  # a relay entry's last attempt: the peer's stable error code ("" when it gave none)

    @property
    def peer(self) -> str | None:
        """The peer gateway of a relay entry (``relay_queue``); None for a member's push entry."""
        return relay_peer(self.recipient)

    @property
    def dead(self) -> bool:
        return self.outcome is DeliveryOutcome.DEAD


class Disposition(enum.StrEnum):
    """Where one inbox entry stands, the first that holds of (a recall's withdrawal first)."""

    WITHDRAWN = "withdrawn"  # a recall withdrew it (the recipient was sent the recall)
    DEAD = "dead-lettered"  # push gave up; waits for an operator's redrive
    DELIVERED = "delivered"  # pushed and accepted by the recipient's endpoint
    ACKNOWLEDGED = "acknowledged"  # pulled and acknowledged by the recipient
    RETRYING = "retrying"  # push attempted, due again later
    PENDING = "pending"  # waiting in the inbox (never attempted, or redriven)
    SETTLED = "settled"  # left the inbox, how and when not recorded (a Redis entry stored before issue 20)


@dataclass(frozen=True, slots=True)
class RecipientState:
    """One recipient's inbox entry of a message (``Store.recipient_states``)."""

    recipient: str
    cursor: int  # 0: not recorded (a Redis entry stored before issue 20 that is no longer waiting)
    settled_at: datetime | None  # when it left the inbox (acknowledged, delivered or withdrawn); None: waiting
    delivery: DeliveryState | None = None  # its push state; None: never pushed (a pull recipient)
    withdrawn_by: tuple[str, str] | None = None  # (sender, message id) of the recall that withdrew it
    peer: str | None = None  # a remote recipient: the peer gateway it is relayed to (its relay entry's state)

    @property
    def disposition(self) -> Disposition:
        if self.withdrawn_by is not None:
            return Disposition.WITHDRAWN
        outcome = self.delivery.outcome if self.delivery is not None else None
        if outcome is DeliveryOutcome.DEAD:
            return Disposition.DEAD
        if outcome is DeliveryOutcome.DELIVERED:
            return Disposition.DELIVERED
        if self.settled_at is not None:
            return Disposition.ACKNOWLEDGED
        if self.cursor == 0:
            return Disposition.SETTLED
        return Disposition.RETRYING if outcome is DeliveryOutcome.RETRY else Disposition.PENDING


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """The outcome of one push attempt to one recipient endpoint."""

    delivered: bool
    retryable: bool  # False: a permanent refusal (e.g. 4xx other than 408/429) -> dead letter at once
    status: str  # transport status for the ledger: "200", "503", "timeout", "connect-error", a SOAP fault code ...
    detail: str = ""  # operator detail (never payload bodies or secrets)
    receipt: bytes = b""  # a relay: the peer gateway's verified receipt (compact JWS), stored with the outcome
    code: str = ""  # a relay refused by the peer: the stable error code of its answer (e.g. FORBIDDEN)


class Deliverer(Protocol):
    """Pushes one stored message to one recipient endpoint (webhook, gRPC or SOAP).

    Rule 1: byte-identical retries: the deliverer sends the stored evidence and payload unchanged every time.
    Rule 2: every await has a timeout; a timeout is a retryable attempt, never an exception.
    """

    kind: str  # the Endpoint.kind it serves: "webhook" | "grpc" | "soap"

    async def deliver(self, recipient: Member, endpoint: Endpoint, item: InboxItem) -> DeliveryAttempt: ...


class Relayer(Protocol):
    """Relays one stored message to one peer gateway (issue 19; ``gateway.infra.relay_client``).

    Rule 1: byte-identical retries, as ``Deliverer`` Rule 1: the sender's evidence and payload, unchanged.
    Rule 2: every await has a timeout; a timeout is a retryable attempt, never an exception.
    Rule 3: ``delivered`` only with the peer's verified receipt in ``DeliveryAttempt.receipt``.
    """

    kind: str  # "relay"

    async def relay(self, peer: PeerGateway, item: InboxItem) -> DeliveryAttempt: ...


class DocumentVerifier(Protocol):
    """Verifies a submission signed inside its own document (SOAP WS-Security) for one adapter kind.

    Rule 1: parse the untrusted bytes in the adapter's one hardened place; validate the signer's certificate with
            ``validator.validate_signing`` before checking the signature with its key.
    Rule 2: read the header and the payload ONLY from the elements the signature covers; the document must be
            addressed to one of ``audiences``; transport freshness (e.g. a WS-Security Timestamp) within
            ``max_skew``. The pipeline then applies the envelope rules (``envelope.verify_signed_claims``).
    """

    def verify(
        self,
        unverified: bytes,
        *,
        audiences: Sequence[str],
        validator: ChainValidator,
        now: datetime,
        max_skew: timedelta,
    ) -> SignedClaims: ...

    def stored_header(self, evidence: str, *, accepted_at: datetime) -> Header | None:
        """The header of stored evidence of this kind, accepted at ``accepted_at``, re-read from the signed
        elements only (forward checks); None when ``evidence`` is not of this kind (e.g. a JWS)."""
        ...
