"""The Store contract for push delivery state (due work, attempts, dead letters, redrive), every backend."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import DuplicateConflict, NotFound
from gateway.interfaces.protocols import DeliveryOutcome, DeliveryResult, InboxItem, Store, StoredMessage
from tests.contract.conftest import T0, Backend, Kit


async def accept(store: Store, kit: Kit, message: StoredMessage) -> StoredMessage:
    return await store.accept(message, kit.accepted(message), kit.make_receipt)


def attempt_event(cursor: int, outcome: DeliveryOutcome) -> AuditEvent:
    kind = EventKind.DELIVERED if outcome is DeliveryOutcome.DELIVERED else EventKind.DELIVERY_FAILED
    return AuditEvent(kind, T0, {"cursor": cursor, "outcome": outcome.value})


async def due(store: Store, recipient: str, at: datetime = T0, limit: int = 10) -> list[InboxItem]:
    return [d.item for d in await store.due_deliveries(recipient, at, limit)]


async def record(
    store: Store,
    recipient: str,
    cursor: int,
    outcome: DeliveryOutcome,
    *,
    attempt: int = 1,
    status: str = "503",
    later: int = 0,
) -> None:
    next_at = T0 + timedelta(seconds=later) if outcome is DeliveryOutcome.RETRY else None
    result = DeliveryResult(recipient, cursor, attempt, outcome, status, T0, next_at)
    await store.record_delivery(result, attempt_event(cursor, outcome))


async def test_new_items_are_due_oldest_first_and_only_for_their_recipient(store: Store, kit: Kit) -> None:
    first = await accept(store, kit, kit.message(recipients=("PORT-NLRTM", "CN-GACC")))
    second = await accept(store, kit, kit.message(recipients=("PORT-NLRTM",)))

    pending = await store.due_deliveries("PORT-NLRTM", T0, 10)

    assert [(d.item.message, d.attempts) for d in pending] == [(first, 0), (second, 0)]
    assert pending[0].item.cursor < pending[1].item.cursor
    assert [i.message for i in await due(store, "CN-GACC", T0, 10)] == [first]
    assert await due(store, "US-CBP", T0, 10) == []
    assert len(await due(store, "PORT-NLRTM", T0, 1)) == 1


async def test_delivered_acknowledges_the_item_and_writes_the_ledger_atomically(store: Store, kit: Kit) -> None:
    await accept(store, kit, kit.message(recipients=("PORT-NLRTM",)))
    [item] = await due(store, "PORT-NLRTM", T0, 10)
    size = await store.ledger_size()

    result = DeliveryResult("PORT-NLRTM", item.cursor, 1, DeliveryOutcome.DELIVERED, "200", T0)
    state = await store.record_delivery(result, attempt_event(item.cursor, DeliveryOutcome.DELIVERED))

    assert (state.attempts, state.outcome, state.last_status, state.dead) == (
        1,
        DeliveryOutcome.DELIVERED,
        "200",
        False,
    )
    assert (state.sender, state.message_id, state.recipient) == (
        item.message.sender,
        item.message.message_id,
        "PORT-NLRTM",
    )
    assert await due(store, "PORT-NLRTM", T0 + timedelta(days=1), 10) == []
    assert await store.pull("PORT-NLRTM", 0, 10) == []  # acknowledged: never pushed or pulled again
    assert await store.ledger_size() == size + 1
    [entry] = await store.ledger_entries(size, size + 1)
    assert entry.data == attempt_event(item.cursor, DeliveryOutcome.DELIVERED).canonical()
    assert await store.inbox_depths() == {}


async def test_a_retry_is_due_again_only_at_its_time(store: Store, kit: Kit) -> None:
    await accept(store, kit, kit.message(recipients=("PORT-NLRTM",)))
    [item] = await due(store, "PORT-NLRTM", T0, 10)

    await record(store, "PORT-NLRTM", item.cursor, DeliveryOutcome.RETRY, later=30)

    assert await due(store, "PORT-NLRTM", T0 + timedelta(seconds=29), 10) == []
    assert [i.cursor for i in await due(store, "PORT-NLRTM", T0 + timedelta(seconds=30), 10)] == [item.cursor]
    [again] = await store.due_deliveries("PORT-NLRTM", T0 + timedelta(seconds=30), 10)
    assert again.attempts == 1
    await record(store, "PORT-NLRTM", item.cursor, DeliveryOutcome.RETRY, attempt=2, later=90)
    assert await store.inbox_depths() == {"PORT-NLRTM": 1}
    assert await store.dead_letters(None, 0, 10) == []


async def test_dead_letters_are_listed_redriven_and_counted(store: Store, kit: Kit) -> None:
    for _ in range(3):
        await accept(store, kit, kit.message(recipients=("PORT-NLRTM",)))
    await accept(store, kit, kit.message(recipients=("CN-GACC",)))
    items = await due(store, "PORT-NLRTM", T0, 10)
    [other] = await due(store, "CN-GACC", T0, 10)
    await record(store, "PORT-NLRTM", items[0].cursor, DeliveryOutcome.RETRY)
    await record(store, "PORT-NLRTM", items[0].cursor, DeliveryOutcome.DEAD, attempt=2, status="410")
    await record(store, "PORT-NLRTM", items[2].cursor, DeliveryOutcome.DEAD)
    await record(store, "CN-GACC", other.cursor, DeliveryOutcome.DEAD)

    dead = await store.dead_letters("PORT-NLRTM", 0, 10)
    assert [d.cursor for d in dead] == [items[0].cursor, items[2].cursor]
    assert (dead[0].attempts, dead[0].last_status, dead[0].dead) == (2, "410", True)
    assert [d.cursor for d in await store.dead_letters(None, 0, 10)] == sorted(
        [items[0].cursor, items[2].cursor, other.cursor]
    )
    assert [d.cursor for d in await store.dead_letters(None, items[0].cursor, 1)] == [items[2].cursor]
    assert await store.dead_letter_count() == 3
    # dead letters are not due, however late it is
    assert [i.cursor for i in await due(store, "PORT-NLRTM", T0 + timedelta(days=9), 10)] == [items[1].cursor]

    size = await store.ledger_size()
    redriven = await store.redrive(
        [items[0].cursor, items[1].cursor, 10**9], AuditEvent(EventKind.ADMIN, T0, {"action": "redrive"})
    )

    assert redriven == 1  # only the dead letter; the pending item and the unknown cursor are left alone
    assert await store.ledger_size() == size + 1
    assert await store.dead_letter_count() == 2
    pending = await store.due_deliveries("PORT-NLRTM", T0, 10)
    assert [(d.item.cursor, d.attempts) for d in pending] == [(items[0].cursor, 0), (items[1].cursor, 0)]
    await record(store, "PORT-NLRTM", items[0].cursor, DeliveryOutcome.RETRY)
    assert items[0].cursor not in {d.cursor for d in await store.dead_letters(None, 0, 1000)}


async def test_recording_for_a_cursor_of_another_recipient_is_not_found(store: Store, kit: Kit) -> None:
    await accept(store, kit, kit.message(recipients=("PORT-NLRTM",)))
    [item] = await due(store, "PORT-NLRTM", T0, 10)
    size = await store.ledger_size()

    with pytest.raises(NotFound):
        await record(store, "CN-GACC", item.cursor, DeliveryOutcome.DELIVERED)
    with pytest.raises(NotFound):
        await record(store, "PORT-NLRTM", 10**9, DeliveryOutcome.DELIVERED)

    assert await store.ledger_size() == size  # nothing half-written
    assert len(await due(store, "PORT-NLRTM", T0, 10)) == 1


async def test_an_acknowledged_item_stays_acknowledged_whatever_is_recorded_late(store: Store, kit: Kit) -> None:
    await accept(store, kit, kit.message(recipients=("PORT-NLRTM",)))
    [item] = await store.pull("PORT-NLRTM", 0, 10)
    await store.ack("PORT-NLRTM", [item.cursor], AuditEvent(EventKind.ACKNOWLEDGED, T0, {"cursors": [item.cursor]}))
    size = await store.ledger_size()

    with pytest.raises(DuplicateConflict) as stale:
        await record(store, "PORT-NLRTM", item.cursor, DeliveryOutcome.DEAD)

    assert stale.value.field == "attempt"
    assert await store.ledger_size() == size  # a stale outcome writes nothing, no leaf either
    assert await store.dead_letters(None, 0, 10) == []
    assert await due(store, "PORT-NLRTM", T0 + timedelta(days=1), 10) == []


async def test_a_recorded_outcome_is_final_and_a_stale_attempt_writes_nothing(store: Store, kit: Kit) -> None:
    """Issue 17 item 8: an attempt made from an outdated due row (attempt number not following the stored
    count, or an item already delivered or dead) cannot add a second leaf or an attempt past the last."""
    for _ in range(3):
        await accept(store, kit, kit.message(recipients=("PORT-NLRTM",)))
    done, failing, dead = await due(store, "PORT-NLRTM", T0, 10)
    await record(store, "PORT-NLRTM", done.cursor, DeliveryOutcome.DELIVERED, status="200")
    await record(store, "PORT-NLRTM", failing.cursor, DeliveryOutcome.RETRY)
    await record(store, "PORT-NLRTM", dead.cursor, DeliveryOutcome.DEAD, status="410")
    size = await store.ledger_size()

    stale = [
        (done.cursor, 1, DeliveryOutcome.DELIVERED),  # the same attempt recorded twice
        (done.cursor, 2, DeliveryOutcome.DELIVERED),  # pushed again after delivered
        (failing.cursor, 1, DeliveryOutcome.DELIVERED),  # attempt 1 from a row read before its retry was recorded
        (failing.cursor, 3, DeliveryOutcome.RETRY),  # not the next attempt
        (dead.cursor, 2, DeliveryOutcome.RETRY),  # a dead letter until redriven
    ]
    for cursor, attempt, outcome in stale:
        with pytest.raises(DuplicateConflict):
            await record(store, "PORT-NLRTM", cursor, outcome, attempt=attempt, status="200")

    assert await store.ledger_size() == size
    [pending] = await store.due_deliveries("PORT-NLRTM", T0 + timedelta(days=1), 10)
    assert (pending.item.cursor, pending.attempts) == (failing.cursor, 1)
    [letter] = await store.dead_letters("PORT-NLRTM", 0, 10)
    assert (letter.cursor, letter.attempts, letter.last_status) == (dead.cursor, 1, "410")
    await record(store, "PORT-NLRTM", failing.cursor, DeliveryOutcome.DELIVERED, attempt=2, status="200")
    assert await due(store, "PORT-NLRTM", T0 + timedelta(days=1), 10) == []


async def test_delivery_state_survives_reopening(backend: Backend, kit: Kit) -> None:
    store = await backend.open()
    try:
        await accept(store, kit, kit.message(recipients=("PORT-NLRTM",)))
        await accept(store, kit, kit.message(recipients=("PORT-NLRTM",)))
        first, second = await due(store, "PORT-NLRTM", T0, 10)
        await record(store, "PORT-NLRTM", first.cursor, DeliveryOutcome.DELIVERED, status="204")
        await record(store, "PORT-NLRTM", second.cursor, DeliveryOutcome.DEAD)
    finally:
        await store.close()
    reopened = await backend.open()
    try:
        assert await due(reopened, "PORT-NLRTM", T0 + timedelta(days=1), 10) == []
        [dead] = await reopened.dead_letters("PORT-NLRTM", 0, 10)
        assert dead.cursor == second.cursor
    finally:
        await reopened.close()
