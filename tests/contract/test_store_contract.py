"""The Store contract (gateway.interfaces.protocols.Store), run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core.audit import EventKind
from gateway.core.errors import BadRequest, DuplicateConflict, LimitExceeded, NotFound, Unavailable
from gateway.interfaces.protocols import Store, StoredMessage
from tests.contract.conftest import T0, Backend, Kit


async def accept(store: Store, kit: Kit, message: StoredMessage) -> StoredMessage:
    return await store.accept(message, kit.accepted(message), kit.make_receipt)


# -- accept / find -----------------------------------------------------------------------------------


async def test_accept_then_find_returns_the_stored_evidence(store: Store, kit: Kit) -> None:
    message = kit.message(recipients=("CN-GACC", "NL-DOUANE"))
    stored = await accept(store, kit, message)

    assert stored.leaf_index == 0
    assert kit.receipt_valid(stored.receipt, 0, message.received_at)
    assert stored == StoredMessage(**{**_fields(message), "receipt": stored.receipt, "leaf_index": 0})
    assert await store.find_message(message.sender, message.message_id) == stored
    assert await store.find_message(message.sender, "no-such-id") is None
    assert await store.find_message("US-CBP", message.message_id) is None
    assert await store.ledger_size() == 1
    [entry] = await store.ledger_entries(0, 1)
    assert entry.data == kit.accepted(message).canonical()


async def test_duplicate_sender_and_id_is_a_conflict_and_leaves_no_trace(store: Store, kit: Kit) -> None:
    first = await accept(store, kit, kit.message(message_id="m-1"))
    other_bytes = kit.message(message_id="m-1", payload=b"{}")
    made = kit.receipts_made

    with pytest.raises(DuplicateConflict):
        await accept(store, kit, other_bytes)
    with pytest.raises(DuplicateConflict):
        await accept(store, kit, first)

    assert kit.receipts_made == made  # no receipt is signed for a duplicate
    assert await store.ledger_size() == 1
    assert await store.find_message(first.sender, "m-1") == first
    assert len(await store.pull("CN-GACC", 0, 10)) == 1
    # the same id from another sender is another message
    assert (await accept(store, kit, kit.message(sender="US-CBP", message_id="m-1"))).leaf_index == 1


async def test_concurrent_accepts_and_records_get_dense_unique_indexes(store: Store, kit: Kit) -> None:
    messages = [kit.message(recipients=("CN-GACC",)) for _ in range(500)]
    events = [kit.event(n) for n in range(100)]

    results = await asyncio.gather(*(accept(store, kit, m) for m in messages), *(store.record(e) for e in events))
    stored = [r for r in results if isinstance(r, StoredMessage)]
    recorded = [r for r in results if isinstance(r, int)]

    indexes = [s.leaf_index for s in stored] + recorded
    assert sorted(indexes) == list(range(600))
    assert await store.ledger_size() == 600
    entries = {e.index: e.data for e in await store.ledger_entries(0, 600)}
    for s in stored:
        assert kit.receipt_valid(s.receipt, s.leaf_index, s.received_at)
        assert entries[s.leaf_index] == kit.accepted(s).canonical()
    for n, index in enumerate(recorded):
        assert entries[index] == events[n].canonical()


async def test_a_failing_receipt_factory_aborts_only_its_own_message(store: Store, kit: Kit) -> None:
    good = [kit.message(), kit.message()]
    bad = kit.message()

    def broken(leaf_index: int, received_at: datetime) -> bytes:
        raise Unavailable("receipt signing key missing")

    results = await asyncio.gather(
        accept(store, kit, good[0]),
        store.accept(bad, kit.accepted(bad), broken),
        accept(store, kit, good[1]),
        return_exceptions=True,
    )

    assert isinstance(results[1], Unavailable)
    assert [r.leaf_index for r in results if isinstance(r, StoredMessage)] == [0, 1]
    assert await store.find_message(bad.sender, bad.message_id) is None
    assert await store.ledger_size() == 2
    assert [i.message.message_id for i in await store.pull("CN-GACC", 0, 10)] == [
        good[0].message_id,
        good[1].message_id,
    ]
    # the failed message can be accepted later once the factory works
    assert (await accept(store, kit, bad)).leaf_index == 2


# -- inbox: pull and ack --------------------------------------------------------------------------------


async def test_pull_is_ordered_per_recipient_resumes_after_the_cursor_and_honours_the_limit(
    store: Store, kit: Kit
) -> None:
    sent = [
        await accept(store, kit, kit.message(recipients=("NL-DOUANE",) if n % 2 else ("NL-DOUANE", "US-CBP")))
        for n in range(5)
    ]

    page1 = await store.pull("NL-DOUANE", 0, 2)
    page2 = await store.pull("NL-DOUANE", page1[-1].cursor, 2)
    page3 = await store.pull("NL-DOUANE", page2[-1].cursor, 2)
    page4 = await store.pull("NL-DOUANE", page3[-1].cursor, 2)

    items = page1 + page2 + page3
    assert [len(p) for p in (page1, page2, page3, page4)] == [2, 2, 1, 0]
    assert [i.message for i in items] == sent
    assert all(i.recipient == "NL-DOUANE" and not i.acked for i in items)
    cursors = [i.cursor for i in items]
    assert cursors == sorted(set(cursors))
    us = await store.pull("US-CBP", 0, 10)
    assert [i.message for i in us] == [sent[0], sent[2], sent[4]]
    assert await store.pull("PORT-NLRTM", 0, 10) == []


async def test_ack_is_idempotent_and_acked_items_are_not_pulled_again(store: Store, kit: Kit) -> None:
    for _ in range(4):
        await accept(store, kit, kit.message(recipients=("NL-DOUANE",)))
    items = await store.pull("NL-DOUANE", 0, 10)
    size = await store.ledger_size()

    ack = kit.event(1, EventKind.ACKNOWLEDGED)
    assert await store.ack("NL-DOUANE", [items[0].cursor, items[2].cursor], ack) == 2
    assert await store.ack("NL-DOUANE", [items[0].cursor, items[1].cursor, items[1].cursor], ack) == 1
    assert await store.ack("NL-DOUANE", [items[0].cursor], ack) == 0

    assert [i.cursor for i in await store.pull("NL-DOUANE", 0, 10)] == [items[3].cursor]
    # every ack request is audited: one leaf each, holding the event given
    assert await store.ledger_size() == size + 3
    assert [e.data for e in await store.ledger_entries(size, size + 3)] == [ack.canonical()] * 3


async def test_ack_refuses_foreign_and_unknown_cursors_atomically(store: Store, kit: Kit) -> None:
    await accept(store, kit, kit.message(recipients=("NL-DOUANE",)))
    await accept(store, kit, kit.message(recipients=("US-CBP",)))
    [nl] = await store.pull("NL-DOUANE", 0, 10)
    [us] = await store.pull("US-CBP", 0, 10)
    size = await store.ledger_size()
    ack = kit.event(1, EventKind.ACKNOWLEDGED)

    with pytest.raises(NotFound) as foreign:
        await store.ack("NL-DOUANE", [nl.cursor, us.cursor], ack)
    with pytest.raises(NotFound) as unknown:
        await store.ack("NL-DOUANE", [10_000, nl.cursor], ack)

    assert foreign.value.field == "cursors[1]"
    assert unknown.value.field == "cursors[0]"
    assert foreign.value.public == unknown.value.public  # another inbox cannot be probed
    assert await store.ledger_size() == size  # nothing recorded ...
    assert len(await store.pull("NL-DOUANE", 0, 10)) == 1  # ... and nothing acked
    assert len(await store.pull("US-CBP", 0, 10)) == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fan_out=st.lists(st.sets(st.sampled_from("ABC"), min_size=1), min_size=1, max_size=12),
    acks=st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 11)), max_size=12),
    page=st.integers(1, 4),
)
async def test_pull_returns_exactly_the_unacked_items_in_order(
    store: Store, kit: Kit, fan_out: list[set[str]], acks: list[tuple[str, int]], page: int
) -> None:
    # each example uses fresh recipient names, so examples sharing one store do not see each other
    prefix = uuid.uuid4().hex[:8]
    names = {r: f"{prefix}-{r}" for r in "ABC"}
    model: dict[str, list[tuple[int, str]]] = {name: [] for name in names.values()}
    for recipients in fan_out:
        to = tuple(names[r] for r in sorted(recipients))
        message = await accept(store, kit, kit.message(recipients=to))
        for r in message.recipients:
            model[r].append((0, message.message_id))
    for name, sent in list(model.items()):  # learn the cursors the store assigned
        items = await store.pull(name, 0, 100)
        assert [i.message.message_id for i in items] == [mid for _, mid in sent]
        model[name] = [(i.cursor, i.message.message_id) for i in items]
    for who, n in acks:
        name = names[who]
        if n < len(model[name]):
            cursor = model[name][n][0]
            await store.ack(name, [cursor], kit.event(n, EventKind.ACKNOWLEDGED))
            model[name] = [(c, m) for c, m in model[name] if c != cursor]

    for name, expected in model.items():
        seen: list[tuple[int, str]] = []
        after = 0
        while batch := await store.pull(name, after, page):
            assert len(batch) <= page
            seen += [(i.cursor, i.message.message_id) for i in batch]
            after = batch[-1].cursor
        assert seen == expected


# -- ledger ------------------------------------------------------------------------------------------------


async def test_ledger_entries_returns_the_half_open_range(store: Store, kit: Kit) -> None:
    events = [kit.event(n) for n in range(10)]
    assert await store.ledger_size() == 0
    assert await store.ledger_entries(0, 5) == []
    for n, event in enumerate(events):
        assert await store.record(event) == n

    middle = await store.ledger_entries(3, 7)
    assert [e.index for e in middle] == [3, 4, 5, 6]
    assert [e.data for e in middle] == [e.canonical() for e in events[3:7]]
    assert [e.index for e in await store.ledger_entries(8, 20)] == [8, 9]
    assert await store.ledger_entries(10, 12) == []
    assert await store.ledger_entries(4, 4) == []


async def test_ledger_entries_bounds_are_checked(store: Store) -> None:
    with pytest.raises(LimitExceeded):
        await store.ledger_entries(0, 1_000_000)
    with pytest.raises(BadRequest):
        await store.ledger_entries(5, 4)
    with pytest.raises(BadRequest):
        await store.ledger_entries(-1, 4)


# -- replay cache ------------------------------------------------------------------------------------------


async def test_claim_once_is_true_only_the_first_time(store: Store) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await store.claim_once("jti:abc", later) is True
    assert await store.claim_once("jti:abc", later) is False
    assert await store.claim_once("jti:abd", later) is True
    results = await asyncio.gather(*(store.claim_once("jti:race", later) for _ in range(20)))
    assert results.count(True) == 1


async def test_an_expired_claim_can_be_claimed_again(store: Store) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert await store.claim_once("nonce:old", past) is True
    assert await store.claim_once("nonce:old", datetime.now(UTC) + timedelta(hours=1)) is True
    assert await store.claim_once("nonce:old", datetime.now(UTC) + timedelta(hours=1)) is False


async def test_a_released_claim_can_be_claimed_again(store: Store) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await store.claim_once("lease:a", later) is True
    await store.release_claim("lease:a")
    await store.release_claim("lease:never-claimed")  # a no-op
    assert await store.claim_once("lease:a", later) is True
    assert await store.claim_once("lease:a", later) is False


# -- durability --------------------------------------------------------------------------------------------


async def test_everything_survives_close_and_reopen(backend: Backend, kit: Kit) -> None:
    first = await backend.open()
    kept = await accept(first, kit, kit.message(recipients=("NL-DOUANE",)))
    acked = await accept(first, kit, kit.message(recipients=("NL-DOUANE",)))
    [_, to_ack] = await first.pull("NL-DOUANE", 0, 10)
    await first.ack("NL-DOUANE", [to_ack.cursor], kit.event(1, EventKind.ACKNOWLEDGED))
    await first.record(kit.event(2))
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await first.claim_once("jti:durable", later)
    entries = await first.ledger_entries(0, 10)
    await first.close()
    await first.close()  # closing twice is harmless

    second = await backend.open()
    try:
        assert await second.find_message(kept.sender, kept.message_id) == kept
        assert await second.find_message(acked.sender, acked.message_id) == acked
        assert [i.message for i in await second.pull("NL-DOUANE", 0, 10)] == [kept]
        assert await second.ledger_size() == 4
        assert await second.ledger_entries(0, 10) == entries
        assert await second.claim_once("jti:durable", later) is False
        # numbering continues where it stopped
        assert await second.record(kit.event(3)) == 4
        new = await accept(second, kit, kit.message(recipients=("NL-DOUANE",)))
        [_, item] = await second.pull("NL-DOUANE", 0, 10)
        assert item.message == new
        assert item.cursor > to_ack.cursor
    finally:
        await second.close()


async def test_received_at_round_trips_to_the_microsecond(store: Store, kit: Kit) -> None:
    at = T0.replace(microsecond=1)
    stored = await accept(store, kit, kit.message(at=at))
    found = await store.find_message(stored.sender, stored.message_id)
    assert found is not None
    assert found.received_at == at
    assert found.received_at.utcoffset() == timedelta(0)


def _fields(message: StoredMessage) -> dict[str, object]:
    return {name: getattr(message, name) for name in StoredMessage.__slots__}


async def test_the_write_probe_leaves_nothing_the_gateway_reads_and_fails_closed_once_closed(
    store: Store, kit: Kit
) -> None:
    message = kit.message()
    await accept(store, kit, message)
    for _ in range(3):
        await store.probe_write()
    assert await store.ledger_size() == 1  # no ledger leaf, no inbox item, no message
    assert await store.inbox_depths() == {message.recipients[0]: 1}
    assert await store.claim_once("jti:CN-GACC:probe", T0 + timedelta(minutes=5))  # no caller's replay key
    await store.close()
    with pytest.raises(Unavailable):
        await store.probe_write()


async def test_inbox_owners_names_each_known_cursors_recipient_and_message(store: Store, kit: Kit) -> None:
    first = await accept(store, kit, kit.message(recipients=("NL-DOUANE", "US-CBP")))
    second = await accept(store, kit, kit.message(recipients=("US-CBP",)))
    [nl] = await store.pull("NL-DOUANE", 0, 10)
    us = await store.pull("US-CBP", 0, 10)
    owners = await store.inbox_owners([nl.cursor, us[0].cursor, us[1].cursor, 10_000, 0, -3])
    assert owners == {
        nl.cursor: ("NL-DOUANE", first.sender, first.message_id),
        us[0].cursor: ("US-CBP", first.sender, first.message_id),
        us[1].cursor: ("US-CBP", second.sender, second.message_id),
    }
    await store.ack("US-CBP", [us[0].cursor], kit.event(1, EventKind.ACKNOWLEDGED))
    assert (await store.inbox_owners([us[0].cursor]))[us[0].cursor][0] == "US-CBP"  # acked items keep their owner
    assert await store.inbox_owners([]) == {}
