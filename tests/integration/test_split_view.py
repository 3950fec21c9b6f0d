"""A split view with three real gateways (issue 19): CN-GACC (A), NL-DOUANE (B) and US-CBP (C) in one signed
directory (``init --peers 3``), each witnessing the other two.

A's log is forked the way a dishonest operator would do it: a second copy of A's data (taken while A was
stopped), grown with other entries and signed with A's own checkpoint key, is shown to C only, while the real A
shows its real ledger to B. B and C each cosign what they saw: two cosigned checkpoints of one size with two
roots. The fork is then caught twice: when the real A submits its checkpoint to C (C has cosigned the other
root: 409, A ledgers ``witness_conflict``, logs the ALARM and counts ``cgw_witness_conflicts``; C ledgers
``witness_refused``), and when an auditor holding B's and C's cosigned notes runs ``audit verify --compare``
(exit 1, naming both roots)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import shutil
import sys
from pathlib import Path
from types import MappingProxyType

import pytest
from structlog.testing import capture_logs

from gateway.app import main
from gateway.app.main import SystemClock, running_gateway
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.cosignature import verify_cosigned
from gateway.core.directory import Directory
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.files import load_checkpoint_key
from gateway.infra.sqlite import SqliteStore
from gateway.ops.ledger import Ledger
from gateway.ops.witnessing import CONFLICT_ACTION, REFUSED_ACTION, Cosigner, DirectoryInForce
from tests.integration.federationpair import Pair, build_peers

ORIGIN_A = "cgw.cn-gacc.example/ledger"


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return build_peers(tmp_path_factory.mktemp("splitview"), count=3)


def _only(directory: Directory, *ids: str) -> Directory:
    """The directory as the forked A's submitter sees it: only the gateways named (A shows the fork to C only)."""
    return dataclasses.replace(directory, gateways=MappingProxyType({i: directory.gateways[i] for i in ids}))


def _witnesses(note: bytes, directory: Directory, key: object) -> list[str]:
    """The peer witnesses (B and C) whose cosignature of ``note`` verifies, as their gateway ids."""
    by_vkey = {g.witness.vkey: g.id for g in directory.gateways.values() if g.origin != ORIGIN_A}
    peers = [directory.gateways[i].witness for i in sorted(by_vkey.values())]
    _, _, found = verify_cosigned(note, ORIGIN_A, [key.public_key()], peers, origin=ORIGIN_A)  # type: ignore[attr-defined]
    return sorted(by_vkey[c.witness] for c in found)


async def _admin(store: object, action: str) -> list[dict[str, object]]:
    size = await store.ledger_size()  # type: ignore[attr-defined]
    events = [json.loads(e.data) for e in await store.ledger_entries(0, size)]  # type: ignore[attr-defined]
    return [e for e in events if e.get("event") == "admin" and e.get("action") == action]


async def _run(argv: list[str]) -> tuple[int | None, str, str]:
    env = dict(os.environ, PYTHONPATH=str(Path.cwd()))
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, out.decode(), err.decode()


