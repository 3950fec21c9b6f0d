"""Forward and recall of a message whose stored evidence is a SOAP WS-Security envelope (not a JWS): the
original's header facts (type, TLP, programme, payload digest) are re-read from the signed elements of the
stored envelope, so a REST forward of a SOAP submission is checked like any other, and a recall reaches it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from adapters.soap import names
from adapters.soap.composer import compose_submission
from adapters.soap.submission import SoapDocumentVerifier
from gateway.app.main import Gateway
from gateway.client.rest import GatewayClientError
from gateway.core.errors import Internal
from gateway.core.model import Tlp
from gateway.core.payloads import MEDIA_PROTOBUF, MESSAGE_TYPES
from gateway.demo import programsamples as samples
from gateway.demo.samples import to_bytes
from tests.integration.conftest import ClientFactory
from tests.integration.test_soap_exchange import _post, _signing

ALARM = "megaport.rpm-alarm.v1"


async def _soap_alarm(gateway: Gateway, federation: Path, tlp: Tlp = Tlp.AMBER) -> str:
    """PORT-NLRTM submits an RPM alarm to US-CBP over SOAP 1.2; the message id."""
    spec = MESSAGE_TYPES[ALARM]
    document = json_format.ParseDict(samples.rpm_alarm(), spec.message())
    key, cert = _signing(federation, "PORT-NLRTM")
    message_id, body = compose_submission(
        document,
        sender="PORT-NLRTM",
        to=["US-CBP"],
        address=gateway.url + names.SOAP_PATH,
        key=key,
        certificate=cert,
        tlp=tlp,
        program="MEGAPORT",
    )
    status, reply = await _post(gateway, federation, "PORT-NLRTM", body, names.SOAP12)
    assert status == 200, reply[:400]
    return message_id


async def _ledger(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]


async def test_a_soap_submission_is_forwarded_over_rest_and_recalled(
    gateway: Gateway, federation: Path, clients: ClientFactory
) -> None:
    port, cbp, douane = clients("PORT-NLRTM"), clients("US-CBP"), clients("NL-DOUANE")
    alarm_id = await _soap_alarm(gateway, federation)
    stored = await gateway.store.find_message("PORT-NLRTM", alarm_id)
    assert stored is not None and stored.jws.startswith("<")  # the evidence is the signed SOAP envelope
    schema = MESSAGE_TYPES[ALARM].schema

    def sign(tlp: Tlp) -> str:
        return cbp.sign(
            ALARM, ["NL-DOUANE"], stored.payload, schema=schema, program="MEGAPORT", tlp=tlp, media=MEDIA_PROTOBUF
        )

    # the forward must repeat what the signed SOAP header said (TLP AMBER), read from the stored envelope
    with pytest.raises(GatewayClientError) as refused:
        await cbp.forward_signed("PORT-NLRTM", alarm_id, sign(Tlp.GREEN))
    assert (refused.value.code, refused.value.field) == ("SCHEMA_INVALID", "tlp")
    forwarded = await cbp.forward_signed("PORT-NLRTM", alarm_id, sign(Tlp.AMBER))
    assert forwarded.status == 201
    [item] = (await douane.pull())["items"]
    assert item["from"] == "US-CBP" and item["payload"] == stored.payload
    assert item["forward_of"]["envelope"] == stored.jws  # the original SOAP evidence travels unchanged

    withdrawn = await port.submit(
        "intel.recall.v1",
        ["US-CBP"],
        to_bytes(samples.intel_recall("PORT-NLRTM", alarm_id)),
        schema=MESSAGE_TYPES["intel.recall.v1"].schema,
    )
    assert withdrawn.status == 201
    recalled = {(e["sender"], e["message_id"]) for e in await _ledger(gateway) if e["event"] == "recalled"}
    assert recalled == {("PORT-NLRTM", alarm_id), ("US-CBP", forwarded.body["message_id"])}


async def test_stored_soap_evidence_reads_back_only_as_signed(gateway: Gateway, federation: Path) -> None:
    alarm_id = await _soap_alarm(gateway, federation, tlp=Tlp.GREEN)
    stored = await gateway.store.find_message("PORT-NLRTM", alarm_id)
    assert stored is not None
    verifier = SoapDocumentVerifier()
    header = verifier.stored_header(stored.jws, accepted_at=stored.received_at)
    assert header is not None
    assert (header.sender, header.id, header.type, header.tlp, header.program) == (
        "PORT-NLRTM",
        alarm_id,
        ALARM,
        Tlp.GREEN,
        "MEGAPORT",
    )
    assert header.payload.sha256 == hashlib.sha256(stored.payload).hexdigest()
    # a JWS is not this verifier's kind; a stored envelope altered after acceptance is a store fault (INTERNAL)
    assert verifier.stored_header("eyJhbGciOiJFUzI1NiJ9.e30.c2ln", accepted_at=stored.received_at) is None
    with pytest.raises(Internal):
        verifier.stored_header(stored.jws.replace(">GREEN<", ">CLEAR<"), accepted_at=stored.received_at)
