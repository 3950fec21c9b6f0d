"""B's side of gateway-to-gateway relay (issue 19) over real sockets and real certificates: NL-DOUANE's gateway runs
on loopback; the test plays CN-GACC's gateway with a real gateway TLS client certificate issued by CN-GACC's CA
and relays envelopes signed by members CN-GACC's CA certified (REST ``POST /v1/relay/messages`` and gRPC
``cgw.v1.Exchange/Relay``). Every refusal is checked for its code and its ledger record."""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.app.main import Gateway, running_gateway
from gateway.client.grpc_client import client_error
from gateway.client.rest import MemberCredentials, ReceiptVerifier, sign_message
from gateway.core.model import Caller, Tlp
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.exchange.access import Credentials
from gateway.infra.devpki import Issuer, _root, issue_leaf, pem_key
from gateway.infra.files import load_certificates, load_private_key
from gateway.wire.cgw.v1 import exchange_pb2, exchange_pb2_grpc
from tests.integration.federationpair import Pair, build_pair, ledger

RELAY_PATH = "/v1/relay/messages"
MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
GATEWAY_URI = "urn:cgw:gateway:"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    """CN-GACC serves CARRIER-COSCO and itself, NL-DOUANE serves itself and PORT-NLRTM (the signed directory)."""
    members = {"CN-GACC": "CN-GACC,CARRIER-COSCO", "NL-DOUANE": "NL-DOUANE,PORT-NLRTM"}
    return build_pair(tmp_path_factory.mktemp("relay-in"), members)


@dataclass(frozen=True)
class ClientCert:
    cert: Path
    key: Path


def _ca(fed: Path) -> Issuer:
    """A dev administration's CA, as the federation helpers issue with it."""
    root = load_certificates(fed / "ca" / "root-ca.crt")[0]
    key = load_private_key(fed / "ca" / "root-ca.key")
    return Issuer(root.subject, key)  # type: ignore[arg-type]


