"""An in-memory store for tests: the whole ``RelayStore`` contract (``gateway.interfaces.protocols``) in dictionaries.

A testing aid, as httpx ships ``MockTransport``: it lets a test build a real ``Pipeline`` (or any service over a
store) without a disk or a Redis, and runs the same contract suite as the real backends (``tests/contract``).
It is not a backend an operator can choose in ``gateway.toml``: nothing it keeps outlives the process.

Rule 1: every method does its whole read-check-write between two awaits, so each call is atomic on the event
        loop however many tasks call it; it is not thread-safe (one event loop, one process).
Rule 2: a write checks everything and runs the caller's receipt factory BEFORE it changes anything: a refusal
        (duplicate, unknown cursor, stale attempt) or a factory that raises leaves no trace, as a rolled-back
        transaction of the real stores would.
Rule 3: what is kept lives in a :class:`MemoryData`, apart from the store object: closing a store and opening a
        new one over the same data is the memory equivalent of reopening a database file (the contract's
        durability tests). A closed store refuses every call with ``Unavailable``.
Rule 4: ledger leaves are the events' canonical bytes (``AuditEvent.canonical``), as the real stores keep them,
        so ``gateway.ops.ledger`` hashes them into the same Merkle tree; recalls choose their copies with
        ``gateway.core.forwarding.recalled_copies``, like the real stores.
Rule 5: untrusted numbers and lists are bounded by the SQLite store's named limits, so a caller sees the same
        refusals (field and code) from every backend.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.core.audit import AuditEvent
from gateway.core.errors import BadRequest, DuplicateConflict, Internal, LimitExceeded, NotFound, Unavailable
from gateway.core.forwarding import MessageKey, recalled_copies
from gateway.infra.sqlite import ACK_CURSORS_MAX, LEDGER_RANGE_MAX, PULL_LIMIT_MAX, REPLAY_KEY_MAX
from gateway.infra.sqlite_delivery import DEAD_LETTER_PAGE_MAX, REDRIVE_CURSORS_MAX
from gateway.infra.sqlite_schema import require_aware
from gateway.interfaces.protocols import (
    Clock,
    DeliveryOutcome,
    DeliveryResult,
    DeliveryState,
    DueDelivery,
    InboxItem,
    LedgerEntry,
    Recall,
    ReceiptFactory,
    RecipientState,
    Relays,
    RelayStore,
    Store,
    StoredMessage,
    check_relays,
    inbox_targets,
    relay_peer,
)

# Expired replay claims dropped per claim: keeps the purge cheap, as the SQLite store's batch does.
REPLAY_PURGE_BATCH = 64
# A delivery status is kept to this many characters (the SQLite store's column).
STATUS_CHARS_MAX = 200


class _UtcClock:
    """Wall-clock UTC (the default): only replay-claim expiry reads it."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(slots=True)
class _Entry:
    """One inbox entry: whose it is, of which message, and when it left the inbox (ack, delivery, recall)."""

    recipient: str
    key: MessageKey
    acked_at: datetime | None = None
    withdrawn_by: MessageKey | None = None
    relayed: tuple[str, ...] = ()  # a relay entry (ports.Store Rule 4): the remote recipients it carries


@dataclass(slots=True)
class _Forward:
    root: MessageKey
    parent: MessageKey


@dataclass
class MemoryData:
    """Everything a :class:`MemoryStore` keeps (Rule 3); share one between stores to "reopen"."""

    ledger: list[bytes] = field(default_factory=list)
    messages: dict[MessageKey, StoredMessage] = field(default_factory=dict)  # in acceptance order
    inbox: dict[int, _Entry] = field(default_factory=dict)  # cursor -> entry, cursors increasing
    by_recipient: dict[str, list[int]] = field(default_factory=dict)  # cursors, oldest first
    by_message: dict[MessageKey, list[int]] = field(default_factory=dict)
    last_cursor: int = 0
    deliveries: dict[int, DeliveryState] = field(default_factory=dict)  # push state by cursor
    claims: dict[str, datetime] = field(default_factory=dict)  # replay key -> expiry
    claim_expiries: list[tuple[datetime, str]] = field(default_factory=list)  # heap, for the purge
    forwards: dict[MessageKey, _Forward] = field(default_factory=dict)
    trees: dict[MessageKey, list[MessageKey]] = field(default_factory=dict)  # root -> forwards, acceptance order