async def test_a_forked_gateway_is_caught_by_its_two_peers_and_the_auditor(
    trio: Pair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Why: the checkpoint loop's own rounds come only at startup and shutdown here; the test runs the rest in
    # a fixed order (which view reaches which witness first is the whole point).
    monkeypatch.setattr(main, "CHECKPOINT_INTERVAL_SECONDS", 3600.0)
    assert trio.fed_c is not None
    directory = trio.directory()
    assert sorted(directory.gateways) == ["CN-GACC", "NL-DOUANE", "US-CBP"]
    key_a = load_checkpoint_key(trio.fed_a / "gateway" / "checkpoint.key")
    data_a, data_fork = tmp_path / "a", tmp_path / "fork"
    async with (
        running_gateway(trio.settings(trio.fed_b, tmp_path / "b")) as b,
        running_gateway(trio.settings(trio.fed_c, tmp_path / "c")) as c,
    ):
        assert b.witnessing is not None and c.witnessing is not None
        async with running_gateway(trio.settings(trio.fed_a, data_a)) as a:  # the honest history so far
            assert a.witnessing is not None
            async with GatewayClient(a.url, MemberCredentials.from_federation(trio.fed_a, "CARRIER-COSCO")) as carrier:
                manifest = to_bytes(cargo_manifest("M-BEFORE-FORK"))
                await carrier.submit("manifest.cargo.v1", ["CN-GACC"], manifest, schema="cgw.v1.CargoManifest")
            shared = await a.witnessing.cosigner.round()
            assert _witnesses(shared.note, directory, key_a) == ["NL-DOUANE", "US-CBP"]
        shutil.copytree(data_a, data_fork)  # A stopped cleanly: a consistent copy of its whole data

        async with running_gateway(trio.settings(trio.fed_a, data_a)) as a:
            assert a.witnessing is not None and a.operations is not None
            # the real A grows by one real message ...
            async with GatewayClient(a.url, MemberCredentials.from_federation(trio.fed_a, "CARRIER-COSCO")) as carrier:
                manifest = to_bytes(cargo_manifest("M-REAL"))
                await carrier.submit("manifest.cargo.v1", ["CN-GACC"], manifest, schema="cgw.v1.CargoManifest")
            size = await a.store.ledger_size()
            # ... the forked A (its data copy, its checkpoint key) by other entries to the same size
            fork_store = await SqliteStore.open(data_fork / "gateway.db")
            try:
                fork_size = await fork_store.ledger_size()
                assert 0 < fork_size < size
                for n in range(size - fork_size):
                    other = AuditEvent(EventKind.ADMIN, SystemClock().now(), {"action": "fork", "n": n})
                    await fork_store.record(other)
                fork = Cosigner(
                    ledger=Ledger(fork_store, origin=ORIGIN_A, key=key_a),
                    store=fork_store,
                    clock=SystemClock(),
                    directory=DirectoryInForce(_only(directory, "CN-GACC", "US-CBP"), SystemClock()),
                    gateway_id="CN-GACC",
                    timeout_seconds=5.0,
                )
                seen_by_c = await fork.round()  # shown to C only: C cosigns it (consistent with what C saw)
                await fork.close()
            finally:
                await fork_store.close()
            assert seen_by_c.size == size
            assert _witnesses(seen_by_c.note, directory, key_a) == ["US-CBP"]

            with capture_logs() as logs:
                seen_by_b = await a.witnessing.cosigner.round()  # the real A submits to both B and C
            assert seen_by_b.size == size and seen_by_b.root != seen_by_c.root
            assert _witnesses(seen_by_b.note, directory, key_a) == ["NL-DOUANE"]  # C refused: it cosigned the other

            # at A: the alarm (log line, metric) and the ledger event naming C, the size and A's root
            alarms = [e for e in logs if str(e["event"]).startswith("ALARM") and e.get("peer") == "US-CBP"]
            assert alarms and alarms[0]["log_level"] == "error" and alarms[0]["size"] == size
            assert "HTTP 409" in alarms[0]["detail"]
            [conflict] = await _admin(a.store, CONFLICT_ACTION)
            assert (conflict["peer"], conflict["size"]) == ("US-CBP", size)
            assert conflict["root"] == base64.b64encode(seen_by_b.root).decode()
            metrics, _ = await a.operations.metrics_text()
            assert b'cgw_witness_conflicts_total{peer="US-CBP"} 1.0' in metrics
            # at C: the fork it refused, with both roots (evidence against A)
            [refused] = await _admin(c.store, REFUSED_ACTION)
            assert (refused["verdict"], refused["size"]) == ("fork", size)
            assert refused["root"] == base64.b64encode(seen_by_b.root).decode()
            assert refused["cosigned_root"] == base64.b64encode(seen_by_c.root).decode()
            c_metrics, _ = await c.operations.metrics_text()  # type: ignore[union-attr]
            assert b'cgw_witness_refused_total{verdict="fork"} 1.0' in c_metrics
            assert await _admin(b.store, REFUSED_ACTION) == []  # B saw one consistent history

            # the auditor: B's cosigned note and C's cosigned note of A's log, checked against A's ledger
            notes = tmp_path / "notes"
            notes.mkdir()
            (notes / "from-nl.note").write_bytes(seen_by_b.note)
            (notes / "from-us.note").write_bytes(seen_by_c.note)
            config = trio.fed_a / "audit.toml"  # A's config with this test's data_dir
            config.write_text(
                (trio.fed_a / "gateway.toml").read_text().replace('data_dir = "data"', f'data_dir = "{data_a}"')
            )
            verify = [sys.executable, "-m", "gateway.app.cli", "audit", "verify", "--config", str(config)]
            verify += ["--federation-directory", str(trio.signed), "--require-cosigners", "1"]
            code, out, err = await _run([*verify, "--checkpoint", str(notes / "from-nl.note")])
            assert code == 0, err  # each note alone verifies: signed by A, cosigned by one peer
            assert "cosigned by 1 peer witness(es)" in out
            code, out, err = await _run(
                [*verify, "--checkpoint", str(notes / "from-nl.note"), "--compare", str(notes / "from-us.note")]
            )
            assert code == 1, out
            assert f"split view: {ORIGIN_A} signed two roots for size {size}" in err
            assert base64.b64encode(seen_by_b.root).decode() in err
            assert base64.b64encode(seen_by_c.root).decode() in err
