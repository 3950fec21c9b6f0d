"""FederationTrust against a real generated dev federation: chains, purposes, revocation, registry, cache."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.errors import CertificateRevoked, CertificateUntrusted, Internal, Unavailable
from gateway.core.model import Registry
from gateway.core.pki import (
    DOCUMENT_SIGNING,
    MAX_CERT_DER_BYTES,
    MAX_CHAIN_LENGTH,
    MEMBER_URI_PREFIX,
    FederationTrust,
    certificate_fingerprint,
    fingerprint,
)
from gateway.core.registry import build_registry
from gateway.infra.devpki import MEMBERS, Issuer, build_crl, create_federation, issue_leaf
from gateway.infra.files import load_certificates, load_crl, load_private_key, load_registry

NOW = datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
MEMBER_IDS = [m.id for m in MEMBERS]


@dataclasses.dataclass(frozen=True)
class Fed:
    root_dir: Path
    root: x509.Certificate
    issuer: Issuer
    crl: x509.CertificateRevocationList
    registry: Registry

    def chain(self, relative: str, *, with_root: bool = False) -> list[bytes]:
        chain = [c.public_bytes(Encoding.DER) for c in load_certificates(self.root_dir / relative)]
        return [*chain, self.root.public_bytes(Encoding.DER)] if with_root else chain

    def trust(
        self, *, crl: x509.CertificateRevocationList | None = None, registry: Registry | None = None
    ) -> FederationTrust:
        # a CRL has __len__ (its entries): an empty one is falsy, so compare with None explicitly
        return FederationTrust(
            [self.root],
            self.crl if crl is None else crl,
            self.registry if registry is None else registry,
        )


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Fed:
    out = tmp_path_factory.mktemp("federation")
    create_federation(out, now=NOW)
    (root,) = load_certificates(out / "ca" / "root-ca.crt")
    key = load_private_key(out / "ca" / "root-ca.key")
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return Fed(
        root_dir=out,
        root=root,
        issuer=Issuer(root.subject, key),
        crl=load_crl(out / "ca" / "root-ca.crl"),
        registry=load_registry(out / "registry.json"),
    )


def _subject(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _member_uri(member_id: str) -> list[x509.GeneralName]:
    return [x509.UniformResourceIdentifier(MEMBER_URI_PREFIX + member_id)]


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _register(registry: Registry, member_id: str, cert: x509.Certificate, **changes: object) -> Registry:
    member = registry.members[member_id]
    fps = member.cert_fingerprints | {certificate_fingerprint(cert)}
    updated = dataclasses.replace(member, cert_fingerprints=fps, **changes)  # type: ignore[arg-type]
    return build_registry([*(m for m in registry.members.values() if m.id != member_id), updated])


# -- every member, every purpose -------------------------------------------------------------------


@pytest.mark.parametrize("member_id", MEMBER_IDS)
def test_member_certificates_validate_for_their_purpose(fed: Fed, member_id: str) -> None:
    trust = fed.trust()
    signing = trust.validate_signing(fed.chain(f"members/{member_id}/signing.crt"), NOW)
    client = trust.validate_client(fed.chain(f"members/{member_id}/tls-client.crt"), NOW)
    assert signing.member_id == client.member_id == member_id
    leaf = load_certificates(fed.root_dir / f"members/{member_id}/signing.crt")[0]
    assert signing.fingerprint == fingerprint(_der(leaf)) == hashlib.sha256(_der(leaf)).hexdigest()
    assert signing.public_key == leaf.public_key()
    assert signing.not_after == leaf.not_valid_after_utc


@pytest.mark.parametrize("member_id", MEMBER_IDS)
def test_member_certificates_fail_for_the_wrong_purpose(fed: Fed, member_id: str) -> None:
    trust = fed.trust()
    with pytest.raises(CertificateUntrusted) as signing_as_client:
        trust.validate_client(fed.chain(f"members/{member_id}/signing.crt"), NOW)
    with pytest.raises(CertificateUntrusted) as client_as_signing:
        trust.validate_signing(fed.chain(f"members/{member_id}/tls-client.crt"), NOW)
    assert signing_as_client.value.code == client_as_signing.value.code == "CERT_UNTRUSTED"


def test_chain_that_carries_the_root_validates(fed: Fed) -> None:
    key = fed.trust().validate_signing(fed.chain("members/US-CBP/signing.crt", with_root=True), NOW)
    assert key.member_id == "US-CBP"


@pytest.mark.parametrize("relative", ["gateway/signing.crt", "gateway/tls-server.crt"])
def test_gateway_certificates_are_not_member_certificates(fed: Fed, relative: str) -> None:
    trust = fed.trust()
    for validate in (trust.validate_signing, trust.validate_client):
        with pytest.raises(CertificateUntrusted):
            validate(fed.chain(relative), NOW)


# -- revocation and the CRL ------------------------------------------------------------------------


def test_revoked_certificate_is_rejected(fed: Fed) -> None:
    with pytest.raises(CertificateRevoked) as err:
        fed.trust().validate_signing(fed.chain("members/NL-DOUANE/revoked-signing.crt"), NOW)
    assert err.value.code == "CERT_REVOKED"


@pytest.mark.parametrize("offset", [timedelta(days=7, seconds=1), timedelta(days=30), -timedelta(hours=1)])
def test_crl_outside_its_window_fails_closed(fed: Fed, offset: timedelta) -> None:
    with pytest.raises(Unavailable) as err:
        fed.trust().validate_signing(fed.chain("members/NL-DOUANE/signing.crt"), NOW + offset)
    assert err.value.code == "UNAVAILABLE"


def test_crl_signed_by_a_foreign_key_is_refused(fed: Fed) -> None:
    forged = Issuer(fed.root.subject, ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(Unavailable, match="not signed by any trust anchor"):
        fed.trust(crl=build_crl(forged, [], NOW))


def test_delta_crl_is_refused(fed: Fed) -> None:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(fed.root.subject)
        .last_update(NOW - timedelta(minutes=1))
        .next_update(NOW + timedelta(days=1))
        .add_extension(x509.DeltaCRLIndicator(1), critical=True)
        .sign(fed.issuer.key, hashes.SHA256())
    )
    with pytest.raises(Unavailable, match="delta"):
        fed.trust(crl=crl)


def test_a_new_crl_revokes_a_previously_good_certificate(fed: Fed) -> None:
    (good,) = load_certificates(fed.root_dir / "members/US-CBP/signing.crt")
    later = NOW + timedelta(days=1)
    trust = fed.trust(crl=build_crl(fed.issuer, [good], later, number=2))
    with pytest.raises(CertificateRevoked):
        trust.validate_signing([_der(good)], later)


def test_recheck_judges_an_earlier_certificate_by_its_reference_against_the_snapshot(fed: Fed) -> None:
    """What an access token's use asks of the trust of the moment (``ChainValidator.recheck``, used by
    ``gateway.exchange.access`` at every use of a token)."""
    (good,) = load_certificates(fed.root_dir / "members/US-CBP/signing.crt")
    ref = fed.trust().validate_signing([_der(good)], NOW).ref
    assert ref.serial == good.serial_number and ref.issuer == certificate_fingerprint(fed.root)
    fed.trust().recheck(ref, "US-CBP", NOW)  # still good: no error
    later = NOW + timedelta(days=1)
    revoking = fed.trust(crl=build_crl(fed.issuer, [good], later, number=2))
    with pytest.raises(CertificateRevoked):
        revoking.recheck(ref, "US-CBP", later)
    with pytest.raises(Unavailable, match="not current"):  # a stale CRL fails closed here too
        fed.trust().recheck(ref, "US-CBP", NOW + timedelta(days=30))
    with pytest.raises(CertificateUntrusted, match="not registered"):
        fed.trust().recheck(ref, "NL-DOUANE", NOW)
    with pytest.raises(CertificateUntrusted, match="anchor"):
        fed.trust().recheck(dataclasses.replace(ref, issuer="0" * 64), "US-CBP", NOW)
    suspended = build_registry(
        [dataclasses.replace(m, suspended=m.id == "US-CBP") for m in fed.registry.members.values()]
    )
    with pytest.raises(CertificateUntrusted, match="suspended"):
        fed.trust(registry=suspended).recheck(ref, "US-CBP", NOW)


# -- chains that are not the federation's ----------------------------------------------------------


def test_certificate_from_a_foreign_ca_is_untrusted(fed: Fed) -> None:
    # A self-made CA with the very same name as the federation root, issuing a perfect-looking member cert
    # that is even listed in the registry: only the chain check can stop it.
    foreign = Issuer(fed.root.subject, ec.generate_private_key(ec.SECP256R1()))
    _, cert = issue_leaf(foreign, _subject("NL-DOUANE"), _member_uri("NL-DOUANE"), DOCUMENT_SIGNING, NOW)
    trust = fed.trust(registry=_register(fed.registry, "NL-DOUANE", cert))
    with pytest.raises(CertificateUntrusted) as err:
        trust.validate_signing([_der(cert)], NOW)
    assert err.value.code == "CERT_UNTRUSTED"


def test_expired_certificate_is_untrusted(fed: Fed) -> None:
    later = NOW + timedelta(days=400)  # member leaves live 365 days
    trust = fed.trust(crl=build_crl(fed.issuer, [], later, number=2))
    with pytest.raises(CertificateUntrusted, match="validation failed"):
        trust.validate_signing(fed.chain("members/NL-DOUANE/signing.crt"), later)


def test_certificate_not_in_the_registry_is_untrusted(fed: Fed) -> None:
    _, cert = issue_leaf(fed.issuer, _subject("NL-DOUANE"), _member_uri("NL-DOUANE"), DOCUMENT_SIGNING, NOW)
    with pytest.raises(CertificateUntrusted, match="not registered"):
        fed.trust().validate_signing([_der(cert)], NOW)


def test_unknown_member_is_untrusted(fed: Fed) -> None:
    _, cert = issue_leaf(fed.issuer, _subject("DE-ZOLL"), _member_uri("DE-ZOLL"), DOCUMENT_SIGNING, NOW)
    with pytest.raises(CertificateUntrusted, match="not a member"):
        fed.trust().validate_signing([_der(cert)], NOW)


def test_suspended_member_is_untrusted(fed: Fed) -> None:
    registry = _register(
        fed.registry,
        "US-CBP",
        load_certificates(fed.root_dir / "members/US-CBP/signing.crt")[0],
        suspended=True,
    )
    with pytest.raises(CertificateUntrusted, match="suspended"):
        fed.trust(registry=registry).validate_signing(fed.chain("members/US-CBP/signing.crt"), NOW)


@pytest.mark.parametrize(
    "san",
    [
        [],
        [x509.UniformResourceIdentifier(MEMBER_URI_PREFIX + "NL-DOUANE"), *_member_uri("US-CBP")],
        _member_uri("nl-douane"),
    ],
    ids=["no-member-uri", "two-member-uris", "malformed-id"],
)
def test_leaf_identity_must_be_one_well_formed_member_uri(fed: Fed, san: list[x509.GeneralName]) -> None:
    names = san or [x509.DNSName("nl-douane.example")]
    _, cert = issue_leaf(fed.issuer, _subject("NL-DOUANE"), names, DOCUMENT_SIGNING, NOW)
    with pytest.raises(CertificateUntrusted):
        fed.trust(registry=_register(fed.registry, "NL-DOUANE", cert)).validate_signing([_der(cert)], NOW)


def test_leaf_without_digital_signature_key_usage_is_untrusted(fed: Fed) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(False, False, False, False, True, False, False, False, False)  # keyAgreement only
    cert = (
        x509.CertificateBuilder()
        .subject_name(_subject("NL-DOUANE"))
        .issuer_name(fed.root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING]), critical=False)
        .add_extension(x509.SubjectAlternativeName(_member_uri("NL-DOUANE")), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(fed.issuer.key.public_key()), False)
        .sign(fed.issuer.key, hashes.SHA256())
    )
    trust = fed.trust(registry=_register(fed.registry, "NL-DOUANE", cert))
    with pytest.raises(CertificateUntrusted, match="digitalSignature"):
        trust.validate_signing([_der(cert)], NOW)


# -- bounds on untrusted input ---------------------------------------------------------------------


def test_input_bounds(fed: Fed) -> None:
    trust = fed.trust()
    good = fed.chain("members/US-CBP/signing.crt", with_root=True)
    with pytest.raises(CertificateUntrusted, match="empty"):
        trust.validate_signing([], NOW)
    with pytest.raises(CertificateUntrusted, match="longer than"):
        trust.validate_signing(good + [good[-1]] * MAX_CHAIN_LENGTH, NOW)
    with pytest.raises(CertificateUntrusted, match="larger than"):
        trust.validate_signing([good[0] + b"\0" * MAX_CERT_DER_BYTES], NOW)
    with pytest.raises(Internal):
        trust.validate_signing(good, NOW.replace(tzinfo=None))


@settings(max_examples=60, deadline=None)
@given(junk=st.lists(st.binary(max_size=1200), min_size=1, max_size=3))
def test_arbitrary_bytes_are_only_ever_untrusted(fed: Fed, junk: list[bytes]) -> None:
    with pytest.raises(CertificateUntrusted):
        fed.trust().validate_signing(junk, NOW)


# -- cache and version -----------------------------------------------------------------------------


def test_cache_hit_skips_validation_and_expires_with_the_certificate(fed: Fed) -> None:
    _, cert = issue_leaf(
        fed.issuer,
        _subject("PORT-NLRTM"),
        _member_uri("PORT-NLRTM"),
        ExtendedKeyUsageOID.CLIENT_AUTH,
        NOW,
        validity=timedelta(days=1),
    )
    trust = fed.trust(registry=_register(fed.registry, "PORT-NLRTM", cert))
    first = trust.validate_client([_der(cert)], NOW)
    assert trust.validations == 1
    again = trust.validate_client([_der(cert)], NOW + timedelta(hours=23))
    assert again is first
    assert trust.validations == 1
    with pytest.raises(CertificateUntrusted):  # the purpose is part of the key: no cached shortcut
        trust.validate_signing([_der(cert)], NOW)
    assert trust.validations == 2
    with pytest.raises(CertificateUntrusted, match="validation failed"):
        trust.validate_client([_der(cert)], cert.not_valid_after_utc + timedelta(seconds=1))
    assert trust.validations == 3


def test_cache_does_not_outlive_the_crl(fed: Fed) -> None:
    trust = fed.trust()
    chain = fed.chain("members/CN-GACC/signing.crt")
    trust.validate_signing(chain, NOW)
    with pytest.raises(Unavailable):
        trust.validate_signing(chain, NOW + timedelta(days=8))


def test_failures_are_not_cached(fed: Fed) -> None:
    trust = fed.trust()
    for expected in (1, 2):
        with pytest.raises(CertificateRevoked):
            trust.validate_signing(fed.chain("members/NL-DOUANE/revoked-signing.crt"), NOW)
        assert trust.validations == expected


def test_version_follows_crl_and_registry(fed: Fed) -> None:
    base = fed.trust()
    assert fed.trust().version == base.version
    assert fed.trust(crl=build_crl(fed.issuer, [], NOW, number=2)).version != base.version
    smaller = build_registry(m for m in fed.registry.members.values() if m.id != "AUDIT-GACC")
    assert fed.trust(registry=smaller).version != base.version
    assert isinstance(fed.registry.members, MappingProxyType)
