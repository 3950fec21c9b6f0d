"""parse_registry / registry_to_json: strict errors with field paths, canonical version, round trips."""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.errors import Invalid
from gateway.core.model import Endpoint, Member, MemberKind, Registry
from gateway.core.registry import (
    MAX_CERTS_PER_MEMBER,
    MAX_MEMBERS,
    build_registry,
    parse_registry,
    registry_to_json,
    registry_version,
)

FP1, FP2, FP3 = ("1" * 64, "2" * 64, "3" * 64)


def _sample() -> Registry:
    return build_registry(
        [
            Member(
                id="CN-GACC",
                name="General Administration of Customs of China",
                kind=MemberKind.CUSTOMS,
                country="CN",
                programs=frozenset({"SSTL"}),
                cert_fingerprints=frozenset({FP1}),
                endpoints=(Endpoint("pull"),),
                home=True,
            ),
            Member(
                id="NL-DOUANE",
                name="Douane",
                kind=MemberKind.CUSTOMS,
                country="NL",
                programs=frozenset({"SSTL"}),
                cert_fingerprints=frozenset({FP2}),
                endpoints=(Endpoint("pull"), Endpoint("webhook", "https://douane.example/inbox")),
            ),
            Member(
                id="CARRIER-COSCO",
                name="COSCO",
                kind=MemberKind.CARRIER,
                country="CN",
                cert_fingerprints=frozenset({FP3}),
            ),
        ]
    )


def _doc() -> dict[str, Any]:
    return registry_to_json(_sample())


def test_round_trip_and_lookup() -> None:
    registry = _sample()
    doc = registry_to_json(registry)
    assert [m["id"] for m in doc["members"]] == ["CARRIER-COSCO", "CN-GACC", "NL-DOUANE"]
    parsed = parse_registry(json.loads(json.dumps(doc)))
    assert parsed == registry
    assert parsed.get("NL-DOUANE") is not None
    assert parsed.by_fingerprint(FP3) == parsed.members["CARRIER-COSCO"]
    assert parsed.members["CN-GACC"].home


def test_version_ignores_order_but_follows_content() -> None:
    doc = _doc()
    shuffled = copy.deepcopy(doc)
    shuffled["members"].reverse()
    assert parse_registry(shuffled).version == doc["version"]
    edited = copy.deepcopy(doc)
    edited["members"][2]["suspended"] = True  # an edit without re-computing the version is refused
    with pytest.raises(Invalid) as err:
        parse_registry(edited)
    assert err.value.field == "version"
    members = _sample().members
    suspended = dataclasses.replace(members["NL-DOUANE"], suspended=True)
    edited["version"] = registry_version([members["CN-GACC"], members["CARRIER-COSCO"], suspended])
    assert edited["version"] != doc["version"]
    assert parse_registry(edited).members["NL-DOUANE"].suspended


def test_optional_keys_default() -> None:
    member = {"id": "US-CBP", "name": "CBP", "kind": "customs", "country": "US"}
    version = registry_version([Member(id="US-CBP", name="CBP", kind=MemberKind.CUSTOMS, country="US")])
    parsed = parse_registry({"version": version, "members": [member]}).members["US-CBP"]
    assert (parsed.programs, parsed.cert_fingerprints, parsed.endpoints) == (frozenset(), frozenset(), ())
    assert not parsed.suspended
    assert not parsed.home


Edit = Callable[[dict[str, Any]], object]


def _set(path: list[str | int], value: object) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _delete(path: list[str | int]) -> Edit:
    def edit(doc: dict[str, Any]) -> None:
        target: Any = doc
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return edit


STRICT_CASES: list[tuple[str, Edit, str]] = [
    ("unknown top key", _set(["extra"], 1), "extra"),
    ("members not a list", _set(["members"], {}), "members"),
    ("version not hex", _set(["version"], "v1"), "version"),
    ("member not an object", _set(["members", 1], "CN-GACC"), "members[1]"),
    ("unknown member key", _set(["members", 1, "color"], "red"), "members[1].color"),
    ("missing country", _delete(["members", 0, "country"]), "members[0].country"),
    ("unknown kind", _set(["members", 2, "kind"], "broker"), "members[2].kind"),
    ("kind wrong type", _set(["members", 2, "kind"], 3), "members[2].kind"),
    ("lower-case id", _set(["members", 0, "id"], "cn-gacc"), "members[0].id"),
    ("id too long", _set(["members", 0, "id"], "A" * 65), "members[0].id"),
    ("country not alpha-2", _set(["members", 0, "country"], "CHN"), "members[0].country"),
    ("name not a string", _set(["members", 0, "name"], 7), "members[0].name"),
    ("blank name", _set(["members", 0, "name"], "  "), "members[0].name"),
    ("home is an int", _set(["members", 0, "home"], 1), "members[0].home"),
    ("suspended is a string", _set(["members", 0, "suspended"], "no"), "members[0].suspended"),
    ("programs not a list", _set(["members", 1, "programs"], "SSTL"), "members[1].programs"),
    ("duplicate program", _set(["members", 1, "programs"], ["SSTL", "SSTL"]), "members[1].programs[1]"),
    ("bad fingerprint", _set(["members", 0, "certificates"], ["ABC"]), "members[0].certificates[0]"),
    (
        "upper-case fingerprint",
        _set(["members", 0, "certificates"], ["A" * 64]),
        "members[0].certificates[0]",
    ),
    (
        "too many certificates",
        _set(["members", 0, "certificates"], [f"{i:064x}" for i in range(MAX_CERTS_PER_MEMBER + 1)]),
        "members[0].certificates",
    ),
    (
        "endpoint unknown kind",
        _set(["members", 0, "endpoints"], [{"kind": "ftp"}]),
        "members[0].endpoints[0].kind",
    ),
    (
        "endpoint unknown key",
        _set(["members", 0, "endpoints"], [{"kind": "pull", "x": 1}]),
        "members[0].endpoints[0].x",
    ),
    (
        "pull with url",
        _set(["members", 0, "endpoints"], [{"kind": "pull", "url": "https://x"}]),
        "members[0].endpoints[0].url",
    ),
    (
        "webhook without url",
        _set(["members", 0, "endpoints"], [{"kind": "webhook"}]),
        "members[0].endpoints[0].url",
    ),
    ("duplicate id", _set(["members", 2, "id"], "CN-GACC"), "members[2].id"),
    ("fingerprint of two members", _set(["members", 2, "certificates"], [FP1]), "members[2].certificates"),
    ("two home members", _set(["members", 2, "home"], True), "members[2].home"),
]


