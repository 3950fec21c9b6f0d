"""A small async SOAP client for partners (and the demo): submit over HTTPS/mTLS, verify the signed response.

Rule 1: the request is composed and signed by ``composer.compose_submission`` (WS-Security over Body, Timestamp
        and WS-Addressing); the response must be signed by the pinned gateway certificate (``PinnedSigner``),
        and its ``RelatesTo`` must be our MessageID.
Rule 2: a fault becomes :class:`SoapFault` with the stable code from ``cgw:FaultDetail``; every call has a timeout.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.protobuf.message import Message

from adapters.soap import names, wssecurity
from adapters.soap.clientsecurity import PinnedSigner
from adapters.soap.composer import compose_submission
from adapters.soap.document import parse_document
from adapters.soap.mapping import qname
from gateway.core.model import Tlp
from gateway.infra.files import load_certificates, load_private_key

TIMEOUT_SECONDS = 15.0


class SoapFault(Exception):
    def __init__(self, status: int, code: str) -> None:
        self.status = status
        self.code = code
        super().__init__(f"{status} {code}")


@dataclass(frozen=True, slots=True)
class SoapSubmitted:
    message_id: str
    ledger_index: int
    receipt: str
    duplicate: bool
    signed_by: str  # the verified response signer (the gateway)


@dataclass(frozen=True, slots=True)
class SoapPartner:
    member_id: str
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    certificate: x509.Certificate
    tls: ssl.SSLContext
    gateway_certificate: x509.Certificate
    gateway_id: str = "CN-GACC"

    async def submit(
        self,
        base_url: str,
        document: Message,
        to: list[str],
        *,
        tlp: Tlp = Tlp.AMBER,
        soap_ns: str = names.SOAP12,
        tamper: bool = False,
    ) -> SoapSubmitted:
        """Submit ``document``; ``tamper`` (demos and tests only) alters the signed Body after signing."""
        address = base_url.rstrip("/") + names.SOAP_PATH
        message_id, body = compose_submission(
            document,
            sender=self.member_id,
            to=to,
            address=address,
            key=self.key,
            certificate=self.certificate,
            tlp=tlp,
            soap_ns=soap_ns,
        )
        if tamper:
            body = body.replace(b"voyageNumber>", b"voyageNumber>X", 1)
        media = names.MEDIA_SOAP12 if soap_ns == names.SOAP12 else names.MEDIA_SOAP11
        connector = aiohttp.TCPConnector(ssl=self.tls, force_close=True)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.post(address, data=body, headers={"Content-Type": media}) as response,
        ):
            status, raw = response.status, await response.read()
        root = parse_document(raw)
        if status != 200:
            raise SoapFault(status, root.findtext(f".//{{{names.CGW}}}code") or "UNKNOWN")
        verified = wssecurity.verify(
            root,
            validator=PinnedSigner(self.gateway_certificate, self.gateway_id),
            now=datetime.now(UTC),
            max_skew=timedelta(minutes=5),
        )
        if verified.addressing.get("RelatesTo") != f"urn:uuid:{message_id}":
            raise SoapFault(status, "RESPONSE_MISMATCH")
        result = verified.body[0]
        return SoapSubmitted(
            message_id=result.findtext(qname("messageId")) or "",
            ledger_index=int(result.findtext(qname("ledgerIndex")) or -1),
            receipt=result.findtext(qname("receipt")) or "",
            duplicate=result.findtext(qname("duplicate")) == "true",
            signed_by=verified.certified.member_id,
        )


def partner_from_federation(federation_dir: Path, member_id: str) -> SoapPartner:
    """A member's SOAP partner identity from a directory written by ``customs-gateway init`` (dev only)."""
    base = federation_dir / "members" / member_id
    key = load_private_key(base / "signing.key")
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ValueError(f"{member_id}: the signing key must be ECDSA or RSA for WS-Security")
    context = ssl.create_default_context(cafile=str(federation_dir / "ca" / "root-ca.crt"))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(base / "tls-client.crt", base / "tls-client.key")
    return SoapPartner(
        member_id=member_id,
        key=key,
        certificate=load_certificates(base / "signing.crt")[0],
        tls=context,
        gateway_certificate=load_certificates(federation_dir / "gateway" / "signing.crt")[0],
    )
