"""A policy reload on one ``customs-gateway serve`` process reaches every process on the same Redis (issue 17 item 9;
``gateway.ops.policyadmin``: several processes, one policy set): the reloading process publishes the accepted
digest in the store, the others follow it from their (shared) policy directory within seconds, and every decision
names the digest of
the set that made it. A published digest that the files do not hold is refused and reported, never half-followed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.core.model import Tlp
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.redis_store import RedisStore
from gateway.interfaces.config import default_policies_dir
from gateway.ops.policyadmin import PolicySync
from tests.integration.conftest import redis_overrides
from tests.integration.test_redis_gateways import (
    MANIFEST,
    REDIS_URL,
    SCHEMA,
    Process,
    _delete,
    start_processes,
    stop_processes,
)

pytestmark = pytest.mark.redis

# Flips one permit to a deny without touching any policy test case: carriers file their manifests AMBER in every
# case, so the set still passes its tests (a reload checks them) while a GREEN manifest of COSCO is now refused.
HALT = """
@id("halt-green-carrier-manifests")
forbid (principal, action == Cgw::Action::"submit", resource == Cgw::MessageType::"manifest.cargo.v1")
when { principal.kind == "carrier" && context.tlp == "GREEN" };
"""
FOLLOW_WITHIN_SECONDS = 5.0


@dataclass
class Deployment:
    federation: Path
    policies: Path
    prefix: str
    urls: tuple[str, str]
    logs: tuple[Path, Path]


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    directory = tmp_path / "federation"
    policies = tmp_path / "policies"  # the directory both processes read (a shared volume in production)
    shutil.copytree(default_policies_dir(), policies)
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    processes: list[Process] = []
    try:
        start_processes(directory, prefix, processes, gateway_extra=f'policies_dir = "{policies}"\n')
        urls, logs = (processes[0][2], processes[1][2]), (processes[0][1], processes[1][1])
        yield Deployment(directory, policies, prefix, urls, logs)
    finally:
        stop_processes(processes, prefix)


async def green_manifest(carrier: GatewayClient) -> dict[str, Any]:
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA, tlp=Tlp.GREEN)
    return dict(sent.body)


async def decisions(store: RedisStore) -> list[dict[str, Any]]:
    size = await store.ledger_size()
    entries = []
    for start in range(0, size, 1000):
        entries += await store.ledger_entries(start, min(size, start + 1000))
    return [json.loads(e.data) for e in entries]


async def test_a_reload_on_one_process_is_followed_by_the_other_within_seconds(deployment: Deployment) -> None:
    def member(name: str, k: int) -> GatewayClient:
        return GatewayClient(deployment.urls[k], MemberCredentials.from_federation(deployment.federation, name))

    store = await RedisStore.open(REDIS_URL, key_prefix=deployment.prefix, allow_no_persistence=True)
    async with member("CN-GACC", 0) as gacc_a, member("CARRIER-COSCO", 1) as cosco_b:
        try:
            old = await store.published_policy()
            assert old is not None  # both processes published the set they started with
            before = await green_manifest(cosco_b)  # permitted on B under the old set

            (deployment.policies / "halt.cedar").write_text(HALT)
            reloaded = await gacc_a.reload_policies()  # on A only
            assert reloaded["accepted"] is True and reloaded["old_digest"] == old
            new = reloaded["new_digest"]
            assert await store.published_policy() == new
            began = time.monotonic()
            refused = ""
            while not refused:  # B decides with the new set within seconds
                try:
                    await green_manifest(cosco_b)
                except GatewayClientError as exc:
                    refused = f"{exc.status} {exc.code}"
                else:
                    assert time.monotonic() - began < FOLLOW_WITHIN_SECONDS, "B still decides with the old set"
            assert refused == "403 POLICY_DENIED"
            followed_after = time.monotonic() - began

            # a digest the shared files do not hold is refused and reported; the processes keep the set they run
            await store.publish_policy("0" * 64)
            began = time.monotonic()
            while not all("policy set is not the published one" in log.read_text() for log in deployment.logs):
                assert time.monotonic() - began < FOLLOW_WITHIN_SECONDS, [
                    log.read_text()[-2000:] for log in deployment.logs
                ]
                await asyncio.sleep(0.1)
            with pytest.raises(GatewayClientError) as still:
                await green_manifest(cosco_b)
            assert still.value.code == "POLICY_DENIED"
            events = await decisions(store)
        finally:
            await store.close()

    assert followed_after < FOLLOW_WITHIN_SECONDS
    reloads = [e for e in events if e["event"] == "policy_reloaded"]
    assert [(e["trigger"], e["by"], e["accepted"], e["old_digest"], e["new_digest"]) for e in reloads] == [
        ("admin", "CN-GACC", True, old, new),
        ("published", "", True, old, new),  # B followed, and says so in the shared ledger
    ]
    # every decision names the digest of the set that made it: the old one before, the new one after
    [accepted] = [e for e in events if e["event"] == "accepted" and e["message_id"] == before["message_id"]]
    assert accepted["policy_digest"] == old
    refusals = [e for e in events if e["event"] == "rejected" and e.get("code") == "POLICY_DENIED"]
    assert len(refusals) == 2
    assert all(e["policy_digest"] == new and e["policy"] == ["halt-green-carrier-manifests"] for e in refusals)
    allowed_meanwhile = [e for e in events if e["event"] == "accepted" and e["message_id"] != before["message_id"]]
    assert all(e["policy_digest"] == old for e in allowed_meanwhile)  # accepted while B still ran the old set


async def test_a_process_whose_files_lack_the_published_set_keeps_its_own_and_says_so(
    federation: Path, tmp_path: Path
) -> None:
    """Two processes (in one interpreter here) on one Redis with SEPARATE policy directories: the one whose files
    do not hold the published digest keeps the set it checked and reports the mismatch until its files catch up."""
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    dirs = [tmp_path / "policies-a", tmp_path / "policies-b"]
    for directory in dirs:
        shutil.copytree(default_policies_dir(), directory)
    try:
        async with AsyncExitStack() as stack:
            gateways = []
            for name, directory in zip("ab", dirs, strict=True):
                overrides = redis_overrides(tmp_path / name, prefix) | {"gateway.policies_dir": str(directory)}
                settings = load_settings(federation / "gateway.toml", overrides=overrides)
                gateways.append(await stack.enter_async_context(running_gateway(settings)))
            a, b = (g.policies for g in gateways)
            assert a is not None and b is not None
            old = a.sync.live
            assert a.sync.in_sync and b.sync == PolicySync(old, old)

            (dirs[0] / "halt.cedar").write_text(HALT)  # only A's files change
            reloaded = await a.reload("sighup")
            assert reloaded.accepted
            lagging = await b.follow()
            assert (lagging.live, lagging.published, lagging.in_sync) == (old, reloaded.new_digest, False)
            assert reloaded.new_digest[:12] in lagging.problem and old[:12] in lagging.problem
            assert gateways[1].state.require_authorizer().digest == old  # B still decides with the set it checked

            (dirs[1] / "halt.cedar").write_text(HALT)  # B's files catch up: B follows within a second
            async with asyncio.timeout(FOLLOW_WITHIN_SECONDS):
                while not b.sync.in_sync:  # noqa: ASYNC110 - polling state the follower loop updates
                    await asyncio.sleep(0.05)
            assert gateways[1].state.require_authorizer().digest == reloaded.new_digest == b.sync.published
    finally:
        await _delete(prefix)
