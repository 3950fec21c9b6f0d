"""Sample programme payloads (proto3 JSON mapping) for the demo and the tests: SSTL, CSI, Megaport, recall.

They follow the CUSCAR fixture's consignment (Yantian CNYTN -> Rotterdam NLRTM, B/L COSU6123456780, container
MSKU9070323) and the N42.42 skeleton alarm (``fixtures/n42_rpm_alarm_skeleton.xml``: a primary gamma alarm on
lane 07, 302 gross counts).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gateway.demo.samples import cargo_manifest


def _time(at: datetime | None) -> str:
    return (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sstl_security_data(
    reference: str = "SSTL-CNYTN-0001", *, origin: str = "CNYTN", destination: str = "NLRTM"
) -> dict[str, Any]:
    consignment = cargo_manifest()["consignments"][0]
    return {
        "reference": reference,
        "originPort": origin,
        "destinationPort": destination,
        "transportDocumentNumber": consignment["transportDocumentNumber"],
        "vessel": {"name": "COSCO EXAMPLE", "imo": "9811000", "flag": "HK"},
        "consignor": consignment["consignor"],
        "consignee": consignment["consignee"],
        "containers": consignment["containers"],
        "goodsItems": consignment["goodsItems"],
        "plannedLoading": "2026-12-01T08:00:00Z",
    }


def sstl_control_result(reference: str = "SSTL-CNYTN-0001", *, at: datetime | None = None) -> dict[str, Any]:
    return {
        "reference": reference,
        "originPort": "CNYTN",
        "destinationPort": "NLRTM",
        "transportDocumentNumber": "COSU6123456780",
        "containerNumbers": ["MSKU9070323"],
        "result": "CONTROLLED_NO_FINDING",
        "methods": ["NII_SCAN", "SEAL_CHECK"],
        "controlTime": _time(at),
    }


def csi_examination_request(referral_id: str = "CSI-CNYTN-0001", *, at: datetime | None = None) -> dict[str, Any]:
    return {
        "referralId": referral_id,
        "port": "CNYTN",
        "destinationPort": "USLAX",
        "transportDocumentNumber": "COSU6123456780",
        "containerNumbers": ["MSKU9070323"],
        "priority": "HIGH",
        "reason": "TARGETING_SCORE",
        "requestedMethods": ["EXAMINATION_METHOD_NII_XRAY", "EXAMINATION_METHOD_RADIATION_SCAN"],
        "examineBefore": _time(at),
    }


def csi_examination_result(referral_id: str = "CSI-CNYTN-0001", *, at: datetime | None = None) -> dict[str, Any]:
    return {
        "referralId": referral_id,
        "port": "CNYTN",
        "hostResponse": "ACCEPTED",
        "findings": [
            {
                "containerNumber": "MSKU9070323",
                "finding": "NO_ANOMALY",
                "methods": ["EXAMINATION_METHOD_NII_XRAY"],
                "niiImageReference": "GACC-NII-2026-000123",
                "sealIntact": True,
            }
        ],
        "recommendation": "RELEASE",
        "examinedAt": _time(at),
    }


def rpm_alarm(alarm_id: str = "d3b07384-d9a0-4c9b-8f6e-000000000001", *, at: datetime | None = None) -> dict[str, Any]:
    return {
        "alarmId": alarm_id,
        "instrumentId": "NLRTM-LANE-07",
        "instrumentClass": "INSTRUMENT_CLASS_PORTAL_MONITOR",
        "port": "NLRTM",
        "lane": "07",
        "detectors": [
            {
                "detectorId": "Det-Gamma-1",
                "category": "GAMMA",
                "kindCode": "PVT",
                "grossCounts": "302",
                "backgroundCounts": "180",
                "liveTimeSeconds": 11.8,
            },
            {"detectorId": "Det-Neutron-1", "category": "NEUTRON", "kindCode": "He3", "grossCounts": "2"},
        ],
        "alarmCategory": "GAMMA",
        "alarmDescription": "Primary gamma alarm, container MSKU9070323, lane 07",
        "alarmTime": _time(at),
        "containerNumber": "MSKU9070323",
        "transportDocumentNumber": "COSU6123456780",
    }


def alarm_adjudication(alarm_id: str = "d3b07384-d9a0-4c9b-8f6e-000000000001") -> dict[str, Any]:
    return {
        "alarmId": alarm_id,
        "containerNumber": "MSKU9070323",
        "secondaryInstrument": "INSTRUMENT_CLASS_RADIONUCLIDE_IDENTIFIER",
        "nuclides": ["K-40"],
        "outcome": "NORM",
        "disposition": "RELEASED",
        "remarks": "ceramic tiles, naturally occurring K-40",
        "adjudicatedAt": _time(None),
    }


def intel_recall(original_sender: str, message_id: str, *, reason: str = "ERROR") -> dict[str, Any]:
    return {"originalSender": original_sender, "messageId": message_id, "reason": reason}
