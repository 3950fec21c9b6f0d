"""Shared frozen value types of the gateway: members, the federation registry, message headers.

Rule 1: values are frozen dataclasses; they are built by ``parse_*`` functions in the module that owns the
        format (``envelope.parse_header``, ``registry.parse_registry``), which raise a typed error with a
        field path.
Rule 2: trust is in the type: ``Header`` is what a sender *claims*; ``VerifiedEnvelope`` (in
        ``envelope.py``) is only built by the verification step; the pipeline's later steps accept only the
        stronger type.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


class MemberKind(enum.StrEnum):
    CUSTOMS = "customs"
    CARRIER = "carrier"
    PORT = "port"
    AUDITOR = "auditor"


class Tlp(enum.StrEnum):
    """FIRST TLP 2.0 labels."""

    CLEAR = "CLEAR"
    GREEN = "GREEN"
    AMBER = "AMBER"
    AMBER_STRICT = "AMBER+STRICT"
    RED = "RED"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a member receives deliveries. ``kind`` is ``pull`` (inbox only), ``webhook``, ``grpc`` or ``soap``."""

    kind: str
    url: str = ""


@dataclass(frozen=True, slots=True)
class Member:
    id: str
    name: str
    kind: MemberKind
    country: str
    programs: frozenset[str] = frozenset()
    # lowercase hex SHA-256 of the DER of each certificate this member may use (signing and TLS client)
    cert_fingerprints: frozenset[str] = frozenset()
    endpoints: tuple[Endpoint, ...] = ()
    suspended: bool = False
    home: bool = False  # True for the administration that runs this gateway


@dataclass(frozen=True, slots=True)
class Registry:
    """The federation registry: who is a member. ``version`` changes whenever the content changes."""

    version: str
    members: Mapping[str, Member] = field(default_factory=dict)

    def get(self, member_id: str) -> Member | None:
        return self.members.get(member_id)

    def by_fingerprint(self, fingerprint: str) -> Member | None:
        for member in self.members.values():
            if fingerprint in member.cert_fingerprints:
                return member
        return None


@dataclass(frozen=True, slots=True)
class PayloadRef:
    media: str  # e.g. application/json, application/edifact
    schema: str  # the message type's schema id, e.g. cgw.v1.CargoManifest
    sha256: str  # lowercase hex SHA-256 of the exact payload bytes
    size: int


@dataclass(frozen=True, slots=True)
class Header:
    """The signed message header as the sender claims it (not yet verified)."""

    id: str
    type: str
    sender: str  # JSON field "from"
    to: tuple[str, ...]
    tlp: Tlp
    created: datetime
    expires: datetime
    payload: PayloadRef
    program: str | None = None
    correlation: str | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated party at the transport edge (from the mTLS certificate or a bound access token)."""

    member: Member
    method: str  # "mtls" or "token"
    cert_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class CertifiedKey:
    """A certificate that passed chain validation: whose it is and the key it certifies."""

    member_id: str  # from the SAN URI urn:cgw:member:<ID>
    fingerprint: str  # lowercase hex SHA-256 of the leaf certificate DER
    public_key: PublicKeyTypes
    not_after: datetime
    serial: int  # the leaf's serial number (what a CRL lists)
    issuer: str  # lowercase hex SHA-256 of the trust anchor that issued the leaf ("" when no anchor vouched)

    @property
    def ref(self) -> CertificateRef:
        return CertificateRef(fingerprint=self.fingerprint, serial=self.serial, issuer=self.issuer)


@dataclass(frozen=True, slots=True)
class CertificateRef:
    """A certificate validated earlier, named so that it can be checked again against the trust of the moment
    without its bytes: an access token carries the one that signed its client assertion."""

    fingerprint: str  # lowercase hex SHA-256 of the certificate DER (what the registry lists)
    serial: int  # what a CRL lists
    issuer: str  # lowercase hex SHA-256 of the issuing trust anchor's DER (serials are unique per issuer)


class ChainValidator(Protocol):
    """Validates an X.509 chain (leaf first, DER) against the federation trust anchor and CRL at a time."""

    def validate_signing(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        """For message / token signatures: digitalSignature KeyUsage, the signing EKU. Raises
        CertificateUntrusted or CertificateRevoked."""
        ...

    def validate_client(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        """For TLS client authentication: clientAuth EKU."""
        ...

    def recheck(self, certificate: CertificateRef, member_id: str, at: datetime) -> None:
        """Is a certificate validated earlier for ``member_id`` still good under this trust at ``at``: revocation
        data current, issued by the anchor whose CRL is loaded, not listed in it, still registered for the member?
        Raises Unavailable, CertificateRevoked or CertificateUntrusted."""
        ...
