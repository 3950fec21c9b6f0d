"""Receipts: the gateway's signed statement that it durably accepted a message.

Rule 1: a receipt is a JWS compact (``typ: cgw-receipt+jws``, the gateway's x5c) over the RFC 8785 canonical JSON
        of the receipt claims; the sender can verify it offline against the federation trust anchor.
Rule 2: it names the exact evidence accepted (``evidence_sha256`` over the signed header and the payload), the
        ledger leaf that records the acceptance and the policy set that allowed it, so a receipt, the ledger and
        the stored evidence can be cross-checked by an auditor years later.
Rule 3: the receipt is built inside the store's durable write, so it exists if and only if the message does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from gateway.core.audit import rfc3339
from gateway.core.canonical import canonical_json
from gateway.core.errors import SignatureRejected
from gateway.core.signing import CompactSigner, PrivateKey, verify_compact

RECEIPT_TYP = "cgw-receipt+jws"


def make_receipt(
    *,
    message_id: str,
    sender: str,
    recipients: Sequence[str],
    message_type: str,
    evidence_sha256: str,
    leaf_index: int,
    received_at: datetime,
    gateway: str,
    policy_digest: str,
    signer: CompactSigner,
    claims: Mapping[str, Mapping[str, str]] | None = None,
) -> bytes:
    """``claims``: extra claims a feature adds, each an object under its own name, never one of the claims
    above (``gateway.exchange.handlers``: ``Handler.receipt_claims``; e.g. ``answer``, the outcome of the
    answer a translated EDIFACT filing got)."""
    body: dict[str, str | int | list[str] | dict[str, str]] = {
        "status": "accepted",
        "gateway": gateway,
        "message_id": message_id,
        "from": sender,
        "to": list(recipients),
        "type": message_type,
        "evidence_sha256": evidence_sha256,
        "received": rfc3339(received_at),
        "ledger_index": leaf_index,
        "policy_digest": policy_digest,
    }
    for name, value in (claims or {}).items():
        if name in body:
            raise ValueError(f"the receipt claim {name!r} is not a feature's to set")
        body[name] = dict(value)
    return signer.sign(canonical_json(body)).encode("ascii")


def receipt_signer(key: PrivateKey, x5c: Sequence[str]) -> CompactSigner:
    """The signer of every receipt made with ``key``: ``typ`` and the ``x5c`` chain in the protected header."""
    return CompactSigner(key, headers={"typ": RECEIPT_TYP, "x5c": list(x5c)})


def read_receipt(unverified_receipt: str, public_key: PublicKeyTypes) -> dict[str, Any]:
    """Verify a receipt with the gateway's public key and return its claims."""
    header, body = verify_compact(unverified_receipt, public_key)
    if header.get("typ") != RECEIPT_TYP:
        raise SignatureRejected("not a gateway receipt", field="typ")
    claims = json.loads(body)
    if not isinstance(claims, dict):
        raise SignatureRejected("receipt body is not a JSON object")
    return claims
