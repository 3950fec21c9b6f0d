"""The Authorizer's memory of decisions (``gateway.core.policy``): remembered decisions are exactly the engine's,
bounded, and never outlive the authorizer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import policy, policycontext
from gateway.core.model import Member, MemberKind, Registry, Tlp
from gateway.core.policy import Authorizer
from gateway.core.policyrequests import audit_request, submit_request
from gateway.infra.policyfiles import load_bundle

POLICIES = Path(__file__).resolve().parents[2] / "policies"
MESSAGE_TYPES = ("manifest.cargo.v1", "prearrival.ens.v1", "release.notice.v1", "aeo.status.v1")
MEMBERS = (
    Member("CN-GACC", "GACC", MemberKind.CUSTOMS, "CN", home=True),
    Member("NL-DOUANE", "Douane", MemberKind.CUSTOMS, "NL", frozenset({"SSTL"})),
    Member("US-CBP", "CBP", MemberKind.CUSTOMS, "US", frozenset({"CSI"})),
    Member("CARRIER-COSCO", "COSCO", MemberKind.CARRIER, "CN"),
    Member("PORT-NLRTM", "Port of Rotterdam", MemberKind.PORT, "NL", frozenset({"MEGAPORT"})),
    Member("AUDIT-GACC", "Audit", MemberKind.AUDITOR, "CN"),
    Member("CARRIER-MAERSK", "Maersk", MemberKind.CARRIER, "DK", suspended=True),
)
REGISTRY = Registry("cache-test-1", {m.id: m for m in MEMBERS})

requests = st.builds(
    submit_request,
    st.sampled_from(MEMBERS),
    st.sampled_from((*MESSAGE_TYPES, "unknown.type.v1")),
    st.sampled_from((None, "SSTL", "CSI", "MEGAPORT")),
    st.sampled_from([t.value for t in Tlp]),
    st.lists(st.sampled_from(MEMBERS), min_size=1, max_size=3),
)


@pytest.fixture(scope="module")
def authorizer() -> Authorizer:
    return Authorizer(load_bundle(POLICIES), REGISTRY, MESSAGE_TYPES)


@settings(max_examples=60, deadline=None)
@given(st.lists(requests, min_size=1, max_size=6))
def test_remembered_decisions_equal_a_fresh_engine_call(
    authorizer: Authorizer, batch: list[policy.AccessRequest]
) -> None:
    first = authorizer.authorize_many(batch)
    again = authorizer.authorize_many(batch)  # now served from memory where the engine answered before
    fresh = Authorizer(load_bundle(POLICIES), REGISTRY, MESSAGE_TYPES).authorize_many(batch)
    assert first == again == fresh


def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "MAX_CACHED_DECISIONS", 3)
    authorizer = Authorizer(load_bundle(POLICIES), REGISTRY, MESSAGE_TYPES)
    carrier, gacc = REGISTRY.members["CARRIER-COSCO"], REGISTRY.members["CN-GACC"]
    for tlp in Tlp:
        authorizer.authorize(submit_request(carrier, "manifest.cargo.v1", None, tlp.value, [gacc]))
    assert len(authorizer._decided) == 3
    allowed = authorizer.authorize(submit_request(carrier, "manifest.cargo.v1", None, "AMBER", [gacc]))
    assert allowed.allowed


def test_refusals_before_the_engine_are_not_remembered(authorizer: Authorizer) -> None:
    stranger = Member("XX-NOBODY", "Nobody", MemberKind.CARRIER, "XX")
    before = len(authorizer._decided)
    decision = authorizer.authorize(audit_request(stranger))
    assert not decision.allowed
    assert decision.errors
    assert len(authorizer._decided) == before


def test_a_new_registry_starts_with_no_memory(authorizer: Authorizer) -> None:
    carrier, gacc = REGISTRY.members["CARRIER-COSCO"], REGISTRY.members["CN-GACC"]
    request = submit_request(carrier, "manifest.cargo.v1", None, "AMBER", [gacc])
    assert authorizer.authorize(request).allowed
    suspended = Registry(
        "cache-test-2",
        {
            **REGISTRY.members,
            "CARRIER-COSCO": Member("CARRIER-COSCO", "COSCO", MemberKind.CARRIER, "CN", suspended=True),
        },
    )
    reloaded = authorizer.with_registry(suspended)
    assert reloaded._decided == {}
    assert not reloaded.authorize(request).allowed


def test_the_memory_key_tells_context_types_and_values_apart() -> None:
    def key(context: dict[str, object]) -> object:
        return policycontext.request_key(policy.AccessRequest("CN-GACC", "submit", "manifest.cargo.v1", context))

    assert key({"flag": True}) != key({"flag": 1})
    assert key({"to": ["A", "B"]}) != key({"to": ["B", "A"]}) != key({"to": "A,B"})
    assert key({"a": "x", "b": "y"}) == key({"b": "y", "a": "x"})  # the order of the context does not matter
    assert key({"nested": {"x": 1}}) is None  # not a context shape: never remembered, the engine decides
    assert key({"to": ["A", 1]}) is None
