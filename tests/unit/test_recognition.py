"""gateway/features/aeo/recognition.py: enrichment of a validated manifest and the bounded record that goes into the
ledger
(every accepted event must stay under ledgercheck.MAX_ENTRY_BYTES, however many parties a manifest names)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.core.aeolist import parse_list, parse_status_message
from gateway.core.canonical import canonical_json
from gateway.core.ledgercheck import MAX_ENTRY_BYTES
from gateway.core.payloads import validate_payload
from gateway.demo.aeosamples import (
    EU_PARTNER_LIST_CSV,
    RECOGNISED_EORI,
    SUSPENDABLE_AEO,
    SUSPENDABLE_EORI,
    status_update,
)
from gateway.demo.samples import cargo_manifest, release_notice, to_bytes
from gateway.features.aeo.recognition import MAX_RECORDED_PARTIES, MAX_REMEMBERED_ENRICHMENTS, Recognition, _ranges
from gateway.infra.aeo_store import AeoStore, load_mra_table

POLICIES = Path(__file__).resolve().parents[2] / "policies"
NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def service(tmp_path: Path) -> Recognition:
    store = AeoStore.in_directory(tmp_path)
    store.upsert(parse_list(EU_PARTNER_LIST_CSV.encode(), fmt="csv", admin="EU", source="t").authorisations)
    return Recognition(store, load_mra_table(POLICIES), home_member="CN-GACC", home_admin="CN")


def manifest(consignees: list[str]) -> bytes:
    document = cargo_manifest()
    template = document["consignments"][0]
    consignments = []
    for eori in consignees:
        item = json.loads(json.dumps(template))
        item["consignee"]["identifiers"] = [{"scheme": "EORI", "value": eori}]
        consignments.append(item)
    document["consignments"] = consignments
    return to_bytes(document)


def test_lanes_and_counts(tmp_path: Path) -> None:
    aeo = service(tmp_path)
    payload = validate_payload(
        "manifest.cargo.v1", "application/json", manifest([RECOGNISED_EORI, "FR1", RECOGNISED_EORI, RECOGNISED_EORI])
    )
    enrichment = aeo.enrich(payload, NOW)
    assert enrichment is not None
    assert enrichment.lane_names() == ["low-risk", "standard"]
    record = enrichment.record()
    assert record["lanes"] == {"low-risk": "0,2-3", "standard": "1"}
    assert record["counts"] == {"parties": 8, "identified": 8, "recognised": 3, "adverse": 0}
    assert aeo.enrich(validate_payload("release.notice.v1", "application/json", _release()), NOW) is None


def test_a_huge_manifest_keeps_its_ledger_event_bounded(tmp_path: Path) -> None:
    aeo = service(tmp_path)
    consignees = [RECOGNISED_EORI, SUSPENDABLE_EORI, "FR1"] * 700
    enrichment = aeo.enrich(validate_payload("manifest.cargo.v1", "application/json", manifest(consignees)), NOW)
    assert enrichment is not None
    record = enrichment.record()
    assert record["truncated"]
    assert len(record["parties"]) == MAX_RECORDED_PARTIES
    assert record["counts"]["parties"] == 4200
    assert record["counts"]["recognised"] == 700 + 700  # NL AEOF and DE AEOS (not suspended here)
    event = {"event": "accepted", "at": "2026-11-28T12:00:00.000000Z", "aeo": record, "padding": "x" * 2000}
    assert len(canonical_json(event)) < MAX_ENTRY_BYTES


def test_the_same_parties_on_the_same_day_share_one_enrichment_until_the_index_changes(tmp_path: Path) -> None:
    aeo = service(tmp_path)
    first = aeo.enrich(validate_payload("manifest.cargo.v1", "application/json", manifest([SUSPENDABLE_EORI])), NOW)
    # another filing (another manifest number) with the same parties, later that day: the remembered answer
    other = manifest([SUSPENDABLE_EORI]).replace(b"COSU-MAN-0001", b"COSU-MAN-0002")
    again = validate_payload("manifest.cargo.v1", "application/json", other)
    assert first is not None and first.lane_names() == ["low-risk"]
    assert aeo.enrich(again, NOW + timedelta(hours=3)) is first
    assert first.record() is first.record()  # built once
    assert first.record()["counts"] == {"parties": 2, "identified": 2, "recognised": 1, "adverse": 0}
    # the next day is asked afresh; so is every filing once an aeo.status.v1 update swapped the index
    assert aeo.enrich(again, NOW + timedelta(days=1)) is not first
    update = status_update(SUSPENDABLE_AEO, "suspended", since=NOW.date(), eori=SUSPENDABLE_EORI)
    asyncio.run(aeo.apply(parse_status_message("application/json", update, admin="EU", source="t")))
    after = aeo.enrich(again, NOW)
    assert after is not None and after is not first
    assert after.lane_names() == ["elevated"]
    assert after.record()["counts"]["adverse"] == 1


def test_the_enrichment_memo_is_bounded(tmp_path: Path) -> None:
    aeo = service(tmp_path)
    for n in range(MAX_REMEMBERED_ENRICHMENTS + 10):
        aeo.enrich(validate_payload("manifest.cargo.v1", "application/json", manifest([f"FR{n}"])), NOW)
    assert len(aeo._enriched) <= MAX_REMEMBERED_ENRICHMENTS


def test_ranges() -> None:
    assert _ranges([]) == ""
    assert _ranges([0]) == "0"
    assert _ranges([0, 1, 2, 3, 7, 9, 10]) == "0-3,7,9-10"


def _release() -> bytes:
    return to_bytes(release_notice())
