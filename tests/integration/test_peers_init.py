"""``customs-gateway init --peers 2 DIR``: two administrations (CN-GACC in DIR/cn, NL-DOUANE in DIR/nl), each with
its own CA, and one signed federation directory (DIR/ops) that both configs name. The generated setup passes
``config check``, both gateways start on it and cosign each other's checkpoints, each gateway's TLS client
certificate chains to its own CA only (OpenSSL's verdict), and a second ``init --peers`` on the DIR refuses."""

from __future__ import annotations

import os
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.app.cli import main as cli_main
from gateway.app.main import running_gateway
from gateway.app.settings import Settings, load_settings
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.cosignature import verify_cosigned
from gateway.core.directory import Directory
from gateway.demo.federation import free_base_port
from gateway.infra.federationfiles import load_operator_key, read_directory
from gateway.infra.files import load_certificates, load_checkpoint_key, load_registry

ADMINS = {"CN-GACC": "cn", "NL-DOUANE": "nl"}
SERVED = {"CN-GACC": ["AUDIT-GACC", "CARRIER-COSCO", "CN-GACC"], "NL-DOUANE": ["NL-DOUANE", "PORT-NLRTM"]}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    out = tmp_path_factory.mktemp("peers") / "dev"
    base = free_base_port()
    assert cli_main(["init", "--peers", "2", "--base-port", str(base), str(out)]) == 0
    return out, base


def _directory(out: Path) -> Directory:
    return read_directory(out / "ops/directory.jws", load_operator_key(out / "ops/operator.pub"), datetime.now(UTC))


def _settings(out: Path, admin: str, data: Path) -> Settings:
    return load_settings(out / admin / "gateway.toml", overrides={"gateway.data_dir": str(data)})


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def test_layout_settings_and_config_check(setup: tuple[Path, int], capsys: pytest.CaptureFixture[str]) -> None:
    out, base = setup
    ports = {"CN-GACC": (base, base + 1), "NL-DOUANE": (base + 2, base + 3)}
    capsys.readouterr()
    for gateway_id, admin in ADMINS.items():
        config = out / admin / "gateway.toml"
        settings = load_settings(config)
        assert settings.member_id == gateway_id and (settings.rest_port, settings.grpc_port) == ports[gateway_id]
        federation = settings.federation
        assert federation is not None and federation.gateway_id == gateway_id
        assert federation.directory == federation.operator_key.parent / "directory.jws"
        assert federation.directory.resolve() == (out / "ops/directory.jws").resolve()  # ONE directory for both
        assert federation.client_cert == out / admin / "gateway/relay-client.crt"
        assert federation.client_key == out / admin / "gateway/relay-client.key"
        assert cli_main(["config", "check", "--config", str(config)]) == 0
        report = capsys.readouterr().out
        assert "FAIL" not in report and "federation client certificate: matches its key" in report, report
        assert f"federation directory: version 1 verifies, lists {gateway_id}" in report
    assert sorted(p.name for p in (out / "cn/members").iterdir()) == SERVED["CN-GACC"]
    assert sorted(p.name for p in (out / "nl/members").iterdir()) == SERVED["NL-DOUANE"]


def test_each_registry_lists_the_foreign_members_without_certificates(setup: tuple[Path, int]) -> None:
    out, _ = setup
    for gateway_id, admin in ADMINS.items():
        registry = load_registry(out / admin / "registry.json")
        assert {m.id for m in registry.members.values() if m.home} == {gateway_id}
        for member in registry.members.values():
            assert bool(member.cert_fingerprints) == (member.id in SERVED[gateway_id]), member.id
        assert registry.members["NL-DOUANE" if admin == "cn" else "CARRIER-COSCO"].kind.value in ("customs", "carrier")


def test_the_signed_directory_lists_both_gateways(setup: tuple[Path, int]) -> None:
    out, base = setup
    directory = _directory(out)
    assert directory.version == 1 and sorted(directory.gateways) == sorted(ADMINS)
    for i, (gateway_id, admin) in enumerate(ADMINS.items()):
        entry = directory.gateways[gateway_id]
        assert sorted(entry.members) == SERVED[gateway_id]
        assert entry.rest_url == f"https://127.0.0.1:{base + 2 * i}"
        assert entry.grpc_target == f"127.0.0.1:{base + 2 * i + 1}"
        own_ca = load_certificates(out / admin / "ca/root-ca.crt")[0].public_bytes(Encoding.DER)
        assert entry.tls_anchors == entry.signing_anchors == (own_ca,)
        assert entry.origin == f"cgw.{gateway_id.lower()}.example/ledger"
        assert entry.witness.name == f"cgw.{gateway_id.lower()}.example/witness"
    cn_ca, nl_ca = (load_certificates(out / a / "ca/root-ca.crt")[0] for a in ("cn", "nl"))
    assert cn_ca.subject != nl_ca.subject  # two administrations, two distinct CAs


