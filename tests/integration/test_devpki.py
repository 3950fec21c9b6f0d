"""The generated dev federation on disk: layout, modes, certificate profiles, OpenSSL's verdict, file loaders."""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from gateway.core.errors import Unavailable
from gateway.core.model import MemberKind
from gateway.core.pki import DOCUMENT_SIGNING, certificate_fingerprint
from gateway.infra.devpki import MEMBERS, create_federation
from gateway.infra.files import (
    load_certificates,
    load_crl,
    load_private_key,
    load_registry,
    load_trust,
    write_secret,
)

NOW = datetime.now(UTC).replace(microsecond=0)
MEMBER_IDS = [m.id for m in MEMBERS]


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("devfed")
    config = create_federation(directory, now=NOW)
    assert config == directory / "gateway.toml"
    return directory


def _leaf_paths(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.crt") if p.name != "root-ca.crt")


def _cert(path: Path) -> x509.Certificate:
    (cert,) = load_certificates(path)
    return cert


def test_config_paths_exist_relative_to_the_config(out: Path) -> None:
    config = tomllib.loads((out / "gateway.toml").read_text())
    assert config["gateway"]["member_id"] == "CN-GACC"
    assert config["gateway"]["origin"] == "cgw.cn-gacc.example/ledger"
    for section, keys in {"tls": ("cert", "key"), "trust": ("anchors", "crl", "registry")}.items():
        for key in keys:
            assert (out / config[section][key]).is_file(), (section, key)
    for key in ("cert", "key", "checkpoint_key"):
        assert (out / config["signing"][key]).is_file()


def test_layout_and_file_modes(out: Path) -> None:
    expected = ["ca/root-ca.crt", "ca/root-ca.key", "ca/root-ca.crl", "registry.json", "gateway/checkpoint.pub"]
    expected += [f"gateway/{stem}.{ext}" for stem in ("tls-server", "signing") for ext in ("crt", "key")]
    expected += [f"members/{m}/{s}.{e}" for m in MEMBER_IDS for s in ("signing", "tls-client") for e in ("crt", "key")]
    expected += ["members/NL-DOUANE/revoked-signing.crt", "members/NL-DOUANE/revoked-signing.key"]
    for relative in expected:
        assert (out / relative).is_file(), relative
    keys = sorted(out.rglob("*.key"))
    assert len(keys) == 2 + 1 + 1 + 2 * len(MEMBER_IDS) + 1  # root, gateway pair + checkpoint, members, revoked
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for public in [*out.rglob("*.crt"), out / "ca/root-ca.crl", out / "registry.json"]:
        assert stat.S_IMODE(public.stat().st_mode) == 0o644, public


def test_root_profile(out: Path) -> None:
    root = _cert(out / "ca/root-ca.crt")
    constraints = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 0
    usage = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert root.not_valid_after_utc - NOW == timedelta(days=3650)
    key = root.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    assert key.curve.name == "secp256r1"


@pytest.mark.parametrize("member_id", MEMBER_IDS)
def test_member_leaf_profiles(out: Path, member_id: str) -> None:
    root = _cert(out / "ca/root-ca.crt")
    for stem, eku in (("signing", DOCUMENT_SIGNING), ("tls-client", ExtendedKeyUsageOID.CLIENT_AUTH)):
        cert = _cert(out / "members" / member_id / f"{stem}.crt")
        ext = cert.extensions
        constraints = ext.get_extension_for_class(x509.BasicConstraints)
        assert constraints.critical
        assert not constraints.value.ca
        usage = ext.get_extension_for_class(x509.KeyUsage)
        assert usage.critical
        assert usage.value.digital_signature
        assert list(ext.get_extension_for_class(x509.ExtendedKeyUsage).value) == [eku]
        san = ext.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"urn:cgw:member:{member_id}"]
        ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
        aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        root_ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        assert aki.key_identifier == root_ski.digest
        assert cert.not_valid_after_utc - NOW == timedelta(days=365)
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        assert key.curve.name == "secp256r1"


def test_gateway_certificates(out: Path) -> None:
    tls = _cert(out / "gateway/tls-server.crt")
    san = tls.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert ExtendedKeyUsageOID.SERVER_AUTH in tls.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    signing = _cert(out / "gateway/signing.crt")
    san = signing.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:cgw:gateway:CN-GACC"]
    checkpoint = load_private_key(out / "gateway/checkpoint.key")
    assert isinstance(checkpoint, ed25519.Ed25519PrivateKey)
    raw = base64.b64decode((out / "gateway/checkpoint.pub").read_text().strip(), validate=True)
    assert raw == checkpoint.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert len(raw) == 32


def test_keys_match_their_certificates(out: Path) -> None:
    for crt in _leaf_paths(out):
        key = load_private_key(crt.with_suffix(".key"))
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.public_key() == _cert(crt).public_key(), crt


