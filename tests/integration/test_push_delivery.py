"""Push delivery over real HTTPS: signed CloudEvents, byte-identical retries, backoff, the per-recipient bound,
dead letters and their redrive through the admin API (Cedar ``admin``), ledger events, metrics, readiness."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials
from gateway.core.errors import SignatureRejected
from gateway.core.pushevent import CONTENT_TYPE, read_push_event
from gateway.demo.samples import release_notice, to_bytes
from tests.integration.webhook_receiver import WebhookReceiver, push_federation

PORT = "PORT-NLRTM"  # receives release notices; pushed to by webhook in these tests
NOTICE = "release.notice.v1"

Start = Callable[..., Awaitable[tuple[Gateway, WebhookReceiver, Path]]]


@pytest.fixture
async def start(federation: Path, tmp_path: Path) -> AsyncIterator[Start]:
    """Start a receiver and a gateway whose registry points PORT-NLRTM at it (delivery settings overridable;
    ``store`` overrides the ``[store]`` table, e.g. a Redis backend)."""
    async with AsyncExitStack() as stack:

        async def make(store: dict[str, Any] | None = None, **delivery: Any) -> tuple[Gateway, WebhookReceiver, Path]:
            receiver = await WebhookReceiver(federation).start()
            stack.push_async_callback(receiver.stop)
            fed = push_federation(federation, tmp_path / "fed", member=PORT, url=receiver.url)
            overrides: dict[str, Any] = {
                "gateway.rest_port": 0,
                "gateway.grpc_port": 0,
                "gateway.data_dir": str(tmp_path / "data"),
                "delivery.poll_interval_seconds": 0.05,
                "delivery.backoff_base_seconds": 0.05,
                "delivery.backoff_max_seconds": 0.2,
            }
            overrides |= {f"delivery.{k}": v for k, v in delivery.items()}
            overrides |= {f"store.{k}": v for k, v in (store or {}).items()}
            settings = load_settings(fed / "gateway.toml", overrides=overrides)
            gateway = await stack.enter_async_context(running_gateway(settings))
            return gateway, receiver, fed

        yield make


def client(gateway: Gateway, fed: Path, member: str) -> GatewayClient:
    return GatewayClient(gateway.url, MemberCredentials.from_federation(fed, member), mtls=True)


async def send_notices(gateway: Gateway, fed: Path, count: int = 1) -> list[str]:
    async with client(gateway, fed, "CN-GACC") as gacc:
        ids = []
        for _ in range(count):
            sent = await gacc.submit(NOTICE, [PORT], to_bytes(release_notice()), schema="cgw.v1.ReleaseNotice")
            ids.append(sent.body["message_id"])
        return ids


async def ledger(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    entries = []
    for start in range(0, size, 1000):  # the store's range bound
        entries += await gateway.store.ledger_entries(start, min(size, start + 1000))
    return [json.loads(e.data) for e in entries]


async def wait_until(predicate: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Poll stored state (the worker runs in the background) until ``predicate`` holds."""
    async with asyncio.timeout(within):
        while not await predicate():  # noqa: ASYNC110 - polling the store, not waiting for an in-process event
            await asyncio.sleep(0.02)


def gateway_public_key(fed: Path) -> Any:
    return x509.load_pem_x509_certificate((fed / "gateway" / "signing.crt").read_bytes()).public_key()


async def test_a_push_is_a_signed_cloudevent_carrying_the_original_evidence(start: Start) -> None:
    gateway, receiver, fed = await start()
    [message_id] = await send_notices(gateway, fed)

    [got] = await receiver.wait_for(1)

    assert got.content_type == CONTENT_TYPE
    event = read_push_event(got.body, got.signature, gateway_public_key(fed))
    assert (event.id, event.source, event.type) == (
        f"CN-GACC/{message_id}",
        "urn:cgw:gateway:CN-GACC",
        "org.cgw.message.release.notice.v1",
    )
    stored = await gateway.store.find_message("CN-GACC", message_id)
    assert stored is not None
    assert event.data["envelope"] == stored.jws  # the sender's signed evidence, unchanged
    assert base64.b64decode(event.data["payload"]) == stored.payload
    assert event.data["receipt"] == stored.receipt.decode()
    assert event.attributes["cgwrecipient"] == PORT
    # delivered = acknowledged: nothing left to pull or push, and the ledger says so
    await wait_until(lambda: _has_event(gateway, "delivered"))
    async with client(gateway, fed, PORT) as port:
        assert (await port.pull())["items"] == []
    [delivered] = [e for e in await ledger(gateway) if e["event"] == "delivered"]
    assert delivered | {"at": ""} == delivered | {
        "at": "",
        "recipient": PORT,
        "sender": "CN-GACC",
        "message_id": message_id,
        "endpoint": "webhook",
        "status": "200",
        "attempt": 1,
        "outcome": "delivered",
    }
    # a tampered body does not verify
    forged = got.body.replace(PORT.encode(), b"PORT-NLRTX")
    assert forged != got.body
    with pytest.raises(SignatureRejected):
        read_push_event(forged, got.signature, gateway_public_key(fed))


async def _has_event(gateway: Gateway, kind: str, count: int = 1) -> bool:
    return sum(e["event"] == kind for e in await ledger(gateway)) >= count


async def test_failed_pushes_are_retried_with_identical_bytes_and_every_attempt_is_a_ledger_event(
    start: Start,
) -> None:
    gateway, receiver, fed = await start()
    receiver.statuses = [503, 429]
    await send_notices(gateway, fed)

    got = await receiver.wait_for(3)
    await wait_until(lambda: _has_event(gateway, "delivered"))

    assert len({(r.body, r.signature) for r in got}) == 1  # byte-identical retries, signature included
    attempts = [e for e in await ledger(gateway) if e["event"] in {"delivered", "delivery_failed"}]
    assert [(e["attempt"], e["status"], e["outcome"]) for e in attempts] == [
        (1, "503", "retry"),
        (2, "429", "retry"),
        (3, "200", "delivered"),
    ]


