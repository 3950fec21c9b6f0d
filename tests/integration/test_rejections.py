"""Every refusal is in the ledger, and anonymous traffic cannot grow it without bound (gateway/exchange/rejections.py).

Over real sockets on REST, SOAP and gRPC: each refusal of an authenticated caller adds exactly ONE ``rejected``
leaf naming the code, the adapter that received the request and the caller; refusals of unauthenticated callers
add nothing per request and are counted into ONE ``rejected_summary`` leaf per interval (0.5 s here); the
ledger with its summaries still verifies offline, and a clean stop writes the last interval's summary.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from adapters.soap import names
from adapters.soap.composer import compose_submission
from gateway.app.auditor import verify_from_store, verify_over_rest
from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import Settings, load_settings
from gateway.client.grpc_client import GrpcGatewayClient
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.files import load_certificates, load_private_key
from gateway.wire.cgw.v1 import manifest_pb2
from tests.integration.conftest import ClientFactory
from tests.integration.grpc_fixtures import GrpcClientFactory, grpc_clients

__all__ = ["grpc_clients"]  # the fixture, used by the gRPC tests below

MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
INTERVAL = 0.5
BODY_LIMIT = 64 * 1024
LOOPBACK = "127.0.0.0/24"
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Envelope>&xxe;</Envelope>"""


def _settings(federation: Path, data: Path, **limits: Any) -> Settings:
    overrides = {"gateway.rest_port": 0, "gateway.grpc_port": 0, "gateway.data_dir": str(data)}
    overrides |= {f"limits.{name}": value for name, value in limits.items()}
    return load_settings(federation / "gateway.toml", overrides=overrides)


