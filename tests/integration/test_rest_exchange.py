"""The REST adapter over real TLS sockets: submit, duplicates, refusals, inbox, ack, status, tokens.

Every refusal is checked twice: the stable code on the wire (RFC 9457 problem JSON) and its record in the
ledger: a ``rejected`` leaf with the same code for an authenticated caller, a count in the ``rejected_summary``
leaf for an unauthenticated one.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.app.main import Gateway
from gateway.client.rest import GatewayClientError, MemberCredentials, sign_message
from gateway.core import tokens
from gateway.demo.samples import cargo_manifest, release_notice, to_bytes
from tests.integration.conftest import ClientFactory, summarized

MANIFEST = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def ledger_events(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(e.data) for e in await gateway.store.ledger_entries(0, size)]


async def rejected_codes(gateway: Gateway) -> list[str]:
    return [e["code"] for e in await ledger_events(gateway) if e["event"] == "rejected"]


async def test_submit_is_receipted_durable_and_delivered(gateway: Gateway, clients: ClientFactory) -> None:
    carrier, gacc = clients("CARRIER-COSCO"), clients("CN-GACC")
    payload = to_bytes(cargo_manifest())
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
    assert sent.status == 201
    assert sent.receipt["status"] == "accepted"
    assert sent.receipt["evidence_sha256"] == sent.body["evidence_sha256"]
    stored = await gateway.store.find_message("CARRIER-COSCO", sent.body["message_id"])
    assert stored is not None
    assert stored.payload == payload
    assert stored.leaf_index == sent.receipt["ledger_index"]
    events = await ledger_events(gateway)
    accepted = events[sent.receipt["ledger_index"]]
    assert accepted["event"] == "accepted"
    assert accepted["message_id"] == sent.body["message_id"]
    assert accepted["policy_ids"]
    assert accepted["policy_digest"] == sent.receipt["policy_digest"]

    page = await gacc.pull()
    assert [i["message_id"] for i in page["items"]] == [sent.body["message_id"]]
    assert page["items"][0]["payload"] == payload
    assert await gacc.ack([page["items"][0]["cursor"]]) == 1
    assert (await gacc.pull())["items"] == []
    assert await gacc.ack([page["items"][0]["cursor"]]) == 0  # acking twice is harmless


async def test_duplicate_returns_original_receipt_and_conflict_is_refused(
    gateway: Gateway, clients: ClientFactory
) -> None:
    carrier = clients("CARRIER-COSCO")
    payload = to_bytes(cargo_manifest())
    jws = carrier.sign(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
    first = await carrier.submit_signed(jws, payload)
    again = await carrier.submit_signed(jws, payload)
    assert again.status == 200
    assert again.duplicate
    assert again.body["receipt"] == first.body["receipt"]
    message_id = first.body["message_id"]
    other = to_bytes(cargo_manifest("OTHER-1"))
    conflicting = carrier.sign(MANIFEST, ["CN-GACC"], other, schema=SCHEMA, message_id=message_id)
    with pytest.raises(GatewayClientError) as err:
        await carrier.submit_signed(conflicting, other)
    assert (err.value.status, err.value.code) == (409, "DUPLICATE_CONFLICT")
    assert "DUPLICATE_CONFLICT" in await rejected_codes(gateway)
    accepted = [e for e in await ledger_events(gateway) if e["event"] == "accepted"]
    assert len(accepted) == 1


async def test_concurrent_identical_submits_accept_once(gateway: Gateway, clients: ClientFactory) -> None:
    carrier = clients("CARRIER-COSCO")
    payload = to_bytes(cargo_manifest())
    jws = carrier.sign(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
    results = await asyncio.gather(*(carrier.submit_signed(jws, payload) for _ in range(10)))
    assert sorted(r.status for r in results) == [200] * 9 + [201]
    assert len({r.body["receipt"] for r in results}) == 1


@pytest.mark.parametrize(
    ("mutate", "code", "status"),
    [
        ("tamper_payload", "PAYLOAD_DIGEST_MISMATCH", 401),
        ("alg_none", "ALG_NOT_ALLOWED", 401),
        ("alg_hs256", "ALG_NOT_ALLOWED", 401),
        ("expired", "MESSAGE_EXPIRED", 422),
        ("future", "MESSAGE_NOT_YET_VALID", 422),
        ("unknown_recipient", "UNKNOWN_RECIPIENT", 422),
        ("bad_check_digit", "IDENTIFIER_INVALID", 422),
        ("unknown_field", "SCHEMA_INVALID", 422),
        ("policy", "POLICY_DENIED", 403),
    ],
)
async def test_refusals_have_stable_codes_and_are_audited(
    gateway: Gateway, clients: ClientFactory, mutate: str, code: str, status: int
) -> None:
    carrier = clients("CARRIER-COSCO")
    payload = to_bytes(cargo_manifest())
    to, message_type, schema = ["CN-GACC"], MANIFEST, SCHEMA
    created = datetime.now(UTC)
    if mutate == "expired":
        created -= timedelta(days=2)
    elif mutate == "future":
        created += timedelta(hours=1)
    elif mutate == "unknown_recipient":
        to = ["XX-NOBODY"]
    elif mutate == "bad_check_digit":
        payload = to_bytes(cargo_manifest(container="MSKU9070324"))
    elif mutate == "unknown_field":
        document = cargo_manifest()
        document["vessel"]["colour"] = "red"
        payload = to_bytes(document)
    elif mutate == "policy":
        message_type, schema, to = "release.notice.v1", "cgw.v1.ReleaseNotice", ["PORT-NLRTM"]
        payload = to_bytes(release_notice())
    jws = carrier.sign(message_type, to, payload, schema=schema, created=created)
    if mutate == "tamper_payload":
        payload = payload.replace(b"5400.0", b"5401.0")
    elif mutate in ("alg_none", "alg_hs256"):
        _, body, _ = jws.split(".")
        alg = "none" if mutate == "alg_none" else "HS256"
        head = b64url(json.dumps({"alg": alg, "typ": "cgw-envelope+jws"}).encode())
        jws = f"{head}.{body}." + ("" if alg == "none" else b64url(b"\x00" * 32))
    with pytest.raises(GatewayClientError) as err:
        await carrier.submit_signed(jws, payload)
    assert (err.value.status, err.value.code) == (status, code)
    assert code in await rejected_codes(gateway)


def _proto_names(value: Any) -> Any:
    """A JSON payload with every key under its proto field name (proto3 JSON takes both spellings)."""
    if isinstance(value, dict):
        return {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), k): _proto_names(v) for k, v in value.items()}
    return [_proto_names(item) for item in value] if isinstance(value, list) else value


async def test_validation_error_names_field_and_rule(gateway: Gateway, clients: ClientFactory) -> None:
    carrier = clients("CARRIER-COSCO")
    document = cargo_manifest(container="MSKU9070324")
    for payload, field in (
        (to_bytes(document), "payload.consignments[0].goodsItems[0].containerNumbers[0]"),
        (to_bytes(_proto_names(document)), "payload.consignments[0].goods_items[0].container_numbers[0]"),
    ):
        with pytest.raises(GatewayClientError) as err:
            await carrier.submit(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
        assert err.value.field == field  # named as the sender wrote it, in the answer and in the ledger
        assert "6346" in err.value.detail
        assert (await ledger_events(gateway))[-1]["field"] == field


async def test_signer_must_be_the_authenticated_caller(gateway: Gateway, clients: ClientFactory) -> None:
    """A message correctly signed by COSCO but submitted over NL-DOUANE's TLS session is refused."""
    carrier, douane = clients("CARRIER-COSCO"), clients("NL-DOUANE")
    payload = to_bytes(cargo_manifest())
    jws = carrier.sign(MANIFEST, ["CN-GACC"], payload, schema=SCHEMA)
    with pytest.raises(GatewayClientError) as err:
        await douane.submit_signed(jws, payload)
    assert err.value.code == "SIGNER_MISMATCH"


