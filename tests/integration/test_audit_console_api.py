"""The audit console's read endpoints over HTTPS/mTLS: exchange search, one message's story, rejections by code,
and the console's static files with their Content-Security-Policy."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClientError
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.conftest import ClientFactory

SCHEMA = "cgw.v1.CargoManifest"


async def test_search_finds_exchanges_by_each_filter(clients: ClientFactory) -> None:
    carrier, auditor = clients("CARRIER-COSCO"), clients("AUDIT-GACC")
    first = await carrier.submit("manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest("M-1")), schema=SCHEMA)
    payload = to_bytes(cargo_manifest("M-2", container="TGHU8766556"))
    second = await carrier.submit("manifest.cargo.v1", ["CN-GACC", "NL-DOUANE"], payload, schema=SCHEMA)
    first_id, second_id = first.body["message_id"], second.body["message_id"]

    found = await auditor.exchanges(message_id=second_id)
    assert [(h["event"], h["message_id"], h["index"]) for h in found["hits"]] == [
        ("accepted", second_id, second.body["ledger_index"])
    ]
    assert found["complete"] and found["hits"][0]["recipients"] == ["CN-GACC", "NL-DOUANE"]
    by_sender = await auditor.exchanges(sender="CARRIER-COSCO", type="manifest.cargo.v1")
    assert [h["message_id"] for h in by_sender["hits"]] == [second_id, first_id]  # newest first
    assert [h["message_id"] for h in (await auditor.exchanges(recipient="NL-DOUANE"))["hits"]] == [second_id]
    # container and B/L match the accepted message's payload
    assert [h["message_id"] for h in (await auditor.exchanges(container="TGHU8766556"))["hits"]] == [second_id]
    assert {h["message_id"] for h in (await auditor.exchanges(bl="COSU6123456780"))["hits"]} == {first_id, second_id}
    assert (await auditor.exchanges(container="TGHU8766556", recipient="US-CBP"))["hits"] == []
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert (await auditor.exchanges(since=later))["hits"] == []
    page = await auditor.exchanges(sender="CARRIER-COSCO", limit=1)
    assert [h["message_id"] for h in page["hits"]] == [second_id] and not page["complete"]
    older = await auditor.exchanges(sender="CARRIER-COSCO", before=page["scanned_from"])
    assert [h["message_id"] for h in older["hits"]] == [first_id]


async def test_story_tells_acceptance_acknowledgement_and_rejections_of_one_message(clients: ClientFactory) -> None:
    carrier, gacc, auditor = clients("CARRIER-COSCO"), clients("CN-GACC"), clients("AUDIT-GACC")
    other = await carrier.submit("manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest("M-0")), schema=SCHEMA)
    sent = await carrier.submit("manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest("M-1")), schema=SCHEMA)
    message_id = sent.body["message_id"]
    # the same id with other bytes is a conflict: a rejection naming the message
    conflicting = to_bytes(cargo_manifest("M-1-altered"))
    with pytest.raises(GatewayClientError):
        await carrier.submit("manifest.cargo.v1", ["CN-GACC"], conflicting, schema=SCHEMA, message_id=message_id)
    items = (await gacc.pull())["items"]
    await gacc.ack([i["cursor"] for i in items if i["message_id"] == other.body["message_id"]])  # not this one's
    await gacc.ack([i["cursor"] for i in items if i["message_id"] == message_id])

    story = await auditor.story("CARRIER-COSCO", message_id)
    assert story["message"]["ledger_index"] == sent.body["ledger_index"] and story["complete"]
    assert [s["step"] for s in story["steps"]] == ["accepted", "rejected", "acknowledged"]
    assert story["steps"][0]["index"] == sent.body["ledger_index"]
    assert story["steps"][1]["entry"]["code"] == "DUPLICATE_CONFLICT"
    assert story["steps"][2]["entry"]["recipient"] == "CN-GACC"
    # the home administration reads stories too; a foreign administration does not
    assert (await gacc.story("CARRIER-COSCO", message_id))["steps"] == story["steps"]
    with pytest.raises(GatewayClientError) as denied:
        await clients("NL-DOUANE").story("CARRIER-COSCO", message_id)
    assert (denied.value.status, denied.value.code) == (403, "POLICY_DENIED")
    with pytest.raises(GatewayClientError) as unknown:
        await auditor.story("CARRIER-COSCO", "no-such-message")
    assert unknown.value.status == 404


async def test_rejections_are_counted_per_code_and_bucket(clients: ClientFactory) -> None:
    carrier, auditor = clients("CARRIER-COSCO"), clients("AUDIT-GACC")
    for member in ("PORT-NLRTM", "NL-DOUANE"):  # two POLICY_DENIED (audit reads by non-auditors)
        with pytest.raises(GatewayClientError):
            await clients(member).checkpoint()
    with pytest.raises(GatewayClientError):  # a carrier may not send a manifest to a port
        await carrier.submit("manifest.cargo.v1", ["PORT-NLRTM"], to_bytes(cargo_manifest("M-9")), schema=SCHEMA)
    counts = await auditor.rejections(bucket=60)
    assert counts["bucket_seconds"] == 60 and counts["complete"]
    total: dict[str, int] = {}
    for bucket in counts["buckets"]:
        for code, n in bucket["counts"].items():
            total[code] = total.get(code, 0) + n
    assert total == {"POLICY_DENIED": 3}
    assert counts["codes"] == ["POLICY_DENIED"]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await auditor.rejections(since=future))["buckets"] == []
    for bad in ({"bucket": 5}, {"since": "yesterday"}, {"since": future, "until": future}):
        with pytest.raises(GatewayClientError) as err:
            await auditor.rejections(**bad)
        assert err.value.status == 400


async def test_console_files_are_served_with_a_strict_content_security_policy(
    gateway: Gateway, federation: Path
) -> None:
    tls = ssl.create_default_context(cafile=str(federation / "ca" / "root-ca.crt"))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        async with session.get(gateway.url + "/console", allow_redirects=False) as redirect:
            assert redirect.status == 308 and redirect.headers["Location"] == "/console/"
        async with session.get(gateway.url + "/console/") as page:
            html = await page.text()
            assert page.status == 200 and page.content_type == "text/html"
            assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
            assert "<script" in html and "script-src" not in html and "http://" not in html
        for name in ("console.js", "merkle.js", "console.css"):
            async with session.get(f"{gateway.url}/console/{name}") as asset:
                assert asset.status == 200 and asset.headers["X-Content-Type-Options"] == "nosniff"
        for name in ("../app.py", "%2e%2e%2fapp.py", "nothing.js"):
            async with session.get(f"{gateway.url}/console/{name}") as missing:
                assert missing.status == 404
