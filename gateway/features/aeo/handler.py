"""AEO mutual recognition's part in the pipeline (``gateway.exchange.handlers``), over
``gateway.features.aeo.recognition``.

Rule 1: a manifest or ENS is enriched before Cedar decides: its AEO lanes are the Cedar context's ``aeo_lanes``
        (policies/aeo.cedar), its results go into the ``accepted`` event (``aeo``) and travel with the delivered
        message.
Rule 2: an ``aeo.status.v1`` is checked before the accept (the sender must be a customs administration), its
        updates are listed in the ``accepted`` event (``aeo_status``) and applied once it is durable.
Rule 3: a replay (the recovery loop, ``gateway.exchange.recovery``) applies an ``aeo.status.v1`` the AEO store has
        not marked applied, reading its updates again from the stored message; the mark of the loop is kept in
        the AEO store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.aeo import Authorisation
from gateway.core.payloads import ValidatedPayload
from gateway.exchange.handlers import Accepted, Handler, LedgerMark, PolicyValue, Submission
from gateway.exchange.recovery import Recovery
from gateway.features.aeo.recognition import ENRICHED_TYPES, STATUS_TYPE, Enrichment, Recognition, update_records

DELIVERED = ("aeo",)


@dataclass(slots=True)
class AeoWork:
    """One submission's AEO results: the enrichment of a manifest / ENS, the updates of a status message."""

    enrichment: Enrichment | None = None
    updates: tuple[Authorisation, ...] = ()


class _Mark:
    def __init__(self, recognition: Recognition) -> None:
        self._recognition = recognition

    async def scanned(self) -> int:
        return self._recognition.ledger_scanned()

    async def set_scanned(self, size: int) -> None:
        self._recognition.set_ledger_scanned(size)


class AeoHandler(Handler[AeoWork]):
    name = "aeo"
    types = ENRICHED_TYPES | {STATUS_TYPE}

    def __init__(self, recognition: Recognition) -> None:
        self._recognition = recognition
        self._mark = _Mark(recognition)

    def follow(self, recovery: Recovery) -> None:
        """Several gateway processes share the ledger: each refresh replays the status updates they accepted."""

        async def follower() -> int:
            return (await recovery.run(only=(self.name,)))[self.name]

        self._recognition.follow(follower)

    def begin(self, submission: Submission) -> AeoWork:
        return AeoWork()

    async def policy_context(
        self, submission: Submission, state: AeoWork, payload: ValidatedPayload
    ) -> Mapping[str, PolicyValue]:
        """Rule 1."""
        await self._recognition.refresh()
        state.enrichment = enrichment = self._recognition.enrich(payload, submission.received_at)
        lanes = enrichment.lane_names() if enrichment is not None else ()
        return {"aeo_lanes": tuple(lanes)} if lanes else {}

    def check(self, submission: Submission, state: AeoWork, payload: ValidatedPayload) -> None:
        """Rule 2."""
        header = submission.envelope.header
        if header.type == STATUS_TYPE:
            state.updates = self._recognition.status_updates(
                submission.caller.member,
                header.to,
                header.payload.media,
                submission.envelope.payload,
                f"message:{header.sender}/{header.id}",
            )

    def ledger_fields(self, submission: Submission, state: AeoWork, payload: ValidatedPayload) -> Mapping[str, Any]:
        fields: dict[str, Any] = {}
        if state.enrichment is not None:
            fields["aeo"] = state.enrichment.record()
        if state.updates:
            fields["aeo_status"] = update_records(state.updates)
        return fields

    async def after_commit(self, accepted: Accepted, state: AeoWork | None) -> bool:
        """Rules 2 and 3: the next check sees the updates."""
        message = accepted.message
        if message.type != STATUS_TYPE:
            return False
        key = (message.sender, message.message_id)
        if state is not None and not accepted.replayed:
            updates = state.updates
        else:
            if self._recognition.is_applied(*key):
                return False
            source = f"message:{key[0]}/{key[1]}"
            updates = self._recognition.status_updates(
                accepted.sender, message.recipients, accepted.media, message.payload, source
            )
        await self._recognition.apply(updates, key)
        return True

    def delivered_fields(self, message_type: str) -> tuple[str, ...]:
        return DELIVERED if message_type in ENRICHED_TYPES else ()

    def ledger_mark(self) -> LedgerMark | None:
        return self._mark

    def replays(self, event: Mapping[str, Any]) -> bool:
        return bool(event.get("aeo_status"))