async def test_no_credentials_is_unauthenticated_problem_json(gateway: Gateway, federation: Path) -> None:
    context = ssl.create_default_context(cafile=str(federation / "ca/root-ca.crt"))
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/v1/inbox", ssl=context) as response,
    ):
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        body = await response.json()
    assert body["code"] == "UNAUTHENTICATED"
    assert body["status"] == 401
    assert "field" not in body  # authentication failures never say which check failed


async def test_request_limits(gateway: Gateway, federation: Path) -> None:
    creds = MemberCredentials.from_federation(federation, "CARRIER-COSCO")
    context = ssl.create_default_context(cafile=str(creds.ca_file))
    assert creds.tls_cert
    assert creds.tls_key
    context.load_cert_chain(creds.tls_cert, creds.tls_key)
    big = b"x" * (gateway.settings.limits.max_body_bytes + 1)
    async with aiohttp.ClientSession() as session:
        async with session.post(gateway.url + "/v1/messages", data=b"{}", ssl=context) as response:
            assert response.status == 400
            assert (await response.json())["field"] == "Cgw-Envelope"
        jws = sign_message(creds, MANIFEST, ["CN-GACC"], big, schema=SCHEMA)
        async with session.post(
            gateway.url + "/v1/messages", data=io.BytesIO(big), headers={"Cgw-Envelope": jws}, ssl=context
        ) as response:
            assert response.status == 413
            assert (await response.json())["code"] == "LIMIT_EXCEEDED"
        async with session.get(gateway.url + "/v1/inbox?limit=abc", ssl=context) as response:
            assert response.status == 400
            assert (await response.json())["field"] == "limit"
        async with session.post(gateway.url + "/v1/inbox/ack", json={"cursors": list(range(1, 600))}, ssl=context) as r:
            assert r.status == 413