def test_crl_lists_exactly_the_revoked_certificate(out: Path) -> None:
    crl = load_crl(out / "ca/root-ca.crl")
    revoked = _cert(out / "members/NL-DOUANE/revoked-signing.crt")
    assert [r.serial_number for r in crl] == [revoked.serial_number]
    assert crl.next_update_utc is not None
    assert crl.next_update_utc - NOW == timedelta(days=7)
    assert crl.is_signature_valid(_cert(out / "ca/root-ca.crt").public_key())  # type: ignore[arg-type]


def test_registry_matches_the_certificates(out: Path) -> None:
    registry = load_registry(out / "registry.json")
    assert sorted(registry.members) == sorted(MEMBER_IDS)
    assert {m.id for m in registry.members.values() if m.home} == {"CN-GACC"}
    assert registry.members["US-CBP"].programs == {"CSI", "MEGAPORT"}
    assert registry.members["PORT-NLRTM"].kind is MemberKind.PORT
    for member_id in MEMBER_IDS:
        directory = out / "members" / member_id
        on_disk = {certificate_fingerprint(_cert(p)) for p in directory.glob("*.crt")}
        assert registry.members[member_id].cert_fingerprints == on_disk
        assert len(on_disk) == (3 if member_id == "NL-DOUANE" else 2)
    assert json.loads((out / "registry.json").read_text())["version"] == registry.version


def test_the_generated_federation_loads_and_validates(out: Path) -> None:
    trust = load_trust(out / "ca/root-ca.crt", out / "ca/root-ca.crl", out / "registry.json")
    chain = [_cert(out / "members/CARRIER-COSCO/signing.crt").public_bytes(Encoding.DER)]
    assert trust.validate_signing(chain, datetime.now(UTC)).member_id == "CARRIER-COSCO"


# -- OpenSSL's independent verdict ------------------------------------------------------------------------


def _openssl_verify(out: Path, cert: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl binary on PATH")
    command = [openssl, "verify", "-CAfile", str(out / "ca/root-ca.crt"), "-crl_check"]
    command += ["-CRLfile", str(out / "ca/root-ca.crl"), *extra, str(cert)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_openssl_accepts_every_issued_certificate(out: Path) -> None:
    leaves = [p for p in _leaf_paths(out) if p.name != "revoked-signing.crt"]
    assert len(leaves) == 2 + 2 * len(MEMBER_IDS)
    for leaf in leaves:
        result = _openssl_verify(out, leaf)
        assert result.returncode == 0, (leaf, result.stdout, result.stderr)
    for member_id in MEMBER_IDS:
        client = out / "members" / member_id / "tls-client.crt"
        assert _openssl_verify(out, client, "-purpose", "sslclient").returncode == 0
    assert _openssl_verify(out, out / "gateway/tls-server.crt", "-purpose", "sslserver").returncode == 0


def test_openssl_rejects_the_revoked_certificate(out: Path) -> None:
    result = _openssl_verify(out, out / "members/NL-DOUANE/revoked-signing.crt")
    assert result.returncode != 0
    assert "revoked" in (result.stdout + result.stderr).lower()


# -- loaders fail closed ------------------------------------------------------------------------------------


def test_private_key_readable_by_others_is_refused(out: Path, tmp_path: Path) -> None:
    key = tmp_path / "signing.key"
    key.write_bytes((out / "members/US-CBP/signing.key").read_bytes())
    for mode in (0o644, 0o640, 0o604, 0o660):
        key.chmod(mode)
        with pytest.raises(Unavailable, match="group/other"):
            load_private_key(key)
    key.chmod(0o400)
    assert isinstance(load_private_key(key), ec.EllipticCurvePrivateKey)


def test_write_secret_replaces_a_wide_open_file(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "x.key"
    path.parent.mkdir()
    path.write_bytes(b"old")
    path.chmod(0o666)
    write_secret(path, b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_broken_trust_files_are_unavailable(out: Path, tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="cannot open"):
        load_certificates(tmp_path / "missing.crt")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(Unavailable, match="malformed"):
        load_certificates(garbage)
    with pytest.raises(Unavailable, match="malformed"):
        load_crl(garbage)
    with pytest.raises(Unavailable, match="not a regular file"):
        load_crl(tmp_path)
    duplicate = tmp_path / "dup.json"
    duplicate.write_text('{"version": "a", "version": "b", "members": []}')
    with pytest.raises(Unavailable, match="duplicate key"):
        load_registry(duplicate)
    edited = json.loads((out / "registry.json").read_text())
    edited["members"][0]["kind"] = "broker"
    invalid = tmp_path / "registry.json"
    invalid.write_text(json.dumps(edited))
    with pytest.raises(Unavailable) as err:
        load_registry(invalid)
    assert err.value.field == "members[0].kind"


def test_regenerating_into_the_same_directory_works(tmp_path: Path) -> None:
    create_federation(tmp_path, now=NOW)
    first = (tmp_path / "registry.json").read_text()
    create_federation(tmp_path)
    assert (tmp_path / "registry.json").read_text() != first  # new keys, new fingerprints
    assert stat.S_IMODE((tmp_path / "ca/root-ca.key").stat().st_mode) == 0o600
    load_trust(tmp_path / "ca/root-ca.crt", tmp_path / "ca/root-ca.crl", tmp_path / "registry.json")
