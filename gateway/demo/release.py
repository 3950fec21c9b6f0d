"""The port release part of ``customs-gateway demo`` (issue 8; README "Port release synchronisation").

CN-GACC holds three containers of one B/L for PORT-NLRTM. The port follows its stream, then goes offline while
customs orders an inspection of one container, releases another (a partial release), a late older version
arrives (recorded, ignored) and the third container is put on do-not-load (it reaches the carrier too). The
port reconnects: snapshot + resume gives exactly the state a catch-up from its cursor gives. It gates out the
released container (fine) and the inspected one (refused: CN-GACC receives a gateway-signed alert).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core.model import Tlp
from gateway.core.payloads import MESSAGE_TYPES
from gateway.core.release import PortView, Status, parse_notice_record, parse_standing_record
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import to_bytes

Record = Callable[[str, bool, str], None]
RELEASE, GATE_OUT, ALERT = "release.notice.v1", "port.gate-out.v1", "alert.gate-out.v1"
PORT = "NLRTM"
BL = "COSU6123456791"  # its own B/L: the release notice of step 3 is on this port's stream too
A, B, C = portsamples.CONTAINERS


async def _decide(gacc: GatewayClient, decision: str, version: int, *containers: str) -> str:
    notice = to_bytes(portsamples.release_notice(decision, version, containers, bl=BL, reason="demo"))
    sent = await gacc.submit(
        RELEASE, ["PORT-NLRTM", "CARRIER-COSCO"], notice, schema=MESSAGE_TYPES[RELEASE].schema, tlp=Tlp.GREEN
    )
    return str(sent.body["message_id"])


async def _follow(port: GatewayClient, view: PortView) -> PortView:
    while page := (await port.port_notices(PORT, after=view.seq))["notices"]:
        view = view.apply_all(parse_notice_record(n) for n in page)
    return view


async def _reconcile(port: GatewayClient) -> PortView:
    snapshot = await port.port_snapshot(PORT)
    standings = (parse_standing_record(PORT, s) for s in snapshot["standings"])
    return await _follow(port, PortView.from_snapshot(PORT, int(snapshot["seq"]), standings))


def _mine(view: PortView) -> dict[str, tuple[Status, int]]:
    return {container: decision for (bl, container), decision in view.decisions().items() if bl == BL}


def _show(decisions: dict[str, tuple[Status, int]]) -> str:
    return ", ".join(f"{c} {s} v{v}" for c, (s, v) in sorted(decisions.items()))


async def _pull_all(client: GatewayClient) -> list[dict[str, Any]]:
    items = list((await client.pull(limit=100))["items"])
    if items:
        await client.ack([int(i["cursor"]) for i in items])
    return items


async def port_scenario(record: Record, url: str, directory: Path) -> None:
    def client(member: str) -> GatewayClient:
        return GatewayClient(url, MemberCredentials.from_federation(directory, member))

    print("\n11. Port release synchronisation (PORT-NLRTM's ordered stream, snapshot, gate-out verification)")
    async with client("CN-GACC") as gacc, client("PORT-NLRTM") as port, client("CARRIER-COSCO") as carrier:
        await _pull_all(gacc)
        await _pull_all(carrier)
        await _decide(gacc, "HOLD", 1, A, B, C)
        online = await _follow(port, await _reconcile(port))
        record("a hold on three containers", set(_mine(online).values()) == {(Status.HOLD, 1)}, _show(_mine(online)))

        offline = online  # the port goes offline here
        await _decide(gacc, "INSPECT", 2, B)
        await _decide(gacc, "RELEASED", 4, A)
        await _decide(gacc, "HOLD", 3, A)  # late: an older version than the release in force
        await _decide(gacc, "DO_NOT_LOAD", 5, C)
        carrier_got = [json.loads(i["payload"]) for i in await _pull_all(carrier) if i["type"] == RELEASE]
        record(
            "do-not-load reaches the carrier",
            any(n["decision"] == "DO_NOT_LOAD" and n["containerNumbers"] == [C] for n in carrier_got),
            f"{len(carrier_got)} notices in CARRIER-COSCO's inbox, the last {carrier_got[-1]['decision']}"
            if carrier_got
            else "none",
        )

        reconciled = await _reconcile(port)
        caught_up = await _follow(port, offline)
        mine = _mine(reconciled)
        record("an inspection", mine.get(B) == (Status.INSPECT, 2), _show({B: mine[B]}) if B in mine else "missing")
        record(
            "a partial release; the late older version is ignored",
            mine.get(A) == (Status.RELEASED, 4) and mine.get(C) == (Status.DO_NOT_LOAD, 5),
            _show(mine),
        )
        record(
            "the port reconnects and reconciles",
            reconciled == caught_up and reconciled.seq > offline.seq,
            f"snapshot + resume == catch-up from its cursor (seq {offline.seq} -> {reconciled.seq}), no gap",
        )

        for container in (A, B):
            body = to_bytes(portsamples.gate_out(container, bl=BL))
            await port.submit(GATE_OUT, ["CN-GACC"], body, schema=MESSAGE_TYPES[GATE_OUT].schema)
        after = _mine(await _follow(port, reconciled))
        record("gate-out of the released container", A not in after, f"{A} GATED_OUT, left the port's open state")
        alerts = [json.loads(i["payload"]) for i in await _pull_all(gacc) if i["type"] == ALERT]
        refused = next((a for a in alerts if a["containerNumber"] == B), None)
        record(
            "gate-out of an inspected container is refused",
            refused is not None and refused["status"] == "INSPECT" and after.get(B) == (Status.INSPECT, 2),
            f"alert.gate-out.v1 signed by the gateway to CN-GACC: {refused['reason']}" if refused else "no alert",
        )
