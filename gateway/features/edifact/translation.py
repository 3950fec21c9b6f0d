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
        pulled from the sender's inbox; the filing's receipt names it (``answer`` claim). The pipeline's side
        of it is ``gateway.features.edifact.handler``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from gateway.core.errors import GatewayError, UnsupportedMediaType
from gateway.core.model import Header
from gateway.core.payloads import MESSAGE_TYPES, ValidatedPayload, validate_payload

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


async def translate_and_validate(
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
