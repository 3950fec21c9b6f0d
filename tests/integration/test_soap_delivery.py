"""The SOAP deliverer against a real SOAP endpoint started here (HTTPS, WS-Security both ways): delivered, faults
classified as retryable or permanent, per-call timeout, a response signed by someone else, stable MessageIDs."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from lxml import etree

from adapters.soap import names, replies, wssecurity
from adapters.soap.clientsecurity import PinnedSigner
from adapters.soap.delivery import ClientTls, SoapDeliverer, delivery_message_id
from adapters.soap.document import parse_document
from adapters.soap.mapping import qname
from gateway.core.errors import BadRequest, Overloaded
from gateway.core.model import Endpoint, Member, MemberKind
from gateway.core.pki import FederationTrust
from gateway.exchange.state import Identity
from gateway.infra.devpki import create_federation
from gateway.infra.files import load_certificates, load_private_key, load_trust
from gateway.interfaces.protocols import InboxItem, StoredMessage

RECIPIENT = Member(id="NL-DOUANE", name="Douane", kind=MemberKind.CUSTOMS, country="NL")


@dataclass
class Endpoint_:
    mode: str = "ok"  # ok | sender-fault | receiver-fault | slow | wrong-signer
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("deliveryfed")
    create_federation(directory)
    return directory


def _signer(federation: Path, member: str) -> tuple[Any, Any]:
    base = federation / "members" / member
    return load_private_key(base / "signing.key"), load_certificates(base / "signing.crt")[0]


@pytest.fixture
async def endpoint(federation: Path) -> AsyncIterator[tuple[str, Endpoint_]]:
    state = Endpoint_()
    gateway_cert = load_certificates(federation / "gateway" / "signing.crt")[0]

    async def handle(request: web.Request) -> web.Response:
        root = parse_document(await request.read())
        verified = wssecurity.verify(
            root, validator=PinnedSigner(gateway_cert, "CN-GACC"), now=datetime.now(UTC), max_skew=timedelta(minutes=5)
        )
        deliver = verified.body[0]
        item = {etree.QName(c).localname: c.text for c in deliver.find(qname("item"))}
        state.received.append(item | {"wsa": verified.addressing})
        soap_ns = verified.soap_ns
        if state.mode == "sender-fault":
            reply = replies.fault(BadRequest("unknown recipient here"), soap_ns)
        elif state.mode == "receiver-fault":
            reply = replies.fault(Overloaded("busy"), soap_ns)
        else:
            if state.mode == "slow":
                await asyncio.sleep(1.2)
            member = "CARRIER-COSCO" if state.mode == "wrong-signer" else "NL-DOUANE"
            key, cert = _signer(federation, member)
            response = etree.Element(qname("DeliverResponse"), nsmap={None: names.CGW})
            etree.SubElement(response, qname("accepted")).text = "true"
            reply = replies.signed_response(
                soap_ns,
                "Deliver",
                response,
                relates_to=verified.addressing["MessageID"],
                key=key,
                certificate=cert,
                now=datetime.now(UTC),
            )
        return web.Response(body=reply.body, status=reply.status, content_type=reply.content_type)

    app = web.Application()
    app.router.add_post("/soap", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(federation / "gateway" / "tls-server.crt", federation / "gateway" / "tls-server.key")
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
    await site.start()
    port = runner.addresses[0][1]
    yield f"https://127.0.0.1:{port}/soap", state
    await runner.cleanup()


def _deliverer(federation: Path, trust: FederationTrust, timeout: float = 5.0) -> SoapDeliverer:
    identity = Identity(
        private_key=load_private_key(federation / "gateway" / "signing.key"),  # type: ignore[arg-type]
        chain=tuple(load_certificates(federation / "gateway" / "signing.crt")),
    )
    return SoapDeliverer(
        identity=identity,
        trust=lambda: trust,
        tls=ClientTls(anchors=federation / "ca" / "root-ca.crt"),
        timeout_seconds=timeout,
    )


def _item() -> InboxItem:
    message = StoredMessage(
        sender="CN-GACC",
        message_id="7c9e6679-7425-40de-944b-e07fc1f90ae7",
        type="release.notice.v1",
        recipients=("NL-DOUANE",),
        jws="eyJhbGciOiJFUzI1NiJ9.e30.c2ln",
        payload=b'{"decision":"RELEASED"}',
        digest="0" * 64,
        received_at=datetime(2026, 11, 28, 10, 0, tzinfo=UTC),
    )
    return InboxItem(cursor=3, recipient="NL-DOUANE", message=message)


@pytest.fixture(scope="module")
def trust(federation: Path) -> FederationTrust:
    return load_trust(federation / "ca/root-ca.crt", federation / "ca/root-ca.crl", federation / "registry.json")


async def test_delivered_with_the_evidence_unchanged_and_a_stable_message_id(
    federation: Path, trust: FederationTrust, endpoint: tuple[str, Endpoint_]
) -> None:
    url, state = endpoint
    deliverer = _deliverer(federation, trust)
    first = await deliverer.deliver(RECIPIENT, Endpoint("soap", url), _item())
    again = await deliverer.deliver(RECIPIENT, Endpoint("soap", url), _item())
    assert first.delivered and again.delivered and first.status == "200"
    assert state.received[0]["evidence"] == _item().message.jws
    assert state.received[0]["payload"] == "eyJkZWNpc2lvbiI6IlJFTEVBU0VEIn0="
    ids = {r["wsa"]["MessageID"] for r in state.received}
    assert ids == {delivery_message_id(_item(), "NL-DOUANE")}
    assert {k: v for k, v in state.received[0].items() if k != "wsa"} == {
        k: v for k, v in state.received[1].items() if k != "wsa"
    }


@pytest.mark.parametrize(("mode", "retryable"), [("sender-fault", False), ("receiver-fault", True)])
async def test_faults_are_classified(
    federation: Path, trust: FederationTrust, endpoint: tuple[str, Endpoint_], mode: str, retryable: bool
) -> None:
    url, state = endpoint
    state.mode = mode
    attempt = await _deliverer(federation, trust).deliver(RECIPIENT, Endpoint("soap", url), _item())
    assert not attempt.delivered and attempt.retryable is retryable


async def test_a_slow_endpoint_is_a_retryable_timeout(
    federation: Path, trust: FederationTrust, endpoint: tuple[str, Endpoint_]
) -> None:
    url, state = endpoint
    state.mode = "slow"
    attempt = await _deliverer(federation, trust, timeout=0.5).deliver(RECIPIENT, Endpoint("soap", url), _item())
    assert attempt.status == "timeout" and attempt.retryable and not attempt.delivered


async def test_a_response_signed_by_another_member_is_not_a_delivery(
    federation: Path, trust: FederationTrust, endpoint: tuple[str, Endpoint_]
) -> None:
    url, state = endpoint
    state.mode = "wrong-signer"
    attempt = await _deliverer(federation, trust).deliver(RECIPIENT, Endpoint("soap", url), _item())
    assert not attempt.delivered and attempt.status == "response-unverified" and attempt.retryable


async def test_plain_http_and_unreachable_endpoints(federation: Path, trust: FederationTrust) -> None:
    deliverer = _deliverer(federation, trust, timeout=1.0)
    refused = await deliverer.deliver(RECIPIENT, Endpoint("soap", "http://127.0.0.1:9/soap"), _item())
    assert refused.status == "refused-scheme" and not refused.retryable
    down = await deliverer.deliver(RECIPIENT, Endpoint("soap", "https://127.0.0.1:9/soap"), _item())
    assert down.status == "connect-error" and down.retryable
