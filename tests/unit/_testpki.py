"""A tiny, real test PKI for the signing / envelope / token tests (no mocks of verification).

* :class:`TestCA` makes a P-256 root and issues member certificates (SAN ``URI:urn:cgw:member:<ID>``,
  KeyUsage digitalSignature, EKU id-kp-documentSigning or id-kp-clientAuth) for ES256, EdDSA or PS256 keys.
* :class:`TestValidator` implements ``ChainValidator`` with ``cryptography.x509.verification``: path building,
  signatures, validity, BasicConstraints and the EKU/KeyUsage of the purpose, plus a revoked-serial set.

It is deliberately small and independent of ``gateway.core.pki`` (built in parallel by another engineer).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from gateway.core.errors import CertificateRevoked, CertificateUntrusted
from gateway.core.model import CertificateRef, CertifiedKey, Member, MemberKind, Registry
from gateway.core.signing import PrivateKey

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning, RFC 9336
MEMBER_PREFIX = "urn:cgw:member:"


@functools.cache
def rsa_key(slot: int = 0) -> rsa.RSAPrivateKey:
    """RSA-2048 generation is slow (~0.1 s): one key per slot for the whole test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def new_key(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if alg == "PS256":
        return rsa_key()
    raise ValueError(alg)


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True)
class Identity:
    member_id: str
    key: PrivateKey
    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # leaf first, without the root

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert)

    @property
    def chain_der(self) -> list[bytes]:
        return [c.public_bytes(serialization.Encoding.DER) for c in self.chain]


def _ku(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


class TestCA:
    """A root CA (P-256) that issues member leaf certificates."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "CGW Test Federation Root") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=365))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ku(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        member_id: str,
        alg: str = "ES256",
        *,
        eku: ObjectIdentifier = DOCUMENT_SIGNING,
        not_before: datetime = NOW - timedelta(days=30),
        not_after: datetime = NOW + timedelta(days=365),
        key: PrivateKey | None = None,
    ) -> Identity:
        key = key if key is not None else new_key(alg)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_id)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(MEMBER_PREFIX + member_id)]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_ku(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Identity(member_id, key, cert, (cert,))

    def crl(self, revoked: Sequence[int] = ()) -> x509.CertificateRevocationList:
        """A complete CRL valid around NOW (for interop tests with ``gateway.core.pki.FederationTrust``)."""
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(NOW - timedelta(days=1))
            .next_update(NOW + timedelta(days=7))
            .add_extension(x509.CRLNumber(1), critical=False)
        )
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW - timedelta(hours=1)).build()
            )
        return builder.sign(self.key, hashes.SHA256())


def _eku_check(wanted: ObjectIdentifier) -> Callable[[Policy, x509.Certificate, x509.ExtendedKeyUsage], None]:
    def check(_policy: Policy, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
        if wanted not in eku:
            raise ValueError(f"EKU {wanted.dotted_string} required")

    return check


def _ku_check(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    if not usage.digital_signature:
        raise ValueError("KeyUsage digitalSignature required")


@dataclass
class TestValidator:
    """``ChainValidator`` over one root with ``cryptography.x509.verification`` (real path validation)."""

    __test__ = False

    anchor: x509.Certificate
    revoked: set[int] = field(default_factory=set)
    calls: int = 0

    def _validate(self, chain: Sequence[bytes], at: datetime, eku: ObjectIdentifier) -> CertifiedKey:
        self.calls += 1
        try:
            certs = [x509.load_der_x509_certificate(der) for der in chain]
        except ValueError as exc:
            raise CertificateUntrusted(f"malformed certificate: {exc}") from None
        ee = (
            ExtensionPolicy.permit_all()
            .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _eku_check(eku))
            .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _ku_check)
        )
        verifier = (
            PolicyBuilder()
            .store(Store([self.anchor]))
            .time(at)
            .max_chain_depth(3)
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(certs[0], certs[1:])
        except VerificationError as exc:
            raise CertificateUntrusted(str(exc)) from None
        leaf = verified.chain[0]
        if leaf.serial_number in self.revoked:
            raise CertificateRevoked(f"serial {leaf.serial_number:x}")
        uris = [
            u
            for u in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.UniformResourceIdentifier
            )
            if u.startswith(MEMBER_PREFIX)
        ]
        if len(uris) != 1:
            raise CertificateUntrusted("exactly one member URI required")
        return CertifiedKey(
            member_id=uris[0][len(MEMBER_PREFIX) :],
            fingerprint=fingerprint(leaf),
            public_key=leaf.public_key(),
            not_after=leaf.not_valid_after_utc,
            serial=leaf.serial_number,
            issuer=fingerprint(self.anchor),
        )

    def validate_signing(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        return self._validate(chain, at, DOCUMENT_SIGNING)

    def validate_client(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        return self._validate(chain, at, ExtendedKeyUsageOID.CLIENT_AUTH)

    def recheck(self, certificate: CertificateRef, member_id: str, at: datetime) -> None:
        if certificate.issuer != fingerprint(self.anchor):
            raise CertificateUntrusted("issued under another anchor")
        if certificate.serial in self.revoked:
            raise CertificateRevoked(f"serial {certificate.serial:x}")


SAMPLE_MEMBERS: tuple[tuple[str, MemberKind, str, frozenset[str], bool], ...] = (
    ("CN-GACC", MemberKind.CUSTOMS, "CN", frozenset(), True),
    ("NL-DOUANE", MemberKind.CUSTOMS, "NL", frozenset({"SSTL"}), False),
    ("US-CBP", MemberKind.CUSTOMS, "US", frozenset({"CSI"}), False),
    ("CARRIER-COSCO", MemberKind.CARRIER, "CN", frozenset(), False),
    ("PORT-NLRTM", MemberKind.PORT, "NL", frozenset({"MEGAPORT"}), False),
    ("AUDIT-GACC", MemberKind.AUDITOR, "CN", frozenset(), False),
)


def make_registry(
    identities: Sequence[Identity], *, suspended: frozenset[str] = frozenset(), version: str = "test-1"
) -> Registry:
    """The sample federation; each identity's certificate fingerprint is registered for its member."""
    fps: dict[str, set[str]] = {}
    for ident in identities:
        fps.setdefault(ident.member_id, set()).add(ident.fingerprint)
    members = {
        mid: Member(
            id=mid,
            name=mid,
            kind=kind,
            country=country,
            programs=programs,
            cert_fingerprints=frozenset(fps.get(mid, set())),
            suspended=mid in suspended,
            home=home,
        )
        for mid, kind, country, programs, home in SAMPLE_MEMBERS
    }
    return Registry(version=version, members=members)
