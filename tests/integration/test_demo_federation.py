"""``customs-gateway demo --federation`` as a user runs it (a real process starting two real gateways on loopback),
then what it left behind checked independently: both ledgers, the relay evidence in each, and ``audit verify
--require-cosigners`` of each ledger by the real CLI (1 passes, 2 fails: there is only one peer)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.demo.federation import Steps, peer_receipt
from gateway.infra.sqlite import SqliteStore

CLI = [sys.executable, "-m", "gateway.app.cli"]
STEPS = [
    "CN-GACC's receipt to the carrier",
    "relayed to NL-DOUANE",
    "manifest in NL-DOUANE's inbox at NL",
    "CN-GACC keeps NL's receipt",
    "NL's receipt at the carrier",
    "recall crosses the border",
    "CN-GACC checkpoint cosigned by NL-DOUANE",
    "NL-DOUANE checkpoint cosigned by CN-GACC",
    "audit verify CN-GACC --require-cosigners 1",
    "audit verify NL-DOUANE --require-cosigners 1",
]
LINE = re.compile(r"^  \[(PASS|FAIL)\] (.+?): ", re.MULTILINE)


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("fed-demo") / "peers"
    return out, run("demo", "--federation", "--keep", str(out))


def test_the_demo_passes_every_step(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    _, result = demo
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    verdicts = [(name, verdict) for verdict, name in LINE.findall(result.stdout)]
    assert verdicts == [(name, "PASS") for name in STEPS], verdicts
    assert f"summary: {len(STEPS)} passed, 0 failed -> PASS" in result.stdout


async def _ledger(database: Path) -> list[dict[str, Any]]:
    store = await SqliteStore.open(database)
    try:
        return [json.loads(e.data) for e in await store.ledger_entries(0, await store.ledger_size())]
    finally:
        await store.close()


def test_each_relayed_manifest_is_once_in_each_ledger(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, result = demo
    assert result.returncode == 0
    cn, nl = (asyncio.run(_ledger(out / a / "data" / "gateway.db")) for a in ("cn", "nl"))
    relayed = {e["message_id"]: e for e in cn if e["event"] == "relay_delivered"}
    crossing = [e for e in cn if e["event"] == "accepted" and "NL-DOUANE" in e.get("relay", {})]
    assert {e["message_id"] for e in crossing} == set(relayed)  # every relay entry delivered, nothing else
    assert sorted(e["type"] for e in crossing) == ["intel.recall.v1", "manifest.cargo.v1", "manifest.cargo.v1"]
    assert all(e["peer"] == "NL-DOUANE" and len(e["receipt_sha256"]) == 64 for e in relayed.values())
    at_nl = [e for e in nl if e["event"] == "accepted" and e["message_id"] in relayed]
    assert sorted(e["message_id"] for e in at_nl) == sorted(relayed)  # each exactly once at NL
    assert {(e["relayed_by"], e["adapter"], e["sender"]) for e in at_nl} == {("CN-GACC", "relay-rest", "CARRIER-COSCO")}


@pytest.mark.parametrize("admin", ["cn", "nl"])
def test_audit_verify_requires_the_peers_cosignature(
    demo: tuple[Path, subprocess.CompletedProcess[str]], admin: str
) -> None:
    out, result = demo
    assert result.returncode == 0
    common = ["audit", "verify", "--config", str(out / admin / "gateway.toml")]
    common += ["--federation-directory", str(out / "ops" / "directory.jws")]
    one = run(*common, "--require-cosigners", "1", timeout=60)
    assert one.returncode == 0, one.stdout + one.stderr
    assert "cosigned by 1 peer witness(es)" in one.stdout
    two = run(*common, "--require-cosigners", "2", timeout=60)  # one peer only: the check must be able to fail
    assert two.returncode == 1, two.stdout
    assert "PROOF_INVALID" in two.stderr and "2 required" in two.stderr


def test_a_failed_step_fails_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    steps = Steps()
    steps.record("one", True, "fine")
    assert steps.ok

    async def broken() -> tuple[bool, str]:
        raise KeyError("receipt")

    assert asyncio.run(steps.attempt("three", broken)) is False
    assert not steps.ok
    assert "  [FAIL] three: KeyError" in capsys.readouterr().out
    assert not Steps().ok  # no step at all is no demo


def test_peer_receipt_reads_only_the_peers_recipient_entries() -> None:
    status = {
        "recipients": [
            {"member": "CN-GACC", "peer": None, "delivery": None},
            {"member": "NL-DOUANE", "peer": "NL-DOUANE", "delivery": {"receipt": "a.b.c"}},
        ]
    }
    assert peer_receipt(status, "NL-DOUANE") == "a.b.c"
    assert peer_receipt(status, "US-CBP") is None
    assert peer_receipt({"recipients": [{"member": "NL-DOUANE"}]}, "NL-DOUANE") is None
