"""Relays over gRPC between two real gateways (issue 19; adapters/grpc_api/relay.py): CN-GACC with
``[federation] relay_transport = "grpc"`` relays to NL-DOUANE's ``Exchange.Relay`` at the ``grpc_target`` of NL's
directory entry, over mutual TLS with CN's gateway certificate.

While NL is down, the relay is retried (UNAVAILABLE, no receipt); once NL is up it is delivered with NL's signed
receipt, and NL ledgers it as a ``relay-grpc`` submission. A relay NL refuses for good (a release of a box at the
port NL serves, which only NL's own customs may decide: ``POLICY_DENIED``) is dead-lettered at the
first attempt, with NL's stable code, as over REST."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import running_gateway
from gateway.app.settings import Settings, load_settings
from gateway.client.rest import GatewayClient, MemberCredentials, ReceiptVerifier
from gateway.core.model import Tlp
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo import releasesamples
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.federationpair import Pair, build_peers, eventually, ledger

MANIFEST = "manifest.cargo.v1"
CARRIER, OFFICER, CN_HOME = "CARRIER-COSCO", "NL-DOUANE", "CN-GACC"
RELEASE, PORT = "release.notice.v1", "PORT-NLRTM"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return build_peers(tmp_path_factory.mktemp("relay-grpc"))


def _cn(pair: Pair, data: Path) -> Settings:
    return load_settings(
        pair.fed_a / "gateway.toml",
        overrides={
            "gateway.data_dir": str(data),
            "gateway.grpc_port": 0,
            "federation.relay_transport": "grpc",
            "delivery.poll_interval_seconds": 0.1,
            "delivery.backoff_base_seconds": 0.1,
            "delivery.backoff_max_seconds": 0.3,
            "delivery.max_attempts": 100,
        },
    )


def _nl(pair: Pair, data: Path) -> Settings:
    """NL on the REST and gRPC ports its directory entry names (CN relays to its grpc_target)."""
    return load_settings(pair.fed_b / "gateway.toml", overrides={"gateway.data_dir": str(data)})


def _remote(status: dict[str, Any]) -> dict[str, Any]:
    [state] = [s for s in status["recipients"] if s["member"] == OFFICER]
    return state


async def test_cn_relays_to_nl_over_grpc_with_retries_receipt_and_refusal(pair: Pair, tmp_path: Path) -> None:
    directory = pair.directory()
    assert directory.gateways[OFFICER].grpc_target  # init --peers names NL's gRPC listener
    schema = MESSAGE_TYPES[MANIFEST].schema
    async with (
        running_gateway(_cn(pair, tmp_path / "cn")) as cn,
        GatewayClient(cn.url, MemberCredentials.from_federation(pair.fed_a, CARRIER)) as carrier,
    ):
        sent = await carrier.submit(MANIFEST, [OFFICER], to_bytes(cargo_manifest("M-GRPC")), schema=schema)
        assert sent.status == 201
        message_id = str(sent.body["message_id"])

        async def retrying() -> dict[str, Any] | None:  # NL is down: UNAVAILABLE is retried
            state = _remote(await carrier.status(CARRIER, message_id))
            delivery = state["delivery"] or {}
            return state if delivery.get("attempts", 0) >= 2 and state["state"] == "retrying" else None

        state = await eventually(retrying)
        assert state["delivery"]["last_status"] == "UNAVAILABLE" and state["delivery"]["receipt"] is None

        async with running_gateway(_nl(pair, tmp_path / "nl")) as nl:

            async def delivered() -> dict[str, Any] | None:
                state = _remote(await carrier.status(CARRIER, message_id))
                return state if state["state"] == "delivered" else None

            state = await eventually(delivered)
            assert (state["peer"], state["delivery"]["last_status"]) == (OFFICER, "OK")
            receipt = ReceiptVerifier(pair.fed_b / "ca" / "root-ca.crt").read(state["delivery"]["receipt"])
            assert (receipt["message_id"], receipt["gateway"]) == (message_id, OFFICER)
            [accepted] = [e for e in await ledger(nl) if e["event"] == "accepted"]
            assert (accepted["message_id"], accepted["adapter"], accepted["relayed_by"]) == (
                message_id,
                "relay-grpc",
                CN_HOME,
            )
            [relayed] = [e for e in await ledger(cn) if e["event"] == "relay_delivered"]
            assert relayed["peer"] == OFFICER

            # a decision NL's policies refuse for good (CN may not release a box at a port NL serves): NL answers
            # POLICY_DENIED over gRPC, and CN dead-letters the relay at the first attempt with NL's stable code
            async with GatewayClient(cn.url, MemberCredentials.from_federation(pair.fed_a, CN_HOME)) as gacc:
                release = to_bytes(releasesamples.release_notice("RELEASED", 1, releasesamples.CONTAINERS[:1]))
                refused = await gacc.submit(
                    RELEASE, [PORT], release, schema=MESSAGE_TYPES[RELEASE].schema, tlp=Tlp.GREEN
                )
                assert refused.status == 201, refused.body
                refused_id = str(refused.body["message_id"])

                async def dead() -> dict[str, Any] | None:
                    status = await gacc.status(CN_HOME, refused_id)
                    [state] = [s for s in status["recipients"] if s["member"] == PORT]
                    return state if state["state"] == "dead-lettered" else None

                state = await eventually(dead)
            assert state["delivery"]["attempts"] == 1
            assert (state["delivery"]["last_status"], state["delivery"]["last_code"]) == (
                "PERMISSION_DENIED",
                "POLICY_DENIED",
            )
