"""AEO mutual recognition (gateway/core/aeo.py, aeolist.py): the MRA table, the crosswalk, every reason a trader
is or is not recognised, lanes, and the per-row report of list imports."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.aeo import (
    AeoIndex,
    Authorisation,
    Lane,
    OperatorId,
    PartyCheck,
    Reason,
    Status,
    administration_of,
    check_party,
    check_recognition,
    consignment_lanes,
    consignment_of,
)
from gateway.core.aeolist import (
    MAX_ROW_ERRORS,
    infer_operator,
    parse_authorisation,
    parse_list,
    parse_mra_table,
    parse_status_message,
)
from gateway.core.errors import IdentifierInvalid, Invalid, Unavailable
from gateway.wire.cgw.v1 import aeo_pb2

MRA_FILE = Path(__file__).resolve().parents[2] / "policies" / "mra.json"
MRAS = parse_mra_table(json.loads(MRA_FILE.read_text()))

# A Shenzhen exporter: customs code 4403960123 (zone 9, private enterprise 6), its USCC, China AEO code.
CN_CODE = "4403960123"
CN_USCC = "91440300MA5G3K2X40"


def eu(number: str, type_: str, status: str = "active", **extra: Any) -> Authorisation:
    raw = {"number": number, "type": type_, "status": status, "valid_from": "2019-03-01", "holder": "Holder B.V."}
    return parse_authorisation(raw | extra, admin="EU", source="test")


def cn(status: str = "active", type_: str = "ACE", **extra: Any) -> Authorisation:
    raw = {
        "number": f"AEOCN{CN_CODE}",
        "type": type_,
        "status": status,
        "valid_from": "2018-01-01",
        "holder": "Shenzhen Example Export Co., Ltd.",
        "identifiers": [{"scheme": "USCC", "value": CN_USCC}],
    }
    return parse_authorisation(raw | extra, admin="CN", source="test")


NL_AEOF = eu("NLAEOF00001234", "AEOF", identifiers=[{"scheme": "EORI", "value": "NL123456789"}])
DE_AEOC = eu("DEAEOC1234/08", "AEOC", identifiers=[{"scheme": "EORI", "value": "DE987654321"}])


def index(*auths: Authorisation) -> AeoIndex:
    return AeoIndex(auths, MRAS)


# -- the shipped MRA table --------------------------------------------------------------------------------


def test_the_shipped_table_has_the_verified_china_and_eu_dates() -> None:
    by_id = {a.id: a for a in MRAS.arrangements}
    assert by_id["CN-EU"].since == date(2015, 11, 1)
    assert by_id["CN-EU"].side("EU") is not None
    assert by_id["CN-EU"].side("EU").types == frozenset({"AEOS", "AEOF"})  # type: ignore[union-attr]
    assert by_id["CN-EU"].side("CN").types == frozenset({"ACE"})  # type: ignore[union-attr]
    assert by_id["CN-JP"].since == date(2019, 6, 1)
    assert by_id["CN-BY"].since == date(2019, 7, 24)
    assert by_id["CN-EC"].since == date(2025, 7, 1)
    assert by_id["EU-CA"].since == date(2025, 8, 1)
    assert by_id["EU-JP"].since == date(2011, 5, 24)
    assert all(a.until is None for a in MRAS.arrangements)
    assert "DEPLOYER" in json.loads(MRA_FILE.read_text())["comment"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["arrangements"][0]["sides"].pop(), "arrangements[0].sides"),
        (lambda d: d["arrangements"][0].update(since="1 Nov 2015"), "arrangements[0]"),
        (lambda d: d["arrangements"][0].update(until="2010-01-01"), "arrangements[0].until"),
        (lambda d: d["arrangements"][1].update(id="CN-EU"), "arrangements"),
        (lambda d: d["arrangements"][0]["sides"][0].update(admin="China"), "arrangements[0].sides[0].admin"),
    ],
)
def test_a_broken_table_fails_closed(mutate: Any, field: str) -> None:
    document = json.loads(MRA_FILE.read_text())
    mutate(document)
    with pytest.raises(Unavailable) as info:
        parse_mra_table(document)
    assert info.value.field is not None
    assert info.value.field.endswith(field)


# -- recognition ------------------------------------------------------------------------------------------


def test_an_eu_aeof_is_recognised_by_china_under_the_mra() -> None:
    result = check_recognition(index(NL_AEOF), OperatorId("AEO_EU", "NLAEOF00001234"), "CN", date(2026, 1, 5))
    assert result.recognised
    assert result.arrangement == "CN-EU"
    assert result.authorisation is NL_AEOF
    assert "priority clearance" in result.benefits
    assert result.reasons == ()
    record = result.record()
    assert record["type"] == "AEOF"
    assert record["issuing_admin"] == "EU"
    assert record["status"] == "active"


def test_the_crosswalk_finds_the_authorisation_by_eori() -> None:
    result = index(NL_AEOF).check_recognition(OperatorId("EORI", "NL123456789"), "CN", date(2026, 1, 5))
    assert result.recognised
    assert result.authorisation is NL_AEOF


def test_china_aeo_code_customs_code_and_uscc_find_each_other() -> None:
    idx = index(cn())
    for operator in (
        OperatorId("AEO_CN", f"AEOCN{CN_CODE}"),
        OperatorId("CN_CUSTOMS_CODE", CN_CODE),
        OperatorId("USCC", CN_USCC),
    ):
        result = idx.check_recognition(operator, "EU", date(2026, 1, 5))
        assert result.recognised, operator
        assert result.arrangement == "CN-EU"


def test_before_the_mra_entered_into_force_there_is_none() -> None:
    early = eu(
        "NLAEOF00001234", "AEOF", valid_from="2010-01-01", identifiers=[{"scheme": "EORI", "value": "NL123456789"}]
    )
    result = index(early).check_recognition(OperatorId("EORI", "NL123456789"), "CN", date(2015, 10, 31))
    assert not result.recognised
    assert result.reasons == (Reason.NO_MRA_IN_FORCE,)


def test_an_administration_without_an_mra_does_not_recognise() -> None:
    result = index(NL_AEOF).check_recognition(OperatorId("EORI", "NL123456789"), "US", date(2026, 1, 5))
    assert result.reasons == (Reason.NO_MRA_IN_FORCE,)


def test_aeoc_is_not_covered_by_the_mras() -> None:
    result = index(DE_AEOC).check_recognition(OperatorId("EORI", "DE987654321"), "CN", date(2026, 1, 5))
    assert not result.recognised
    assert result.reasons == (Reason.TYPE_NOT_COVERED,)
    assert result.benefits == ()


def test_the_home_administration_recognises_all_its_own_types() -> None:
    result = index(DE_AEOC).check_recognition(OperatorId("AEO_EU", "DEAEOC1234/08"), "EU", date(2026, 1, 5))
    assert result.recognised
    assert result.arrangement == "home"


def test_unknown_operator() -> None:
    result = index(NL_AEOF).check_recognition(OperatorId("EORI", "FR12345"), "CN", date(2026, 1, 5))
    assert result.reasons == (Reason.UNKNOWN_OPERATOR,)
    assert result.record()["authorisation"] is None


def test_a_suspension_applies_from_its_day_on() -> None:
    suspended = eu(
        "NLAEOF00001234",
        "AEOF",
        "suspended",
        status_since="2026-03-01",
        identifiers=[{"scheme": "EORI", "value": "NL123456789"}],
    )
    idx = index(suspended)
    before = idx.check_recognition(OperatorId("EORI", "NL123456789"), "CN", date(2026, 2, 28))
    after = idx.check_recognition(OperatorId("EORI", "NL123456789"), "CN", date(2026, 3, 1))
    assert before.recognised
    assert not after.recognised
    assert after.reasons == (Reason.SUSPENDED,)
    assert after.adverse
    assert after.arrangement == "CN-EU"  # the MRA would apply: the status is the reason


def test_revoked_expired_and_not_yet_valid() -> None:
    operator = OperatorId("AEO_CN", f"AEOCN{CN_CODE}")
    on = date(2026, 1, 5)
    assert index(cn("revoked")).check_recognition(operator, "EU", on).reasons == (Reason.REVOKED,)
    assert index(cn("expired")).check_recognition(operator, "EU", on).reasons == (Reason.EXPIRED,)
    lapsed = cn(valid_until="2025-12-31")
    assert index(lapsed).check_recognition(operator, "EU", on).reasons == (Reason.EXPIRED,)
    future = cn(valid_from="2027-01-01")
    assert index(future).check_recognition(operator, "EU", on).reasons == (Reason.NOT_YET_VALID,)
    # Several reasons: the status first, then the type.
    gce = cn("suspended", "GCE")
    assert index(gce).check_recognition(operator, "EU", on).reasons == (Reason.SUSPENDED, Reason.TYPE_NOT_COVERED)


def test_of_two_authorisations_the_recognised_one_answers() -> None:
    eori = [{"scheme": "EORI", "value": "DE987654321"}]
    aeos = eu("DEAEOS5555", "AEOS", identifiers=eori)
    result = index(DE_AEOC, aeos).check_recognition(OperatorId("EORI", "DE987654321"), "CN", date(2026, 1, 5))
    assert result.recognised
    assert result.authorisation is aeos


def test_administration_of_maps_member_states_to_the_union() -> None:
    assert administration_of("NL") == "EU"
    assert administration_of("GR") == "EU"
    assert administration_of("EL") == "EU"
    assert administration_of("CN") == "CN"
    assert administration_of("GB") == "GB"


# -- parties and lanes ------------------------------------------------------------------------------------


def test_lanes_per_consignment() -> None:
    suspended = eu("DEAEOS5555", "AEOS", "suspended", identifiers=[{"scheme": "EORI", "value": "DE555"}])
    idx = index(NL_AEOF, suspended)
    on = date(2026, 1, 5)

    def party(path: str, role: str, *eoris: str) -> PartyCheck:
        return check_party(idx, f"payload.{path}", role, [OperatorId("EORI", e) for e in eoris], admin="CN", on=on)

    checks = [
        party("consignments[0].consignor", "CONSIGNOR"),
        party("consignments[0].consignee", "CONSIGNEE", "NL123456789"),
        party("consignments[1].consignee", "CONSIGNEE", "DE555"),
        party("consignments[2].consignee", "CONSIGNEE", "FR1"),
        party("carrier", "CARRIER", "NL123456789"),
    ]
    assert consignment_lanes(checks) == {
        "payload.consignments[0]": Lane.LOW_RISK,
        "payload.consignments[1]": Lane.ELEVATED,
        "payload.consignments[2]": Lane.STANDARD,
    }
    # within one consignment the most severe party decides, whatever the parties' order
    mixed = [
        party("consignments[3].consignor", "CONSIGNOR", "NL123456789"),
        party("consignments[4].consignor", "CONSIGNOR"),
        party("consignments[3].consignee", "CONSIGNEE", "DE555"),
        party("consignments[4].consignee", "CONSIGNEE", "NL123456789"),
        party("consignments[3].notify", "NOTIFY", "NL123456789"),
    ]
    assert list(consignment_lanes(mixed).items()) == [
        ("payload.consignments[3]", Lane.ELEVATED),
        ("payload.consignments[4]", Lane.LOW_RISK),
    ]
    assert checks[0].record() == {
        "path": "payload.consignments[0].consignor",
        "role": "CONSIGNOR",
        "recognised": False,
        "reasons": ["no_identifier"],
    }
    assert checks[1].record()["authorisation"] == "NLAEOF00001234"


def test_a_party_with_several_identifiers_is_recognised_by_any() -> None:
    on = date(2026, 1, 5)
    ids = [OperatorId("EORI", "FR1"), OperatorId("EORI", "NL123456789")]
    check = check_party(index(NL_AEOF), "payload.consignments[0].consignee", "CONSIGNEE", ids, admin="CN", on=on)
    assert check.result is not None
    assert check.result.recognised


# -- records and list files -------------------------------------------------------------------------------


def test_the_issuer_is_never_taken_from_the_record() -> None:
    with pytest.raises(IdentifierInvalid) as info:
        parse_authorisation(
            {"number": "NLAEOF1", "type": "AEOF", "status": "active", "valid_from": "2020-01-01", "holder": "x"},
            admin="CN",
            source="test",
        )
    assert info.value.field == "authorisation.number"
    with pytest.raises(Invalid, match="type AEOF"):
        eu("NLAEOF00001234", "AEOS")


def test_a_partner_number_and_scheme_are_open() -> None:
    auth = parse_authorisation(
        {
            "number": "jp-aeo 0042",
            "type": "AEO",
            "status": "active",
            "valid_from": "2020-01-01",
            "holder": "Tokyo Example K.K.",
            "identifiers": [{"scheme": "JP_CORPORATE_NUMBER", "value": "1234567890123"}],
        },
        admin="JP",
        source="test",
    )
    assert auth.number == "JP-AEO0042"
    assert OperatorId("JP_CORPORATE_NUMBER", "1234567890123") in auth.identifiers
    assert index(auth).check_recognition(OperatorId("AEO_JP", "JP-AEO0042"), "CN", date(2026, 1, 5)).recognised


CSV = """number,type,status,valid_from,valid_until,status_since,holder,identifiers
NLAEOF00001234,AEOF,active,2019-03-01,,,Rotterdam Example Import B.V.,EORI:NL123456789
DEAEOS5555,AEOS,suspended,2019-03-01,,2026-02-01,Hamburg Example GmbH,EORI:DE555;EORI:DE556
XXAEOF1,AEOF,active,2019-03-01,,,Bad State,
NLAEOS2,AEOF,active,2019-03-01,,,Wrong Type,
NLAEOS3,AEOS,dormant,2019-03-01,,,Bad Status,
NLAEOS4,AEOS,active,01/03/2019,,,Bad Date,
NLAEOS5,AEOS,active,2019-03-01,2018-01-01,,Ends Before Start,
NLAEOS6,AEOS,active,2019-03-01,,,Bad Eori,EORI:ZZ1
NLAEOF00001234,AEOF,active,2019-03-01,,,Repeated,
"""


def test_a_csv_list_reports_every_bad_row_and_keeps_the_good_ones() -> None:
    report = parse_list(CSV.encode(), fmt="csv", admin="EU", source="import:EU:list.csv")
    assert [a.number for a in report.authorisations] == ["NLAEOF00001234", "DEAEOS5555"]
    assert report.rows == 9
    assert report.rejected == 7
    assert [(e.row, e.field) for e in report.errors] == [
        (3, "row 3.number"),
        (4, "row 4.type"),
        (5, "row 5.status"),
        (6, "row 6.valid_from"),
        (7, "row 7.valid_until"),
        (8, "row 8.identifiers[0].value"),
        (9, "row 9.number"),
    ]
    assert report.errors[0].code == "IDENTIFIER_INVALID"
    assert report.authorisations[1].status is Status.SUSPENDED
    assert OperatorId("EORI", "DE556") in report.authorisations[1].identifiers
    assert report.record()["accepted"] == 2


def test_a_json_list_and_its_errors() -> None:
    rows = [
        {"number": f"AEOCN{CN_CODE}", "type": "ACE", "status": "active", "valid_from": "2018-01-01", "holder": "A"},
        {"number": "AEOCN0000000000", "type": "ACE", "status": "active", "valid_from": "2018-01-01", "holder": "B"},
        "not an object",
    ]
    report = parse_list(json.dumps({"authorisations": rows}).encode(), fmt="json", admin="CN", source="t")
    assert len(report.authorisations) == 1
    assert [(e.row, e.code) for e in report.errors] == [(2, "IDENTIFIER_INVALID"), (3, "SCHEMA_INVALID")]


def test_a_list_without_the_required_columns_is_refused() -> None:
    with pytest.raises(Invalid, match="lacks columns"):
        parse_list(b"number,holder\nNLAEOF1,x\n", fmt="csv", admin="EU", source="t")


def test_the_report_keeps_a_bounded_number_of_errors() -> None:
    rows = [{"number": "bad"} for _ in range(MAX_ROW_ERRORS + 5)]
    report = parse_list(json.dumps(rows).encode(), fmt="json", admin="EU", source="t")
    assert report.rejected == MAX_ROW_ERRORS + 5
    assert len(report.errors) == MAX_ROW_ERRORS


def test_status_message_payload_becomes_authorisations() -> None:
    message = aeo_pb2.AeoStatusUpdate()
    item = message.authorisations.add(
        number="NLAEOF00001234", type="AEOF", status=aeo_pb2.AeoAuthorisation.SUSPENDED, valid_from="2019-03-01"
    )
    item.holder = "Rotterdam Example Import B.V."
    item.status_since = "2026-02-01"
    ident = item.identifiers.add(value="NL123456789")
    ident.scheme = ident.EORI
    (update,) = parse_status_message("application/protobuf", message.SerializeToString(), admin="EU", source="m")
    assert update.status is Status.SUSPENDED
    assert update.status_since == date(2026, 2, 1)
    assert OperatorId("EORI", "NL123456789") in update.identifiers
    with pytest.raises(IdentifierInvalid):  # China may not report on an EU authorisation
        parse_status_message("application/protobuf", message.SerializeToString(), admin="CN", source="m")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NLAEOF00001234", OperatorId("AEO_EU", "NLAEOF00001234")),
        (f"aeocn{CN_CODE}", OperatorId("AEO_CN", f"AEOCN{CN_CODE}")),
        (CN_USCC, OperatorId("USCC", CN_USCC)),
        (CN_CODE, OperatorId("CN_CUSTOMS_CODE", CN_CODE)),
        ("NL123456789", OperatorId("EORI", "NL123456789")),
        ("tcui:CA123456789RM0001", OperatorId("TCUI", "CA123456789RM0001")),
    ],
)
def test_operator_ids_are_recognised_by_shape(text: str, expected: OperatorId) -> None:
    assert infer_operator(text) == expected


def test_an_unrecognisable_operator_id_names_the_field() -> None:
    with pytest.raises(IdentifierInvalid) as info:
        infer_operator("hello world!")
    assert info.value.field == "operator"


# -- property: the index answers as a scan of all authorisations would ------------------------------------

_NUMBERS = [f"NLAEO{t}{n:04d}" for t in "CSF" for n in range(3)]


@settings(max_examples=150, deadline=None)
@given(
    picks=st.lists(st.tuples(st.sampled_from(_NUMBERS), st.sampled_from(list(Status)), st.integers(0, 3)), max_size=6),
    day=st.dates(date(2014, 1, 1), date(2030, 1, 1)),
    admin=st.sampled_from(["CN", "EU", "JP", "US"]),
    probe=st.integers(0, 3),
)
def test_the_index_agrees_with_a_scan(picks: list[tuple[str, Status, int]], day: date, admin: str, probe: int) -> None:
    auths = {}
    for number, status, eori in picks:
        auths[number] = eu(
            number, number[2:6], status.value, identifiers=[{"scheme": "EORI", "value": f"NL{eori:09d}"}]
        )
    result = index(*auths.values()).check_recognition(OperatorId("EORI", f"NL{probe:09d}"), admin, day)
    holders = [a for a in auths.values() if OperatorId("EORI", f"NL{probe:09d}") in a.identifiers]

    def recognised(a: Authorisation) -> bool:
        if a.status_on(day) is not Status.ACTIVE or day < a.valid_from:
            return False
        if admin == "EU":
            return True
        if admin == "CN":
            return day >= date(2015, 11, 1) and a.type in {"AEOS", "AEOF"}
        if admin == "JP":
            return day >= date(2011, 5, 24) and a.type in {"AEOS", "AEOF"}
        return False

    assert result.recognised == any(recognised(a) for a in holders)
    if not holders:
        assert result.reasons == (Reason.UNKNOWN_OPERATOR,)


def test_a_partner_cannot_issue_numbers_in_the_eu_or_china_format() -> None:
    raw = {"type": "AEO", "status": "active", "valid_from": "2020-01-01", "holder": "x"}
    for number in ("DEAEOS00005678", f"AEOCN{CN_CODE}"):
        with pytest.raises(IdentifierInvalid, match="may not issue"):
            parse_authorisation(raw | {"number": number}, admin="US", source="t")


def test_records_are_unique_per_issuing_administration() -> None:
    raw = {"number": "X-1", "type": "AEO", "status": "active", "valid_from": "2020-01-01", "holder": "x"}
    jp = parse_authorisation(raw, admin="JP", source="t")
    ch = parse_authorisation(raw | {"status": "revoked"}, admin="CH", source="t")
    idx = index(jp, ch)
    assert len(idx) == 2
    assert idx.authorisation("JP", "X-1") is jp
    assert idx.authorisation("CH", "X-1") is ch


def test_an_update_gives_the_same_index_as_a_rebuild() -> None:
    suspended = eu("NLAEOF00001234", "AEOF", "suspended", identifiers=[{"scheme": "EORI", "value": "NL999"}])
    base = index(NL_AEOF, DE_AEOC, cn())
    changed = base.updated([suspended, eu("DEAEOS5555", "AEOS")])
    rebuilt = index(suspended, DE_AEOC, cn(), eu("DEAEOS5555", "AEOS"))
    on = date(2026, 1, 5)
    for operator in (
        OperatorId("EORI", "NL123456789"),  # the old identifier is gone with the old record
        OperatorId("EORI", "NL999"),
        OperatorId("AEO_EU", "NLAEOF00001234"),
        OperatorId("AEO_EU", "DEAEOS5555"),
        OperatorId("USCC", CN_USCC),
    ):
        assert changed.check_recognition(operator, "CN", on) == rebuilt.check_recognition(operator, "CN", on)
    assert len(changed) == len(rebuilt) == 4
    assert base.check_recognition(OperatorId("EORI", "NL123456789"), "CN", on).recognised  # the old one is intact


def test_consignments_of_manifests_and_entry_summaries() -> None:
    assert consignment_of("payload.consignments[12].consignee") == "payload.consignments[12]"
    assert consignment_of("payload.house_consignments[3].buyer") == "payload.house_consignments[3]"
    assert consignment_of("payload.declarant") is None
