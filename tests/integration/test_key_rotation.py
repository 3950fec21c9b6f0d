"""Rotating the checkpoint key of a real gateway: ``checkpoint rotate-key``, the restart that records the
rotation in the ledger, and ``audit verify`` (offline and over REST) across it, with real signatures."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from gateway.app.auditor import CHECKPOINT_FILE, verify_from_store, verify_over_rest
from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import Settings, load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core.checkpoint import Checkpoint, sign_checkpoint, verifier_key_string
from gateway.core.errors import SignatureRejected, Unavailable
from gateway.core.keyhistory import ROTATION_ACTION
from gateway.core.merkle import MerkleTree, leaf_hash
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.devpki import create_federation
from gateway.infra.files import load_checkpoint_key, rotate_checkpoint_key, write_secret
from gateway.infra.redis_store import RedisStore
from tests.redisenv import REDIS_URL

CLI = [sys.executable, "-m", "gateway.app.cli"]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


def settings_for(federation: Path) -> Settings:
    return load_settings(federation / "gateway.toml", overrides={"gateway.rest_port": 0, "gateway.grpc_port": 0})


async def submit(gateway: Gateway, federation: Path, count: int) -> None:
    async with GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "CARRIER-COSCO")) as client:
        for i in range(count):
            manifest = to_bytes(cargo_manifest(f"ROT-{i}"))
            await client.submit("manifest.cargo.v1", ["CN-GACC"], manifest, schema="cgw.v1.CargoManifest")


async def entries_of(gateway: Gateway) -> list[bytes]:
    return [e.data for e in await gateway.store.ledger_entries(0, await gateway.store.ledger_size())]


def forged_note(entries: list[bytes], size: int, origin: str, key: Ed25519PrivateKey) -> bytes:
    """A checkpoint with the ledger's true root at ``size``, signed by ``key``."""
    root = MerkleTree(leaf_hash(data) for data in entries).root(size)
    return sign_checkpoint(Checkpoint(origin, size, root), origin, key)


async def test_a_rotated_checkpoint_key_is_recorded_and_audited_across_the_rotation(tmp_path: Path) -> None:
    federation = tmp_path / "fed"
    create_federation(federation)
    settings = settings_for(federation)
    origin = settings.origin
    old_key = load_checkpoint_key(settings.checkpoint_key)
    old_v = verifier_key_string(origin, old_key.public_key())

    async with running_gateway(settings) as gateway:
        await submit(gateway, federation, 3)
    old_note = (settings.data_dir / CHECKPOINT_FILE).read_bytes()  # the final checkpoint, by the old key
    before = await verify_from_store(settings)
    assert before.signed_by == old_v
    rotated_at = before.size

    assert rotate_checkpoint_key(settings.checkpoint_key, origin)[0] == old_v
    new_key = load_checkpoint_key(settings.checkpoint_key)
    new_v = verifier_key_string(origin, new_key.public_key())
    assert stat.S_IMODE(settings.checkpoint_key.stat().st_mode) == 0o600
    assert len((federation / "gateway/checkpoint.keys").read_text().splitlines()) == 2

    async with running_gateway(settings) as gateway:
        rotation = json.loads((await entries_of(gateway))[rotated_at])
        assert rotation["event"] == "admin"
        assert (rotation["action"], rotation["old_key"], rotation["new_key"]) == (ROTATION_ACTION, old_v, new_v)
        assert gateway.ledger.verifier_key == new_v
        await submit(gateway, federation, 2)
        async with GatewayClient(gateway.url, MemberCredentials.from_federation(federation, "AUDIT-GACC")) as auditor:
            assert await auditor.verifier_key() == new_v
            assert await auditor.verifier_keys() == [old_v, new_v]
        online = await verify_over_rest(gateway.url, federation, "AUDIT-GACC")  # the new key's checkpoint
        assert (online.signed_by, online.key_rotations) == (new_v, 1)
        online_old = await verify_over_rest(gateway.url, federation, "AUDIT-GACC", old_note)
        assert (online_old.signed_by, online_old.checkpoint_size) == (old_v, rotated_at)
        entries = await entries_of(gateway)

    after = await verify_from_store(settings)
    assert (after.signed_by, after.key_rotations, after.size) == (new_v, 1, rotated_at + 1 + 2)
    assert (await verify_from_store(settings, old_note)).signed_by == old_v  # the old checkpoint still verifies

    unrelated = Ed25519PrivateKey.generate()
    with pytest.raises(SignatureRejected, match="with a known key"):
        await verify_from_store(settings, forged_note(entries, len(entries), origin, unrelated))
    with pytest.raises(SignatureRejected, match="was in force"):  # the retired key signing past the rotation
        await verify_from_store(settings, forged_note(entries, len(entries), origin, old_key))
    with pytest.raises(SignatureRejected, match="was in force"):  # the new key signing before it
        await verify_from_store(settings, forged_note(entries, rotated_at, origin, new_key))

    async with running_gateway(settings) as gateway:  # a plain restart records nothing more
        rotations = [e for e in await entries_of(gateway) if ROTATION_ACTION.encode() in e]
        assert len(rotations) == 1

    unrelated_note = tmp_path / "unrelated.note"
    unrelated_note.write_bytes(forged_note(entries, len(entries), origin, unrelated))
    config = str(federation / "gateway.toml")
    result = await asyncio.to_thread(cli, "audit", "verify", "--config", config, "--checkpoint", str(unrelated_note))
    assert result.returncode == 1
    assert result.stderr.startswith("error: SIGNATURE_INVALID")
    saved = tmp_path / "old.note"
    saved.write_bytes(old_note)
    result = await asyncio.to_thread(cli, "audit", "verify", "--config", config, "--checkpoint", str(saved))
    assert result.returncode == 0, result.stderr
    assert f"checkpoint covers {rotated_at}" in result.stdout
    assert f"signed by {old_v}" in result.stdout


