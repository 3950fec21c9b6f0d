"""Federation PKI: is this certificate chain a member's, for this purpose, at this time?

:class:`FederationTrust` implements :class:`~gateway.core.model.ChainValidator` over one trust snapshot
(anchors + CRL + registry). A new CRL or registry means a new instance with a new :attr:`version`.

Rule 1: chain building and path validation go through ``cryptography.x509.verification`` (RFC 5280 / CABF
        profile, signature checks, validity, BasicConstraints, name constraints); this module never walks a
        chain by hand. The purpose is an extension policy on the leaf: ``signing`` needs KeyUsage
        digitalSignature and the EKU id-kp-documentSigning (RFC 9336); ``client`` needs digitalSignature and
        id-kp-clientAuth.
Rule 2: revocation fails closed. The CRL must be signed by a trust anchor (checked once, at construction) and
        be complete (no delta, no partitioned scope). At validation time ``at`` must fall inside
        [thisUpdate, nextUpdate) or the answer is ``Unavailable``. The chain must end at the CRL's anchor and
        every certificate below it must be issued by that anchor directly (a certificate issued by an
        intermediate has no revocation data here: ``CertificateUntrusted``) and not be listed in the CRL
        (``CertificateRevoked``).
Rule 3: identity is the leaf's single SAN URI ``urn:cgw:member:<ID>``; the leaf's SHA-256 fingerprint must be
        listed for that member in the registry and the member must not be suspended.
Rule 4: untrusted input is bounded before parsing (:data:`MAX_CHAIN_LENGTH`, :data:`MAX_CERT_DER_BYTES`).
Rule 5: a successful result is cached by (leaf fingerprint, purpose) together with the window in which it
        holds (intersection of every chain certificate's validity and the CRL window); it is served only
        while ``at`` is inside that window. The cache is bounded (:data:`MAX_CACHE_ENTRIES`, oldest out).
Rule 6: time is an argument and must be timezone-aware; this module has no clock.
Rule 7: :meth:`FederationTrust.recheck` judges a certificate validated earlier (under this or an older
        snapshot) by its :class:`~gateway.core.model.CertificateRef` alone: the CRL must be current (Rule 2),
        the certificate issued by the anchor whose CRL is loaded, its serial not listed, and its fingerprint
        still registered for a member that is not suspended. Two lookups: an access token is rechecked at
        every use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from gateway.core.errors import CertificateRevoked, CertificateUntrusted, Internal, Unavailable
from gateway.core.model import CertificateRef, CertifiedKey, Registry
from gateway.core.registry import MAX_MEMBER_ID_LENGTH, MEMBER_ID

MAX_CHAIN_LENGTH = 3  # leaf + anchor (x5c may carry it) + one spare; the federation issues leaves from the root
MAX_CERT_DER_BYTES = 8 * 1024  # one certificate; ours are ~700 bytes, RSA-4096 with long names ~2.5 KiB
MAX_CACHE_ENTRIES = 10_000  # two certificates per member and MAX_MEMBERS members, with room for rollovers

DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # id-kp-documentSigning, RFC 9336
MEMBER_URI_PREFIX = "urn:cgw:member:"

Purpose = Literal["signing", "client"]
_EKU_FOR: dict[Purpose, x509.ObjectIdentifier] = {
    "signing": DOCUMENT_SIGNING,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
}


def fingerprint(der: bytes) -> str:
    """Lowercase hex SHA-256 of a certificate's DER: the id the registry lists."""
    return hashlib.sha256(der).hexdigest()


def certificate_fingerprint(cert: x509.Certificate) -> str:
    return fingerprint(cert.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True, slots=True)
class _Cached:
    key: CertifiedKey
    valid_from: datetime
    # exclusive bound: the earliest notAfter in the chain or the CRL's nextUpdate. RFC 5280 makes notAfter
    # inclusive, so the final second is re-validated rather than served from the cache: conservative.
    valid_until: datetime


def _require_eku(
    wanted: x509.ObjectIdentifier,
) -> Callable[[Policy, x509.Certificate, x509.ExtendedKeyUsage], None]:
    def check(_policy: Policy, _cert: x509.Certificate, eku: x509.ExtendedKeyUsage) -> None:
        if wanted not in eku:
            raise ValueError(f"extended key usage {wanted.dotted_string} missing")

    return check


def _require_digital_signature(_policy: Policy, _cert: x509.Certificate, usage: x509.KeyUsage) -> None:
    if not usage.digital_signature:
        raise ValueError("key usage digitalSignature missing")


def policy_builder(store: Store, purpose: Purpose) -> PolicyBuilder:
    ee_policy = (
        ExtensionPolicy.webpki_defaults_ee()
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _require_eku(_EKU_FOR[purpose]))
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _require_digital_signature)
    )
    return (
        PolicyBuilder()
        .store(store)
        .max_chain_depth(MAX_CHAIN_LENGTH - 1)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
    )


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise Internal("validation time must be timezone-aware")
    return at.astimezone(UTC)