@pytest.mark.parametrize(("edit", "field"), [c[1:] for c in STRICT_CASES], ids=[c[0] for c in STRICT_CASES])
def test_strict_errors_name_the_field(edit: Edit, field: str) -> None:
    doc = _doc()  # members sorted: [0] CARRIER-COSCO, [1] CN-GACC (home), [2] NL-DOUANE
    edit(doc)
    with pytest.raises(Invalid) as err:
        parse_registry(doc)
    assert err.value.field == field
    assert err.value.code == "SCHEMA_INVALID"
    assert err.value.public == "the federation registry is invalid"


def test_member_count_limit() -> None:
    doc = {"version": "0" * 64, "members": [{}] * (MAX_MEMBERS + 1)}
    with pytest.raises(Invalid) as err:
        parse_registry(doc)
    assert err.value.field == "members"


@pytest.mark.parametrize("top", [None, [], "registry", 3, {"members": []}, {"version": "0" * 64}])
def test_top_level_shape(top: object) -> None:
    with pytest.raises(Invalid):
        parse_registry(top)


# -- properties --------------------------------------------------------------------------------------------

_WORD = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=6)
_IDS = st.lists(_WORD, min_size=1, max_size=3).map("-".join)
_FPS = st.binary(min_size=32, max_size=32).map(bytes.hex)


@st.composite
def _registries(draw: st.DrawFn) -> Registry:
    ids = draw(st.lists(_IDS, unique=True, max_size=6))
    fps = iter(draw(st.lists(_FPS, unique=True, min_size=3 * len(ids), max_size=3 * len(ids))))
    home = draw(st.sampled_from([None, *ids]))
    members = [
        Member(
            id=member_id,
            name=draw(st.text(min_size=1, max_size=30).filter(str.strip)),
            kind=draw(st.sampled_from(list(MemberKind))),
            country=draw(st.sampled_from(["CN", "NL", "US", "DE", "SG"])),
            programs=frozenset(draw(st.lists(st.sampled_from(["SSTL", "CSI", "MEGAPORT", "MRA-CN-EU"])))),
            cert_fingerprints=frozenset(next(fps) for _ in range(draw(st.integers(0, 3)))),
            endpoints=tuple(
                draw(
                    st.lists(
                        st.one_of(
                            st.just(Endpoint("pull")),
                            st.builds(Endpoint, st.sampled_from(["webhook", "grpc", "soap"]),
                                      _WORD.map(lambda w: f"https://{w.lower()}.example/inbox")),
                        ),
                        max_size=3,
                    )
                )
            ),
            suspended=draw(st.booleans()),
            home=member_id == home,
        )
        for member_id in ids
    ]  # fmt: skip
    return build_registry(members)


@settings(max_examples=80, deadline=None)
@given(registry=_registries(), seed=st.integers(0, 1000))
def test_round_trip_property(registry: Registry, seed: int) -> None:
    doc = json.loads(json.dumps(registry_to_json(registry)))
    random.Random(seed).shuffle(doc["members"])
    assert parse_registry(doc) == registry


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(junk=_JSON, member=st.dictionaries(st.sampled_from(["id", "name", "kind", "country", "home"]), _JSON))
def test_arbitrary_json_only_ever_raises_invalid(junk: object, member: dict[str, object]) -> None:
    fields: list[str | None] = []
    for doc in (junk, {"version": "0" * 64, "members": [member]}, {"version": "0" * 64, "members": junk}):
        try:
            parse_registry(doc)
        except Invalid as exc:  # anything else (TypeError, KeyError ...) fails the test
            fields.append(exc.field)
    assert None not in fields
