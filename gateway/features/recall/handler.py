"""The recall's part in the pipeline (``gateway.exchange.handlers``): an ``intel.recall.v1`` names the message it
withdraws; Cedar decides who may recall it, and the recall is stored by withdrawing what it reaches.

Rule 1: the recalled message's sender is the Cedar context's ``original_sender`` (policies/programs.cedar:
        ``originator-recalls``), and the ``accepted`` event names the recalled message (``recalls``).
Rule 2: the recall owns its write (``gateway.features.recall.recall``: ``recall_everywhere``); it reaches the whole
        tree only when the permit came from the home administration's recall policy
        (``gateway.core.forwarding``: ``recall_reaches_root``), and every holder of a withdrawn copy is woken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.core.forwarding import RECALL_TYPE, recall_reaches_root
from gateway.core.payloads import ValidatedPayload
from gateway.exchange.handlers import Handler, Persisted, Persistence, PolicyValue, Submission, Write
from gateway.features.recall.recall import recall_everywhere, recall_record
from gateway.interfaces.protocols import Store


class RecallHandler(Handler[None]):
    name = "recall"
    types = frozenset({RECALL_TYPE})

    def __init__(self, store: Store) -> None:
        self._store = store

    def begin(self, submission: Submission) -> None:
        return None

    async def policy_context(
        self, submission: Submission, state: None, payload: ValidatedPayload
    ) -> Mapping[str, PolicyValue]:
        return {"original_sender": payload.recalled[0]} if payload.recalled else {}  # Rule 1

    def ledger_fields(self, submission: Submission, state: None, payload: ValidatedPayload) -> Mapping[str, Any]:
        return recall_record(payload.recalled) if payload.recalled else {}  # Rule 1

    def persistence(self, submission: Submission, state: None, payload: ValidatedPayload) -> Persistence | None:
        recalled = payload.recalled
        if recalled is None:
            return None

        async def persist(write: Write) -> Persisted:  # Rule 2
            whole_tree = recall_reaches_root(write.decision.policy_ids)
            stored, holders = await recall_everywhere(
                self._store,
                write.message,
                recalled,
                write.event,
                write.receipt,
                whole_tree=whole_tree,
                relays=write.relays,
            )
            return Persisted(stored, woken=holders)

        return persist
