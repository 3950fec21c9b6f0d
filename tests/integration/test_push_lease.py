"""Two gateway workers on ONE Redis store push each due item once: the per-item push lease
(``gateway.delivery.worker.lease_key``, taken before a push and released once the outcome is recorded). Without it both
processes read the same due items and both push them."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.delivery.worker import lease_key
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.redis_store import RedisStore
from tests.integration.test_push_delivery import ledger, wait_until
from tests.integration.webhook_receiver import WebhookReceiver, push_federation
from tests.redisenv import REDIS_URL

pytestmark = pytest.mark.redis

MESSAGES = 12
PUSHED = "NL-DOUANE"  # receives cargo manifests by webhook in this test


async def send_manifests(gateway: Gateway, fed: Path, count: int) -> None:
    credentials = MemberCredentials.from_federation(fed, "CARRIER-COSCO")
    async with GatewayClient(gateway.url, credentials, mtls=True) as carrier:
        for _ in range(count):
            await carrier.submit(
                "manifest.cargo.v1", [PUSHED], to_bytes(cargo_manifest()), schema="cgw.v1.CargoManifest"
            )


@pytest.fixture
async def pair(federation: Path, tmp_path: Path) -> AsyncIterator[tuple[Gateway, Gateway, WebhookReceiver, Path]]:
    prefix = f"cgw-test-{uuid.uuid4().hex[:12]}"
    receiver = await WebhookReceiver(federation, delay=0.15).start()  # pushes overlap with the other's polls
    fed = push_federation(federation, tmp_path / "fed", member=PUSHED, url=receiver.url)
    try:
        async with AsyncExitStack() as stack:
            gateways = []
            for name in ("a", "b"):
                overrides: dict[str, Any] = {
                    "gateway.rest_port": 0,
                    "gateway.grpc_port": 0,
                    "gateway.data_dir": str(tmp_path / name),
                    "store.backend": "redis",
                    "store.redis_url": REDIS_URL,
                    "store.key_prefix": prefix,
                    "store.allow_no_persistence": True,  # the test Redis has no AOF
                    "delivery.poll_interval_seconds": 0.02,
                    "delivery.concurrency_per_recipient": 8,
                }
                settings = load_settings(fed / "gateway.toml", overrides=overrides)
                gateways.append(await stack.enter_async_context(running_gateway(settings)))
            yield gateways[0], gateways[1], receiver, fed
    finally:
        await receiver.stop()
        store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
        try:
            await store.delete_all()
        finally:
            await store.close()


async def test_two_workers_on_one_redis_push_each_item_once(
    pair: tuple[Gateway, Gateway, WebhookReceiver, Path],
) -> None:
    first, second, receiver, fed = pair
    await send_manifests(first, fed, MESSAGES)

    async def all_delivered() -> bool:
        return sum(e["event"] == "delivered" for e in await ledger(first)) >= MESSAGES

    await wait_until(all_delivered, within=20)
    await asyncio.sleep(0.3)  # a duplicate push would arrive now
    subjects = [json.loads(r.body)["subject"] for r in receiver.received]
    assert len(subjects) == len(set(subjects)) == MESSAGES  # every item pushed exactly once
    events = [e for e in await ledger(second) if e["event"] in {"delivered", "delivery_failed"}]
    assert len(events) == MESSAGES and {e["outcome"] for e in events} == {"delivered"}
    # the leases were released once the outcomes were recorded
    soon = datetime.now(UTC) + timedelta(seconds=5)
    assert all([await first.store.claim_once(lease_key(PUSHED, e["cursor"], 0), soon) for e in events])


async def test_a_lease_left_by_a_dead_process_holds_the_item_until_it_expires(
    pair: tuple[Gateway, Gateway, WebhookReceiver, Path],
) -> None:
    first, _, receiver, fed = pair
    # a process took the lease of the first item (cursor 1 of a fresh store) and died without releasing it
    assert await first.store.claim_once(lease_key(PUSHED, 1, 0), datetime.now(UTC) + timedelta(seconds=1))
    started = time.monotonic()
    await send_manifests(first, fed, 2)

    async def both_delivered() -> bool:
        return sum(e["event"] == "delivered" for e in await ledger(first)) == 2

    await wait_until(both_delivered)
    assert time.monotonic() - started >= 0.9  # the held item waited for the lease to expire
    delivered = [e["cursor"] for e in await ledger(first) if e["event"] == "delivered"]
    assert delivered == [2, 1]  # the free item went first; the held one after the expiry, once
    assert len(receiver.received) == 2