async def test_a_permanent_refusal_is_a_dead_letter_that_the_home_administration_redrives(start: Start) -> None:
    gateway, receiver, fed = await start()
    receiver.statuses = [410]
    [message_id] = await send_notices(gateway, fed)
    await wait_until(lambda: _has_event(gateway, "delivery_failed"))

    async with client(gateway, fed, "CN-GACC") as gacc, client(gateway, fed, "CARRIER-COSCO") as carrier:
        listing = await _admin(gacc, "GET", "/v1/admin/dead-letters")
        [dead] = listing["items"]
        assert (dead["from"], dead["message_id"], dead["recipient"], dead["attempts"], dead["last_status"]) == (
            "CN-GACC",
            message_id,
            PORT,
            1,
            "410",
        )
        with pytest.raises(GatewayClientError) as denied:
            await _admin(carrier, "GET", "/v1/admin/dead-letters")
        assert (denied.value.status, denied.value.code) == (403, "POLICY_DENIED")
        with pytest.raises(GatewayClientError):
            await _admin(carrier, "POST", "/v1/admin/dead-letters/redrive", json={"cursors": [dead["cursor"]]})

        assert await _admin(gacc, "POST", "/v1/admin/dead-letters/redrive", json={"cursors": [dead["cursor"]]}) == {
            "redriven": 1
        }
        await wait_until(lambda: _has_event(gateway, "delivered"))
        assert (await _admin(gacc, "GET", "/v1/admin/dead-letters"))["items"] == []

    assert receiver.received[0] == receiver.received[1]
    events = await ledger(gateway)
    assert [e["outcome"] for e in events if e["event"] in {"delivered", "delivery_failed"}] == ["dead", "delivered"]
    assert any(e["event"] == "admin" and e["action"] == "redrive" and e["caller"] == "CN-GACC" for e in events)
    assert any(e["event"] == "rejected" and e.get("action") == "admin" for e in events)  # the denials are audited


async def _admin(member: GatewayClient, method: str, path: str, **kwargs: Any) -> Any:
    status, body, _ = await member._call(method, path, **kwargs)
    if status >= 400:
        raise GatewayClientError(status, body.get("code", ""), body.get("detail", ""))
    return body


async def test_retryable_failures_become_a_dead_letter_after_max_attempts(start: Start) -> None:
    gateway, receiver, fed = await start(max_attempts=3)
    receiver.default = 500
    await send_notices(gateway, fed)

    await wait_until(lambda: _has_event(gateway, "delivery_failed", 3))
    await wait_until(lambda: _dead_letters(gateway, 1))

    outcomes = [e["outcome"] for e in await ledger(gateway) if e["event"] == "delivery_failed"]
    assert outcomes == ["retry", "retry", "dead"]
    assert len(receiver.received) == 3


async def _dead_letters(gateway: Gateway, count: int) -> bool:
    return await gateway.store.dead_letter_count() == count


async def test_pushes_to_one_recipient_are_bounded_by_the_concurrency_limit(start: Start) -> None:
    gateway, receiver, fed = await start(concurrency_per_recipient=2)
    receiver.delay = 0.2
    await send_notices(gateway, fed, 6)

    await receiver.wait_for(6)
    await wait_until(lambda: _has_event(gateway, "delivered", 6))

    assert receiver.max_concurrent == 2
    assert len({r.body for r in receiver.received}) == 6


async def test_metrics_count_messages_deliveries_and_mirror_stored_state(start: Start) -> None:
    gateway, receiver, fed = await start()
    receiver.statuses = [503]
    await send_notices(gateway, fed)
    await wait_until(lambda: _has_event(gateway, "delivered"))

    async with aiohttp.ClientSession() as session:
        text = await _get_text(session, gateway.url + "/metrics")

    values = _samples(text)
    assert values['cgw_messages_total{adapter="rest",decision="accepted",type="release.notice.v1"}'] == 1
    assert values['cgw_delivery_attempts_total{kind="webhook",outcome="retry"}'] == 1
    assert values['cgw_delivery_attempts_total{kind="webhook",outcome="delivered"}'] == 1
    assert values['cgw_delivery_retries_total{kind="webhook"}'] == 1
    assert values["cgw_ledger_size"] == await gateway.store.ledger_size()
    assert values["cgw_dead_letters"] == 0
    assert values['cgw_submit_latency_seconds_count{adapter="rest",decision="accepted"}'] == 1
    assert f'cgw_inbox_depth{{recipient="{PORT}"}}' not in values  # delivered = acknowledged


async def _get_text(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url, ssl=False) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return await response.text()


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def test_readyz_names_its_components_and_turns_unready_when_draining(start: Start) -> None:
    gateway, _, _ = await start()
    assert gateway.operations is not None
    async with aiohttp.ClientSession() as session:
        async with session.get(gateway.url + "/readyz", ssl=False) as response:
            assert response.status == 200
            names = ("store", "store_writes", "keys", "trust", "crl", "policies", "accepting")
            assert await response.json() == {"ready": True, "components": dict.fromkeys(names, True), "reasons": {}}
        gateway.operations.draining = True
        async with session.get(gateway.url + "/readyz", ssl=False) as response:
            assert response.status == 503
            body = await response.json()
            assert body["components"]["accepting"] is False
            assert body["reasons"] == {"accepting": "draining for shutdown"}
