"""The Store contract for ``recipient_states`` (the per-recipient message status, issue 20), every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core.audit import AuditEvent, EventKind
from gateway.infra import redis_codec as codec
from gateway.infra.redis_store import RedisStore
from gateway.interfaces.protocols import DeliveryOutcome, DeliveryResult, Disposition, RelayStore, Store, StoredMessage
from tests.contract.conftest import T0, Backend, Kit


async def _accept(store: Store, kit: Kit, message: StoredMessage) -> StoredMessage:
    return await store.accept(message, kit.accepted(message), kit.make_receipt)


async def _attempt(store: Store, recipient: str, cursor: int, outcome: DeliveryOutcome, status: str) -> None:
    kind = EventKind.DELIVERED if outcome is DeliveryOutcome.DELIVERED else EventKind.DELIVERY_FAILED
    at = T0 + timedelta(seconds=30)
    next_at = at + timedelta(seconds=60) if outcome is DeliveryOutcome.RETRY else None
    result = DeliveryResult(recipient, cursor, 1, outcome, status, at, next_at)
    await store.record_delivery(result, AuditEvent(kind, at, {"cursor": cursor}))


async def test_each_recipient_reports_pending_acknowledged_delivered_retrying_or_dead(store: Store, kit: Kit) -> None:
    recipients = ("CN-GACC", "PORT-NLRTM", "NL-DOUANE", "US-CBP", "DE-ZOLL")
    message = await _accept(store, kit, kit.message("CARRIER-COSCO", recipients))
    other = await _accept(store, kit, kit.message("CARRIER-COSCO", ("PORT-NLRTM",)))
    cursor = {r: (await store.pull(r, 0, 10))[0].cursor for r in recipients}
    acked_at = T0 + timedelta(seconds=5)
    await store.ack("CN-GACC", [cursor["CN-GACC"]], AuditEvent(EventKind.ACKNOWLEDGED, acked_at, {"n": 1}))
    await _attempt(store, "PORT-NLRTM", cursor["PORT-NLRTM"], DeliveryOutcome.DELIVERED, "200")
    await _attempt(store, "NL-DOUANE", cursor["NL-DOUANE"], DeliveryOutcome.RETRY, "503")
    await _attempt(store, "US-CBP", cursor["US-CBP"], DeliveryOutcome.DEAD, "410")

    states = await store.recipient_states(message.sender, message.message_id)

    assert [(s.recipient, s.cursor) for s in states] == [(r, cursor[r]) for r in recipients]
    by = {s.recipient: s for s in states}
    assert {r: s.disposition for r, s in by.items()} == {
        "CN-GACC": Disposition.ACKNOWLEDGED,
        "PORT-NLRTM": Disposition.DELIVERED,
        "NL-DOUANE": Disposition.RETRYING,
        "US-CBP": Disposition.DEAD,
        "DE-ZOLL": Disposition.PENDING,
    }
    assert by["CN-GACC"].settled_at == acked_at and by["CN-GACC"].delivery is None
    pushed = by["PORT-NLRTM"].delivery
    assert pushed is not None and (pushed.attempts, pushed.last_status) == (1, "200")
    assert by["PORT-NLRTM"].settled_at == T0 + timedelta(seconds=30)
    retrying = by["NL-DOUANE"].delivery
    assert retrying is not None and retrying.next_attempt_at == T0 + timedelta(seconds=90)
    assert by["NL-DOUANE"].settled_at is None and by["US-CBP"].settled_at is None
    dead = by["US-CBP"].delivery
    assert dead is not None and (dead.attempts, dead.last_status, dead.message_id) == (1, "410", message.message_id)
    assert by["DE-ZOLL"].delivery is None and by["DE-ZOLL"].withdrawn_by is None
    # another message's entries are its own; an unknown message has none
    assert [s.recipient for s in await store.recipient_states(other.sender, other.message_id)] == ["PORT-NLRTM"]
    assert await store.recipient_states("CARRIER-COSCO", "unknown") == []


async def test_a_recall_marks_every_withdrawn_entry_with_the_recall(store: Store, kit: Kit) -> None:
    assert isinstance(store, RelayStore)
    original = await _accept(store, kit, kit.message("PORT-NLRTM", ("US-CBP", "NL-DOUANE")))
    forward = kit.message("US-CBP", ("CN-GACC",), payload=original.payload)
    await store.accept_forward(forward, (original.sender, original.message_id), kit.accepted(forward), kit.make_receipt)
    [read] = await store.pull("NL-DOUANE", 0, 10)
    acked_at = T0 + timedelta(seconds=2)
    await store.ack("NL-DOUANE", [read.cursor], AuditEvent(EventKind.ACKNOWLEDGED, acked_at, {"n": 1}))
    recall_at = T0 + timedelta(seconds=9)
    recall = kit.message("PORT-NLRTM", ("US-CBP",), at=recall_at)
    await store.recall(recall, (original.sender, original.message_id), kit.accepted(recall), kit.make_receipt)

    states = {s.recipient: s for s in await store.recipient_states(original.sender, original.message_id)}
    forwarded = await store.recipient_states(forward.sender, forward.message_id)

    key = (recall.sender, recall.message_id)
    assert {r: (s.disposition, s.withdrawn_by) for r, s in states.items()} == {
        "US-CBP": (Disposition.WITHDRAWN, key),
        "NL-DOUANE": (Disposition.WITHDRAWN, key),
    }
    assert states["US-CBP"].settled_at == recall_at  # left the inbox with the recall
    assert states["NL-DOUANE"].settled_at == acked_at  # had been read before: the ack time stays
    assert [(s.recipient, s.disposition, s.withdrawn_by) for s in forwarded] == [
        ("CN-GACC", Disposition.WITHDRAWN, key)
    ]
    # the recall's own entries are ordinary pending entries of the recall
    recall_states = await store.recipient_states(recall.sender, recall.message_id)
    assert [(s.recipient, s.disposition) for s in recall_states] == [
        ("CN-GACC", Disposition.PENDING),
        ("NL-DOUANE", Disposition.PENDING),
        ("US-CBP", Disposition.PENDING),
    ]


async def test_recipient_states_survive_reopening(backend: Backend, kit: Kit) -> None:
    store = await backend.open()
    try:
        message = await _accept(store, kit, kit.message("CARRIER-COSCO", ("CN-GACC",)))
        [item] = await store.pull("CN-GACC", 0, 10)
        await store.ack("CN-GACC", [item.cursor], AuditEvent(EventKind.ACKNOWLEDGED, T0, {"n": 1}))
    finally:
        await store.close()
    reopened = await backend.open()
    try:
        [state] = await reopened.recipient_states(message.sender, message.message_id)
        assert (state.cursor, state.settled_at, state.disposition) == (item.cursor, T0, Disposition.ACKNOWLEDGED)
    finally:
        await reopened.close()


async def test_a_redis_entry_stored_before_the_state_hash_reads_as_waiting_or_settled(store: Store, kit: Kit) -> None:
    """An upgrade: messages a Redis store accepted before issue 20 have no ``s:`` hash; their entries are found by
    their score in each inbox (waiting: pending with its cursor) or else reported settled, never pending."""
    if not isinstance(store, RedisStore):
        pytest.skip("the per-message state hash is the Redis layout's")
    message = await _accept(store, kit, kit.message("CARRIER-COSCO", ("CN-GACC", "PORT-NLRTM")))
    [read] = await store.pull("CN-GACC", 0, 10)
    await store.ack("CN-GACC", [read.cursor], AuditEvent(EventKind.ACKNOWLEDGED, T0, {"n": 1}))
    [waiting] = await store.pull("PORT-NLRTM", 0, 10)
    await store._client.delete(store._base.encode() + b"s:" + codec.suffix(message.sender, message.message_id))

    states = {s.recipient: s for s in await store.recipient_states(message.sender, message.message_id)}

    assert (states["PORT-NLRTM"].cursor, states["PORT-NLRTM"].disposition) == (waiting.cursor, Disposition.PENDING)
    assert (states["CN-GACC"].cursor, states["CN-GACC"].disposition) == (0, Disposition.SETTLED)
    assert states["CN-GACC"].settled_at is None
