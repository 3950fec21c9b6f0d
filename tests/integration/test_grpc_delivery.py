"""gRPC push delivery against a real grpc.aio ``cgw.v1.Delivery`` server (TLS, federation certificates):
delivered with the webhook's signed CloudEvent, retried with identical bytes, retryable vs permanent status codes,
the per-call deadline, an untrusted server certificate, and through a running gateway: delivered and
dead-lettered, every attempt a ledger event."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509

from adapters.grpc_api.delivery import GrpcDeliverer, delivery_credentials, grpc_target
from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.core.model import Endpoint, Member, MemberKind
from gateway.core.pushevent import CONTENT_TYPE, read_push_event
from gateway.core.registry import parse_registry, registry_to_json
from gateway.exchange.state import Identity
from gateway.infra.devpki import create_federation
from gateway.infra.files import load_certificates, load_private_key
from gateway.infra.webhook import WebhookDeliverer, webhook_tls
from gateway.interfaces.protocols import InboxItem, StoredMessage
from gateway.wire.cgw.v1 import delivery_pb2, delivery_pb2_grpc
from tests.integration.test_push_delivery import PORT, ledger, send_notices, wait_until

RECIPIENT = Member(id="NL-DOUANE", name="Douane", kind=MemberKind.CUSTOMS, country="NL")


@dataclass
class Receiver(delivery_pb2_grpc.DeliveryServicer):
    """A member's Delivery service: answers the queued status codes in turn, then OK."""

    codes: list[grpc.StatusCode] = field(default_factory=list)
    delay: float = 0.0
    received: list[delivery_pb2.PushEvent] = field(default_factory=list)

    async def Deliver(
        self, request: delivery_pb2.PushEvent, context: grpc.aio.ServicerContext[Any, Any]
    ) -> delivery_pb2.DeliveryAck:
        self.received.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.codes:
            await context.abort(self.codes.pop(0), "receiver says no")
        return delivery_pb2.DeliveryAck(event_id="ok")


@pytest.fixture
def fed(federation: Path) -> Path:
    return federation  # the session's dev federation: the gateway tests below trust the same anchor


async def _serve(receiver: Receiver, key: bytes, chain: bytes) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    delivery_pb2_grpc.add_DeliveryServicer_to_server(receiver, server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, chain)]))
    await server.start()
    return server, port


@pytest.fixture
async def endpoint(fed: Path) -> AsyncIterator[tuple[str, Receiver]]:
    receiver = Receiver()
    tls = fed / "gateway"  # a server certificate issued under the federation anchor (SAN 127.0.0.1)
    server, port = await _serve(receiver, (tls / "tls-server.key").read_bytes(), (tls / "tls-server.crt").read_bytes())
    yield f"grpcs://127.0.0.1:{port}", receiver
    await server.stop(None)


def _webhook(fed: Path) -> WebhookDeliverer:
    identity = Identity(
        private_key=load_private_key(fed / "gateway" / "signing.key"),  # type: ignore[arg-type]
        chain=tuple(load_certificates(fed / "gateway" / "signing.crt")),
    )
    return WebhookDeliverer(
        identity=identity,
        source="urn:cgw:gateway:CN-GACC",
        tls=webhook_tls(fed / "ca" / "root-ca.crt"),
        timeout_seconds=5.0,
    )


def _deliverer(fed: Path, timeout: float = 5.0) -> GrpcDeliverer:
    return GrpcDeliverer(
        events=_webhook(fed).event,
        credentials=delivery_credentials(fed / "ca" / "root-ca.crt"),
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


def test_only_grpcs_host_port_urls_are_called() -> None:
    assert grpc_target("grpcs://member.example:443") == "member.example:443"
    assert grpc_target("GRPCS://127.0.0.1:9/") == "127.0.0.1:9"
    for url in ("grpc://member.example:443", "https://member.example", "grpcs://", "grpcs://a@b:1", "grpcs://a/b"):
        assert grpc_target(url) is None


async def test_delivered_with_the_webhook_event_bytes(fed: Path, endpoint: tuple[str, Receiver]) -> None:
    url, receiver = endpoint
    deliverer = _deliverer(fed)
    try:
        attempt = await deliverer.deliver(RECIPIENT, Endpoint("grpc", url), _item())
    finally:
        await deliverer.close()
    assert (attempt.delivered, attempt.status) == (True, "OK")
    [got] = receiver.received
    expected = _webhook(fed).event(RECIPIENT, _item())
    assert (got.body, got.signature, got.content_type) == (expected.body, expected.signature, CONTENT_TYPE)
    public_key = x509.load_pem_x509_certificate((fed / "gateway" / "signing.crt").read_bytes()).public_key()
    event = read_push_event(got.body, got.signature, public_key)
    assert event.data["envelope"] == _item().message.jws
    assert event.attributes["cgwrecipient"] == "NL-DOUANE"


@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (grpc.StatusCode.UNAVAILABLE, True),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, True),
        (grpc.StatusCode.DEADLINE_EXCEEDED, True),
        (grpc.StatusCode.INVALID_ARGUMENT, False),
        (grpc.StatusCode.PERMISSION_DENIED, False),
        (grpc.StatusCode.INTERNAL, False),
        (grpc.StatusCode.UNIMPLEMENTED, False),
    ],
)
async def test_status_codes_are_classified_like_webhook_statuses(
    fed: Path, endpoint: tuple[str, Receiver], code: grpc.StatusCode, retryable: bool
) -> None:
    url, receiver = endpoint
    receiver.codes = [code]
    deliverer = _deliverer(fed)
    try:
        failed = await deliverer.deliver(RECIPIENT, Endpoint("grpc", url), _item())
        again = await deliverer.deliver(RECIPIENT, Endpoint("grpc", url), _item())
    finally:
        await deliverer.close()
    assert (failed.delivered, failed.retryable, failed.status) == (False, retryable, code.name)
    assert again.delivered
    assert len({(r.body, r.signature) for r in receiver.received}) == 1  # the retry is byte-identical


