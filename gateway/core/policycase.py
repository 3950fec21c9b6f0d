"""Policy tests as data: a request, the expected decision and the policies expected to decide it.

Rule 1: test files are written by people and parsed strictly (unknown keys, wrong types, too many cases are
        ``Unavailable`` with the case's path), so a typo never turns a test into one that cannot fail.
Rule 2: a case passes only when the decision, the determining policy ids and the presence of engine errors all
        match; ``run_policy_tests`` returns every failure, not just the first.
Rule 3: the runner is what a policy reload runs before it swaps a new set in (``gateway/ops/policyadmin.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.core.errors import Unavailable
from gateway.core.policy import Authorizer, Decision
from gateway.core.policyrequests import AccessRequest, PeerPrincipal


@dataclass(frozen=True, slots=True)
class PolicyTestCase:
    name: str
    request: AccessRequest
    expect_allowed: bool
    determining: tuple[str, ...]
    expect_errors: bool = False  # True when the deny is meant to come from an error (e.g. unknown member)
    peer: PeerPrincipal | None = None  # the Cgw::PeerGateway a relay case names as its principal


@dataclass(frozen=True, slots=True)
class PolicyTestFailure:
    case: PolicyTestCase
    decision: Decision
    reason: str


# A test file is written by people; beyond this it is not a test file.
MAX_POLICY_TESTS = 10_000
_CASE_KEYS = frozenset(
    {"name", "principal", "action", "resource", "context", "expect", "determining", "errors", "peer"}
)
_PEER_KEYS = frozenset({"administration", "country", "members"})


def _peer(raw: object, principal: str, where: str) -> PeerPrincipal | None:
    """A relay case's peer gateway: ``{"administration", "country", "members": [...]}``, id = the principal."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) != _PEER_KEYS:
        raise Unavailable(f"peer must be an object with exactly {sorted(_PEER_KEYS)}", field=where)
    members = raw["members"]
    if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
        raise Unavailable("peer members must be a list of member ids", field=f"{where}.members")
    for key in ("administration", "country"):
        if not isinstance(raw[key], str):
            raise Unavailable(f"peer {key} must be a string", field=f"{where}.{key}")
    return PeerPrincipal(principal, raw["administration"], raw["country"], frozenset(members))


def _case(raw: object, where: str) -> PolicyTestCase:
    if not isinstance(raw, dict):
        raise Unavailable("a policy test case must be an object", field=where)
    unexpected = sorted(set(raw) - _CASE_KEYS)
    if unexpected:
        raise Unavailable(f"unexpected keys {unexpected}", field=where)
    for key in ("name", "principal", "action", "resource"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise Unavailable(f"{key} must be a non-empty string", field=f"{where}.{key}")
    context = raw.get("context", {})
    if not isinstance(context, dict):
        raise Unavailable("context must be an object", field=f"{where}.context")
    if raw.get("expect") not in ("allow", "deny"):
        raise Unavailable('expect must be "allow" or "deny"', field=f"{where}.expect")
    determining = raw.get("determining", [])
    if not isinstance(determining, list) or not all(isinstance(d, str) for d in determining):
        raise Unavailable("determining must be a list of policy ids", field=f"{where}.determining")
    expect_errors = raw.get("errors", False)
    if not isinstance(expect_errors, bool):
        raise Unavailable("errors must be true or false", field=f"{where}.errors")
    return PolicyTestCase(
        name=raw["name"],
        request=AccessRequest(raw["principal"], raw["action"], raw["resource"], context),
        expect_allowed=raw["expect"] == "allow",
        determining=tuple(sorted(determining)),
        expect_errors=expect_errors,
        peer=_peer(raw.get("peer"), raw["principal"], f"{where}.peer"),
    )


def parse_policy_tests(data: object, source: str = "tests") -> list[PolicyTestCase]:
    """Policy test cases from decoded JSON: a list of {name, principal, action, resource, context,
    expect: "allow"|"deny", determining: [@id...], errors?: bool, peer?: {administration, country, members}}
    (``peer``: the principal is that ``Cgw::PeerGateway``, for ``relay``).

    Raises ``Unavailable`` with a field path."""
    if not isinstance(data, list):
        raise Unavailable("policy tests must be a JSON list", field=source)
    if len(data) > MAX_POLICY_TESTS:
        raise Unavailable(f"more than {MAX_POLICY_TESTS} policy tests", field=source)
    cases = [_case(raw, f"{source}[{i}]") for i, raw in enumerate(data)]
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise Unavailable(f"duplicate test names {duplicates}", field=source)
    return cases


def run_policy_tests(authorizer: Authorizer, cases: Iterable[PolicyTestCase]) -> list[PolicyTestFailure]:
    """Run every case; a case fails on the wrong outcome, other determining policies, or errors it did not
    expect (a deny caused by an error is not the deny a policy test asks for)."""
    failures: list[PolicyTestFailure] = []
    for case in cases:
        decision = authorizer.authorize(case.request, peer=case.peer)
        reason = ""
        if decision.allowed != case.expect_allowed:
            reason = f"expected {'allow' if case.expect_allowed else 'deny'}"
        elif tuple(sorted(decision.policy_ids)) != case.determining:
            reason = f"determining policies {list(decision.policy_ids)}, expected {list(case.determining)}"
        elif bool(decision.errors) != case.expect_errors:
            reason = "unexpected errors" if decision.errors else "expected evaluation errors"
        if reason:
            failures.append(PolicyTestFailure(case=case, decision=decision, reason=reason))
    return failures