@pytest.fixture
async def gateway(federation: Path, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway that writes its rejection summary every INTERVAL seconds and takes bodies up to BODY_LIMIT."""
    settings = _settings(federation, tmp_path / "data", rejected_summary_seconds=INTERVAL, max_body_bytes=BODY_LIMIT)
    async with running_gateway(settings) as running:
        yield running


async def _events(gateway: Gateway, start: int = 0) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(start, size)]


async def _one_leaf(gateway: Gateway, refusal: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Run ``refusal`` (it must be refused) and return the ONE leaf it added."""
    before = await gateway.store.ledger_size()
    with pytest.raises(GatewayClientError):
        await refusal()
    added = await _events(gateway, before)
    assert len(added) == 1, added
    return added[0]


def _check(leaf: dict[str, Any], code: str, adapter: str, caller: str) -> None:
    assert leaf["event"] == "rejected"
    assert (leaf["code"], leaf["adapter"], leaf["caller"]) == (code, adapter, caller)


def _soap(client: GatewayClient, body: bytes, media: str = names.MEDIA_SOAP11) -> Callable[[], Awaitable[Any]]:
    return lambda: client._call("POST", names.SOAP_PATH, data=body, headers={"Content-Type": media})


def _signed_soap(federation: Path, member: str) -> bytes:
    base = federation / "members" / member
    manifest = json_format.ParseDict(cargo_manifest(), manifest_pb2.CargoManifest())
    _, body = compose_submission(
        manifest,
        sender=member,
        to=["CN-GACC"],
        address="urn:cgw:gateway:CN-GACC",
        key=load_private_key(base / "signing.key"),  # type: ignore[arg-type]
        certificate=load_certificates(base / "signing.crt")[0],
    )
    return body


def _get_status(sender: str, message_id: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{names.SOAP11}"><s:Header/><s:Body><GetStatus xmlns="{names.CGW}">'
        f"<from>{sender}</from><messageId>{message_id}</messageId></GetStatus></s:Body></s:Envelope>"
    ).encode()


async def test_rest_refusals_of_an_authenticated_caller_are_one_leaf_each(
    gateway: Gateway, clients: ClientFactory
) -> None:
    carrier, port, cbp = clients("CARRIER-COSCO"), clients("PORT-NLRTM"), clients("US-CBP")
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    message_id = sent.body["message_id"]
    cases: list[tuple[GatewayClient, Callable[[], Awaitable[Any]], str]] = [
        (carrier, lambda: carrier._call("POST", "/v1/messages", data=b"{}"), "MALFORMED_REQUEST"),
        (
            carrier,
            lambda: carrier._call("POST", "/v1/inbox/ack", data=b"1", headers={"Content-Type": "text/plain"}),
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        (
            carrier,
            lambda: carrier._call(
                "POST", "/v1/messages", data=b"x" * (BODY_LIMIT + 1), headers={"Cgw-Envelope": "a.b.c"}
            ),
            "LIMIT_EXCEEDED",
        ),
        (port, lambda: port.status("CARRIER-COSCO", message_id), "NOT_FOUND"),  # not a party: a denied read
        (cbp, lambda: cbp.port_snapshot("NLRTM"), "POLICY_DENIED"),
        (cbp, lambda: cbp.port_notices("NLRTM"), "POLICY_DENIED"),
        (carrier, lambda: carrier.aeo_recognition("CN9144030071526726XG"), "POLICY_DENIED"),
    ]
    for client, refusal, code in cases:
        leaf = await _one_leaf(gateway, refusal)
        _check(leaf, code, "rest", client.credentials.member_id)
        assert "secret" not in json.dumps(leaf) and "xxxx" not in json.dumps(leaf)  # no payload bytes
    audit = await _one_leaf(gateway, carrier.checkpoint)
    _check(audit, "POLICY_DENIED", "rest", "CARRIER-COSCO")
    assert audit["action"] == "audit_read" and audit["policy_digest"]


async def test_soap_refusals_of_an_authenticated_caller_are_one_leaf_each(
    gateway: Gateway, clients: ClientFactory, federation: Path
) -> None:
    douane, port, carrier = clients("NL-DOUANE"), clients("PORT-NLRTM"), clients("CARRIER-COSCO")
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    signed = _signed_soap(federation, "NL-DOUANE")
    body_at = signed.index(b"Body") + signed[signed.index(b"Body") :].index(b">") + 1
    injected = signed[:body_at] + b"<!-- injected -->" + signed[body_at:]  # comment injection into the Body
    cases: list[tuple[GatewayClient, Callable[[], Awaitable[Any]], str]] = [
        (douane, _soap(douane, signed, "application/json"), "UNSUPPORTED_MEDIA_TYPE"),
        (douane, _soap(douane, XXE), "MALFORMED_REQUEST"),
        (douane, _soap(douane, injected, names.MEDIA_SOAP12), "MALFORMED_REQUEST"),
        (douane, _soap(douane, b"<x/>" + b" " * BODY_LIMIT), "LIMIT_EXCEEDED"),
        (port, _soap(port, _get_status("CARRIER-COSCO", sent.body["message_id"])), "NOT_FOUND"),
    ]
    for client, refusal, code in cases:
        _check(await _one_leaf(gateway, refusal), code, "soap", client.credentials.member_id)


async def test_grpc_refusals_of_an_authenticated_caller_are_one_leaf_each(
    gateway: Gateway, clients: ClientFactory, grpc_clients: GrpcClientFactory
) -> None:
    sent = await clients("CARRIER-COSCO").submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    carrier, port, cbp = grpc_clients("CARRIER-COSCO"), grpc_clients("PORT-NLRTM"), grpc_clients("US-CBP")
    max_ack = gateway.settings.limits.max_ack_items

    async def stream(client: GrpcGatewayClient) -> None:
        _ = [e async for e in client.port_notices("NLRTM")]

    cases: list[tuple[GrpcGatewayClient, Callable[[], Awaitable[Any]], str]] = [
        (carrier, lambda: carrier.submit_signed("", b""), "MALFORMED_REQUEST"),
        (carrier, lambda: carrier.ack(list(range(1, max_ack + 2))), "LIMIT_EXCEEDED"),
        (port, lambda: port.status("CARRIER-COSCO", sent.body["message_id"]), "NOT_FOUND"),
        (cbp, lambda: cbp.port_snapshot("NLRTM"), "POLICY_DENIED"),
        (cbp, lambda: stream(cbp), "POLICY_DENIED"),
        (carrier, lambda: carrier.aeo_recognition("CN9144030071526726XG"), "POLICY_DENIED"),
    ]
    for client, refusal, code in cases:
        _check(await _one_leaf(gateway, refusal), code, "grpc", client.credentials.member_id)
    audit = await _one_leaf(gateway, carrier.checkpoint)
    _check(audit, "POLICY_DENIED", "grpc", "CARRIER-COSCO")  # issue 18: not "rest"
    assert audit["action"] == "audit_read"


async def _summaries_after(gateway: Gateway, start: int) -> list[dict[str, Any]]:
    await asyncio.sleep(INTERVAL * 3)  # the interval ends and its summary is written
    return [e for e in await _events(gateway, start) if e["event"] == "rejected_summary"]


def _counts(summary: dict[str, Any]) -> dict[tuple[str, str, str], int]:
    return {(c["code"], c["adapter"], c["network"]): c["count"] for c in summary["counts"]}


async def test_anonymous_refusals_are_one_summary_leaf_per_interval(
    gateway: Gateway, clients: ClientFactory, federation: Path
) -> None:
    anonymous = clients("CARRIER-COSCO", mtls=False)  # no certificate, no token
    start = await gateway.store.ledger_size()
    requests: list[Callable[[], Awaitable[Any]]] = [
        lambda: anonymous._call("POST", "/v1/messages", data=b"{}"),  # refused before authentication
        lambda: anonymous._call("POST", "/v1/token", data=b"x", headers={"Content-Type": "text/plain"}),
        anonymous.pull,
        anonymous.pull,
    ]
    for i in range(20):
        with pytest.raises(GatewayClientError):
            await requests[i % 4]()
    assert await gateway.store.ledger_size() == start  # nothing per request
    (summary,) = await _summaries_after(gateway, start)
    assert await gateway.store.ledger_size() == start + 1
    assert summary["total"] == 20
    assert _counts(summary) == {
        ("MALFORMED_REQUEST", "rest", LOOPBACK): 5,
        ("UNSUPPORTED_MEDIA_TYPE", "rest", LOOPBACK): 5,
        ("UNAUTHENTICATED", "rest", LOOPBACK): 10,
    }
    assert summary["since"] <= summary["at"]

    # the next interval: its own single summary, with the adapter that received each refusal (issue 18)
    start = await gateway.store.ledger_size()
    for _ in range(3):
        with pytest.raises(GatewayClientError):
            await _soap(anonymous, XXE)()
        with pytest.raises(GatewayClientError):
            await _soap(anonymous, _get_status("CARRIER-COSCO", "x"))()
    grpc_client = GrpcGatewayClient(gateway.grpc_target or "", clients("CARRIER-COSCO").credentials)
    grpc_client.use_token("not-a-token")  # invalid credentials on top of the certificate: not authenticated
    async with grpc_client:
        for _ in range(3):
            with pytest.raises(GatewayClientError):
                await grpc_client.status("CARRIER-COSCO", "x")
    (summary,) = await _summaries_after(gateway, start)
    assert _counts(summary) == {
        ("MALFORMED_REQUEST", "soap", LOOPBACK): 3,
        ("UNAUTHENTICATED", "soap", LOOPBACK): 3,
        ("TOKEN_INVALID", "grpc", LOOPBACK): 3,
    }
    report = await verify_over_rest(gateway.url, federation, "AUDIT-GACC")
    assert report.events_by_kind["rejected_summary"] == 2
    assert report.unverified_tail == 0


async def test_a_clean_stop_writes_the_last_summary(federation: Path, tmp_path: Path) -> None:
    settings = _settings(federation, tmp_path / "data", rejected_summary_seconds=3600)
    credentials = MemberCredentials.from_federation(federation, "CARRIER-COSCO")
    async with running_gateway(settings) as running, GatewayClient(running.url, credentials, mtls=False) as anonymous:
        for _ in range(7):
            with pytest.raises(GatewayClientError):
                await anonymous.pull()
        size = await running.store.ledger_size()
    report = await verify_from_store(settings)  # `customs-gateway audit verify` offline, after the stop
    assert report.size == size + 1 and report.events_by_kind["rejected_summary"] == 1
