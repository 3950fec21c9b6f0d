"""``manifest.cargo.v1`` (proto3 JSON form) -> a CUSCAR interchange, the inverse of :mod:`adapters.edifact.cuscar`.

Used to forward a JSON manifest to a partner that only speaks EDIFACT. For the fields both carry the round trip
manifest -> CUSCAR -> manifest is lossless (a hypothesis property test checks it) when text fits the EDIFACT
element lengths: party names <= 175 characters (5 x 35), address lines and city <= 35, vessel name <= 35.

Rule 1: the same mapping table as the reader (README "EDIFACT"); the transport group carries LOC 5 / 60 / 61 and
        DTM 133 / 132 (format 203); goods descriptions are split into FTX AAA components of 70 characters.
Rule 2: the character set is UNOC (ISO 8859-1) when every character fits, else UNOW (UTF-8, syntax version 4).
Rule 3: the counts and references the reader checks (UNT, UNZ) are computed here, never taken from input.
Rule 4: the output passes the directory's own segment table (``read_cuscar(..., strict=True)``): a goods item's
        HS code goes where the directory has a place for it, CST C246 ``<hs>::1`` (3055 = 1, the Customs
        Co-operation Council/WCO). ``hs_extension=True`` writes the gateway's PIA extension (``PIA+5+<hs>:HS``
        after GID) instead, for a partner that reads only that; strict readers refuse it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from adapters.edifact.cuscar import HS_AGENCY
from adapters.edifact.syntax import Element, encoding_of, serialize

NAME_COMPONENT: Final = 35  # C080 3036 an..35, five components
FTX_COMPONENT: Final = 70  # C108 4440 an..70, five components
_GROSS: Final = {"D.95B": "G", "D.96B": "G", "D.21A": "AAB"}
_ROLE_CODES: Final = {"CONSIGNOR": "CZ", "CONSIGNEE": "CN", "CARRIER": "CA"}

Seg = tuple[str, Sequence[Element]]


def to_cuscar(
    manifest: dict[str, Any],
    *,
    sender: str,
    recipient: str,
    control_reference: str,
    prepared: datetime,
    directory: str = "D.95B",
    message_reference: str = "1",
    hs_extension: bool = False,
) -> bytes:
    if directory not in _GROSS:
        raise ValueError(f"unsupported directory {directory}")
    body = list(_message(manifest, directory, message_reference, hs_extension))
    text_fits_latin1 = all(_latin1(e) for _, elements in body for e in elements)
    syntax, version = ("UNOC", "3") if text_fits_latin1 else ("UNOW", "4")
    date = prepared.strftime("%y%m%d" if version == "3" else "%Y%m%d")
    segments: list[Seg] = [
        (
            "UNB",
            [
                [syntax, version],
                [sender, "ZZZ"],
                [recipient, "ZZZ"],
                [date, prepared.strftime("%H%M")],
                control_reference,
            ],
        ),
        *body,
        ("UNZ", ["1", control_reference]),
    ]
    return serialize(segments, encoding=encoding_of(syntax))


def _latin1(element: Element) -> bool:
    parts = [element] if isinstance(element, str) else list(element)
    return all(p.encode("latin-1", "ignore").decode("latin-1") == p for p in parts)


def _message(manifest: dict[str, Any], directory: str, reference: str, hs_extension: bool) -> Iterator[Seg]:
    release = directory.removeprefix("D.")
    segments: list[Seg] = [
        ("UNH", [reference, ["CUSCAR", "D", release, "UN"]]),
        ("BGM", ["85", manifest["manifestNumber"], "9"]),
    ]
    carrier = manifest.get("carrier")
    if carrier:
        segments.append(_nad("CA", carrier))
    vessel = manifest["vessel"]
    c222 = [vessel["imo"], "146", "11", vessel.get("name", ""), vessel.get("flag", "")]
    segments.append(("TDT", ["20", manifest["voyageNumber"], "1", "", "", "", "", c222]))
    for qualifier, key in (("5", "portOfLoading"), ("60", "portOfDischarge"), ("61", "nextPort")):
        if manifest.get(key):
            segments.append(("LOC", [qualifier, [manifest[key], "139", "6"]]))
    for qualifier, key in (("133", "estimatedDeparture"), ("132", "estimatedArrival")):
        if manifest.get(key):
            segments.append(("DTM", [[qualifier, _edifact_time(manifest[key]), "203"]]))
    seen: set[str] = set()
    for consignment in manifest["consignments"]:
        for container in consignment.get("containers", ()):
            if container["number"] not in seen:
                seen.add(container["number"])
                segments.extend(_equipment(container))
    for index, consignment in enumerate(manifest["consignments"], start=1):
        segments.extend(_consignment(index, consignment, directory, hs_extension))
    segments.append(("UNT", [str(len(segments) + 1), reference]))
    yield from segments


def _edifact_time(rfc3339: str) -> str:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).strftime("%Y%m%d%H%M")


def _equipment(container: dict[str, Any]) -> Iterator[Seg]:
    full_empty = "4" if container.get("empty") else "5"
    yield ("EQD", ["CN", container["number"], [container.get("sizeType", ""), "102", "5"], "", "", full_empty])
    for seal in container.get("seals", ()):
        yield ("SEL", [seal])


def _consignment(index: int, consignment: dict[str, Any], directory: str, hs_extension: bool) -> Iterator[Seg]:
    number = consignment["transportDocumentNumber"]
    yield ("CNI", [str(index), number])
    yield ("RFF", [["BM", number]])
    for qualifier, key in (("9", "portOfLoading"), ("11", "portOfDischarge")):
        if consignment.get(key):
            yield ("LOC", [qualifier, [consignment[key], "139", "6"]])
    yield _nad("CZ", consignment["consignor"])
    yield _nad("CN", consignment["consignee"])
    notify = "NI" if directory == "D.21A" else "N1"
    for party in consignment.get("notifyParties", ()):
        yield _nad(notify, party)
    for item in consignment["goodsItems"]:
        yield from _goods(item, directory, hs_extension)


def _nad(qualifier: str, party: dict[str, Any]) -> Seg:
    identifiers = party.get("identifiers") or []
    c082: Element = [identifiers[0]["value"], identifiers[0]["scheme"], "ZZZ"] if identifiers else ""
    name = party.get("name", "")
    c080 = [name[i : i + NAME_COMPONENT] for i in range(0, len(name), NAME_COMPONENT)] or [""]
    address = party.get("address", {})
    return (
        "NAD",
        [
            qualifier,
            c082,
            "",
            c080,
            list(address.get("lines", ())) or "",
            address.get("city", ""),
            "",
            address.get("postalCode", ""),
            address.get("country", ""),
        ],
    )


def _goods(item: dict[str, Any], directory: str, hs_extension: bool) -> Iterator[Seg]:
    packages = item.get("packages", {})
    hs_code = item.get("hsCode")
    yield ("GID", [str(item.get("sequence", "")), [str(packages.get("count", "")), packages.get("typeCode", "")]])
    if hs_code and hs_extension:
        yield ("PIA", ["5", [hs_code, "HS"]])
    description = item.get("description", "")
    chunks = [description[i : i + FTX_COMPONENT] for i in range(0, len(description), FTX_COMPONENT)]
    for start in range(0, len(chunks), 5):
        yield ("FTX", ["AAA", "", "", chunks[start : start + 5]])
    if "grossMassKg" in item:
        yield ("MEA", ["AAE", _GROSS[directory], ["KGM", _number(item["grossMassKg"])]])
    for number in item.get("containerNumbers", ()):
        yield ("SGP", [number])
    if item.get("unNumber"):
        yield ("DGS", ["IMD", "", item["unNumber"]])
    if hs_code and not hs_extension:
        yield ("CST", ["", [hs_code, "", HS_AGENCY]])


def _number(value: float | int | str) -> str:
    """Plain decimal notation (no exponent), the shortest form that reads back as the same double."""
    text = format(Decimal(repr(float(value))), "f")
    return text.removesuffix(".0") if text.endswith(".0") else text
