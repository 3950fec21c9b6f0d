"""The Store contract for gateway-to-gateway relay rows (issue 19; ``ports.Store`` Rule 4), every backend.

A recipient served by a peer gateway gets no inbox entry of its own; the message gets one relay entry per peer
(``ports.relay_queue``) in the same atomic write as the accept, pushed, retried, dead-lettered and redriven like
any push entry, and a delivered relay keeps the peer's receipt.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import DuplicateConflict, Internal
from gateway.interfaces.protocols import DeliveryOutcome, DeliveryResult, Disposition, Store, StoredMessage, relay_queue
from tests.contract.conftest import T0, Backend, Kit

NL = relay_queue("NL-DOUANE")
US = relay_queue("US-CBP")
B_RECEIPT = b"eyJhbGciOiJFUzI1NiJ9.eyJzdGF0dXMiOiJhY2NlcHRlZCJ9.c2ln"


async def accept_relayed(
    store: Store, kit: Kit, message: StoredMessage, relays: dict[str, tuple[str, ...]]
) -> StoredMessage:
    return await store.accept(message, kit.accepted(message), kit.make_receipt, relays=relays)


def attempt(queue: str, cursor: int, outcome: DeliveryOutcome, *, n: int = 1, receipt: bytes = b"") -> DeliveryResult:
    next_at = T0 + timedelta(seconds=60) if outcome is DeliveryOutcome.RETRY else None
    return DeliveryResult(queue, cursor, n, outcome, "201" if receipt else "503", T0, next_at, receipt=receipt)


def event(cursor: int, kind: EventKind = EventKind.RELAY_DELIVERED) -> AuditEvent:
    return AuditEvent(kind, T0, {"cursor": cursor})


async def test_remote_recipients_get_one_relay_entry_per_peer_and_no_inbox_entry(store: Store, kit: Kit) -> None:
    message = kit.message(recipients=("CN-GACC", "NL-DOUANE", "PORT-NLRTM", "US-CBP"))
    size = await store.ledger_size()

    stored = await accept_relayed(
        store, kit, message, {"NL-DOUANE": ("NL-DOUANE", "PORT-NLRTM"), "US-CBP": ("US-CBP",)}
    )

    assert stored.recipients == message.recipients  # the evidence is unchanged
    assert await store.ledger_size() == size + 1  # one atomic write: the accepted leaf only
    assert [i.message for i in await store.pull("CN-GACC", 0, 10)] == [stored]
    for remote in ("NL-DOUANE", "PORT-NLRTM", "US-CBP"):
        assert await store.pull(remote, 0, 10) == []
        assert await store.due_deliveries(remote, T0, 10) == []
    [nl] = await store.due_deliveries(NL, T0, 10)
    [us] = await store.due_deliveries(US, T0, 10)
    assert (nl.item.message, nl.attempts, us.item.message) == (stored, 0, stored)
    assert nl.item.cursor != us.item.cursor
    assert await store.inbox_depths() == {"CN-GACC": 1, NL: 1, US: 1}
    states = await store.recipient_states(message.sender, message.message_id)
    assert [(s.recipient, s.peer, s.disposition) for s in states] == [
        ("CN-GACC", None, Disposition.PENDING),
        ("NL-DOUANE", "NL-DOUANE", Disposition.PENDING),
        ("PORT-NLRTM", "NL-DOUANE", Disposition.PENDING),
        ("US-CBP", "US-CBP", Disposition.PENDING),
    ]
    assert [s.cursor for s in states][1:] == [nl.item.cursor, nl.item.cursor, us.item.cursor]


async def test_a_delivered_relay_keeps_the_peers_receipt_and_leaves_the_queue(store: Store, kit: Kit) -> None:
    message = kit.message(recipients=("NL-DOUANE", "PORT-NLRTM"))
    await accept_relayed(store, kit, message, {"NL-DOUANE": ("NL-DOUANE", "PORT-NLRTM")})
    [due] = await store.due_deliveries(NL, T0, 10)
    await store.record_delivery(attempt(NL, due.item.cursor, DeliveryOutcome.RETRY), event(due.item.cursor))
    size = await store.ledger_size()

    state = await store.record_delivery(
        attempt(NL, due.item.cursor, DeliveryOutcome.DELIVERED, n=2, receipt=B_RECEIPT), event(due.item.cursor)
    )

    assert (state.outcome, state.attempts, state.receipt, state.peer) == (
        DeliveryOutcome.DELIVERED,
        2,
        B_RECEIPT,
        "NL-DOUANE",
    )
    assert await store.ledger_size() == size + 1
    assert await store.due_deliveries(NL, T0 + timedelta(days=1), 10) == []
    states = await store.recipient_states(message.sender, message.message_id)
    assert [(s.recipient, s.disposition) for s in states] == [
        ("NL-DOUANE", Disposition.DELIVERED),
        ("PORT-NLRTM", Disposition.DELIVERED),
    ]
    assert all(s.delivery is not None and s.delivery.receipt == B_RECEIPT for s in states)
    # the outcome is final: a second delivered outcome (a restart's duplicate relay) writes nothing
    with pytest.raises(DuplicateConflict):
        await store.record_delivery(
            attempt(NL, due.item.cursor, DeliveryOutcome.DELIVERED, n=3, receipt=B_RECEIPT), event(due.item.cursor)
        )
    assert await store.ledger_size() == size + 1


async def test_relay_dead_letters_are_listed_and_redriven_with_push_ones(store: Store, kit: Kit) -> None:
    relayed = kit.message(recipients=("NL-DOUANE",))
    pushed = kit.message(recipients=("PORT-NLRTM",))
    await accept_relayed(store, kit, relayed, {"NL-DOUANE": ("NL-DOUANE",)})
    await store.accept(pushed, kit.accepted(pushed), kit.make_receipt)
    [relay] = await store.due_deliveries(NL, T0, 10)
    [push] = await store.due_deliveries("PORT-NLRTM", T0, 10)
    await store.record_delivery(attempt(NL, relay.item.cursor, DeliveryOutcome.DEAD), event(relay.item.cursor))
    await store.record_delivery(attempt("PORT-NLRTM", push.item.cursor, DeliveryOutcome.DEAD), event(push.item.cursor))

    dead = await store.dead_letters(None, 0, 10)

    assert [(d.cursor, d.recipient, d.peer) for d in dead] == [
        (relay.item.cursor, NL, "NL-DOUANE"),
        (push.item.cursor, "PORT-NLRTM", None),
    ]
    assert [d.cursor for d in await store.dead_letters(NL, 0, 10)] == [relay.item.cursor]
    [state] = await store.recipient_states(relayed.sender, relayed.message_id)
    assert (state.recipient, state.peer, state.disposition) == ("NL-DOUANE", "NL-DOUANE", Disposition.DEAD)

    assert await store.redrive([relay.item.cursor], AuditEvent(EventKind.ADMIN, T0, {"action": "redrive"})) == 1

    [again] = await store.due_deliveries(NL, T0, 10)
    assert (again.item.cursor, again.attempts) == (relay.item.cursor, 0)
    assert await store.dead_letter_count() == 1


async def test_a_relay_route_must_name_the_messages_own_recipients(store: Store, kit: Kit) -> None:
    message = kit.message(recipients=("CN-GACC", "NL-DOUANE"))
    size = await store.ledger_size()

    for relays in ({"NL-DOUANE": ("US-CBP",)}, {"NL-DOUANE": ("NL-DOUANE",), "US-CBP": ("NL-DOUANE",)}):
        with pytest.raises(Internal):
            await accept_relayed(store, kit, message, relays)

    assert await store.ledger_size() == size
    assert await store.find_message(message.sender, message.message_id) is None


async def test_relay_entries_and_receipts_survive_reopening(backend: Backend, kit: Kit) -> None:
    message = kit.message(recipients=("NL-DOUANE", "US-CBP"))
    store = await backend.open()
    try:
        await accept_relayed(store, kit, message, {"NL-DOUANE": ("NL-DOUANE",), "US-CBP": ("US-CBP",)})
        [nl] = await store.due_deliveries(NL, T0, 10)
        await store.record_delivery(
            attempt(NL, nl.item.cursor, DeliveryOutcome.DELIVERED, receipt=B_RECEIPT), event(nl.item.cursor)
        )
    finally:
        await store.close()
    reopened = await backend.open()
    try:
        states = await reopened.recipient_states(message.sender, message.message_id)
        assert [(s.recipient, s.peer, s.disposition) for s in states] == [
            ("NL-DOUANE", "NL-DOUANE", Disposition.DELIVERED),
            ("US-CBP", "US-CBP", Disposition.PENDING),
        ]
        assert states[0].delivery is not None and states[0].delivery.receipt == B_RECEIPT
        assert await reopened.due_deliveries(NL, T0 + timedelta(days=1), 10) == []
        assert len(await reopened.due_deliveries(US, T0, 10)) == 1
    finally:
        await reopened.close()
