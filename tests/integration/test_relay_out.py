"""Gateway A's side of the relay (issue 19): the delivery worker relays entries to peer gateway B over real mutual
TLS, verifies B's real signed receipt, and retries, dead-letters and redrives like any push.

B is stood in for by a real aiohttp TLS server on loopback (``PeerB``) that requires A's gateway client certificate
(issued by A's own CA, CN = the gateway id) and answers with receipts signed by B's receipt key (``gateway.core.
receipt``), whose certificate chains to B's own CA: the ``signing_anchors`` of B's directory entry.

Seam for the two-gateway end-to-end test (written once relay-in is merged): ``PeerB`` is the only stand-in here;
replace it with a real gateway B (``running_gateway``) and ``relay_worker`` with ``running_gateway`` for A.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.app.main import SystemClock, load_state
from gateway.app.settings import Delivery, load_settings
from gateway.client.rest import MemberCredentials, sign_message
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.directory import PeerGateway
from gateway.core.receipt import make_receipt, receipt_signer
from gateway.core.signing import chain_x5c
from gateway.delivery.deadletters import DeadLetters
from gateway.delivery.worker import DeliveryWorker
from gateway.exchange.pipeline import evidence_digest
from gateway.exchange.rejections import Rejections
from gateway.exchange.state import GatewayState
from gateway.infra.relay_client import ENVELOPE_HEADER, ClientIdentity, RelayClient
from gateway.infra.sqlite import SqliteStore
from gateway.interfaces.protocols import Disposition, StoredMessage, relay_queue
from tests.unit._testpki import DOCUMENT_SIGNING, Identity, TestCA

NOW = datetime.now(UTC)
B_ID = "NL-DOUANE"
QUEUE = relay_queue(B_ID)
FAST = Delivery(
    max_attempts=3, backoff_base_seconds=0.05, backoff_max_seconds=0.1, timeout_seconds=2.0, poll_interval_seconds=0.05
)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _pem_pair(directory: Path, stem: str, identity: Identity) -> tuple[Path, Path]:
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert.write_bytes(identity.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        identity.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    key.chmod(0o600)
    return cert, key


def _server_cert(ca: TestCA, directory: Path) -> tuple[Path, Path]:
    """B's TLS server certificate for 127.0.0.1, issued by B's CA (its ``tls_anchors``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nl-gateway")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return _pem_pair(directory, "b-tls", Identity("nl-gateway", key, cert, (cert,)))


@dataclass
class PeerB:
    """A real mTLS HTTPS server on loopback answering ``POST /v1/relay/messages`` as the contract says B does."""

    ca: TestCA  # B's administration CA: its tls_anchors and signing_anchors
    signer: Identity  # B's receipt key and certificate
    client_ca: Path  # A's CA: the client certificates B accepts
    answers: list[str] = field(default_factory=list)  # per request, in order: "ok" (default), "503", "403", "forged"
    seen: list[dict[str, object]] = field(default_factory=list)
    accepted: dict[tuple[str, str], str] = field(default_factory=dict)  # (sender, id) -> B's receipt
    forger: Identity | None = None  # a receipt key B's anchors never issued
    url: str = ""

    def receipt(self, jws: str, payload: bytes, sender: str, message_id: str, signer: Identity) -> str:
        key = signer.key
        return make_receipt(
            message_id=message_id,
            sender=sender,
            recipients=(B_ID,),
            message_type="manifest.cargo.v1",
            evidence_sha256=evidence_digest(jws, payload),
            leaf_index=len(self.accepted),
            received_at=datetime.now(UTC),
            gateway=B_ID,
            policy_digest="0" * 64,
            signer=receipt_signer(key, chain_x5c(key, signer.chain)),  # type: ignore[arg-type]
        ).decode("ascii")

    async def handle(self, request: web.Request) -> web.Response:
        transport = request.transport
        peer_cert = transport.get_extra_info("peercert") if transport is not None else None
        subject = dict(x[0] for x in peer_cert["subject"]) if peer_cert else {}
        jws = request.headers.get(ENVELOPE_HEADER, "")
        body = await request.read()
        self.seen.append({"cn": subject.get("commonName"), "jws": jws, "body": body, "type": request.content_type})
        answer = self.answers.pop(0) if self.answers else "ok"
        if answer == "503":
            return web.json_response({"code": "UNAVAILABLE", "detail": "busy"}, status=503)
        if answer == "403":
            return web.json_response({"code": "FORBIDDEN", "detail": "relay denied"}, status=403)
        header = json.loads(_b64(jws.split(".")[1]))
        key = (header["from"], header["id"])
        if answer == "forged":
            assert self.forger is not None
            forged = self.receipt(jws, body, *key, self.forger)
            return web.json_response({"receipt": forged, "duplicate": False}, status=201)
        if key in self.accepted:
            return web.json_response({"receipt": self.accepted[key], "duplicate": True}, status=200)
        self.accepted[key] = self.receipt(jws, body, *key, self.signer)
        return web.json_response({"receipt": self.accepted[key], "duplicate": False}, status=201)

    def peer(self) -> PeerGateway:
        return PeerGateway(
            id=B_ID,
            administration="Douane",
            country="NL",
            rest_url=self.url,
            grpc_target="",
            tls_anchors=(_der(self.ca.cert),),
            signing_anchors=(_der(self.ca.cert),),
            origin="nl.example/log",
            checkpoint_keys=(),
            witness_key="",
            members=frozenset({B_ID}),
        )


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


@dataclass
class Setup:
    store: SqliteStore
    state: GatewayState
    b: PeerB
    client: ClientIdentity
    carrier: MemberCredentials
    clock: SystemClock = field(default_factory=SystemClock)

    def worker(self, relayer: RelayClient, config: Delivery = FAST) -> DeliveryWorker:
        peer = self.b.peer()
        return DeliveryWorker(
            store=self.store,
            state=self.state,
            clock=self.clock,
            deliverers=[],
            config=config,
            relayer=relayer,
            peers=lambda: [peer],
        )

    def relayer(self) -> RelayClient:
        return RelayClient(identity=self.client, timeout_seconds=2.0, clock=self.clock.now)

    async def accept(self) -> StoredMessage:
        payload = b'{"vessel":{"imo":"IMO9321483"}}'
        jws = sign_message(self.carrier, "manifest.cargo.v1", [B_ID], payload, schema="cgw.v1.CargoManifest")
        header = json.loads(_b64(jws.split(".")[1]))
        message = StoredMessage(
            sender=header["from"],
            message_id=header["id"],
            type="manifest.cargo.v1",
            recipients=(B_ID,),
            jws=jws,
            payload=payload,
            digest=evidence_digest(jws, payload),
            received_at=datetime.now(UTC),
        )
        event = AuditEvent(EventKind.ACCEPTED, message.received_at, {"id": message.message_id})
        return await self.store.accept(message, event, lambda i, at: b"a-receipt", relays={B_ID: (B_ID,)})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def setup(federation: Path, tmp_path: Path) -> AsyncIterator[Setup]:
    a_ca, b_ca = TestCA("CN-GACC administration CA"), TestCA("NL-DOUANE administration CA")
    soon = NOW + timedelta(days=30)
    a_client = a_ca.issue(
        "CN-GACC", eku=ExtendedKeyUsageOID.CLIENT_AUTH, not_before=NOW - timedelta(days=1), not_after=soon
    )
    b_signer = b_ca.issue(B_ID, eku=DOCUMENT_SIGNING, not_before=NOW - timedelta(days=1), not_after=soon)
    forger = TestCA("a CA in no directory").issue(B_ID, not_before=NOW - timedelta(days=1), not_after=soon)
    (tmp_path / "pki").mkdir()
    a_ca_file = tmp_path / "pki" / "a-ca.crt"
    a_ca_file.write_bytes(a_ca.cert.public_bytes(serialization.Encoding.PEM))
    cert, key = _pem_pair(tmp_path / "pki", "relay-client", a_client)
    server_cert, server_key = _server_cert(b_ca, tmp_path / "pki")
    b = PeerB(ca=b_ca, signer=b_signer, client_ca=a_ca_file, forger=forger)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(a_ca_file))
    tls.verify_mode = ssl.CERT_REQUIRED  # B refuses a relay without a gateway client certificate
    tls.load_cert_chain(server_cert, server_key)
    app = web.Application()
    app.router.add_post("/v1/relay/messages", b.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    b.url = f"https://127.0.0.1:{port}"
    settings = load_settings(federation / "gateway.toml", overrides={"gateway.data_dir": str(tmp_path / "data")})
    store = await SqliteStore.open(tmp_path / "a.db")
    try:
        yield Setup(
            store,
            load_state(settings),
            b,
            ClientIdentity(cert, key),
            MemberCredentials.from_federation(federation, "CARRIER-COSCO"),
        )
    finally:
        await store.close()
        await runner.cleanup()


async def _until(check: Callable[[], object], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():  # type: ignore[misc]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def _leaves(store: SqliteStore, kind: str) -> list[dict[str, object]]:
    entries = await store.ledger_entries(0, await store.ledger_size())
    return [e for e in (json.loads(x.data) for x in entries) if e["event"] == kind]


async def test_a_relay_goes_over_mtls_and_keeps_bs_verified_receipt(setup: Setup) -> None:
    message = await setup.accept()
    relayer = setup.relayer()
    worker = setup.worker(relayer)
    worker.start()
    try:
        await _until(lambda: _delivered(setup.store, message))
    finally:
        await worker.stop(1.0)
        await relayer.close()

    [request] = setup.b.seen
    assert request["cn"] == "CN-GACC"  # A presented its gateway client certificate
    assert (request["jws"], request["body"], request["type"]) == (message.jws, message.payload, "application/json")
    [state] = await setup.store.recipient_states(message.sender, message.message_id)
    assert (state.recipient, state.peer, state.disposition) == (B_ID, B_ID, Disposition.DELIVERED)
    assert state.delivery is not None
    receipt = setup.b.accepted[(message.sender, message.message_id)]
    assert (state.delivery.receipt, state.delivery.attempts, state.delivery.last_status) == (receipt.encode(), 1, "201")
    [leaf] = await _leaves(setup.store, "relay_delivered")
    assert (leaf["peer"], leaf["receipt_sha256"], leaf["message_id"]) == (
        B_ID,
        hashlib.sha256(receipt.encode()).hexdigest(),
        message.message_id,
    )


async def _delivered(store: SqliteStore, message: StoredMessage) -> bool:
    states = await store.recipient_states(message.sender, message.message_id)
    return bool(states) and states[0].disposition is Disposition.DELIVERED


async def _state(store: SqliteStore, message: StoredMessage) -> Disposition:
    [state] = await store.recipient_states(message.sender, message.message_id)
    return state.disposition


async def test_a_receipt_that_does_not_verify_is_not_kept_and_counts_as_a_failed_attempt(setup: Setup) -> None:
    message = await setup.accept()
    setup.b.answers = ["forged", "503"]
    relayer = setup.relayer()
    worker = setup.worker(relayer)
    try:
        assert await worker.dispatch() == 1
        await _until(lambda: _attempts(setup.store, message, 1))
        [state] = await setup.store.recipient_states(message.sender, message.message_id)
        assert state.delivery is not None
        assert (state.disposition, state.delivery.last_status, state.delivery.receipt) == (
            Disposition.RETRYING,
            "receipt-invalid",
            b"",
        )
        worker.start()  # a 503, then B's real receipt
        await _until(lambda: _delivered(setup.store, message))
    finally:
        await worker.stop(1.0)
        await relayer.close()
    [state] = await setup.store.recipient_states(message.sender, message.message_id)
    assert state.delivery is not None and state.delivery.attempts == 3
    assert state.delivery.receipt == setup.b.accepted[(message.sender, message.message_id)].encode()
    failed = await _leaves(setup.store, "delivery_failed")
    assert [(f["status"], f["outcome"], f["peer"]) for f in failed] == [
        ("receipt-invalid", "retry", B_ID),
        ("503", "retry", B_ID),
    ]


async def _attempts(store: SqliteStore, message: StoredMessage, n: int) -> bool:
    states = await store.recipient_states(message.sender, message.message_id)
    return bool(states) and states[0].delivery is not None and states[0].delivery.attempts >= n


async def test_a_refusal_is_a_dead_letter_at_once_and_a_redrive_relays_it_again(setup: Setup) -> None:
    message = await setup.accept()
    setup.b.answers = ["403"]
    relayer = setup.relayer()
    worker = setup.worker(relayer)
    dead_letters = DeadLetters(
        store=setup.store,
        state=setup.state,
        clock=setup.clock,
        rejections=Rejections(store=setup.store, clock=setup.clock),
        wake=worker.wake,
    )
    worker.start()
    try:
        await _until(lambda: _is(setup.store, message, Disposition.DEAD))
        [letter] = await setup.store.dead_letters(None, 0, 10)
        assert (letter.recipient, letter.peer, letter.attempts, letter.last_status) == (QUEUE, B_ID, 1, "403")
        assert letter.code == "FORBIDDEN"  # kept with the state: status and the dead-letter listing show it
        [failed] = await _leaves(setup.store, "delivery_failed")
        assert (failed["outcome"], failed["code"], failed["peer"]) == ("dead", "FORBIDDEN", B_ID)
        # the operator's redrive (REST admin endpoint and CLI `dead-letters` call this service)
        assert await setup.store.redrive([letter.cursor], AuditEvent(EventKind.ADMIN, NOW, {"action": "redrive"})) == 1
        worker.wake()
        await _until(lambda: _delivered(setup.store, message))
    finally:
        await worker.stop(1.0)
        await relayer.close()
    assert dead_letters is not None and len(setup.b.seen) == 2


async def _is(store: SqliteStore, message: StoredMessage, disposition: Disposition) -> bool:
    states = await store.recipient_states(message.sender, message.message_id)
    return bool(states) and states[0].disposition is disposition


async def test_retries_give_up_after_max_attempts_when_b_is_unreachable(setup: Setup, tmp_path: Path) -> None:
    message = await setup.accept()
    b = setup.b
    b.url = f"https://127.0.0.1:{_free_port()}"  # nothing listens there: connection refused
    relayer = setup.relayer()
    worker = setup.worker(relayer)
    worker.start()
    try:
        await _until(lambda: _is(setup.store, message, Disposition.DEAD))
    finally:
        await worker.stop(1.0)
        await relayer.close()
    [letter] = await setup.store.dead_letters(QUEUE, 0, 10)
    assert (letter.attempts, letter.last_status) == (FAST.max_attempts, "connect-error")


async def test_no_duplicate_relay_after_a_restart(setup: Setup) -> None:
    """A relay whose outcome was recorded is never sent again by a new worker on the reopened store; one whose
    outcome was lost (the process died after B answered) is sent again, and B's duplicate answer (200, the
    ORIGINAL receipt) completes it with the same receipt."""
    first, second = await setup.accept(), await setup.accept()
    relayer = setup.relayer()
    worker = setup.worker(relayer)
    worker.start()
    try:
        await _until(lambda: _delivered(setup.store, first))
        await _until(lambda: _delivered(setup.store, second))
    finally:
        await worker.stop(1.0)
        await relayer.close()
    sent = len(setup.b.seen)
    path = setup.store.path
    await setup.store.close()
    setup.store = await SqliteStore.open(path)
    # the "lost outcome" case: B accepted a third message, A died before recording it
    third = await setup.accept()
    answer = setup.b.receipt(third.jws, third.payload, third.sender, third.message_id, setup.b.signer)
    setup.b.accepted[(third.sender, third.message_id)] = answer
    relayer = setup.relayer()
    worker = setup.worker(relayer)
    worker.start()
    try:
        await _until(lambda: _delivered(setup.store, third))
        await asyncio.sleep(0.3)  # several polls: nothing delivered is relayed again
    finally:
        await worker.stop(1.0)
        await relayer.close()
    assert len(setup.b.seen) == sent + 1
    [state] = await setup.store.recipient_states(third.sender, third.message_id)
    assert state.delivery is not None and state.delivery.receipt == answer.encode()
    assert state.delivery.last_status == "200"
