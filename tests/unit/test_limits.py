"""The bounds of gateway.core.limits hold on every validation path, at the same value.

A JSON payload is validated by the one-pass walk (gateway.core.jsonwalk, and the Structs of jsonstructs) or by the
reference path (``validate_payload(reference=True)``: shape check, ParseDict, rule walk on the message); a binary
one by the reference path alone. Each test finds the edge of one bound, then checks that every path accepts the
payload at the bound and refuses it one past, with the same code, field and detail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message_factory import GetMessageClass

from gateway.core import jsondecode, jsontables, jsonwalk, limits, messagewalk, payloads
from gateway.core.errors import GatewayError, Invalid, LimitExceeded
from gateway.core.payloads import MESSAGE_TYPES, validate_payload

STREAM = "port.stream.v1"
REFERENCE = pytest.mark.parametrize("reference", [False, True], ids=["jsonwalk", "reference"])


def _stream(reason: str) -> dict[str, Any]:
    """A port.stream.v1 whose entry ``reason`` has no ``max_length`` annotation: the default bound applies."""
    entry = {"seq": "7", "port": "NLRTM", "transportDocumentNumber": "MAEU123456789", "status": "RELEASED"}
    return {"port": "NLRTM", "entries": [entry | {"reason": reason}]}


def _json(document: Any) -> bytes:
    return json.dumps(document).encode()


def _refusal(data: bytes, *, reference: bool, media: str = "application/json") -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        validate_payload(STREAM, media, data, reference=reference)
    return caught.value


def _seen(error: GatewayError) -> tuple[str, str | None, str]:
    return error.code, error.field, error.detail


def test_the_reason_field_is_bounded_by_the_default_only() -> None:
    table = jsontables.table_for(MESSAGE_TYPES[STREAM].message.DESCRIPTOR)
    entries = jsontables.message_table(table.by_name["entries"].message)
    assert entries.by_name["reason"].max_length == limits.DEFAULT_MAX_TEXT_CHARS


@REFERENCE
def test_default_text_bound(reference: bool) -> None:
    at_bound = _json(_stream("x" * limits.DEFAULT_MAX_TEXT_CHARS))
    assert validate_payload(STREAM, "application/json", at_bound, reference=reference).type == STREAM
    error = _refusal(_json(_stream("x" * (limits.DEFAULT_MAX_TEXT_CHARS + 1))), reference=reference)
    assert _seen(error) == (
        "SCHEMA_INVALID",
        "payload.entries[0].reason",
        f"at most {limits.DEFAULT_MAX_TEXT_CHARS} characters, got {limits.DEFAULT_MAX_TEXT_CHARS + 1}",
    )


def test_default_text_bound_in_binary_protobuf() -> None:
    message = MESSAGE_TYPES[STREAM].message()
    json_format.ParseDict(_stream("x" * (limits.DEFAULT_MAX_TEXT_CHARS + 1)), message)
    error = _refusal(message.SerializeToString(), reference=True, media="application/protobuf")
    assert _seen(error) == (
        "SCHEMA_INVALID",
        "payload.entries[0].reason",
        f"at most {limits.DEFAULT_MAX_TEXT_CHARS} characters, got {limits.DEFAULT_MAX_TEXT_CHARS + 1}",
    )


@REFERENCE
def test_echoed_keys_are_cut_at_the_same_length(reference: bool) -> None:
    key = "k" * (limits.MAX_KEY_ECHO + 30)
    document = _stream("ok") | {key: 1}
    error = _refusal(_json(document), reference=reference)
    echo = key[: limits.MAX_KEY_ECHO]
    assert _seen(error) == ("SCHEMA_INVALID", f"payload.{echo}", f"unknown field {echo!r}")


@REFERENCE
def test_nesting_depth_bound(reference: bool) -> None:
    def nested(depth: int) -> bytes:
        return b'{"port": "NLRTM", "entries": [{"reason": ' + b"[" * (depth - 3) + b"]" * (depth - 3) + b"}]}"

    assert jsondecode.json_depth(nested(limits.MAX_JSON_DEPTH)) == limits.MAX_JSON_DEPTH
    at_bound = _refusal(nested(limits.MAX_JSON_DEPTH), reference=reference)
    assert at_bound.code == "SCHEMA_INVALID"  # deep enough to be read, and then refused as the wrong type
    error = _refusal(nested(limits.MAX_JSON_DEPTH + 1), reference=reference)
    assert _seen(error) == ("LIMIT_EXCEEDED", "payload", f"JSON nested deeper than {limits.MAX_JSON_DEPTH} levels")


@REFERENCE
@pytest.mark.parametrize("seq", [2**64, str(2**64), -1])
def test_integer_range_bound(reference: bool, seq: int | str) -> None:
    low, high = limits.INTEGER_RANGES[FieldDescriptor.CPPTYPE_UINT64]  # seq is a uint64
    document = _stream("ok")
    document["entries"][0]["seq"] = str(high)
    assert validate_payload(STREAM, "application/json", _json(document), reference=reference).type == STREAM
    document["entries"][0]["seq"] = seq
    error = _refusal(_json(document), reference=reference)
    assert _seen(error) == ("SCHEMA_INVALID", "payload.entries[0].seq", f"integer out of range {low}..{high}")


@pytest.mark.parametrize(
    ("media", "reference"),
    [("application/json", False), ("application/json", True), ("application/protobuf", True)],
)
def test_payload_size_bound(monkeypatch: pytest.MonkeyPatch, media: str, reference: bool) -> None:
    message = MESSAGE_TYPES[STREAM].message()
    json_format.ParseDict(_stream("ok"), message)
    data = _json(_stream("ok")) if media == "application/json" else message.SerializeToString()
    monkeypatch.setattr(limits, "MAX_PAYLOAD_BYTES", len(data))
    assert validate_payload(STREAM, media, data, reference=reference).size == len(data)
    monkeypatch.setattr(limits, "MAX_PAYLOAD_BYTES", len(data) - 1)
    error = _refusal(data, reference=reference, media=media)
    assert _seen(error) == ("LIMIT_EXCEEDED", "payload", f"payload larger than {len(data) - 1} bytes")


# -- the default list bound: no cgw.v1 list goes without max_items, so a message declared here for the test ------


def _unannotated_message() -> Any:
    """A message with a list and a text field and no ``(cgw.v1.rules)``: both defaults apply."""
    file = descriptor_pb2.FileDescriptorProto(name="cgwtest/limits.proto", package="cgwtest", syntax="proto3")
    message = file.message_type.add(name="Unannotated")
    label = descriptor_pb2.FieldDescriptorProto
    message.field.add(name="tags", number=1, type=label.TYPE_STRING, label=label.LABEL_REPEATED, json_name="tags")
    message.field.add(name="note", number=2, type=label.TYPE_STRING, label=label.LABEL_OPTIONAL, json_name="note")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return GetMessageClass(pool.FindMessageTypeByName("cgwtest.Unannotated"))


UNANNOTATED = _unannotated_message()


def _walked(data: bytes) -> None:
    """The one-pass walk, as validate_payload runs it for JSON."""
    rules = payloads._json_rules()
    jsonwalk.walk_json(
        jsondecode.decode_json(data), UNANNOTATED.DESCRIPTOR, jsondecode.ROOT, payloads._Summary(), rules
    )


def _referenced(data: bytes) -> None:
    """The reference path, as validate_payload(reference=True) runs it for JSON."""
    message = UNANNOTATED()
    messagewalk.parse_json(data, message)
    messagewalk.walk_message(message, jsondecode.ROOT, payloads._Summary(), payloads._json_rules(), check_unknown=False)


@pytest.mark.parametrize("path", [_walked, _referenced], ids=["jsonwalk", "reference"])
def test_default_list_bound(path: Any) -> None:
    path(_json({"tags": ["t"] * limits.DEFAULT_MAX_ITEMS, "note": "n" * limits.DEFAULT_MAX_TEXT_CHARS}))
    with pytest.raises(LimitExceeded) as caught:
        path(_json({"tags": ["t"] * (limits.DEFAULT_MAX_ITEMS + 1)}))
    assert _seen(caught.value) == (
        "LIMIT_EXCEEDED",
        "payload.tags",
        f"at most {limits.DEFAULT_MAX_ITEMS} items, got {limits.DEFAULT_MAX_ITEMS + 1}",
    )
    with pytest.raises(Invalid) as refused:
        path(_json({"note": "n" * (limits.DEFAULT_MAX_TEXT_CHARS + 1)}))
    assert refused.value.field == "payload.note"