def _openssl_client_verify(ca: Path, cert: Path) -> subprocess.CompletedProcess[str]:
    command = ["openssl", "verify", "-x509_strict", "-purpose", "sslclient", "-CAfile", str(ca), str(cert)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


def test_the_gateway_client_certificate_chains_to_its_own_ca_only(setup: tuple[Path, int]) -> None:
    out, _ = setup
    for gateway_id, admin in ADMINS.items():
        other = "nl" if admin == "cn" else "cn"
        path = out / admin / "gateway/relay-client.crt"
        cert = load_certificates(path)[0]
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == gateway_id
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [f"urn:cgw:gateway:{gateway_id}"]
        assert stat.S_IMODE(os.stat(out / admin / "gateway/relay-client.key").st_mode) == 0o600
        assert _openssl_client_verify(out / admin / "ca/root-ca.crt", path).returncode == 0
        refused = _openssl_client_verify(out / other / "ca/root-ca.crt", path)
        assert refused.returncode != 0, refused.stdout
        assert "unable to get local issuer certificate" in refused.stdout + refused.stderr
        # the TLS anchors the directory publishes for it vouch for it; the other gateway's do not
        gateways = _directory(out).gateways
        cert.verify_directly_issued_by(x509.load_der_x509_certificate(gateways[gateway_id].tls_anchors[0]))
        foreign = x509.load_der_x509_certificate(gateways[next(g for g in ADMINS if g != gateway_id)].tls_anchors[0])
        with pytest.raises(ValueError, match="does not match certificate issuer"):
            cert.verify_directly_issued_by(foreign)
        foreign_key = foreign.public_key()
        assert isinstance(foreign_key, ec.EllipticCurvePublicKey)
        with pytest.raises(InvalidSignature):  # not a mere name mismatch: the other CA's key did not sign it
            foreign_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256()))


async def test_both_gateways_start_and_cosign_each_other(setup: tuple[Path, int], tmp_path: Path) -> None:
    out, _ = setup
    directory = _directory(out)
    keys = {g: load_checkpoint_key(out / a / "gateway/checkpoint.key") for g, a in ADMINS.items()}
    async with (
        running_gateway(_settings(out, "cn", tmp_path / "cn")) as cn,
        running_gateway(_settings(out, "nl", tmp_path / "nl")) as nl,
    ):
        for gateway, peer in ((cn, "NL-DOUANE"), (nl, "CN-GACC")):
            assert gateway.witnessing is not None
            await gateway.store.record(AuditEvent(EventKind.ADMIN, datetime.now(UTC), {"action": "test"}))
            head = await gateway.witnessing.cosigner.round()
            me = gateway.settings.member_id
            _, _, found = verify_cosigned(
                head.note,
                gateway.settings.origin,
                [keys[me].public_key()],
                [directory.gateways[peer].witness],
                origin=gateway.settings.origin,
            )
            assert len(found) == 1, (me, head.note)


def test_init_again_refuses_and_overwrites_nothing(setup: tuple[Path, int], capsys: pytest.CaptureFixture[str]) -> None:
    out, base = setup
    before = _snapshot(out)
    capsys.readouterr()
    assert cli_main(["init", "--peers", "2", "--base-port", str(base), str(out)]) == 2
    assert "is not empty: --peers writes a new setup only" in capsys.readouterr().err
    assert cli_main(["init", "--peers", "2", "--force", str(out)]) == 2
    assert "no --force" in capsys.readouterr().err
    assert cli_main(["init", str(out)]) == 2  # the single-administration init refuses it too
    assert _snapshot(out) == before


def test_init_peers_refuses_an_existing_operator_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "notes.txt").write_text("mine")
    assert cli_main(["init", "--peers", "2", str(tmp_path / "dev")]) == 2
    assert sorted(p.name for p in (tmp_path / "dev").iterdir()) == ["notes.txt"]
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["init", "--peers", "4", str(tmp_path / "other")])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["init", "--peers", "2", "--base-port", "65531", str(tmp_path / "other")])
    assert exit_info.value.code == 2
    assert "'65531' is not a base port" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