async def test_long_poll_wakes_on_new_message(clients: ClientFactory) -> None:
    carrier, gacc = clients("CARRIER-COSCO"), clients("CN-GACC")
    waiting = asyncio.create_task(gacc.pull(wait=10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    page = await asyncio.wait_for(waiting, timeout=5)
    assert [i["message_id"] for i in page["items"]] == [sent.body["message_id"]]


async def test_ack_of_foreign_cursor_is_refused(clients: ClientFactory) -> None:
    carrier, gacc = clients("CARRIER-COSCO"), clients("CN-GACC")
    await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    cursor = (await gacc.pull())["items"][0]["cursor"]
    with pytest.raises(GatewayClientError) as err:
        await carrier.ack([cursor])
    assert err.value.code == "NOT_FOUND"
    assert len((await gacc.pull())["items"]) == 1  # still unacknowledged for its owner


async def test_status_visible_to_parties_and_auditor_only(clients: ClientFactory) -> None:
    carrier = clients("CARRIER-COSCO")
    sent = await carrier.submit(MANIFEST, ["CN-GACC"], to_bytes(cargo_manifest()), schema=SCHEMA)
    message_id = sent.body["message_id"]
    for member in ("CARRIER-COSCO", "CN-GACC", "AUDIT-GACC"):
        status = await clients(member).status("CARRIER-COSCO", message_id)
        assert status["receipt"] == sent.body["receipt"]
    with pytest.raises(GatewayClientError) as err:
        await clients("PORT-NLRTM").status("CARRIER-COSCO", message_id)
    assert err.value.code == "NOT_FOUND"


async def test_token_flow_binding_and_replay(gateway: Gateway, clients: ClientFactory, federation: Path) -> None:
    # A token fetched over mTLS is bound to that certificate (RFC 8705) ...
    port = clients("PORT-NLRTM")
    await port.fetch_token()
    assert (await port.pull())["items"] == []
    token = port._token
    assert token is not None
    # ... so presenting it without the certificate fails.
    bare = clients("PORT-NLRTM", mtls=False)
    bare._token = token
    with pytest.raises(GatewayClientError) as err:
        await bare.pull()
    assert err.value.code in ("UNAUTHENTICATED", "TOKEN_INVALID")
    # A token fetched without a client certificate works as a plain bearer token.
    await bare.fetch_token()
    assert (await bare.pull())["items"] == []
    # The same client assertion (same jti) cannot be used twice.
    creds = MemberCredentials.from_federation(federation, "PORT-NLRTM")
    assertion = tokens.make_client_assertion(
        "PORT-NLRTM",
        bare.gateway_issuer,
        creds.signing_key,
        creds.signing_chain,
        now=datetime.now(UTC),
        jti=str(uuid.uuid4()),
    )
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    context = ssl.create_default_context(cafile=str(creds.ca_file))
    async with aiohttp.ClientSession() as session:
        async with session.post(gateway.url + "/v1/token", data=form, ssl=context) as response:
            assert response.status == 200
        async with session.post(gateway.url + "/v1/token", data=form, ssl=context) as response:
            assert response.status == 401
            assert (await response.json())["code"] == "TOKEN_REPLAYED"
    assert (await summarized(gateway))["TOKEN_REPLAYED", "rest"] == 1  # no caller authenticated: counted


async def test_every_rejection_is_audited_with_its_reason(
    gateway: Gateway, clients: ClientFactory, federation: Path
) -> None:
    """Audit-read denials and policy denials leave a ledger leaf; an authentication failure is counted."""
    context = ssl.create_default_context(cafile=str(federation / "ca/root-ca.crt"))
    async with aiohttp.ClientSession() as session, session.get(gateway.url + "/v1/inbox", ssl=context) as response:
        assert response.status == 401
    with pytest.raises(GatewayClientError):
        await clients("CARRIER-COSCO").checkpoint()
    with pytest.raises(GatewayClientError):
        await clients("CARRIER-COSCO").submit(
            "release.notice.v1", ["PORT-NLRTM"], to_bytes(release_notice()), schema="cgw.v1.ReleaseNotice"
        )
    rejected = [e for e in await ledger_events(gateway) if e["event"] == "rejected"]
    by_action = {(e["action"], e["code"]) for e in rejected}
    assert await summarized(gateway) == {("UNAUTHENTICATED", "rest"): 1}
    assert ("audit_read", "POLICY_DENIED") in by_action
    assert ("submit", "POLICY_DENIED") in by_action
    denial = next(e for e in rejected if e["action"] == "submit")
    assert denial["policy_digest"] == gateway.state.require_authorizer().digest
    assert "COSU6123456780" not in json.dumps(rejected)  # payload content never reaches the ledger
