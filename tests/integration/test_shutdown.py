"""Graceful shutdown: leaving ``running_gateway`` stops taking connections, lets the requests and pushes in
flight finish (long-poll answered, push outcome recorded), then closes the store."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from gateway.app.main import running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayUnreachable, MemberCredentials
from gateway.demo.samples import release_notice, to_bytes
from gateway.infra.sqlite import SqliteStore
from tests.integration.webhook_receiver import WebhookReceiver, push_federation

PORT = "PORT-NLRTM"


async def test_shutdown_drains_a_long_poll_and_a_push_in_flight(federation: Path, tmp_path: Path) -> None:
    receiver = await WebhookReceiver(federation, delay=1.0).start()  # a slow webhook: the push is in flight
    fed = push_federation(federation, tmp_path / "fed", member=PORT, url=receiver.url)
    settings = load_settings(
        fed / "gateway.toml",
        overrides={
            "gateway.rest_port": 0,
            "gateway.grpc_port": 0,
            "gateway.data_dir": str(tmp_path / "data"),
            "delivery.poll_interval_seconds": 0.05,
        },
    )
    async with AsyncExitStack() as outer:
        outer.push_async_callback(receiver.stop)
        stack = AsyncExitStack()
        gateway = await stack.enter_async_context(running_gateway(settings))
        gacc = GatewayClient(gateway.url, MemberCredentials.from_federation(fed, "CN-GACC"))
        auditor = GatewayClient(gateway.url, MemberCredentials.from_federation(fed, "AUDIT-GACC"))
        outer.push_async_callback(gacc.close)
        outer.push_async_callback(auditor.close)
        sent = await gacc.submit("release.notice.v1", [PORT], to_bytes(release_notice()), schema="cgw.v1.ReleaseNotice")
        long_poll = asyncio.create_task(gacc.pull(wait=2))  # CN-GACC's inbox is empty: this waits
        await receiver.wait_for(1)  # the push is in the receiver's hands, its answer is 1 s away
        await asyncio.sleep(0.2)

        stopping = asyncio.create_task(stack.aclose())
        await asyncio.sleep(0.2)
        with pytest.raises(GatewayUnreachable):  # the listener is closed: no new work is taken
            await auditor.checkpoint()
        assert (await long_poll)["items"] == []  # answered, not cut off
        await stopping

    store = await SqliteStore.open(tmp_path / "data" / "gateway.db")
    try:
        size = await store.ledger_size()
        events = [json.loads(e.data) for e in await store.ledger_entries(0, size)]
        assert await store.pull(PORT, 0, 10) == []  # the push finished and was recorded before the store closed
    finally:
        await store.close()
    [delivered] = [e for e in events if e["event"] == "delivered"]
    assert delivered["message_id"] == sent.body["message_id"]