async def test_a_slow_receiver_hits_the_per_call_deadline(fed: Path, endpoint: tuple[str, Receiver]) -> None:
    url, receiver = endpoint
    receiver.delay = 1.0
    deliverer = _deliverer(fed, timeout=0.2)
    try:
        attempt = await deliverer.deliver(RECIPIENT, Endpoint("grpc", url), _item())
    finally:
        await deliverer.close()
    assert (attempt.delivered, attempt.retryable, attempt.status) == (False, True, "DEADLINE_EXCEEDED")


async def test_a_server_outside_the_federation_and_a_plain_url_are_not_delivered_to(fed: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    create_federation(other)  # a certificate from another (untrusted) root
    receiver = Receiver()
    tls = other / "gateway"
    server, port = await _serve(receiver, (tls / "tls-server.key").read_bytes(), (tls / "tls-server.crt").read_bytes())
    deliverer = _deliverer(fed)
    try:
        untrusted = await deliverer.deliver(RECIPIENT, Endpoint("grpc", f"grpcs://127.0.0.1:{port}"), _item())
        plain = await deliverer.deliver(RECIPIENT, Endpoint("grpc", f"grpc://127.0.0.1:{port}"), _item())
    finally:
        await deliverer.close()
        await server.stop(None)
    assert (untrusted.delivered, untrusted.retryable, untrusted.status) == (False, True, "UNAVAILABLE")
    assert (plain.delivered, plain.retryable, plain.status) == (False, False, "refused-scheme")
    assert receiver.received == []


# -- through a running gateway ------------------------------------------------------------------------------------

Start = Callable[..., Awaitable[tuple[Gateway, Path]]]


def grpc_federation(source: Path, target: Path, *, member: str, url: str) -> Path:
    """A copy of the dev federation in which ``member`` receives by gRPC push at ``url`` (registry re-versioned)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("data", "*.db*"))
    path = target / "registry.json"
    registry = parse_registry(json.loads(path.read_text()))
    members = dict(registry.members)
    members[member] = dataclasses.replace(members[member], endpoints=(Endpoint(kind="grpc", url=url),))
    path.write_text(json.dumps(registry_to_json(dataclasses.replace(registry, members=members)), indent=2) + "\n")
    return target


@pytest.fixture
async def start(federation: Path, tmp_path: Path, endpoint: tuple[str, Receiver]) -> AsyncIterator[Start]:
    url, _ = endpoint
    async with AsyncExitStack() as stack:

        async def make(**delivery: Any) -> tuple[Gateway, Path]:
            fed = grpc_federation(federation, tmp_path / "fed", member=PORT, url=url)
            overrides: dict[str, Any] = {
                "gateway.rest_port": 0,
                "gateway.data_dir": str(tmp_path / "data"),
                "delivery.poll_interval_seconds": 0.05,
                "delivery.backoff_base_seconds": 0.05,
                "delivery.backoff_max_seconds": 0.2,
            }
            overrides |= {f"delivery.{k}": v for k, v in delivery.items()}
            settings = load_settings(fed / "gateway.toml", overrides=overrides)
            return await stack.enter_async_context(running_gateway(settings)), fed

        yield make


def _attempts(entries: list[dict[str, Any]]) -> list[tuple[int, str, str, str]]:
    return [
        (e["attempt"], e["endpoint"], e["status"], e["outcome"])
        for e in entries
        if e["event"] in {"delivered", "delivery_failed"}
    ]


async def test_a_gateway_pushes_over_grpc_retries_identically_and_acknowledges(
    start: Start, endpoint: tuple[str, Receiver]
) -> None:
    _, receiver = endpoint
    receiver.codes = [grpc.StatusCode.UNAVAILABLE]
    gateway, fed = await start()
    [message_id] = await send_notices(gateway, fed)

    async def delivered() -> bool:
        return any(e["event"] == "delivered" for e in await ledger(gateway))

    await wait_until(delivered)
    assert _attempts(await ledger(gateway)) == [(1, "grpc", "UNAVAILABLE", "retry"), (2, "grpc", "OK", "delivered")]
    assert len(receiver.received) == 2
    assert len({(r.body, r.signature) for r in receiver.received}) == 1
    assert json.loads(receiver.received[0].body)["id"] == f"CN-GACC/{message_id}"
    assert await gateway.store.pull(PORT, 0, 10) == []  # delivered = acknowledged


async def test_a_permanent_grpc_refusal_is_a_dead_letter(start: Start, endpoint: tuple[str, Receiver]) -> None:
    _, receiver = endpoint
    receiver.codes = [grpc.StatusCode.PERMISSION_DENIED]
    gateway, fed = await start()
    await send_notices(gateway, fed)

    async def dead() -> bool:
        return await gateway.store.dead_letter_count() == 1

    await wait_until(dead)
    assert _attempts(await ledger(gateway)) == [(1, "grpc", "PERMISSION_DENIED", "dead")]
    assert len(receiver.received) == 1
