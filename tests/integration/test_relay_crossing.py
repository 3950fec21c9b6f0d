"""Two real gateways relaying to each other (issue 19): CN-GACC and NL-DOUANE as ``init --peers 2`` writes them (each
its own CA, members and gateway TLS client certificate, one signed directory), both running on loopback.

What crosses the border and what the sender sees of it: a carrier's manifest filed at CN for NL's officer reaches
NL's inbox, and the status at CN shows NL's signed receipt; the carrier's recall is relayed too and withdraws the
copy NL holds (NL's own recall path, ``recalled`` in NL's ledger), with NL's receipt for the recall at CN; a forward
by a CN member to NL's officer is relayed as the forward message. A relay NL refuses is a dead letter at CN that
the listing shows with the peer and its error code, and that redrive sends again.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.soap import names
from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import Settings, load_settings
from gateway.client.rest import GatewayClient, MemberCredentials, ReceiptVerifier
from gateway.core.model import Tlp
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo.programsamples import intel_recall
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.interfaces.protocols import relay_queue
from tests.integration.federationpair import Pair, build_peers, eventually, ledger

MANIFEST = "manifest.cargo.v1"
RECALL = "intel.recall.v1"
CARRIER, OFFICER, CN_HOME = "CARRIER-COSCO", "NL-DOUANE", "CN-GACC"
NL_QUEUE = relay_queue("NL-DOUANE")
CLI = str(Path(sys.executable).parent / "customs-gateway")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    return build_peers(tmp_path_factory.mktemp("relay-crossing"))


@dataclass
class Both:
    pair: Pair
    cn: Gateway
    nl: Gateway
    clients: list[GatewayClient]

    def client(self, member: str) -> GatewayClient:
        """``member``'s REST client at the gateway that serves it (its own administration's CA and credentials)."""
        at_cn = member in (CARRIER, CN_HOME)
        fed, gateway = (self.pair.fed_a, self.cn) if at_cn else (self.pair.fed_b, self.nl)
        made = GatewayClient(
            gateway.url, MemberCredentials.from_federation(fed, member), gateway_member=CN_HOME if at_cn else OFFICER
        )
        self.clients.append(made)
        return made

    def nl_receipts(self) -> ReceiptVerifier:
        """NL's receipts verify against NL's own CA: its ``signing_anchors`` in the directory."""
        return ReceiptVerifier(self.pair.fed_b / "ca" / "root-ca.crt")


@pytest.fixture
async def both(pair: Pair, tmp_path: Path) -> AsyncIterator[Both]:
    fast = {"delivery.poll_interval_seconds": 0.1}
    async with (
        running_gateway(pair.settings(pair.fed_b, tmp_path / "nl")) as nl,
        running_gateway(_settings(pair, pair.fed_a, tmp_path / "cn", fast)) as cn,
    ):
        made = Both(pair, cn, nl, [])
        try:
            yield made
        finally:
            for client in made.clients:
                await client.close()


def _settings(pair: Pair, fed: Path, data: Path, extra: dict[str, Any]) -> Settings:
    return load_settings(
        fed / "gateway.toml", overrides={"gateway.grpc_port": 0, "gateway.data_dir": str(data), **extra}
    )


def _remote(status: dict[str, Any]) -> dict[str, Any]:
    [state] = [s for s in status["recipients"] if s["member"] == OFFICER]
    return state


async def _delivered_at_cn(carrier: GatewayClient, message_id: str) -> dict[str, Any]:
    async def delivered() -> dict[str, Any] | None:
        state = _remote(await carrier.status(CARRIER, message_id))
        return state if state["state"] == "delivered" else None

    state: dict[str, Any] = await eventually(delivered)
    return state


async def _file_manifest(carrier: GatewayClient) -> str:
    done = await carrier.submit(MANIFEST, [OFFICER], to_bytes(cargo_manifest()), schema=MESSAGE_TYPES[MANIFEST].schema)
    assert done.status == 201
    return str(done.body["message_id"])


async def test_a_recall_crosses_the_border_and_withdraws_the_copy_nl_holds(both: Both) -> None:
    carrier, officer = both.client(CARRIER), both.client(OFFICER)
    manifest_id = await _file_manifest(carrier)

    relayed = await _delivered_at_cn(carrier, manifest_id)
    assert (relayed["peer"], relayed["delivery"]["attempts"], relayed["delivery"]["last_code"]) == (
        "NL-DOUANE",
        1,
        None,
    )
    claims = both.nl_receipts().read(relayed["delivery"]["receipt"])  # NL's signature, NL's CA
    assert (claims["gateway"], claims["from"], claims["message_id"]) == ("NL-DOUANE", CARRIER, manifest_id)
    [item] = (await officer.pull())["items"]
    assert (item["from"], item["message_id"]) == (CARRIER, manifest_id)

    recall = to_bytes(intel_recall(CARRIER, manifest_id))
    done = await carrier.submit(RECALL, [OFFICER], recall, schema=MESSAGE_TYPES[RECALL].schema)
    recall_id = str(done.body["message_id"])

    relayed_recall = await _delivered_at_cn(carrier, recall_id)
    claims = both.nl_receipts().read(relayed_recall["delivery"]["receipt"])
    assert (claims["gateway"], claims["from"], claims["message_id"]) == ("NL-DOUANE", CARRIER, recall_id)
    # on NL: the copy NL's officer held is withdrawn by NL's own recall path, and the recall is in its inbox
    nl_ledger = await ledger(both.nl)
    [recalled] = [e for e in nl_ledger if e["event"] == "recalled"]
    assert (recalled["sender"], recalled["message_id"], recalled["withdrawn_from"]) == (CARRIER, manifest_id, [OFFICER])
    assert recalled["recall"] == {"sender": CARRIER, "message_id": recall_id}
    [accepted_recall] = [e for e in nl_ledger if e["event"] == "accepted" and e.get("message_id") == recall_id]
    assert accepted_recall["relayed_by"] == "CN-GACC"
    assert [(i["from"], i["message_id"]) for i in (await officer.pull())["items"]] == [(CARRIER, recall_id)]
    at_nl = await officer.status(CARRIER, manifest_id)
    assert [(s["member"], s["state"], s["peer"]) for s in at_nl["recipients"]] == [(OFFICER, "withdrawn", None)]
    # on CN: the original's relay entry stays delivered evidence (NL's receipt kept), withdrawn by the recall
    at_cn = _remote(await carrier.status(CARRIER, manifest_id))
    assert (at_cn["state"], at_cn["withdrawn_by"]) == ("withdrawn", {"from": CARRIER, "message_id": recall_id})
    assert at_cn["delivery"]["receipt"] == relayed["delivery"]["receipt"]
    soap = await _soap_states(carrier, manifest_id)  # SOAP GetStatus carries the same relay fields
    assert soap == [(OFFICER, "withdrawn", "NL-DOUANE", relayed["delivery"]["receipt"])]
    delivered = [e for e in await ledger(both.cn) if e["event"] == "relay_delivered"]
    assert [(e["message_id"], e["peer"]) for e in delivered] == [(manifest_id, "NL-DOUANE"), (recall_id, "NL-DOUANE")]


async def _soap_states(client: GatewayClient, message_id: str) -> list[tuple[str | None, ...]]:
    """SOAP 1.1 GetStatus by ``client`` (mTLS) for CARRIER's message: (member, state, peer, peerReceipt) each."""
    body = (
        f'<s:Envelope xmlns:s="{names.SOAP11}"><s:Header/><s:Body><GetStatus xmlns="{names.CGW}">'
        f"<from>{CARRIER}</from><messageId>{message_id}</messageId></GetStatus></s:Body></s:Envelope>"
    ).encode()
    _, answer, _ = await client._call("POST", names.SOAP_PATH, data=body, headers={"Content-Type": names.MEDIA_SOAP11})
    root = etree.fromstring(answer, etree.XMLParser(resolve_entities=False, no_network=True))
    ns = {"c": names.CGW}
    return [
        tuple(state.findtext(f"c:{tag}", namespaces=ns) for tag in ("member", "state", "peer", "peerReceipt"))
        for state in root.iterfind(".//c:recipientState", ns)
    ]


