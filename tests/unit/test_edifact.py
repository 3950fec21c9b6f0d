"""EDIFACT CUSCAR: the shared fixture is accepted; broken variants are refused with the segment and the rule named.

Every variant is applied to two interchanges: ../shared/fixtures/cuscar_d95b_synthetic_valid.edi (skipped when
../shared is absent) and one written by ``to_cuscar`` from a manifest built here (always available).
"""

from __future__ import annotations

import calendar
import contextlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.edifact import EdifactTranslator, parse_interchange, read_cuscar, to_cuscar
from adapters.edifact.cuscar import IdentifierErrors
from adapters.edifact.cusres import APPLICATION_ERRORS, UNLISTED_ERROR, application_error, build_cusres
from adapters.edifact.syntax import MAX_INTERCHANGE_BYTES, calendar_value, interchange_header
from gateway.core.errors import (
    EdifactInvalid,
    Forbidden,
    GatewayError,
    IdentifierInvalid,
    LimitExceeded,
    UnsupportedMediaType,
    all_error_classes,
)
from gateway.core.payloads import validate_payload
from tests.shareddata import shared_path
from tests.unit.test_payloads import ens

SHARED_FIXTURE = "fixtures/cuscar_d95b_synthetic_valid.edi"
PREPARED = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)


def manifest() -> dict[str, Any]:
    """The shared fixture's content as a manifest (with HS codes, which CUSCAR carries in CST)."""
    consignee = {
        "name": "EXAMPLE IMPORT BV",
        "role": "CONSIGNEE",
        "identifiers": [{"scheme": "EORI", "value": "NL000000001"}],
        "address": {"lines": ["EXAMPLESTRAAT 1"], "city": "ROTTERDAM", "postalCode": "3011AA", "country": "NL"},
    }
    return {
        "manifestNumber": "MANIF20260315001",
        "voyageNumber": "026W",
        "vessel": {"imo": "9811000", "name": "EXAMPLE VOYAGER", "flag": "LR"},
        "portOfLoading": "CNYTN",
        "portOfDischarge": "NLRTM",
        "estimatedDeparture": "2026-03-16T18:00:00Z",
        "estimatedArrival": "2026-04-10T12:00:00Z",
        "consignments": [
            {
                "transportDocumentNumber": "EXMPYTN260001",
                "portOfLoading": "CNYTN",
                "portOfDischarge": "NLRTM",
                "consignor": {
                    "name": "SHENZHEN EXAMPLE ELECTRONICS CO LTD",
                    "role": "CONSIGNOR",
                    "identifiers": [{"scheme": "USCC", "value": "91440300MA5G3K2X40"}],
                    "address": {"lines": ["NO 1 EXAMPLE ROAD NANSHAN"], "city": "SHENZHEN", "country": "CN"},
                },
                "consignee": consignee,
                "notifyParties": [{**consignee, "role": "NOTIFY"}],
                "goodsItems": [
                    {
                        "sequence": 1,
                        "hsCode": "854442",
                        "description": "MOBILE PHONE ACCESSORIES, CHARGERS AND CABLES",
                        "packages": {"count": 1200, "typeCode": "CT"},
                        "grossMassKg": 16450.0,
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
                "consignor": {
                    "name": "GUANGDONG EXAMPLE COATINGS CO LTD",
                    "role": "CONSIGNOR",
                    "address": {"country": "CN"},
                },
                "consignee": {
                    "name": "BEISPIEL FARBEN GMBH",
                    "role": "CONSIGNEE",
                    "identifiers": [{"scheme": "EORI", "value": "DE000000000000001"}],
                    "address": {"country": "DE"},
                },
                "goodsItems": [
                    {
                        "sequence": 1,
                        "hsCode": "320810",
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


def written() -> str:
    data = to_cuscar(
        manifest(), sender="EXMP", recipient="NLCUSTOMS", control_reference="CTRL0000001", prepared=PREPARED
    )
    return data.decode("latin-1")


def written_with_pia() -> str:
    data = to_cuscar(
        manifest(),
        sender="EXMP",
        recipient="NLCUSTOMS",
        control_reference="CTRL0000001",
        prepared=PREPARED,
        hs_extension=True,
    )
    return data.decode("latin-1")


@pytest.fixture(params=["shared", "written"])
def interchange(request: pytest.FixtureRequest) -> str:
    if request.param == "written":
        return written()
    return shared_path(SHARED_FIXTURE).read_text(encoding="latin-1")


def _sub(pattern: str, replacement: str) -> Callable[[str], str]:
    def mutate(text: str) -> str:
        changed, count = re.subn(pattern, replacement, text, count=1)
        assert count == 1, pattern
        return changed

    return mutate


def _recount(mutate: Callable[[str], str]) -> Callable[[str], str]:
    """Apply ``mutate``, then correct UNT's segment count, so only the structural rule can fail."""

    def recounted(text: str) -> str:
        changed = mutate(text)
        body = changed[changed.index("UNH+") : changed.index("UNT+")]
        count = len(re.findall(r"(?<!\?)'", body)) + 1
        return re.sub(r"UNT\+\d+\+", f"UNT+{count}+", changed, count=1)

    return recounted


# -- the valid interchanges ---------------------------------------------------------------------------------


def test_valid_interchange_converts_to_a_valid_manifest(interchange: str) -> None:
    parsed, document = read_cuscar(interchange.encode("latin-1"))
    assert parsed.control_reference == "CTRL0000001"
    result = validate_payload("manifest.cargo.v1", "application/json", json.dumps(document).encode())
    assert set(result.containers) == {"MSKU9070323", "TGHU1234567", "CSQU3054383"}
    assert result.vessels == ("9811000",)
    assert result.transport_documents == ("EXMPYTN260001", "EXMPYTN260002")
    assert result.dangerous_goods == ("1263",)
    assert {p.code for p in result.ports} == {"CNYTN", "NLRTM"}
    assert [i.value for p in result.parties for i in p.identifiers if i.scheme == "USCC"] == ["91440300MA5G3K2X40"]
    empty = [c for c in document["consignments"][0]["containers"] if c.get("empty")]
    assert [c["number"] for c in empty] == ["CSQU3054383"]


def test_written_interchange_reads_back_as_the_manifest() -> None:
    _, document = read_cuscar(written().encode("latin-1"))
    assert document == manifest()


@pytest.mark.shared
def test_shared_fixture_facts() -> None:
    parsed = parse_interchange(shared_path(SHARED_FIXTURE).read_bytes())
    (message,) = parsed.messages
    assert (message.type, message.directory, message.reference, len(message.segments)) == (
        "CUSCAR",
        "D.95B",
        "MSG0001",
        49,
    )
    assert (parsed.syntax, parsed.sender, parsed.recipient) == ("UNOC", "EXMP", "NLCUSTOMS")


# -- broken variants: (name, mutation, error class, segment tag in the field, rule in the detail) -----------

VARIANTS: list[tuple[str, Callable[[str], str], type[GatewayError], str, str]] = [
    (
        "container check digit",
        _sub(r"EQD\+CN\+MSKU9070323", "EQD+CN+MSKU9070324"),
        IdentifierInvalid,
        "EQD",
        "EQD.8260",
    ),
    ("SGP check digit", _sub(r"SGP\+TGHU1234567", "SGP+TGHU1234568"), IdentifierInvalid, "SGP", "SGP.8260"),
    ("IMO check digit", _sub(r"9811000:146", "9811001:146"), IdentifierInvalid, "TDT", "TDT.8213"),
    ("UN/LOCODE", _sub(r"LOC\+60\+NLRTM", "LOC+60+XXRTM"), IdentifierInvalid, "LOC", "LOC.3225"),
    ("party identifier", _sub(r"NL000000001:", "NL00000000!:"), IdentifierInvalid, "NAD", "NAD.3039"),
    ("UNT count", _sub(r"UNT\+(\d+)\+", "UNT+77+"), EdifactInvalid, "UNT", "UNT.count"),
    ("UNT reference", _sub(r"UNT\+(\d+)\+\w+'", r"UNT+\1+OTHER'"), EdifactInvalid, "UNT", "UNT.reference"),
    ("UNZ count", _sub(r"UNZ\+1\+", "UNZ+2+"), EdifactInvalid, "UNZ", "UNZ.count"),
    ("UNZ reference", _sub(r"UNZ\+1\+CTRL0000001", "UNZ+1+CTRL0000002"), EdifactInvalid, "UNZ", "UNZ.reference"),
    ("truncated inside a segment", lambda t: t[: t.index("DGS+IMD") + 6], EdifactInvalid, "", "SYNTAX.truncated"),
    ("truncated at a segment end", lambda t: t[: t.index("UNT+")], EdifactInvalid, "UNZ", "UNZ.missing"),
    ("unknown directory", _sub(r"CUSCAR:D:95B:UN", "CUSCAR:D:01B:UN"), EdifactInvalid, "UNH", "UNH.directory"),
    ("not a CUSCAR", _sub(r"CUSCAR:D:95B:UN", "IFTMIN:D:95B:UN"), EdifactInvalid, "UNH", "UNH.type"),
    ("mandatory BGM missing", _recount(_sub(r"BGM\+[^']*'\s*", "")), EdifactInvalid, "", "STRUCTURE.mandatory"),
    ("no goods item", _recount(_sub(r"GID\+1\+80:PX'\s*", "")), EdifactInvalid, "", "STRUCTURE.mandatory"),
    (
        "segment out of order",
        _sub(r"(TDT\+[^']*'\s*)(LOC\+5\+[^']*'\s*)", r"\2\1"),
        EdifactInvalid,
        "LOC",
        "STRUCTURE.unexpected",
    ),
    (
        "repeated beyond maximum",
        _recount(_sub(r"(BGM\+[^']*'\s*)", r"\1\1")),
        EdifactInvalid,
        "BGM",
        "STRUCTURE.repeat",
    ),
    ("stray release character", _sub(r"EXAMPLE VOYAGER", "EXAMPLE ?VOYAGER"), EdifactInvalid, "TDT", "SYNTAX.release"),
    ("bad UNA", _sub(r"^UNA:\+\.\? '", "UNA:+.?+'"), EdifactInvalid, "UNA", "UNA.syntax"),
    ("bad UNB date", _sub(r"\+260315:0930\+|\+260315:0930\+", "+2603:0930+"), EdifactInvalid, "UNB", "UNB.datetime"),
    ("UNB month 13", _sub(r"\+260315:0930\+", "+261315:0930+"), EdifactInvalid, "UNB", "UNB.datetime"),
    ("UNB 30 February", _sub(r"\+260315:0930\+", "+260230:0930+"), EdifactInvalid, "UNB", "UNB.datetime"),
    ("UNB 29 February 2026", _sub(r"\+260315:0930\+", "+260229:0930+"), EdifactInvalid, "UNB", "UNB.datetime"),
    ("UNB hour 25", _sub(r"\+260315:0930\+", "+260315:2530+"), EdifactInvalid, "UNB", "UNB.datetime"),
    ("UNB minute 60", _sub(r"\+260315:0930\+", "+260315:0960+"), EdifactInvalid, "UNB", "UNB.datetime"),
    (
        "DTM 203 month 13",
        _sub(r"DTM\+133:202603161800:203", "DTM+133:202613161800:203"),
        EdifactInvalid,
        "DTM",
        "DTM.value",
    ),
    (
        "DTM 203 30 February",
        _sub(r"DTM\+133:202603161800:203", "DTM+133:202602301800:203"),
        EdifactInvalid,
        "DTM",
        "DTM.value",
    ),
    (
        "DTM 203 hour 25",
        _sub(r"DTM\+133:202603161800:203", "DTM+133:202603162500:203"),
        EdifactInvalid,
        "DTM",
        "DTM.value",
    ),
    (
        "DTM 203 unpadded",
        _sub(r"DTM\+133:202603161800:203", "DTM+133:2026316180:203"),
        EdifactInvalid,
        "DTM",
        "DTM.value",
    ),
    ("DTM 102 unpadded", _sub(r"DTM\+133:202603161800:203", "DTM+133:2026111:102"), EdifactInvalid, "DTM", "DTM.value"),
    (
        "DTM 204 second 60",
        _sub(r"DTM\+133:202603161800:203", "DTM+133:20260316180060:204"),
        EdifactInvalid,
        "DTM",
        "DTM.value",
    ),
]


@pytest.mark.parametrize(("name", "mutate", "error", "tag", "rule"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_broken_variant_is_refused_with_the_rule(
    interchange: str,
    name: str,
    mutate: Callable[[str], str],
    error: type[GatewayError],
    tag: str,
    rule: str,
) -> None:
    with pytest.raises(error) as caught:
        EdifactTranslator().translate(mutate(interchange).encode("latin-1"))
    assert caught.value.code == error.code, caught.value
    field = caught.value.field or ""
    assert re.fullmatch(r"segment\[\d+\]\.[A-Z]{0,3}", field), field
    assert field.endswith(f".{tag}") or not tag
    assert caught.value.detail.startswith(rule), caught.value.detail


def test_an_unmapped_dtm_is_a_real_date_too() -> None:
    """DTM 137 (document date) maps to no manifest field; its value is still checked (``adapters.edifact.cuscar``: every
    DTM)."""
    add_dtm = _recount(_sub(r"(BGM\+[^']*'\s*)", r"\1DTM+137:20260431:102'\n"))
    with pytest.raises(EdifactInvalid) as caught:
        read_cuscar(add_dtm(written()).encode("latin-1"))
    assert caught.value.detail.startswith("DTM.value") and (caught.value.field or "").endswith(".DTM")
    fine = _recount(_sub(r"(BGM\+[^']*'\s*)", r"\1DTM+137:20280229:102'\nDTM+7:2604:718'\n"))
    assert read_cuscar(fine(written()).encode("latin-1"))[1] == manifest()


def _real(layout: str, digits: str) -> bool:
    """The calendar written out (an oracle independent of strptime): two-digit fields at fixed offsets."""
    n = [int(digits[i : i + 2]) for i in range(0, len(digits), 2)]
    if layout == "HHMM":
        return n[0] <= 23 and n[1] <= 59
    if layout == "YYMMDD":
        year, rest = (2000 if n[0] < 69 else 1900) + n[0], n[1:]
    else:
        year, rest = n[0] * 100 + n[1], n[2:]
    month, day, *clock = rest
    in_day = all(value <= limit for value, limit in zip(clock, (23, 59, 59), strict=False))
    return year >= 1 and 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and in_day


LAYOUTS = ["YYMMDD", "CCYYMMDD", "HHMM", "CCYYMMDDHHMM", "CCYYMMDDHHMMSS"]


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(LAYOUTS).flatmap(
        lambda layout: st.tuples(st.just(layout), st.text("0123456789", min_size=len(layout), max_size=len(layout)))
    )
)
def test_calendar_value_accepts_exactly_the_real_dates_and_times(case: tuple[str, str]) -> None:
    layout, digits = case
    assert (calendar_value(digits, layout) is not None) == _real(layout, digits), case


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LAYOUTS), st.text("0123456789 -+", max_size=16))
def test_calendar_value_refuses_any_other_length_or_character(layout: str, value: str) -> None:
    if len(value) != len(layout) or not value.isdigit():
        assert calendar_value(value, layout) is None


@settings(max_examples=100, deadline=None)
@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31)))
def test_every_real_instant_is_read_back_in_each_layout(at: datetime) -> None:
    for layout, fmt in (("CCYYMMDD", "%Y%m%d"), ("CCYYMMDDHHMM", "%Y%m%d%H%M"), ("CCYYMMDDHHMMSS", "%Y%m%d%H%M%S")):
        assert calendar_value(at.strftime(fmt), layout) == datetime.strptime(at.strftime(fmt), fmt)


def test_every_bad_identifier_is_reported_in_segment_order() -> None:
    text = written().replace("SGP+TGHU1234567", "SGP+TGHU1234568").replace("9811000:146", "9811001:146")
    with pytest.raises(IdentifierErrors) as caught:
        read_cuscar(text.encode("latin-1"))
    details = [e.detail.split(":")[0] for e in caught.value.errors]
    assert details == ["TDT.8213 IMO", "SGP.8260 ISO 6346"]
    assert caught.value.field == caught.value.errors[0].field
    answer = EdifactTranslator().answer(
        text.encode("latin-1"),
        translation=None,
        error=caught.value,
        responder="CN-GACC",
        recipient="CARRIER-COSCO",
        answer_id="d",
        now=PREPARED,
    )
    (message,) = parse_interchange(answer.payload).messages
    erp = [s.get(0, 1) for s in message.segments if s.tag == "ERP"]
    assert erp == [f.removeprefix("segment[").split("]")[0] for f in (e.field or "" for e in caught.value.errors)]
    assert [s.elements for s in message.segments if s.tag == "ERC"] == [
        (("IDIMO", "", "ZZZ"),),
        (("IDCONTNR", "", "ZZZ"),),
    ]
    ftx = ["".join(s.elements[3]) for s in message.segments if s.tag == "FTX"]
    assert [t.split(":")[0] for t in ftx] == ["IDENTIFIER_INVALID"] * 2


def test_positions_count_from_unb() -> None:
    text = written()
    with pytest.raises(EdifactInvalid) as caught:
        read_cuscar(_sub(r"UNT\+(\d+)\+", "UNT+1+")(text).encode("latin-1"))
    segments = len(re.findall(r"'\n", text))  # one segment per line after UNA
    assert caught.value.field == f"segment[{segments - 2}].UNT"  # the UNA line is not a segment; UNZ follows UNT


def test_release_characters_round_trip() -> None:
    document = manifest()
    document["vessel"]["name"] = "A+B:C'D?E"
    data = to_cuscar(document, sender="S", recipient="R", control_reference="C1", prepared=PREPARED)
    assert b"A?+B?:C?'D??E" in data
    assert read_cuscar(data)[1]["vessel"]["name"] == "A+B:C'D?E"


def test_two_messages_in_one_interchange_are_refused() -> None:
    text = written()
    start, end = text.index("UNH+"), text.index("UNZ+")
    doubled = text[:end] + text[start:end] + "UNZ+2+CTRL0000001'"
    with pytest.raises(EdifactInvalid, match="exactly one CUSCAR"):
        read_cuscar(doubled.encode("latin-1"))


def test_functional_groups_are_refused() -> None:
    text = written().replace("UNH+", "UNG+X'\nUNH+", 1)
    with pytest.raises(EdifactInvalid, match=r"UNG\.unsupported"):
        read_cuscar(text.encode("latin-1"))


def test_bytes_outside_the_character_set_are_refused() -> None:
    text = written().replace("UNOC:3", "UNOA:3").replace("EXAMPLE VOYAGER", "EXAMPLE VOYAGÉR")
    with pytest.raises(EdifactInvalid, match=r"UNB\.charset"):
        read_cuscar(text.encode("latin-1"))


def test_size_is_bounded_before_parsing() -> None:
    with pytest.raises(LimitExceeded):
        read_cuscar(b"UNA:+.? '" + b"X" * MAX_INTERCHANGE_BYTES)


def test_hs_code_on_cst_is_checked() -> None:
    text = written().replace("CST++320810::1'", "CST++770000::1'")
    with pytest.raises(IdentifierInvalid) as caught:
        read_cuscar(text.encode("latin-1"), strict=True)
    assert caught.value.field is not None and caught.value.field.endswith(".CST")
    assert caught.value.detail.startswith("CST.7361 HS")


def test_hs_code_on_the_pia_extension_is_read_and_checked() -> None:
    text = written_with_pia()
    assert read_cuscar(text.encode("latin-1"))[1] == manifest()
    with pytest.raises(IdentifierInvalid) as caught:
        read_cuscar(text.replace("PIA+5+320810:HS", "PIA+5+770000:HS").encode("latin-1"))
    assert caught.value.field is not None and caught.value.field.endswith(".PIA")
    assert caught.value.detail.startswith("PIA.7140 HS")


def test_a_goods_item_with_two_different_hs_codes_is_refused() -> None:
    both = _recount(_sub(r"(GID\+1\+80:PX'\s*)", r"\1PIA+5+320890:HS'\n"))(written())
    with pytest.raises(EdifactInvalid) as caught:
        read_cuscar(both.encode("latin-1"))
    assert caught.value.detail.startswith("CUSCAR.hs") and (caught.value.field or "").endswith(".CST")
    same = _recount(_sub(r"(GID\+1\+80:PX'\s*)", r"\1PIA+5+320810:HS'\n"))(written())
    assert read_cuscar(same.encode("latin-1"))[1] == manifest()


@pytest.mark.parametrize("directory", ["D.95B", "D.96B", "D.21A"])
def test_to_cuscar_passes_the_directory_s_own_segment_table(directory: str) -> None:
    """A strict reader (the directory's table, no gateway extension) reads to_cuscar's output; the HS code is in
    CST. The PIA extension is opt-in, and a strict reader refuses it at the PIA."""
    strict = to_cuscar(
        manifest(), sender="S", recipient="R", control_reference="C1", prepared=PREPARED, directory=directory
    )
    assert b"PIA" not in strict and b"CST++854442::1'" in strict
    assert read_cuscar(strict, strict=True)[1] == manifest()
    extended = to_cuscar(
        manifest(),
        sender="S",
        recipient="R",
        control_reference="C1",
        prepared=PREPARED,
        directory=directory,
        hs_extension=True,
    )
    assert b"CST" not in extended and b"PIA+5+854442:HS'" in extended
    assert read_cuscar(extended)[1] == manifest()
    with pytest.raises(EdifactInvalid) as caught:
        read_cuscar(extended, strict=True)
    assert caught.value.detail.startswith("STRUCTURE.unexpected") and (caught.value.field or "").endswith(".PIA")


def test_legacy_chinese_port_code_is_read_as_its_alias() -> None:
    text = written().replace("LOC+5+CNYTN", "LOC+5+CNSZX")
    _, document = read_cuscar(text.encode("latin-1"))
    result = validate_payload("manifest.cargo.v1", "application/json", json.dumps(document).encode())
    assert any("CNSZX" in note for note in result.notes)


def test_validate_payload_refuses_untranslated_edifact() -> None:
    with pytest.raises(UnsupportedMediaType):
        validate_payload("manifest.cargo.v1", "application/edifact", written().encode("latin-1"))
    with pytest.raises(UnsupportedMediaType):
        validate_payload("release.notice.v1", "application/edifact", b"UNA")


# -- CUSRES ------------------------------------------------------------------------------------------------


def test_cusres_accepted_and_rejected_are_valid_interchanges() -> None:
    now = datetime(2026, 3, 15, 10, 0, tzinfo=UTC)
    accepted = build_cusres(
        responder="CN-GACC",
        recipient="EXMP",
        interchange_reference="CTRL0000001",
        document_number="MANIF20260315001",
        answer_id="a",
        error=None,
        now=now,
    )
    refusal = EdifactInvalid("UNT.count: segment count is '77', the message has 49 (UNH..UNT)", field="segment[50].UNT")
    rejected = build_cusres(
        responder="CN-GACC",
        recipient="EXMP",
        interchange_reference="CTRL0000001",
        document_number="",
        answer_id="b",
        error=refusal,
        now=now,
    )
    for data, status in ((accepted, "AP"), (rejected, "RE")):
        parsed = parse_interchange(data)
        (message,) = parsed.messages
        assert message.type == "CUSRES"
        segments = {s.tag: s for s in message.segments}
        assert segments["BGM"].get(3) == status
        assert segments["RFF"].elements == (("ACW", "CTRL0000001"),)
    (message,) = parse_interchange(rejected).messages
    tags = {s.tag: s for s in message.segments}
    assert tags["ERP"].elements == (("1", "50"),)
    assert tags["ERC"].elements == (("EDIENVLP", "", "ZZZ"),)
    assert "".join(tags["FTX"].elements[3]).startswith("EDIFACT_INVALID: UNT.count")


# -- ERC 9321 (an..8): the application error code table ------------------------------------------------------

AN8: Final = re.compile(r"[A-Z0-9]{1,8}")


def test_every_stable_error_code_has_an_application_error_code_of_at_most_8_characters() -> None:
    codes = {cls.code for cls in all_error_classes()}
    assert codes <= {code for code, family in APPLICATION_ERRORS if family == ""}
    assert {code for code, _ in APPLICATION_ERRORS} <= codes  # no entry for a code that does not exist
    for erc in [*APPLICATION_ERRORS.values(), UNLISTED_ERROR]:
        assert AN8.fullmatch(erc), erc
    # each application error code names one stable code: a carrier can map it back
    owners: dict[str, set[str]] = {}
    for (code, _), erc in APPLICATION_ERRORS.items():
        owners.setdefault(erc, set()).add(code)
    assert all(len(owner) == 1 for owner in owners.values()), owners


def test_readme_lists_every_application_error_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| stable error code (rule family) | ERC |") :].split("\n\n")[0]
    assert set(re.findall(r"`([A-Z0-9]{1,8})`", table)) >= set(APPLICATION_ERRORS.values())
    assert {code for code, _ in APPLICATION_ERRORS} <= set(re.findall(r"`([A-Z_]{5,})`", table))


ERC_OF_RULE = {
    "EQD.8260": "IDCONTNR",
    "SGP.8260": "IDCONTNR",
    "TDT.8213": "IDIMO",
    "LOC.3225": "IDLOCODE",
    "NAD.3039": "IDPARTY",
    "UNT.count": "EDIENVLP",
    "UNT.reference": "EDIENVLP",
    "UNZ.count": "EDIENVLP",
    "UNZ.reference": "EDIENVLP",
    "UNZ.missing": "EDIENVLP",
    "UNH.directory": "EDIENVLP",
    "UNH.type": "EDIENVLP",
    "UNB.datetime": "EDIENVLP",
    "SYNTAX.truncated": "EDISYNTX",
    "SYNTAX.release": "EDISYNTX",
    "UNA.syntax": "EDISYNTX",
    "STRUCTURE.mandatory": "EDISTRUC",
    "STRUCTURE.unexpected": "EDISTRUC",
    "STRUCTURE.repeat": "EDISTRUC",
    "DTM.value": "EDICONTN",
}


@pytest.mark.parametrize(("name", "mutate", "error", "tag", "rule"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_each_refusal_is_answered_with_its_rule_family_s_code(
    name: str, mutate: Callable[[str], str], error: type[GatewayError], tag: str, rule: str
) -> None:
    data = mutate(written()).encode("latin-1")
    with pytest.raises(GatewayError) as caught:
        EdifactTranslator().translate(data)
    answer = EdifactTranslator().answer(
        data,
        translation=None,
        error=caught.value,
        responder="CN-GACC",
        recipient="CARRIER-COSCO",
        answer_id="e",
        now=PREPARED,
    )
    (message,) = parse_interchange(answer.payload).messages
    (erc,) = [s for s in message.segments if s.tag == "ERC"]
    assert erc.elements == ((ERC_OF_RULE[rule], "", "ZZZ"),)


def test_a_json_identifier_and_a_policy_refusal_get_their_code_s_application_error() -> None:
    assert application_error(IdentifierInvalid("ISO 6346 check digit", field="payload.consignments[0]")) == "IDENT"
    assert application_error(Forbidden("EQD.8260 looks like a rule but is not one here")) == "POLICY"
    assert application_error(EdifactInvalid("NAD.name: a party needs its name")) == "EDICONTN"


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(all_error_classes()), st.text(max_size=40))
def test_any_refusal_gets_an_an8_application_error_code(cls: type[GatewayError], detail: str) -> None:
    error = GatewayError.__new__(cls)
    GatewayError.__init__(error, detail)
    assert AN8.fullmatch(application_error(error))


def test_answer_to_a_broken_interchange_still_correlates() -> None:
    broken = written()[:200].encode("latin-1")
    answer = EdifactTranslator().answer(
        broken,
        translation=None,
        error=EdifactInvalid("SYNTAX.truncated: x", field="segment[9]."),
        responder="CN-GACC",
        recipient="CARRIER-COSCO",
        answer_id="c",
        now=PREPARED,
    )
    assert answer.status == "rejected" and answer.reference == "CTRL0000001"
    assert b"RFF+ACW:CTRL0000001'" in answer.payload


def _answer_bgm(data: bytes, error: GatewayError) -> tuple[str, ...]:
    answer = EdifactTranslator().answer(
        data,
        translation=None,
        error=error,
        responder="CN-GACC",
        recipient="CARRIER-COSCO",
        answer_id="f",
        now=PREPARED,
    )
    (message,) = parse_interchange(answer.payload).messages
    (bgm,) = [s for s in message.segments if s.tag == "BGM"]
    return tuple(bgm.get(i) for i in range(4))


def test_a_rejected_answer_carries_the_manifest_number() -> None:
    """Refused during translation (identifiers, a broken tail): the CUSRES BGM names the filing's BGM 1004."""
    bad_imo = written().replace("9811000:146", "9811001:146").encode("latin-1")
    with pytest.raises(IdentifierErrors) as caught:
        read_cuscar(bad_imo)
    assert _answer_bgm(bad_imo, caught.value) == ("85", "MANIF20260315001", "9", "RE")
    truncated = written()[: written().index("DGS+IMD") + 6].encode("latin-1")
    refusal = EdifactInvalid("SYNTAX.truncated: x", field="segment[40].")
    assert _answer_bgm(truncated, refusal)[1] == "MANIF20260315001"
    escaped = written().replace("MANIF20260315001", "MANIF?+2026?:03").encode("latin-1")
    assert _answer_bgm(escaped, refusal)[1] == "MANIF+2026:03"


def test_without_a_readable_bgm_the_answer_names_the_control_reference() -> None:
    refusal = EdifactInvalid("STRUCTURE.mandatory: x", field="segment[3].DTM")
    no_bgm = _sub(r"BGM\+[^']*'\s*", "")(written()).encode("latin-1")
    assert _answer_bgm(no_bgm, refusal)[1] == "CTRL0000001"
    head_only = written()[: written().index("BGM+") + 9].encode("latin-1")  # cut inside BGM
    assert _answer_bgm(head_only, refusal)[1] == "CTRL0000001"


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_the_head_of_any_damaged_interchange_is_read_without_raising(data: st.DataObject) -> None:
    text = bytearray(written().encode("latin-1")[:300])
    for _ in range(data.draw(st.integers(1, 6))):
        position = data.draw(st.integers(0, len(text) - 1))
        text[position] = data.draw(st.sampled_from([*b"+:'?\n A9\xff", 0]))
    head = interchange_header(bytes(text))
    assert len(head.document) <= 35 and len(head.reference) <= 14


# -- HS codes: optional on a manifest, required on an entry summary -------------------------------------------


def test_hs_code_is_optional_on_a_manifest_and_required_on_an_entry_summary() -> None:
    document = manifest()
    del document["consignments"][0]["goodsItems"][0]["hsCode"]
    validate_payload("manifest.cargo.v1", "application/json", json.dumps(document).encode())
    declaration = ens()
    declaration["houseConsignments"][0]["goodsItems"][0]["hsCode"] = ""
    with pytest.raises(GatewayError) as caught:
        validate_payload("prearrival.ens.v1", "application/json", json.dumps(declaration).encode())
    assert caught.value.field == "payload.houseConsignments[0].goodsItems[0].hsCode"


# -- a real-looking D.96B carrier sample (apimeister/edi-cli test check_edifact_cuscar, MIT OR Apache-2.0) ---

HK_D96B_TRUNCATED = (
    "UNB+UNOC:3+HKGHKG999+BLI-CUS+221121:0430+336'UNH+321+CUSCAR:D:96B:UN'BGM+85+CUSCAR/202211210430/+9'"
    "DTM+137:202211210430:203'RFF+AAZ:SUDU'NAD+MS+HSA'CTA+IC+:DAVID ZHANG/852-34788102'NAD+BA+HSA'"
    "TDT+20+246N+1+++++9178393:146:11:MERATUS MEDAN 5:ID'DTM+133:20221122:102'GIS+23'"
    "EQD+CN+MRKU7178024::ZZZ+22G1+++5'TSR++2:::2'MEA+AAE+T+KGM:2170'SEL+ML-ID0212928'"
    "EQD+CN+MSKU5705452::ZZZ+22G1+++5'TSR++2:::2'MEA+AAE+T+KGM:2180'SEL+ML-ID0212929'EQD+CN+GLDU5592412::ZZZ+22G1++"
)


def test_truncated_carrier_sample_is_refused_where_pydifact_would_drop_the_segment() -> None:
    with pytest.raises(EdifactInvalid) as caught:
        read_cuscar(HK_D96B_TRUNCATED.encode("latin-1"))
    assert caught.value.detail.startswith("SYNTAX.truncated")
    assert caught.value.field == "segment[20]."  # the third EQD, the 20th segment, has no terminator


def test_completed_carrier_sample_matches_the_d96b_table() -> None:
    consignment = (
        "EQD+CN+GLDU5592412::ZZZ+22G1+++5'CNI+1+SUDUHKG000001'RFF+BM:SUDUHKG000001'"
        "NAD+CZ+++HK SHIPPER LTD+1 HARBOUR ROAD+HONG KONG++000000+HK'"
        "NAD+CN+++ID CONSIGNEE PT+JALAN 1+JAKARTA++10110+ID'"
        "GID+1+10:CT'FTX+AAA+++GARMENTS'MEA+AAE+G+KGM:1500'SGP+MRKU7178024'"
    )
    body = HK_D96B_TRUNCATED[: HK_D96B_TRUNCATED.rindex("EQD+")] + consignment
    count = body[body.index("UNH+") :].count("'") + 1
    text = f"{body}UNT+{count}+321'UNZ+1+336'"
    interchange, document = read_cuscar(text.encode("latin-1"))
    assert interchange.messages[0].directory == "D.96B"
    assert document["vessel"] == {"imo": "9178393", "name": "MERATUS MEDAN 5", "flag": "ID"}
    assert [c["number"] for c in document["consignments"][0]["containers"]] == [
        "MRKU7178024",
        "MSKU5705452",
        "GLDU5592412",
    ]


# -- hostile input: any bytes give a translation or a typed refusal, never another exception --------------


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_interchanges_fail_only_with_typed_errors(data: st.DataObject) -> None:
    text = bytearray(written().encode("latin-1"))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text) - 1))
        action = data.draw(st.sampled_from(["replace", "delete", "insert"]))
        byte = data.draw(st.sampled_from([*b"+:'?\n A9\xff", 0]))
        if action == "replace":
            text[position] = byte
        elif action == "delete":
            del text[position]
        else:
            text.insert(position, byte)
    with contextlib.suppress(GatewayError):
        EdifactTranslator().translate(bytes(text))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300).map(lambda b: b"UNA:+.? 'UNB+UNOC:3+" + b))
def test_arbitrary_bytes_fail_only_with_typed_errors(data: bytes) -> None:
    with contextlib.suppress(GatewayError):
        EdifactTranslator().translate(data)
