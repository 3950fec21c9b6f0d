"""Identifier rules for customs data: containers, ships, places, goods and traders.

Every ``check_*(value, field) -> str`` normalises the value (trims, removes inner spaces where the standard's
display form has them, upper-cases), checks it and returns the normalised form, or raises
:class:`IdentifierInvalid` with ``field`` set to the caller's path and ``detail`` naming the rule that failed
(e.g. ``"ISO 6346 check digit: expected 3, got 4"``).

Rule 1: the raw value is bounded (:data:`MAX_RAW_CHARS`) before any other work.
Rule 2: ``detail`` names the rule and what was expected; it never echoes a trader identifier back (payload
        content stays out of logs); public place codes (UN/LOCODE) may be named.
Rule 3: check digits are computed by the standard's algorithm, exposed as ``*_check_*`` functions so tests and
        fixture builders compute them the same way:
        ISO 6346 (letters 10..38 skipping multiples of 11, weights 2^i, mod 11 mod 10),
        IMO (weights 7..2, mod 10),
        USCC GB 32100-2015 (MOD 31, weights 3^i mod 31) with the embedded GB 11714 organisation code check
        (weights 3,7,9,10,5,8,4,2, mod 11, 10 -> X, 11 -> 0).
Rule 4: UN/LOCODE is checked for shape, then against the pinned snapshot in :mod:`gateway.core.locodes`: a
        known code must carry the expected function (a port where a port is expected); a legacy Chinese port
        code whose current entry is an airport is read as its port alias, and the alias is reported.
Rule 5: rule tables, not if-chains: :data:`SCHEME_RULES` maps a party-identifier scheme to its check.
Rule 6: a normal form depends on the value alone, so the tables check each distinct valid value once:
        :class:`Remembered` keeps the normal forms of up to :data:`REMEMBERED_MAX` valid values per rule (a
        carrier's own identifiers, its ships and ports recur in every filing). Invalid values are not
        remembered: they are checked again and raise with the caller's field every time.
Sources: ../shared/reference/standards.md sections 1-5 (ISO 6346, IMO, UN/LOCODE, EORI, AEO, USCC, HS).
"""

from __future__ import annotations

import operator
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Generic, TypeVar

from gateway.core.errors import IdentifierInvalid
from gateway.core.locodes import FUNCTION_PORT, LEGACY_ALIASES, LOCATIONS

# Longest raw identifier accepted before normalisation: the longest rule (EU AEO, 2+4+29 = 35 characters) plus
# room for display spaces and an "IMO "/"UN " prefix; anything longer is refused without further work.
MAX_RAW_CHARS = 64
# EDIFACT RFF 1154 is an..35: a transport document (B/L) number longer than that cannot travel in CUSCAR.
MAX_TRANSPORT_DOCUMENT_CHARS = 35

Checker = Callable[[str, str], str]
T = TypeVar("T")

# Valid values one rule remembers (Rule 6); beyond it the memory starts again empty.
REMEMBERED_MAX = 4096


class Remembered(Generic[T]):
    """``check(value, field)`` that remembers what it returned for valid values (Rule 6)."""

    __slots__ = ("_check", "_known")

    def __init__(self, check: Callable[[str, str], T]) -> None:
        self._check = check
        self._known: dict[str, T] = {}

    def __call__(self, value: str, field: str) -> T:
        known = self._known.get(value)
        if known is None:
            known = self._check(value, field)  # raises for an invalid value, which is never remembered
            if len(self._known) >= REMEMBERED_MAX:
                self._known.clear()
            self._known[value] = known
        return known


def _invalid(field: str, detail: str) -> IdentifierInvalid:
    return IdentifierInvalid(detail, field=field)


def _prepare(value: str, field: str, rule: str, *, keep_spaces: bool = False) -> str:
    if len(value) > MAX_RAW_CHARS:
        raise _invalid(field, f"{rule}: longer than {MAX_RAW_CHARS} characters")
    text = value.strip().upper()
    if not keep_spaces:
        text = text.replace(" ", "")
    if not text:
        raise _invalid(field, f"{rule}: empty")
    return text


# -- ISO 3166-1 alpha-2 -------------------------------------------------------------------------------------


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


