"""``customs-gateway config check``: one OK/FAIL line per check over a real dev federation, offline, as a process."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import rfc8785

from gateway.infra.renewal import renew_crl

CLI = str(Path(sys.executable).parent / "customs-gateway")


def check(config: Path) -> tuple[int, dict[str, str]]:
    """(exit code, {check name: "OK  ..."/"FAIL ..."})."""
    result = subprocess.run(
        [CLI, "config", "check", "--config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    lines = {}
    for line in result.stdout.splitlines():
        if line.startswith(("OK", "FAIL")):
            verdict, _, rest = line.partition("  ")
            name, _, detail = rest.strip().partition(": ")
            lines[name] = f"{verdict.strip()} {detail}"
    return result.returncode, lines


@pytest.fixture
def deployment(federation: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "deployment"
    shutil.copytree(federation, copy, ignore=shutil.ignore_patterns("data"))
    return copy


def test_a_fresh_dev_federation_passes_every_check(deployment: Path) -> None:
    code, lines = check(deployment / "gateway.toml")
    assert code == 0
    assert list(lines) == [
        "settings",
        "tls key",
        "signing key",
        "checkpoint key",
        "registry",
        "trust anchors and CRL",
        "CRL current",
        "tls certificate",
        "signing certificate",
        "policies",
        "policies agree with the registry",
    ]
    assert all(v.startswith("OK") for v in lines.values()), lines
    assert "days from now" in lines["CRL current"] and "home CN-GACC" in lines["registry"]
    assert "test cases pass" in lines["policies"]


def test_a_readable_key_fails_and_so_does_what_needs_it(deployment: Path) -> None:
    (deployment / "gateway" / "signing.key").chmod(0o644)
    code, lines = check(deployment / "gateway.toml")
    assert code == 1
    assert lines["signing key"].startswith("FAIL") and "chmod 600" in lines["signing key"]
    assert lines["signing certificate"] == "FAIL not checked: signing key failed"
    assert lines["tls key"].startswith("OK") and lines["policies"].startswith("OK")


def test_a_stale_crl_and_a_revoked_gateway_certificate_fail(deployment: Path) -> None:
    renew_crl(deployment, revoke=[deployment / "gateway" / "tls-server.crt"], now=datetime.now(UTC) - timedelta(days=8))
    code, lines = check(deployment / "gateway.toml")
    assert code == 1
    assert lines["CRL current"].startswith("FAIL not current now")
    assert lines["tls certificate"].startswith("FAIL") and "revoked in the CRL" in lines["tls certificate"]
    assert lines["signing certificate"].startswith("OK")


def test_policies_that_disagree_with_the_registry_fail(deployment: Path) -> None:
    registry = json.loads((deployment / "registry.json").read_text())
    for member in registry["members"]:
        if member["id"] == "US-CBP":
            member["programs"] = [p for p in member["programs"] if p != "MEGAPORT"]
    members = sorted(registry["members"], key=lambda m: m["id"])
    registry["version"] = hashlib.sha256(rfc8785.dumps(members)).hexdigest()  # a consistent registry file
    (deployment / "registry.json").write_text(json.dumps(registry))
    code, lines = check(deployment / "gateway.toml")
    assert code == 1
    assert lines["registry"].startswith("OK")
    assert lines["policies agree with the registry"].startswith("FAIL")
    assert "MEGAPORT" in lines["policies agree with the registry"]


def test_a_home_member_missing_from_the_registry_and_an_unparsable_config(deployment: Path) -> None:
    config = deployment / "gateway.toml"
    config.write_text(config.read_text().replace('member_id = "CN-GACC"', 'member_id = "XX-NOBODY"'))
    code, lines = check(config)
    assert code == 1
    assert lines["registry"].startswith("FAIL") and "XX-NOBODY" in lines["registry"]
    assert lines["policies agree with the registry"] == "FAIL not checked: registry failed"
    config.write_text("[gateway]\nmember_id = 5\n")
    code, lines = check(config)
    assert code == 2 and list(lines) == ["settings"] and lines["settings"].startswith("FAIL")