def member_id_of(leaf: x509.Certificate) -> str:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise CertificateUntrusted("leaf has no subjectAltName") from None
    uris = [u for u in san.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith(MEMBER_URI_PREFIX)]
    if len(uris) != 1:
        raise CertificateUntrusted(f"leaf must carry exactly one {MEMBER_URI_PREFIX}<ID> URI, has {len(uris)}")
    member_id = uris[0][len(MEMBER_URI_PREFIX) :]
    if len(member_id) > MAX_MEMBER_ID_LENGTH or not MEMBER_ID.fullmatch(member_id):
        raise CertificateUntrusted("malformed member id in the SAN URI")
    return member_id


class FederationTrust:
    """The federation's trust snapshot: anchors, their CRL and the member registry (a ChainValidator)."""

    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        crl: x509.CertificateRevocationList,
        registry: Registry,
    ) -> None:
        if not anchors:
            raise Unavailable("no trust anchor configured")
        self._anchors = tuple(anchors)
        self._crl = crl
        self._crl_issuer = self._check_crl(crl, self._anchors)
        self._crl_issuer_fp = certificate_fingerprint(self._crl_issuer)
        self._revoked = frozenset(entry.serial_number for entry in crl)
        self._crl_from = crl.last_update_utc
        next_update = crl.next_update_utc
        if next_update is None:
            raise Unavailable("the CRL has no nextUpdate: its freshness cannot be judged")
        self._crl_until = next_update
        self._registry = registry
        store = Store(list(self._anchors))
        self._builders = {purpose: policy_builder(store, purpose) for purpose in _EKU_FOR}
        self._cache: dict[tuple[str, Purpose], _Cached] = {}
        self.validations = 0  # full (uncached) validations attempted: observable cost, used by tests/metrics
        digest = hashlib.sha256(b"cgw-federation-trust-v1\n")
        for fp in sorted(certificate_fingerprint(a) for a in self._anchors):
            digest.update(f"anchor {fp}\n".encode())
        crl_fp = hashlib.sha256(crl.public_bytes(serialization.Encoding.DER)).hexdigest()
        digest.update(f"crl {crl_fp}\nregistry {registry.version}\n".encode())
        self.version: str = digest.hexdigest()

    @staticmethod
    def _check_crl(crl: x509.CertificateRevocationList, anchors: Sequence[x509.Certificate]) -> x509.Certificate:
        """The anchor that signed this complete CRL (Rule 2), or ``Unavailable``."""
        for ext in crl.extensions:
            if isinstance(ext.value, x509.DeltaCRLIndicator):
                raise Unavailable("a delta CRL is not a complete revocation list")
            if isinstance(ext.value, x509.IssuingDistributionPoint):
                idp = ext.value
                if idp.indirect_crl or idp.only_some_reasons or idp.only_contains_attribute_certs:
                    raise Unavailable("the CRL has a partial scope (indirect or reason-partitioned)")
                if idp.only_contains_ca_certs or idp.only_contains_user_certs:
                    raise Unavailable("the CRL covers only CA or only user certificates")
            elif ext.critical and not isinstance(ext.value, x509.CRLNumber | x509.AuthorityKeyIdentifier):
                raise Unavailable(f"the CRL has an unknown critical extension {ext.oid.dotted_string}")
        for anchor in anchors:
            if anchor.subject != crl.issuer:
                continue
            key = anchor.public_key()
            if isinstance(
                key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
            ) and crl.is_signature_valid(key):
                return anchor
        raise Unavailable("the CRL is not signed by any trust anchor")

    @property
    def registry(self) -> Registry:
        return self._registry

    @property
    def crl_window(self) -> tuple[datetime, datetime]:
        """The CRL's [thisUpdate, nextUpdate): outside it this snapshot fails closed."""
        return self._crl_from, self._crl_until

    @property
    def crl_issuer(self) -> str:
        """Fingerprint of the anchor that signed the CRL (and so issued every certificate this snapshot accepts)."""
        return self._crl_issuer_fp

    @property
    def crl_number(self) -> int | None:
        try:
            return self._crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        except x509.ExtensionNotFound:
            return None

    @property
    def revoked_count(self) -> int:
        return len(self._revoked)

    def recheck(self, certificate: CertificateRef, member_id: str, at: datetime) -> None:
        """Rule 7: is a certificate validated earlier still good under this snapshot at ``at``?"""
        self._require_current(_utc(at))
        if certificate.issuer != self._crl_issuer_fp:
            raise CertificateUntrusted("the certificate was issued under an anchor whose CRL is not loaded")
        if certificate.serial in self._revoked:
            raise CertificateRevoked(f"serial {certificate.serial:x} is listed in the CRL")
        member = self._registry.get(member_id)
        if member is None or certificate.fingerprint not in member.cert_fingerprints:
            raise CertificateUntrusted(f"certificate {certificate.fingerprint} is not registered for {member_id}")
        if member.suspended:
            raise CertificateUntrusted(f"{member_id} is suspended")

    def _require_current(self, at: datetime) -> None:
        if not self._crl_from <= at < self._crl_until:
            raise Unavailable(
                f"CRL not current at {at.isoformat()} (valid {self._crl_from.isoformat()} .. "
                f"{self._crl_until.isoformat()}): failing closed"
            )

    def certified(self) -> list[tuple[Purpose, CertifiedKey]]:
        """The member certificates validated so far and still cached (Rule 5), with their purpose."""
        return [(purpose, entry.key) for (_, purpose), entry in self._cache.items()]

    def validate_signing(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        """A member's message/token signing certificate (documentSigning EKU) at ``at``."""
        return self._validate(chain, at, "signing")

    def validate_client(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        """A member's TLS client certificate (clientAuth EKU) at ``at``."""
        return self._validate(chain, at, "client")

    def _validate(self, unverified_chain: Sequence[bytes], at: datetime, purpose: Purpose) -> CertifiedKey:
        at = _utc(at)
        self._require_current(at)
        if not unverified_chain:
            raise CertificateUntrusted("empty certificate chain")
        if len(unverified_chain) > MAX_CHAIN_LENGTH:
            raise CertificateUntrusted(f"chain longer than {MAX_CHAIN_LENGTH} certificates")
        for i, der in enumerate(unverified_chain):
            if len(der) > MAX_CERT_DER_BYTES:
                raise CertificateUntrusted(f"certificate {i} larger than {MAX_CERT_DER_BYTES} bytes")
        leaf_fp = fingerprint(unverified_chain[0])
        cached = self._cache.get((leaf_fp, purpose))
        if cached is not None and cached.valid_from <= at < cached.valid_until:
            return cached.key
        self.validations += 1
        entry = self._validate_uncached(unverified_chain, at, purpose, leaf_fp)
        self._cache.pop((leaf_fp, purpose), None)
        if len(self._cache) >= MAX_CACHE_ENTRIES:
            del self._cache[next(iter(self._cache))]
        self._cache[(leaf_fp, purpose)] = entry
        return entry.key

    def _validate_uncached(
        self, unverified_chain: Sequence[bytes], at: datetime, purpose: Purpose, leaf_fp: str
    ) -> _Cached:
        try:
            certs = [x509.load_der_x509_certificate(der) for der in unverified_chain]
        except ValueError as exc:
            raise CertificateUntrusted(f"malformed certificate: {exc}") from None
        verifier = self._builders[purpose].time(at).build_client_verifier()
        try:
            verified = verifier.verify(certs[0], certs[1:]).chain
        except VerificationError as exc:
            raise CertificateUntrusted(f"chain validation failed ({purpose}): {exc}") from None
        # verified = [leaf, intermediates..., anchor]. Only the anchor that signed the CRL has revocation
        # data, so every certificate below it must be issued by it directly (an intermediate needs a CRL).
        anchor = verified[-1]
        if len(verified) < 2 or anchor != self._crl_issuer:
            raise CertificateUntrusted("the chain does not end at the anchor whose CRL is loaded")
        for cert in verified[:-1]:
            if cert.issuer != anchor.subject:
                raise CertificateUntrusted("no revocation data for a certificate issued by an intermediate CA")
            if cert.serial_number in self._revoked:
                raise CertificateRevoked(f"serial {cert.serial_number:x} is listed in the CRL")
        leaf = verified[0]
        member_id = member_id_of(leaf)
        member = self._registry.get(member_id)
        if member is None:
            raise CertificateUntrusted(f"{member_id} is not a member of the federation")
        if leaf_fp not in member.cert_fingerprints:
            raise CertificateUntrusted(f"certificate {leaf_fp} is not registered for {member_id}")
        if member.suspended:
            raise CertificateUntrusted(f"{member_id} is suspended")
        valid_from = max([self._crl_from, *(c.not_valid_before_utc for c in verified)])
        valid_until = min([self._crl_until, *(c.not_valid_after_utc for c in verified)])
        return _Cached(
            key=CertifiedKey(
                member_id=member_id,
                fingerprint=leaf_fp,
                public_key=leaf.public_key(),
                not_after=leaf.not_valid_after_utc,
                serial=leaf.serial_number,
                issuer=self._crl_issuer_fp,
            ),
            valid_from=valid_from,
            valid_until=valid_until,
        )
