"""Demo steps for issue 3: an SSTL exchange on a listed lane, a CSI examination request answered by host customs,
a Megaport alarm forwarded within the programme (RED forward refused), and a recall that follows the forward.

Each step is recorded through ``record(name, ok, detail)`` (the demo's trace), so ``customs-gateway demo`` exits
non-zero when one misbehaves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.core.model import Tlp
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo import programsamples as samples
from gateway.demo.samples import to_bytes

Record = Callable[[str, bool, str], None]


async def _send(client: GatewayClient, message_type: str, to: list[str], payload: bytes, **kw: Any) -> str:
    sent = await client.submit(message_type, to, payload, schema=MESSAGE_TYPES[message_type].schema, **kw)
    return str(sent.body["message_id"])


async def _received(client: GatewayClient, message_id: str) -> dict[str, Any] | None:
    """The inbox item with ``message_id`` (every item pulled is acknowledged)."""
    items = (await client.pull(limit=1000))["items"]
    if items:
        await client.ack([int(i["cursor"]) for i in items])
    return next((i for i in items if i["message_id"] == message_id), None)


async def _refused(record: Record, name: str, call: Any) -> None:
    try:
        await call
    except GatewayClientError as exc:
        record(name, exc.code == "POLICY_DENIED", f"refused with {exc.status} {exc.code}")
        return
    record(name, False, "was accepted, expected POLICY_DENIED")


async def programs_scenario(record: Record, url: str, directory: Path) -> None:
    def client(member: str) -> GatewayClient:
        return GatewayClient(url, MemberCredentials.from_federation(directory, member))

    print("\nprogrammes: SSTL, CSI, Megaport, TLP forward and recall (policies/programs.cedar, tlp.cedar)")
    async with (
        client("CN-GACC") as gacc,
        client("NL-DOUANE") as douane,
        client("US-CBP") as cbp,
        client("PORT-NLRTM") as port,
    ):
        data = to_bytes(samples.sstl_security_data())
        sstl = await _send(gacc, "sstl.security-data.v1", ["NL-DOUANE"], data, program="SSTL")
        item = await _received(douane, sstl)
        record("SSTL security data CN-GACC -> NL-DOUANE on lane CNYTN-NLRTM", item is not None, f"id {sstl}")
        off_lane = to_bytes(samples.sstl_security_data(destination="DEHAM"))
        await _refused(
            record,
            "SSTL data off the listed lanes (CNYTN-DEHAM)",
            _send(gacc, "sstl.security-data.v1", ["NL-DOUANE"], off_lane, program="SSTL"),
        )

        request = to_bytes(samples.csi_examination_request())
        referral = await _send(cbp, "csi.examination-request.v1", ["CN-GACC"], request, program="CSI")
        got = await _received(gacc, referral)
        result = to_bytes(samples.csi_examination_result())
        answer = await _send(gacc, "csi.examination-result.v1", ["US-CBP"], result, program="CSI", correlation=referral)
        answered = await _received(cbp, answer)
        record(
            "CSI examination request US-CBP -> CN-GACC, answered",
            got is not None and answered is not None,
            f"request {referral}, result {answer}",
        )

        alarm = to_bytes(samples.rpm_alarm())
        schema = MESSAGE_TYPES["megaport.rpm-alarm.v1"].schema
        alarm_id = await _send(port, "megaport.rpm-alarm.v1", ["US-CBP"], alarm, program="MEGAPORT")
        red_id = await _send(port, "megaport.rpm-alarm.v1", ["US-CBP"], alarm, program="MEGAPORT", tlp=Tlp.RED)
        await _received(cbp, alarm_id)
        jws = cbp.sign("megaport.rpm-alarm.v1", ["NL-DOUANE"], alarm, schema=schema, program="MEGAPORT")
        forwarded = await cbp.forward_signed("PORT-NLRTM", alarm_id, jws)
        item = await _received(douane, str(forwarded.body["message_id"]))
        original = (item or {}).get("forward_of", {})
        record(
            "Megaport alarm PORT-NLRTM -> US-CBP, forwarded (AMBER) to NL-DOUANE",
            original.get("message_id") == alarm_id,
            "NL-DOUANE holds the forwarder's envelope and the port's original signed envelope",
        )
        red_jws = cbp.sign(
            "megaport.rpm-alarm.v1", ["NL-DOUANE"], alarm, schema=schema, program="MEGAPORT", tlp=Tlp.RED
        )
        await _refused(record, "forward of a TLP:RED alarm", cbp.forward_signed("PORT-NLRTM", red_id, red_jws))

        recall = to_bytes(samples.intel_recall("PORT-NLRTM", alarm_id))
        recall_id = await _send(port, "intel.recall.v1", ["US-CBP"], recall)
        reached = [await _received(member, recall_id) for member in (cbp, douane)]
        record(
            "recall of the alarm by its originator reaches US-CBP and, through the forward, NL-DOUANE",
            all(r is not None for r in reached),
            f"recall {recall_id}",
        )