def _issue(issuer: Issuer, out: Path, common_name: str, san: list[x509.GeneralName]) -> ClientCert:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    key, cert = issue_leaf(issuer, subject, san, ExtendedKeyUsageOID.CLIENT_AUTH, datetime.now(UTC))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{common_name}.key").write_bytes(pem_key(key))
    (out / f"{common_name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return ClientCert(out / f"{common_name}.crt", out / f"{common_name}.key")


def gateway_cert(pair: Pair, out: Path, gateway_id: str = "CN-GACC") -> ClientCert:
    """CN-GACC's gateway TLS client certificate: issued by its own CA, clientAuth, CN = the gateway id."""
    return _issue(_ca(pair.fed_a), out, gateway_id, [x509.UniformResourceIdentifier(GATEWAY_URI + gateway_id)])


@pytest.fixture(scope="module")
def certs(pair: Pair, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ClientCert]:
    out = tmp_path_factory.mktemp("relay-certs")
    stranger_ca, _ = _root(datetime.now(UTC), "a CA no directory lists")
    return {
        "gateway": gateway_cert(pair, out),
        "rogue": gateway_cert(pair, out, "GW-ROGUE"),  # CN-GACC's CA, but not a peer id
        "member": ClientCert(
            pair.fed_a / "members" / "CARRIER-COSCO" / "tls-client.crt",
            pair.fed_a / "members" / "CARRIER-COSCO" / "tls-client.key",
        ),
        "home-member": ClientCert(  # a member certificate of NL-DOUANE's own federation
            pair.fed_b / "members" / "CARRIER-COSCO" / "tls-client.crt",
            pair.fed_b / "members" / "CARRIER-COSCO" / "tls-client.key",
        ),
        "stranger": _issue(  # the right name from a CA no directory lists
            stranger_ca, out / "stranger", "CN-GACC", [x509.UniformResourceIdentifier(GATEWAY_URI + "CN-GACC")]
        ),
    }


@pytest.fixture
async def nl(pair: Pair, tmp_path: Path) -> AsyncIterator[Gateway]:
    async with running_gateway(pair.settings(pair.fed_b, tmp_path / "nl")) as gateway:
        yield gateway


def _tls(pair: Pair, client: ClientCert) -> ssl.SSLContext:
    """The caller's side: NL-DOUANE's server certificate chains to its CA; the client presents ``client``."""
    context = ssl.create_default_context(cafile=str(pair.fed_b / "ca" / "root-ca.crt"))
    context.load_cert_chain(client.cert, client.key)
    return context


def envelope(fed: Path, sender: str, to: list[str], payload: bytes, **kwargs: Any) -> str:
    return sign_message(MemberCredentials.from_federation(fed, sender), MANIFEST, to, payload, schema=SCHEMA, **kwargs)


async def post(
    url: str, tls: ssl.SSLContext, jws: str, payload: bytes, path: str = RELAY_PATH
) -> tuple[int, dict[str, Any]]:
    headers = {"Cgw-Envelope": jws, "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + path, data=payload, headers=headers, ssl=tls) as response,
    ):
        return response.status, await response.json(content_type=None)


def _manifest() -> bytes:
    return to_bytes(cargo_manifest(f"M-{uuid.uuid4().hex[:8]}"))


async def test_a_peer_gateway_relays_and_gets_this_gateways_receipt(
    pair: Pair, certs: dict[str, ClientCert], nl: Gateway
) -> None:
    tls = _tls(pair, certs["gateway"])
    payload = _manifest()
    jws = envelope(pair.fed_a, "CARRIER-COSCO", ["NL-DOUANE"], payload)
    status, body = await post(nl.url, tls, jws, payload)
    assert status == 201, body
    assert body["from"] == "CARRIER-COSCO" and body["to"] == ["NL-DOUANE"] and body["duplicate"] is False
    receipt = ReceiptVerifier(pair.fed_b / "ca" / "root-ca.crt").read(body["receipt"])  # NL-DOUANE signed it
    assert receipt["gateway"] == "NL-DOUANE" and receipt["message_id"] == body["message_id"]
    assert receipt["evidence_sha256"] == body["evidence_sha256"]

    again_status, again = await post(nl.url, tls, jws, payload)  # the same bytes: the original receipt
    assert again_status == 200 and again["duplicate"] is True and again["receipt"] == body["receipt"]
    other = _manifest()  # the same (sender, id), other bytes
    conflicting = envelope(pair.fed_a, "CARRIER-COSCO", ["NL-DOUANE"], other, message_id=body["message_id"])
    status, problem = await post(nl.url, tls, conflicting, other)
    assert (status, problem["code"]) == (409, "DUPLICATE_CONFLICT")

    events = await ledger(nl)
    accepted = [e for e in events if e.get("event") == "accepted" and e.get("message_id") == body["message_id"]]
    assert len(accepted) == 1
    assert accepted[0]["relayed_by"] == "CN-GACC" and accepted[0]["caller"] == "CN-GACC"
    assert accepted[0]["adapter"] == "relay-rest" and accepted[0]["sender"] == "CARRIER-COSCO"
    assert accepted[0]["policy_ids"][0] == "peers-relay-their-members-messages"
    assert "carriers-file-manifests-with-customs" in accepted[0]["policy_ids"]
    rejected = [e for e in events if e.get("event") == "rejected" and e.get("code") == "DUPLICATE_CONFLICT"]
    assert rejected and rejected[0]["relayed_by"] == "CN-GACC" and rejected[0]["action"] == "relay"

    # the recipient served here takes delivery as usual, the sender's evidence unchanged
    items = await nl.pipeline.pull(await _officer(nl, pair), after=0, limit=10, wait=0)
    assert [i.message.jws for i in items if i.message.message_id == body["message_id"]] == [jws]


async def _officer(gateway: Gateway, pair: Pair) -> Caller:
    """NL-DOUANE's officer, by its own mTLS certificate at NL-DOUANE."""
    der = load_certificates(pair.fed_b / "members" / "NL-DOUANE" / "tls-client.crt")[0]
    return await gateway.pipeline.authenticate(Credentials(client_cert=der.public_bytes(serialization.Encoding.DER)))


@pytest.mark.parametrize(
    ("sender_fed", "sender", "to", "status", "code", "field"),
    [
        ("a", "US-CBP", ["NL-DOUANE"], 403, "RELAY_REFUSED", "from"),  # certified by CN's CA, not its member
        ("a", "CARRIER-COSCO", ["CN-GACC"], 403, "RELAY_REFUSED", "to"),  # served by CN-GACC, none here
        ("a", "CARRIER-COSCO", ["PORT-NLRTM"], 403, "POLICY_DENIED", None),  # Cedar: carriers file with customs
        ("b", "CARRIER-COSCO", ["NL-DOUANE"], 401, "CERT_UNTRUSTED", None),  # signer chains to the wrong peer
    ],
    ids=["sender-not-the-peers-member", "recipient-not-served-here", "cedar-denies", "signer-of-another-ca"],
)
async def test_refused_relays_are_recorded_naming_the_peer(
    pair: Pair,
    certs: dict[str, ClientCert],
    nl: Gateway,
    sender_fed: str,
    sender: str,
    to: list[str],
    status: int,
    code: str,
    field: str | None,
) -> None:
    payload = _manifest()
    jws = envelope(pair.fed_a if sender_fed == "a" else pair.fed_b, sender, to, payload)
    answered, problem = await post(nl.url, _tls(pair, certs["gateway"]), jws, payload)
    assert (answered, problem["code"]) == (status, code), problem
    if field is not None:
        assert problem["field"] == field
    leaves = [e for e in await ledger(nl) if e.get("event") == "rejected" and e.get("code") == code]
    assert len(leaves) == 1, leaves
    assert leaves[0]["caller"] == "CN-GACC" and leaves[0]["relayed_by"] == "CN-GACC"
    assert leaves[0]["adapter"] == "relay-rest" and leaves[0]["action"] == "relay"
    assert not [e for e in await ledger(nl) if e.get("event") == "accepted"]


@pytest.mark.parametrize(
    ("client", "status", "code"),
    [
        ("rogue", 403, "PEER_MISMATCH"),  # CN-GACC's CA, CN not a peer id
        ("member", 403, "PEER_MISMATCH"),  # a member's TLS certificate of CN-GACC's CA
        ("home-member", 401, "PEER_UNTRUSTED"),  # this federation's own member: not a peer gateway
    ],
)
async def test_a_relay_needs_the_peer_gateways_certificate(
    pair: Pair, certs: dict[str, ClientCert], nl: Gateway, client: str, status: int, code: str
) -> None:
    payload = _manifest()
    jws = envelope(pair.fed_a, "CARRIER-COSCO", ["NL-DOUANE"], payload)
    answered, problem = await post(nl.url, _tls(pair, certs[client]), jws, payload)
    assert (answered, problem["code"]) == (status, code)
    await nl.pipeline.rejections.flush()  # refusals before authentication are counted into the summary leaf
    summaries = [e for e in await ledger(nl) if e.get("event") == "rejected_summary"]
    assert code in json.dumps(summaries)
    assert not [e for e in await ledger(nl) if e.get("event") == "accepted"]


async def test_an_unknown_ca_is_refused_at_the_handshake(pair: Pair, certs: dict[str, ClientCert], nl: Gateway) -> None:
    payload = _manifest()
    jws = envelope(pair.fed_a, "CARRIER-COSCO", ["NL-DOUANE"], payload)
    with pytest.raises(aiohttp.ClientError):
        await post(nl.url, _tls(pair, certs["stranger"]), jws, payload)
    assert not [e for e in await ledger(nl) if e.get("event") == "accepted"]


async def test_member_endpoints_refuse_a_peer_gateway_certificate(
    pair: Pair, certs: dict[str, ClientCert], nl: Gateway
) -> None:
    payload = _manifest()
    jws = envelope(pair.fed_a, "CARRIER-COSCO", ["NL-DOUANE"], payload)
    status, problem = await post(nl.url, _tls(pair, certs["gateway"]), jws, payload, path="/v1/messages")
    assert (status, problem["code"]) == (401, "CERT_UNTRUSTED")
    async with aiohttp.ClientSession() as session:
        inbox = await session.get(nl.url + "/v1/inbox", ssl=_tls(pair, certs["gateway"]))
        assert inbox.status == 401 and (await inbox.json())["code"] == "CERT_UNTRUSTED"


def _grpc_channel(pair: Pair, nl: Gateway, client: ClientCert) -> grpc.aio.Channel:
    assert nl.grpc_target is not None
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pair.fed_b / "ca" / "root-ca.crt").read_bytes(),
        private_key=client.key.read_bytes(),
        certificate_chain=client.cert.read_bytes(),
    )
    return grpc.aio.secure_channel(nl.grpc_target, credentials)


