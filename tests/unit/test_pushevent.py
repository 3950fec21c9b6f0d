"""Push events: CloudEvents 1.0 structured mode, deterministic (byte-identical) signed bytes, strict reading."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.core.errors import BadRequest, SignatureRejected
from gateway.core.pushevent import CONTENT_TYPE, build_push_event, parse_cloudevent, read_push_event, sign_detached
from tests.shareddata import shared_path

SHARED_FIXTURE = "fixtures/cloudevent_release_notice.json"
KEY = ec.generate_private_key(ec.SECP256R1())
X5C = [base64.b64encode(b"leaf certificate DER (transported, not parsed here)").decode()]
AT = datetime(2026, 4, 10, 14, 5, tzinfo=UTC)


def event(**changes: Any) -> Any:
    args: dict[str, Any] = {
        "sender": "CN-GACC",
        "message_id": "rel-0001",
        "message_type": "release.notice.v1",
        "recipients": ("PORT-NLRTM", "CARRIER-COSCO"),
        "jws": "eyJhbGciOiJFUzI1NiJ9.eyJpZCI6InJlbC0wMDAxIn0.c2ln",
        "payload": b'{"decision":"RELEASED"}',
        "receipt": b"eyJ0eXAiOiJjZ3ctcmVjZWlwdCtqd3MifQ.e30.c2ln",
        "evidence_sha256": "ab" * 32,
        "received_at": AT,
        "ledger_index": 7,
        "recipient": "PORT-NLRTM",
        "cursor": 42,
        "source": "urn:cgw:gateway:CN-GACC",
        "key": KEY,
        "x5c": X5C,
    }
    return build_push_event(**(args | changes))


def test_the_event_is_structured_mode_cloudevents_with_the_evidence_unchanged() -> None:
    pushed = event()
    body = json.loads(pushed.body)

    assert CONTENT_TYPE == "application/cloudevents+json"
    assert {k: body[k] for k in ("specversion", "id", "source", "type", "subject", "time", "datacontenttype")} == {
        "specversion": "1.0",
        "id": "CN-GACC/rel-0001",
        "source": "urn:cgw:gateway:CN-GACC",
        "type": "org.cgw.message.release.notice.v1",
        "subject": "rel-0001",
        "time": "2026-04-10T14:05:00.000000Z",
        "datacontenttype": "application/json",
    }
    assert (body["cgwrecipient"], body["cgwcursor"]) == ("PORT-NLRTM", 42)
    assert body["data"]["envelope"] == "eyJhbGciOiJFUzI1NiJ9.eyJpZCI6InJlbC0wMDAxIn0.c2ln"
    assert body["data"]["receipt"] == "eyJ0eXAiOiJjZ3ctcmVjZWlwdCtqd3MifQ.e30.c2ln"
    assert base64.b64decode(body["data"]["payload"]) == b'{"decision":"RELEASED"}'
    assert body["data"]["ledger_index"] == 7
    assert parse_cloudevent(pushed.body).id == "CN-GACC/rel-0001"


def test_rebuilding_gives_byte_identical_body_and_signature() -> None:
    assert event() == event()  # deterministic ECDSA (RFC 6979): retries and restarts send the same bytes
    assert event(cursor=43).body != event().body


def test_the_detached_signature_verifies_and_binds_every_byte() -> None:
    pushed = event()
    verified = read_push_event(pushed.body, pushed.signature, KEY.public_key())
    assert verified.attributes["cgwrecipient"] == "PORT-NLRTM"

    with pytest.raises(SignatureRejected):
        read_push_event(pushed.body.replace(b"PORT-NLRTM", b"PORT-NLRTX"), pushed.signature, KEY.public_key())
    with pytest.raises(SignatureRejected):
        read_push_event(pushed.body, pushed.signature, ec.generate_private_key(ec.SECP256R1()).public_key())
    header, _, signature = pushed.signature.split(".")
    with pytest.raises(SignatureRejected):
        read_push_event(pushed.body, f"{header}.e30.{signature}", KEY.public_key())  # not detached
    assert sign_detached(pushed.body, KEY, X5C) == pushed.signature


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"id":"1","source":"s","type":"t"}', "specversion"),
        (b'{"specversion":"0.3","id":"1","source":"s","type":"t"}', "specversion"),
        (b'{"specversion":"1.0","id":"","source":"s","type":"t"}', "id"),
        (b'{"specversion":"1.0","id":"1","source":"s","type":"t","TLPLevel":"amber"}', "TLPLevel"),
        (b'{"specversion":"1.0","id":"1","source":"s","type":"t","averyveryverylongextension":1}', None),
        (b'{"specversion":"1.0","id":"1","id":"2","source":"s","type":"t"}', None),
        (b"[]", None),
    ],
)
def test_parse_refuses_what_the_spec_forbids(raw: bytes, field: str | None) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_cloudevent(raw)
    if field is not None:
        assert refused.value.field == field


@pytest.mark.shared
def test_the_shared_release_notice_fixture_parses() -> None:
    parsed = parse_cloudevent(shared_path(SHARED_FIXTURE).read_bytes())
    assert (parsed.type, parsed.source, parsed.attributes["tlp"]) == (
        "org.example.customs.release.granted.v1",
        "urn:example:customs:nl:rotterdam",
        "amber",
    )
    assert parsed.data["decision"] == "RELEASED"
