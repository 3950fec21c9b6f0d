"""SOAP over the real gateway: a zeep client reads our WSDL, signs with a member certificate (WS-Security),
submits, and verifies the gateway's signed response; faults carry the stable codes; REST/SOAP parity."""

from __future__ import annotations

import asyncio
import json
import ssl
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import requests
import zeep
import zeep.exceptions
from google.protobuf import json_format
from lxml import etree
from zeep.transports import Transport

from adapters.soap import names
from adapters.soap.clientsecurity import PinnedSigner, WsSecurity, zeep_settings
from adapters.soap.composer import compose_submission
from gateway.app.main import Gateway
from gateway.client.grpc_client import GrpcGatewayClient
from gateway.client.rest import GatewayClientError, MemberCredentials
from gateway.core.model import Tlp
from gateway.demo.samples import cargo_manifest, release_notice, to_bytes
from gateway.infra.files import load_certificates, load_private_key
from gateway.wire.cgw.v1 import manifest_pb2, release_pb2
from tests.integration.conftest import ClientFactory

MANIFEST = "manifest.cargo.v1"
T = TypeVar("T")


def _signing(federation: Path, member: str) -> tuple[Any, Any]:
    base = federation / "members" / member
    return load_private_key(base / "signing.key"), load_certificates(base / "signing.crt")[0]


_SESSIONS: list[requests.Session] = []


def _closing() -> None:
    """Close the zeep clients' HTTP sessions inside the test's worker thread, before the gateway stops."""
    while _SESSIONS:
        _SESSIONS.pop().close()


def _zeep_service(gateway: Gateway, federation: Path, member: str, *, port: str = "Soap12") -> tuple[Any, WsSecurity]:
    session = requests.Session()
    _SESSIONS.append(session)
    session.headers["Connection"] = "close"  # no idle keep-alive sockets left when the gateway stops
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
    session.verify = str(federation / "ca" / "root-ca.crt")
    base = federation / "members" / member
    session.cert = (str(base / "tls-client.crt"), str(base / "tls-client.key"))
    key, cert = _signing(federation, member)
    gateway_cert = load_certificates(federation / "gateway" / "signing.crt")[0]
    security = WsSecurity(key=key, certificate=cert, response_validator=PinnedSigner(gateway_cert, "CN-GACC"))
    transport = Transport(session=session, timeout=10, operation_timeout=10)
    client = zeep.Client(
        f"{gateway.url}{names.SOAP_PATH}?wsdl", wsse=security, transport=transport, settings=zeep_settings()
    )
    return client.bind("CustomsGateway", port), security


def _closed(call: Callable[[], T]) -> Callable[[], T]:
    def run() -> T:
        try:
            return call()
        finally:
            _closing()

    return run