class MemoryStore:
    """``RelayStore`` in memory (see the module rules). ``MemoryStore()`` starts empty."""

    def __init__(self, data: MemoryData | None = None, *, clock: Clock | None = None) -> None:
        self.data = data if data is not None else MemoryData()
        self._clock = clock if clock is not None else _UtcClock()
        self._closed = False

    # -- messages --------------------------------------------------------------------------------------

    async def find_message(self, sender: str, message_id: str) -> StoredMessage | None:
        await self._turn()
        return self.data.messages.get((sender, message_id))

    async def accept(
        self, message: StoredMessage, event: AuditEvent, make_receipt: ReceiptFactory, *, relays: Relays | None = None
    ) -> StoredMessage:
        await self._turn()
        relays = check_relays(message, relays)
        stored, commit = self._prepare(message, event, make_receipt, message.recipients, relays)
        commit()
        return stored

    async def record(self, event: AuditEvent) -> int:
        await self._turn()
        return self._append(event.canonical())

    # -- forwards and recalls (ports.RelayStore) -----------------------------------------------------------

    async def accept_forward(
        self,
        message: StoredMessage,
        original: tuple[str, str],
        event: AuditEvent,
        make_receipt: ReceiptFactory,
        *,
        relays: Relays | None = None,
    ) -> StoredMessage:
        await self._turn()
        relays = check_relays(message, relays)
        root = self._root_of(original)
        stored, commit = self._prepare(message, event, make_receipt, message.recipients, relays)
        commit()
        key = (message.sender, message.message_id)
        self.data.forwards[key] = _Forward(root, original)
        self.data.trees.setdefault(root, []).append(key)
        return stored

    async def forward_of(self, sender: str, message_id: str) -> tuple[str, str] | None:
        await self._turn()
        link = self.data.forwards.get((sender, message_id))
        return None if link is None else link.root

    async def forwards_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
        await self._turn()
        links = self.data.forwards
        return {key: links[key].root for key in dict.fromkeys(keys) if key in links}

    async def copies(self, sender: str, message_id: str) -> list[StoredMessage]:
        await self._turn()
        original = (sender, message_id)
        if original not in self.data.messages:
            return []
        keys = [original, *self.data.trees.get(original, ())]
        return [self.data.messages[key] for key in keys]

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
        await self._turn()
        relays = check_relays(message, relays)
        withdrawn_at = require_aware(event.at, "event.at")
        root = self._root_of(original)
        tree = [(key, self.data.forwards[key].parent) for key in self.data.trees.get(root, ())]
        withdrawn = recalled_copies(root, tree, original, message.sender, whole_tree=whole_tree)
        holders = set(message.recipients)
        for key in withdrawn:  # the remote recipients a copy was relayed to hold nothing here (RelayStore Rule 3)
            remote = {m for c in self.data.by_message.get(key, ()) for m in self.data.inbox[c].relayed}
            holders.update(r for r in self.data.messages[key].recipients if r not in remote)
        holders.discard(message.sender)
        ordered = tuple(sorted(holders))
        stored, commit = self._prepare(message, event, make_receipt, ordered, relays)
        commit()
        recall_key = (message.sender, message.message_id)
        for key in withdrawn:
            for cursor in self.data.by_message.get(key, ()):
                entry = self.data.inbox[cursor]
                if entry.withdrawn_by is None:
                    entry.withdrawn_by = recall_key
                if entry.acked_at is None:
                    entry.acked_at = withdrawn_at
        relayed = {m for members in (relays or {}).values() for m in members}
        return Recall(stored, tuple(h for h in ordered if h not in relayed), tuple(withdrawn))

    # -- inbox -------------------------------------------------------------------------------------------

    async def pull(self, recipient: str, after: int, limit: int) -> list[InboxItem]:
        await self._turn()
        if limit < 1:
            raise BadRequest("limit must be positive", field="limit")
        if limit > PULL_LIMIT_MAX:
            raise LimitExceeded(f"limit {limit} > {PULL_LIMIT_MAX}", field="limit")
        if after < 0:
            raise BadRequest("after must be a cursor (>= 0)", field="after")
        items: list[InboxItem] = []
        for cursor in self._waiting(recipient, after):
            items.append(InboxItem(cursor, recipient, self.data.messages[self.data.inbox[cursor].key]))
            if len(items) == limit:
                break
        return items

    async def ack(self, recipient: str, cursors: Sequence[int], event: AuditEvent) -> int:
        await self._turn()
        if len(cursors) > ACK_CURSORS_MAX:
            raise LimitExceeded(f"{len(cursors)} cursors > {ACK_CURSORS_MAX}", field="cursors")
        acked_at = require_aware(event.at, "event.at")
        for i, cursor in enumerate(cursors):
            self._entry_of(recipient, cursor, field=f"cursors[{i}]")
        leaf = event.canonical()
        newly = 0
        for cursor in cursors:
            entry = self.data.inbox[cursor]
            if entry.acked_at is None:
                entry.acked_at = acked_at
                newly += 1
        self._append(leaf)
        return newly

    async def inbox_owners(self, cursors: Sequence[int]) -> dict[int, tuple[str, str, str]]:
        await self._turn()
        wanted = {c for c in cursors if c > 0}
        if len(wanted) > ACK_CURSORS_MAX:
            raise LimitExceeded(f"{len(wanted)} cursors > {ACK_CURSORS_MAX}", field="cursors")
        owners: dict[int, tuple[str, str, str]] = {}
        for cursor in sorted(wanted):
            entry = self.data.inbox.get(cursor)
            if entry is not None:
                owners[cursor] = (entry.recipient, *entry.key)
        return owners

    async def inbox_depths(self) -> dict[str, int]:
        await self._turn()
        depths: dict[str, int] = {}
        for entry in self.data.inbox.values():
            if entry.acked_at is None:
                depths[entry.recipient] = depths.get(entry.recipient, 0) + 1
        return depths

    # -- replay cache ----------------------------------------------------------------------------------

    async def claim_once(self, key: str, expires: datetime) -> bool:
        await self._turn()
        self._check_claim_key(key)
        until = require_aware(expires, "expires")
        now = require_aware(self._clock.now(), "clock.now()")
        self._purge_claims(now)
        held = self.data.claims.get(key)
        if held is not None and held > now:
            return False
        self.data.claims[key] = until
        heapq.heappush(self.data.claim_expiries, (until, key))
        return True

    async def release_claim(self, key: str) -> None:
        await self._turn()
        self._check_claim_key(key)
        self.data.claims.pop(key, None)

    # -- ledger ------------------------------------------------------------------------------------------

    async def ledger_size(self) -> int:
        await self._turn()
        return len(self.data.ledger)

    async def ledger_entries(self, start: int, end: int) -> list[LedgerEntry]:
        await self._turn()
        if start < 0:
            raise BadRequest("start must be >= 0", field="start")
        if end < start:
            raise BadRequest("end must be >= start", field="end")
        if end - start > LEDGER_RANGE_MAX:
            raise LimitExceeded(f"range of {end - start} entries > {LEDGER_RANGE_MAX}", field="end")
        leaves = self.data.ledger
        return [LedgerEntry(index, leaves[index]) for index in range(start, min(end, len(leaves)))]

    async def probe_write(self) -> None:
        """Memory takes writes as long as the store is open; a closed store fails the probe (``Unavailable``)."""
        await self._turn()

    # -- push delivery state ---------------------------------------------------------------------------

    async def due_deliveries(self, recipient: str, now: datetime, limit: int) -> list[DueDelivery]:
        await self._turn()
        if not 1 <= limit <= PULL_LIMIT_MAX:
            raise LimitExceeded(f"limit must be in 1..{PULL_LIMIT_MAX}", field="limit")
        at = require_aware(now, "now")
        due: list[DueDelivery] = []
        for cursor in self._waiting(recipient, 0):
            state = self.data.deliveries.get(cursor)
            if state is not None and not _due(state, at):
                continue
            item = InboxItem(cursor, recipient, self.data.messages[self.data.inbox[cursor].key])
            due.append(DueDelivery(item, 0 if state is None else state.attempts))
            if len(due) == limit:
                break
        return due

    async def record_delivery(self, result: DeliveryResult, event: AuditEvent) -> DeliveryState:
        await self._turn()
        updated_at = require_aware(result.at, "result.at")
        next_at: datetime | None = None
        if result.outcome is DeliveryOutcome.RETRY:
            if result.next_attempt_at is None:
                raise Internal("a retry needs next_attempt_at", field="next_attempt_at")
            next_at = require_aware(result.next_attempt_at, "next_attempt_at")
        entry = self._entry_of(result.recipient, result.cursor, field="cursor")
        before = self.data.deliveries.get(result.cursor)
        attempts = 0 if before is None else before.attempts
        pending = before is None or before.outcome is DeliveryOutcome.RETRY
        if entry.acked_at is not None or not pending or attempts != result.attempt - 1:
            how = "acknowledged" if entry.acked_at is not None else (before.outcome if before else "pending")
            raise DuplicateConflict(
                f"attempt {result.attempt} of cursor {result.cursor} is stale: {attempts} recorded, {how}",
                field="attempt",
            )
        state = DeliveryState(
            cursor=result.cursor,
            recipient=result.recipient,
            sender=entry.key[0],
            message_id=entry.key[1],
            attempts=result.attempt,
            outcome=result.outcome,
            last_status=result.status[:STATUS_CHARS_MAX],
            updated_at=updated_at,
            next_attempt_at=next_at,
            receipt=result.receipt if result.outcome is DeliveryOutcome.DELIVERED else b"",
            code=result.code[:64],
        )
        leaf = event.canonical()
        if result.outcome is DeliveryOutcome.DELIVERED:
            entry.acked_at = updated_at
        self.data.deliveries[result.cursor] = state
        self._append(leaf)
        return state

    async def dead_letters(self, recipient: str | None, after: int, limit: int) -> list[DeliveryState]:
        await self._turn()
        if not 1 <= limit <= DEAD_LETTER_PAGE_MAX:
            raise LimitExceeded(f"limit must be in 1..{DEAD_LETTER_PAGE_MAX}", field="limit")
        letters = [
            state
            for cursor, state in sorted(self.data.deliveries.items())
            if cursor > after and state.dead and recipient in (None, state.recipient)
        ]
        return letters[:limit]

    async def redrive(self, cursors: Sequence[int], event: AuditEvent) -> int:
        await self._turn()
        if len(cursors) > REDRIVE_CURSORS_MAX:
            raise LimitExceeded(f"{len(cursors)} cursors > {REDRIVE_CURSORS_MAX}", field="cursors")
        at = require_aware(event.at, "event.at")
        leaf = event.canonical()
        changed = 0
        for cursor in dict.fromkeys(cursors):
            state = self.data.deliveries.get(cursor)
            if state is not None and state.dead:
                self.data.deliveries[cursor] = DeliveryState(
                    cursor=state.cursor,
                    recipient=state.recipient,
                    sender=state.sender,
                    message_id=state.message_id,
                    attempts=0,
                    outcome=DeliveryOutcome.RETRY,
                    last_status=state.last_status,
                    updated_at=at,
                    next_attempt_at=None,
                    code=state.code,
                )
                changed += 1
        self._append(leaf)
        return changed

    async def dead_letter_count(self) -> int:
        await self._turn()
        return sum(1 for state in self.data.deliveries.values() if state.dead)

    async def recipient_states(self, sender: str, message_id: str) -> list[RecipientState]:
        await self._turn()
        states: list[RecipientState] = []
        for cursor in self.data.by_message.get((sender, message_id), ()):
            entry = self.data.inbox[cursor]
            peer = relay_peer(entry.recipient)
            # a relay entry stands for each remote recipient it carries (ports.Store Rule 4)
            for name in (entry.recipient,) if peer is None else entry.relayed:
                states.append(
                    RecipientState(
                        recipient=name,
                        cursor=cursor,
                        settled_at=entry.acked_at,
                        delivery=self.data.deliveries.get(cursor),
                        withdrawn_by=entry.withdrawn_by,
                        peer=peer,
                    )
                )
        return states

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Rule 3: the data stays (a new store over it sees everything); this store refuses further calls."""
        self._closed = True

    # -- internals -----------------------------------------------------------------------------------------

    async def _turn(self) -> None:
        """Let other tasks run first, as a real store's I/O would (so tests meet the pipeline's real
        interleavings), then refuse the call if the store is closed (Rule 3)."""
        await asyncio.sleep(0)
        if self._closed:
            raise Unavailable("memory store: closed")

    def _prepare(
        self,
        message: StoredMessage,
        event: AuditEvent,
        make_receipt: ReceiptFactory,
        inbox: Sequence[str],
        relays: Relays | None = None,
    ) -> tuple[StoredMessage, Callable[[], None]]:
        """Rule 2: check ``message`` and sign its receipt (which may raise) without changing anything; return
        the stored message and the step that keeps it, its leaf and one inbox entry per distinct ``inbox``
        member."""
        require_aware(message.received_at, "received_at")
        key = (message.sender, message.message_id)
        if key in self.data.messages:  # before the receipt: a duplicate leaves no trace
            raise DuplicateConflict(f"{message.sender}/{message.message_id} already accepted", field="id")
        leaf = event.canonical()
        index = len(self.data.ledger)
        receipt = make_receipt(index, message.received_at)
        if not isinstance(receipt, bytes):
            raise Internal("the receipt factory returned no bytes")
        stored = message.with_receipt(receipt, index)

        def commit() -> None:
            data = self.data
            data.ledger.append(leaf)
            data.messages[key] = stored
            cursors = data.by_message.setdefault(key, [])
            for recipient in dict.fromkeys(inbox_targets(inbox, relays) if relays else inbox):
                data.last_cursor += 1
                peer = relay_peer(recipient)
                relayed = () if peer is None or relays is None else relays[peer]
                data.inbox[data.last_cursor] = _Entry(recipient, key, relayed=relayed)
                data.by_recipient.setdefault(recipient, []).append(data.last_cursor)
                cursors.append(data.last_cursor)

        return stored, commit

    def _append(self, leaf: bytes) -> int:
        self.data.ledger.append(leaf)
        return len(self.data.ledger) - 1

    def _root_of(self, key: MessageKey) -> MessageKey:
        """The root original of ``key`` (itself when it is no forward); ``NotFound`` for an unknown message."""
        if key not in self.data.messages:
            raise NotFound(f"no message {key[0]}/{key[1]}", field="original")
        link = self.data.forwards.get(key)
        return key if link is None else link.root

    def _entry_of(self, recipient: str, cursor: int, *, field: str) -> _Entry:
        """The recipient's inbox entry at ``cursor``; an unknown cursor and another recipient's get the same
        ``NotFound`` (a recipient cannot probe other inboxes)."""
        entry = self.data.inbox.get(cursor)
        if entry is None or entry.recipient != recipient:
            raise NotFound(f"no cursor {cursor} for {recipient}", field=field)
        return entry

    def _waiting(self, recipient: str, after: int) -> list[int]:
        """The recipient's unacknowledged cursors after ``after``, oldest first."""
        inbox = self.data.inbox
        return [c for c in self.data.by_recipient.get(recipient, ()) if c > after and inbox[c].acked_at is None]

    def _check_claim_key(self, key: str) -> None:
        if len(key) > REPLAY_KEY_MAX:
            raise LimitExceeded(f"replay key of {len(key)} characters > {REPLAY_KEY_MAX}", field="key")

    def _purge_claims(self, now: datetime) -> None:
        """Drop up to ``REPLAY_PURGE_BATCH`` expired claims (a heap entry whose key was claimed again since is
        stale and only dropped from the heap)."""
        heap, claims = self.data.claim_expiries, self.data.claims
        for _ in range(REPLAY_PURGE_BATCH):
            if not heap or heap[0][0] > now:
                return
            until, key = heapq.heappop(heap)
            if claims.get(key) == until:
                del claims[key]


def _due(state: DeliveryState, now: datetime) -> bool:
    """A pushed item is due again only as a retry whose time has come (a redriven one has no time: at once)."""
    if state.outcome is not DeliveryOutcome.RETRY:
        return False
    return state.next_attempt_at is None or state.next_attempt_at <= now


if TYPE_CHECKING:

    def _satisfies_the_port(store: MemoryStore) -> Store:  # mypy checks MemoryStore against ports.Store
        return store

    def _relays(store: MemoryStore) -> RelayStore:  # ... and against ports.RelayStore (forwards, recalls)
        return store
