"""Renewing a dev federation in place (``crl renew``, ``init --renew``): real certificates, CRLs and registry,
checked by the gateway's own trust loader (and OpenSSL) at the renewal time."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.core.errors import CertificateRevoked, Unavailable
from gateway.core.model import Endpoint
from gateway.core.pki import certificate_fingerprint
from gateway.core.registry import build_registry, registry_to_json
from gateway.infra.devpki import MEMBERS, create_federation
from gateway.infra.files import load_certificates, load_crl, load_private_key, load_registry, load_trust
from gateway.infra.renewal import renew_crl, renew_federation

NOW = datetime.now(UTC).replace(microsecond=0)
YEAR = timedelta(days=365)
CLI = [sys.executable, "-m", "gateway.app.cli"]


def _cert(path: Path) -> x509.Certificate:
    return load_certificates(path)[0]


def _validate(out: Path, member: str, at: datetime) -> str:
    trust = load_trust(out / "ca/root-ca.crt", out / "ca/root-ca.crl", out / "registry.json")
    chain = [load_certificates(out / "members" / member / "signing.crt")[0].public_bytes(Encoding.DER)]
    return trust.validate_signing(chain, at).member_id


def _leaves(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("*.crt") if p.name != "root-ca.crt")


def _edit_registry(out: Path) -> None:
    """An operator's edit: US-CBP gets a webhook endpoint; the version is recomputed as the project does."""
    registry = load_registry(out / "registry.json")
    hook = (Endpoint("webhook", "https://cbp.example/hook"),)
    members = [m if m.id != "US-CBP" else replace(m, endpoints=hook) for m in registry.members.values()]
    (out / "registry.json").write_text(json.dumps(registry_to_json(build_registry(members)), indent=2))


