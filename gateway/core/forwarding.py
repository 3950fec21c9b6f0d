"""Forward and recall rules that are not access decisions (those are Cedar's: policies/tlp.cedar, programs.cedar).

Rule 1: a forward is the forwarder's OWN signed envelope over the ORIGINAL payload bytes: same message type,
        TLP label, programme and payload digest as the original; only ``id``, ``from``, ``to`` and the times
        are the forwarder's. The original's signed evidence is delivered beside it, unchanged.
Rule 2: an ``intel.recall.v1`` names the message it withdraws in its payload (original sender + id); the
        recall's header ``program`` and ``tlp`` are the recall's own.
Rule 3: the lane of a payload is its ``origin_port`` and ``destination_port`` (UN/LOCODE, current codes),
        written ``"CNYTN-NLRTM"``; a payload without both has no lane (``""``).
"""

from __future__ import annotations

import base64
import binascii

from gateway.core.envelope import parse_header
from gateway.core.errors import HeaderInvalid, Internal, Invalid
from gateway.core.model import Header
from gateway.core.payloads import ValidatedPayload
from gateway.core.programs import lane_key
from gateway.core.signing import parse_json_object

RECALL_TYPE = "intel.recall.v1"


def stored_header(jws: str) -> Header:
    """The header of evidence this gateway verified when it accepted it (stored, so trusted as parsed)."""
    try:
        segment = jws.split(".")[1]
        signed = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (IndexError, binascii.Error, ValueError):
        raise Internal("stored evidence is not a JWS compact string") from None
    return parse_header(parse_json_object(signed, error=HeaderInvalid))


def check_forward(original: Header, forward: Header) -> None:
    """Rule 1: the forward repeats what the original said about itself; ``Invalid`` naming the header field."""
    for field, mine, theirs in (
        ("type", forward.type, original.type),
        ("tlp", forward.tlp, original.tlp),
        ("program", forward.program, original.program),
        ("payload.sha256", forward.payload.sha256, original.payload.sha256),
    ):
        if mine != theirs:
            raise Invalid(f"a forward keeps the original's {field} ({theirs!s})", field=field)


def lane_of(payload: ValidatedPayload) -> str:
    """Rule 3."""
    ports = {port.role: port.code for port in payload.ports}
    origin, destination = ports.get("origin_port"), ports.get("destination_port")
    return lane_key(origin, destination) if origin and destination else ""