def _header(sender: str, to: list[str]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "from": sender,
        "to": to,
        "tlp": "AMBER",
        "created": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "expires": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


@pytest.mark.parametrize("port", ["Soap12", "Soap11"])
async def test_zeep_client_submits_and_verifies_the_signed_response(
    gateway: Gateway, federation: Path, clients: ClientFactory, port: str
) -> None:
    def call() -> tuple[Any, WsSecurity]:
        service, security = _zeep_service(gateway, federation, "NL-DOUANE", port=port)
        document = json_format.MessageToDict(json_format.ParseDict(cargo_manifest(), manifest_pb2.CargoManifest()))
        return service.SubmitCargoManifest(header=_header("NL-DOUANE", ["CN-GACC"]), document=document), security

    result, security = await asyncio.to_thread(_closed(call))
    assert result.type == MANIFEST and result["from"] == "NL-DOUANE" and result.duplicate is False
    assert security.last_verified is not None and security.last_verified.certified.member_id == "CN-GACC"
    assert security.last_verified.addressing["Action"] == names.action("SubmitCargoManifestResponse")
    # the recipient pulls over REST: the evidence is the exact signed SOAP envelope, the payload protobuf
    page = await clients("CN-GACC").pull(wait=2)
    item = next(i for i in page["items"] if i["message_id"] == result.messageId)
    assert item["envelope"].startswith("<?xml") and "wsse:Security" in item["envelope"]
    parsed = manifest_pb2.CargoManifest.FromString(item["payload"])
    assert parsed.manifest_number == cargo_manifest()["manifestNumber"]


async def test_zeep_status_pull_and_ack(gateway: Gateway, federation: Path) -> None:
    def call() -> tuple[Any, Any, Any, Any, Any]:
        douane, _ = _zeep_service(gateway, federation, "NL-DOUANE")
        document = json_format.MessageToDict(json_format.ParseDict(cargo_manifest(), manifest_pb2.CargoManifest()))
        sent = douane.SubmitCargoManifest(header=_header("NL-DOUANE", ["CN-GACC"]), document=document)
        status = douane.GetStatus(**{"from": "NL-DOUANE", "messageId": sent.messageId})
        gacc, _ = _zeep_service(gateway, federation, "CN-GACC")
        page = gacc.PullInbox(after=0, limit=10, wait=1)
        acked = gacc.AckInbox(cursor=[i.cursor for i in page.item])
        after = douane.GetStatus(**{"from": "NL-DOUANE", "messageId": sent.messageId})
        return sent, status, page, acked, after

    sent, status, page, acked, after = await asyncio.to_thread(_closed(call))
    assert status.messageId == sent.messageId and status.receipt == sent.receipt
    assert [(r.member, r.state, r.settled) for r in status.recipientState] == [("CN-GACC", "pending", None)]
    assert [i.messageId for i in page.item] == [sent.messageId] and page.item[0].payload
    assert acked == 1
    [state] = after.recipientState  # GetStatus carries each recipient's state, as REST and gRPC do
    assert (state.member, state.cursor, state.state) == ("CN-GACC", page.item[0].cursor, "acknowledged")
    assert state.settled is not None and state.attempts is None and after.forward == []


async def test_zeep_client_gets_a_fault_with_the_stable_code(gateway: Gateway, federation: Path) -> None:
    def call() -> zeep.exceptions.Fault:
        service, _ = _zeep_service(gateway, federation, "NL-DOUANE")
        document = json_format.MessageToDict(json_format.ParseDict(cargo_manifest(), manifest_pb2.CargoManifest()))
        document["vessel"]["imo"] = "9811001"  # wrong check digit
        with pytest.raises(zeep.exceptions.Fault) as caught:
            service.SubmitCargoManifest(header=_header("NL-DOUANE", ["CN-GACC"]), document=document)
        return caught.value

    fault = await asyncio.to_thread(_closed(call))
    assert fault.code == "soap:Sender"  # SOAP 1.2: Code/Value, the stable code is the Subcode
    assert [etree.QName(q).localname for q in fault.subcodes] == ["IDENTIFIER_INVALID"]
    assert etree.QName(fault.subcodes[0]).namespace == names.CGW


def _tls(federation: Path, member: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(federation / "ca" / "root-ca.crt"))
    base = federation / "members" / member
    context.load_cert_chain(base / "tls-client.crt", base / "tls-client.key")
    return context


async def _post(gateway: Gateway, federation: Path, member: str, body: bytes, soap_ns: str) -> tuple[int, bytes]:
    media = names.MEDIA_SOAP12 if soap_ns == names.SOAP12 else names.MEDIA_SOAP11
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_tls(federation, member), force_close=True))
    try:
        async with session.post(gateway.url + names.SOAP_PATH, data=body, headers={"Content-Type": media}) as response:
            return response.status, await response.read()
    finally:
        await session.close()
        await asyncio.sleep(0.01)  # let the TLS transport finish closing


