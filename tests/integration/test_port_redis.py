"""Port release streams on the shared Redis store (issue 8): two gateway processes (two in-process gateways, one Redis,
one key prefix) share every port's standings and stream. A port long-polling gateway B is answered when customs decides
through gateway A (the follower re-reads the shared stream every second, ``gateway.features.release.portstream``), the
sequence stays dense across both, and a gate-out through B sees A's release."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core.model import Tlp
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import to_bytes
from gateway.infra.redis_ports import RedisPortStreams
from gateway.infra.redis_store import RedisStore
from tests.integration.conftest import REDIS_URL, redis_overrides
from tests.integration.test_crash_safety import Served

pytestmark = pytest.mark.redis

A, B = portsamples.CONTAINERS[:2]


@pytest.fixture
async def pair(federation: Path, tmp_path: Path) -> AsyncIterator[tuple[Gateway, Gateway]]:
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    try:
        async with AsyncExitStack() as stack:
            gateways = []
            for name in ("a", "b"):
                overrides = redis_overrides(tmp_path / name, prefix)
                settings = load_settings(federation / "gateway.toml", overrides=overrides)
                gateways.append(await stack.enter_async_context(running_gateway(settings)))
            yield gateways[0], gateways[1]
    finally:
        store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
        streams = await RedisPortStreams.open(REDIS_URL, key_prefix=prefix)
        try:
            await store.delete_all()
            await streams.delete_all()
        finally:
            await store.close()
            await streams.close()


async def test_two_gateways_share_the_port_streams(pair: tuple[Gateway, Gateway], federation: Path) -> None:
    first, second = pair
    async with (
        GatewayClient(first.url, MemberCredentials.from_federation(federation, "CN-GACC")) as gacc,
        GatewayClient(second.url, MemberCredentials.from_federation(federation, "PORT-NLRTM")) as port,
    ):
        waiting = asyncio.create_task(port.port_notices("NLRTM", after=0, wait=10))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        for decision, version, containers in (("HOLD", 1, (A, B)), ("RELEASED", 2, (A,))):
            notice = to_bytes(portsamples.release_notice(decision, version, containers))
            await gacc.submit("release.notice.v1", ["PORT-NLRTM"], notice, schema="cgw.v1.ReleaseNotice", tlp=Tlp.GREEN)
        page = await asyncio.wait_for(waiting, 5)
        assert page["notices"] and page["notices"][0]["seq"] == 1
        assert time.monotonic() - started < 2.5  # within a re-read interval of the follower on the other process
        await port.submit("port.gate-out.v1", ["CN-GACC"], to_bytes(portsamples.gate_out(A)), schema="cgw.v1.GateOut")
        entries = (await gacc.port_notices("NLRTM"))["notices"]
        assert [(e["seq"], e["containerNumber"], e["status"]) for e in entries] == [
            (1, A, "HOLD"),
            (2, B, "HOLD"),
            (3, A, "RELEASED"),
            (4, A, "GATED_OUT"),
        ]
        assert await port.port_snapshot("NLRTM") == await gacc.port_snapshot("NLRTM")


async def test_two_gateway_processes_applying_notices_ledger_every_decision(federation: Path, tmp_path: Path) -> None:
    """Issue 17 item 7: two ``customs-gateway serve`` processes on one Redis prefix apply release notices for
    one port at once; the stream stays dense and every entry is named by exactly one ``port_update`` event."""
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    served = []
    for name in ("a", "b"):
        fed = tmp_path / name
        shutil.copytree(federation, fed, ignore=shutil.ignore_patterns("data", "*.db*"))
        with (fed / "gateway.toml").open("a") as config:
            config.write(f'\n[store]\nbackend = "redis"\nredis_url = "{REDIS_URL}"\nkey_prefix = "{prefix}"\n')
            config.write("allow_no_persistence = true\n")
        served.append(Served(fed))
    try:
        await asyncio.gather(*(s.start() for s in served))
        async with served[0].client("CN-GACC") as first, served[1].client("CN-GACC") as second:

            async def decide(version: int) -> None:
                containers = (portsamples.CONTAINERS[version % 3],)
                notice = to_bytes(portsamples.release_notice("HOLD", version, containers))
                client = first if version % 2 else second
                await client.submit("release.notice.v1", ["PORT-NLRTM"], notice, schema="cgw.v1.ReleaseNotice")

            await asyncio.gather(*(decide(v) for v in range(1, 31)))
            entries = (await first.port_notices("NLRTM"))["notices"]
        await asyncio.gather(*(s.stop() for s in served))
        store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
        try:
            events = [json.loads(e.data) for e in await store.ledger_entries(0, await store.ledger_size())]
        finally:
            await store.close()
    finally:
        for s in served:
            if s.process is not None and s.process.returncode is None:
                s.process.kill()
                await s.process.wait()
        store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
        try:
            await store.delete_all()
        finally:
            await store.close()
    seqs = [int(e["seq"]) for e in entries]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 3
    updates = [e for e in events if e["event"] == "port_update"]
    assert len(updates) == 30  # one per notice, whichever process applied it
    assert sorted(seq for u in updates for seq in u["seqs"]) == seqs
