"""WS-Security for SOAP clients (zeep): sign every request, verify every response, with a pinned signer.

Used by the push deliverer, the demo and the tests; a partner's own client can do the same with these two
objects. Every zeep security setting is explicit in :func:`zeep_settings`.

Rule 1: requests are signed by ``wssecurity.sign`` (Body, Timestamp, every WS-Addressing header), so they verify
        under the gateway's own rules.
Rule 2: responses are verified by ``wssecurity.verify`` against the ``ChainValidator`` given (the federation
        for member endpoints, :class:`PinnedSigner` for the gateway's own signing certificate); a response that
        does not verify raises ``SignatureRejected``. Faults are unsigned: zeep raises them as ``zeep.Fault``
        and nothing in them is trusted beyond the code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from zeep.settings import Settings

from adapters.soap import wssecurity
from adapters.soap.wssecurity import envelope_parts
from gateway.core.errors import CertificateUntrusted
from gateway.core.model import CertificateRef, CertifiedKey, ChainValidator
from gateway.core.pki import fingerprint

# Parsed WSDL/response size bound for zeep (it parses whole documents in memory).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


def zeep_settings() -> Settings:
    """zeep's parser and behaviour, every security-relevant setting written out."""
    return Settings(
        strict=True,  # refuse documents that do not match the schema
        raw_response=False,
        forbid_dtd=True,  # no DTD at all (XXE, billion laughs, external DTD)
        forbid_entities=True,
        forbid_external=True,  # no external references resolved from documents
        xml_huge_tree=False,  # keep libxml2's size and depth guards
        force_https=True,  # never downgrade an https WSDL's imports to http
        extra_http_headers=None,
        xsd_ignore_sequence_order=False,
    )


class PinnedSigner:
    """A ``ChainValidator`` accepting exactly one certificate (e.g. the gateway's signing certificate)."""

    def __init__(self, certificate: x509.Certificate, signer_id: str) -> None:
        self._der = certificate.public_bytes(serialization.Encoding.DER)
        self._certificate = certificate
        self._signer_id = signer_id

    def validate_signing(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        if len(chain) != 1 or chain[0] != self._der:
            raise CertificateUntrusted("the response is not signed by the pinned certificate")
        if not self._certificate.not_valid_before_utc <= at <= self._certificate.not_valid_after_utc:
            raise CertificateUntrusted("the pinned certificate is not valid now")
        return CertifiedKey(
            member_id=self._signer_id,
            fingerprint=fingerprint(self._der),
            public_key=self._certificate.public_key(),
            not_after=self._certificate.not_valid_after_utc,
            serial=self._certificate.serial_number,
            issuer="",
        )

    def validate_client(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        raise CertificateUntrusted("a pinned signer is not a TLS client")

    def recheck(self, certificate: CertificateRef, member_id: str, at: datetime) -> None:
        raise CertificateUntrusted("a pinned signer is not rechecked")


class WsSecurity:
    """A zeep ``wsse`` object: ``apply`` signs the outgoing envelope, ``verify`` checks the response."""

    def __init__(
        self,
        *,
        key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        certificate: x509.Certificate,
        response_validator: ChainValidator,
        max_skew: timedelta = timedelta(minutes=5),
    ) -> None:
        self._key = key
        self._certificate = certificate
        self._validator = response_validator
        self._max_skew = max_skew
        self.last_verified: wssecurity.VerifiedSoap | None = None

    def apply(self, envelope: etree._Element, headers: dict[str, Any]) -> tuple[etree._Element, dict[str, Any]]:
        wssecurity.sign(envelope, key=self._key, certificate=self._certificate, now=datetime.now(UTC))
        return envelope, headers

    def verify(self, envelope: etree._Element) -> etree._Element:
        soap_ns, _header, body = envelope_parts(envelope)
        if body.find(f"{{{soap_ns}}}Fault") is not None:
            return envelope  # faults are unsigned (Rule 2)
        self.last_verified = wssecurity.verify(
            envelope, validator=self._validator, now=datetime.now(UTC), max_skew=self._max_skew
        )
        return envelope
