"""Helpers shared by the gRPC integration tests: a client factory bound to the running gateway's gRPC port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway.app.main import Gateway
from gateway.client.grpc_client import GrpcGatewayClient
from gateway.client.rest import MemberCredentials

GrpcClientFactory = Callable[[str], GrpcGatewayClient]


@pytest.fixture
async def grpc_clients(gateway: Gateway, federation: Path) -> AsyncIterator[GrpcClientFactory]:
    assert gateway.grpc_target is not None
    made: list[GrpcGatewayClient] = []

    def make(member: str) -> GrpcGatewayClient:
        client = GrpcGatewayClient(gateway.grpc_target or "", MemberCredentials.from_federation(federation, member))
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
