"""A complete development federation on disk: root CA, CRL, gateway and member certificates, registry, config.

DEV ONLY. The keys are written unencrypted; anyone who can read the output directory can impersonate every
member. A production gateway is given its federation's real trust anchor, CRL and registry (see
``certs/README.md``).

Layout written by :func:`create_federation` (paths in ``gateway.toml`` are relative to its directory)::

    OUT/gateway.toml, OUT/registry.json
    OUT/ca/root-ca.crt, root-ca.key, root-ca.crl
    OUT/gateway/tls-server.crt/.key, signing.crt/.key, checkpoint.key, checkpoint.pub, checkpoint.keys
    OUT/members/<ID>/signing.crt/.key, tls-client.crt/.key
    OUT/members/NL-DOUANE/revoked-signing.crt/.key   (its serial is listed in the CRL)
    OUT/gateway/relay-client.crt/.key                 (only for a peer administration, see below)

One administration per call: :data:`SINGLE` (the default) serves every dev member itself; those of
:func:`peer_administrations` (CN-GACC and NL-DOUANE, and US-CBP for three; each with its own CA) serve their own
members and list the others' in the registry without certificates, so Cedar still knows their kind, country and
programmes. The federation directory that ties peers together is written by ``gateway.app.federationtool.init_peers``.

Rule 1: every certificate is ECDSA P-256 / SHA-256; leaves carry BasicConstraints CA:FALSE (critical),
        KeyUsage (critical), an EKU, a SAN, SKI and AKI; the root is CA:TRUE pathlen:0 (critical) with
        keyCertSign + cRLSign.
Rule 2: member identity is the SAN URI ``urn:cgw:member:<ID>``; the gateway's own signing certificate is
        ``urn:cgw:gateway:<ID>`` so it can never pass as a member.
Rule 3: private keys are PKCS#8 PEM, created with mode 0600 (never briefly world-readable).
Rule 4: time is an argument (``now``); validity: root 10 years, leaves 1 year, CRL nextUpdate 7 days. Every
        ``notBefore`` / ``thisUpdate`` is back-dated by :data:`BACKDATE` to tolerate small clock skew.
Rule 5: a peer administration's gateway TLS client certificate (its identity towards the other gateways) has
        subject CN = the gateway id, SAN ``urn:cgw:gateway:<ID>`` (never a member) and EKU clientAuth, and is
        issued by that administration's own CA only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.core.keyhistory import KeyHistory
from gateway.core.model import Endpoint, Member, MemberKind
from gateway.core.pki import DOCUMENT_SIGNING, MEMBER_URI_PREFIX, fingerprint
from gateway.core.registry import build_registry, registry_to_json
from gateway.infra.files import write_checkpoint_history, write_public, write_secret

ROOT_VALIDITY = timedelta(days=3650)  # 10 years
LEAF_VALIDITY = timedelta(days=365)  # 1 year
CRL_VALIDITY = timedelta(days=7)  # nextUpdate: a week, then the gateway fails closed until a new CRL
BACKDATE = timedelta(minutes=5)  # clock skew tolerance for notBefore / thisUpdate

HOME_ID = "CN-GACC"
ORIGIN = "cgw.cn-gacc.example/ledger"
GATEWAY_URI_PREFIX = "urn:cgw:gateway:"
REVOKED_MEMBER = "NL-DOUANE"
ORGANIZATION = "customs-gateway DEV federation (not for production)"


@dataclass(frozen=True, slots=True)
class DevMember:
    id: str
    name: str
    kind: MemberKind
    country: str
    programs: tuple[str, ...] = ()


MEMBERS: tuple[DevMember, ...] = (
    # Programmes as in policies/programs.json (the gateway refuses a registry that disagrees with it).
    DevMember("CN-GACC", "General Administration of Customs of China", MemberKind.CUSTOMS, "CN", ("SSTL", "CSI")),
    DevMember("NL-DOUANE", "Belastingdienst/Douane Nederland", MemberKind.CUSTOMS, "NL", ("SSTL", "MEGAPORT")),
    DevMember("US-CBP", "U.S. Customs and Border Protection", MemberKind.CUSTOMS, "US", ("CSI", "MEGAPORT")),
    DevMember("CARRIER-COSCO", "COSCO Shipping Lines", MemberKind.CARRIER, "CN"),
    DevMember("PORT-NLRTM", "Port of Rotterdam", MemberKind.PORT, "NL", ("MEGAPORT",)),
    DevMember("AUDIT-GACC", "GACC Security Audit Office", MemberKind.AUDITOR, "CN"),
)


@dataclass(frozen=True, slots=True)
class Administration:
    """What one gateway of the dev setup is: its home member, origin, ports and the members it serves itself
    (they get certificates; every other member of :data:`MEMBERS` is listed in its registry without any)."""

    gateway_id: str
    origin: str
    rest_port: int
    grpc_port: int
    local: frozenset[str]
    ca_name: str = "customs-gateway DEV root CA"
    relay_client: bool = False  # Rule 5: write gateway/relay-client.crt/.key

    @property
    def country(self) -> str:
        return next(m.country for m in MEMBERS if m.id == self.gateway_id)


SINGLE = Administration(HOME_ID, ORIGIN, 8443, 8444, frozenset(m.id for m in MEMBERS))
PEER_LOCAL_MEMBERS = {  # in this order: ``init --peers 2`` writes the first two, ``--peers 3`` all three
    "CN-GACC": frozenset({"CN-GACC", "CARRIER-COSCO", "AUDIT-GACC"}),
    "NL-DOUANE": frozenset({"NL-DOUANE", "PORT-NLRTM"}),
    "US-CBP": frozenset({"US-CBP"}),
}
MAX_PEERS = len(PEER_LOCAL_MEMBERS)
RELAY_CLIENT = "gateway/relay-client"  # .crt / .key beside the gateway's other keys (Rule 5)


def peer_administrations(base_port: int = 8443, count: int = 2) -> tuple[Administration, ...]:
    """CN-GACC and NL-DOUANE (and US-CBP when ``count`` is 3) as administrations of their own; ports
    ``base_port`` .. ``base_port + 2 * count - 1`` (REST, then gRPC, for each in turn)."""
    if not 2 <= count <= MAX_PEERS:
        raise ValueError(f"2..{MAX_PEERS} peer administrations")
    return tuple(
        Administration(
            gateway_id,
            f"cgw.{gateway_id.lower()}.example/ledger",
            base_port + 2 * i,
            base_port + 2 * i + 1,
            local,
            ca_name=f"customs-gateway DEV root CA {gateway_id}",
            relay_client=True,
        )
        for i, (gateway_id, local) in enumerate(list(PEER_LOCAL_MEMBERS.items())[:count])
    )


def gateway_toml(admin: Administration) -> str:
    return GATEWAY_TOML.format(
        member_id=admin.gateway_id, origin=admin.origin, rest_port=admin.rest_port, grpc_port=admin.grpc_port
    )


GATEWAY_TOML = """\
# DEV federation written by gateway.infra.devpki: never use these keys in production.
[gateway]
member_id = "{member_id}"            # the home administration this gateway serves
origin = "{origin}"   # signed-note checkpoint origin line
host = "127.0.0.1"
rest_port = {rest_port}
grpc_port = {grpc_port}                 # gRPC listener (mTLS required); 0 = a free port
data_dir = "data"
[tls]
cert = "gateway/tls-server.crt"
key = "gateway/tls-server.key"
[trust]
anchors = "ca/root-ca.crt"
crl = "ca/root-ca.crl"
registry = "registry.json"
[signing]
cert = "gateway/signing.crt"
key = "gateway/signing.key"
checkpoint_key = "gateway/checkpoint.key"
"""


@dataclass(frozen=True, slots=True)
class Issuer:
    """A CA that can sign: its subject name and private key (the dev root; tests build their own)."""

    name: x509.Name
    key: ec.EllipticCurvePrivateKey


def pem_key(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str, country: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION)]
    if country:
        attrs.insert(0, x509.NameAttribute(NameOID.COUNTRY_NAME, country))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _root(now: datetime, common_name: str) -> tuple[Issuer, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + ROOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(name, key), cert


def issue_leaf(
    issuer: Issuer,
    subject: x509.Name,
    san: list[x509.GeneralName],
    eku: x509.ObjectIdentifier,
    now: datetime,
    *,
    validity: timedelta = LEAF_VALIDITY,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A fresh P-256 key and its leaf certificate (Rule 1) for one purpose (one EKU)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
        .sign(issuer.key, hashes.SHA256())
    )
    return key, cert


def revoked_entry(serial: int, now: datetime) -> x509.RevokedCertificate:
    """A CRL entry for ``serial``, revoked at ``now - BACKDATE`` for keyCompromise."""
    return (
        x509.RevokedCertificateBuilder()
        .serial_number(serial)
        .revocation_date(now - BACKDATE)
        .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
        .build()
    )


def sign_crl(
    issuer: Issuer, entries: list[x509.RevokedCertificate], now: datetime, number: int
) -> x509.CertificateRevocationList:
    """A CRL valid from ``now - BACKDATE`` to ``now + CRL_VALIDITY`` listing ``entries`` as they are."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.name)
        .last_update(now - BACKDATE)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    )
    for entry in entries:
        builder = builder.add_revoked_certificate(entry)
    return builder.sign(issuer.key, hashes.SHA256())


