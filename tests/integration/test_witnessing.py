"""Two real gateways on loopback, CN-GACC and NL-DOUANE, each with its own CA, origin and checkpoint key, listed in
one signed federation directory (built with the ``federation`` CLI), each witnessing the other's ledger (C2SP
tlog-witness) and publishing its checkpoints with the other's cosignature (C2SP tlog-cosignature)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app.auditor import CHECKPOINT_FILE, Witnesses, verify_from_store
from gateway.app.main import SystemClock, running_gateway
from gateway.app.settings import load_settings
from gateway.client.grpc_client import GrpcGatewayClient
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.checkpoint import Checkpoint, sign_checkpoint
from gateway.core.cosignature import verify_cosigned
from gateway.core.directory import Directory
from gateway.core.errors import ProofInvalid, Unavailable
from gateway.core.merkle import leaf_hash, verify_inclusion
from gateway.core.witness import SIZE_CONTENT_TYPE, Cosigned, add_checkpoint_body
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.devpki import pem_key
from gateway.infra.files import load_checkpoint_key, write_secret
from gateway.infra.redis_store import RedisStore
from gateway.infra.sqlite import SqliteStore
from gateway.infra.witness_store import RedisWitnessStore
from gateway.ops.ledger import Ledger
from gateway.ops.witnessing import CONFLICT_ACTION, REFUSED_ACTION, Cosigner, DirectoryInForce, peer_tls
from tests.integration.conftest import REDIS_URL, redis_overrides
from tests.integration.federationpair import ORIGIN_A, ORIGIN_B, Pair, build_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """Two dev federations, each gateway listed with its home member only (tests/integration/federationpair.py)."""
    return build_pair(tmp_path_factory.mktemp("witnessing"))


async def _grow(store: object, n: int) -> None:
    for i in range(n):
        await store.record(AuditEvent(EventKind.ADMIN, datetime.now(UTC), {"action": "test", "n": i}))  # type: ignore[attr-defined]


def _cosigners(note: bytes, origin: str, log_key: Ed25519PrivateKey, directory: Directory, peer: str) -> int:
    keys = [log_key.public_key()]
    _, _, found = verify_cosigned(note, origin, keys, [directory.gateways[peer].witness], origin=origin)
    return len(found)


async def test_two_gateways_cosign_each_other(pair: Pair, tmp_path: Path) -> None:
    directory = pair.directory()
    assert directory.version == 1 and sorted(directory.gateways) == ["CN-GACC", "NL-DOUANE"]
    key_a = load_checkpoint_key(pair.fed_a / "gateway" / "checkpoint.key")
    key_b = load_checkpoint_key(pair.fed_b / "gateway" / "checkpoint.key")
    async with (
        running_gateway(pair.settings(pair.fed_a, tmp_path / "a")) as a,
        running_gateway(pair.settings(pair.fed_b, tmp_path / "b")) as b,
    ):
        assert a.witnessing is not None and b.witnessing is not None
        await _grow(a.store, 3)
        head_a = await a.witnessing.cosigner.round()
        head_b = await b.witnessing.cosigner.round()
        assert _cosigners(head_a.note, ORIGIN_A, key_a, directory, "NL-DOUANE") == 1
        assert _cosigners(head_b.note, ORIGIN_B, key_b, directory, "CN-GACC") == 1
        assert (a.settings.data_dir / CHECKPOINT_FILE).read_bytes() == head_a.note  # published with it
        assert (await b.witnessing.store.latest(ORIGIN_A)).size == head_a.size  # type: ignore[union-attr]

        await _grow(a.store, 4)  # the next checkpoint goes with a consistency proof from the cosigned size
        async with GatewayClient(a.url, MemberCredentials.from_federation(pair.fed_a, "CARRIER-COSCO")) as carrier:
            manifest = to_bytes(cargo_manifest("M-WITNESSED"))
            sent = await carrier.submit("manifest.cargo.v1", ["CN-GACC"], manifest, schema="cgw.v1.CargoManifest")
        grown = await a.witnessing.cosigner.round()
        assert grown.size == head_a.size + 5
        checkpoint, _, found = verify_cosigned(
            grown.note, ORIGIN_A, [key_a.public_key()], [directory.gateways["NL-DOUANE"].witness], origin=ORIGIN_A
        )
        assert len(found) == 1
        async with GatewayClient(a.url, MemberCredentials.from_federation(pair.fed_a, "AUDIT-GACC")) as auditor:
            assert await auditor.checkpoint() == grown.note  # the audit API hands out the cosigned checkpoint
            index = sent.receipt["ledger_index"]  # the receipt, checked against the cosigned checkpoint
            proof = await auditor.inclusion(index, checkpoint.size)
            entry = (await auditor.entries(index, index + 1))[0][1]
        verify_inclusion(
            leaf_hash(entry), index, checkpoint.size, [base64.b64decode(p) for p in proof["proof"]], checkpoint.root
        )
        assert a.grpc_target is not None
        credentials = MemberCredentials.from_federation(pair.fed_a, "AUDIT-GACC")
        async with GrpcGatewayClient(a.grpc_target, credentials) as grpc_auditor:
            assert (await grpc_auditor.checkpoint())[0] == grown.note  # gRPC Audit hands out the same one
        assert json.loads(entry)["message_id"] == sent.receipt["message_id"]

        report = await verify_from_store(a.settings, None, Witnesses(pair.signed, require=1))
        assert report.cosigners == (directory.gateways["NL-DOUANE"].witness_key,)
        with pytest.raises(ProofInvalid, match=r"cosigned by 1 peer witness.*2 required"):
            await verify_from_store(a.settings, None, Witnesses(pair.signed, require=2))
        cli = [sys.executable, "-m", "gateway.app.cli", "audit", "verify", "--config", str(pair.fed_a / "gateway.toml")]
        env = dict(os.environ, PYTHONPATH=str(Path.cwd()))
        overrides = ["--federation-directory", str(pair.signed)]
        # the CLI reads the store of the config's data_dir: point it at this test's
        toml = pair.fed_a / "cli.toml"
        toml.write_text(
            (pair.fed_a / "gateway.toml").read_text().replace('data_dir = "data"', f'data_dir = "{tmp_path / "a"}"')
        )
        cli[-1] = str(toml)
        code, out, err = await _run([*cli, *overrides, "--require-cosigners", "1"], env)
        assert code == 0, err
        assert "cosigned by 1 peer witness(es)" in out
        code, out, err = await _run([*cli, *overrides, "--require-cosigners", "2"], env)
        assert code == 1
        assert "2 required" in err


async def _run(argv: list[str], env: dict[str, str]) -> tuple[int | None, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    return process.returncode, out.decode(), err.decode()


async def test_the_witness_endpoint_answers_as_the_spec_says(pair: Pair, tmp_path: Path) -> None:
    directory = pair.directory()
    async with (
        running_gateway(pair.settings(pair.fed_a, tmp_path / "a")) as a,
        running_gateway(pair.settings(pair.fed_b, tmp_path / "b")) as b,
    ):
        assert a.witnessing is not None and b.witnessing is not None
        await _grow(a.store, 4)
        cosigned = await a.witnessing.cosigner.round()
        url = directory.gateways["NL-DOUANE"].witness_url
        tls = peer_tls(directory.gateways["NL-DOUANE"])

        async def post(body: bytes) -> tuple[int, str, str]:
            async with aiohttp.ClientSession() as session, session.post(url, data=body, ssl=tls) as response:
                return response.status, response.content_type, await response.text()

        size, root = cosigned.size, cosigned.root
        stranger = Ed25519PrivateKey.generate()
        unknown = sign_checkpoint(Checkpoint("cgw.xx.example/ledger", size, root), "cgw.xx.example/ledger", stranger)
        assert (await post(add_checkpoint_body(0, [], unknown)))[0] == 404
        forged = sign_checkpoint(Checkpoint(ORIGIN_A, size, root), ORIGIN_A, stranger)
        assert (await post(add_checkpoint_body(size, [], forged)))[0] == 403
        assert (await post(add_checkpoint_body(size + 1, [], cosigned.note)))[0] == 400
        assert (await post(b"old 1\nnot base64\n\n" + cosigned.note))[0] == 400
        assert await post(add_checkpoint_body(0, [], cosigned.note)) == (409, SIZE_CONTENT_TYPE, f"{size}\n")
        status, _, line = await post(add_checkpoint_body(size, [], cosigned.note))  # the same one again: 200
        assert status == 200 and line.startswith("\u2014 cgw.nl-douane.example/witness ")
        await _grow(a.store, 2)
        bigger = await a.ledger.checkpoint()
        wrong_proof = [leaf_hash(b"x")] * len(await a.ledger.consistency(size, bigger.size))
        assert (await post(add_checkpoint_body(size, wrong_proof, bigger.note)))[0] == 422
        assert (await b.witnessing.store.latest(ORIGIN_A)).size == size  # type: ignore[union-attr]
        assert (await post(b"old 0\n\n" + b"x" * (300 * 1024)))[0] == 400  # the named body bound


async def test_a_forked_log_is_refused_alarmed_and_a_split_view_for_the_auditor(pair: Pair, tmp_path: Path) -> None:
    """A deliberately forked log: a second ledger of CN-GACC's origin, signed with its checkpoint key, with other
    entries. NL-DOUANE's witness has cosigned the real one: the fork gets 409 (same size) or 422 (grown past it),
    the forked gateway alarms and records witness_conflict, the witness records witness_refused; an auditor who
    holds both checkpoints gets "split view" from audit verify."""
    directory = pair.directory()
    clock = SystemClock()
    async with (
        running_gateway(pair.settings(pair.fed_a, tmp_path / "a")) as a,
        running_gateway(pair.settings(pair.fed_b, tmp_path / "b")) as b,
    ):
        assert a.witnessing is not None and b.witnessing is not None
        await _grow(a.store, 2)
        real = await a.witnessing.cosigner.round()
        fork_store = await SqliteStore.open(tmp_path / "fork.db")
        try:
            key_a = load_checkpoint_key(pair.fed_a / "gateway" / "checkpoint.key")
            fork = Ledger(fork_store, origin=ORIGIN_A, key=key_a)
            await _grow(fork_store, real.size)  # the same size, other leaves: another root
            forked = Cosigner(
                ledger=fork,
                store=fork_store,
                clock=clock,
                directory=DirectoryInForce(directory, clock),
                gateway_id="CN-GACC",
                timeout_seconds=5.0,
            )
            head = await forked.round()
            assert head.size == real.size and head.root != real.root
            assert _cosigners(head.note, ORIGIN_A, key_a, directory, "NL-DOUANE") == 0  # refused: not cosigned
            await _grow(fork_store, 3)
            grown = await forked.round()  # grown past the cosigned size: no consistency proof can exist
            assert _cosigners(grown.note, ORIGIN_A, key_a, directory, "NL-DOUANE") == 0
            await forked.close()
            conflicts = [e for e in await _admin(fork_store) if e.get("action") == CONFLICT_ACTION]
            assert [(c["size"], c["peer"]) for c in conflicts] == [(real.size, "NL-DOUANE"), (grown.size, "NL-DOUANE")]
            assert "HTTP 409" in conflicts[0]["detail"] and "HTTP 422" in conflicts[1]["detail"]
        finally:
            await fork_store.close()
        refused = [e for e in await _admin(b.store) if e.get("action") == REFUSED_ACTION]
        assert [(r["verdict"], r["size"]) for r in refused] == [("fork", real.size), ("proof_invalid", grown.size)]
        assert refused[0]["cosigned_root"] == base64.b64encode(real.root).decode()
        assert (await b.witnessing.store.latest(ORIGIN_A)).root == real.root  # type: ignore[union-attr]

        with pytest.raises(ProofInvalid, match="split view"):
            await verify_from_store(a.settings, real.note, Witnesses(pair.signed, require=1, compare=(head.note,)))
        with pytest.raises(ProofInvalid, match=r"split view: .* signed size 6, its ledger has 2 entries"):
            await verify_from_store(a.settings, real.note, Witnesses(pair.signed, require=1, compare=(grown.note,)))
        await _grow(a.store, grown.size)  # another size, which the ledger reaches: checked against its root there
        with pytest.raises(ProofInvalid, match=r"split view: .* but its ledger has"):
            await verify_from_store(a.settings, real.note, Witnesses(pair.signed, require=1, compare=(grown.note,)))
        ok = await verify_from_store(a.settings, real.note, Witnesses(pair.signed, require=1, compare=(real.note,)))
        assert ok.checkpoint_size == real.size


async def _admin(store: object) -> list[dict[str, object]]:
    size = await store.ledger_size()  # type: ignore[attr-defined]
    entries = await store.ledger_entries(0, size)  # type: ignore[attr-defined]
    events = [json.loads(e.data) for e in entries]
    return [e for e in events if e.get("event") == "admin"]


async def test_a_gateway_the_directory_does_not_list_does_not_start(pair: Pair, tmp_path: Path) -> None:
    settings = pair.settings(pair.fed_a, tmp_path / "a")
    assert settings.federation is not None
    other = dataclasses.replace(settings, federation=dataclasses.replace(settings.federation, gateway_id="US-CBP"))
    with pytest.raises(Unavailable, match="does not list this gateway as US-CBP"):
        async with running_gateway(other):
            pass
    stranger = tmp_path / "witness.key"
    write_secret(stranger, pem_key(Ed25519PrivateKey.generate()))
    wrong = dataclasses.replace(settings, federation=dataclasses.replace(settings.federation, witness_key=stranger))
    with pytest.raises(Unavailable, match="witness key is not the one the directory lists"):
        async with running_gateway(wrong):
            pass


async def test_a_running_gateway_stops_trusting_an_expired_directory(pair: Pair, tmp_path: Path) -> None:
    directory = pair.directory()

    class Late:
        def now(self) -> datetime:
            return directory.not_after

    assert DirectoryInForce(directory, SystemClock())() is directory
    expired = DirectoryInForce(directory, Late())
    with pytest.raises(Unavailable, match="expired"):
        expired()
    store = await SqliteStore.open(tmp_path / "a.db")
    try:
        key = load_checkpoint_key(pair.fed_a / "gateway" / "checkpoint.key")
        ledger = Ledger(store, origin=ORIGIN_A, key=key, witnessed=True)
        await _grow(store, 2)
        cosigner = Cosigner(
            ledger=ledger, store=store, clock=Late(), directory=expired, gateway_id="CN-GACC", timeout_seconds=1.0
        )
        head = await cosigner.round()  # no peer is asked; the checkpoint is still published, uncosigned
        assert head.size == 2 and head.note == (await ledger.checkpoint()).note
        assert (await ledger.published()) == head
        await cosigner.close()
    finally:
        await store.close()


async def test_a_witness_on_the_redis_store_keeps_its_state_there(pair: Pair, tmp_path: Path) -> None:
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    settings_b = load_settings(pair.fed_b / "gateway.toml", overrides=redis_overrides(tmp_path / "b", prefix))
    settings_b = dataclasses.replace(settings_b, rest_port=pair.settings(pair.fed_b, tmp_path / "b").rest_port)
    try:
        async with (
            running_gateway(pair.settings(pair.fed_a, tmp_path / "a")) as a,
            running_gateway(settings_b) as b,
        ):
            assert a.witnessing is not None and b.witnessing is not None
            await _grow(a.store, 3)
            head = await a.witnessing.cosigner.round()
            key_a = load_checkpoint_key(pair.fed_a / "gateway" / "checkpoint.key")
            assert _cosigners(head.note, ORIGIN_A, key_a, pair.directory(), "NL-DOUANE") == 1
        shared = RedisWitnessStore.open(REDIS_URL, key_prefix=prefix)  # what another process of B would read
        assert (await shared.latest(ORIGIN_A)) == Cosigned(head.size, head.root)
        await shared.delete_all()
        await shared.close()
    finally:
        store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
        await store.delete_all()
        await store.close()