COUNTRY_CODES = _word_set(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """
)
# EU Member States as they prefix EORI and AEO numbers; Greece appears as GR (ISO) and EL (EU VAT usage).
EU_MEMBER_PREFIXES = _word_set("AT BE BG CY CZ DE DK EE EL ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK")
# UK (GB) and Northern Ireland (XI) still issue EORI and AEO numbers of the same shape.
EORI_PREFIXES = EU_MEMBER_PREFIXES | {"GB", "XI"}


def check_country(value: str, field: str) -> str:
    code = _prepare(value, field, "ISO 3166-1 alpha-2")
    if code not in COUNTRY_CODES:
        raise _invalid(field, "ISO 3166-1 alpha-2: not an assigned country code")
    return code


# -- ISO 6346 container numbers -----------------------------------------------------------------------------

# Letter values start at 10 and skip 11, 22 and 33 (multiples of 11), so A=10, B=12, ..., Z=38.
_ISO6346_LETTERS: Mapping[str, int] = MappingProxyType(
    dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ", (v for v in range(10, 39) if v % 11), strict=True))
)
_ISO6346_CATEGORIES = frozenset("UJZ")  # U freight container, J detachable equipment, Z trailer/chassis
_ISO6346_SHAPE = re.compile(r"[A-Z]{3}[A-Z][0-9]{6}[0-9]")


def _weighted_sum(values: Mapping[str, int], chars: str, weights: tuple[int, ...]) -> int:
    """sum(values[c] * w) over ``chars`` and ``weights`` of the same length: a check character's arithmetic
    (``map``, not a generator: it runs for every new identifier a filing carries). ValueError for a wrong length
    or a character without a value."""
    if len(chars) != len(weights):
        raise ValueError(f"expected {len(weights)} characters, got {len(chars)}")
    try:
        return sum(map(operator.mul, map(values.__getitem__, chars), weights))
    except KeyError as exc:
        raise ValueError(f"no value for character {exc.args[0]!r}") from None


_DIGIT_VALUES: Mapping[str, int] = MappingProxyType({str(d): d for d in range(10)})
_ISO6346_VALUES: Mapping[str, int] = MappingProxyType({**_DIGIT_VALUES, **_ISO6346_LETTERS})
_ISO6346_WEIGHTS = tuple(1 << position for position in range(10))  # weight 2**position


def iso6346_check_digit(first10: str) -> int:
    """Check digit of the owner code + category + serial (10 characters, upper case)."""
    return _weighted_sum(_ISO6346_VALUES, first10, _ISO6346_WEIGHTS) % 11 % 10


def check_container_number(value: str, field: str) -> str:
    number = _prepare(value, field, "ISO 6346")
    if len(number) != 11:
        raise _invalid(field, f"ISO 6346: length must be 11 characters, got {len(number)}")
    if not _ISO6346_SHAPE.fullmatch(number):
        raise _invalid(field, "ISO 6346: format must be 3-letter owner code, category letter, 7 digits")
    if number[3] not in _ISO6346_CATEGORIES:
        raise _invalid(field, f"ISO 6346: equipment category must be U, J or Z, got {number[3]}")
    expected = iso6346_check_digit(number[:10])
    if int(number[10]) != expected:
        raise _invalid(field, f"ISO 6346 check digit: expected {expected}, got {number[10]}")
    return number


# -- IMO ship identification number -------------------------------------------------------------------------


_IMO_WEIGHTS = (7, 6, 5, 4, 3, 2)


def imo_check_digit(first6: str) -> int:
    return _weighted_sum(_DIGIT_VALUES, first6, _IMO_WEIGHTS) % 10


def check_imo(value: str, field: str) -> str:
    number = _prepare(value, field, "IMO number").removeprefix("IMO")
    if len(number) != 7 or not number.isascii() or not number.isdigit():
        raise _invalid(field, "IMO number: must be 7 digits (optionally prefixed by IMO)")
    expected = imo_check_digit(number[:6])
    if int(number[6]) != expected:
        raise _invalid(field, f"IMO check digit: expected {expected}, got {number[6]}")
    return number


# -- UN/LOCODE ----------------------------------------------------------------------------------------------

# Digits 0 and 1 are excluded from the location part because they read like O and I.
_LOCODE_SHAPE = re.compile(r"[A-Z]{2}[A-Z2-9]{3}")
# UN/LOCODE uses XZ for installations in international waters, outside ISO 3166.
_LOCODE_EXTRA_COUNTRIES = frozenset({"XZ"})


@dataclass(frozen=True, slots=True)
class ResolvedLocode:
    code: str  # the code to use (the current port entry when an alias applied)
    declared: str  # the code as sent (normalised case)
    known: bool  # found in the pinned snapshot
    alias_note: str = ""  # why ``code`` differs from ``declared``; empty when it does not


def resolve_locode(
    value: str, field: str, *, function: str | None = FUNCTION_PORT, require_known: bool = False
) -> ResolvedLocode:
    """Check a UN/LOCODE; ``function`` is the classifier character the location must carry (None: any)."""
    declared = _prepare(value, field, "UN/LOCODE")
    if not _LOCODE_SHAPE.fullmatch(declared):
        raise _invalid(field, "UN/LOCODE: must be a 2-letter country code and 3 characters of A-Z or 2-9")
    if declared[:2] not in COUNTRY_CODES | _LOCODE_EXTRA_COUNTRIES:
        raise _invalid(field, f"UN/LOCODE: {declared[:2]} is not an ISO 3166-1 country code")
    location = LOCATIONS.get(declared)
    alias = LEGACY_ALIASES.get(declared)
    if function == FUNCTION_PORT and alias and (location is None or not location.has_function(function)):
        note = f"legacy port code {declared} read as {alias.current}: {alias.note}"
        return ResolvedLocode(alias.current, declared, True, note)
    if location is None:
        if require_known:
            raise _invalid(field, f"UN/LOCODE: {declared} is not in the pinned snapshot")
        return ResolvedLocode(declared, declared, False)
    if function is not None and not location.has_function(function):
        raise _invalid(
            field,
            f"UN/LOCODE function: {declared} ({location.name}) lacks function {function}"
            f" (classifier {location.function})",
        )
    return ResolvedLocode(declared, declared, True)


def check_locode(value: str, field: str) -> str:
    """Any UN/LOCODE (shape and country; function not checked)."""
    return resolve_locode(value, field, function=None).code


def check_port_locode(value: str, field: str) -> str:
    """A UN/LOCODE that is a port (legacy Chinese port codes resolved to their current port entry)."""
    return resolve_locode(value, field).code


# -- HS, UN dangerous goods, transport documents ------------------------------------------------------------

_HS_SHAPE = re.compile(r"[0-9]{6}(?:[0-9]{2}){0,2}")
_HS_RESERVED_CHAPTERS = frozenset({77})  # reserved for future use by the WCO
_HS_LAST_CHAPTER = 97  # 98-99 are reserved for national use and never travel internationally


def check_hs_code(value: str, field: str) -> str:
    code = _prepare(value, field, "HS code").replace(".", "")
    if not _HS_SHAPE.fullmatch(code):
        raise _invalid(field, "HS code: must be 6, 8 or 10 digits")
    chapter = int(code[:2])
    if not 1 <= chapter <= _HS_LAST_CHAPTER:
        raise _invalid(field, f"HS code: chapter must be 01-{_HS_LAST_CHAPTER}, got {code[:2]}")
    if chapter in _HS_RESERVED_CHAPTERS:
        raise _invalid(field, f"HS code: chapter {chapter} is reserved")
    return code


def check_un_number(value: str, field: str) -> str:
    number = _prepare(value, field, "UN number").removeprefix("UN")
    if len(number) != 4 or not number.isascii() or not number.isdigit() or number == "0000":
        raise _invalid(field, "UN number: must be 4 digits (optionally prefixed by UN), not 0000")
    return number


_TRANSPORT_DOCUMENT_SHAPE = re.compile(r"[A-Z0-9][A-Z0-9./-]*")


def check_transport_document(value: str, field: str) -> str:
    number = _prepare(value, field, "transport document number", keep_spaces=True)
    if len(number) > MAX_TRANSPORT_DOCUMENT_CHARS:
        raise _invalid(field, f"transport document number: over {MAX_TRANSPORT_DOCUMENT_CHARS} characters")
    if not _TRANSPORT_DOCUMENT_SHAPE.fullmatch(number):
        raise _invalid(field, "transport document number: only A-Z, 0-9 and . / - allowed")
    return number


# -- EU trader identifiers ----------------------------------------------------------------------------------

_EORI_SHAPE = re.compile(r"[A-Z]{2}[A-Z0-9]{1,15}")
# HMRC formats: GB + 12 digits (VAT number + 000) or GB + 15 digits; XI (Northern Ireland) + 12 digits.
_EORI_UK_SHAPES: Mapping[str, re.Pattern[str]] = MappingProxyType(
    {"GB": re.compile(r"GB(?:[0-9]{12}|[0-9]{15})"), "XI": re.compile(r"XI[0-9]{12}")}
)


def check_eori(value: str, field: str) -> str:
    number = _prepare(value, field, "EORI")
    if not _EORI_SHAPE.fullmatch(number):
        raise _invalid(field, "EORI: must be a 2-letter issuing state and 1-15 letters or digits (max 17)")
    if number[:2] not in EORI_PREFIXES:
        raise _invalid(field, f"EORI: {number[:2]} does not issue EORI numbers")
    uk_shape = _EORI_UK_SHAPES.get(number[:2])
    if uk_shape is not None and not uk_shape.fullmatch(number):
        raise _invalid(field, f"EORI: {number[:2]} numbers are {number[:2]} + 12 digits (GB also 15)")
    return number


# Annex 7 of Delegated Regulation (EU) 2016/341: issuing state + AEOC / AEOS / AEOF + national number.
_EU_AEO_SHAPE = re.compile(r"[A-Z]{2}AEO[CSF][A-Z0-9/-]{1,29}")


def check_eu_aeo(value: str, field: str) -> str:
    number = _prepare(value, field, "EU AEO")
    if not _EU_AEO_SHAPE.fullmatch(number):
        raise _invalid(field, "EU AEO: must be issuing state + AEOC, AEOS or AEOF + national number")
    if number[:2] not in EORI_PREFIXES:
        raise _invalid(field, f"EU AEO: {number[:2]} does not issue EU-format AEO authorisations")
    return number


# -- China trader identifiers -------------------------------------------------------------------------------

# Customs registration code, 10 digits, no check digit [secondary sources]: position 5 is the economic
# zone (1 SEZ, 2 ETDZ, 3 high-tech zone, 4 bonded zone, 5 export processing zone, 9 other), position 6 the
# enterprise type (1-9).
_CN_ZONE_CODES = frozenset("123459")
_CN_ENTERPRISE_CODES = frozenset("123456789")


def check_cn_customs_code(value: str, field: str) -> str:
    code = _prepare(value, field, "China customs code")
    if len(code) != 10 or not code.isascii() or not code.isdigit():
        raise _invalid(field, "China customs code: must be 10 digits")
    if code[4] not in _CN_ZONE_CODES:
        raise _invalid(field, f"China customs code: position 5 (zone) must be 1-5 or 9, got {code[4]}")
    if code[5] not in _CN_ENTERPRISE_CODES:
        raise _invalid(field, f"China customs code: position 6 (enterprise) must be 1-9, got {code[5]}")
    return code


def check_cn_aeo(value: str, field: str) -> str:
    code = _prepare(value, field, "China AEO")
    if not code.startswith("AEOCN"):
        raise _invalid(field, "China AEO: must be AEOCN + the 10-digit customs code")
    check_cn_customs_code(code[5:], field)
    return code


USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, S, V, Z
_USCC_CHARS = frozenset(USCC_ALPHABET)
_USCC_VALUES: Mapping[str, int] = MappingProxyType({c: i for i, c in enumerate(USCC_ALPHABET)})
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
_GB11714_VALUES: Mapping[str, int] = MappingProxyType({c: int(c, 36) for c in string.digits + string.ascii_uppercase})
_GB11714_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_GB11714_CHECK = "0123456789X0"  # by 11 - (sum mod 11), 1 .. 11: 10 is written X, 11 is written 0


def uscc_check_char(first17: str) -> str:
    """GB 32100-2015 check character (MOD 31) over the first 17 characters."""
    return USCC_ALPHABET[-_weighted_sum(_USCC_VALUES, first17, _USCC_WEIGHTS) % 31]


def gb11714_check_char(body8: str) -> str:
    """GB 11714 organisation-code check character over its 8-character body (digits, A=10 .. Z=35)."""
    return _GB11714_CHECK[11 - _weighted_sum(_GB11714_VALUES, body8, _GB11714_WEIGHTS) % 11]


def check_uscc(value: str, field: str) -> str:
    code = _prepare(value, field, "USCC")
    if len(code) != 18:
        raise _invalid(field, f"USCC: length must be 18 characters, got {len(code)}")
    if not code[:8].isascii() or not code[:8].isdigit():
        raise _invalid(field, "USCC: positions 1-8 (authority, category, region) must be digits")
    if not _USCC_CHARS.issuperset(code):
        raise _invalid(field, "USCC: only 0-9 and A-Z without I, O, S, V, Z allowed")
    expected_org = gb11714_check_char(code[8:16])
    if code[16] != expected_org:
        raise _invalid(field, f"USCC GB 11714 organisation check: expected {expected_org}, got {code[16]}")
    expected = uscc_check_char(code[:17])
    if code[17] != expected:
        raise _invalid(field, f"USCC check character (GB 32100): expected {expected}, got {code[17]}")
    return code


# -- party identifier schemes -------------------------------------------------------------------------------

# Scheme names are the enum value names of cgw.v1.PartyIdentifier.Scheme.
SCHEME_RULES: Mapping[str, Checker] = MappingProxyType(
    {
        "EORI": Remembered(check_eori),
        "USCC": Remembered(check_uscc),
        "AEO_EU": Remembered(check_eu_aeo),
        "AEO_CN": Remembered(check_cn_aeo),
        "CN_CUSTOMS_CODE": Remembered(check_cn_customs_code),
    }
)


def check_party_identifier(scheme: str, value: str, field: str) -> str:
    rule = SCHEME_RULES.get(scheme)
    if rule is None:
        raise _invalid(field, f"party identifier: unknown scheme {scheme!r}")
    return rule(value, field)
