"""The demo's EDIFACT step: a carrier files a CUSCAR interchange and pulls its CUSRES (accepted, then rejected).

The interchange is written from the demo manifest by ``adapters.edifact.to_cuscar`` (what a carrier's system
would send), signed like any payload with media ``application/edifact``; the gateway keeps those bytes as the
evidence and answers in the carrier's inbox with a CUSRES correlated to the UNB control reference.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from adapters.edifact import ANSWER_TYPE, MEDIA_EDIFACT, parse_interchange, to_cuscar
from gateway.client.rest import GatewayClient, GatewayClientError
from gateway.demo.samples import cargo_manifest

Record = Callable[[str, bool, str], None]
MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"


def _cusres(payload: bytes) -> dict[str, tuple[tuple[str, ...], ...]]:
    (message,) = parse_interchange(payload).messages
    return {s.tag: s.elements for s in message.segments}


async def _answer(carrier: GatewayClient, message_id: str) -> dict[str, tuple[tuple[str, ...], ...]] | None:
    page = await carrier.pull(wait=2)
    items = [i for i in page["items"] if i["type"] == ANSWER_TYPE and i["message_id"] == message_id]
    if not items:
        return None
    await carrier.ack([items[0]["cursor"]])
    return _cusres(items[0]["payload"])


def cuscar_filing(manifest_number: str = "COSU-EDI-0001", control_reference: str = "COSU00000001") -> bytes:
    """COSCO's CUSCAR interchange to GACC for the sample manifest (what a carrier's system would send)."""
    return to_cuscar(
        cargo_manifest(manifest_number),
        sender="COSU",
        recipient="CNGACC",
        control_reference=control_reference,
        prepared=datetime.now(UTC),
    )


async def edifact_scenario(record: Record, carrier: GatewayClient) -> None:
    print("8. the carrier files in UN/EDIFACT: a CUSCAR in, a CUSRES back")
    interchange = cuscar_filing()
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], interchange, schema=SCHEMA, media=MEDIA_EDIFACT)
    answer = sent.receipt.get("answer", {})
    record(
        "CUSCAR accepted",
        sent.status == 201 and answer.get("status") == "accepted" and answer.get("reference") == "COSU00000001",
        f"receipt answer {answer.get('status')} for interchange {answer.get('reference')}",
    )
    cusres = await _answer(carrier, answer.get("message_id", ""))
    accepted = cusres is not None and cusres["BGM"][3] == ("AP",) and cusres["RFF"] == (("ACW", "COSU00000001"),)
    record("CUSRES accepted pulled", accepted, "BGM ...+AP, RFF+ACW:COSU00000001" if accepted else repr(cusres))

    broken = re.sub(rb"UNT\+\d+\+", b"UNT+99+", cuscar_filing("COSU-EDI-0002", "COSU00000002"))
    try:
        await carrier.submit(MANIFEST, ["CN-GACC"], broken, schema=SCHEMA, media=MEDIA_EDIFACT)
    except GatewayClientError as exc:
        record(
            "broken CUSCAR refused",
            exc.code == "EDIFACT_INVALID" and (exc.field or "").endswith(".UNT"),
            f"refused with {exc.status} {exc.code} at {exc.field}",
        )
        page = await carrier.pull(wait=2)
        items = [i for i in page["items"] if i["type"] == ANSWER_TYPE]
        rejected = _cusres(items[-1]["payload"]) if items else None
        ok = rejected is not None and rejected["BGM"][3] == ("RE",) and rejected["ERC"] == (("EDIENVLP", "", "ZZZ"),)
        detail = f"ERP+{':'.join(rejected['ERP'][0])} ERC+EDIENVLP::ZZZ" if ok and rejected else repr(rejected)
        record("CUSRES rejected pulled", ok, detail)
        if items:
            await carrier.ack([items[-1]["cursor"]])
        return
    record("broken CUSCAR refused", False, "was accepted, expected EDIFACT_INVALID")
