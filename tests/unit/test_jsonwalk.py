"""The one-pass JSON walk (gateway.core.jsonwalk) against the reference path, for every message type.

Equivalence is the contract: for any document, ``validate_payload`` and ``validate_payload(reference=True)``
either both return the same ``ValidatedPayload`` or both raise the same error code at the same field path.
Documents come from the samples (valid, then mutated) and from each message's descriptor (random shapes,
well- and ill-typed values, JSON and proto key spellings, the same field under both names).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
from datetime import UTC, date, datetime
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.core import jsontables, jsonwalk
from gateway.core.errors import GatewayError, Invalid
from gateway.core.jsondecode import json_depth
from gateway.core.limits import MAX_JSON_DEPTH
from gateway.core.payloads import MESSAGE_TYPES, validate_payload
from gateway.demo import aeosamples, programsamples, samples
from gateway.demo import releasesamples as portsamples
from gateway.wire.cgw.v1 import common_pb2

_AT = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)


BASES: dict[str, dict[str, Any]] = {
    "manifest.cargo.v1": samples.cargo_manifest(),
    "prearrival.ens.v1": samples.entry_summary(),
    "release.notice.v1": samples.release_notice(at=_AT),
    "sstl.security-data.v1": programsamples.sstl_security_data(),
    "sstl.control-result.v1": programsamples.sstl_control_result(at=_AT),
    "csi.examination-request.v1": programsamples.csi_examination_request(at=_AT),
    "csi.examination-result.v1": programsamples.csi_examination_result(at=_AT),
    "megaport.rpm-alarm.v1": programsamples.rpm_alarm(at=_AT),
    "megaport.adjudication.v1": programsamples.alarm_adjudication(),
    "intel.recall.v1": programsamples.intel_recall("NL-DOUANE", "0b1c2d3e-0000-4000-8000-000000000001"),
    "aeo.status.v1": json.loads(
        aeosamples.status_update("NLAEOF00001234", "SUSPENDED", since=date(2026, 4, 1), eori="NL123456789")
    ),
    "port.gate-out.v1": portsamples.gate_out("MSKU9070323", at=_AT),
    "alert.gate-out.v1": portsamples.gate_out_alert("MSKU9070323", at=_AT),
    "port.stream.v1": portsamples.stream_update(at=_AT),
}
TYPES = sorted(MESSAGE_TYPES)  # random documents: every registered type, samples or not
SAMPLED = sorted(set(BASES) & set(MESSAGE_TYPES))  # valid documents, then mutated
# Examples per message type and strategy; CGW_JSONWALK_EXAMPLES=2000 for a long hunt.
EXAMPLES = int(os.environ.get("CGW_JSONWALK_EXAMPLES", "40"))

# Values that sit on the edges of the proto3 JSON mapping and of the identifier rules.
# fmt: off
EDGE_STRINGS = [
    "", "0", "1", "-1", " 1", "1.0", "1.5", "1e3", "1e400", "+5", "1_000", "0x10", "٣", "-0",
    "99999999999999999999", "4294967296", "-9223372036854775809", "NaN", "nan", "Infinity", "-Infinity",
    "2026-12-20T06:00:00Z", "2026-12-20T06:00:00.123456789Z", "2026-12-20T06:00:00.1234567890Z",
    "2026-12-20T06:00:00+01:00", "2026-12-20T06:00:00-05:30", "2026-02-30T06:00:00Z", "0000-01-01T00:00:00Z",
    "2026-12-20t06:00:00Z", "2026-12-20T06:00:00", "2026-12-20T24:00:00Z", "2026-12-20T06:00:60Z",
    "2026-12-20T06:00:00ZZ", "AAAA", "AAA", "A", "_-8=", "\ud800", "a\udc00b", "é", "x field: y at Foo.bar",
    "a\nb", "MSKU9070323", "MSKU9070324", "CNYTN", "NLRTM", "DEHAM", "XXAAA", "9811000", "9811001",
    "850440", "1203", "COSU6123456780", "NL123456789", "91440300MA5G3K2X40", "NLAEOF00001234", "CN", "NL", "ZZ",
    "EORI", "USCC", "CONSIGNOR", "HOLD", "RELEASED", "SUSPENDED", "x" * 600,
]
# fmt: on
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**31, 2**32, 2**63, 2**64, 1.0, 1.5, -2.5, 1e300, 1e400, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EDGE_STRINGS),
    st.text(max_size=12),
)
JUNK = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["a", "name", "value", "scheme"]), SCALARS, max_size=2),
)


def _field_value(fd: Any, depth: int) -> st.SearchStrategy[Any]:
    """Plausible values for a field (of its kind), mixed with junk."""
    if fd.message_type is not None and fd.message_type.full_name == "google.protobuf.Timestamp":
        typed: st.SearchStrategy[Any] = st.sampled_from([s for s in EDGE_STRINGS if s[:2] in {"20", "00"}])
    elif fd.message_type is not None:
        typed = _document(fd.message_type, depth + 1) if depth < 4 else st.just({})
    elif fd.enum_type is not None:
        typed = st.sampled_from([v.name for v in fd.enum_type.values] + [v.number for v in fd.enum_type.values] + [99])
    elif fd.type == fd.TYPE_BYTES:
        typed = st.binary(max_size=6).map(lambda b: base64.urlsafe_b64encode(b).decode())
    elif fd.cpp_type == fd.CPPTYPE_STRING:
        typed = st.sampled_from(EDGE_STRINGS)
    else:
        typed = SCALARS
    one = st.one_of(typed, typed, JUNK)
    if fd.is_repeated:
        return st.one_of(st.lists(one, max_size=3), JUNK)
    return one


def _document(descriptor: Any, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    entries = [
        st.tuples(st.sampled_from(sorted({fd.json_name, fd.name})), _field_value(fd, depth)) for fd in descriptor.fields
    ]
    if not entries:
        return st.just({})
    return st.lists(st.one_of(entries), max_size=6 if depth else 9).map(dict)


def _outcome(message_type: str, data: bytes, *, reference: bool) -> tuple[Any, ...]:
    try:
        return ("ok", validate_payload(message_type, "application/json", data, reference=reference))
    except GatewayError as exc:
        return ("error", exc.code, exc.field)
    except (OverflowError, SystemError):
        # Reference crashes (a 500): enum or float conversion of an infinite or huge JSON number; upb's enum
        # name lookup with an unpaired surrogate. The walk refuses those documents as invalid instead.
        return ("crash",)


def assert_same(message_type: str, document: Any) -> tuple[Any, ...]:
    data = json.dumps(document).encode()
    expected = _outcome(message_type, data, reference=True)
    got = _outcome(message_type, data, reference=False)
    if expected == ("crash",):
        assert got[:2] == ("error", Invalid.code), got
    else:
        assert got == expected, (document, expected, got)
    return got


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*at, index))
    return found


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


@st.composite
def _mutated(draw: st.DrawFn, message_type: str) -> dict[str, Any]:
    document = copy.deepcopy(BASES[message_type])
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = draw(st.sampled_from(_paths(document)))
        if not path:
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        operation = draw(st.sampled_from(["replace", "null", "delete", "rename", "both", "extra", "repeat"]))
        if operation == "replace":
            parent[last] = draw(JUNK)
        elif operation == "null":
            parent[last] = None
        elif operation == "delete":
            del parent[last]
        elif operation == "rename" and isinstance(last, str):
            parent[_snake(last)] = parent.pop(last)
        elif operation == "both" and isinstance(last, str) and _snake(last) != last:
            parent[_snake(last)] = draw(st.one_of(JUNK, st.just(copy.deepcopy(parent[last]))))
        elif operation == "extra" and isinstance(parent[last], dict):
            parent[last][draw(st.sampled_from(["unknown", "Name", "x" * 50]))] = 1
        elif operation == "repeat" and isinstance(parent[last], list):
            parent[last] = parent[last] * draw(st.sampled_from([0, 2, 1001]))
    return document


def test_the_sampled_types_take_the_one_pass_walk() -> None:
    # A new type without a sample here is still compared on random documents; add its sample to BASES.
    assert len(SAMPLED) >= 11
    for message_type in SAMPLED:
        assert jsontables.table_for(MESSAGE_TYPES[message_type].message.DESCRIPTOR).fast, message_type


@pytest.mark.parametrize("message_type", SAMPLED)
def test_the_samples_give_the_same_summary(message_type: str) -> None:
    assert assert_same(message_type, BASES[message_type])[0] == "ok"


@pytest.mark.parametrize("message_type", SAMPLED)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_samples_agree(message_type: str, data: st.DataObject) -> None:
    assert_same(message_type, data.draw(_mutated(message_type)))


@pytest.mark.parametrize("message_type", TYPES)
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_documents_agree(message_type: str, data: st.DataObject) -> None:
    descriptor = MESSAGE_TYPES[message_type].message.DESCRIPTOR
    assert_same(message_type, data.draw(_document(descriptor)))


@pytest.mark.parametrize(
    "change",
    [
        {"estimatedArrival": "2026-12-20T06:00:00.5+02:00"},
        {"estimatedArrival": "2026-13-20T06:00:00Z"},
        {"vessel": {"name": "A"}, "vessel_": None},
        {"port_of_loading": "DEHAM"},
        {"consignments": [{"goods_items": [{"gross_mass_kg": "NaN"}]}]},
        {"consignments": [{"goodsItems": [{"packages": {"count": "1e3"}}]}]},
        {"consignments": [{"goodsItems": [{"packages": {"count": "1e30"}}]}]},
        {"consignments": [{"goodsItems": [{"packages": {"count": 1e400}}]}]},
        {"consignments": [{"consignor": {"role": 1e400}}]},
        {"consignments": [{"consignor": {"role": "2.5"}}]},
        {"consignments": [{"consignor": {"role": 2**40}}]},
    ],
)
def test_edge_cases_agree(change: dict[str, Any]) -> None:
    document = samples.cargo_manifest()
    change = {key: value for key, value in change.items() if not key.endswith("_")}
    document.update(change)
    assert_same("manifest.cargo.v1", document)


def test_the_same_field_under_both_names_merges_like_parse_dict() -> None:
    document = samples.cargo_manifest()
    document["vessel"] = {"name": "COSCO EXAMPLE"}
    document["vessel"] = {"name": "COSCO EXAMPLE", "imo": "9811000"}
    document["portOfLoading"] = "XXAAA"
    document["port_of_loading"] = "CNYTN"  # the later key wins, as in ParseDict
    assert assert_same("manifest.cargo.v1", document)[0] == "ok"


# -- field paths as the sender wrote them (gateway.core.payloads) ---------------------------------------------


def _snake_keys(value: Any) -> Any:
    """The same document with every key under its proto name (the other spelling proto3 JSON takes)."""
    if isinstance(value, dict):
        return {_snake(key): _snake_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_snake_keys(item) for item in value]
    return value


def _changed(message_type: str, change: Any) -> dict[str, Any]:
    document = copy.deepcopy(BASES[message_type])
    change(document)
    return document


def _goods(document: dict[str, Any]) -> dict[str, Any]:
    goods: dict[str, Any] = document["consignments"][0]["goodsItems"][0]
    return goods


# (message type, change, the path as a camelCase document names it): pass-1 shape errors, ParseDict
# conversions, the rules of pass 2 (identifiers, required, measures, list bounds) and the message hooks.
SPELLING_CASES = [
    (
        "manifest.cargo.v1",
        lambda d: _goods(d)["containerNumbers"].append("CSQU3054384"),
        "payload.consignments[0].goodsItems[0].containerNumbers[1]",
    ),
    ("manifest.cargo.v1", lambda d: d.update(portOfDischarge="NLRT1"), "payload.portOfDischarge"),
    ("manifest.cargo.v1", lambda d: d.update(voyageNumber=42), "payload.voyageNumber"),
    ("manifest.cargo.v1", lambda d: d.update(estimatedArrival="2026-04-10 12:00"), "payload.estimatedArrival"),
    (
        "manifest.cargo.v1",
        lambda d: _goods(d).update(grossMassKg=-1),
        "payload.consignments[0].goodsItems[0].grossMassKg",
    ),
    (
        "manifest.cargo.v1",
        lambda d: _goods(d)["packages"].update(count="1.5"),
        "payload.consignments[0].goodsItems[0].packages.count",
    ),
    ("manifest.cargo.v1", lambda d: _goods(d).update(hsCode=850440), "payload.consignments[0].goodsItems[0].hsCode"),
    (
        "manifest.cargo.v1",
        lambda d: _goods(d).update(containerNumbers=["MSKU9070323"] * 1001),
        "payload.consignments[0].goodsItems[0].containerNumbers",
    ),
    (
        "manifest.cargo.v1",
        lambda d: d["consignments"][0]["consignee"]["identifiers"][0].update(value="US123"),
        "payload.consignments[0].consignee.identifiers[0].value",
    ),
    (
        "prearrival.ens.v1",
        lambda d: d["houseConsignments"].append(copy.deepcopy(d["houseConsignments"][0])),
        "payload.houseConsignments[1].transportDocumentNumber",
    ),
    ("intel.recall.v1", lambda d: d.update(originalSender="nl-douane"), "payload.originalSender"),
]


def _field(message_type: str, data: bytes, media: str = "application/json", *, reference: bool = False) -> str | None:
    with pytest.raises(GatewayError) as caught:
        validate_payload(message_type, media, data, reference=reference)
    return caught.value.field


@pytest.mark.parametrize(("message_type", "change", "camel"), SPELLING_CASES)
def test_field_paths_name_each_field_as_the_sender_wrote_it(message_type: str, change: Any, camel: str) -> None:
    document = _changed(message_type, change)
    snake = re.sub(r"(?<=\.)[a-zA-Z0-9]+", lambda m: _snake(m.group()), camel)
    for spelled, expected in ((document, camel), (_snake_keys(document), snake)):
        data = json.dumps(spelled).encode()
        assert _field(message_type, data) == expected
        assert _field(message_type, data, reference=True) == expected  # the reference path agrees


def test_a_mixed_spelling_is_reported_key_by_key() -> None:
    document = copy.deepcopy(BASES["manifest.cargo.v1"])
    consignment = document["consignments"][0]
    consignment["goods_items"] = consignment.pop("goodsItems")  # snake here, camel below
    consignment["goods_items"][0]["containerNumbers"].append("CSQU3054384")
    data = json.dumps(document).encode()
    expected = "payload.consignments[0].goods_items[0].containerNumbers[1]"
    assert _field("manifest.cargo.v1", data) == _field("manifest.cargo.v1", data, reference=True) == expected


def test_binary_and_absent_fields_use_json_names_and_unknown_keys_are_echoed_as_sent() -> None:
    document = _changed("manifest.cargo.v1", lambda d: _goods(d)["containerNumbers"].append("CSQU3054384"))
    binary = json_format.ParseDict(document, MESSAGE_TYPES["manifest.cargo.v1"].message()).SerializeToString()
    expected = "payload.consignments[0].goodsItems[0].containerNumbers[1]"
    assert _field("manifest.cargo.v1", binary, "application/protobuf") == expected
    snake = _snake_keys(BASES["manifest.cargo.v1"])
    del snake["port_of_loading"]
    assert _field("manifest.cargo.v1", json.dumps(snake).encode()) == "payload.portOfLoading"  # required, absent
    snake = _snake_keys(BASES["manifest.cargo.v1"])
    snake["consignments"][0]["goods_items"][0]["gross_mass"] = 1
    unknown = "payload.consignments[0].goods_items[0].gross_mass"
    assert _field("manifest.cargo.v1", json.dumps(snake).encode()) == unknown


# -- the cheaper bounds before parsing -----------------------------------------------------------------------

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def _regex_depth(data: bytes) -> int:
    """The previous json_depth (regex string removal, then a bracket scan): the oracle."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub(b"", data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                break
        else:
            depth -= 1
    return deepest


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a", b",", b":", b'"["']), max_size=60))
def test_json_depth_matches_the_regex_scan(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert json_depth(data) == _regex_depth(data)


def test_json_depth_on_the_samples() -> None:
    for document in BASES.values():
        data = json.dumps(document).encode()
        assert json_depth(data) == _regex_depth(data)


def test_a_message_view_reads_fields_as_properties_and_the_rest_from_the_generated_class() -> None:
    table = jsontables.table_for(common_pb2.Party.DESCRIPTOR)
    view = jsonwalk.MessageView(table, {"role": 2, "identifiers": [{"scheme": 1, "value": "NL123"}]})
    assert all(isinstance(type(view).__dict__.get(spec.name), property) for spec in table.fields)
    assert type(jsonwalk.MessageView(table, {})) is type(view)  # one view class per message type
    assert view.role == 2
    [identifier] = view.identifiers
    assert (identifier.scheme, identifier.value) == (1, "NL123")
    assert view.name == ""  # absent: the default
    assert view.address.country == ""  # an absent message reads as an empty view
    assert view.Role.Name(view.role) == common_pb2.Party.Role.Name(2)  # not a field: the generated class's
    with pytest.raises(AttributeError):
        _ = view.no_such_field
