"""The RelayStore contract (forwards and recalls, ports.RelayStore), run against every backend.

A backend that does not implement RelayStore yet is skipped here, and the pipeline refuses forward and recall on
it with UNAVAILABLE (tests/integration/test_programs_exchange.py); when it does, these same assertions apply.
"""

from __future__ import annotations

import pytest

from gateway.core.errors import DuplicateConflict, NotFound
from gateway.interfaces.protocols import RelayStore, Store, StoredMessage
from tests.contract.conftest import Kit


def _relay(store: Store) -> RelayStore:
    if not isinstance(store, RelayStore):
        pytest.skip(f"{type(store).__name__} does not implement ports.RelayStore yet")
    return store


async def _accept(store: RelayStore, kit: Kit, message: StoredMessage) -> StoredMessage:
    return await store.accept(message, kit.accepted(message), kit.make_receipt)


async def test_a_forward_is_its_own_message_linked_to_the_original(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    original = await _accept(relay, kit, kit.message("PORT-NLRTM", ("US-CBP",)))
    forward = kit.message("US-CBP", ("NL-DOUANE",), payload=original.payload)
    stored = await relay.accept_forward(
        forward, (original.sender, original.message_id), kit.accepted(forward), kit.make_receipt
    )
    assert stored.leaf_index == original.leaf_index + 1
    assert kit.receipt_valid(stored.receipt, stored.leaf_index, stored.received_at)
    assert await relay.forward_of(forward.sender, forward.message_id) == (original.sender, original.message_id)
    assert await relay.forward_of(original.sender, original.message_id) is None
    keys = [(forward.sender, forward.message_id), (original.sender, original.message_id), ("X", "unknown")]
    assert await relay.forwards_of(keys) == {keys[0]: (original.sender, original.message_id)}
    assert await relay.forwards_of([]) == {}
    assert await relay.find_message(original.sender, original.message_id) == original  # evidence unchanged
    [item] = await relay.pull("NL-DOUANE", 0, 10)
    assert item.message.jws == forward.jws and item.message.payload == original.payload
    copies = await relay.copies(original.sender, original.message_id)
    assert [(c.sender, c.message_id) for c in copies] == [
        (original.sender, original.message_id),
        (forward.sender, forward.message_id),
    ]


async def test_a_forward_of_a_forward_links_to_the_root(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    original = await _accept(relay, kit, kit.message("PORT-NLRTM", ("US-CBP",)))
    first = kit.message("US-CBP", ("NL-DOUANE",))
    await relay.accept_forward(first, (original.sender, original.message_id), kit.accepted(first), kit.make_receipt)
    second = kit.message("NL-DOUANE", ("CN-GACC",))
    await relay.accept_forward(second, (first.sender, first.message_id), kit.accepted(second), kit.make_receipt)
    assert await relay.forward_of(second.sender, second.message_id) == (original.sender, original.message_id)
    assert len(await relay.copies(original.sender, original.message_id)) == 3


async def test_forwarding_an_unknown_message_is_not_found_and_leaves_no_trace(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    forward = kit.message("US-CBP", ("NL-DOUANE",))
    with pytest.raises(NotFound):
        await relay.accept_forward(forward, ("PORT-NLRTM", "nope"), kit.accepted(forward), kit.make_receipt)
    assert await relay.ledger_size() == 0
    assert await relay.find_message(forward.sender, forward.message_id) is None
    assert await relay.copies("PORT-NLRTM", "nope") == []


async def test_a_recall_withdraws_every_copy_and_reaches_every_holder(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    original = await _accept(relay, kit, kit.message("PORT-NLRTM", ("US-CBP", "NL-DOUANE")))
    forward = kit.message("US-CBP", ("CN-GACC",))
    await relay.accept_forward(forward, (original.sender, original.message_id), kit.accepted(forward), kit.make_receipt)
    [douane_item] = await relay.pull("NL-DOUANE", 0, 10)
    await relay.ack("NL-DOUANE", [douane_item.cursor], kit.event(1))  # already read: still gets the recall
    recall = kit.message("PORT-NLRTM", ("US-CBP",))
    size = await relay.ledger_size()
    done = await relay.recall(recall, (original.sender, original.message_id), kit.accepted(recall), kit.make_receipt)
    stored, holders = done.message, done.holders
    assert holders == ("CN-GACC", "NL-DOUANE", "US-CBP")
    assert done.withdrawn == ((original.sender, original.message_id), (forward.sender, forward.message_id))
    assert stored.leaf_index == size  # one leaf, atomic with the withdrawals
    for member in holders:
        items = await relay.pull(member, 0, 10)
        assert [(i.message.sender, i.message.message_id) for i in items] == [(recall.sender, recall.message_id)]
    assert await relay.pull("PORT-NLRTM", 0, 10) == []
    # the evidence itself is kept (status, audit); only the deliveries are withdrawn
    assert await relay.find_message(original.sender, original.message_id) == original


async def test_a_whole_tree_recall_of_a_forward_withdraws_the_whole_family(store: Store, kit: Kit) -> None:
    """A recall permitted by the home administration's recall policy (``gateway.core.forwarding``): the recall
    (``home-customs-recalls``) reaches the root."""
    relay = _relay(store)
    original = await _accept(relay, kit, kit.message("PORT-NLRTM", ("US-CBP",)))
    forward = kit.message("US-CBP", ("NL-DOUANE",))
    await relay.accept_forward(forward, (original.sender, original.message_id), kit.accepted(forward), kit.make_receipt)
    recall = kit.message("CN-GACC", ("PORT-NLRTM",))
    done = await relay.recall(
        recall, (forward.sender, forward.message_id), kit.accepted(recall), kit.make_receipt, whole_tree=True
    )
    assert done.holders == ("NL-DOUANE", "PORT-NLRTM", "US-CBP")
    for member in ("NL-DOUANE", "US-CBP"):
        [item] = await relay.pull(member, 0, 10)
        assert item.message.message_id == recall.message_id


async def test_recall_of_an_unknown_message_and_duplicate_recalls(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    recall = kit.message("PORT-NLRTM", ("US-CBP",))
    with pytest.raises(NotFound):
        await relay.recall(recall, ("PORT-NLRTM", "nope"), kit.accepted(recall), kit.make_receipt)
    assert await relay.ledger_size() == 0
    original = await _accept(relay, kit, kit.message("PORT-NLRTM", ("US-CBP",)))
    await relay.recall(recall, (original.sender, original.message_id), kit.accepted(recall), kit.make_receipt)
    with pytest.raises(DuplicateConflict):
        await relay.recall(recall, (original.sender, original.message_id), kit.accepted(recall), kit.make_receipt)


async def _chain(relay: RelayStore, kit: Kit) -> list[StoredMessage]:
    """A sends to B, B forwards to C, C forwards to D (A..D: PORT-NLRTM, US-CBP, NL-DOUANE, DE-ZOLL)."""
    root = await _accept(relay, kit, kit.message("PORT-NLRTM", ("US-CBP",)))
    chain = [root]
    for sender, to in (("US-CBP", "NL-DOUANE"), ("NL-DOUANE", "DE-ZOLL")):
        forward = kit.message(sender, (to,), payload=root.payload)
        parent = chain[-1]
        chain.append(
            await relay.accept_forward(
                forward, (parent.sender, parent.message_id), kit.accepted(forward), kit.make_receipt
            )
        )
    return chain


async def _pending(relay: RelayStore, member: str) -> list[tuple[str, str]]:
    return [(i.message.sender, i.message.message_id) for i in await relay.pull(member, 0, 10)]


async def test_a_forwarders_recall_withdraws_only_what_is_downstream_of_its_forward(store: Store, kit: Kit) -> None:
    """The sender of a copy withdraws it and its downstream (``gateway.core.forwarding``): B recalling its own forward
    withdraws C's and D's copies, never A's root (B's own copy from A stays, and so does every other holder of the
    root)."""
    relay = _relay(store)
    root, by_b, by_c = await _chain(relay, kit)
    other = kit.message("US-CBP", ("CN-GACC",), payload=root.payload)  # a second forward of B's, not recalled
    await relay.accept_forward(other, (root.sender, root.message_id), kit.accepted(other), kit.make_receipt)
    recall = kit.message("US-CBP", ("NL-DOUANE",))
    done = await relay.recall(recall, (by_b.sender, by_b.message_id), kit.accepted(recall), kit.make_receipt)
    assert done.withdrawn == ((by_b.sender, by_b.message_id), (by_c.sender, by_c.message_id))
    assert done.holders == ("DE-ZOLL", "NL-DOUANE")
    assert await _pending(relay, "US-CBP") == [(root.sender, root.message_id)]  # B's copy from A stays
    assert await _pending(relay, "CN-GACC") == [(other.sender, other.message_id)]
    for member in ("NL-DOUANE", "DE-ZOLL"):
        assert await _pending(relay, member) == [(recall.sender, recall.message_id)]


async def test_a_mid_chain_recall_leaves_the_upstream_copies(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    root, by_b, by_c = await _chain(relay, kit)
    recall = kit.message("NL-DOUANE", ("DE-ZOLL",))
    done = await relay.recall(recall, (by_c.sender, by_c.message_id), kit.accepted(recall), kit.make_receipt)
    assert done.withdrawn == ((by_c.sender, by_c.message_id),)
    assert await _pending(relay, "NL-DOUANE") == [(by_b.sender, by_b.message_id)]
    assert await _pending(relay, "US-CBP") == [(root.sender, root.message_id)]
    assert await _pending(relay, "DE-ZOLL") == [(recall.sender, recall.message_id)]


async def test_a_recall_naming_what_the_recaller_did_not_send_reaches_only_its_own_forwards(
    store: Store, kit: Kit
) -> None:
    """A forwarder withdraws only its own copies (``gateway.core.forwarding``), whatever the policy lets through: naming
    the root does not make a forwarder its originator; only the copies it sent (and what is downstream of them) are
    withdrawn."""
    relay = _relay(store)
    root, by_b, by_c = await _chain(relay, kit)
    recall = kit.message("NL-DOUANE", ("DE-ZOLL",))
    done = await relay.recall(recall, (root.sender, root.message_id), kit.accepted(recall), kit.make_receipt)
    assert done.withdrawn == ((by_c.sender, by_c.message_id),)
    assert await _pending(relay, "US-CBP") == [(root.sender, root.message_id)]
    assert await _pending(relay, "NL-DOUANE") == [(by_b.sender, by_b.message_id)]
    nothing = kit.message("CN-GACC", ("US-CBP",))  # sent nothing in this tree: withdraws nothing
    done = await relay.recall(nothing, (by_b.sender, by_b.message_id), kit.accepted(nothing), kit.make_receipt)
    assert done.withdrawn == ()
    assert await _pending(relay, "NL-DOUANE") == [(by_b.sender, by_b.message_id)]


async def test_the_originators_recall_withdraws_the_whole_chain(store: Store, kit: Kit) -> None:
    relay = _relay(store)
    root, by_b, by_c = await _chain(relay, kit)
    recall = kit.message("PORT-NLRTM", ("US-CBP",))
    done = await relay.recall(recall, (root.sender, root.message_id), kit.accepted(recall), kit.make_receipt)
    assert done.withdrawn == tuple((m.sender, m.message_id) for m in (root, by_b, by_c))
    assert done.holders == ("DE-ZOLL", "NL-DOUANE", "US-CBP")
    for member in done.holders:
        assert await _pending(relay, member) == [(recall.sender, recall.message_id)]
