"""The CUSRES answer to a CUSCAR filing (UN/EDIFACT D.96B), correlated to the interchange control reference.

Layout (README "EDIFACT" documents it for carriers)::

    UNB+UNOC:3+<customs>:ZZZ+<carrier UNB sender>:ZZZ+<date>:<time>+<answer reference>'
    UNH+1+CUSRES:D:96B:UN'
    BGM+85+<manifest number or control reference>+9+<AP accepted | RE rejected>'
    DTM+137:<CCYYMMDDHHMM>:203'
    RFF+ACW:<control reference of the answered interchange>'
    ERP+1:<segment position>'  ERC+<stable error code>'  FTX+AAO+++<rule and detail in 70-char parts>'   (rejected)
    UNT+<count>+1'
    UNZ+1+<answer reference>'

Rule 1: one ERP/ERC/FTX group per refusal (every bad identifier of the interchange, in segment order), naming
        the segment position (the first is the ``segment[n]`` the problem response's ``field`` carries) and the
        gateway's stable error code; refusals not tied to a segment (policy, payload schema) carry position 0
        and the JSON field path in FTX.
Rule 2: text fields are bounded (:data:`MAX_DETAIL_CHARS`) so an answer never grows with hostile input.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Final

from adapters.edifact.cuscar import IdentifierErrors
from adapters.edifact.syntax import Element, encoding_of, serialize
from gateway.core.errors import GatewayError

MAX_DETAIL_CHARS: Final = 350  # FTX C108: five components of an..70
_SEGMENT_FIELD: Final = re.compile(r"segment\[(\d+)\]")
_PARTY: Final = re.compile(r"[^A-Za-z0-9 ./_-]")


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
        detail = detail[:MAX_DETAIL_CHARS]
        body += [
            ("ERP", [["1", found.group(1) if found else "0"]]),
            ("ERC", [refusal.code]),
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
