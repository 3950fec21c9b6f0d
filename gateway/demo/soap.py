"""The demo's SOAP step: NL-DOUANE shares a manifest with CN-GACC over SOAP 1.2 with WS-Security.

NL-DOUANE signs the envelope (Body, Timestamp, WS-Addressing) with its member certificate; the gateway answers
with a response it signs itself (verified here against its pinned certificate); CN-GACC pulls the message over
REST and finds the exact signed SOAP envelope as the evidence. A forged copy (the signed Body altered after
signing) is refused with SIGNATURE_INVALID.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from google.protobuf import json_format

from adapters.soap.partner import SoapFault, partner_from_federation
from gateway.client.rest import GatewayClient
from gateway.demo.samples import cargo_manifest
from gateway.wire.cgw.v1 import manifest_pb2

Record = Callable[[str, bool, str], None]


async def soap_scenario(record: Record, url: str, directory: Path, gacc: GatewayClient) -> None:
    print("\nSOAP: NL-DOUANE shares a manifest with CN-GACC over SOAP 1.2 (WS-Security, X.509 token)")
    douane = partner_from_federation(directory, "NL-DOUANE")
    manifest = json_format.ParseDict(cargo_manifest("NLDOU-MAN-0001"), manifest_pb2.CargoManifest())
    sent = await douane.submit(url, manifest, ["CN-GACC"])
    record(
        "SOAP submission accepted",
        not sent.duplicate and sent.signed_by == "CN-GACC",
        f"response signed by {sent.signed_by} (WS-Security verified), ledger index {sent.ledger_index}",
    )
    page = await gacc.pull(wait=2)
    items = [i for i in page["items"] if i["message_id"] == sent.message_id]
    evidence = items[0]["envelope"] if items else ""
    record(
        "CN-GACC received the signed SOAP envelope as evidence",
        "wsse:Security" in evidence and manifest_pb2.CargoManifest.FromString(items[0]["payload"]) == manifest,
        f"{len(evidence)} bytes of signed XML, payload as protobuf",
    )
    if items:
        await gacc.ack([items[0]["cursor"]])
    try:
        await douane.submit(url, manifest, ["CN-GACC"], tamper=True)
    except SoapFault as fault:
        record("a Body altered after signing is refused", fault.code == "SIGNATURE_INVALID", f"fault {fault.code}")
    else:
        record("a Body altered after signing is refused", False, "was accepted")
