"""Two real gateways (CN-GACC and NL-DOUANE as ``init --peers 2`` writes them) on loopback, for the relay cases
beyond one peer's members (issue 19): a message addressed to members of both gateways, a recall racing its
original across the border, and a release decision taken at CN for the port NL serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import Settings, load_settings
from gateway.client.rest import GatewayClient, MemberCredentials, ReceiptVerifier
from gateway.core.model import Tlp
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo import releasesamples as portsamples
from gateway.demo.programsamples import intel_recall
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.federationpair import Pair, build_peers, eventually, ledger
from tests.integration.federationpair import free_port as free_port_for_test

MANIFEST = "manifest.cargo.v1"
RECALL = "intel.recall.v1"
MANIFEST_SCHEMA = MESSAGE_TYPES[MANIFEST].schema
RELEASE, GATE_OUT, ALERT = "release.notice.v1", "port.gate-out.v1", "alert.gate-out.v1"
PORT = "PORT-NLRTM"
BOX, OTHER_BOX, _ = portsamples.CONTAINERS
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


def state_of(status: dict[str, Any], member: str) -> dict[str, Any]:
    [state] = [s for s in status["recipients"] if s["member"] == member]
    return state


async def delivered_to_nl(
    client: GatewayClient, sender: str, message_id: str, *, member: str = OFFICER
) -> dict[str, Any]:
    async def delivered() -> dict[str, Any] | None:
        state = state_of(await client.status(sender, message_id), member)
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


async def _true(value: bool) -> bool:
    return value


# -- 2. a recall never overtakes its original --------------------------------------------------------------


class HoldingProxy:
    """A TCP relay on NL's address in the directory, in front of NL's real listener (TLS passes through it
    untouched). While ``armed``, each NEW connection's bytes wait here: NL is unresponsive to the attempts that
    opened them, as a stalled peer would be. ``release`` lets them go LAST FIRST, so that a later attempt that
    was sent beside an earlier one would overtake it."""

    def __init__(self, listen_port: int, target_port: int) -> None:
        self.listen_port, self.target_port = listen_port, target_port
        self.armed = False
        self.held: list[asyncio.Event] = []  # one per held connection, in the order they were opened
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> HoldingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.listen_port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def release(self) -> None:
        self.armed = False
        for gate in reversed(self.held):
            gate.set()
            await asyncio.sleep(0.3)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        gate: asyncio.Event | None = None
        if self.armed:
            gate = asyncio.Event()
            self.held.append(gate)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, hold: asyncio.Event | None) -> None:
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                while data := await src.read(65536):
                    if hold is not None:
                        await hold.wait()
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(ConnectionError, OSError):
                dst.close()

        tasks = [
            asyncio.create_task(pipe(reader, upstream_writer, gate)),
            asyncio.create_task(pipe(upstream_reader, writer, None)),
        ]
        self._tasks.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.difference_update(tasks)


async def test_a_recall_waits_for_its_original_in_flight_to_the_same_peer(pair: Pair, tmp_path: Path) -> None:
    """NL stalls (its new connections are held) while CN relays the manifest and the carrier recalls it: both are
    queued at CN for NL, the manifest's attempt in flight. The recall is not relayed beside it (4 relays may run
    per peer): it waits, then follows the manifest, and NL withdraws the copy it took. Sent beside it, the recall
    would be let through first (the proxy releases the last connection first): NOT_FOUND, and NL would keep the
    manifest."""
    directory_port = int(pair.directory().gateways[OFFICER].rest_url.rsplit(":", 1)[1])
    real_port = free_port_for_test()
    nl_settings = settings(pair.fed_b, tmp_path / "nl", **{"gateway.rest_port": real_port})
    cn_settings = settings(pair.fed_a, tmp_path / "cn", **{"delivery.timeout_seconds": 30.0})
    async with (
        running_gateway(nl_settings) as nl,
        HoldingProxy(directory_port, real_port) as proxy,
        running_gateway(cn_settings) as cn,
    ):
        both = Both(pair, cn, nl)
        try:
            carrier, officer, gacc = both.client(CARRIER), both.client(OFFICER), both.client(CN_HOME)
            proxy.armed = True
            done = await carrier.submit(MANIFEST, [OFFICER], to_bytes(cargo_manifest()), schema=MANIFEST_SCHEMA)
            manifest_id = str(done.body["message_id"])
            assert cn.delivery is not None
            await eventually(lambda: _true(cn.delivery is not None and cn.delivery.in_flight == 1))  # stalled

            recall = to_bytes(intel_recall(CARRIER, manifest_id))
            recalled = await carrier.submit(RECALL, [OFFICER], recall, schema=MESSAGE_TYPES[RECALL].schema)
            assert recalled.status == 201
            recall_id = str(recalled.body["message_id"])
            await asyncio.sleep(1.5)  # fifteen dispatch polls: the recall's relay would have been tried by now
            assert cn.delivery.in_flight == 1  # the manifest's relay only: the recall's waits
            waiting = state_of(await carrier.status(CARRIER, recall_id), OFFICER)
            assert (waiting["state"], waiting["delivery"]) == ("pending", None), waiting  # never attempted

            await proxy.release()  # NL answers the manifest's relay; the recall follows
            relayed_recall = await delivered_to_nl(carrier, CARRIER, recall_id)
            assert relayed_recall["delivery"]["attempts"] == 1 and relayed_recall["delivery"]["last_code"] is None
            nl_ledger = await ledger(nl)
            accepted = [e["message_id"] for e in nl_ledger if e["event"] == "accepted"]
            assert accepted == [manifest_id, recall_id]
            [withdrawn] = [e for e in nl_ledger if e["event"] == "recalled"]
            assert (withdrawn["message_id"], withdrawn["withdrawn_from"]) == (manifest_id, [OFFICER])
            at_nl = await officer.status(CARRIER, manifest_id)
            assert [(s["member"], s["state"]) for s in at_nl["recipients"]] == [(OFFICER, "withdrawn")]
            assert (await gacc.dead_letters())["items"] == []
        finally:
            await both.close()


async def test_a_recall_the_peer_cannot_place_is_retried_not_dead_lettered(both: Both) -> None:
    """A recall of a manifest NL never got (the carrier sent it to CN's own officer only), addressed to NL's officer:
    NL answers NOT_FOUND, and CN backs off and tries again instead of giving the recall up at once."""
    carrier = both.client(CARRIER)
    done = await carrier.submit(MANIFEST, [CN_HOME], to_bytes(cargo_manifest()), schema=MANIFEST_SCHEMA)
    manifest_id = str(done.body["message_id"])
    recall = to_bytes(intel_recall(CARRIER, manifest_id))
    recalled = await carrier.submit(RECALL, [OFFICER], recall, schema=MESSAGE_TYPES[RECALL].schema)
    recall_id = str(recalled.body["message_id"])

    async def refused_once() -> dict[str, Any] | None:
        state = state_of(await carrier.status(CARRIER, recall_id), OFFICER)
        return state if state["delivery"] and state["delivery"]["attempts"] >= 1 else None

    state = await eventually(refused_once)
    assert (state["state"], state["delivery"]["last_code"]) == ("retrying", "NOT_FOUND")
    assert (await both.client(CN_HOME).dead_letters())["items"] == []


# -- 3. a release decision taken at CN for the port NL serves ------------------------------------------------


async def test_a_hold_from_cn_reaches_rotterdams_stream_at_nl_and_the_gate_out_rules_apply_there(both: Both) -> None:
    """CN-GACC holds a box bound for Rotterdam (a port NL-DOUANE's gateway serves): the notice is relayed, NL applies
    it to PORT-NLRTM's stream (Cedar ``peer-administrations-stop-boxes-at-ports-served-here``), the port reads it
    there, and its gate-out of the held box raises NL's alert to NL's own customs. CN may not release the box at
    NL (NL refuses, CN dead-letters the relay with NL's code); NL's own release does, and the box gates out."""
    gacc, officer, port = both.client(CN_HOME), both.client(OFFICER), both.client(PORT)
    schema = MESSAGE_TYPES[RELEASE].schema
    hold = to_bytes(portsamples.release_notice("HOLD", 1, (BOX,), reason="SSTL risk finding at export"))
    held = await gacc.submit(RELEASE, [PORT], hold, schema=schema, tlp=Tlp.GREEN)
    assert held.status == 201, held.body
    hold_id = str(held.body["message_id"])
    relayed = await delivered_to_nl(gacc, CN_HOME, hold_id, member=PORT)
    assert both.nl_receipts().read(relayed["delivery"]["receipt"])["message_id"] == hold_id

    async def on_the_stream() -> list[dict[str, Any]]:
        notices: list[dict[str, Any]] = (await port.port_notices("NLRTM"))["notices"]
        return notices

    [entry] = await eventually(on_the_stream)
    assert (entry["seq"], entry["containerNumber"], entry["status"], entry["from"], entry["messageId"]) == (
        1,
        BOX,
        "HOLD",
        CN_HOME,
        hold_id,
    )
    [update] = [e for e in await ledger(both.nl) if e["event"] == "port_update"]
    assert (update["sender"], update["id"]) == (CN_HOME, hold_id)
    assert [(i["from"], i["type"]) for i in (await port.pull())["items"]] == [(CN_HOME, RELEASE)]

    # the gate-out rules are NL's: the held box may not leave; the alert goes to NL's own customs
    gate_out = to_bytes(portsamples.gate_out(BOX))
    await port.submit(GATE_OUT, [OFFICER], gate_out, schema=MESSAGE_TYPES[GATE_OUT].schema)
    alerts = [i for i in (await officer.pull())["items"] if i["type"] == ALERT]
    assert [(i["from"], json.loads(i["payload"])["status"]) for i in alerts] == [(OFFICER, "HOLD")]
    assert [e["container"] for e in await ledger(both.nl) if e["event"] == "gate_out_alert"] == [BOX]

    # CN may stop a box at NL but not release it: NL refuses, CN's relay is a dead letter with NL's code
    release = to_bytes(portsamples.release_notice("RELEASED", 2, (BOX,)))
    refused = await gacc.submit(RELEASE, [PORT], release, schema=schema, tlp=Tlp.GREEN)
    refused_id = str(refused.body["message_id"])

    async def dead() -> dict[str, Any] | None:
        state = state_of(await gacc.status(CN_HOME, refused_id), PORT)
        return state if state["state"] == "dead-lettered" else None

    assert (await eventually(dead))["delivery"]["last_code"] == "POLICY_DENIED"
    # NL-DOUANE releases it; the port lets it out
    ours = await officer.submit(RELEASE, [PORT], release, schema=schema, tlp=Tlp.GREEN)
    assert ours.status == 201
    await port.submit(GATE_OUT, [OFFICER], to_bytes(portsamples.gate_out(BOX)), schema=MESSAGE_TYPES[GATE_OUT].schema)
    stream = (await port.port_notices("NLRTM"))["notices"]
    assert [(n["containerNumber"], n["status"], n["from"]) for n in stream] == [
        (BOX, "HOLD", CN_HOME),
        (BOX, "RELEASED", OFFICER),
        (BOX, "GATED_OUT", PORT),
    ]