async def test_the_gateway_refuses_to_sign_with_a_key_outside_the_published_history(tmp_path: Path) -> None:
    create_federation(tmp_path)
    settings = settings_for(tmp_path)
    stranger = Ed25519PrivateKey.generate()
    write_secret(settings.checkpoint_key, stranger.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    with pytest.raises(Unavailable, match="not the last key of its published history"):
        async with running_gateway(settings):
            pass


def test_rotate_key_command(tmp_path: Path) -> None:
    create_federation(tmp_path)
    config = str(tmp_path / "gateway.toml")
    result = cli("checkpoint", "rotate-key", "--config", config)
    assert result.returncode == 0, result.stderr
    assert "checkpoint key rotated" in result.stdout
    new = load_checkpoint_key(tmp_path / "gateway/checkpoint.key")
    assert verifier_key_string("cgw.cn-gacc.example/ledger", new.public_key()) in result.stdout
    (tmp_path / "gateway/checkpoint.key").unlink()
    result = cli("checkpoint", "rotate-key", "--config", config)
    assert result.returncode == 2
    assert result.stderr.startswith("error: UNAVAILABLE")


@pytest.mark.redis
async def test_gateways_sharing_one_redis_ledger_record_the_rotation_and_verify(tmp_path: Path) -> None:
    """Two processes of one Redis ledger restart together on the rotated key: both may record the rotation
    (``gateway.core.keyhistory``: a rotation to the key already in force changes nothing); every published checkpoint
    verifies."""
    federation = tmp_path / "fed"
    create_federation(federation)
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"

    def settings(name: str) -> Settings:
        overrides = {
            "gateway.rest_port": 0,
            "gateway.grpc_port": 0,
            "gateway.data_dir": str(tmp_path / name),
            "store.backend": "redis",
            "store.redis_url": REDIS_URL,
            "store.key_prefix": prefix,
            "store.allow_no_persistence": True,
        }
        return load_settings(federation / "gateway.toml", overrides=overrides)

    first, second = settings("a"), settings("b")
    try:
        async with running_gateway(first) as gateway:
            await submit(gateway, federation, 2)
        _, new_v = rotate_checkpoint_key(first.checkpoint_key, first.origin)
        async with AsyncExitStack() as stack:
            one, two = await asyncio.gather(
                stack.enter_async_context(running_gateway(first)), stack.enter_async_context(running_gateway(second))
            )
            assert one.ledger.verifier_key == two.ledger.verifier_key == new_v
            await submit(two, federation, 2)
            recorded = [e for e in await entries_of(one) if ROTATION_ACTION.encode() in e]
            assert 1 <= len(recorded) <= 2  # 2 only when both starts raced past each other's catch-up
        for config in (first, second):
            report = await verify_from_store(config)
            assert (report.signed_by, report.key_rotations) == (new_v, 1)
    finally:
        store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
        try:
            await store.delete_all()
        finally:
            await store.close()
