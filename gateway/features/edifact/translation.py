"""Payload translators: the seam through which the pipeline accepts a foreign payload format (UN/EDIFACT).

A translator turns the signed payload bytes (the evidence, kept and forwarded unchanged) into the JSON payload
that ``validate_payload`` checks, and writes the answer the sender's format expects (a CUSRES for a CUSCAR).
Implementations live in ``adapters/`` and are injected by ``gateway.app.main``; the pipeline never imports them.

Rule 1: ``translate`` raises a typed ``GatewayError`` whose ``field`` names the place in the foreign format
        (``segment[12].UNT``); it never returns a half translation.
Rule 2: ``answer`` never raises for a bad input: it answers a broken interchange too (correlated by whatever
        reference could be read), because the sender needs to learn why it was refused.
Rule 3: the answer is a message from the home administration to the sender, signed by the gateway's own key,
        with a deterministic id (same filing bytes, same answer), stored and ledgered like any message, and
        pulled from the sender's inbox; the filing's receipt names it (``answer`` claim).
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.envelope import VerifiedEnvelope, payload_ref, sign_envelope
from gateway.core.errors import DuplicateConflict, GatewayError, UnsupportedMediaType
from gateway.core.model import Header
from gateway.core.payloads import MESSAGE_TYPES, ValidatedPayload, validate_payload
from gateway.core.receipt import make_receipt
from gateway.exchange.stages import Stage
from gateway.exchange.state import GatewayState
from gateway.interfaces.protocols import Clock, Store, StoredMessage

log = structlog.get_logger("gateway.exchange")

# Namespace of the deterministic answer ids (uuid5 over sender, message id and evidence digest).
ANSWER_NAMESPACE = uuid.UUID("5d0c4f1e-9a43-4a55-9d0e-2f3c0f6c7a11")


# A foreign payload this large is translated in a worker thread so the event loop keeps serving (pydifact
# tokenizes in pure Python, ~1 ms per KiB); smaller ones are cheaper to translate inline than to hand over.
INLINE_TRANSLATION_BYTES = 16 * 1024


@dataclass(frozen=True, slots=True)
class Translation:
    payload: bytes  # the JSON payload ``validate_payload`` checks
    media: str  # its media type (application/json)
    reference: str  # the correlation key of the foreign format (EDIFACT: the UNB interchange control reference)
    sender: str = ""  # the sender as the foreign format names it (EDIFACT: UNB sender), the answer's addressee
    document: str = ""  # the filing's own document number (EDIFACT: BGM 1004)


@dataclass(frozen=True, slots=True)
class Answer:
    type: str  # the header type of the answer message, e.g. response.cusres.v1
    media: str  # e.g. application/edifact
    schema: str  # e.g. UN/EDIFACT:CUSRES:D:96B
    payload: bytes
    reference: str  # the foreign reference it answers (may be '' when none could be read)
    status: str  # "accepted" | "rejected"


class PayloadTranslator(Protocol):
    def translate(self, data: bytes) -> Translation: ...

    def answer(
        self,
        data: bytes,
        *,
        translation: Translation | None,
        error: GatewayError | None,
        responder: str,
        recipient: str,
        answer_id: str,
        now: datetime,
    ) -> Answer:
        """The answer to the filing ``data`` (``translation`` when it got that far): accepted when ``error`` is
        None, else rejected with its code."""
        ...


Translators = Mapping[str, PayloadTranslator]


def answer_id(sender: str, message_id: str, evidence_digest: str) -> str:
    return str(uuid.uuid5(ANSWER_NAMESPACE, f"{sender}/{message_id}/{evidence_digest}"))


def answer_claim(answer: Answer, message_id: str) -> dict[str, str]:
    """The ``answer`` claim of the filing's receipt: the same outcome the answer message carries."""
    return {"status": answer.status, "type": answer.type, "message_id": message_id, "reference": answer.reference}


def _validate_as_sent(header: Header, payload: bytes) -> ValidatedPayload:
    return validate_payload(header.type, header.payload.media, payload, schema=header.payload.schema)


