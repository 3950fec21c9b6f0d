"""A peer gateway's receipt for a relayed message: is it B's, and for exactly what A relayed? (issue 19)

Rule 1: the receipt is a gateway receipt (``gateway.core.receipt``): a compact JWS whose ``x5c`` leaf must chain,
        through ``cryptography.x509.verification``, to one of the peer's ``signing_anchors`` in the signed
        federation directory (never to this gateway's own anchors), with KeyUsage digitalSignature and the EKU
        id-kp-documentSigning; its signature must verify with that leaf's key.
Rule 2: its claims must name the peer (``gateway`` = the peer's id), the relayed message (``from``,
        ``message_id``) and the exact evidence relayed (``evidence_sha256``: same JWS, same payload bytes), with
        ``status`` accepted. Anything else is ``SignatureRejected`` (the caller counts it as a failed attempt and
        stores nothing).
Rule 3: pure: time is an argument, there is no I/O.
Rule 4: which refusals of the peer a relay may retry is decided here once for both transports
        (:func:`retryable_status`, by the HTTP status of the peer's answer; a gRPC answer is judged by the HTTP
        status of its stable code's kind): 408, 425, 429 and 5xx are retryable, anything else is final; except
        that a recall the peer answers ``NOT_FOUND`` is retried (:func:`recall_retryable`): its original may still
        be on its way there, and a recall must not be given up before its original.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509.verification import Criticality, ExtensionPolicy, Policy, PolicyBuilder, Store, VerificationError

from gateway.core.errors import NotFound, SignatureRejected
from gateway.core.forwarding import RECALL_TYPE
from gateway.core.pki import DOCUMENT_SIGNING
from gateway.core.receipt import read_receipt
from gateway.core.signing import MAX_TOKEN_CHARS, peek_chain

# A receipt is one small JWS (a few certificates and a claims set); anything larger is not one.
MAX_RECEIPT_CHARS = MAX_TOKEN_CHARS
RETRYABLE_STATUSES = frozenset({408, 425, 429})  # Rule 4, beside every 5xx


def retryable_status(status: int) -> bool:
    """Rule 4: may a relay the peer refused with this HTTP status be tried again?"""
    return status in RETRYABLE_STATUSES or status >= 500


def recall_retryable(message_type: str, code: str) -> bool:
    """Rule 4: a recall refused because the peer does not hold (yet) what it recalls is tried again."""
    return message_type == RECALL_TYPE and code == NotFound.code


def _document_signing(_policy: Policy, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
    if DOCUMENT_SIGNING not in eku:
        raise ValueError("EKU id-kp-documentSigning missing")


def _digital_signature(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    if not usage.digital_signature:
        raise ValueError("key usage digitalSignature missing")


def _signer(chain: Sequence[bytes], anchors: Sequence[bytes], at: datetime) -> x509.Certificate:
    """Rule 1: the leaf of ``chain`` once it chains to one of ``anchors`` (DER) at ``at``."""
    try:
        certs = [x509.load_der_x509_certificate(der) for der in chain]
        roots = [x509.load_der_x509_certificate(der) for der in anchors]
    except ValueError as exc:
        raise SignatureRejected(f"malformed certificate in the peer receipt: {exc}", field="receipt") from None
    if not roots:
        raise SignatureRejected("the directory lists no signing anchor for the peer", field="receipt")
    ee = (
        ExtensionPolicy.webpki_defaults_ee()
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _document_signing)
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _digital_signature)
    )
    verifier = (
        PolicyBuilder()
        .store(Store(roots))
        .time(at)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
        .build_client_verifier()
    )
    try:
        verifier.verify(certs[0], certs[1:])
    except VerificationError as exc:
        detail = f"the peer receipt's signer does not chain to its anchors: {exc}"
        raise SignatureRejected(detail, field="receipt") from None
    return certs[0]


def verify_peer_receipt(
    receipt: str,
    *,
    peer: str,
    signing_anchors: Sequence[bytes],
    sender: str,
    message_id: str,
    evidence_sha256: str,
    at: datetime,
) -> dict[str, Any]:
    """The claims of ``receipt`` once Rules 1 and 2 hold for the peer gateway ``peer``; else ``SignatureRejected``."""
    if not receipt or len(receipt) > MAX_RECEIPT_CHARS:
        raise SignatureRejected("the peer answered without a receipt of a sane size", field="receipt")
    _, chain = peek_chain(receipt)
    if not chain:
        raise SignatureRejected("the peer receipt carries no x5c chain", field="receipt")
    leaf = _signer(chain, signing_anchors, at)
    claims = read_receipt(receipt, leaf.public_key())
    expected = {
        "status": "accepted",
        "gateway": peer,
        "from": sender,
        "message_id": message_id,
        "evidence_sha256": evidence_sha256,
    }
    for name, value in expected.items():
        if claims.get(name) != value:
            raise SignatureRejected(f"the peer receipt's {name} is not {value!r}", field=f"receipt.{name}")
    return claims