async def test_relay_over_grpc(pair: Pair, certs: dict[str, ClientCert], nl: Gateway) -> None:
    payload = _manifest()
    jws = envelope(pair.fed_a, "CARRIER-COSCO", ["NL-DOUANE"], payload, tlp=Tlp.GREEN)
    async with _grpc_channel(pair, nl, certs["gateway"]) as channel:
        stub = exchange_pb2_grpc.ExchangeStub(channel)
        first = await stub.Relay(exchange_pb2.SubmitRequest(envelope=jws, payload=payload), timeout=10)
        again = await stub.Relay(exchange_pb2.SubmitRequest(envelope=jws, payload=payload), timeout=10)
        assert not first.duplicate and again.duplicate and again.message.receipt == first.message.receipt
        receipt = ReceiptVerifier(pair.fed_b / "ca" / "root-ca.crt").read(first.message.receipt)
        assert receipt["gateway"] == "NL-DOUANE" and receipt["from"] == "CARRIER-COSCO"
        refused = _manifest()
        stray = envelope(pair.fed_a, "CARRIER-COSCO", ["CN-GACC"], refused)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Relay(exchange_pb2.SubmitRequest(envelope=stray, payload=refused), timeout=10)
        error = client_error(caught.value)
        assert (caught.value.code(), error.code, error.field) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "RELAY_REFUSED",
            "to",
        )
        with pytest.raises(grpc.aio.AioRpcError) as member_submit:  # Submit is for members, not peer gateways
            await stub.Submit(exchange_pb2.SubmitRequest(envelope=jws, payload=payload), timeout=10)
        assert client_error(member_submit.value).code == "CERT_UNTRUSTED"
    async with _grpc_channel(pair, nl, certs["rogue"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as rogue:
            await exchange_pb2_grpc.ExchangeStub(channel).Relay(
                exchange_pb2.SubmitRequest(envelope=jws, payload=payload), timeout=10
            )
        assert client_error(rogue.value).code == "PEER_MISMATCH"
    events = await ledger(nl)
    accepted = [e for e in events if e.get("event") == "accepted"]
    assert [(e["adapter"], e["relayed_by"]) for e in accepted] == [("relay-grpc", "CN-GACC")]
    refusal = [e for e in events if e.get("event") == "rejected" and e.get("code") == "RELAY_REFUSED"]
    assert refusal[0]["adapter"] == "relay-grpc" and refusal[0]["relayed_by"] == "CN-GACC"
