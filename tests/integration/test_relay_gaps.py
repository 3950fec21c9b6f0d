"""Two real gateways (CN-GACC and NL-DOUANE as ``init --peers 2`` writes them) on loopback, for the relay cases
beyond one peer's members (issue 19): a message addressed to members of both gateways, a recall racing its
original across the border, and a release decision taken at CN for the port NL serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import Settings, load_settings
from gateway.client.rest import GatewayClient, MemberCredentials, ReceiptVerifier
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo.programsamples import intel_recall
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.federationpair import Pair, build_peers

MANIFEST = "manifest.cargo.v1"
RECALL = "intel.recall.v1"
CARRIER, CN_HOME, OFFICER = "CARRIER-COSCO", "CN-GACC", "NL-DOUANE"
AT_CN = (CARRIER, CN_HOME, "AUDIT-GACC")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return build_peers(tmp_path_factory.mktemp("relay-gaps"))


def settings(fed: Path, data: Path, **extra: Any) -> Settings:
    overrides = {"gateway.grpc_port": 0, "gateway.data_dir": str(data), "delivery.poll_interval_seconds": 0.1}
    return load_settings(fed / "gateway.toml", overrides=overrides | extra)


@dataclass
class Both:
    pair: Pair
    cn: Gateway
    nl: Gateway
    clients: list[GatewayClient] = field(default_factory=list)

    def client(self, member: str) -> GatewayClient:
        """``member``'s REST client at the gateway that serves it (its own administration's credentials)."""
        at_cn = member in AT_CN
        fed, gateway = (self.pair.fed_a, self.cn) if at_cn else (self.pair.fed_b, self.nl)
        made = GatewayClient(
            gateway.url, MemberCredentials.from_federation(fed, member), gateway_member=CN_HOME if at_cn else OFFICER
        )
        self.clients.append(made)
        return made

    def nl_receipts(self) -> ReceiptVerifier:
        return ReceiptVerifier(self.pair.fed_b / "ca" / "root-ca.crt")

    async def close(self) -> None:
        for client in self.clients:
            await client.close()


@pytest.fixture
async def both(pair: Pair, tmp_path: Path) -> AsyncIterator[Both]:
    async with (
        running_gateway(settings(pair.fed_b, tmp_path / "nl")) as nl,
        running_gateway(settings(pair.fed_a, tmp_path / "cn")) as cn,
    ):
        made = Both(pair, cn, nl)
        try:
            yield made
        finally:
            await made.close()


async def eventually(check: Callable[[], Awaitable[Any]], *, seconds: float = 20.0) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        found = await check()
        if found:
            return found
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {seconds} s: {check}")
        await asyncio.sleep(0.1)


async def ledger(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]


def state_of(status: dict[str, Any], member: str) -> dict[str, Any]:
    [state] = [s for s in status["recipients"] if s["member"] == member]
    return state


async def delivered_to_nl(client: GatewayClient, sender: str, message_id: str) -> dict[str, Any]:
    async def delivered() -> dict[str, Any] | None:
        state = state_of(await client.status(sender, message_id), OFFICER)
        return state if state["state"] == "delivered" else None

    found: dict[str, Any] = await eventually(delivered)
    return found


# -- 1. members of both gateways in one message ------------------------------------------------------------


async def test_a_manifest_to_members_of_both_gateways_is_delivered_once_on_each_side(both: Both) -> None:
    carrier, gacc, officer = both.client(CARRIER), both.client(CN_HOME), both.client(OFFICER)
    done = await carrier.submit(
        MANIFEST, [CN_HOME, OFFICER], to_bytes(cargo_manifest()), schema=MESSAGE_TYPES[MANIFEST].schema
    )
    assert done.status == 201, done.body
    manifest_id = str(done.body["message_id"])

    relayed = await delivered_to_nl(carrier, CARRIER, manifest_id)
    # NL's receipt names the one recipient NL took; it verifies against NL's own CA
    claims = both.nl_receipts().read(relayed["delivery"]["receipt"])
    assert (claims["gateway"], claims["from"], claims["message_id"], claims["to"]) == (
        OFFICER,
        CARRIER,
        manifest_id,
        [OFFICER],
    )
    # CN delivers its own recipient locally, NL its own: one copy each, nothing relayed back
    assert [(i["from"], i["message_id"]) for i in (await gacc.pull())["items"]] == [(CARRIER, manifest_id)]
    assert [(i["from"], i["message_id"]) for i in (await officer.pull())["items"]] == [(CARRIER, manifest_id)]
    at_cn = await carrier.status(CARRIER, manifest_id)
    assert sorted((s["member"], s["peer"]) for s in at_cn["recipients"]) == [(CN_HOME, None), (OFFICER, OFFICER)]
    at_nl = await officer.status(CARRIER, manifest_id)
    assert [(s["member"], s["peer"]) for s in at_nl["recipients"]] == [(OFFICER, None)]
    [accepted] = [e for e in await ledger(both.nl) if e["event"] == "accepted" and e["message_id"] == manifest_id]
    assert (accepted["to"], accepted["delivered_here"], accepted["relayed_by"]) == (
        [CN_HOME, OFFICER],
        [OFFICER],
        CN_HOME,
    )
    assert "relay" not in accepted  # NL relays nothing on
    [at_cn_leaf] = [e for e in await ledger(both.cn) if e["event"] == "accepted" and e["message_id"] == manifest_id]
    assert at_cn_leaf["relay"] == {OFFICER: [OFFICER]}
    assert (await gacc.dead_letters())["items"] == []
    assert not [e for e in await ledger(both.nl) if e["event"] == "rejected"]

    # a recall to both: CN withdraws its own copy, NL (by the relayed recall) the copy it holds
    recall = to_bytes(intel_recall(CARRIER, manifest_id))
    recalled = await carrier.submit(RECALL, [CN_HOME, OFFICER], recall, schema=MESSAGE_TYPES[RECALL].schema)
    recall_id = str(recalled.body["message_id"])
    await delivered_to_nl(carrier, CARRIER, recall_id)
    at_nl = await officer.status(CARRIER, manifest_id)
    assert [(s["member"], s["state"]) for s in at_nl["recipients"]] == [(OFFICER, "withdrawn")]
    assert state_of(await carrier.status(CARRIER, manifest_id), CN_HOME)["state"] == "withdrawn"
