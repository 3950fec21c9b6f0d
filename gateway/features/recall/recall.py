"""Recall bookkeeping for the pipeline: withdraw the copies a recall reaches, audit each step.

Rule 1: only a store that implements :class:`gateway.interfaces.protocols.RelayStore` serves forwards and recalls;
        on any other backend both are refused with ``Unavailable`` (fail closed) rather than half-done
        (``gateway.interfaces.protocols.relay_store``).
Rule 2: the recall is accepted atomically with the withdrawal of every inbox entry of the copies it reaches
        (the store's ``recall``, ``gateway.core.forwarding.recalled_copies``); then every withdrawn copy gets its own
        ``recalled`` ledger event naming the recall, the copy and the members it was withdrawn from.
Rule 3: who may recall is Cedar's decision (``originator-recalls``, ``home-customs-recalls``): the recall's
        payload names the original's sender, and a (sender, id) pair only exists if that sender sent it. What
        the recall reaches is Rule 4 of ``gateway.core.forwarding``: the named message and what is downstream of
        it (a forwarder recalling its own forward never reaches the root); the whole tree only when the permit
        came from ``home-customs-recalls``.
Rule 4: every recall logs one line (``recall``): the recall, what it recalls, how many copies it withdrew.
Rule 5: a recall crosses gateways like any message (issue 19): its recipients served by a peer gateway get that
        peer's relay entry in the same atomic step (``RelayStore`` Rule 3), and the peer's own recall path withdraws
        the copies it holds (``originator-recalls`` there). A copy relayed to a peer counts no remote member as a
        holder here; a recall reaches the peer's members only when it is addressed to them. The peer ledgers its
        own ``recalled`` events for the copies it withdraws.
"""

from __future__ import annotations

import structlog

from gateway.core.audit import AuditEvent, EventKind
from gateway.interfaces.protocols import ReceiptFactory, Relays, Store, StoredMessage, relay_store

log = structlog.get_logger("gateway.features.recall.recall")


def recall_record(recalled: tuple[str, str]) -> dict[str, object]:
    """The ``recalls`` field of a recall's ``accepted`` ledger event."""
    return {"recalls": {"sender": recalled[0], "message_id": recalled[1]}}


async def recall_everywhere(
    store: Store,
    message: StoredMessage,
    original: tuple[str, str],
    event: AuditEvent,
    make_receipt: ReceiptFactory,
    *,
    whole_tree: bool,
    relays: Relays | None = None,
) -> tuple[StoredMessage, tuple[str, ...]]:
    """Rule 2: accept the recall ``message`` of ``original``; returns the stored recall and every local holder.
    Rule 5: ``relays``, the recall's remote recipients by peer gateway."""
    relay = relay_store(store)
    done = await relay.recall(message, original, event, make_receipt, whole_tree=whole_tree, relays=relays or None)
    stored, withdrawn = done.message, set(done.withdrawn)
    root = await relay.forward_of(*original) or original
    for copy in await relay.copies(*root):
        if (copy.sender, copy.message_id) not in withdrawn:
            continue
        await relay.record(
            AuditEvent(
                EventKind.RECALLED,
                message.received_at,
                {
                    "recall": {"sender": message.sender, "message_id": message.message_id},
                    "sender": copy.sender,
                    "message_id": copy.message_id,
                    "withdrawn_from": sorted(copy.recipients),
                    "recall_leaf": stored.leaf_index,
                },
            )
        )
    log.info(
        "recall",
        sender=message.sender,
        message_id=message.message_id,
        recalls=f"{original[0]}/{original[1]}",
        whole_tree=whole_tree,
        withdrawn=len(withdrawn),
        holders=list(done.holders),
        ledger_index=stored.leaf_index,
    )
    return stored, done.holders
