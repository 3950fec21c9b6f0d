"""Sample business documents (proto3 JSON mapping) used by the demo and the benchmark.

They mirror the synthetic CUSCAR fixture: Yantian (CNYTN) -> Rotterdam (NLRTM), vessel IMO 9811000, containers
MSKU9070323, TGHU1234567 and CSQU3054383 (empty), a Chinese shipper identified by its USCC.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def cargo_manifest(manifest_number: str = "COSU-MAN-0001", *, container: str = "MSKU9070323") -> dict[str, Any]:
    party_cn = {
        "name": "Shenzhen Example Export Co., Ltd.",
        "role": "CONSIGNOR",
        "identifiers": [{"scheme": "USCC", "value": "91440300MA5G3K2X40"}],
        "address": {"lines": ["1 Example Road"], "city": "Shenzhen", "country": "CN"},
    }
    party_nl = {
        "name": "Rotterdam Example Import B.V.",
        "role": "CONSIGNEE",
        "identifiers": [{"scheme": "EORI", "value": "NL123456789"}],
        "address": {"lines": ["Havenweg 1"], "city": "Rotterdam", "country": "NL"},
    }
    return {
        "manifestNumber": manifest_number,
        "vessel": {"name": "COSCO EXAMPLE", "imo": "9811000", "flag": "HK"},
        "voyageNumber": "042W",
        "portOfLoading": "CNYTN",
        "portOfDischarge": "NLRTM",
        "estimatedArrival": "2026-12-20T06:00:00Z",
        "consignments": [
            {
                "transportDocumentNumber": "COSU6123456780",
                "consignor": party_cn,
                "consignee": party_nl,
                "goodsItems": [
                    {
                        "sequence": 1,
                        "hsCode": "850440",
                        "description": "Static converters (power supplies)",
                        "packages": {"count": 120, "typeCode": "CT"},
                        "grossMassKg": 5400.0,
                        "containerNumbers": [container],
                    }
                ],
                "containers": [{"number": container, "seals": ["CN1234567"], "sizeType": "45G1"}],
            }
        ],
    }


def entry_summary(reference: str = "LRN-2026-0001") -> dict[str, Any]:
    """A ``prearrival.ens.v1`` (ICS2 entry summary, F10: complete dataset, straight B/L) for the sample manifest's
    consignment, filed by its carrier."""
    manifest = cargo_manifest()
    consignment = manifest["consignments"][0]
    return {
        "filingType": "F10",
        "reference": reference,
        "declarant": {**consignment["consignee"], "role": "DECLARANT"},
        "carrier": {**consignment["consignee"], "role": "CARRIER"},
        "vessel": manifest["vessel"],
        "transportDocumentNumber": "EXMPMASTER01",
        "portOfLoading": "CNSHA",
        "portOfFirstEntry": "NLRTM",
        "estimatedArrival": manifest["estimatedArrival"],
        "containers": consignment["containers"],
        "houseConsignments": [
            {
                "transportDocumentNumber": "EXMPHOUSE01",
                "consignor": consignment["consignor"],
                "consignee": consignment["consignee"],
                "goodsItems": consignment["goodsItems"],
                "placeOfDelivery": "DEDUI",
            }
        ],
    }


def release_notice(decision: str = "RELEASED", *, version: int = 1, at: datetime | None = None) -> dict[str, Any]:
    return {
        "transportDocumentNumber": "COSU6123456780",
        "containerNumbers": ["MSKU9070323"],
        "decision": decision,
        "version": str(version),
        "port": "NLRTM",
        "reason": "documentary check passed",
        "effectiveTime": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def to_bytes(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
