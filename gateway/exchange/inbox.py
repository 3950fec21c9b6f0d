"""The inbox read side: pull (cursor, long-poll), acknowledge, message status.

Rule 1: a pull returns unacknowledged items after the caller's cursor, oldest first, at most ``max_pull_items``;
        when there are none it waits (bounded by ``max_wait_seconds``) for a wake-up or a re-poll.
Rule 2: a forwarded item carries the original message (its signed evidence goes out beside the forward); an
        item carries the fields of its ``accepted`` ledger leaf that the handlers of its type deliver
        (``gateway.exchange.handlers``: ``Handler.delivered_fields``; the AEO results of a manifest).
Rule 3: who may read a status is Cedar's ``read_status`` decision; a denial looks exactly like a missing message.
Rule 4: a status carries where the message stands with each recipient (``Store.recipient_states``) and the
        forwards of it. The sender, the home administration and auditors see every recipient and forward; any
        other reader (a recipient) sees its own entry and its own forwards only.
Rule 5: every pull and every ack logs one line (``inbox pull``, ``inbox ack``): who, from which cursor, how many.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import structlog

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import LimitExceeded, NotFound
from gateway.core.model import Caller, Member, MemberKind
from gateway.core.policyrequests import status_request
from gateway.exchange.state import GatewayState
from gateway.interfaces.protocols import Clock, InboxItem, RecipientState, RelayStore, Store, StoredMessage

# A long-poll re-reads the store at least this often: submissions to other processes on a shared store wake no
# event in this one. One cheap indexed read per waiting caller per second.
INBOX_REPOLL_SECONDS = 1.0

log = structlog.get_logger("gateway.exchange.inbox")


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """A message's status as one reader may see it (Rule 4)."""

    message: StoredMessage
    recipients: tuple[RecipientState, ...]  # oldest inbox entry first
    forwards: tuple[StoredMessage, ...] = ()  # accepted forwards of this message (a root original), in order


def _sees_everything(member: Member, message: StoredMessage) -> bool:
    return member.id == message.sender or member.home or member.kind is MemberKind.AUDITOR


class Wakeups:
    """Per member, the event its long-polls in this process wait on; set when a new item for it is durable."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, member_id: str) -> asyncio.Event:
        event = self._events.get(member_id)
        if event is None:
            event = self._events[member_id] = asyncio.Event()
        return event

    def wake(self, member_id: str) -> None:
        """A new item for ``member_id`` is durable: wake its long-polls in this process."""
        self.event(member_id).set()


class Inbox:
    def __init__(
        self,
        *,
        store: Store,
        state: GatewayState,
        clock: Clock,
        wakeups: Wakeups,
        delivered: Callable[[str], tuple[str, ...]] = lambda message_type: (),
    ) -> None:
        self._store = store
        self._state = state
        self._clock = clock
        self._wakeups = wakeups
        self._delivered = delivered  # Rule 2: the ledger fields delivered with an item of a type

    async def _with_originals(self, items: list[InboxItem]) -> list[InboxItem]:
        """A forwarded item carries the original message (its signed evidence goes out beside the forward)."""
        if not items or not isinstance(self._store, RelayStore):
            return items
        roots = await self._store.forwards_of([(i.message.sender, i.message.message_id) for i in items])
        if not roots:
            return items
        originals = {root: await self._store.find_message(*root) for root in set(roots.values())}
        out: list[InboxItem] = []
        for item in items:
            original = originals.get(roots.get((item.message.sender, item.message.message_id), ("", "")))
            out.append(item if original is None else replace(item, forward_of=original))
        return out

    def wake(self, member_id: str) -> None:
        """A new item for ``member_id`` is durable: wake its long-polls in this process."""
        self._wakeups.wake(member_id)

    async def pull(self, caller: Caller, *, after: int, limit: int, wait: float) -> list[InboxItem]:
        """Unacknowledged items after ``after``; when none, wait up to ``wait`` seconds for new ones."""
        limits = self._state.limits
        limit = max(1, min(limit, limits.max_pull_items))
        wait = max(0.0, min(wait, limits.max_wait_seconds))
        member_id = caller.member.id
        started = time.monotonic()
        deadline = started + wait
        while True:
            signal = self._wakeups.event(member_id)
            signal.clear()
            items = await self._store.pull(member_id, after, limit)
            remaining = deadline - time.monotonic()
            if items or remaining <= 0:
                log.info(
                    "inbox pull",
                    member=member_id,
                    after=after,
                    items=len(items),
                    next_after=items[-1].cursor if items else after,
                    waited_ms=round((time.monotonic() - started) * 1000, 1),
                )
                return await self._with_originals(await self._annotated(items))
            # a submission to ANOTHER gateway process (shared Redis store) sets no event here: re-poll the store
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), timeout=min(remaining, INBOX_REPOLL_SECONDS))

    async def _annotated(self, items: list[InboxItem]) -> list[InboxItem]:
        """Attach the delivered fields of each message's ``accepted`` ledger leaf (Rule 2: they travel with it)."""
        out: list[InboxItem] = []
        for item in items:
            index, fields = item.message.leaf_index, self._delivered(item.message.type)
            if fields and index >= 0:
                entries = await self._store.ledger_entries(index, index + 1)
                leaf = json.loads(entries[0].data) if entries else {}
                found = {name: leaf[name] for name in fields if leaf.get(name)}
                if found:
                    out.append(replace(item, annotations=found))
                    continue
            out.append(item)
        return out

    async def ack(self, caller: Caller, cursors: Sequence[int]) -> int:
        if len(cursors) > self._state.limits.max_ack_items:
            raise LimitExceeded(f"{len(cursors)} cursors > {self._state.limits.max_ack_items}", field="cursors")
        event = AuditEvent(
            EventKind.ACKNOWLEDGED,
            self._clock.now(),
            {"recipient": caller.member.id, "cursors": list(cursors)},
        )
        acknowledged = await self._store.ack(caller.member.id, cursors, event)
        log.info("inbox ack", member=caller.member.id, cursors=len(cursors), acknowledged=acknowledged)
        return acknowledged

    async def status(self, caller: Caller, sender: str, message_id: str) -> MessageStatus:
        """Who may read a message's status is Cedar's ``read_status`` decision (the baseline: sender, recipients,
        auditors); a denial is NOT_FOUND, like an unknown message, so a status read never reveals existence.
        What the reader sees of the recipients and forwards: Rule 4."""
        message = await self._store.find_message(sender, message_id)
        if message is not None:
            request = status_request(caller.member, message.type, message.sender, message.recipients)
            if self._state.require_authorizer().authorize(request).allowed:
                return await self._status_of(caller.member, message)
        raise NotFound(f"no message {sender}/{message_id} visible to {caller.member.id}")

    async def _status_of(self, reader: Member, message: StoredMessage) -> MessageStatus:
        states = await self._store.recipient_states(message.sender, message.message_id)
        forwards: list[StoredMessage] = []
        if isinstance(self._store, RelayStore):
            forwards = (await self._store.copies(message.sender, message.message_id))[1:]
        if not _sees_everything(reader, message):
            states = [s for s in states if s.recipient == reader.id]
            forwards = [f for f in forwards if f.sender == reader.id]
        return MessageStatus(message, tuple(states), tuple(forwards))
