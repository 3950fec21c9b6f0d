"""Fixtures that run the real gateway on loopback: a dev federation (once per session) and a fresh gateway
(own data directory, free port) per test, driven by the reference client over HTTPS with mTLS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.infra.devpki import create_federation
from tests.redisenv import REDIS_URL


def redis_overrides(data_dir: Path, prefix: str) -> dict[str, Any]:
    """Settings overrides for an in-process gateway on loopback ports over the test Redis under ``prefix`` (the
    machine's Redis has no AOF, hence ``allow_no_persistence``)."""
    return {
        "gateway.rest_port": 0,
        "gateway.grpc_port": 0,
        "gateway.data_dir": str(data_dir),
        "store.backend": "redis",
        "store.redis_url": REDIS_URL,
        "store.key_prefix": prefix,
        "store.allow_no_persistence": True,
    }


@pytest.fixture(autouse=True)
def _structlog_defaults() -> Iterator[None]:
    """A test that runs the CLI in-process (``configure_logging``) binds structlog to pytest's captured stdout,
    which is closed after that test; later log lines would then fail with "I/O operation on closed file"."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("federation")
    create_federation(directory)
    return directory


@pytest.fixture
async def gateway(federation: Path, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = load_settings(
        federation / "gateway.toml",
        overrides={"gateway.rest_port": 0, "gateway.grpc_port": 0, "gateway.data_dir": str(tmp_path / "data")},
    )
    async with running_gateway(settings) as running:
        yield running


ClientFactory = Callable[..., GatewayClient]


async def summarized(gateway: Gateway) -> dict[tuple[str, str], int]:
    """Write the pending ``rejected_summary`` now and return every summary's counts by (code, adapter): the
    refusals of unauthenticated callers (gateway/exchange/rejections.py)."""
    await gateway.pipeline.rejections.flush()
    size = await gateway.store.ledger_size()
    counts: dict[tuple[str, str], int] = {}
    for entry in await gateway.store.ledger_entries(0, size):
        event = json.loads(entry.data)
        for count in event["counts"] if event["event"] == "rejected_summary" else []:
            key = (count["code"], count["adapter"])
            counts[key] = counts.get(key, 0) + count["count"]
    return counts


@pytest.fixture
async def clients(gateway: Gateway, federation: Path) -> AsyncIterator[ClientFactory]:
    made: list[GatewayClient] = []

    def make(member: str, *, mtls: bool = True) -> GatewayClient:
        client = GatewayClient(gateway.url, MemberCredentials.from_federation(federation, member), mtls=mtls)
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()
