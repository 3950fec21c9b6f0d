"""Port release synchronisation end to end (issue 8): real gateway, real mTLS clients, real signatures.

A port goes offline, customs issues decisions (including a late older version), the port reconciles from the
snapshot and resumes the stream; its state converges exactly to what a port that never went offline holds.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClient, GatewayClientError
from gateway.core.model import Tlp
from gateway.core.release import (
    PortView,
    Status,
    StreamGap,
    parse_notice_record,
    parse_standing_record,
)
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import to_bytes
from tests.integration.conftest import ClientFactory

RELEASE, RELEASE_SCHEMA = "release.notice.v1", "cgw.v1.ReleaseNotice"
GATE_OUT, GATE_OUT_SCHEMA = "port.gate-out.v1", "cgw.v1.GateOut"
A, B, C = portsamples.CONTAINERS
BL = portsamples.BL


async def decide(gacc: GatewayClient, decision: str, version: int, *containers: str) -> None:
    to = ["PORT-NLRTM", "CARRIER-COSCO"]
    notice = to_bytes(portsamples.release_notice(decision, version, containers))
    await gacc.submit(RELEASE, to, notice, schema=RELEASE_SCHEMA, tlp=Tlp.GREEN)


async def follow(port: GatewayClient, view: PortView) -> PortView:
    """What a port system does: pull pages after its last seq and apply them in order."""
    while True:
        page = await port.port_notices("NLRTM", after=view.seq, limit=2)
        entries = [parse_notice_record(n) for n in page["notices"]]
        if not entries:
            return view
        view = view.apply_all(entries)


async def reconcile(port: GatewayClient) -> PortView:
    snapshot = await port.port_snapshot("NLRTM")
    standings = [parse_standing_record("NLRTM", s) for s in snapshot["standings"]]
    return await follow(port, PortView.from_snapshot("NLRTM", snapshot["seq"], standings))


async def ledger_events(gateway: Gateway, event: str) -> list[dict[str, Any]]:
    entries = await gateway.store.ledger_entries(0, await gateway.store.ledger_size())
    return [e for e in (json.loads(x.data) for x in entries) if e["event"] == event]


async def test_offline_port_reconciles_exactly(gateway: Gateway, clients: ClientFactory) -> None:
    gacc, port = clients("CN-GACC"), clients("PORT-NLRTM")
    await decide(gacc, "HOLD", 1, A, B, C)
    online = await follow(port, PortView("NLRTM"))
    offline_at = online  # the port goes offline here, having applied seq 3
    assert offline_at.seq == 3

    await decide(gacc, "INSPECT", 2, B)  # an inspection
    await decide(gacc, "RELEASED", 4, A)  # partial release: A released, B inspected, C held
    await decide(gacc, "HOLD", 3, A)  # a late older version: recorded, never applied
    await decide(gacc, "DO_NOT_LOAD", 5, C)
    await decide(gacc, "CANCELLED", 6, C)
    await decide(gacc, "HOLD", 7, C)  # reinstatement after the cancellation

    reconciled = await reconcile(port)
    replayed = await follow(port, offline_at)  # the same port catching up from its cursor instead
    from_zero = await follow(port, PortView("NLRTM"))
    assert reconciled.decisions() == replayed.decisions() == from_zero.decisions()
    assert reconciled.seq == replayed.seq == from_zero.seq == 8
    assert reconciled.decisions() == {
        (BL, A): (Status.RELEASED, 4),
        (BL, B): (Status.INSPECT, 2),
        (BL, C): (Status.HOLD, 7),
    }
    # resuming again changes nothing (no double application), and overlapping entries are ignored
    assert (await follow(port, reconciled)) == reconciled
    everything = [parse_notice_record(n) for n in (await port.port_notices("NLRTM", after=0, limit=100))["notices"]]
    assert reconciled.apply_all(everything) == reconciled
    assert [e.seq for e in everything] == list(range(1, 9))
    with pytest.raises(StreamGap):  # a consumer detects a gap from the sequence numbers
        offline_at.apply(everything[4])

    stale = [
        e
        for e in await ledger_events(gateway, "port_update")
        if {"container": A, "effect": "stale", "after": "RELEASED"} in e["outcomes"]
    ]
    assert len(stale) == 1 and stale[0]["seqs"] == []


async def test_gate_out_of_a_container_not_released_alerts_home_customs(
    gateway: Gateway, clients: ClientFactory
) -> None:
    gacc, port = clients("CN-GACC"), clients("PORT-NLRTM")
    await decide(gacc, "HOLD", 1, A, B)
    await decide(gacc, "RELEASED", 2, A)
    for container in (A, B, C):  # released, held, unknown at this port
        body = to_bytes(portsamples.gate_out(container))
        await port.submit(GATE_OUT, ["CN-GACC"], body, schema=GATE_OUT_SCHEMA)

    snapshot = await port.port_snapshot("NLRTM")
    assert [(s["containerNumber"], s["status"]) for s in snapshot["standings"]] == [(B, "HOLD")]
    last = (await port.port_notices("NLRTM", after=3))["notices"]
    assert [(n["containerNumber"], n["status"], n["previous"]) for n in last] == [(A, "GATED_OUT", "RELEASED")]

    inbox = await gacc.pull()
    alerts = [json.loads(i["payload"]) for i in inbox["items"] if i["type"] == "alert.gate-out.v1"]
    assert {(a["containerNumber"], a["status"]) for a in alerts} == {(B, "HOLD"), (C, "PENDING")}
    assert {i["from"] for i in inbox["items"] if i["type"] == "alert.gate-out.v1"} == {"CN-GACC"}
    audited = await ledger_events(gateway, "gate_out_alert")
    assert {(e["container"], e["status"]) for e in audited} == {(B, "HOLD"), (C, "PENDING")}


async def test_readers_and_senders_are_checked(gateway: Gateway, clients: ClientFactory) -> None:
    gacc, cbp, port = clients("CN-GACC"), clients("US-CBP"), clients("PORT-NLRTM")
    with pytest.raises(GatewayClientError) as denied:
        await cbp.port_notices("NLRTM")
    assert denied.value.status == 403
    with pytest.raises(GatewayClientError) as other_port:
        await port.port_snapshot("BEANR")
    assert other_port.value.status == 403
    with pytest.raises(GatewayClientError) as bad_locode:
        await gacc.port_snapshot("XXZZZ")
    assert (bad_locode.value.status, bad_locode.value.code) == (422, "IDENTIFIER_INVALID")
    # DO_NOT_LOAD must reach the carrier
    notice = to_bytes(portsamples.release_notice("DO_NOT_LOAD", 1, (A,)))
    with pytest.raises(GatewayClientError) as no_carrier:
        await gacc.submit(RELEASE, ["PORT-NLRTM"], notice, schema=RELEASE_SCHEMA, tlp=Tlp.GREEN)
    assert (no_carrier.value.code, no_carrier.value.field) == ("HEADER_INVALID", "to")
    # a release decision for a Dutch port from US customs is refused (home or the port's country only)
    async with clients("US-CBP") as cbp:
        with pytest.raises(GatewayClientError) as foreign_customs:
            await cbp.submit(
                RELEASE,
                ["PORT-NLRTM"],
                to_bytes(portsamples.release_notice("HOLD", 1, (A,))),
                schema=RELEASE_SCHEMA,
                tlp=Tlp.GREEN,
            )
    assert foreign_customs.value.code == "POLICY_DENIED"
    # a gate-out for another port is refused
    body = to_bytes(portsamples.gate_out(A, port="BEANR"))
    with pytest.raises(GatewayClientError) as foreign:
        await port.submit(GATE_OUT, ["CN-GACC"], body, schema=GATE_OUT_SCHEMA)
    assert foreign.value.status == 403
    # a bad container number is a clear identifier error with its field
    body = to_bytes(portsamples.gate_out("MSKU9070324"))
    with pytest.raises(GatewayClientError) as bad_container:
        await port.submit(GATE_OUT, ["CN-GACC"], body, schema=GATE_OUT_SCHEMA)
    assert (bad_container.value.code, bad_container.value.field) == ("IDENTIFIER_INVALID", "payload.containerNumber")
    assert (await gacc.port_snapshot("NLRTM"))["seq"] == 0


async def test_rest_long_poll_answers_when_an_entry_arrives(gateway: Gateway, clients: ClientFactory) -> None:
    gacc, port = clients("CN-GACC"), clients("PORT-NLRTM")
    waiting = asyncio.create_task(port.port_notices("NLRTM", after=0, wait=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await decide(gacc, "HOLD", 1, A)
    page = await asyncio.wait_for(waiting, 5)
    assert [n["seq"] for n in page["notices"]] == [1]
