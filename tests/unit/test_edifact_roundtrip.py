"""Property: manifest.cargo.v1 -> CUSCAR -> manifest.cargo.v1 is lossless for the fields both carry.

Generated manifests respect what CUSCAR can carry (README "EDIFACT"): one identifier per party, text within the
EDIFACT element lengths, times to the minute, containers with no goods only in the first consignment. Text uses
the service characters (escaped with the release character) and characters outside ISO 8859-1 (UTF-8, UNOW).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.edifact import read_cuscar, to_cuscar
from gateway.core import identifiers as ids
from gateway.core.payloads import validate_payload
from gateway.wire.cgw.v1 import manifest_pb2

TEXT_ALPHABET = "ABCXYZabcxyz0189 .,-/()+:'?ÄéßÖ中港"
PORTS = ["CNYTN", "NLRTM", "DEHAM", "CNSHA", "SGSIN", "BEANR", "USLAX"]
TRADER_IDS = [("EORI", "NL000000001"), ("EORI", "DE000000000000001"), ("USCC", "91440300MA5G3K2X40")]
COUNTRIES = ["CN", "NL", "DE", "SG", "US", "HK"]


def text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(TEXT_ALPHABET, min_size=1, max_size=max_size)


@st.composite
def container_numbers(draw: st.DrawFn) -> str:
    owner = draw(st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)) + "U"
    serial = draw(st.text("0123456789", min_size=6, max_size=6))
    return owner + serial + str(ids.iso6346_check_digit(owner + serial))


@st.composite
def imo_numbers(draw: st.DrawFn) -> str:
    first6 = draw(st.text("0123456789", min_size=6, max_size=6).filter(lambda s: s[0] != "0"))
    return first6 + str(ids.imo_check_digit(first6))


hs_codes = st.builds(
    lambda chapter, rest: f"{chapter:02d}{rest}",
    st.integers(1, 97).filter(lambda c: c != 77),
    st.text("0123456789", min_size=4, max_size=4),
)
minutes = st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
)


@st.composite
def parties(draw: st.DrawFn, role: str) -> dict[str, Any]:
    address: dict[str, Any] = {"country": draw(st.sampled_from(COUNTRIES))}
    lines = draw(st.lists(text(35), max_size=4))
    if lines:
        address["lines"] = lines
    if draw(st.booleans()):
        address["city"] = draw(text(35))
    if draw(st.booleans()):
        address["postalCode"] = draw(st.text("0123456789AB", min_size=1, max_size=17))
    party: dict[str, Any] = {"name": draw(text(140)), "role": role, "address": address}
    if draw(st.booleans()):
        scheme, value = draw(st.sampled_from(TRADER_IDS))
        party["identifiers"] = [{"scheme": scheme, "value": value}]
    return party


@st.composite
def consignments(draw: st.DrawFn, numbers: list[str], first: bool) -> dict[str, Any]:
    containers = []
    for number in numbers:
        container: dict[str, Any] = {"number": number}
        seals = draw(st.lists(st.text("ABC0123456789", min_size=1, max_size=35), max_size=3))
        if seals:
            container["seals"] = seals
        if draw(st.booleans()):
            container["sizeType"] = draw(st.sampled_from(["22G1", "45G1", "42R1"]))
        if draw(st.booleans()):
            container["empty"] = True
        containers.append(container)
    item_count = draw(st.integers(1, 3))
    stowage: list[list[str]] = [[] for _ in range(item_count)]
    for number in numbers:
        if first and draw(st.booleans()):
            continue  # an empty container: no goods, belongs to the first consignment
        stowage[draw(st.integers(0, item_count - 1))].append(number)
    goods = []
    for index, stowed in enumerate(stowage, start=1):
        item: dict[str, Any] = {
            "sequence": index,
            "description": draw(text(512)),
            "packages": {"count": draw(st.integers(1, 10**6))},
            "grossMassKg": draw(st.integers(1, 10**9)) / 1000,
        }
        if draw(st.booleans()):
            item["packages"]["typeCode"] = draw(st.sampled_from(["CT", "PX", "BG"]))
        if draw(st.booleans()):
            item["hsCode"] = draw(hs_codes)
        if draw(st.booleans()):
            item["unNumber"] = draw(st.sampled_from(["1263", "1203", "3480"]))
        if stowed:
            item["containerNumbers"] = stowed
        goods.append(item)
    consignment: dict[str, Any] = {
        "transportDocumentNumber": draw(st.text("ABCDEFXYZ0123456789", min_size=1, max_size=35)),
        "consignor": draw(parties("CONSIGNOR")),
        "consignee": draw(parties("CONSIGNEE")),
        "goodsItems": goods,
    }
    notify = draw(st.lists(parties("NOTIFY"), max_size=2))
    if notify:
        consignment["notifyParties"] = notify
    if containers:
        consignment["containers"] = containers
    for key in ("portOfLoading", "portOfDischarge"):
        if draw(st.booleans()):
            consignment[key] = draw(st.sampled_from(PORTS))
    return consignment


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 3))
    numbers = draw(st.lists(container_numbers(), max_size=6, unique=True))
    split = sorted(draw(st.lists(st.integers(0, len(numbers)), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *split, len(numbers)]
    vessel: dict[str, Any] = {"imo": draw(imo_numbers()), "name": draw(text(35))}
    if draw(st.booleans()):
        vessel["flag"] = draw(st.sampled_from(COUNTRIES))
    manifest: dict[str, Any] = {
        "manifestNumber": draw(text(35)),
        "voyageNumber": draw(text(17)),
        "vessel": vessel,
        "portOfLoading": draw(st.sampled_from(PORTS)),
        "portOfDischarge": draw(st.sampled_from(PORTS)),
        "estimatedArrival": draw(minutes),
        "consignments": [draw(consignments(numbers[bounds[i] : bounds[i + 1]], first=i == 0)) for i in range(count)],
    }
    if draw(st.booleans()):
        manifest["nextPort"] = draw(st.sampled_from(PORTS))
    if draw(st.booleans()):
        manifest["estimatedDeparture"] = draw(minutes)
    if draw(st.booleans()):
        manifest["carrier"] = draw(parties("CARRIER"))
    return manifest


def _message(document: dict[str, Any]) -> manifest_pb2.CargoManifest:
    return json_format.ParseDict(document, manifest_pb2.CargoManifest())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests(), st.sampled_from(["D.95B", "D.96B", "D.21A"]), st.booleans())
def test_manifest_cuscar_manifest_is_lossless(manifest: dict[str, Any], directory: str, hs_extension: bool) -> None:
    prepared = datetime(2026, 3, 15, 9, 30, tzinfo=UTC) + timedelta(minutes=7)
    data = to_cuscar(
        manifest,
        sender="CARRIER",
        recipient="CUSTOMS",
        control_reference="C1",
        prepared=prepared,
        directory=directory,
        hs_extension=hs_extension,
    )
    # the default output passes the directory's own segment table; the PIA extension only the gateway's
    interchange, back = read_cuscar(data, strict=not hs_extension)
    assert interchange.messages[0].directory == directory
    assert _message(back) == _message(manifest)
    # what comes back is a manifest the gateway accepts
    validate_payload("manifest.cargo.v1", "application/json", json.dumps(back).encode())
