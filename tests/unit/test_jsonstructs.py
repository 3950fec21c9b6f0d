"""The msgspec first pass (gateway.core.jsonstructs): it takes the everyday spelling and leaves the rest.

Its contract (the module's rules): a document it takes is one the full walk takes, with the same summary; any
other document goes to the full walk, so ``validate_payload`` still agrees with the reference path. The
differential tests of test_jsonwalk serialise with ``json.dumps`` defaults (``\\u`` escapes for every non-ASCII
character, which this pass never takes); here documents are written as partners write them: UTF-8, unescaped.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core import jsonstructs
from gateway.core.errors import GatewayError, IdentifierInvalid, Invalid
from gateway.core.jsondecode import ROOT
from gateway.core.payloads import MESSAGE_TYPES, _json_rules, _Summary, validate_payload
from tests.unit.test_jsonwalk import BASES, EXAMPLES, SAMPLED, _document, _mutated


def _utf8(document: Any) -> bytes:
    # A lone surrogate goes out as its 3 bytes (not UTF-8): a payload both paths must refuse.
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _outcome(message_type: str, data: bytes, *, reference: bool) -> tuple[Any, ...]:
    try:
        return ("ok", validate_payload(message_type, "application/json", data, reference=reference))
    except GatewayError as exc:
        return ("error", exc.code, exc.field)
    except (OverflowError, SystemError):  # the reference's own crashes (see test_jsonwalk._outcome)
        return ("crash",)


def _taken(message_type: str, data: bytes) -> bool:
    return jsonstructs.decode(data, MESSAGE_TYPES[message_type].message.DESCRIPTOR) is not None


def assert_agrees(message_type: str, data: bytes) -> tuple[Any, ...]:
    expected = _outcome(message_type, data, reference=True)
    got = _outcome(message_type, data, reference=False)
    if expected == ("crash",):
        assert got[0] == "error", got
    else:
        assert got == expected, (data, expected, got)
    return got


@pytest.mark.parametrize("message_type", SAMPLED)
def test_every_sample_is_taken_and_agrees(message_type: str) -> None:
    data = _utf8(BASES[message_type])
    descriptor = MESSAGE_TYPES[message_type].message.DESCRIPTOR
    values = jsonstructs.decode(data, descriptor)
    assert values is not None, "the everyday spelling must take the fast pass"
    facts = jsonstructs.walk(values, descriptor, ROOT, _Summary(), _json_rules())  # taken to the end, no refusal
    expected = validate_payload(message_type, "application/json", data, reference=True)
    assert facts == expected.facts
    assert assert_agrees(message_type, data)[0] == "ok"


def test_every_message_type_has_structs() -> None:
    missing = [t for t, spec in MESSAGE_TYPES.items() if jsonstructs.struct_for(spec.message.DESCRIPTOR) is None]
    assert missing == []


@pytest.mark.parametrize("message_type", SAMPLED)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_utf8_samples_agree(message_type: str, data: st.DataObject) -> None:
    assert_agrees(message_type, _utf8(data.draw(_mutated(message_type))))


@pytest.mark.parametrize("message_type", SAMPLED)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_utf8_documents_agree(message_type: str, data: st.DataObject) -> None:
    descriptor = MESSAGE_TYPES[message_type].message.DESCRIPTOR
    assert_agrees(message_type, _utf8(data.draw(_document(descriptor))))


def _with_key_first(text: bytes, key: bytes, value: bytes) -> bytes:
    """``text`` (a JSON object) with ``"key": value`` added in front of its other keys, as raw text."""
    assert text.startswith(b"{")
    return b'{"' + key + b'": ' + value + b", " + text[1:]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (b"manifestNumber", b'"OTHER-1"'),  # a string repeated, the later one kept by a plain decode
        (b"vessel", b'{"name": "X", "imo": "9811000"}'),  # a message repeated
        (b"consignments", b"[]"),  # a list repeated
        (b"voyageNumber", b'"a:b:c"'),  # colons inside the lost value: still one key too many
    ],
)
def test_a_repeated_key_is_left_to_the_full_walk(key: bytes, value: bytes) -> None:
    data = _with_key_first(_utf8(BASES["manifest.cargo.v1"]), key, value)
    assert not _taken("manifest.cargo.v1", data)
    outcome = assert_agrees("manifest.cargo.v1", data)
    assert outcome[0] == "error"
    assert outcome[1] == Invalid.code


def test_a_repeated_key_deep_in_the_document_is_left_to_the_full_walk() -> None:
    text = _utf8(BASES["manifest.cargo.v1"])
    data = text.replace(b'"sizeType": "45G1"', b'"sizeType": "22G1", "sizeType": "45G1"', 1)
    assert data != text
    assert not _taken("manifest.cargo.v1", data)
    assert assert_agrees("manifest.cargo.v1", data)[0] == "error"


def _changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASES["manifest.cargo.v1"])
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return document


@pytest.mark.parametrize(
    ("path", "value", "taken"),
    [
        (("vessel",), None, False),  # null clears a field in proto3 JSON
        (("consignments", 0, "consignor", "role"), 1, False),  # an enum by number
        (("consignments", 0, "goodsItems", 0, "sequence"), "1", True),  # a decimal string, as for 64-bit ints
        (("consignments", 0, "goodsItems", 0, "sequence"), "1e3", True),  # decoded; refused when read
        (("consignments", 0, "goodsItems", 0, "sequence"), "99999999999", True),  # out of int32's range
        (("consignments", 0, "goodsItems", 0, "sequence"), 1.0, False),  # an integer written as a float
        (("consignments", 0, "goodsItems", 0, "grossMassKg"), "5400", False),  # a double as a string
        (("estimatedArrival",), "2026-12-20T06:00:00+00:00", True),  # an offset: decoded, then left when read
        (("vessel", "name"), 'quote " inside', False),  # an escape in the text
    ],
)
def test_other_spellings_are_left_to_the_full_walk_and_agree(path: tuple[Any, ...], value: Any, taken: bool) -> None:
    data = _utf8(_changed(path, value))
    assert _taken("manifest.cargo.v1", data) == taken
    assert_agrees("manifest.cargo.v1", data)


def test_proto_field_names_are_left_to_the_full_walk() -> None:
    document = copy.deepcopy(BASES["manifest.cargo.v1"])
    document["port_of_loading"] = document.pop("portOfLoading")
    data = _utf8(document)
    assert not _taken("manifest.cargo.v1", data)
    assert assert_agrees("manifest.cargo.v1", data)[0] == "ok"


@pytest.mark.parametrize("stamp", ["2026-02-30T06:00:00Z", "2026-12-20T24:00:00Z", "2026-12-20T06:00:00.123Z"])
def test_timestamps_are_checked_on_the_calendar(stamp: str) -> None:
    data = _utf8(_changed(("estimatedArrival",), stamp))
    assert _taken("manifest.cargo.v1", data)  # decoded: the calendar check happens when pass 2 reads it
    assert_agrees("manifest.cargo.v1", data)


def test_non_ascii_text_is_taken_unescaped() -> None:
    data = _utf8(_changed(("vessel", "name"), "中远海运 ÉTOILE"))
    assert b"\\" not in data
    assert _taken("manifest.cargo.v1", data)
    assert assert_agrees("manifest.cargo.v1", data)[0] == "ok"


def test_an_unknown_key_or_a_wrong_type_is_refused_like_the_reference() -> None:
    unknown = _utf8(_changed(("vessel", "callSign"), "ABCD"))
    assert not _taken("manifest.cargo.v1", unknown)
    assert assert_agrees("manifest.cargo.v1", unknown)[:2] == ("error", Invalid.code)
    wrong = _utf8(_changed(("consignments", 0, "goodsItems", 0, "sequence"), True))
    assert not _taken("manifest.cargo.v1", wrong)
    assert assert_agrees("manifest.cargo.v1", wrong)[:2] == ("error", Invalid.code)


def test_a_bad_party_identifier_is_refused_where_the_party_hook_repeats_the_check() -> None:
    # Under a Party the PartyIdentifier hook is left out (Rules.repeated_by): the Party hook refuses it instead.
    data = _utf8(_changed(("consignments", 0, "consignee", "identifiers", 0, "value"), "N1-&"))
    assert _taken("manifest.cargo.v1", data)
    outcome = assert_agrees("manifest.cargo.v1", data)
    assert outcome == ("error", IdentifierInvalid.code, "payload.consignments[0].consignee.identifiers[0].value")


def test_the_party_hook_on_structs_fills_the_summary_as_its_view_hook_does() -> None:
    # Rules.struct_hooks: the Party hook reads the Struct itself; dropping it falls back to the MessageView hook.
    rules = _json_rules()
    assert "cgw.v1.Party" in rules.struct_hooks
    identifiers = [
        {"scheme": "EORI", "value": "nl123456789"},  # normalised to upper case by the hook
        {"scheme": "CN_CUSTOMS_CODE", "value": "4403961234"},
        {"scheme": "AEO_CN", "value": "AEOCN4403961234"},
    ]
    document = _changed(("consignments", 0, "consignee", "identifiers"), identifiers)
    del document["consignments"][0]["consignor"]["identifiers"]  # a party without identifiers
    data = _utf8(document)
    descriptor = MESSAGE_TYPES["manifest.cargo.v1"].message.DESCRIPTOR
    values = jsonstructs.decode(data, descriptor)
    assert values is not None
    direct, through_views = _Summary(), _Summary()
    jsonstructs.walk(values, descriptor, ROOT, direct, rules)
    jsonstructs.walk(values, descriptor, ROOT, through_views, dataclasses.replace(rules, struct_hooks={}))
    assert direct.parties == through_views.parties
    consignor, consignee = direct.parties
    assert consignor.identifiers == ()
    assert [tuple(t) for t in consignee.identifiers] == [
        ("EORI", "NL123456789"),
        ("CN_CUSTOMS_CODE", "4403961234"),
        ("AEO_CN", "AEOCN4403961234"),
    ]
    assert (consignee.role, consignee.country, consignee.path) == (
        "CONSIGNEE",
        "NL",
        "payload.consignments[0].consignee",
    )
    assert assert_agrees("manifest.cargo.v1", data)[0] == "ok"
