"""Payload validation: proto3 JSON schema, bounds, identifiers with field paths, and the frozen summary.

The valid manifest mirrors ../shared/fixtures/cuscar_d95b_synthetic_valid.edi (Yantian CNYTN -> Rotterdam NLRTM,
IMO 9811000, containers MSKU9070323, TGHU1234567, CSQU3054383 (empty), two bills of lading, a Chinese shipper
USCC, one dangerous-goods item UN 1263).
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import jsondecode, limits
from gateway.core.errors import (
    GatewayError,
    IdentifierInvalid,
    Invalid,
    LimitExceeded,
    UnsupportedMediaType,
)
from gateway.core.payloads import MESSAGE_TYPES, PortRef, TraderId, validate_payload
from gateway.wire.cgw.v1 import manifest_pb2, release_pb2
from tests.shareddata import shared_path


def _party(role: str, name: str, country: str, *ids: tuple[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "role": role,
        "identifiers": [{"scheme": scheme, "value": value} for scheme, value in ids],
        "address": {"lines": [f"{name} STREET 1"], "city": "SOMEWHERE", "country": country},
    }


def manifest() -> dict[str, Any]:
    consignee = _party("CONSIGNEE", "EXAMPLE IMPORT BV", "NL", ("EORI", "NL000000001"))
    return {
        "manifestNumber": "MANIF20260315001",
        "vessel": {"name": "EXAMPLE VOYAGER", "imo": "9811000", "flag": "LR"},
        "voyageNumber": "026W",
        "portOfLoading": "CNYTN",
        "portOfDischarge": "NLRTM",
        "estimatedDeparture": "2026-03-16T18:00:00Z",
        "estimatedArrival": "2026-04-10T12:00:00Z",
        "consignments": [
            {
                "transportDocumentNumber": "EXMPYTN260001",
                "consignor": _party(
                    "CONSIGNOR",
                    "SHENZHEN EXAMPLE ELECTRONICS CO LTD",
                    "CN",
                    ("USCC", "91440300MA5G3K2X40"),
                ),
                "consignee": consignee,
                "notifyParties": [{**consignee, "role": "NOTIFY"}],
                "portOfLoading": "CNYTN",
                "portOfDischarge": "NLRTM",
                "goodsItems": [
                    {
                        "sequence": 1,
                        "hsCode": "854442",
                        "description": "MOBILE PHONE ACCESSORIES, CHARGERS AND CABLES",
                        "packages": {"count": 1200, "typeCode": "CT"},
                        "grossMassKg": 16450,
                        "containerNumbers": ["MSKU9070323"],
                    }
                ],
                "containers": [
                    {"number": "MSKU9070323", "seals": ["EX1234567"], "sizeType": "22G1"},
                    {"number": "CSQU3054383", "sizeType": "22G1", "empty": True},
                ],
            },
            {
                "transportDocumentNumber": "EXMPYTN260002",
                "consignor": _party("CONSIGNOR", "GUANGDONG EXAMPLE COATINGS CO LTD", "CN"),
                "consignee": _party("CONSIGNEE", "BEISPIEL FARBEN GMBH", "DE", ("EORI", "DE000000000000001")),
                "goodsItems": [
                    {
                        "sequence": 1,
                        "hsCode": "3208.10",
                        "description": "PAINT, FLAMMABLE LIQUID IN DRUMS ON PALLETS",
                        "packages": {"count": 80, "typeCode": "PX"},
                        "grossMassKg": 17600.0,
                        "unNumber": "1263",
                        "containerNumbers": ["TGHU1234567"],
                    }
                ],
                "containers": [{"number": "TGHU1234567", "seals": ["EX1234568"], "sizeType": "45G1"}],
            },
        ],
    }


def release() -> dict[str, Any]:
    return {
        "transportDocumentNumber": "EXMPYTN260001",
        "containerNumbers": ["MSKU9070323"],
        "decision": "HOLD",
        "version": "2",
        "port": "NLRTM",
        "reason": "documentary check",
        "effectiveTime": "2026-04-10T13:00:00Z",
    }


def ens() -> dict[str, Any]:
    m = manifest()
    house = m["consignments"][1]
    return {
        "filingType": "F10",
        "reference": "LRN-2026-0001",
        "declarant": _party("DECLARANT", "EXAMPLE LINES", "NL", ("EORI", "NL000000002")),
        "carrier": _party("CARRIER", "EXAMPLE LINES", "NL", ("EORI", "NL000000002")),
        "vessel": m["vessel"],
        "transportDocumentNumber": "EXMPMASTER01",
        "portOfLoading": "CNSHA",
        "portOfFirstEntry": "NLRTM",
        "estimatedArrival": "2026-04-10T12:00:00Z",
        "containers": house["containers"],
        "houseConsignments": [
            {
                "transportDocumentNumber": "EXMPHOUSE01",
                "consignor": house["consignor"],
                "consignee": house["consignee"],
                "buyer": {**house["consignee"], "role": "BUYER"},
                "seller": {**house["consignor"], "role": "SELLER"},
                "goodsItems": house["goodsItems"],
                "placeOfDelivery": "DEDUI",
            }
        ],
    }


def _json(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _fails(doc: Any, error: type[GatewayError], field: str, message_type: str = "manifest.cargo.v1") -> GatewayError:
    data = doc if isinstance(doc, bytes) else _json(doc)
    with pytest.raises(error) as caught:
        validate_payload(message_type, "application/json", data)
    assert caught.value.field == field, caught.value.diagnostics()
    return caught.value


# -- valid payloads and the summary -----------------------------------------------------------------------


def test_valid_manifest_summary() -> None:
    result = validate_payload("manifest.cargo.v1", "application/json", _json(manifest()))
    assert result.type == "manifest.cargo.v1"
    assert result.schema == "cgw.v1.CargoManifest"
    assert result.transport_documents == ("EXMPYTN260001", "EXMPYTN260002")
    assert result.containers == ("MSKU9070323", "CSQU3054383", "TGHU1234567")
    assert result.vessels == ("9811000",)
    assert result.hs_codes == ("854442", "320810")
    assert result.dangerous_goods == ("1263",)
    assert PortRef("port_of_loading", "CNYTN", "CNYTN") in result.ports
    assert PortRef("port_of_discharge", "NLRTM", "NLRTM") in result.ports
    assert len(result.ports) == 2  # the consignment-level ports repeat the manifest's and are de-duplicated
    roles = [p.role for p in result.parties]
    assert roles == ["CONSIGNOR", "CONSIGNEE", "NOTIFY", "CONSIGNOR", "CONSIGNEE"]
    assert result.parties[0].identifiers == (TraderId("USCC", "91440300MA5G3K2X40"),)
    assert result.parties[0].path == "payload.consignments[0].consignor"
    assert result.parties[4].country == "DE"
    assert result.notes == ()


def test_proto_field_names_are_accepted_as_well_as_json_names() -> None:
    doc = manifest()
    doc["manifest_number"] = doc.pop("manifestNumber")
    assert validate_payload("manifest.cargo.v1", "application/json", _json(doc)).vessels == ("9811000",)


def test_release_notice_facts() -> None:
    result = validate_payload("release.notice.v1", "application/json; charset=utf-8", _json(release()))
    assert result.fact("decision") == "HOLD"
    assert result.fact("version") == "2"
    assert result.containers == ("MSKU9070323",)
    assert result.ports == (PortRef("port", "NLRTM", "NLRTM"),)


def test_ens_resolves_legacy_port_alias_with_a_note() -> None:
    result = validate_payload("prearrival.ens.v1", "application/json", _json(ens()))
    assert PortRef("port_of_loading", "CNSHG", "CNSHA") in result.ports
    assert PortRef("place_of_delivery", "DEDUI", "DEDUI") in result.ports
    assert len(result.notes) == 1
    assert result.notes[0].startswith("payload.port_of_loading: legacy port code CNSHA read as CNSHG")
    assert result.fact("filing_type") == "F10"
    assert {p.role for p in result.parties} >= {"DECLARANT", "CARRIER", "BUYER", "SELLER"}


def test_binary_protobuf_is_accepted() -> None:
    message = release_pb2.ReleaseNotice(
        transport_document_number="EXMPYTN260001",
        decision=release_pb2.ReleaseNotice.RELEASED,
        version=1,
        port="NLRTM",
    )
    message.effective_time.FromJsonString("2026-04-10T13:00:00Z")
    result = validate_payload("release.notice.v1", "application/x-protobuf", message.SerializeToString())
    assert result.fact("decision") == "RELEASED"
    assert result.media == "application/protobuf"


def test_binary_protobuf_with_unknown_field_is_refused() -> None:
    message = release_pb2.ReleaseNotice(transport_document_number="EXMPYTN260001", decision=1, version=1, port="NLRTM")
    message.effective_time.FromJsonString("2026-04-10T13:00:00Z")
    data = message.SerializeToString() + b"\xf8\x06\x01"  # field 111, varint 1: not in the schema
    with pytest.raises(Invalid) as caught:
        validate_payload("release.notice.v1", "application/protobuf", data)
    assert caught.value.field == "payload"


# -- the registry -----------------------------------------------------------------------------------------


def test_registry_rows_are_consistent() -> None:
    assert set(MESSAGE_TYPES) == {
        "manifest.cargo.v1",
        "prearrival.ens.v1",
        "release.notice.v1",
        "aeo.status.v1",
        "sstl.security-data.v1",
        "sstl.control-result.v1",
        "csi.examination-request.v1",
        "csi.examination-result.v1",
        "megaport.rpm-alarm.v1",
        "megaport.adjudication.v1",
        "intel.recall.v1",
        "port.gate-out.v1",
        "alert.gate-out.v1",
        "port.stream.v1",
    }
    for name, spec in MESSAGE_TYPES.items():
        assert spec.type == name
        assert spec.schema == spec.proto_name == spec.message.DESCRIPTOR.full_name
        assert "application/json" in spec.media
    assert MESSAGE_TYPES["manifest.cargo.v1"].message is manifest_pb2.CargoManifest


def test_unknown_message_type() -> None:
    with pytest.raises(Invalid) as caught:
        validate_payload("nope.v1", "application/json", b"{}")
    assert caught.value.code == "SCHEMA_INVALID"
    assert caught.value.field == "type"


def test_schema_claim_must_match() -> None:
    with pytest.raises(Invalid) as caught:
        validate_payload("manifest.cargo.v1", "application/json", b"{}", schema="cgw.v1.ReleaseNotice")
    assert caught.value.field == "payload.schema"


@pytest.mark.parametrize("media", ["application/xml", "text/plain", "application/json; charset=latin-1"])
def test_unsupported_media(media: str) -> None:
    with pytest.raises(UnsupportedMediaType):
        validate_payload("manifest.cargo.v1", media, _json(manifest()))


# -- schema violations with field paths -------------------------------------------------------------------


def test_unknown_field_deep_in_a_list() -> None:
    doc = manifest()
    doc["consignments"][1]["containers"][0]["colour"] = "blue"
    error = _fails(doc, Invalid, "payload.consignments[1].containers[0].colour")
    assert error.code == "SCHEMA_INVALID"
    assert "unknown field" in error.detail


def test_wrong_type() -> None:
    doc = manifest()
    doc["vessel"]["imo"] = 9811000
    error = _fails(doc, Invalid, "payload.vessel.imo")
    assert error.code == "SCHEMA_INVALID"


def test_list_expected() -> None:
    doc = manifest()
    doc["consignments"][0]["containers"] = {"number": "MSKU9070323"}
    _fails(doc, Invalid, "payload.consignments[0].containers")


def test_bad_enum_name_is_reported_with_its_path() -> None:
    doc = manifest()
    doc["consignments"][0]["consignor"]["role"] = "SMUGGLER"
    _fails(doc, Invalid, "payload.consignments[0].consignor.role")


def test_unknown_enum_number_is_refused() -> None:
    doc = manifest()
    doc["consignments"][0]["consignor"]["role"] = 42
    _fails(doc, Invalid, "payload.consignments[0].consignor.role")


def test_bad_timestamp() -> None:
    doc = manifest()
    doc["estimatedArrival"] = "2026-04-10 12:00"
    _fails(doc, Invalid, "payload.estimatedArrival")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("vessel"), "payload.vessel"),
        (lambda d: d.pop("estimatedArrival"), "payload.estimatedArrival"),
        (lambda d: d.update(consignments=[]), "payload.consignments"),
        (
            lambda d: d["consignments"][0]["consignor"].update(role="ROLE_UNSPECIFIED"),
            "payload.consignments[0].consignor.role",
        ),
        (
            lambda d: d["consignments"][1]["goodsItems"][0].update(description=""),
            "payload.consignments[1].goodsItems[0].description",
        ),
        (
            lambda d: d["consignments"][1]["goodsItems"][0]["packages"].update(count=0),
            "payload.consignments[1].goodsItems[0].packages.count",
        ),
    ],
)
def test_required_fields(mutate: Any, field: str) -> None:
    doc = manifest()
    mutate(doc)
    _fails(doc, Invalid, field)


def test_negative_mass_and_nan_are_refused() -> None:
    doc = manifest()
    doc["consignments"][0]["goodsItems"][0]["grossMassKg"] = -1
    _fails(doc, Invalid, "payload.consignments[0].goodsItems[0].grossMassKg")
    doc["consignments"][0]["goodsItems"][0]["grossMassKg"] = "NaN"
    _fails(doc, Invalid, "payload.consignments[0].goodsItems[0].grossMassKg")


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["consignments"][0]["goodsItems"][0]["packages"].update(count=-1), "packages.count"),
        (lambda d: d["consignments"][0]["goodsItems"][0]["packages"].update(count=2**32), "packages.count"),
        (lambda d: d["consignments"][0]["goodsItems"][0]["packages"].update(count="-5"), "packages.count"),
        (lambda d: d["consignments"][0]["goodsItems"][0].update(sequence=1.5), "sequence"),
    ],
)
def test_integer_range_and_kind(mutate: Any, field: str) -> None:
    doc = manifest()
    mutate(doc)
    _fails(doc, Invalid, f"payload.consignments[0].goodsItems[0].{field}")


def test_text_longer_than_its_bound() -> None:
    doc = manifest()
    doc["consignments"][0]["containers"][0]["sizeType"] = "22G1X"
    _fails(doc, Invalid, "payload.consignments[0].containers[0].sizeType")


def test_release_needs_a_document_or_a_container() -> None:
    doc = release()
    del doc["transportDocumentNumber"], doc["containerNumbers"]
    _fails(doc, Invalid, "payload", "release.notice.v1")


def test_ens_house_documents_must_be_unique() -> None:
    doc = ens()
    doc["houseConsignments"].append(copy.deepcopy(doc["houseConsignments"][0]))
    _fails(doc, Invalid, "payload.houseConsignments[1].transportDocumentNumber", "prearrival.ens.v1")


# -- identifiers with field paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field", "detail"),
    [
        (
            lambda d: d["consignments"][1]["containers"][0].update(number="MSKU9070324"),
            "payload.consignments[1].containers[0].number",
            "ISO 6346 check digit: expected 3, got 4",
        ),
        (
            lambda d: d["consignments"][1]["goodsItems"][0]["containerNumbers"].append("CSQU3054384"),
            "payload.consignments[1].goodsItems[0].containerNumbers[1]",
            "ISO 6346 check digit",
        ),
        (lambda d: d["vessel"].update(imo="9811001"), "payload.vessel.imo", "IMO check digit: expected 0"),
        (lambda d: d.update(portOfDischarge="NLRT1"), "payload.portOfDischarge", "UN/LOCODE"),
        (lambda d: d.update(nextPort="CNPEK"), "payload.nextPort", None),
        (
            lambda d: d["consignments"][0]["goodsItems"][0].update(hsCode="770000"),
            "payload.consignments[0].goodsItems[0].hsCode",
            "chapter 77",
        ),
        (
            lambda d: d["consignments"][0]["consignor"]["identifiers"][0].update(value="91440300MA5G3K2X41"),
            "payload.consignments[0].consignor.identifiers[0].value",
            "USCC check character",
        ),
        (
            lambda d: d["consignments"][0]["consignee"]["identifiers"][0].update(value="US123"),
            "payload.consignments[0].consignee.identifiers[0].value",
            "EORI",
        ),
        (
            lambda d: d["consignments"][0]["consignee"]["address"].update(country="XX"),
            "payload.consignments[0].consignee.address.country",
            "ISO 3166",
        ),
        (
            lambda d: d["consignments"][1]["goodsItems"][0].update(unNumber="UN12"),
            "payload.consignments[1].goodsItems[0].unNumber",
            "UN number",
        ),
    ],
)
def test_identifier_errors_carry_their_path(mutate: Any, field: str, detail: str | None) -> None:
    doc = manifest()
    mutate(doc)
    if field == "payload.nextPort":  # CNPEK is not in the snapshot: accepted on shape, not an error
        assert validate_payload("manifest.cargo.v1", "application/json", _json(doc))
        return
    error = _fails(doc, IdentifierInvalid, field)
    assert error.code == "IDENTIFIER_INVALID"
    assert detail is None or detail in error.detail


def test_airport_code_where_a_port_is_expected() -> None:
    doc = release()
    doc["port"] = "USLAX"  # a port: fine
    validate_payload("release.notice.v1", "application/json", _json(doc))
    doc["port"] = "PLMAA"  # rail and road border crossing, no port function
    error = _fails(doc, IdentifierInvalid, "payload.port", "release.notice.v1")
    assert "lacks function 1" in error.detail


# -- hostile JSON -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (b'{"manifestNumber": "A", "manifestNumber": "B"}', "payload"),
        (b'{"vessel": {"name": "A", "name": "B"}}', "payload.vessel"),
        (b'{"voyageNumber": NaN}', "payload"),
        (b"\xff\xfe{}", "payload"),
        (b"[]", "payload"),
        (b"{", "payload"),
        (b'{"consignments": [null]}', "payload.consignments[0]"),
    ],
)
def test_malformed_json(data: bytes, field: str) -> None:
    error = _fails(data, Invalid, field)
    assert error.code == "SCHEMA_INVALID"


def test_duplicate_key_is_named() -> None:
    error = _fails(b'{"manifestNumber": "A", "manifestNumber": "B"}', Invalid, "payload")
    assert "duplicate JSON key 'manifestNumber'" in error.detail


def test_depth_is_bounded_before_parsing() -> None:
    deep = b'{"vessel":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    error = _fails(deep, LimitExceeded, "payload")
    assert error.code == "LIMIT_EXCEEDED"


def test_brackets_inside_strings_do_not_count_as_depth() -> None:
    doc = manifest()
    doc["consignments"][0]["goodsItems"][0]["description"] = '[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{ \\" ]'
    validate_payload("manifest.cargo.v1", "application/json", _json(doc))
    assert jsondecode.json_depth(b'{"a": "[[[[\\"[[[["}') == 1


def test_size_is_bounded_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _json(manifest())
    monkeypatch.setattr(limits, "MAX_PAYLOAD_BYTES", len(data) - 1)
    _fails(data, LimitExceeded, "payload")


def test_list_length_is_bounded() -> None:
    doc = manifest()
    doc["consignments"][0]["notifyParties"] *= 5  # max_items 4
    error = _fails(doc, LimitExceeded, "payload.consignments[0].notifyParties")
    assert "at most 4" in error.detail


# -- properties -------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=12), kids, max_size=3),
        max_leaves=12,
    )
)
def test_arbitrary_json_never_escapes_the_error_tree(doc: Any) -> None:
    with contextlib.suppress(GatewayError):
        validate_payload("manifest.cargo.v1", "application/json", _json(doc))


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(["vessel", "consignments", "estimatedArrival", "portOfLoading", "voyageNumber"]),
    st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), max_size=2), st.text(max_size=5)),
)
def test_type_confusion_is_reported_at_the_field(key: str, value: Any) -> None:
    doc = manifest()
    doc[key] = value
    error: Invalid | None = None
    try:
        validate_payload("manifest.cargo.v1", "application/json", _json(doc))
    except Invalid as caught:
        error = caught
    assert error is None or (error.field or "").startswith(f"payload.{key}")  # the key as sent


# -- the shared CUSCAR fixture ----------------------------------------------------------------------------


@pytest.mark.shared
def test_json_fixture_matches_the_cuscar_fixture() -> None:
    edi = shared_path("fixtures/cuscar_d95b_synthetic_valid.edi")
    text = edi.read_text(encoding="utf-8")
    result = validate_payload("manifest.cargo.v1", "application/json", _json(manifest()))
    assert set(re.findall(r"EQD\+CN\+(\w+)", text)) == set(result.containers)
    assert re.findall(r"TDT\+[^']*?(\d{7}):146", text) == list(result.vessels)
    assert set(re.findall(r"RFF\+BM:(\w+)", text)) == set(result.transport_documents)
    assert set(re.findall(r"LOC\+\d+\+(\w{5}):139", text)) == {p.code for p in result.ports}
    assert re.findall(r"DGS\+IMD\+[\d.]+\+(\d{4})", text) == list(result.dangerous_goods)
    uscc = re.findall(r"NAD\+CZ\+(\w{18})", text)
    assert [TraderId("USCC", uscc[0])] == [i for p in result.parties for i in p.identifiers if i.scheme == "USCC"]