async def test_a_forward_to_nls_officer_is_relayed_as_the_forward(both: Both) -> None:
    carrier, gacc, officer = both.client(CARRIER), both.client(CN_HOME), both.client(OFFICER)
    schema = MESSAGE_TYPES[MANIFEST].schema
    done = await carrier.submit(MANIFEST, [CN_HOME], to_bytes(cargo_manifest()), schema=schema, tlp=Tlp.CLEAR)
    original_id = str(done.body["message_id"])
    [item] = (await gacc.pull())["items"]
    jws = gacc.sign(MANIFEST, [OFFICER], item["payload"], schema=schema, tlp=Tlp.CLEAR)  # TLP:CLEAR travels anywhere

    forwarded = await gacc.forward_signed(CARRIER, original_id, jws)

    forward_id = str(forwarded.body["message_id"])

    async def delivered() -> dict[str, Any] | None:
        found = _remote(await gacc.status(CN_HOME, forward_id))
        return found if found["state"] == "delivered" else None

    state = await eventually(delivered)
    assert state["peer"] == "NL-DOUANE"
    assert both.nl_receipts().read(state["delivery"]["receipt"])["message_id"] == forward_id
    # on NL it is the forwarder's message over the original payload bytes (NL holds no original to link it to)
    [got] = (await officer.pull())["items"]
    assert (got["from"], got["message_id"], got["payload"]) == (CN_HOME, forward_id, item["payload"])
    [accepted] = [e for e in await ledger(both.cn) if e["event"] == "accepted" and e["message_id"] == forward_id]
    assert (accepted["action"], accepted["relay"]) == ("forward", {"NL-DOUANE": [OFFICER]})
    assert (await carrier.status(CARRIER, original_id))["forwards"][0]["message_id"] == forward_id


