"""Translated payload media (UN/EDIFACT) in the pipeline (``gateway.exchange.handlers``): translate before
validation, and answer the sender (a CUSRES for a CUSCAR) whatever the outcome.

Rule 1: the handler owns the media it has a translator for (``gateway.features.edifact.translation``), any type.
Rule 2: a filing that reached step 4 of the pipeline gets exactly one answer: accepted once the filing is durable
        (the answer the receipt's ``answer`` claim named), rejected with the refusal's code otherwise. The
        answer goes out through ``gateway.exchange.outbox`` (deterministic id: the same filing bytes are
        answered once).
Rule 3: a failure to store the answer never changes the filing's own outcome; it is logged for the operator.
Rule 4: a forward of stored evidence is translated (to validate it) but never answered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from gateway.core.errors import GatewayError
from gateway.core.payloads import ValidatedPayload
from gateway.exchange.handlers import Accepted, Handler, Submission
from gateway.exchange.outbox import GatewayOutbox
from gateway.exchange.state import GatewayState
from gateway.features.edifact.translation import (
    Answer,
    PayloadTranslator,
    Translation,
    Translators,
    answer_claim,
    answer_id,
    translate_and_validate,
)
from gateway.interfaces.protocols import Clock, Store

log = structlog.get_logger("gateway.exchange")


@dataclass(slots=True)
class Filing:
    """One translated submission in flight: the typed state the pipeline hands back to every hook."""

    submission: Submission
    translator: PayloadTranslator
    answer_id: str
    translation: Translation | None = None
    accepted: Answer | None = None  # the accepted answer, once the receipt's claim named it


class EdifactHandler(Handler[Filing]):
    name = "edifact"

    def __init__(
        self, translators: Translators, *, outbox: GatewayOutbox, store: Store, state: GatewayState, clock: Clock
    ) -> None:
        self._translators = dict(translators)
        self.media = frozenset(self._translators)  # Rule 1
        self._outbox = outbox
        self._store = store
        self._state = state
        self._clock = clock

    def begin(self, submission: Submission) -> Filing:
        header = submission.envelope.header
        translator = self._translators[header.payload.media]
        return Filing(submission, translator, answer_id(header.sender, header.id, submission.digest))

    async def translate(self, submission: Submission, state: Filing) -> ValidatedPayload | None:
        envelope = submission.envelope
        state.translation, validated = await translate_and_validate(state.translator, envelope.header, envelope.payload)
        return validated

    def receipt_claims(self, submission: Submission, state: Filing) -> Mapping[str, Mapping[str, str]]:
        return {"answer": answer_claim(self._answer(state, None), state.answer_id)}

    async def after_commit(self, accepted: Accepted, state: Filing | None) -> bool:
        """Rule 2: the accepted answer (not replayed: a replay has no filing state, Rule 4 of the handlers)."""
        if state is None or accepted.replayed:
            return False
        return await self._store_answer(state, None)

    async def refused(self, submission: Submission, state: Filing, error: GatewayError) -> None:
        await self._store_answer(state, error)

    def _answer(self, filing: Filing, error: GatewayError | None) -> Answer:
        if error is None and filing.accepted is not None:
            return filing.accepted  # the one the receipt's claim named
        answer = filing.translator.answer(
            filing.submission.envelope.payload,
            translation=filing.translation,
            error=error,
            responder=self._state.member_id,
            recipient=filing.submission.envelope.header.sender,
            answer_id=filing.answer_id,
            now=self._clock.now(),
        )
        if error is None:
            filing.accepted = answer
        return answer

    async def _store_answer(self, filing: Filing, error: GatewayError | None) -> bool:
        """Sign the answer as the home administration (gateway key), ledger it, put it in the sender's inbox."""
        answer = self._answer(filing, error)
        header = filing.submission.envelope.header
        try:
            if await self._store.find_message(self._state.member_id, filing.answer_id) is not None:
                return False  # the same filing bytes were answered before
            stored = await self._outbox.emit(
                answer.type,
                (header.sender,),
                answer.payload,
                header.id,
                message_id=filing.answer_id,
                schema=answer.schema,
                media=answer.media,
                tlp=header.tlp,
                fields={"answer_to": header.id, "status": answer.status, "reference": answer.reference},
            )
        except GatewayError as exc:  # Rule 3
            log.error("answer not stored", answer_id=filing.answer_id, code=exc.code)
            return False
        return stored is not None