def build_crl(
    issuer: Issuer, revoked: list[x509.Certificate], now: datetime, number: int = 1
) -> x509.CertificateRevocationList:
    """A CRL valid from ``now - BACKDATE`` to ``now + CRL_VALIDITY`` listing ``revoked`` (keyCompromise)."""
    return sign_crl(issuer, [revoked_entry(cert.serial_number, now) for cert in revoked], now, number)


def _write_pair(directory: Path, stem: str, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
    write_secret(directory / f"{stem}.key", pem_key(key))
    write_public(directory / f"{stem}.crt", _pem_cert(cert))


def create_federation(out_dir: Path, *, now: datetime | None = None, administration: Administration = SINGLE) -> Path:
    """Write one administration's dev files under ``out_dir`` (created if missing); return the gateway.toml path.

    Existing files of the layout are overwritten (keys keep mode 0600)."""
    now = datetime.now(UTC) if now is None else now.astimezone(UTC)
    out_dir = Path(out_dir)
    admin = administration
    issuer, root_cert = _root(now, admin.ca_name)
    write_secret(out_dir / "ca" / "root-ca.key", pem_key(issuer.key))
    write_public(out_dir / "ca" / "root-ca.crt", _pem_cert(root_cert))

    gateway_dir = out_dir / "gateway"
    tls_key, tls_cert = issue_leaf(
        issuer,
        _name("customs-gateway localhost", admin.country),
        [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))],
        ExtendedKeyUsageOID.SERVER_AUTH,
        now,
    )
    _write_pair(gateway_dir, "tls-server", tls_key, tls_cert)
    sign_key, sign_cert = issue_leaf(
        issuer,
        _name(f"customs-gateway {admin.gateway_id} signing", admin.country),
        [x509.UniformResourceIdentifier(GATEWAY_URI_PREFIX + admin.gateway_id)],
        DOCUMENT_SIGNING,
        now,
    )
    _write_pair(gateway_dir, "signing", sign_key, sign_cert)
    if admin.relay_client:  # Rule 5
        client_key, client_cert = issue_leaf(
            issuer,
            _name(admin.gateway_id, admin.country),
            [x509.UniformResourceIdentifier(GATEWAY_URI_PREFIX + admin.gateway_id)],
            ExtendedKeyUsageOID.CLIENT_AUTH,
            now,
        )
        _write_pair(out_dir, RELAY_CLIENT, client_key, client_cert)
    checkpoint_key = ed25519.Ed25519PrivateKey.generate()
    write_secret(gateway_dir / "checkpoint.key", pem_key(checkpoint_key))
    write_checkpoint_history(gateway_dir / "checkpoint.key", KeyHistory(admin.origin, (checkpoint_key.public_key(),)))

    members: list[Member] = []
    revoked: list[x509.Certificate] = []
    for dev in MEMBERS:
        if dev.id not in admin.local:  # a foreign member: known by kind, country and programmes, no certificate
            members.append(_member(dev, (), home=False))
            continue
        member_dir = out_dir / "members" / dev.id
        san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(MEMBER_URI_PREFIX + dev.id)]
        subject = _name(dev.id, dev.country)
        certs: list[x509.Certificate] = []
        for stem, eku in (("signing", DOCUMENT_SIGNING), ("tls-client", ExtendedKeyUsageOID.CLIENT_AUTH)):
            key, cert = issue_leaf(issuer, subject, san, eku, now)
            _write_pair(member_dir, stem, key, cert)
            certs.append(cert)
        if dev.id == REVOKED_MEMBER:
            key, cert = issue_leaf(issuer, subject, san, DOCUMENT_SIGNING, now)
            _write_pair(member_dir, "revoked-signing", key, cert)
            certs.append(cert)
            revoked.append(cert)
        members.append(_member(dev, certs, home=dev.id == admin.gateway_id))

    crl = build_crl(issuer, revoked, now)
    write_public(out_dir / "ca" / "root-ca.crl", crl.public_bytes(serialization.Encoding.PEM))
    registry = registry_to_json(build_registry(members))
    write_public(out_dir / "registry.json", (json.dumps(registry, indent=2) + "\n").encode())
    config = out_dir / "gateway.toml"
    write_public(config, gateway_toml(admin).encode())
    return config


def _member(dev: DevMember, certs: Sequence[x509.Certificate], *, home: bool) -> Member:
    return Member(
        id=dev.id,
        name=dev.name,
        kind=dev.kind,
        country=dev.country,
        programs=frozenset(dev.programs),
        cert_fingerprints=frozenset(fingerprint(c.public_bytes(serialization.Encoding.DER)) for c in certs),
        endpoints=(Endpoint(kind="pull", url=""),),
        home=home,
    )
