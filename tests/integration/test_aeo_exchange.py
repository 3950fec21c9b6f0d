"""AEO mutual recognition through the real gateway over TLS: a partner list imported while it runs, manifests
enriched (ledger leaf, Cedar context, inbox item), the online check, and a suspension from the issuing partner
that applies to the very next check and is in the ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClientError
from gateway.demo.aeosamples import (
    EU_PARTNER_LIST_CSV,
    RECOGNISED_AEO,
    RECOGNISED_EORI,
    SUSPENDABLE_AEO,
    SUSPENDABLE_EORI,
    manifest_to,
    status_update,
)
from gateway.demo.samples import to_bytes
from gateway.features.aeo import recognition
from gateway.infra.aeo_store import import_list_file
from tests.integration.conftest import ClientFactory

MANIFEST = "manifest.cargo.v1"
STATUS = "aeo.status.v1"


async def ledger_events(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]


@pytest.fixture
async def imported(gateway: Gateway, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """The EU partner list imported by the CLI path while the gateway runs (picked up on the next request)."""
    monkeypatch.setattr(recognition, "REFRESH_SECONDS", 0.0)  # probe the store on every request
    listing = tmp_path / "eu-aeo.csv"
    listing.write_text(EU_PARTNER_LIST_CSV)
    report = import_list_file(gateway.settings.data_dir, listing, issuer="EU")
    assert report.rows == 4
    assert report.rejected == 1
    assert report.errors[0].row == 4
    return gateway


async def test_a_recognised_consignee_gets_the_low_risk_lane(imported: Gateway, clients: ClientFactory) -> None:
    carrier, gacc = clients("CARRIER-COSCO"), clients("CN-GACC")
    payload = to_bytes(manifest_to(RECOGNISED_EORI, "AEO-MAN-1"))
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], payload, schema="cgw.v1.CargoManifest")
    events = await ledger_events(imported)
    reloads = [e for e in events if e["event"] == "admin" and e.get("action") == "aeo_reloaded"]
    assert reloads
    assert reloads[0]["authorisations"] == 3
    accepted = events[sent.receipt["ledger_index"]]
    aeo = accepted["aeo"]
    assert aeo["recognising_admin"] == "CN"
    assert aeo["lanes"] == {"low-risk": "0"}
    assert aeo["counts"] == {"parties": 2, "identified": 2, "recognised": 1, "adverse": 0}
    assert not aeo["truncated"]
    consignee = next(p for p in aeo["parties"] if p["role"] == "CONSIGNEE")
    assert consignee["recognised"]
    assert consignee["authorisation"] == RECOGNISED_AEO
    assert consignee["arrangement"] == "CN-EU"
    consignor = next(p for p in aeo["parties"] if p["role"] == "CONSIGNOR")
    assert consignor["reasons"] == ["unknown_operator"]

    page = await gacc.pull()
    (item,) = [i for i in page["items"] if i["message_id"] == sent.body["message_id"]]
    assert item["payload"] == payload  # the evidence is unchanged; the results travel beside it
    assert item["annotations"]["aeo"] == aeo


async def test_the_online_check(imported: Gateway, clients: ClientFactory) -> None:
    gacc, auditor, carrier = clients("CN-GACC"), clients("AUDIT-GACC"), clients("CARRIER-COSCO")
    result = await gacc.aeo_recognition(f"EORI:{RECOGNISED_EORI}")
    assert result["recognised"]
    assert result["arrangement"] == "CN-EU"
    assert result["type"] == "AEOF"
    assert "priority clearance" in result["benefits"]
    early = await auditor.aeo_recognition(RECOGNISED_AEO, date="2015-10-31")
    assert early["reasons"] == ["not_yet_valid", "no_mra_in_force"]
    aeoc = await gacc.aeo_recognition("DE111222333", admin="CN")
    assert aeoc["reasons"] == ["type_not_covered"]
    home = await gacc.aeo_recognition("DE111222333", admin="EU")
    assert home["recognised"]
    assert home["arrangement"] == "home"
    unknown = await gacc.aeo_recognition("FR99999")
    assert unknown["reasons"] == ["unknown_operator"]
    with pytest.raises(GatewayClientError) as denied:
        await carrier.aeo_recognition(RECOGNISED_EORI)
    assert denied.value.code == "POLICY_DENIED"
    with pytest.raises(GatewayClientError) as bad:
        await gacc.aeo_recognition("not an id!")
    assert (bad.value.code, bad.value.field) == ("IDENTIFIER_INVALID", "operator")
    with pytest.raises(GatewayClientError) as bad_date:
        await gacc.aeo_recognition(RECOGNISED_EORI, date="31/10/2015")
    assert bad_date.value.field == "date"


async def test_a_suspension_from_the_issuing_partner_applies_at_once(imported: Gateway, clients: ClientFactory) -> None:
    carrier, douane, gacc = clients("CARRIER-COSCO"), clients("NL-DOUANE"), clients("CN-GACC")
    before = await gacc.aeo_recognition(SUSPENDABLE_EORI)
    assert before["recognised"]

    today = datetime.now(UTC).date()
    update = status_update(SUSPENDABLE_AEO, "suspended", since=today, eori=SUSPENDABLE_EORI)
    sent = await douane.submit(STATUS, ["CN-GACC"], update, schema="cgw.v1.AeoStatusUpdate")
    assert sent.status == 201
    event = (await ledger_events(imported))[sent.receipt["ledger_index"]]
    assert event["aeo_status"] == [
        {
            "authorisation": SUSPENDABLE_AEO,
            "type": "AEOS",
            "status": "suspended",
            "status_since": today.isoformat(),
            "valid_until": None,
        }
    ]
    after = await gacc.aeo_recognition(SUSPENDABLE_EORI)
    assert not after["recognised"]
    assert after["reasons"] == ["suspended"]

    manifest = to_bytes(manifest_to(SUSPENDABLE_EORI, "AEO-MAN-2"))
    filed = await carrier.submit(MANIFEST, ["CN-GACC"], manifest, schema="cgw.v1.CargoManifest")
    accepted = (await ledger_events(imported))[filed.receipt["ledger_index"]]
    assert accepted["aeo"]["lanes"] == {"elevated": "0"}
    assert accepted["aeo"]["parties"][0]["reasons"] == ["suspended"]  # adverse results come first

    # The status message itself reaches CN-GACC's inbox as any other message.
    page = await gacc.pull()
    assert STATUS in {i["type"] for i in page["items"]}


async def test_status_messages_are_only_taken_from_the_issuing_administration(
    imported: Gateway, clients: ClientFactory
) -> None:
    douane, carrier, cbp = clients("NL-DOUANE"), clients("CARRIER-COSCO"), clients("US-CBP")
    schema = "cgw.v1.AeoStatusUpdate"
    today = datetime.now(UTC).date()
    chinese = status_update("AEOCN4403960123", "revoked", since=today, eori=SUSPENDABLE_EORI, type_="ACE")
    with pytest.raises(GatewayClientError) as wrong_issuer:
        await douane.submit(STATUS, ["CN-GACC"], chinese, schema=schema)
    assert (wrong_issuer.value.code, wrong_issuer.value.field) == (
        "IDENTIFIER_INVALID",
        "payload.authorisations[0].number",
    )
    eu_update = status_update(SUSPENDABLE_AEO, "revoked", since=today, eori=SUSPENDABLE_EORI)
    with pytest.raises(GatewayClientError) as us:
        await cbp.submit(STATUS, ["CN-GACC"], eu_update, schema=schema)
    assert us.value.code == "IDENTIFIER_INVALID"  # the US may not revoke an EU authorisation
    with pytest.raises(GatewayClientError) as not_customs:
        await carrier.submit(STATUS, ["CN-GACC"], eu_update, schema=schema)
    assert not_customs.value.code == "POLICY_DENIED"
    still = await clients("CN-GACC").aeo_recognition(SUSPENDABLE_EORI)
    assert still["recognised"]