def _fault_code(body: bytes, soap_ns: str) -> tuple[str, str]:
    root = etree.fromstring(body)
    if soap_ns == names.SOAP11:
        code = root.findtext(".//faultcode") or ""
    else:
        value = root.findtext(f".//{{{soap_ns}}}Code/{{{soap_ns}}}Value") or ""
        sub = root.findtext(f".//{{{soap_ns}}}Subcode/{{{soap_ns}}}Value") or ""
        code = f"{value} {sub}"
    return code, root.findtext(f".//{{{names.CGW}}}code") or ""


@pytest.mark.parametrize("soap_ns", [names.SOAP11, names.SOAP12])
async def test_faults_carry_the_stable_code_per_soap_version(gateway: Gateway, federation: Path, soap_ns: str) -> None:
    key, cert = _signing(federation, "NL-DOUANE")
    manifest = json_format.ParseDict(cargo_manifest(), manifest_pb2.CargoManifest())
    # signed by NL-DOUANE but claiming to come from CN-GACC
    _, body = compose_submission(
        manifest,
        sender="CN-GACC",
        to=["CN-GACC"],
        address=gateway.url + names.SOAP_PATH,
        key=key,
        certificate=cert,
        soap_ns=soap_ns,
    )
    status, reply = await _post(gateway, federation, "NL-DOUANE", body, soap_ns)
    code, detail_code = _fault_code(reply, soap_ns)
    assert detail_code == "SIGNER_MISMATCH"
    if soap_ns == names.SOAP11:
        assert status == 500 and code == "soap:Client.SIGNER_MISMATCH"
    else:
        assert status == 400 and code == "soap:Sender cgw:SIGNER_MISMATCH"


async def test_fault_field_names_payload_fields_by_their_json_names(gateway: Gateway, federation: Path) -> None:
    key, cert = _signing(federation, "NL-DOUANE")
    manifest = json_format.ParseDict(cargo_manifest(container="MSKU9070324"), manifest_pb2.CargoManifest())
    _, body = compose_submission(
        manifest, sender="NL-DOUANE", to=["CN-GACC"], address=gateway.url + names.SOAP_PATH, key=key, certificate=cert
    )
    status, reply = await _post(gateway, federation, "NL-DOUANE", body, names.SOAP12)
    assert status == 400 and _fault_code(reply, names.SOAP12)[1] == "IDENTIFIER_INVALID"
    field = etree.fromstring(reply).findtext(f".//{{{names.CGW}}}field")
    assert field == "payload.consignments[0].goodsItems[0].containerNumbers[0]"  # as the XML elements name them


async def test_message_id_drives_duplicates(gateway: Gateway, federation: Path) -> None:
    key, cert = _signing(federation, "NL-DOUANE")
    manifest = json_format.ParseDict(cargo_manifest(), manifest_pb2.CargoManifest())
    message_id = str(uuid.uuid4())
    args: dict[str, Any] = {
        "sender": "NL-DOUANE",
        "to": ["CN-GACC"],
        "address": gateway.url + names.SOAP_PATH,
        "key": key,
        "certificate": cert,
        "message_id": message_id,
    }
    _, body = compose_submission(manifest, **args)
    first = await _post(gateway, federation, "NL-DOUANE", body, names.SOAP12)
    again = await _post(gateway, federation, "NL-DOUANE", body, names.SOAP12)  # the same bytes: the receipt
    assert first[0] == again[0] == 200
    assert etree.fromstring(again[1]).findtext(f".//{{{names.CGW}}}duplicate") == "true"
    manifest.voyage_number = "043W"
    _, other = compose_submission(manifest, **args)  # same MessageID, other content
    status, reply = await _post(gateway, federation, "NL-DOUANE", other, names.SOAP12)
    assert status == 400 and _fault_code(reply, names.SOAP12)[1] == "DUPLICATE_CONFLICT"


