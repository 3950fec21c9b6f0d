"""Peer gateways as a trust source (core/peertrust.py), with real certificates from real dev CAs: which peer a TLS
client certificate proves, whose signatures it may relay, where a relay may go; and the Cedar ``relay`` request
of a ``Cgw::PeerGateway`` (core/policy.py)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.app.settings import default_policies_dir
from gateway.core.checkpoint import verifier_key_string
from gateway.core.cosignature import Witness
from gateway.core.directory import parse_directory
from gateway.core.errors import CertificateUntrusted, PeerMismatch, PeerUntrusted, RelayRefused
from gateway.core.model import Header, Member, MemberKind, PayloadRef, Registry, Tlp
from gateway.core.payloads import MESSAGE_TYPES
from gateway.core.peertrust import PeerTrust
from gateway.core.pki import DOCUMENT_SIGNING
from gateway.core.policy import Authorizer
from gateway.core.policyrequests import PeerPrincipal, relay_request
from gateway.infra.devpki import Issuer, _root, issue_leaf
from gateway.infra.policyfiles import bundle_programs, load_bundle, load_sample_registry

NOW = datetime.now(UTC)
CA_HOME, ROOT_HOME = _root(NOW, "home CA")
CA_CN, ROOT_CN = _root(NOW, "CN CA")
CA_SHARED, ROOT_SHARED = _root(
    NOW, "shared CA"
)  # two administrations on one CA: their certificates cannot be told apart


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _entry(gateway_id: str, root: x509.Certificate, members: list[str]) -> dict[str, Any]:
    anchor = base64.b64encode(_der(root)).decode()
    origin = f"cgw.{gateway_id.lower()}.example/ledger"
    return {
        "id": gateway_id,
        "administration": f"{gateway_id} customs",
        "country": gateway_id[:2],
        "rest_url": f"https://gw.{gateway_id.lower()}.example:8443",
        "grpc_target": "",
        "tls_anchors": [anchor],
        "signing_anchors": [anchor],
        "origin": origin,
        "checkpoint_keys": [verifier_key_string(origin, Ed25519PrivateKey.generate().public_key())],
        "witness_key": Witness(
            f"cgw.{gateway_id.lower()}.example/witness", Ed25519PrivateKey.generate().public_key()
        ).vkey,
        "members": members,
    }


DIRECTORY = parse_directory(
    {
        "federation": "cgw-test",
        "version": 1,
        "issued_at": "2026-01-01T00:00:00Z",
        "not_after": "2099-01-01T00:00:00Z",
        "gateways": [
            _entry("NL-DOUANE", ROOT_HOME, ["NL-DOUANE", "PORT-NLRTM"]),
            _entry("CN-GACC", ROOT_CN, ["CN-GACC", "CARRIER-COSCO"]),
            _entry("US-CBP", ROOT_SHARED, ["US-CBP"]),
            _entry("CA-CBSA", ROOT_SHARED, ["CA-CBSA"]),
        ],
    }
)
TRUST = PeerTrust(DIRECTORY, "NL-DOUANE")
REGISTRY = Registry(
    version="test",
    members={
        m.id: m
        for m in (
            Member("NL-DOUANE", "NL customs", MemberKind.CUSTOMS, "NL"),
            Member("PORT-NLRTM", "Port of Rotterdam", MemberKind.PORT, "NL"),
            Member("AUDIT-NL", "NL audit", MemberKind.AUDITOR, "NL"),
            Member("CN-GACC", "CN customs", MemberKind.CUSTOMS, "CN"),
            Member("CARRIER-COSCO", "COSCO", MemberKind.CARRIER, "CN"),
        )
    },
)


def _client(issuer: Issuer, common_name: str, uris: list[str], *, validity: timedelta = timedelta(days=30)) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    uris = uris or [f"urn:cgw:gateway:{common_name}"]  # a SAN is required; the gateway URI unless told otherwise
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(u) for u in uris]
    _, cert = issue_leaf(issuer, subject, san, ExtendedKeyUsageOID.CLIENT_AUTH, NOW, validity=validity)
    return _der(cert)


def _header(sender: str, to: tuple[str, ...]) -> Header:
    return Header(
        id="m-1",
        type="manifest.cargo.v1",
        sender=sender,
        to=to,
        tlp=Tlp.AMBER,
        created=NOW,
        expires=NOW + timedelta(hours=1),
        payload=PayloadRef("application/json", "cgw.v1.CargoManifest", "0" * 64, 2),
    )


def test_the_peer_is_the_one_whose_tls_anchor_issued_its_gateway_certificate() -> None:
    cert = _client(CA_CN, "CN-GACC", ["urn:cgw:gateway:CN-GACC"])
    peer = TRUST.identify(cert, NOW)
    assert peer.gateway.id == "CN-GACC"
    assert TRUST.identify(cert, NOW + timedelta(days=1)) == peer  # served from the cache inside its validity
    with pytest.raises(PeerUntrusted):  # and not past it
        TRUST.identify(cert, NOW + timedelta(days=31))


@pytest.mark.parametrize(
    ("issuer", "name", "uris", "error"),
    [
        (CA_HOME, "NL-DOUANE", [], PeerUntrusted),  # this gateway's own CA is no peer's
        (CA_SHARED, "US-CBP", [], PeerUntrusted),  # chains to two peers' anchors: ambiguous
        (CA_CN, "GW-ROGUE", [], PeerMismatch),  # a peer's CA, but not its gateway id
        (CA_CN, "CN-GACC", ["urn:cgw:member:CN-GACC"], PeerMismatch),  # a member certificate named like the gateway
        (CA_CN, "CN-GACC", ["urn:cgw:gateway:US-CBP"], PeerMismatch),  # names another gateway
    ],
    ids=["own-ca", "shared-ca", "wrong-cn", "member-cert", "other-gateway-uri"],
)
def test_certificates_that_are_not_a_peer_gateways(issuer: Issuer, name: str, uris: list[str], error: type) -> None:
    with pytest.raises(error):
        TRUST.identify(_client(issuer, name, uris), NOW)


def test_no_certificate_and_junk_are_untrusted() -> None:
    with pytest.raises(PeerUntrusted):
        TRUST.identify(None, NOW)
    with pytest.raises(PeerUntrusted):
        TRUST.identify(b"\x30\x03junk", NOW)
    with pytest.raises(PeerUntrusted):
        TRUST.identify(b"\x30" * 9000, NOW)  # over the named bound before parsing


def _signing(issuer: Issuer, member: str) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member)])
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(f"urn:cgw:member:{member}")]
    _, cert = issue_leaf(issuer, subject, san, DOCUMENT_SIGNING, NOW)
    return _der(cert)


def test_a_peers_signers_are_the_members_its_signing_anchor_certified() -> None:
    peer = TRUST.identify(_client(CA_CN, "CN-GACC", []), NOW)
    certified = TRUST.signers(peer).validate_signing([_signing(CA_CN, "CARRIER-COSCO")], NOW)
    assert certified.member_id == "CARRIER-COSCO"
    with pytest.raises(CertificateUntrusted, match="signing anchors of CN-GACC"):
        TRUST.signers(peer).validate_signing([_signing(CA_HOME, "CARRIER-COSCO")], NOW)  # our own CA: not CN's
    with pytest.raises(CertificateUntrusted):  # a TLS certificate is not a signing certificate
        TRUST.signers(peer).validate_signing([_client(CA_CN, "CARRIER-COSCO", ["urn:cgw:member:CARRIER-COSCO"])], NOW)


def test_routing_from_the_peers_members_to_members_served_here() -> None:
    peer = TRUST.identify(_client(CA_CN, "CN-GACC", []), NOW)
    here = ("NL-DOUANE", "PORT-NLRTM", "AUDIT-NL")
    assert TRUST.check_route(peer, _header("CARRIER-COSCO", here), REGISTRY) == here
    with pytest.raises(RelayRefused, match="not a member of CN-GACC") as sender:
        TRUST.check_route(peer, _header("NL-DOUANE", ("PORT-NLRTM",)), REGISTRY)
    assert sender.value.field == "from"
    assert not TRUST.served_here("US-CBP", REGISTRY)  # in no registry here
    assert len(TRUST.tls_anchors_pem().split(b"-----BEGIN CERTIFICATE-----")) == 3  # CN's and the shared one


def test_a_message_to_members_of_several_gateways_is_taken_for_the_recipients_served_here() -> None:
    """Rule 4: recipients of the relaying peer (CN-GACC) or of a third gateway (US-CBP, in no registry here) are
    theirs; this gateway takes its own share, in header order."""
    peer = TRUST.identify(_client(CA_CN, "CN-GACC", []), NOW)
    mixed = ("CN-GACC", "PORT-NLRTM", "US-CBP", "NL-DOUANE")
    assert TRUST.check_route(peer, _header("CARRIER-COSCO", mixed), REGISTRY) == ("PORT-NLRTM", "NL-DOUANE")


@pytest.mark.parametrize(
    ("to", "field", "match"),
    [
        (("CN-GACC",), "to", "no recipient is served by this gateway \\(all by CN-GACC\\)"),
        (("CN-GACC", "US-CBP"), "to", "all by CN-GACC, US-CBP"),
        (("NL-DOUANE", "XX-UNKNOWN"), "to[1]", "served by no gateway of the directory"),
        (("AUDIT-XX", "NL-DOUANE"), "to[0]", "served by no gateway"),  # listed nowhere, in no registry
    ],
    ids=["all-the-peers", "all-elsewhere", "unknown-id", "unknown-first"],
)
def test_a_relay_is_refused_when_nothing_is_for_here_or_a_recipient_is_nobodys(
    to: tuple[str, ...], field: str, match: str
) -> None:
    peer = TRUST.identify(_client(CA_CN, "CN-GACC", []), NOW)
    with pytest.raises(RelayRefused, match=match) as refused:
        TRUST.check_route(peer, _header("CARRIER-COSCO", to), REGISTRY)
    assert refused.value.field == field


def test_cedar_relay_is_decided_with_the_peers_directory_facts() -> None:
    bundle = load_bundle(default_policies_dir())
    sample = load_sample_registry(default_policies_dir())  # the registry the shipped programme table agrees with
    authorizer = Authorizer(bundle, sample, MESSAGE_TYPES, programs=bundle_programs(bundle, MESSAGE_TYPES))
    sender, officer = sample.members["CARRIER-COSCO"], sample.members["NL-DOUANE"]
    cn = PeerPrincipal("CN-GACC", "CN customs", "CN", frozenset({"CN-GACC", "CARRIER-COSCO"}))
    request = relay_request(cn, sender, "manifest.cargo.v1", None, "AMBER", recipients=[officer])
    allowed = authorizer.authorize(request, peer=cn)
    assert allowed.allowed and allowed.policy_ids == ("peers-relay-their-members-messages",)
    assert not authorizer.authorize(request).allowed  # no peer entity given: an error, a deny
    without = PeerPrincipal("CN-GACC", "CN customs", "CN", frozenset({"CN-GACC"}))  # a later directory
    denied = authorizer.authorize(request, peer=without)  # the same request, other facts: decided afresh
    assert not denied.allowed and not denied.errors
