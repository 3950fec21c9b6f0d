"""Two gateway processes' worth of gateways on ONE Redis store: an aeo.status.v1 accepted by one applies at the
other within a refresh (it follows the shared ledger), because each keeps its own aeo.db."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.demo.aeosamples import EU_PARTNER_LIST_CSV, SUSPENDABLE_AEO, SUSPENDABLE_EORI, status_update
from gateway.features.aeo import recognition
from gateway.infra.aeo_store import import_list_file
from gateway.infra.redis_store import RedisStore
from tests.redisenv import REDIS_URL

pytestmark = pytest.mark.redis


@pytest.fixture
async def pair(federation: Path, tmp_path: Path) -> AsyncIterator[tuple[Gateway, Gateway]]:
    prefix = f"cgw-aeo-{uuid.uuid4().hex[:12]}"
    listing = tmp_path / "eu.csv"
    listing.write_text(EU_PARTNER_LIST_CSV)
    try:
        async with AsyncExitStack() as stack:
            gateways = []
            for name in ("a", "b"):
                data = tmp_path / f"data-{name}"
                import_list_file(data, listing, issuer="EU")
                settings = load_settings(
                    federation / "gateway.toml",
                    overrides={
                        "gateway.rest_port": 0,
                        "gateway.grpc_port": 0,
                        "gateway.data_dir": str(data),
                        "store.backend": "redis",
                        "store.redis_url": REDIS_URL,
                        "store.key_prefix": prefix,
                        "store.allow_no_persistence": True,
                    },
                )
                gateways.append(await stack.enter_async_context(running_gateway(settings)))
            yield gateways[0], gateways[1]
    finally:
        store = await RedisStore.open(REDIS_URL, key_prefix=prefix, allow_no_persistence=True)
        try:
            await store.delete_all()
        finally:
            await store.close()


async def test_a_suspension_accepted_by_one_process_applies_at_the_other(
    pair: tuple[Gateway, Gateway], federation: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recognition, "REFRESH_SECONDS", 0.0)
    first, second = pair
    update = status_update(SUSPENDABLE_AEO, "suspended", since=datetime.now(UTC).date(), eori=SUSPENDABLE_EORI)
    async with (
        GatewayClient(first.url, MemberCredentials.from_federation(federation, "NL-DOUANE")) as douane,
        GatewayClient(second.url, MemberCredentials.from_federation(federation, "CN-GACC")) as gacc,
    ):
        assert (await gacc.aeo_recognition(SUSPENDABLE_EORI))["recognised"]
        await douane.submit("aeo.status.v1", ["CN-GACC"], update, schema="cgw.v1.AeoStatusUpdate")
        after = await gacc.aeo_recognition(SUSPENDABLE_EORI)
    assert after["reasons"] == ["suspended"]
