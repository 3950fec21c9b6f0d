"""CUSCAR (matched tree) -> ``manifest.cargo.v1`` in its proto3 JSON form, with identifier rules per segment.

The identifier rules of :mod:`gateway.core.identifiers` run here on the segments, so a refusal names the segment
(``segment[14].EQD``) and the rule; ``validate_payload`` then checks the resulting JSON like any other manifest.

Rule 1: ISO 6346 on EQD and SGP, IMO on TDT (C222 with 1131 = 146), UN/LOCODE on LOC (ports with the Chinese
        re-coding aliases, as for JSON), HS on CST (C246 with 3055 = ``1``) and on the PIA extension (7143 =
        ``HS``; two different codes on one goods item are refused, ``CUSCAR.hs``), UN numbers on DGS, the B/L on
        RFF ``BM``, trader identifiers on NAD (the scheme is C082 1131 when it names one, else recognised from the
        shape).
Rule 2: the mapping (one table in README "EDIFACT"): BGM 1004 manifest number; TDT 8028 voyage, C222 vessel;
        transport LOC 5/9 loading, 60/11 discharge, 61 next port; DTM 133/132 departure/arrival (formats 102,
        203, 204); NAD CA carrier, CZ consignor, CN consignee, N1/NI notify; CNI group = consignment (RFF BM the
        B/L, else CNI 1004); GID = goods item (C213 packages, CST HS code, FTX AAA description, MEA gross mass
        in KGM, SGP containers, DGS IMD UN number); EQD = container (C224 size type, 8169 = 4 empty, SEL seals).
Rule 3: a container belongs to every consignment whose goods are stowed in it (SGP); containers with no goods
        (empties) belong to the first consignment.
Rule 4: identifier refusals do not stop the conversion: all of them (up to :data:`MAX_REPORTED_ERRORS`) are
        raised together as :class:`IdentifierErrors` at the end, so the CUSRES names every bad segment; other
        refusals (structure, content the manifest needs) stop at once.
Rule 5: every DTM of the message whose format (2379) is 102, 203 or 204 (none given: 203) carries a real date and
        time in that layout (``DTM.value``, :func:`adapters.edifact.syntax.calendar_value`), also where the
        manifest does not map its qualifier (e.g. DTM 137); other formats are kept as evidence only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

from adapters.edifact.structure import Node
from adapters.edifact.syntax import Segment, calendar_value
from gateway.core import identifiers as ids
from gateway.core.errors import IdentifierInvalid

LOADING: Final = frozenset({"5", "9"})
DISCHARGE: Final = frozenset({"60", "11"})
NEXT_PORT: Final = "61"
GROSS: Final = frozenset({"G", "AAB"})  # MEA 6313: G up to D.03A, AAB in D.21A
ROLES: Mapping[str, str] = MappingProxyType(
    {"CA": "CARRIER", "CZ": "CONSIGNOR", "CN": "CONSIGNEE", "N1": "NOTIFY", "NI": "NOTIFY"}
)
SCHEMES: Final = frozenset({"EORI", "USCC", "AEO_EU", "AEO_CN", "CN_CUSTOMS_CODE"})
# Shapes that name a scheme when C082 1131 does not (first match wins; the scheme's own rule then checks it).
_SCHEME_SHAPES: Final = (
    ("AEO_CN", re.compile(r"AEOCN[0-9]{10}")),
    ("AEO_EU", re.compile(r"[A-Z]{2}AEO[CSF][A-Z0-9]{1,29}")),
    ("USCC", re.compile(r"[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}")),
    ("CN_CUSTOMS_CODE", re.compile(r"[0-9]{10}")),
    ("EORI", re.compile(r"[A-Z]{2}[A-Z0-9]{1,15}")),
)
MAX_REPORTED_ERRORS: Final = 50  # identifier refusals collected per interchange before giving up (CUSRES size)
# CST C246 3055 (code list responsible agency) of an HS code: 1 = CCC, the Customs Co-operation Council (now
# WCO), which keeps the Harmonized System; national subheadings (8-10 digits) extend its first six digits.
HS_AGENCY: Final = "1"
NAD_ELEMENTS: Final = 9  # 3035, C082, C058, C080, C059, 3164, 3229, 3251, 3207
# DTM 2379 date/time format -> its layout (syntax.calendar_value): every DTM of the message in one of them must be
# a real date and time (DTM.value), whether or not the manifest maps its qualifier.
DATE_FORMATS: Mapping[str, str] = MappingProxyType({"102": "CCYYMMDD", "203": "CCYYMMDDHHMM", "204": "CCYYMMDDHHMMSS"})


class IdentifierErrors(IdentifierInvalid):
    """Every identifier refusal of one interchange, in segment order; the first is this error's own detail and
    field (what the problem response shows), all of them go into the CUSRES."""

    def __init__(self, errors: Sequence[tuple[int, IdentifierInvalid]]) -> None:
        ordered = tuple(error for _, error in sorted(errors, key=lambda pair: pair[0]))
        super().__init__(ordered[0].detail, field=ordered[0].field)
        self.errors = ordered


class _Checks:
    """Runs identifier rules with the segment as the field and collects the refusals (Rule 4)."""

    def __init__(self) -> None:
        self.errors: list[tuple[int, IdentifierInvalid]] = []

    def __call__(self, rule: Callable[[str, str], str], segment: Segment, value: str, what: str) -> str:
        try:
            return rule(value, segment.where)
        except IdentifierInvalid as exc:
            self.fail(segment, f"{segment.tag}.{what}: {exc.detail}")
            return value  # keep converting: the answer names every bad identifier, not only the first

    def fail(self, segment: Segment, detail: str) -> None:
        self.errors.append((segment.position, IdentifierInvalid(detail, field=segment.where)))
        if len(self.errors) >= MAX_REPORTED_ERRORS:
            raise IdentifierErrors(self.errors)


def to_manifest(root: Node) -> dict[str, Any]:
    checked = _Checks()
    bgm = root.first("BGM")
    assert bgm is not None
    _check_dates(root)
    transport = next(iter(root.children("transport")), None)
    if transport is None:
        raise bgm.refuse("CUSCAR.transport", "a manifest needs the TDT group (vessel and voyage)")
    tdt = transport.head
    manifest: dict[str, Any] = {
        "manifestNumber": bgm.get(1),
        "voyageNumber": tdt.get(1),
        "vessel": _vessel(checked, tdt),
    }
    carrier = next((s for s in root.parties() if s.get(0) == "CA"), None)
    if carrier is not None and len(carrier.elements) > 3 and any(carrier.elements[3]):
        manifest["carrier"] = _party(checked, carrier)  # a carrier named only by its code (SCAC) stays in the evidence
    for loc in transport.all("LOC"):
        key = _port_key(loc.get(0))
        if key is not None:
            manifest.setdefault(key, _port(checked, loc))
    for dtm in transport.all("DTM"):
        key = {"133": "estimatedDeparture", "132": "estimatedArrival"}.get(dtm.get(0, 0))
        if key is not None:
            manifest[key] = _timestamp(dtm)
    containers = {c["number"]: c for c in (_container(checked, g) for g in root.children("equipment"))}
    consignments = [_consignment(checked, g) for g in root.children("consignment")]
    if not consignments:
        raise bgm.refuse("CUSCAR.consignment", "a manifest needs at least one CNI group")
    if checked.errors:
        raise IdentifierErrors(checked.errors)
    _assign_containers(consignments, containers)
    manifest["consignments"] = consignments
    return manifest


def _port_key(qualifier: str) -> str | None:
    if qualifier in LOADING:
        return "portOfLoading"
    if qualifier in DISCHARGE:
        return "portOfDischarge"
    return "nextPort" if qualifier == NEXT_PORT else None


def _port(checked: _Checks, loc: Segment) -> str:
    # Shape, country and port function; a legacy Chinese port code is kept as declared (validation notes the alias).
    return checked(lambda v, f: ids.resolve_locode(v, f).declared, loc, loc.get(1, 0), "3225 UN/LOCODE")


def _vessel(checked: _Checks, tdt: Segment) -> dict[str, Any]:
    imo, qualifier, name, flag = tdt.get(7, 0), tdt.get(7, 1), tdt.get(7, 3), tdt.get(7, 4)
    if qualifier != "146" or not imo:
        raise tdt.refuse("TDT.vessel", "C222 must carry the IMO number with code list qualifier 146")
    vessel = {"imo": checked(ids.check_imo, tdt, imo, "8213 IMO"), "name": name}
    if flag:
        vessel["flag"] = flag
    return vessel


def _timestamp(dtm: Segment) -> str:
    fmt = dtm.get(0, 2) or "203"
    if fmt not in DATE_FORMATS:
        raise dtm.refuse("DTM.format", f"date format {fmt[:3]!r} is not 102, 203 or 204")
    return _date_time(dtm).replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _date_time(dtm: Segment) -> datetime:
    value, fmt = dtm.get(0, 1), dtm.get(0, 2) or "203"
    at = calendar_value(value, DATE_FORMATS[fmt])
    if at is None:
        detail = f"{value[:20]!r} is not a real date and time in format {fmt} ({DATE_FORMATS[fmt]})"
        raise dtm.refuse("DTM.value", detail)
    return at


def _check_dates(node: Node) -> None:
    """Rule 5: every DTM in a format of DATE_FORMATS (102/203/204) is a real date and time, mapped or not."""
    for segment in node.segments:
        if segment.tag == "DTM" and (segment.get(0, 2) or "203") in DATE_FORMATS:
            _date_time(segment)
    for group in node.groups:
        _check_dates(group)


def _nad_elements(nad: Segment) -> Segment:
    """NAD has 9 data elements; one surplus empty element before the name (C058 and C080 both empty, 10
    elements, as in the shared D.95B fixture) is read as that common slip; anything else longer is refused."""
    elements = nad.elements
    if len(elements) == NAD_ELEMENTS + 1 and not any(elements[2]) and not any(elements[3]):
        return Segment(nad.position, nad.tag, elements[:3] + elements[4:])
    if len(elements) > NAD_ELEMENTS:
        raise nad.refuse("NAD.elements", f"NAD has {NAD_ELEMENTS} data elements, got {len(elements)}")
    return nad


def _party(checked: _Checks, raw: Segment) -> dict[str, Any]:
    nad = _nad_elements(raw)
    name = "".join(nad.elements[3]) if len(nad.elements) > 3 else ""
    if not name or not nad.get(8):
        raise nad.refuse("NAD.name", "a party needs its name (C080) and country (3207)")
    street = [line for line in (nad.elements[4] if len(nad.elements) > 4 else ()) if line]
    address: dict[str, Any] = {"country": nad.get(8)}
    if street:
        address["lines"] = street
    if nad.get(5):
        address["city"] = nad.get(5)
    if nad.get(7):
        address["postalCode"] = nad.get(7)
    party: dict[str, Any] = {"name": name, "role": ROLES.get(nad.get(0), "ROLE_UNSPECIFIED"), "address": address}
    identifier = _party_identifier(checked, nad)
    if identifier is not None:
        party["identifiers"] = [identifier]
    return party


def _party_identifier(checked: _Checks, nad: Segment) -> dict[str, str] | None:
    value, qualifier, agency = nad.get(1, 0), nad.get(1, 1), nad.get(1, 2)
    if not value:
        return None
    scheme = qualifier if qualifier in SCHEMES else None
    if scheme is None and (qualifier or agency not in ("", "ZZZ")):
        return None  # a code from another list (e.g. 172 carrier code, agency 20): not a trader identifier
    if scheme is None:
        scheme = next((name for name, shape in _SCHEME_SHAPES if shape.fullmatch(value.upper())), None)
    if scheme is None:
        checked.fail(nad, "NAD.3039: party identifier matches no known scheme")
        return None
    checked(lambda v, f: ids.check_party_identifier(scheme, v, f), nad, value, f"3039 {scheme}")
    return {"scheme": scheme, "value": value}


def _container(checked: _Checks, group: Node) -> dict[str, Any]:
    eqd = group.head
    container: dict[str, Any] = {"number": checked(ids.check_container_number, eqd, eqd.get(1, 0), "8260 ISO 6346")}
    if eqd.get(2, 0):
        container["sizeType"] = eqd.get(2, 0)
    if eqd.get(5) == "4":
        container["empty"] = True
    seals = [s.get(0, 0) for s in group.all("SEL") if s.get(0, 0)]
    if seals:
        container["seals"] = seals
    return container


def _consignment(checked: _Checks, group: Node) -> dict[str, Any]:
    cni = group.head
    documents = group.children("document")
    bill = next((r for d in documents for r in d.all("RFF") if r.get(0, 0) == "BM"), None)
    number_source = bill if bill is not None else cni
    number = bill.get(0, 1) if bill is not None else cni.get(1, 0)
    consignment: dict[str, Any] = {
        "transportDocumentNumber": checked(ids.check_transport_document, number_source, number, "1154 B/L")
    }
    notify: list[dict[str, Any]] = []
    goods: list[dict[str, Any]] = []
    for document in documents:
        for loc in document.all("LOC"):
            key = _port_key(loc.get(0))
            if key in ("portOfLoading", "portOfDischarge"):
                consignment.setdefault(key, _port(checked, loc))
        for nad in document.parties():
            role = nad.get(0)
            if role == "CZ":
                consignment["consignor"] = _party(checked, nad)
            elif role == "CN":
                consignment["consignee"] = _party(checked, nad)
            elif role in ("N1", "NI"):
                notify.append(_party(checked, nad))
        goods.extend(_goods(checked, g) for g in document.children("goods"))
    if notify:
        consignment["notifyParties"] = notify
    consignment["goodsItems"] = goods
    return consignment


def _goods(checked: _Checks, group: Node) -> dict[str, Any]:
    gid = group.head
    item: dict[str, Any] = {}
    if gid.get(0):
        item["sequence"] = _integer(gid, gid.get(0), "1496")
    packages: dict[str, Any] = {"count": _integer(gid, gid.get(1, 0), "7224")}
    if gid.get(1, 1):
        packages["typeCode"] = gid.get(1, 1)
    item["packages"] = packages
    hs_codes = [(segment, checked(ids.check_hs_code, segment, value, rule)) for segment, value, rule in _hs(group)]
    if len({code for _, code in hs_codes}) > 1:
        raise hs_codes[1][0].refuse("CUSCAR.hs", "the goods item carries two different HS codes")
    if hs_codes:
        item["hsCode"] = hs_codes[0][1]
    description = "".join("".join(f.elements[3]) for f in group.all("FTX") if f.get(0) == "AAA" and len(f.elements) > 3)
    if description:
        item["description"] = description
    for mea in group.all("MEA"):
        if mea.get(1, 0) in GROSS and mea.get(2, 0) == "KGM":
            item["grossMassKg"] = _decimal(mea, mea.get(2, 1))
    containers = [checked(ids.check_container_number, s, s.get(0, 0), "8260 ISO 6346") for s in group.all("SGP")]
    if containers:
        item["containerNumbers"] = containers
    for dgs in group.all("DGS"):
        if dgs.get(2):
            item["unNumber"] = checked(ids.check_un_number, dgs, dgs.get(2), "7124 UN number")
    return item


def _hs(group: Node) -> Iterator[tuple[Segment, str, str]]:
    """The goods item's HS codes: CST C246 with 3055 = 1 (the directory's place) and the PIA extension."""
    for pia in group.all("PIA"):
        if pia.get(1, 1) == "HS":
            yield pia, pia.get(1, 0), "7140 HS"
    for cst in group.all("CST"):
        for index in range(1, len(cst.elements)):
            if cst.get(index, 2) == HS_AGENCY and cst.get(index, 0):
                yield cst, cst.get(index, 0), "7361 HS"


def _integer(segment: Segment, value: str, element: str) -> int:
    if not value.isdigit() or len(value) > 9:
        raise segment.refuse(f"{segment.tag}.{element}", f"{value!r} is not a whole number of at most 9 digits")
    return int(value)


def _decimal(segment: Segment, value: str) -> float:
    try:
        number = Decimal(value.replace(",", "."))
    except InvalidOperation:
        raise segment.refuse(f"{segment.tag}.6314", f"{value!r} is not a number") from None
    if not number.is_finite() or number < 0 or len(value) > 18:
        raise segment.refuse(f"{segment.tag}.6314", "a measure is a non-negative number of at most 18 characters")
    return float(number)


def _assign_containers(consignments: list[dict[str, Any]], containers: dict[str, dict[str, Any]]) -> None:
    stowed: set[str] = set()
    for consignment in consignments:
        used = {n for item in consignment["goodsItems"] for n in item.get("containerNumbers", ())}
        stowed |= used
        listed = [c for number, c in containers.items() if number in used]
        if listed:
            consignment["containers"] = listed
    empties = [c for number, c in containers.items() if number not in stowed]
    if empties:
        order = list(containers)
        first = consignments[0]
        first["containers"] = sorted([*first.get("containers", []), *empties], key=lambda c: order.index(c["number"]))
