"""Identifier rules: worked examples from ../shared/reference/standards.md sections 1-5, check-digit properties,
and the LOCODE constant table kept in step with gateway/data/*.csv."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core import identifiers as ids
from gateway.core.errors import IdentifierInvalid
from gateway.core.locodes import LEGACY_ALIASES, LOCATIONS

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"
FIELD = "payload.x"


def _fails(check: ids.Checker, value: str, detail: str) -> None:
    with pytest.raises(IdentifierInvalid) as caught:
        check(value, FIELD)
    assert caught.value.field == FIELD
    assert caught.value.code == "IDENTIFIER_INVALID"
    assert detail in caught.value.detail, caught.value.detail


# -- ISO 6346 ---------------------------------------------------------------------------------------------

VALID_CONTAINERS = [
    "CSQU3054383",
    "MSKU3881107",
    "TCNU7200794",
    "TOLU4734787",
    "GYOU4047990",
    "MRKU7178024",
    "MSKU5705452",
    "GLDU5592412",
    "MSKU9070323",
    "TGHU1234567",
    "ABCU1234560",
]


@pytest.mark.parametrize("number", VALID_CONTAINERS)
def test_container_worked_examples(number: str) -> None:
    assert ids.check_container_number(number, FIELD) == number


def test_container_worked_example_arithmetic() -> None:
    # standards.md 1: CSQU305438 -> sum 6185, 6185 mod 11 = 3
    assert ids.iso6346_check_digit("CSQU305438") == 3


def test_container_normalisation() -> None:
    assert ids.check_container_number(" csqu 305438 3 ", FIELD) == "CSQU3054383"


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("CSQU3054384", "ISO 6346 check digit: expected 3, got 4"),
        ("MSKU9070324", "ISO 6346 check digit: expected 3, got 4"),
        ("CSQU305438", "length must be 11"),
        ("CSQU3054Z83", "format"),
        ("CSQR3054383", "category must be U, J or Z, got R"),
        ("EQ123456", "length must be 11"),
        ("", "empty"),
        ("C" * 100, "longer than 64"),
    ],
)
def test_container_invalid(number: str, detail: str) -> None:
    _fails(ids.check_container_number, number, detail)


_OWNER = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)
_SERIAL = st.text(alphabet="0123456789", min_size=6, max_size=6)


@given(_OWNER, st.sampled_from("UJZ"), _SERIAL, st.integers(0, 9))
def test_container_check_digit_property(owner: str, category: str, serial: str, digit: int) -> None:
    prefix = owner + category + serial
    expected = ids.iso6346_check_digit(prefix)
    if digit == expected:
        assert ids.check_container_number(f"{prefix}{digit}", FIELD) == f"{prefix}{digit}"
    else:
        _fails(ids.check_container_number, f"{prefix}{digit}", f"expected {expected}, got {digit}")


# -- IMO --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["9074729", "7654329", "9319466", "8814275", "9178393", "9811000"])
def test_imo_worked_examples(number: str) -> None:
    assert ids.check_imo(number, FIELD) == number
    assert ids.check_imo(f"IMO {number}", FIELD) == number


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("8814274", "IMO check digit: expected 5, got 4"),
        ("9811001", "IMO check digit: expected 0, got 1"),
        ("981100", "7 digits"),
        ("98110000", "7 digits"),
        ("IMO98110O0", "7 digits"),
        ("٩٨١١٠٠٠", "7 digits"),  # non-ASCII digits are not digits here
    ],
)
def test_imo_invalid(number: str, detail: str) -> None:
    _fails(ids.check_imo, number, detail)


@given(st.text(alphabet="0123456789", min_size=6, max_size=6), st.integers(0, 9))
def test_imo_check_digit_property(first6: str, digit: int) -> None:
    weighted = sum(int(d) * w for d, w in zip(first6, range(7, 1, -1), strict=True))
    if digit == weighted % 10:
        assert ids.check_imo(first6 + str(digit), FIELD) == first6 + str(digit)
    else:
        _fails(ids.check_imo, first6 + str(digit), "IMO check digit")


# -- UN/LOCODE --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["CNYTN", "NLRTM", "CNSGH", "CNSHG", "DEHAM", "BEANR", "USLAX", "USNYC", "SGSIN", "CNNBO"]
)
def test_known_ports(code: str) -> None:
    resolved = ids.resolve_locode(code, FIELD)
    assert (resolved.code, resolved.known, resolved.alias_note) == (code, True, "")


@pytest.mark.parametrize(
    ("legacy", "port"),
    [("CNSHA", "CNSHG"), ("CNNGB", "CNNBG"), ("CNSZX", "CNSZP"), ("CNTAO", "CNQDG"), ("CNCWN", "CNSHK")],
)
def test_legacy_chinese_port_codes_resolve_with_a_note(legacy: str, port: str) -> None:
    resolved = ids.resolve_locode(legacy.lower(), FIELD)
    assert resolved.code == port
    assert resolved.declared == legacy
    assert f"read as {port}" in resolved.alias_note
    assert ids.check_port_locode(legacy, FIELD) == port


def test_legacy_code_is_not_rewritten_where_any_location_will_do() -> None:
    assert ids.check_locode("CNSHA", FIELD) == "CNSHA"  # the airport, as current UN/LOCODE says


def test_non_port_function_is_refused_where_a_port_is_expected() -> None:
    _fails(ids.check_port_locode, "PLMAA", "UN/LOCODE function: PLMAA (Malaszewicze) lacks function 1")
    assert ids.check_locode("PLMAA", FIELD) == "PLMAA"


def test_unknown_code_accepted_on_shape_unless_required_known() -> None:
    resolved = ids.resolve_locode("FRMRS", FIELD)
    assert (resolved.code, resolved.known) == ("FRMRS", False)
    with pytest.raises(IdentifierInvalid, match="not in the pinned snapshot"):
        ids.resolve_locode("FRMRS", FIELD, require_known=True)


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("NLRT1", "A-Z or 2-9"),
        ("NLRT0", "A-Z or 2-9"),
        ("NL-RTM", "A-Z or 2-9"),
        ("NLRTMX", "A-Z or 2-9"),
        ("QQABC", "QQ is not an ISO 3166-1 country code"),
    ],
)
def test_locode_invalid(code: str, detail: str) -> None:
    _fails(ids.check_locode, code, detail)


def _csv(name: str) -> list[dict[str, str]]:
    text = resources.files("gateway").joinpath("data", name).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


def test_locode_constants_match_the_csv_files() -> None:
    rows = _csv("unlocode.csv")
    assert {r["code"]: (r["name"], r["function"]) for r in rows} == {
        code: (loc.name, loc.function) for code, loc in LOCATIONS.items()
    }
    aliases = _csv("unlocode_aliases.csv")
    assert {r["legacy"]: (r["current"], r["note"]) for r in aliases} == {
        a.legacy: (a.current, a.note) for a in LEGACY_ALIASES.values()
    }


def test_locode_table_is_well_formed() -> None:
    for code, location in LOCATIONS.items():
        assert re.fullmatch(r"[A-Z]{2}[A-Z2-9]{3}", code)
        assert re.fullmatch(r"[-1-8AB]{8}", location.function)
    for alias in LEGACY_ALIASES.values():
        assert LOCATIONS[alias.current].is_port, alias
        legacy = LOCATIONS.get(alias.legacy)
        assert legacy is None or not legacy.is_port, alias


def test_standards_table_codes_are_in_the_snapshot() -> None:
    standards = SHARED / "reference" / "standards.md"
    if not standards.is_file():
        pytest.skip("../shared/reference/standards.md is absent (fresh clone without the shared folder)")
    text = standards.read_text(encoding="utf-8")
    table = re.findall(r"^\| ([A-Z]{5}) \| [^|]+ \| ([-0-9AB]{8}) \|", text, re.MULTILINE)
    assert len(table) > 30
    for code, function in table:
        assert LOCATIONS[code].function == function, code


# -- HS, UN number, transport documents, countries --------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "normalised"),
    [
        ("090111", "090111"),
        ("8517.62", "851762"),
        ("85176200", "85176200"),
        ("8517620000", "8517620000"),
        ("9701 10", "970110"),
    ],
)
def test_hs_valid(code: str, normalised: str) -> None:
    assert ids.check_hs_code(code, FIELD) == normalised


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("0901", "6, 8 or 10 digits"),
        ("8517620", "6, 8 or 10 digits"),
        ("85176200001", "6, 8 or 10 digits"),
        ("770110", "chapter 77 is reserved"),
        ("000110", "chapter must be 01-97"),
        ("980110", "01-97"),
        ("99010000", "01-97"),
        ("85176A", "digits"),
    ],
)
def test_hs_invalid(code: str, detail: str) -> None:
    _fails(ids.check_hs_code, code, detail)


def test_un_number() -> None:
    assert ids.check_un_number("UN 1263", FIELD) == "1263"
    assert ids.check_un_number("0004", FIELD) == "0004"
    for bad in ("0000", "126", "12634", "UNXXXX"):
        _fails(ids.check_un_number, bad, "UN number")


def test_transport_document() -> None:
    assert ids.check_transport_document(" exmpytn260001 ", FIELD) == "EXMPYTN260001"
    assert ids.check_transport_document("MAEU/123-456.7", FIELD) == "MAEU/123-456.7"
    _fails(ids.check_transport_document, "A" * 36, "over 35")
    _fails(ids.check_transport_document, "ABC 123", "only A-Z")
    _fails(ids.check_transport_document, "-ABC", "only A-Z")


def test_country_codes() -> None:
    assert len(ids.COUNTRY_CODES) == 249
    assert ids.check_country("cn", FIELD) == "CN"
    _fails(ids.check_country, "UK", "not an assigned")
    _fails(ids.check_country, "EL", "not an assigned")


# -- EORI and AEO -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "NL000000001",
        "DE000000000000001",
        "ATU12345678",
        "BE0123456789",
        "GB123456789000",
        "GB123456789000123",
        "XI123456789000",
        "EL123456789",
        "gr123456789",
    ],
)
def test_eori_valid(number: str) -> None:
    assert ids.check_eori(number, FIELD) == number.upper()


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("NL", "max 17"),
        ("NL0000000000000001", "max 17"),
        ("US123456", "US does not issue"),
        ("GB12345678900", "GB numbers are GB + 12 digits"),
        ("XI123456789000123", "XI numbers"),
        ("NL00000_0001", "max 17"),
        ("1L000000001", "max 17"),
    ],
)
def test_eori_invalid(number: str, detail: str) -> None:
    _fails(ids.check_eori, number, detail)


@pytest.mark.parametrize("number", ["DEAEOF1234/08", "NLAEOF00001234", "FRAEOC0000001", "GBAEOS123-4"])
def test_eu_aeo_valid(number: str) -> None:
    assert ids.check_eu_aeo(number, FIELD) == number


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("NLAEOX0001", "AEOC, AEOS or AEOF"),
        ("NLAEOF", "AEOC, AEOS or AEOF"),
        ("USAEOF1234", "US does not"),
        ("NLAEOF" + "1" * 30, "AEOC, AEOS or AEOF"),
    ],
)
def test_eu_aeo_invalid(number: str, detail: str) -> None:
    _fails(ids.check_eu_aeo, number, detail)


# -- China: customs code, AEO, USCC -----------------------------------------------------------------------


def test_cn_customs_code() -> None:
    assert ids.check_cn_customs_code("4403941234", FIELD) == "4403941234"
    _fails(ids.check_cn_customs_code, "440394123", "10 digits")
    _fails(ids.check_cn_customs_code, "44039412345", "10 digits")
    _fails(ids.check_cn_customs_code, "4403041234", "position 5 (zone) must be 1-5 or 9, got 0")
    _fails(ids.check_cn_customs_code, "4403601234", "position 5 (zone)")
    _fails(ids.check_cn_customs_code, "4403901234", "position 6 (enterprise) must be 1-9, got 0")


@pytest.mark.parametrize("code", ["AEOCN0123456789", "AEOCN1234567890", "aeocn 1234567890"])
def test_cn_aeo_valid(code: str) -> None:
    assert ids.check_cn_aeo(code, FIELD) == code.upper().replace(" ", "")


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("AEOCN123456789", "10 digits"),
        ("AEOKR1234567890", "AEOCN + the 10-digit"),
        ("1234567890", "AEOCN + the 10-digit"),
        ("AEOCN1234067890", "position 5"),
    ],
)
def test_cn_aeo_invalid(code: str, detail: str) -> None:
    _fails(ids.check_cn_aeo, code, detail)


@pytest.mark.parametrize(
    "code",
    [
        "91110000600037341L",
        "91310115MA1K3BTP2B",
        "9144030071526726XG",
        "121200004013590816",
        "91340600MA2PBM9HXD",
        "91440300MA5G3K2X40",
    ],
)
def test_uscc_worked_examples(code: str) -> None:
    assert ids.check_uscc(code, FIELD) == code
    assert ids.check_uscc(code.lower(), FIELD) == code


@pytest.mark.parametrize(
    ("code", "detail"),
    [
        ("91110000600037341N", "USCC check character (GB 32100): expected L, got N"),
        ("A1110000600037341L", "positions 1-8"),
        ("9111000060003IOZSV", "without I, O, S, V, Z"),
        ("12345", "length must be 18"),
        ("91110000600037342L", "GB 11714 organisation check: expected 1, got 2"),
    ],
)
def test_uscc_invalid(code: str, detail: str) -> None:
    _fails(ids.check_uscc, code, detail)


_USCC_HEAD = st.text(alphabet="0123456789", min_size=8, max_size=8)
_USCC_BODY = st.text(alphabet=ids.USCC_ALPHABET, min_size=8, max_size=8)


@given(_USCC_HEAD, _USCC_BODY, st.sampled_from(ids.USCC_ALPHABET))
def test_uscc_check_character_property(head: str, body: str, last: str) -> None:
    org = ids.gb11714_check_char(body)
    first17 = head + body + org
    expected = ids.uscc_check_char(first17)
    if last == expected:
        assert ids.check_uscc(first17 + last, FIELD) == first17 + last
    else:
        _fails(ids.check_uscc, first17 + last, f"expected {expected}, got {last}")


@given(_USCC_HEAD, _USCC_BODY, st.sampled_from("0123456789X"))
def test_uscc_embedded_organisation_check_property(head: str, body: str, org: str) -> None:
    first17 = head + body + org
    code = first17 + ids.uscc_check_char(first17)  # a correct final check character
    if org == ids.gb11714_check_char(body):
        assert ids.check_uscc(code, FIELD) == code
    else:
        _fails(ids.check_uscc, code, "GB 11714 organisation check")


def test_party_identifier_dispatch() -> None:
    assert ids.check_party_identifier("AEO_CN", "AEOCN1234567890", FIELD) == "AEOCN1234567890"
    assert set(ids.SCHEME_RULES) == {"EORI", "USCC", "AEO_EU", "AEO_CN", "CN_CUSTOMS_CODE"}
    _fails(lambda v, f: ids.check_party_identifier("DUNS", v, f), "123", "unknown scheme 'DUNS'")


def test_remembered_rules_give_the_rule_s_answer_and_never_remember_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def counted(value: str, field: str) -> str:
        calls.append(value)
        return ids.check_container_number(value, field)

    monkeypatch.setattr(ids, "REMEMBERED_MAX", 2)
    rule = ids.Remembered(counted)
    assert rule(" msku 907032 3", "a") == rule("MSKU9070323", "b") == "MSKU9070323"
    assert rule(" msku 907032 3", "c") == "MSKU9070323"
    assert calls == [" msku 907032 3", "MSKU9070323"]  # each distinct value checked once
    for field in ("x.containers[0]", "y.containers[1]"):
        with pytest.raises(IdentifierInvalid) as refused:
            rule("MSKU9070324", field)  # wrong check digit: refused, with this call's field, every time
        assert refused.value.field == field
    assert calls.count("MSKU9070324") == 2
    rule("CSQU3054383", "d")  # a third valid value: the memory (bounded at 2) starts again
    rule("MSKU9070323", "e")
    assert calls.count("MSKU9070323") == 2


# -- check-character arithmetic against the standards' formulas, written out -----------------------------------


@given(_OWNER, st.sampled_from("UJZ"), _SERIAL)
def test_iso6346_check_digit_is_the_standard_formula(owner: str, category: str, serial: str) -> None:
    letters = [v for v in range(10, 39) if v % 11]  # A=10, then 11, 22 and 33 are skipped
    values = [letters[ord(c) - ord("A")] if c.isalpha() else int(c) for c in owner + category + serial]
    assert ids.iso6346_check_digit(owner + category + serial) == sum(v * 2**i for i, v in enumerate(values)) % 11 % 10


@given(st.text(alphabet="0123456789", min_size=6, max_size=6))
def test_imo_check_digit_is_the_standard_formula(first6: str) -> None:
    assert ids.imo_check_digit(first6) == sum(int(d) * (7 - i) for i, d in enumerate(first6)) % 10


@given(_USCC_HEAD, _USCC_BODY, st.sampled_from(ids.USCC_ALPHABET))
def test_uscc_check_char_is_the_gb32100_formula(head: str, body: str, org: str) -> None:
    first17 = head + body + org
    total = sum(ids.USCC_ALPHABET.index(c) * 3**i % 31 for i, c in enumerate(first17))
    assert ids.uscc_check_char(first17) == ids.USCC_ALPHABET[(31 - total % 31) % 31]


@given(_USCC_BODY)
def test_gb11714_check_char_is_the_standard_formula(body: str) -> None:
    remainder = 11 - sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True)) % 11
    assert ids.gb11714_check_char(body) == {10: "X", 11: "0"}.get(remainder, str(remainder))


@pytest.mark.parametrize(
    ("check", "value", "detail"),
    [
        (ids.iso6346_check_digit, "CSQU30543", "expected 10 characters, got 9"),
        (ids.iso6346_check_digit, "CSQU30543a", "no value for character 'a'"),
        (ids.imo_check_digit, "98110001", "expected 6 characters, got 8"),
        (ids.uscc_check_char, "91440300MA5G3K2X", "expected 17 characters, got 16"),
        (ids.uscc_check_char, "91440300MA5G3K2XI", "no value for character 'I'"),
        (ids.gb11714_check_char, "MA5G3K2-", "no value for character '-'"),
    ],
)
def test_check_characters_refuse_a_wrong_length_or_character(
    check: Callable[[str], object], value: str, detail: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(detail)):
        check(value)