async def test_a_relay_to_a_peer_that_is_down_is_a_dead_letter_naming_the_peer_and_redrive_sends_it(
    pair: Pair, tmp_path: Path
) -> None:
    """NL is down while CN relays (one attempt allowed: the dead letter comes at once); the listing shows the relay
    entry with its peer; once NL is up, the operator's redrive relays it and the status shows NL's receipt."""
    once = {"delivery.poll_interval_seconds": 0.1, "delivery.max_attempts": 1}
    async with running_gateway(_settings(pair, pair.fed_a, tmp_path / "cn", once)) as cn:
        both = Both(pair, cn, cn, [])
        try:
            carrier, gacc = both.client(CARRIER), both.client(CN_HOME)
            manifest_id = await _file_manifest(carrier)

            async def dead() -> dict[str, Any] | None:
                state = _remote(await carrier.status(CARRIER, manifest_id))
                return state if state["state"] == "dead-lettered" else None

            state = await eventually(dead)
            assert (state["peer"], state["delivery"]["last_status"], state["delivery"]["receipt"]) == (
                "NL-DOUANE",
                "connect-error",
                None,
            )
            [letter] = (await gacc.dead_letters())["items"]
            assert (letter["message_id"], letter["recipient"], letter["peer"]) == (manifest_id, NL_QUEUE, "NL-DOUANE")

            async with running_gateway(pair.settings(pair.fed_b, tmp_path / "nl")) as nl:
                both.nl = nl
                assert await gacc.redrive([letter["cursor"]]) == 1
                relayed = await _delivered_at_cn(carrier, manifest_id)
                assert both.nl_receipts().read(relayed["delivery"]["receipt"])["message_id"] == manifest_id
                assert (await gacc.dead_letters())["items"] == []
                [item] = (await both.client(OFFICER).pull())["items"]
                assert item["message_id"] == manifest_id
        finally:
            for client in both.clients:
                await client.close()


async def test_the_status_command_shows_the_peer_and_its_receipt(both: Both) -> None:
    carrier = both.client(CARRIER)
    manifest_id = await _file_manifest(carrier)
    relayed = await _delivered_at_cn(carrier, manifest_id)
    who = ["--url", both.cn.url, "--federation", str(both.pair.fed_a), "--as", CARRIER]
    for transport in ("rest", "grpc"):
        url = both.cn.url if transport == "rest" else str(both.cn.grpc_target)
        who[1] = url
        process = await asyncio.create_subprocess_exec(
            CLI, "status", *who, "--transport", transport, CARRIER, manifest_id, stdout=PIPE, stderr=PIPE
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, out + err
        [line] = [line for line in out.decode().splitlines() if line.strip().startswith(OFFICER)]
        receipt_sha = hashlib.sha256(relayed["delivery"]["receipt"].encode()).hexdigest()[:16]
        assert "delivered" in line and "relayed to NL-DOUANE" in line and "1 relay attempt(s)" in line, line
        assert f"NL-DOUANE's receipt sha256 {receipt_sha}" in line, line
