"""The EDIFACT translator the pipeline is given for ``application/edifact``: CUSCAR in, manifest JSON out, CUSRES back.

Rule 1: an interchange carries exactly one CUSCAR message (one filing, one answer); more is refused
        (``UNZ.count``) rather than silently dropping the rest.
Rule 2: the order of checks is syntax and envelope (:mod:`.syntax`), directory structure (:mod:`.structure`),
        identifiers per segment (:mod:`.cuscar`); the first failure is the refusal.
Rule 3: the answer to a refused filing is correlated by what the interchange's first segments say
        (:func:`.syntax.interchange_header`): the UNB control reference and sender, and the BGM manifest number
        when the first message opens with one (else the answer's BGM carries the control reference).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from adapters.edifact.cuscar import to_manifest
from adapters.edifact.cusres import build_cusres
from adapters.edifact.structure import match, table_for
from adapters.edifact.syntax import Interchange, interchange_header, parse_interchange, refuse
from gateway.core.errors import GatewayError
from gateway.features.edifact.translation import Answer, Translation

MEDIA_EDIFACT: Final = "application/edifact"
ANSWER_TYPE: Final = "response.cusres.v1"
ANSWER_SCHEMA: Final = "UN/EDIFACT:CUSRES:D:96B"


def read_cuscar(data: bytes, *, strict: bool = False) -> tuple[Interchange, dict[str, Any]]:
    """Check the interchange and convert its one CUSCAR to the manifest's proto3 JSON form (a dict).

    ``strict`` reads with the directory's own segment table, without the gateway's PIA extension
    (``adapters.edifact.structure.DIRECTORIES``): what a strict D.95B/D.96B reader accepts. Carrier filings are
    read with the extension."""
    interchange = parse_interchange(data)
    if len(interchange.messages) != 1:
        unz_position = interchange.messages[-1].segments[-1].position + 1 if interchange.messages else 2
        raise refuse("UNZ.count", "an interchange must carry exactly one CUSCAR message", unz_position, "UNZ")
    message = interchange.messages[0]
    _directory, table = table_for(message, strict=strict)
    return interchange, to_manifest(match(message, table))


class EdifactTranslator:
    """``gateway.features.edifact.translation.PayloadTranslator`` for UN/EDIFACT CUSCAR filings."""

    media = MEDIA_EDIFACT

    def translate(self, data: bytes) -> Translation:
        interchange, manifest = read_cuscar(data)
        payload = json.dumps(manifest, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return Translation(
            payload=payload,
            media="application/json",
            reference=interchange.control_reference,
            sender=interchange.sender,
            document=str(manifest.get("manifestNumber", "")),
        )

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
        if translation is not None:
            reference, sender, document = translation.reference, translation.sender, translation.document
        else:  # refused before translation finished: read only UNB, UNH and BGM (cheap, never raises)
            head = interchange_header(data)
            reference, sender, document = head.reference, head.sender, head.document
        payload = build_cusres(
            responder=responder,
            recipient=sender or recipient,
            interchange_reference=reference,
            document_number=document,
            answer_id=answer_id,
            error=error,
            now=now,
        )
        status = "accepted" if error is None else "rejected"
        return Answer(ANSWER_TYPE, MEDIA_EDIFACT, ANSWER_SCHEMA, payload, reference, status)
