"""The AEO part of ``customs-gateway demo``: a recognised EU AEO consignee, then a suspended one.

7. The EU's partner list is imported while the gateway runs (the CLI path, with its per-row report); a carrier
   files a manifest whose consignee is an EU AEOF: CN-GACC receives it with the recognition result (EU-China
   MRA) and the low-risk lane. NL-DOUANE then suspends another EU authorisation with an ``aeo.status.v1``
   message; the next online check says "suspended" and a manifest naming that consignee gets the elevated lane.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.client.rest import GatewayClient
from gateway.demo.aeosamples import (
    EU_PARTNER_LIST_CSV,
    RECOGNISED_EORI,
    SUSPENDABLE_AEO,
    SUSPENDABLE_EORI,
    manifest_to,
    status_update,
)
from gateway.demo.samples import to_bytes
from gateway.features.aeo import recognition
from gateway.infra.aeo_store import import_list_file

Record = Callable[[str, bool, str], None]
MANIFEST = "manifest.cargo.v1"
MANIFEST_SCHEMA = "cgw.v1.CargoManifest"


async def aeo_scenario(
    record: Record, carrier: GatewayClient, gacc: GatewayClient, douane: GatewayClient, data_dir: Path
) -> None:
    print("7. AEO mutual recognition")
    with tempfile.TemporaryDirectory(prefix="cgw-aeo-") as tmp:
        listing = Path(tmp) / "eu-aeo-list.csv"
        listing.write_text(EU_PARTNER_LIST_CSV)
        report = import_list_file(data_dir, listing, issuer="EU")
    first = report.errors[0] if report.errors else None
    record(
        "EU partner list imported",
        len(report.authorisations) == 3 and report.rejected == 1,
        f"{len(report.authorisations)} authorisations, {report.rejected} row refused"
        + (f" (row {first.row}: {first.code} at {first.field})" if first else ""),
    )
    await asyncio.sleep(recognition.REFRESH_SECONDS)  # the running gateway notices the import on its next probe

    recognised = await _file(carrier, gacc, RECOGNISED_EORI, "AEO-DEMO-1")
    consignee = _consignee(recognised)
    record(
        "recognised EU AEO consignee",
        consignee.get("recognised") is True and _lane(recognised) == "low-risk",
        f"{consignee.get('authorisation')} ({consignee.get('type')}) under {consignee.get('arrangement')}"
        f" -> lane {_lane(recognised)}",
    )

    today = datetime.now(UTC).date()
    update = status_update(SUSPENDABLE_AEO, "suspended", since=today, eori=SUSPENDABLE_EORI)
    sent = await douane.submit("aeo.status.v1", ["CN-GACC"], update, schema="cgw.v1.AeoStatusUpdate")
    record(
        "NL-DOUANE suspends an EU authorisation",
        sent.status == 201,
        f"aeo.status.v1 accepted, ledger index {sent.receipt['ledger_index']}",
    )
    check = await gacc.aeo_recognition(SUSPENDABLE_EORI)
    record(
        "the next check sees the suspension",
        not check["recognised"] and check["reasons"] == ["suspended"],
        f"{check['authorisation']}: recognised={check['recognised']}, reasons {check['reasons']}",
    )
    suspended = await _file(carrier, gacc, SUSPENDABLE_EORI, "AEO-DEMO-2")
    consignee = _consignee(suspended)
    record(
        "suspended AEO consignee",
        consignee.get("recognised") is False and _lane(suspended) == "elevated",
        f"{consignee.get('authorisation')}: {consignee.get('reasons')} -> lane {_lane(suspended)}",
    )


async def _file(carrier: GatewayClient, gacc: GatewayClient, consignee_eori: str, number: str) -> dict[str, Any]:
    """The carrier files a manifest; CN-GACC pulls and acknowledges it; returns its AEO annotations."""
    sent = await carrier.submit(
        MANIFEST, ["CN-GACC"], to_bytes(manifest_to(consignee_eori, number)), schema=MANIFEST_SCHEMA
    )
    page = await gacc.pull(wait=2)
    items = [i for i in page["items"] if i["message_id"] == sent.body["message_id"]]
    if not items:
        return {}
    await gacc.ack([items[0]["cursor"]])
    annotations: dict[str, Any] = items[0].get("annotations", {}).get("aeo", {})
    return annotations


def _consignee(aeo: dict[str, Any]) -> dict[str, Any]:
    return next((p for p in aeo.get("parties", []) if p.get("role") == "CONSIGNEE"), {})


def _lane(aeo: dict[str, Any]) -> str:
    """The lane of the (only) consignment."""
    return next((lane for lane, positions in aeo.get("lanes", {}).items() if positions == "0"), "-")
