"""Forwards and recalls that cross gateways (issue 19; ``ports.RelayStore`` Rule 3), every backend.

A forward's or a recall's remote recipients get one relay entry per peer gateway in the same atomic write as the
forward or recall, like a plain accept's (``ports.Store`` Rule 4). A recall withdraws the relay entries of the copies
it reaches (a copy not yet relayed never leaves), and the remote recipients a copy was relayed to are no local
holders: no inbox entry here for them, only the recall's own relay entry when the recall is addressed to them.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import Internal
from gateway.interfaces.protocols import (
    DeliveryOutcome,
    DeliveryResult,
    Disposition,
    RelayStore,
    Store,
    StoredMessage,
    relay_queue,
)
from tests.contract.conftest import T0, Kit

NL = relay_queue("NL-DOUANE")
SOON = T0 + timedelta(days=1)


def _relay(store: Store) -> RelayStore:
    assert isinstance(store, RelayStore)  # every backend keeps forwards and recalls
    return store


def _keys(items: list[StoredMessage]) -> list[tuple[str, str]]:
    return [(m.sender, m.message_id) for m in items]


async def _accept(relay: RelayStore, kit: Kit, message: StoredMessage) -> StoredMessage:
    return await relay.accept(message, kit.accepted(message), kit.make_receipt)


async def _relayed_original(relay: RelayStore, kit: Kit) -> StoredMessage:
    """CARRIER-COSCO to US-CBP (served here) and NL-DOUANE (served by the peer NL-DOUANE)."""
    original = kit.message("CARRIER-COSCO", ("US-CBP", "NL-DOUANE"))
    return await relay.accept(original, kit.accepted(original), kit.make_receipt, relays={"NL-DOUANE": ("NL-DOUANE",)})


async def _due(relay: RelayStore, queue: str) -> list[tuple[str, str]]:
    return _keys([d.item.message for d in await relay.due_deliveries(queue, SOON, 10)])


async def test_a_forwards_remote_recipients_get_the_peers_relay_entry(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    original = await _accept(relay, kit, kit.message("PORT-NLRTM", ("US-CBP",)))
    forward = kit.message("US-CBP", ("CN-GACC", "NL-DOUANE", "DE-ZOLL"), payload=original.payload)
    size = await relay.ledger_size()

    stored = await relay.accept_forward(
        forward,
        (original.sender, original.message_id),
        kit.accepted(forward),
        kit.make_receipt,
        relays={"NL-DOUANE": ("NL-DOUANE", "DE-ZOLL")},
    )

    assert await relay.ledger_size() == size + 1  # one atomic write
    assert stored.recipients == forward.recipients  # the forwarder's evidence is unchanged
    assert await relay.forward_of(forward.sender, forward.message_id) == (original.sender, original.message_id)
    assert _keys([i.message for i in await relay.pull("CN-GACC", 0, 10)]) == [(forward.sender, forward.message_id)]
    for remote in ("NL-DOUANE", "DE-ZOLL"):
        assert await relay.pull(remote, 0, 10) == []
    [due] = await relay.due_deliveries(NL, T0, 10)
    assert (due.item.message.jws, due.item.message.payload) == (forward.jws, original.payload)
    states = await relay.recipient_states(forward.sender, forward.message_id)
    assert [(s.recipient, s.peer, s.disposition) for s in states] == [
        ("CN-GACC", None, Disposition.PENDING),
        ("NL-DOUANE", "NL-DOUANE", Disposition.PENDING),
        ("DE-ZOLL", "NL-DOUANE", Disposition.PENDING),
    ]


async def test_a_forwards_relay_route_must_name_its_own_recipients(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    original = await _accept(relay, kit, kit.message("PORT-NLRTM", ("US-CBP",)))
    forward = kit.message("US-CBP", ("CN-GACC",), payload=original.payload)
    size = await relay.ledger_size()
    with pytest.raises(Internal):
        await relay.accept_forward(
            forward,
            (original.sender, original.message_id),
            kit.accepted(forward),
            kit.make_receipt,
            relays={"NL-DOUANE": ("NL-DOUANE",)},
        )
    assert await relay.ledger_size() == size
    assert await relay.find_message(forward.sender, forward.message_id) is None


async def test_a_recall_addressed_behind_a_peer_is_relayed_and_withdraws_the_pending_relay(
    store: Store, kit: Kit
) -> None:
    relay = _relay(store)
    original = await _relayed_original(relay, kit)
    recall = kit.message("CARRIER-COSCO", ("US-CBP", "NL-DOUANE"))
    size = await relay.ledger_size()

    done = await relay.recall(
        recall,
        (original.sender, original.message_id),
        kit.accepted(recall),
        kit.make_receipt,
        relays={"NL-DOUANE": ("NL-DOUANE",)},
    )

    assert await relay.ledger_size() == size + 1
    assert done.holders == ("US-CBP",)  # the remote recipient is reached through the relay entry
    assert done.withdrawn == ((original.sender, original.message_id),)
    # the original was never relayed: its relay entry is withdrawn with the local copy; the recall goes instead
    assert await _due(relay, NL) == [(recall.sender, recall.message_id)]
    assert _keys([i.message for i in await relay.pull("US-CBP", 0, 10)]) == [(recall.sender, recall.message_id)]
    assert await relay.pull("NL-DOUANE", 0, 10) == []
    states = await relay.recipient_states(original.sender, original.message_id)
    assert [(s.recipient, s.peer, s.disposition) for s in states] == [
        ("US-CBP", None, Disposition.WITHDRAWN),
        ("NL-DOUANE", "NL-DOUANE", Disposition.WITHDRAWN),
    ]
    assert all(s.withdrawn_by == (recall.sender, recall.message_id) for s in states)
    recalled = await relay.recipient_states(recall.sender, recall.message_id)
    assert [(s.recipient, s.peer) for s in recalled] == [("US-CBP", None), ("NL-DOUANE", "NL-DOUANE")]


async def test_a_recall_after_the_relay_was_delivered_keeps_the_peers_receipt(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    original = await _relayed_original(relay, kit)
    [due] = await relay.due_deliveries(NL, T0, 10)
    result = DeliveryResult(NL, due.item.cursor, 1, DeliveryOutcome.DELIVERED, "201", T0, receipt=b"b.receipt.jws")
    await relay.record_delivery(result, AuditEvent(EventKind.RELAY_DELIVERED, T0, {"cursor": due.item.cursor}))
    recall = kit.message("CARRIER-COSCO", ("NL-DOUANE",))

    done = await relay.recall(
        recall,
        (original.sender, original.message_id),
        kit.accepted(recall),
        kit.make_receipt,
        relays={"NL-DOUANE": ("NL-DOUANE",)},
    )

    assert done.holders == ("US-CBP",)
    assert await _due(relay, NL) == [(recall.sender, recall.message_id)]
    [_, remote] = await relay.recipient_states(original.sender, original.message_id)
    assert remote.peer == "NL-DOUANE" and remote.delivery is not None
    assert remote.delivery.receipt == b"b.receipt.jws"  # the peer's receipt for the original stays evidence


async def test_a_recall_not_addressed_behind_the_peer_gives_its_members_nothing_here(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    original = await _relayed_original(relay, kit)
    recall = kit.message("CARRIER-COSCO", ("US-CBP",))

    done = await relay.recall(recall, (original.sender, original.message_id), kit.accepted(recall), kit.make_receipt)

    assert done.holders == ("US-CBP",)
    assert await relay.pull("NL-DOUANE", 0, 10) == []  # a remote member never gets a local inbox entry
    assert await _due(relay, NL) == []  # nothing relayed: neither the withdrawn original nor the recall
    assert await relay.inbox_depths() == {"US-CBP": 1}


async def test_a_failed_relay_keeps_the_peers_error_code_until_the_next_attempt(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    original = await _relayed_original(relay, kit)
    [due] = await relay.due_deliveries(NL, T0, 10)
    cursor = due.item.cursor
    refused = DeliveryResult(NL, cursor, 1, DeliveryOutcome.DEAD, "403", T0, code="FORBIDDEN")

    state = await relay.record_delivery(refused, AuditEvent(EventKind.DELIVERY_FAILED, T0, {"cursor": cursor}))

    assert (state.peer, state.last_status, state.code) == ("NL-DOUANE", "403", "FORBIDDEN")
    [letter] = await relay.dead_letters(NL, 0, 10)
    assert (letter.peer, letter.code) == ("NL-DOUANE", "FORBIDDEN")
    [_, remote] = await relay.recipient_states(original.sender, original.message_id)
    assert remote.delivery is not None and remote.delivery.code == "FORBIDDEN"
    assert await relay.redrive([cursor], AuditEvent(EventKind.ADMIN, T0, {"action": "redrive"})) == 1
    delivered = DeliveryResult(NL, cursor, 1, DeliveryOutcome.DELIVERED, "201", T0, receipt=b"b.receipt.jws")
    state = await relay.record_delivery(delivered, AuditEvent(EventKind.RELAY_DELIVERED, T0, {"cursor": cursor}))
    assert (state.code, state.receipt) == ("", b"b.receipt.jws")