def test_init_renew_reissues_expiring_leaves_for_the_same_keys_and_keeps_the_edits(tmp_path: Path) -> None:
    out = tmp_path / "fed"
    create_federation(out, now=NOW - YEAR + timedelta(days=20))  # leaves expire in 20 days, the CRL long ago
    config = out / "gateway.toml"
    config.write_text(config.read_text().replace("rest_port = 8443", "rest_port = 9443  # edited"))
    edited_config = config.read_bytes()
    _edit_registry(out)
    before = {p: (_cert(p), p.with_suffix(".key").read_bytes()) for p in _leaves(out)}
    with pytest.raises(Unavailable):  # the week-old CRL is stale: the gateway fails closed
        _validate(out, "US-CBP", NOW)

    report = renew_federation(out, now=NOW)

    actions = {line.path: line.action for line in report}
    assert actions["ca/root-ca.crt"] == "kept"
    assert actions["members/NL-DOUANE/revoked-signing.crt"] == "skipped"
    assert actions["ca/root-ca.crl"] == "re-signed"
    assert actions["registry.json"] == "updated"
    renewed = [p for p in before if p.name != "revoked-signing.crt"]
    assert len(renewed) == 2 + 2 * len(MEMBERS)
    for path in renewed:
        old, key_bytes = before[path]
        new = _cert(path)
        assert actions[str(path.relative_to(out))] == "renewed"
        assert new.public_key() == old.public_key()  # same key: no rotation
        assert path.with_suffix(".key").read_bytes() == key_bytes
        assert new.serial_number != old.serial_number
        assert new.subject == old.subject
        assert new.not_valid_after_utc == NOW + YEAR
        for extension in old.extensions:
            assert new.extensions.get_extension_for_oid(extension.oid) == extension
    revoked = out / "members/NL-DOUANE/revoked-signing.crt"
    assert _cert(revoked) == before[revoked][0]  # a revoked certificate is never renewed
    assert config.read_bytes() == edited_config  # gateway.toml untouched
    registry = load_registry(out / "registry.json")  # strict parse: the version was recomputed
    assert registry.members["US-CBP"].endpoints == (Endpoint("webhook", "https://cbp.example/hook"),)
    for member in MEMBERS:
        on_disk = {certificate_fingerprint(_cert(p)) for p in (out / "members" / member.id).glob("*.crt")}
        assert registry.members[member.id].cert_fingerprints == on_disk
    crl = load_crl(out / "ca/root-ca.crl")
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 2
    assert crl.last_update_utc == NOW - timedelta(minutes=5)
    (entry,) = list(crl)
    assert entry.serial_number == before[revoked][0].serial_number
    assert entry.revocation_date_utc == NOW - YEAR + timedelta(days=20) - timedelta(minutes=5)  # kept as it was
    assert _validate(out, "US-CBP", NOW) == "US-CBP"
    assert _validate(out, "US-CBP", NOW + timedelta(days=6)) == "US-CBP"
    openssl = shutil.which("openssl")
    if openssl:
        result = subprocess.run(
            [openssl, "verify", "-CAfile", str(out / "ca/root-ca.crt"), "-crl_check", "-CRLfile",
             str(out / "ca/root-ca.crl"), str(out / "gateway/tls-server.crt")],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr


def test_init_renew_leaves_certificates_that_are_not_due_alone(tmp_path: Path) -> None:
    create_federation(tmp_path, now=NOW)
    files = {p: p.read_bytes() for p in [*_leaves(tmp_path), tmp_path / "registry.json", tmp_path / "ca/root-ca.crt"]}
    report = renew_federation(tmp_path, within=timedelta(days=30), now=NOW + timedelta(days=6))
    assert [line.path for line in report if line.action not in ("kept", "skipped")] == ["ca/root-ca.crl"]
    for path, data in files.items():
        assert path.read_bytes() == data, path
    assert _validate(tmp_path, "CARRIER-COSCO", NOW + timedelta(days=12)) == "CARRIER-COSCO"  # the new CRL


def test_init_renew_rotates_keys_only_when_asked_and_renews_the_root_for_its_own_key(tmp_path: Path) -> None:
    create_federation(tmp_path, now=NOW - timedelta(days=3640))  # the root expires in 10 days, leaves long ago
    root_key = (tmp_path / "ca/root-ca.key").read_bytes()
    old_root = _cert(tmp_path / "ca/root-ca.crt")
    before = {p: _cert(p).public_key() for p in _leaves(tmp_path)}
    report = renew_federation(tmp_path, rotate_keys=True, now=NOW)
    assert {line.path: line.action for line in report}["ca/root-ca.crt"] == "renewed"
    new_root = _cert(tmp_path / "ca/root-ca.crt")
    assert new_root.public_key() == old_root.public_key()
    assert (tmp_path / "ca/root-ca.key").read_bytes() == root_key
    assert new_root.not_valid_after_utc == NOW + timedelta(days=3650)
    for path, old_key in before.items():
        if path.name == "revoked-signing.crt":
            continue
        new = _cert(path)
        assert new.public_key() != old_key, path
        key = load_private_key(path.with_suffix(".key"))
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        assert key.public_key() == new.public_key()
    assert _validate(tmp_path, "PORT-NLRTM", NOW) == "PORT-NLRTM"


def test_crl_renew_keeps_revocations_adds_one_and_replaces_the_file_atomically(tmp_path: Path) -> None:
    create_federation(tmp_path, now=NOW - timedelta(days=10))
    crl_path = tmp_path / "ca/root-ca.crl"
    with pytest.raises(Unavailable):
        _validate(tmp_path, "US-CBP", NOW)  # stale CRL: fail closed
    old_inode = crl_path.stat().st_ino
    with crl_path.open("rb") as reader:  # a reader holding the old file keeps reading the old bytes
        old_bytes = crl_path.read_bytes()
        line = renew_crl(tmp_path, now=NOW)
        assert reader.read() == old_bytes
    assert crl_path.stat().st_ino != old_inode  # renamed over, not rewritten in place
    assert sorted(p.name for p in crl_path.parent.iterdir()) == ["root-ca.crl", "root-ca.crt", "root-ca.key"]
    assert "number 2, 1 revoked" in str(line)
    assert _validate(tmp_path, "US-CBP", NOW) == "US-CBP"
    revoked_chain = [_cert(tmp_path / "members/NL-DOUANE/revoked-signing.crt").public_bytes(Encoding.DER)]
    with pytest.raises(CertificateRevoked):
        load_trust(tmp_path / "ca/root-ca.crt", crl_path, tmp_path / "registry.json").validate_signing(
            revoked_chain, NOW
        )

    line = renew_crl(tmp_path, revoke=[tmp_path / "members/US-CBP/signing.crt"], now=NOW + timedelta(hours=1))
    assert "number 3, 2 revoked" in str(line)
    with pytest.raises(CertificateRevoked):
        _validate(tmp_path, "US-CBP", NOW + timedelta(hours=1))
    assert _validate(tmp_path, "CARRIER-COSCO", NOW + timedelta(hours=1)) == "CARRIER-COSCO"


def test_crl_renew_refuses_foreign_certificates_and_foreign_crls(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    create_federation(ours, now=NOW)
    create_federation(theirs, now=NOW)
    crl_bytes = (ours / "ca/root-ca.crl").read_bytes()
    with pytest.raises(Unavailable, match="not issued by this federation's root CA"):
        renew_crl(ours, revoke=[theirs / "members/US-CBP/signing.crt"], now=NOW)
    assert (ours / "ca/root-ca.crl").read_bytes() == crl_bytes
    shutil.copy(theirs / "ca/root-ca.crl", ours / "ca/root-ca.crl")
    with pytest.raises(Unavailable, match="not signed by the root CA"):
        renew_crl(ours, now=NOW)
    with pytest.raises(Unavailable, match="not signed by the root CA"):
        renew_federation(ours, now=NOW)


def test_the_commands_print_what_they_did_and_fail_in_one_line(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)

    out = tmp_path / "fed"
    assert run("init", str(out)).returncode == 0
    result = run("init", "--renew", str(out), "--within-days", "400")
    assert result.returncode == 0, result.stderr
    assert "renewed   members/US-CBP/signing.crt: expires" in result.stdout
    assert "(same key)" in result.stdout
    assert "skipped   members/NL-DOUANE/revoked-signing.crt" in result.stdout
    assert "re-signed ca/root-ca.crl: number 2" in result.stdout
    result = run("crl", "renew", str(out), "--revoke", str(out / "members/PORT-NLRTM/tls-client.crt"))
    assert result.returncode == 0, result.stderr
    assert "number 3, 2 revoked" in result.stdout
    result = run("crl", "renew", str(tmp_path / "nothing-here"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: UNAVAILABLE: cannot renew the development federation (cannot open")
    assert run("init", "--rotate-keys", str(out)).returncode == 2
    assert run("init", "--renew", "--within-days", "-3", str(out)).returncode == 2
    assert os.access(out / "gateway.toml", os.R_OK)
