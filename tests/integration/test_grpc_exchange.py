"""The gRPC adapter over real TLS sockets: submit, refusals with ErrorInfo codes, the resumable Inbox stream,
deadlines, bearer tokens in metadata, mTLS required, limits, health, reflection, the Audit service and the
structlog context bound by the interceptor."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import grpc
import pytest
import structlog
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway.app.main import Gateway
from gateway.client.grpc_client import StreamedItem
from gateway.client.rest import GatewayClientError, MemberCredentials, sign_message
from gateway.core import merkle
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.wire.cgw.v1 import exchange_pb2, exchange_pb2_grpc
from tests.integration.conftest import ClientFactory
from tests.integration.grpc_fixtures import GrpcClientFactory, grpc_clients

__all__ = ["grpc_clients"]  # the fixture, re-exported for pytest

MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"


async def ledger_events(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]


def _channel(
    gateway: Gateway, federation: Path, member: str | None, options: list[tuple[str, int]] | None = None
) -> grpc.aio.Channel:
    ca = (federation / "ca" / "root-ca.crt").read_bytes()
    if member is None:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    else:
        base = federation / "members" / member
        credentials = grpc.ssl_channel_credentials(
            ca, (base / "tls-client.key").read_bytes(), (base / "tls-client.crt").read_bytes()
        )
    return grpc.aio.secure_channel(gateway.grpc_target or "", credentials, options=options)


async def _take(stream: Any, count: int) -> list[StreamedItem]:
    got: list[StreamedItem] = []
    async for item in stream:
        got.append(item)
        if len(got) == count:
            break
    await stream.aclose()
    return got


async def test_submit_is_receipted_and_replay_returns_the_original(
    gateway: Gateway, grpc_clients: GrpcClientFactory
) -> None:
    carrier = grpc_clients("CARRIER-COSCO")
    payload = to_bytes(cargo_manifest())
    jws = carrier.sign(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
    sent = await carrier.submit_signed(jws, payload)
    assert not sent.duplicate
    assert sent.receipt["status"] == "accepted"
    assert sent.receipt["evidence_sha256"] == sent.body["evidence_sha256"]
    stored = await gateway.store.find_message("CARRIER-COSCO", sent.body["message_id"])
    assert stored is not None
    assert stored.payload == payload
    assert stored.jws == jws
    accepted = (await ledger_events(gateway))[sent.receipt["ledger_index"]]
    assert accepted["event"] == "accepted"
    assert accepted["adapter"] == "grpc"
    again = await carrier.submit_signed(jws, payload)
    assert again.duplicate
    assert again.body["receipt"] == sent.body["receipt"]
    status = await carrier.status("CARRIER-COSCO", sent.body["message_id"])
    assert status["receipt"] == sent.body["receipt"]


async def test_refusals_carry_the_stable_code_in_error_info(gateway: Gateway, federation: Path) -> None:
    payload = to_bytes(cargo_manifest(container="MSKU9070324"))  # wrong ISO 6346 check digit
    carrier = MemberCredentials.from_federation(federation, "CARRIER-COSCO")
    jws = sign_message(carrier, MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
    async with _channel(gateway, federation, "CARRIER-COSCO") as channel:
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Submit(exchange_pb2.SubmitRequest(envelope=jws, payload=payload), timeout=10)
    error = raised.value
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    details = dict(error.trailing_metadata() or ())["grpc-status-details-bin"]
    assert isinstance(details, bytes)
    status = status_pb2.Status.FromString(details)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert info.reason == "IDENTIFIER_INVALID"
    assert info.domain == "customs-gateway.dev"
    assert info.metadata["field"] == "payload.consignments[0].goodsItems[0].containerNumbers[0]"  # as sent
    assert (await ledger_events(gateway))[-1]["code"] == "IDENTIFIER_INVALID"


async def test_conflict_and_policy_refusals(grpc_clients: GrpcClientFactory) -> None:
    carrier = grpc_clients("CARRIER-COSCO")
    payload = to_bytes(cargo_manifest())
    first = await carrier.submit(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
    other = to_bytes(cargo_manifest("COSU-MAN-0009"))
    with pytest.raises(GatewayClientError) as raised:
        await carrier.submit(MANIFEST, ["CN-GACC"], other, schema=SCHEMA, message_id=first.body["message_id"])
    assert raised.value.code == "DUPLICATE_CONFLICT"
    assert raised.value.status == grpc.StatusCode.ALREADY_EXISTS.value[0]
    with pytest.raises(GatewayClientError) as denied:
        await carrier.status("NL-DOUANE", "no-such-message")
    assert denied.value.code == "NOT_FOUND"


async def test_inbox_stream_resumes_from_the_last_acked_cursor(grpc_clients: GrpcClientFactory) -> None:
    carrier, gacc = grpc_clients("CARRIER-COSCO"), grpc_clients("CN-GACC")
    ids = []
    for n in range(5):
        sent = await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest(f"COSU-MAN-01{n}")), schema=SCHEMA)
        ids.append(sent.body["message_id"])
    first = await _take(gacc.inbox(deadline_seconds=10), 3)  # the consumer drops after three items
    assert [i.message_id for i in first] == ids[:3]
    assert await gacc.ack([first[0].cursor, first[1].cursor]) == 2  # the third was received, never acked
    resumed = [i async for i in gacc.inbox(after=first[1].cursor, deadline_seconds=10)]
    assert [i.message_id for i in resumed] == ids[2:]  # nothing lost, nothing acked repeated
    assert await gacc.ack([i.cursor for i in resumed]) == 3
    assert [i async for i in gacc.inbox(deadline_seconds=10)] == []


async def test_following_stream_delivers_new_messages_and_honours_its_deadline(
    grpc_clients: GrpcClientFactory,
) -> None:
    carrier, gacc = grpc_clients("CARRIER-COSCO"), grpc_clients("CN-GACC")
    stream = gacc.inbox(follow=True, deadline_seconds=1.5)
    first = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.2)
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    item = await asyncio.wait_for(first, 5)
    assert item.message_id == sent.body["message_id"]
    with pytest.raises(GatewayClientError) as raised:
        await asyncio.wait_for(anext(stream), 5)
    assert raised.value.code == "DEADLINE_EXCEEDED"


async def test_bearer_token_in_metadata(clients: ClientFactory, grpc_clients: GrpcClientFactory) -> None:
    token = await clients("PORT-NLRTM", mtls=False).fetch_token()
    port = grpc_clients("PORT-NLRTM")
    port.use_token(token)
    assert [i async for i in port.inbox(deadline_seconds=10)] == []
    port.use_token(token[:-4] + "AAAA")
    with pytest.raises(GatewayClientError) as raised:
        await port.ack([1])
    assert raised.value.status == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert raised.value.code in {"TOKEN_INVALID", "SIGNATURE_INVALID"}
    assert raised.value.field is None  # authentication failures never say which check failed


async def test_client_certificate_is_required(gateway: Gateway, federation: Path) -> None:
    async with _channel(gateway, federation, None) as channel:
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.GetStatus(exchange_pb2.GetStatusRequest(sender="A", message_id="b"), timeout=5)
    assert raised.value.code() is grpc.StatusCode.UNAVAILABLE


async def test_oversized_message_is_refused(gateway: Gateway, federation: Path) -> None:
    too_big = b"x" * (gateway.settings.limits.max_body_bytes + 128 * 1024)
    async with _channel(gateway, federation, "CARRIER-COSCO") as channel:
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.Submit(exchange_pb2.SubmitRequest(envelope="x", payload=too_big), timeout=10)
        assert raised.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        metadata = (("authorization", "Bearer " + "a" * gateway.settings.limits.max_header_bytes),)
        with pytest.raises(grpc.aio.AioRpcError) as headers:
            await stub.Ack(exchange_pb2.AckRequest(cursors=[1]), timeout=10, metadata=metadata)
        assert headers.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_health_and_reflection(gateway: Gateway, federation: Path) -> None:
    async with _channel(gateway, federation, "CN-GACC") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "cgw.v1.Exchange", "cgw.v1.Audit"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        call = reflection.ServerReflectionInfo(timeout=5)
        await call.write(reflection_pb2.ServerReflectionRequest(list_services=""))
        reply = await call.read()
        await call.done_writing()
        names = {s.name for s in reply.list_services_response.service}
    assert {"cgw.v1.Exchange", "cgw.v1.Audit", "grpc.health.v1.Health"} <= names


async def test_audit_service_for_auditors_only(gateway: Gateway, grpc_clients: GrpcClientFactory) -> None:
    carrier, auditor = grpc_clients("CARRIER-COSCO"), grpc_clients("AUDIT-GACC")
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    index = sent.receipt["ledger_index"]
    await gateway.ledger.checkpoint()
    note, origin, key = await auditor.checkpoint()
    assert note.startswith(origin.encode())
    assert key == gateway.ledger.verifier_key
    size = int(note.split(b"\n")[1])
    entries = await auditor.entries(0, size)
    assert [i for i, _ in entries] == list(range(size))
    leaf_hash, proof = await auditor.inclusion(index, size)
    assert leaf_hash == merkle.leaf_hash(entries[index][1])
    merkle.verify_inclusion(
        leaf_hash, index, size, proof, merkle.root_from_leaf_hashes(merkle.leaf_hash(d) for _, d in entries)
    )
    assert isinstance(await auditor.consistency(1, size), list)
    with pytest.raises(GatewayClientError) as denied:
        await carrier.checkpoint()
    assert denied.value.code == "POLICY_DENIED"
    with pytest.raises(GatewayClientError) as too_many:
        await auditor.entries(0, gateway.settings.limits.max_ledger_range + 1)
    assert too_many.value.code == "LIMIT_EXCEEDED"


async def test_interceptor_binds_the_log_context(grpc_clients: GrpcClientFactory) -> None:
    carrier = grpc_clients("CARRIER-COSCO")
    with structlog.testing.capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    exchange = [entry for entry in logs if entry["event"] == "exchange"]
    assert len(exchange) == 1
    assert exchange[0]["rpc"] == "/cgw.v1.Exchange/Submit"
    assert exchange[0]["adapter"] == "grpc"
    assert exchange[0]["decision"] == "accepted"


async def test_cli_send_over_grpc(gateway: Gateway, federation: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(to_bytes(cargo_manifest()))
    common = ["--federation", str(federation), "--type", MANIFEST, "--transport", "grpc"]
    outputs = []
    # accepted; refused by the policy (a foreign administration may not file a manifest with a port)
    for member, to in (("CARRIER-COSCO", "CN-GACC"), ("NL-DOUANE", "PORT-NLRTM")):
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.app.cli",
            "send",
            "--url",
            gateway.grpc_target or "",
            "--as",
            member,
            "--to",
            to,
            *common,
            str(manifest),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        outputs.append((process.returncode, out, err))
    (rc, out, err), (rc_refused, refused, _) = outputs
    assert rc == 0, err
    body = json.loads(out)
    assert body["receipt_claims"]["status"] == "accepted"
    stored = await gateway.store.find_message("CARRIER-COSCO", body["message_id"])
    assert stored is not None
    assert rc_refused == 1
    assert json.loads(refused)["code"] == "POLICY_DENIED"


async def test_slow_consumer_gets_backpressure(
    gateway: Gateway, federation: Path, grpc_clients: GrpcClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    carrier = grpc_clients("CARRIER-COSCO")
    total = 240
    for start in range(0, total, 40):
        await asyncio.gather(
            *(
                carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest(f"COSU-BP-{n:04d}")), schema=SCHEMA)
                for n in range(start, start + 40)
            )
        )
    read_from_store: list[int] = []
    real_pull = gateway.store.pull

    async def counting_pull(recipient: str, after: int, limit: int) -> Any:
        items = await real_pull(recipient, after, limit)
        read_from_store.append(len(items))
        return items

    monkeypatch.setattr(gateway.store, "pull", counting_pull)  # a spy on the real store, not a fake
    # A consumer with a small, fixed receive window (no BDP growth): what it has not read, it does not accept.
    window = [("grpc.http2.lookahead_bytes", 16 * 1024), ("grpc.http2.bdp_probe", 0)]
    async with _channel(gateway, federation, "CN-GACC", window) as channel:
        call = exchange_pb2_grpc.ExchangeStub(channel).Inbox(exchange_pb2.InboxRequest(after=0), timeout=30)
        first = await call.read()
        await asyncio.sleep(1.0)  # the consumer stalls: HTTP/2 flow control must stop the server
        stalled_at = sum(read_from_store)
        assert stalled_at <= gateway.settings.limits.max_pull_items < total  # one page held, no read-ahead
        cursors = [first.cursor]
        while (item := await call.read()) is not grpc.aio.EOF:  # it resumes and gets everything, in order
            cursors.append(item.cursor)
    assert len(cursors) == total
    assert cursors == sorted(cursors)


async def test_cert_bound_token_only_with_its_certificate(
    clients: ClientFactory, grpc_clients: GrpcClientFactory
) -> None:
    bound = await clients("CN-GACC").fetch_token()  # over mTLS: bound to CN-GACC's TLS certificate (RFC 8705)
    own, other = grpc_clients("CN-GACC"), grpc_clients("NL-DOUANE")
    own.use_token(bound)
    assert [i async for i in own.inbox(deadline_seconds=10)] == []
    other.use_token(bound)  # a stolen token on another member's connection
    with pytest.raises(GatewayClientError) as raised:
        await other.ack([1])
    assert raised.value.status == grpc.StatusCode.UNAUTHENTICATED.value[0]
