"""cgw.v1.PortStream over gRPC (issue 8): the same entries and snapshot as REST, a follower that receives new
entries as customs decides, and the same Cedar read_port refusal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.app.main import Gateway
from gateway.client.grpc_client import GrpcGatewayClient
from gateway.client.rest import GatewayClient, GatewayClientError
from gateway.core.model import Tlp
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import to_bytes
from tests.integration.conftest import ClientFactory
from tests.integration.grpc_fixtures import GrpcClientFactory, grpc_clients

__all__ = ["grpc_clients"]  # the fixture, imported for pytest

A, B, C = portsamples.CONTAINERS


async def decide(gacc: GatewayClient, decision: str, version: int, *containers: str) -> None:
    notice = to_bytes(portsamples.release_notice(decision, version, containers))
    await gacc.submit("release.notice.v1", ["PORT-NLRTM"], notice, schema="cgw.v1.ReleaseNotice", tlp=Tlp.GREEN)


async def collect(port: GrpcGatewayClient, count: int, after: int) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async for entry in port.port_notices("NLRTM", after=after, follow=True, deadline_seconds=10):
        got.append(entry)
        if len(got) == count:
            break
    return got


async def test_grpc_stream_and_snapshot_match_rest_and_follow_live(
    gateway: Gateway, clients: ClientFactory, grpc_clients: GrpcClientFactory
) -> None:
    gacc, rest_port, port = clients("CN-GACC"), clients("PORT-NLRTM"), grpc_clients("PORT-NLRTM")
    await decide(gacc, "HOLD", 1, A, B)
    follower = asyncio.create_task(collect(port, 3, after=2))
    await asyncio.sleep(0.2)  # the follower is waiting on an empty stream
    await decide(gacc, "RELEASED", 2, A)
    await decide(gacc, "INSPECT", 3, B)
    await decide(gacc, "HOLD", 4, C)
    live = await asyncio.wait_for(follower, 10)
    assert [e["seq"] for e in live] == [3, 4, 5]

    rest = (await rest_port.port_notices("NLRTM", after=0))["notices"]
    streamed = [e async for e in port.port_notices("NLRTM", after=0)]
    assert streamed == rest
    assert await port.port_snapshot("NLRTM") == await rest_port.port_snapshot("NLRTM")


async def test_grpc_readers_are_checked(gateway: Gateway, grpc_clients: GrpcClientFactory) -> None:
    cbp = grpc_clients("US-CBP")
    with pytest.raises(GatewayClientError) as denied:
        await cbp.port_snapshot("NLRTM")
    assert denied.value.code == "POLICY_DENIED"
    with pytest.raises(GatewayClientError) as stream_denied:
        _ = [e async for e in cbp.port_notices("NLRTM")]
    assert stream_denied.value.code == "POLICY_DENIED"