class Answers:
    """The pipeline's translate-validate step for translated media, and the answers it owes the sender.

    ``validate`` marks the exchange in ``context["answer"]`` (the answer's id); the pipeline then asks for the
    receipt ``claim``, calls ``accepted`` after the filing is durable or ``refused`` when any later step refused
    it, and ``forget`` when the submission ends.
    """

    def __init__(
        self,
        translators: Translators,
        *,
        store: Store,
        state: GatewayState,
        clock: Clock,
        digest: Callable[[str, bytes], str],
    ) -> None:
        self._translators = translators
        self._store = store
        self._state = state
        self._clock = clock
        self._digest = digest
        self._pending: dict[str, _Pending] = {}
        # Untranslated payloads (JSON, protobuf) are validated as a stage (gateway/exchange/stages.py)
        self._validation = Stage(_validate_as_sent)
        self.notify: Callable[[str], None] = lambda member_id: None  # set by the pipeline: wake long-polls

    async def validate(self, verified: VerifiedEnvelope, digest: str, context: dict[str, object]) -> ValidatedPayload:
        """The validate step of a submission; a translated one is marked for its answer (``context["answer"]``)."""
        header = verified.header
        translator = self._translators.get(header.payload.media)
        if translator is None:
            return await self._validation.run(header, verified.payload)
        reply_id = answer_id(header.sender, header.id, digest)
        pending = self._pending[reply_id] = _Pending(translator, verified)
        context["answer"] = reply_id
        pending.translation, validated = await _translate_and_validate(translator, header, verified.payload)
        return validated

    async def validate_unanswered(self, header: Header, payload: bytes) -> ValidatedPayload:
        """The validate step for a payload that gets no answer (a forward of stored evidence)."""
        translator = self._translators.get(header.payload.media)
        if translator is None:
            return await self._validation.run(header, payload)
        return (await _translate_and_validate(translator, header, payload))[1]

    def claim(self, reply_id: object) -> dict[str, str] | None:
        answer = self._answer(reply_id, None)
        return answer_claim(answer, str(reply_id)) if answer is not None else None

    async def accepted(self, reply_id: object) -> None:
        await self._store_answer(reply_id, None)

    async def refused(self, reply_id: object, error: GatewayError) -> None:
        await self._store_answer(reply_id, error)

    def forget(self, reply_id: object) -> None:
        if isinstance(reply_id, str):
            self._pending.pop(reply_id, None)

    def _answer(self, reply_id: object, error: GatewayError | None) -> Answer | None:
        pending = self._pending.get(reply_id) if isinstance(reply_id, str) else None
        if pending is None:
            return None
        if error is None and pending.accepted is not None:
            return pending.accepted  # the one the receipt's claim named
        answer = pending.translator.answer(
            pending.verified.payload,
            translation=pending.translation,
            error=error,
            responder=self._state.member_id,
            recipient=pending.verified.header.sender,
            answer_id=str(reply_id),
            now=self._clock.now(),
        )
        if error is None:
            pending.accepted = answer
        return answer

    async def _store_answer(self, reply_id: object, error: GatewayError | None) -> None:
        """Sign the answer as the home administration (gateway key), ledger it, put it in the sender's inbox."""
        answer = self._answer(reply_id, error)
        if answer is None or not isinstance(reply_id, str):
            return
        filing = self._pending[reply_id].verified.header
        home, identity, now = self._state.member_id, self._state.identity, self._clock.now()
        try:
            if await self._store.find_message(home, reply_id) is not None:
                return  # the same filing bytes were answered before
            answer_header = Header(
                id=reply_id,
                type=answer.type,
                sender=home,
                to=(filing.sender,),
                tlp=filing.tlp,
                created=now,
                expires=now + self._state.limits.max_message_lifetime,
                payload=payload_ref(answer.media, answer.schema, answer.payload),
                correlation=filing.id,
            )
            jws = sign_envelope(answer_header, identity.private_key, identity.chain)
            message = StoredMessage(
                sender=home,
                message_id=reply_id,
                type=answer.type,
                recipients=(filing.sender,),
                jws=jws,
                payload=answer.payload,
                digest=self._digest(jws, answer.payload),
                received_at=now,
            )
            event = AuditEvent(
                EventKind.ACCEPTED,
                now,
                {
                    "adapter": "gateway",
                    "message_id": reply_id,
                    "sender": home,
                    "type": answer.type,
                    "to": [filing.sender],
                    "answer_to": filing.id,
                    "status": answer.status,
                    "reference": answer.reference,
                    "evidence_sha256": message.digest,
                },
            )

            def receipt(leaf_index: int, received_at: datetime) -> bytes:
                return make_receipt(
                    message_id=reply_id,
                    sender=home,
                    recipients=message.recipients,
                    message_type=answer.type,
                    evidence_sha256=message.digest,
                    leaf_index=leaf_index,
                    received_at=received_at,
                    gateway=home,
                    policy_digest="",
                    signer=self._state.receipt_signer,
                )

            await self._store.accept(message, event, receipt)
        except DuplicateConflict:
            return  # a concurrent submit of the same filing stored it
        except GatewayError as exc:  # the filing's own outcome stands; the operator must see the missing answer
            log.error("answer not stored", answer_id=reply_id, code=exc.code)
            return
        self.notify(filing.sender)


@dataclass(slots=True)
class _Pending:
    """One translated submission in flight (mutable, private to :class:`Answers`)."""

    translator: PayloadTranslator
    verified: VerifiedEnvelope
    translation: Translation | None = None
    accepted: Answer | None = None


async def _translate_and_validate(
    translator: PayloadTranslator, header: Header, payload: bytes
) -> tuple[Translation, ValidatedPayload]:
    accept_media(header.type, header.payload.media)
    if len(payload) <= INLINE_TRANSLATION_BYTES:
        translation = translator.translate(payload)
    else:
        translation = await asyncio.to_thread(translator.translate, payload)
    args = (header.type, translation.media, translation.payload)
    if len(translation.payload) <= INLINE_TRANSLATION_BYTES:
        validated = validate_payload(*args, schema=header.payload.schema)
    else:
        validated = await asyncio.to_thread(validate_payload, *args, schema=header.payload.schema)
    return translation, dataclasses.replace(validated, media=header.payload.media, size=len(payload))


def accept_media(message_type: str, media: str) -> None:
    spec = MESSAGE_TYPES.get(message_type)
    if spec is not None and media not in spec.media:
        raise UnsupportedMediaType(f"{message_type} accepts {', '.join(sorted(spec.media))}", field="payload.media")