async def test_wsdl_is_served_and_hardened_parsing_applies_on_the_wire(gateway: Gateway, federation: Path) -> None:
    connector = aiohttp.TCPConnector(ssl=_tls(federation, "NL-DOUANE"), force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(gateway.url + names.SOAP_PATH + "?wsdl") as response,
    ):
        assert response.status == 200
        wsdl = etree.fromstring(await response.read())
    await asyncio.sleep(0.01)
    assert wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap12/}address").get("location") == (
        gateway.url + names.SOAP_PATH
    )
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&x;</soap:Body>'
        b"</soap:Envelope>"
    )
    status, reply = await _post(gateway, federation, "NL-DOUANE", xxe, names.SOAP12)
    assert status == 400 and _fault_code(reply, names.SOAP12)[1] == "MALFORMED_REQUEST"
    assert b"root:" not in reply


async def test_same_business_message_same_decision_over_rest_grpc_and_soap(
    gateway: Gateway, federation: Path, clients: ClientFactory
) -> None:
    """Parity: one manifest, sent by NL-DOUANE over REST and gRPC (JWS) and over SOAP (WS-Security): the same
    decision, policy ids and signer in the ledger; a denied exchange is denied over all three with the same code."""
    grpc_douane = GrpcGatewayClient(
        gateway.grpc_target or "", MemberCredentials.from_federation(federation, "NL-DOUANE")
    )
    grpc_carrier = GrpcGatewayClient(
        gateway.grpc_target or "", MemberCredentials.from_federation(federation, "CARRIER-COSCO")
    )
    key, cert = _signing(federation, "NL-DOUANE")
    manifest = json_format.ParseDict(cargo_manifest(), manifest_pb2.CargoManifest())
    rest = await clients("NL-DOUANE").submit(
        MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema="cgw.v1.CargoManifest", tlp=Tlp.AMBER
    )
    _, body = compose_submission(
        manifest, sender="NL-DOUANE", to=["CN-GACC"], address=gateway.url + names.SOAP_PATH, key=key, certificate=cert
    )
    status, _reply = await _post(gateway, federation, "NL-DOUANE", body, names.SOAP12)
    async with grpc_douane:
        over_grpc = await grpc_douane.submit(
            MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema="cgw.v1.CargoManifest", tlp=Tlp.AMBER
        )
    assert rest.status == 201 and status == 200 and not over_grpc.duplicate
    size = await gateway.store.ledger_size()
    events = [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]
    accepted = {e["adapter"]: e for e in events if e["event"] == "accepted"}
    assert set(accepted) == {"rest", "grpc", "soap"}
    for key in ("decision", "policy_ids", "policy_digest", "sender", "type", "to", "tlp", "signer_cert"):
        assert accepted["rest"][key] == accepted["grpc"][key] == accepted["soap"][key], key

    # the same exchange denied (a carrier may not send a release notice) is denied over both, same code
    carrier_key, carrier_cert = _signing(federation, "CARRIER-COSCO")
    notice = json_format.ParseDict(release_notice(), release_pb2.ReleaseNotice())
    with pytest.raises(GatewayClientError) as refused:
        await clients("CARRIER-COSCO").submit(
            "release.notice.v1", ["PORT-NLRTM"], to_bytes(release_notice()), schema="cgw.v1.ReleaseNotice"
        )
    _, body = compose_submission(
        notice,
        sender="CARRIER-COSCO",
        to=["PORT-NLRTM"],
        address=gateway.url + names.SOAP_PATH,
        key=carrier_key,
        certificate=carrier_cert,
    )
    _, reply = await _post(gateway, federation, "CARRIER-COSCO", body, names.SOAP12)
    async with grpc_carrier:
        with pytest.raises(GatewayClientError) as refused_grpc:
            await grpc_carrier.submit(
                "release.notice.v1", ["PORT-NLRTM"], to_bytes(release_notice()), schema="cgw.v1.ReleaseNotice"
            )
    assert refused.value.code == refused_grpc.value.code == _fault_code(reply, names.SOAP12)[1] == "POLICY_DENIED"
