"""Push events: a stored message as a CloudEvents 1.0 structured-mode event, signed by the gateway.

Rule 1: the event is the RFC 8785 canonical JSON of the CloudEvent attributes (``application/cloudevents+json``);
        its ``data`` carries the original evidence unchanged: the sender's JWS (``envelope``), the payload bytes
        (standard base64) and the gateway's receipt, so the recipient re-verifies the sender, not the gateway.
Rule 2: the gateway signs the exact body bytes as a detached JWS (RFC 7515 Appendix F: ``header..signature``,
        ``typ: cgw-push+jws``, the gateway's x5c). ES256 is signed deterministically (RFC 6979), so the body
        AND the signature are pure functions of (message, recipient, cursor, gateway key): every retry of a
        delivery is byte-identical, and a restart rebuilds the same bytes.
Rule 3: CloudEvents attribute names are lower-case ``a-z0-9``, at most 20 characters; ``id`` is
        ``<sender>/<message_id>`` (unique per source: a recipient de-duplicates on ``(source, id)``).
Rule 4: :func:`read_push_event` is the receiving side: verify the detached signature over the exact bytes with
        the gateway's key first, then parse the event strictly; it returns only what it verified.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gateway.core.audit import rfc3339
from gateway.core.canonical import canonical_json
from gateway.core.errors import BadRequest, Internal, LimitExceeded, SignatureRejected
from gateway.core.signing import b64url_encode, parse_json_object, verify_compact

CONTENT_TYPE = "application/cloudevents+json"
PUSH_TYP = "cgw-push+jws"
SPEC_VERSION = "1.0"
TYPE_PREFIX = "org.cgw.message."  # CloudEvents `type` = prefix + the gateway message type
REQUIRED_ATTRIBUTES = ("id", "source", "specversion", "type")
# CloudEvents 1.0: attribute names are lower-case letters and digits, "SHOULD NOT exceed 20 characters".
_ATTRIBUTE_NAME = re.compile(r"[a-z0-9]{1,20}", re.ASCII)
# A received event is parsed only up to the gateway's own body bound plus base64 and envelope overhead.
MAX_EVENT_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class PushEvent:
    """The bytes one delivery sends, identical on every attempt."""

    body: bytes  # canonical CloudEvent JSON
    signature: str  # detached compact JWS over ``body``
    event_id: str


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """A parsed (and, from :func:`read_push_event`, verified) CloudEvent."""

    id: str
    source: str
    type: str
    attributes: Mapping[str, Any]
    data: Any


def build_push_event(
    *,
    sender: str,
    message_id: str,
    message_type: str,
    recipients: Sequence[str],
    jws: str,
    payload: bytes,
    receipt: bytes,
    evidence_sha256: str,
    received_at: datetime,
    ledger_index: int,
    recipient: str,
    cursor: int,
    source: str,
    key: ec.EllipticCurvePrivateKey,
    x5c: Sequence[str],
) -> PushEvent:
    """The signed structured-mode event for one (message, recipient) delivery (Rules 1-3)."""
    event_id = f"{sender}/{message_id}"
    received = rfc3339(received_at)
    event = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": source,
        "type": TYPE_PREFIX + message_type,
        "subject": message_id,
        "time": received,
        "datacontenttype": "application/json",
        "cgwrecipient": recipient,
        "cgwcursor": cursor,
        "data": {
            "from": sender,
            "to": list(recipients),
            "message_id": message_id,
            "type": message_type,
            "received": received,
            "ledger_index": ledger_index,
            "evidence_sha256": evidence_sha256,
            "envelope": jws,
            "payload": base64.b64encode(payload).decode("ascii"),
            "receipt": receipt.decode("ascii"),
        },
    }
    body = canonical_json(event)
    return PushEvent(body=body, signature=sign_detached(body, key, x5c), event_id=event_id)


def sign_detached(body: bytes, key: ec.EllipticCurvePrivateKey, x5c: Sequence[str]) -> str:
    """Deterministic ES256 detached JWS over ``body`` (Rule 2)."""
    if not isinstance(key.curve, ec.SECP256R1):
        raise Internal("push events are signed with the gateway's P-256 key")
    header = canonical_json({"alg": "ES256", "typ": PUSH_TYP, "x5c": list(x5c)})
    signing_input = f"{b64url_encode(header)}.{b64url_encode(body)}".encode("ascii")
    der = key.sign(signing_input, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
    r, s = decode_dss_signature(der)
    return f"{b64url_encode(header)}..{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def read_push_event(body: bytes, signature: str, public_key: PublicKeyTypes) -> CloudEvent:
    """Verify the detached signature over ``body`` with the gateway's key, then parse the event (Rule 4)."""
    if len(body) > MAX_EVENT_BYTES:
        raise LimitExceeded(f"event larger than {MAX_EVENT_BYTES} bytes", field="body")
    parts = signature.split(".")
    if len(parts) != 3 or parts[1] != "":
        raise SignatureRejected("not a detached compact JWS", field="signature")
    header, _ = verify_compact(f"{parts[0]}.{b64url_encode(body)}.{parts[2]}", public_key)
    if header.get("typ") != PUSH_TYP:
        raise SignatureRejected(f"typ is not {PUSH_TYP}", field="signature.typ")
    return parse_cloudevent(body)


def parse_cloudevent(raw: bytes) -> CloudEvent:
    """A structured-mode CloudEvent 1.0 (JSON), checked against the spec's attribute rules (Rule 3)."""
    obj = parse_json_object(raw, error=BadRequest, field="event")
    for name in obj:
        if name != "data" and not _ATTRIBUTE_NAME.fullmatch(name):
            raise BadRequest(f"attribute name {name[:40]!r} is not lower-case a-z0-9 (1..20)", field=name)
    for name in REQUIRED_ATTRIBUTES:
        value = obj.get(name)
        if not isinstance(value, str) or not value:
            raise BadRequest(f"required attribute {name} is missing or empty", field=name)
    if obj["specversion"] != SPEC_VERSION:
        raise BadRequest(f"specversion {obj['specversion']!r} is not {SPEC_VERSION}", field="specversion")
    attributes = {k: v for k, v in obj.items() if k != "data"}
    return CloudEvent(id=obj["id"], source=obj["source"], type=obj["type"], attributes=attributes, data=obj.get("data"))


__all__ = [
    "CONTENT_TYPE",
    "PUSH_TYP",
    "CloudEvent",
    "PushEvent",
    "build_push_event",
    "parse_cloudevent",
    "read_push_event",
    "sign_detached",
]
