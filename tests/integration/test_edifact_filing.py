"""A carrier files a CUSCAR over REST (signed like any payload) and pulls its CUSRES; over real TLS sockets.

Accepted: 201, the interchange bytes are the evidence stored and delivered to customs, the receipt's ``answer``
claim and the CUSRES in the carrier's inbox both say accepted, correlated to the UNB control reference.
Refused: the problem JSON names the segment and rule, the ledger records the code, and the carrier still gets a
CUSRES (rejected, ERP/ERC naming the same segment and code).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.edifact import parse_interchange, to_cuscar
from gateway.app.auditor import verify_over_rest
from gateway.app.main import Gateway
from gateway.client.rest import GatewayClient, GatewayClientError
from gateway.core.envelope import parse_header
from gateway.core.identifiers import iso6346_check_digit
from gateway.core.signing import peek_header, verify_compact
from gateway.demo.samples import cargo_manifest
from gateway.features.edifact.translation import INLINE_TRANSLATION_BYTES
from tests.integration.conftest import ClientFactory
from tests.integration.grpc_fixtures import GrpcClientFactory, grpc_clients

__all__ = ["grpc_clients"]  # the fixture, imported so pytest finds it here

pytestmark = pytest.mark.integration

MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
EDIFACT = "application/edifact"


def filing(control_reference: str = "CTRL0000001") -> bytes:
    return to_cuscar(
        cargo_manifest(),
        sender="COSU",
        recipient="CNGACC",
        control_reference=control_reference,
        prepared=datetime(2026, 12, 1, 8, 0, tzinfo=UTC),
    )


async def answers(carrier: GatewayClient) -> list[dict[str, Any]]:
    page = await carrier.pull()
    return [item for item in page["items"] if item["type"] == "response.cusres.v1"]


def cusres_segments(payload: bytes) -> dict[str, list[tuple[tuple[str, ...], ...]]]:
    (message,) = parse_interchange(payload).messages
    out: dict[str, list[tuple[tuple[str, ...], ...]]] = {}
    for segment in message.segments:
        out.setdefault(segment.tag, []).append(segment.elements)
    return out


async def test_accepted_filing_is_kept_as_evidence_and_answered(
    gateway: Gateway, clients: ClientFactory, federation: Path
) -> None:
    carrier, gacc = clients("CARRIER-COSCO"), clients("CN-GACC")
    data = filing()
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], data, schema=SCHEMA, media=EDIFACT)
    assert sent.status == 201
    answer = sent.receipt["answer"]
    assert (answer["status"], answer["reference"], answer["type"]) == ("accepted", "CTRL0000001", "response.cusres.v1")

    delivered = (await gacc.pull())["items"]
    assert [i["payload"] for i in delivered] == [data]  # the interchange itself is the evidence

    (item,) = await answers(carrier)
    assert item["from"] == "CN-GACC" and item["message_id"] == answer["message_id"]
    segments = cusres_segments(item["payload"])
    assert segments["BGM"][0][3] == ("AP",)
    assert segments["RFF"][0] == (("ACW", "CTRL0000001"),)
    assert "ERC" not in segments
    # the answer's envelope is signed by the gateway and binds the CUSRES bytes
    header, body = verify_compact(item["envelope"], gateway.state.identity.public_key)
    assert peek_header(item["envelope"])["typ"] == header["typ"]
    answer_header = parse_header(json.loads(body))
    assert answer_header.correlation == sent.body["message_id"] and answer_header.to == ("CARRIER-COSCO",)
    # the filing and its answer are ledger leaves an auditor verifies like any other
    report = await verify_over_rest(gateway.url, federation, "AUDIT-GACC")
    assert report.events_by_kind["accepted"] == 2


async def test_refused_filing_names_segment_and_rule_and_is_answered(gateway: Gateway, clients: ClientFactory) -> None:
    carrier = clients("CARRIER-COSCO")
    text = filing().decode("latin-1")
    broken = re.sub(r"UNT\+(\d+)\+", "UNT+99+", text).encode("latin-1")
    with pytest.raises(GatewayClientError) as caught:
        await carrier.submit(MANIFEST, ["CN-GACC"], broken, schema=SCHEMA, media=EDIFACT)
    error = caught.value
    assert (error.status, error.code) == (422, "EDIFACT_INVALID")
    assert error.field is not None and re.fullmatch(r"segment\[\d+\]\.UNT", error.field)
    assert "UNT.count" in error.detail
    size = await gateway.store.ledger_size()
    events = [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]
    assert [e["code"] for e in events if e["event"] == "rejected"] == ["EDIFACT_INVALID"]

    (item,) = await answers(carrier)
    segments = cusres_segments(item["payload"])
    assert segments["BGM"][0][1:4] == (("COSU-MAN-0001",), ("9",), ("RE",))  # the filing's manifest number
    assert segments["RFF"][0] == (("ACW", "CTRL0000001"),)
    position = error.field.removeprefix("segment[").split("]")[0]
    assert segments["ERP"][0] == (("1", position),)
    assert segments["ERC"][0] == (("EDIENVLP", "", "ZZZ"),)  # an..8: envelope rules (README "EDIFACT")
    assert "".join(segments["FTX"][0][3]).startswith("EDIFACT_INVALID: UNT.count")


async def test_identifier_refusal_and_policy_refusal_are_answered(gateway: Gateway, clients: ClientFactory) -> None:
    carrier = clients("CARRIER-COSCO")
    broken = filing().replace(b"9811000:146", b"9811001:146")
    with pytest.raises(GatewayClientError) as caught:
        await carrier.submit(MANIFEST, ["CN-GACC"], broken, schema=SCHEMA, media=EDIFACT)
    assert caught.value.code == "IDENTIFIER_INVALID" and (caught.value.field or "").endswith(".TDT")
    (item,) = await answers(carrier)
    segments = cusres_segments(item["payload"])
    assert segments["ERC"][0] == (("IDIMO", "", "ZZZ"),)
    assert segments["BGM"][0][1:4] == (("COSU-MAN-0001",), ("9",), ("RE",))


async def test_edifact_is_only_accepted_for_manifests(gateway: Gateway, clients: ClientFactory) -> None:
    carrier = clients("CARRIER-COSCO")
    with pytest.raises(GatewayClientError) as caught:
        await carrier.submit("release.notice.v1", ["CN-GACC"], filing(), schema="cgw.v1.ReleaseNotice", media=EDIFACT)
    assert caught.value.code in ("UNSUPPORTED_MEDIA_TYPE", "POLICY_DENIED")


async def test_duplicate_filing_returns_the_original_receipt_and_one_answer(
    gateway: Gateway, clients: ClientFactory
) -> None:
    carrier = clients("CARRIER-COSCO")
    data = filing("CTRL0000002")
    jws = carrier.sign(MANIFEST, ["CN-GACC"], data, schema=SCHEMA, media=EDIFACT)
    first = await carrier.submit_signed(jws, data, EDIFACT)
    again = await carrier.submit_signed(jws, data, EDIFACT)
    assert again.duplicate and again.body["receipt"] == first.body["receipt"]
    assert len(await answers(carrier)) == 1


async def test_cli_send_detects_an_edi_file(gateway: Gateway, federation: Path, tmp_path: Path) -> None:
    path = tmp_path / "filing.edi"
    path.write_bytes(filing("CTRL0000003"))
    args = ["send", "--url", gateway.url, "--federation", str(federation), "--as", "CARRIER-COSCO"]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.app.cli",
        *args,
        "--type",
        MANIFEST,
        "--to",
        "CN-GACC",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0, (stdout + stderr).decode()
    body = json.loads(stdout)
    assert body["receipt_claims"]["answer"]["status"] == "accepted"
    assert body["receipt_claims"]["answer"]["reference"] == "CTRL0000003"


async def test_grpc_filing_is_translated_and_answered_on_the_inbox_stream(
    gateway: Gateway, grpc_clients: GrpcClientFactory
) -> None:
    carrier = grpc_clients("CARRIER-COSCO")
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], filing("CTRL0000004"), schema=SCHEMA, media=EDIFACT)
    assert sent.receipt["answer"]["reference"] == "CTRL0000004"
    items = [item async for item in carrier.inbox(deadline_seconds=5)]
    (answer,) = [i for i in items if i.type == "response.cusres.v1"]
    assert answer.message_id == sent.receipt["answer"]["message_id"]
    assert cusres_segments(answer.payload)["BGM"][0][3] == ("AP",)


async def test_a_large_filing_is_translated_off_the_event_loop(gateway: Gateway, clients: ClientFactory) -> None:
    document = cargo_manifest()
    template = document["consignments"][0]
    document["consignments"] = []
    for index in range(120):  # ~48 KB of EDIFACT: beyond INLINE_TRANSLATION_BYTES
        serial = f"{index:06d}"
        number = "MSKU" + serial + str(iso6346_check_digit("MSKU" + serial))
        consignment = json.loads(json.dumps(template))
        consignment["transportDocumentNumber"] = f"COSU{index:010d}"
        consignment["goodsItems"][0]["containerNumbers"] = [number]
        consignment["containers"] = [{"number": number}]
        document["consignments"].append(consignment)
    data = to_cuscar(document, sender="COSU", recipient="CNGACC", control_reference="BIG1", prepared=datetime.now(UTC))
    assert len(data) > INLINE_TRANSLATION_BYTES
    carrier = clients("CARRIER-COSCO")
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], data, schema=SCHEMA, media=EDIFACT)
    assert sent.receipt["answer"]["status"] == "accepted"
    broken = data.replace(b"UNZ+1+BIG1", b"UNZ+1+BIG2")
    with pytest.raises(GatewayClientError) as caught:
        await carrier.submit(MANIFEST, ["CN-GACC"], broken, schema=SCHEMA, media=EDIFACT)
    assert caught.value.code == "EDIFACT_INVALID" and "UNZ.reference" in caught.value.detail
    statuses = [cusres_segments(i["payload"])["BGM"][0][3] for i in await answers(carrier)]
    assert statuses == [("AP",), ("RE",)]
