"""The CUSRES answer to a CUSCAR filing (UN/EDIFACT D.96B), correlated to the interchange control reference.

Layout (README "EDIFACT" documents it for carriers)::

    UNB+UNOC:3+<customs>:ZZZ+<carrier UNB sender>:ZZZ+<date>:<time>+<answer reference>'
    UNH+1+CUSRES:D:96B:UN'
    BGM+85+<manifest number or control reference>+9+<AP accepted | RE rejected>'
    DTM+137:<CCYYMMDDHHMM>:203'
    RFF+ACW:<control reference of the answered interchange>'
    ERP+1:<segment position>'  ERC+<application error code>::ZZZ'                                   (rejected only)
    FTX+AAO+++<stable code: rule: detail, in 70-character parts>'                                   (rejected only)
    UNT+<count>+1'
    UNZ+1+<answer reference>'

Rule 1: one ERP/ERC/FTX group per refusal (every bad identifier of the interchange, in segment order), naming
        the segment position (the first is the ``segment[n]`` the problem response's ``field`` carries), the
        application error code (Rule 3) and, in FTX, the gateway's stable error code, the rule id and the detail;
        refusals not tied to a segment (policy, payload schema) carry position 0 and the JSON field path in FTX.
Rule 2: text fields are bounded (:data:`MAX_DETAIL_CHARS`) so an answer never grows with hostile input.
Rule 3: ERC 9321 is an..8 (D.96B), so it carries the gateway's own application error code from
        :data:`APPLICATION_ERRORS` (3055 = ``ZZZ``, mutually defined; README "EDIFACT" lists it): one code per
        stable error code, refined for ``EDIFACT_INVALID`` and ``IDENTIFIER_INVALID`` by the rule's family (the
        part of the rule id before the dot, e.g. ``UNB`` of ``UNB.datetime``, ``TDT`` of ``TDT.8213``). Every
        code is 1-8 of ``A-Z0-9`` (in every EDIFACT character set); a stable code missing from the table (none
        today, a test holds it) is answered as :data:`UNLISTED_ERROR`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Final

from adapters.edifact.cuscar import IdentifierErrors
from adapters.edifact.syntax import Element, encoding_of, serialize
from gateway.core.errors import GatewayError

MAX_DETAIL_CHARS: Final = 350  # FTX C108: five components of an..70
_SEGMENT_FIELD: Final = re.compile(r"segment\[(\d+)\]")
_PARTY: Final = re.compile(r"[^A-Za-z0-9 ./_-]")
_RULE_FAMILY: Final = re.compile(r"([A-Z]{3,9})\.[A-Za-z0-9]+\b")  # the rule id a refusal's detail starts with

# (stable error code, rule family or "" for every other refusal with that code) -> ERC 9321 (Rule 3).
APPLICATION_ERRORS: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        ("MALFORMED_REQUEST", ""): "REQFORM",
        ("LIMIT_EXCEEDED", ""): "REQLIMIT",
        ("UNSUPPORTED_MEDIA_TYPE", ""): "REQMEDIA",
        ("METHOD_NOT_ALLOWED", ""): "REQMETHD",
        ("REQUEST_TIMEOUT", ""): "REQTIME",
        ("UNAUTHENTICATED", ""): "AUTH",
        ("TOKEN_INVALID", ""): "AUTHTOKN",
        ("TOKEN_REPLAYED", ""): "AUTHRPLY",
        ("SIGNATURE_INVALID", ""): "SIGINVAL",
        ("ALG_NOT_ALLOWED", ""): "SIGALG",
        ("CERT_UNTRUSTED", ""): "SIGCERT",
        ("CERT_REVOKED", ""): "SIGREVOK",
        ("SIGNER_MISMATCH", ""): "SIGNER",
        ("PAYLOAD_DIGEST_MISMATCH", ""): "SIGDIGST",
        ("POLICY_DENIED", ""): "POLICY",
        ("NOT_FOUND", ""): "NOTFOUND",
        ("DUPLICATE_CONFLICT", ""): "DUPLICAT",
        ("PEER_UNTRUSTED", ""): "PEERCERT",
        ("PEER_MISMATCH", ""): "PEERID",
        ("RELAY_REFUSED", ""): "RELAY",
        ("SCHEMA_INVALID", ""): "SCHEMA",
        ("HEADER_INVALID", ""): "HEADER",
        ("UNKNOWN_RECIPIENT", ""): "RECIPENT",
        ("MESSAGE_EXPIRED", ""): "EXPIRED",
        ("MESSAGE_NOT_YET_VALID", ""): "NOTYET",
        ("PROOF_INVALID", ""): "PROOF",
        ("RATE_LIMITED", ""): "RATELIMT",
        ("UNAVAILABLE", ""): "UNAVAIL",
        ("INTERNAL", ""): "INTERNAL",
        # EDIFACT_INVALID by rule family: syntax, envelope, directory structure; "" = content the manifest needs
        ("EDIFACT_INVALID", ""): "EDICONTN",
        ("EDIFACT_INVALID", "UNA"): "EDISYNTX",
        ("EDIFACT_INVALID", "SYNTAX"): "EDISYNTX",
        ("EDIFACT_INVALID", "UNB"): "EDIENVLP",
        ("EDIFACT_INVALID", "UNG"): "EDIENVLP",
        ("EDIFACT_INVALID", "UNH"): "EDIENVLP",
        ("EDIFACT_INVALID", "UNT"): "EDIENVLP",
        ("EDIFACT_INVALID", "UNZ"): "EDIENVLP",
        ("EDIFACT_INVALID", "STRUCTURE"): "EDISTRUC",
        # IDENTIFIER_INVALID by the segment that carries it; "" = a JSON manifest's identifier (no segment)
        ("IDENTIFIER_INVALID", ""): "IDENT",
        ("IDENTIFIER_INVALID", "EQD"): "IDCONTNR",
        ("IDENTIFIER_INVALID", "SGP"): "IDCONTNR",
        ("IDENTIFIER_INVALID", "TDT"): "IDIMO",
        ("IDENTIFIER_INVALID", "LOC"): "IDLOCODE",
        ("IDENTIFIER_INVALID", "CST"): "IDHS",
        ("IDENTIFIER_INVALID", "PIA"): "IDHS",
        ("IDENTIFIER_INVALID", "DGS"): "IDUNNUM",
        ("IDENTIFIER_INVALID", "RFF"): "IDBL",
        ("IDENTIFIER_INVALID", "CNI"): "IDBL",
        ("IDENTIFIER_INVALID", "NAD"): "IDPARTY",
    }
)
UNLISTED_ERROR: Final = "GATEWAY"


def answer_reference(answer_id: str) -> str:
    """An..14 interchange control reference for the answer, derived from its message id."""
    return "R" + hashlib.sha256(answer_id.encode()).hexdigest()[:13].upper()


def build_cusres(
    *,
    responder: str,
    recipient: str,
    interchange_reference: str,
    document_number: str,
    answer_id: str,
    error: GatewayError | None,
    now: datetime,
) -> bytes:
    reference = answer_reference(answer_id)
    body: list[tuple[str, list[Element]]] = [
        ("UNH", ["1", ["CUSRES", "D", "96B", "UN"]]),
        ("BGM", ["85", document_number[:35] or interchange_reference, "9", "AP" if error is None else "RE"]),
        ("DTM", [["137", now.strftime("%Y%m%d%H%M"), "203"]]),
        ("RFF", [["ACW", interchange_reference]]),
    ]
    for refusal in _refusals(error):
        found = _SEGMENT_FIELD.match(refusal.field or "")
        detail = (refusal.detail if refusal.expose_detail else refusal.public) or refusal.public
        if refusal.field and not found:
            detail = f"{refusal.field}: {detail}"
        detail = f"{refusal.code}: {detail}"[:MAX_DETAIL_CHARS]
        body += [
            ("ERP", [["1", found.group(1) if found else "0"]]),
            ("ERC", [[application_error(refusal), "", "ZZZ"]]),
            ("FTX", ["AAO", "", "", [detail[i : i + 70] for i in range(0, len(detail), 70)]]),
        ]
    body.append(("UNT", [str(len(body) + 1), "1"]))
    segments: list[tuple[str, list[Element]]] = [
        (
            "UNB",
            [
                ["UNOC", "3"],
                [_party(responder), "ZZZ"],
                [_party(recipient), "ZZZ"],
                [now.strftime("%y%m%d"), now.strftime("%H%M")],
                reference,
            ],
        ),
        *body,
        ("UNZ", ["1", reference]),
    ]
    text_safe = [(tag, [_latin1(e) for e in elements]) for tag, elements in segments]
    return serialize(text_safe, encoding=encoding_of("UNOC"))


def application_error(error: GatewayError) -> str:
    """ERC 9321 for ``error`` (Rule 3): its rule family's code, else its stable code's, else UNLISTED_ERROR."""
    found = _RULE_FAMILY.match(error.detail) if error.expose_detail else None  # never read a secret's detail
    family = APPLICATION_ERRORS.get((error.code, found.group(1))) if found else None
    return family or APPLICATION_ERRORS.get((error.code, ""), UNLISTED_ERROR)


def _refusals(error: GatewayError | None) -> tuple[GatewayError, ...]:
    if error is None:
        return ()
    return error.errors if isinstance(error, IdentifierErrors) else (error,)


def _party(value: str) -> str:
    return _PARTY.sub("", value)[:35] or "UNKNOWN"


def _latin1(element: Element) -> Element:
    if isinstance(element, str):
        return element.encode("latin-1", "replace").decode("latin-1")
    return [part.encode("latin-1", "replace").decode("latin-1") for part in element]
