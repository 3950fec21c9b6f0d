"""The baseline Cedar policies and the authorizer, against the real policy files and the sample federation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cedarpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.errors import LimitExceeded, Unavailable
from gateway.core.model import Member, MemberKind, Registry, Tlp
from gateway.core.payloads import MESSAGE_TYPES as PAYLOAD_TYPES
from gateway.core.policy import Authorizer, bundle_digest, compile_bundle, parse_bundle
from gateway.core.policycase import PolicyTestCase, parse_policy_tests, run_policy_tests
from gateway.core.policycontext import MAX_RECIPIENTS
from gateway.core.policyentities import entity_records
from gateway.core.policyrequests import AccessRequest, audit_request, receive_request, status_request, submit_request
from gateway.infra.policyfiles import load_bundle, load_policy_tests, load_programs

POLICIES = Path(__file__).resolve().parents[2] / "policies"
BASELINE_TYPES = ("manifest.cargo.v1", "prearrival.ens.v1", "release.notice.v1", "aeo.status.v1")
MESSAGE_TYPES = tuple(dict.fromkeys((*PAYLOAD_TYPES, "aeo.status.v1")))

# The sample federation of policies/sample-registry.json (programmes as in policies/programs.json).
GACC = Member(
    "CN-GACC", "General Administration of Customs", MemberKind.CUSTOMS, "CN", frozenset({"SSTL", "CSI"}), home=True
)
DOUANE = Member("NL-DOUANE", "Douane Nederland", MemberKind.CUSTOMS, "NL", frozenset({"SSTL", "MEGAPORT"}))
CBP = Member("US-CBP", "U.S. Customs and Border Protection", MemberKind.CUSTOMS, "US", frozenset({"CSI", "MEGAPORT"}))
COSCO = Member("CARRIER-COSCO", "COSCO Shipping Lines", MemberKind.CARRIER, "CN")
NLRTM = Member("PORT-NLRTM", "Port of Rotterdam", MemberKind.PORT, "NL", frozenset({"MEGAPORT"}))
AUDIT = Member("AUDIT-GACC", "GACC security audit", MemberKind.AUDITOR, "CN")
# Not one of the six sample members: a suspended carrier, so the suspension forbid has a subject.
MAERSK = Member("CARRIER-MAERSK", "Maersk", MemberKind.CARRIER, "DK", suspended=True)
SAMPLE = (GACC, DOUANE, CBP, COSCO, NLRTM, AUDIT)
MEMBERS = (*SAMPLE, MAERSK)
REGISTRY = Registry("test-1", {m.id: m for m in MEMBERS})
PROGRAMS = load_programs(POLICIES, MESSAGE_TYPES)

SUBMIT_PERMITS = {
    "carriers-file-manifests-with-customs",
    "customs-share-manifests-with-customs",
    "customs-notify-release-to-ports-and-carriers",
    "customs-exchange-aeo-status",
}


@pytest.fixture(scope="module")
def bundle_text() -> str:
    return load_bundle(POLICIES).text


@pytest.fixture(scope="module")
def authorizer() -> Authorizer:
    return Authorizer(load_bundle(POLICIES), REGISTRY, MESSAGE_TYPES, programs=PROGRAMS)


@pytest.fixture(scope="module")
def strict_authorizer() -> Authorizer:
    return Authorizer(load_bundle(POLICIES), REGISTRY, MESSAGE_TYPES, validate_requests=True, programs=PROGRAMS)


def policy_ids(text: str) -> set[str]:
    return set(re.findall(r'@id\("([^"]+)"\)', text))


# -- the bundle and its schema ---------------------------------------------------------------------------


def test_baseline_validates_against_schema() -> None:
    bundle = load_bundle(POLICIES)
    assert isinstance(bundle.schema, str)
    result = cedarpy.validate_policies(bundle.text, bundle.schema)
    assert result.validation_passed, [str(e) for e in result.errors]


def test_entities_fit_the_schema() -> None:
    schema = cedarpy.Schema.from_str(str(load_bundle(POLICIES).schema))
    records = entity_records(REGISTRY, MESSAGE_TYPES)
    entities = cedarpy.Entities.from_json_str(json.dumps(records), schema)
    # 7 members, 3 programmes, every message type, the ledger, the gateway, and the schema's 9 actions (relay,
    # decide_release)
    assert len(entities) == 7 + 3 + len(set(MESSAGE_TYPES)) + 2 + 9


def test_every_policy_is_annotated_and_covered_by_a_case(bundle_text: str) -> None:
    annotated = policy_ids(bundle_text)
    assert len(annotated) == bundle_text.count("permit (") + bundle_text.count("forbid (")
    covered = {d for case in load_policy_tests(POLICIES) for d in case.determining}
    assert annotated == covered


def test_every_policy_case_passes(authorizer: Authorizer) -> None:
    cases = load_policy_tests(POLICIES)
    assert len(cases) >= 40
    failures = run_policy_tests(authorizer, cases)
    assert not failures, [(f.case.name, f.reason, f.decision) for f in failures]


def test_policy_cases_also_pass_with_cedar_request_validation(strict_authorizer: Authorizer) -> None:
    """The per-action context table and the schema agree: requests the table admits pass Cedar's own check."""
    failures = run_policy_tests(strict_authorizer, load_policy_tests(POLICIES))
    assert not failures, [(f.case.name, f.reason, f.decision) for f in failures]


def test_runner_reports_a_wrong_expectation(authorizer: Authorizer) -> None:
    wrong = parse_policy_tests(
        [
            {
                "name": "port files a manifest (wrongly expected)",
                "principal": "PORT-NLRTM",
                "action": "submit",
                "resource": "manifest.cargo.v1",
                "context": {
                    "tlp": "CLEAR",
                    "program": "",
                    "recipient_kinds": ["customs"],
                    "recipients": ["CN-GACC"],
                    "recipient_count": 1,
                },
                "expect": "allow",
                "determining": [],
            },
            {
                "name": "auditor reads the ledger (wrong policy named)",
                "principal": "AUDIT-GACC",
                "action": "audit_read",
                "resource": "audit",
                "expect": "allow",
                "determining": ["members-read-own-status"],
            },
            {
                "name": "unknown member without errors flag",
                "principal": "NOBODY",
                "action": "audit_read",
                "resource": "audit",
                "expect": "deny",
            },
        ]
    )
    failures = run_policy_tests(authorizer, wrong)
    assert [f.reason for f in failures] == [
        "expected allow",
        "determining policies ['auditors-read-ledger'], expected ['members-read-own-status']",
        "unexpected errors",
    ]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("permit (principal, action, resource) when { principal.kind == ", "do not parse"),
        ('@id("x")\npermit (principal, action, resource) when { principal.knd == "port" };', "schema validation"),
        ('@id("x")\npermit (principal, action == Cgw::Action::"delete", resource);', "schema validation"),
        ('permit (principal, action == Cgw::Action::"admin", resource);', "no @id"),
        (
            '@id("x")\npermit (principal, action, resource);\n@id("x")\nforbid (principal, action, resource);',
            "more than one",
        ),
        ("// nothing but a comment\n", "no policies"),
    ],
)
def test_a_broken_bundle_is_refused(bundle_text: str, broken: str, message: str) -> None:
    schema = load_bundle(POLICIES).schema
    with pytest.raises(Unavailable, match=message) as info:
        Authorizer(parse_bundle(broken, schema), REGISTRY, MESSAGE_TYPES)
    assert info.value.field == "policies"
    if message == "no policies":
        return  # a comment appended to a good bundle is harmless
    with pytest.raises(Unavailable):  # a bad policy spoils the whole bundle, not just itself
        compile_bundle(parse_bundle(bundle_text + "\n" + broken, schema))


def test_a_broken_schema_is_refused(bundle_text: str) -> None:
    with pytest.raises(Unavailable, match="schema does not parse") as info:
        Authorizer(parse_bundle(bundle_text, "namespace Cgw { entity Member = { kind: "), REGISTRY, ())
    assert info.value.field == "schema"


def test_a_bundle_whose_digest_does_not_match_is_refused(bundle_text: str) -> None:
    bundle = load_bundle(POLICIES)
    tampered = type(bundle)(text=bundle.text.replace("auditor", "carrier"), schema=bundle.schema, digest=bundle.digest)
    with pytest.raises(Unavailable, match="digest"):
        Authorizer(tampered, REGISTRY, MESSAGE_TYPES)


def test_a_registry_that_does_not_fit_is_refused() -> None:
    bundle = load_bundle(POLICIES)
    with pytest.raises(Unavailable, match="message type") as info:
        Authorizer(bundle, REGISTRY, ["Manifest Cargo"])
    assert info.value.field == "message_types[0]"
    mismatched = Registry("bad", {"ALIAS": GACC})
    with pytest.raises(Unavailable, match="member id"):
        Authorizer(bundle, mismatched, MESSAGE_TYPES)


# -- the digest ------------------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n")), max_size=8))
def test_digest_ignores_line_endings_and_trailing_blanks(lines: list[str]) -> None:
    lf = "\n".join(lines)
    crlf = "\r\n".join(line + "  " for line in lines) + "\r\n\r\n"
    assert bundle_digest(lf, "schema") == bundle_digest(crlf, "schema")


def test_digest_changes_with_policies_and_schema(bundle_text: str) -> None:
    bundle = load_bundle(POLICIES)
    assert bundle.digest == bundle_digest(bundle.text, bundle.schema, bundle.data)
    assert bundle_digest(bundle_text + "\n// more", bundle.schema) != bundle.digest
    assert bundle_digest(bundle_text, str(bundle.schema) + "\n// more") != bundle.digest
    # text and schema are length-prefixed: moving bytes from one to the other changes the digest
    assert bundle_digest("ab", "c") != bundle_digest("a", "bc")
    assert bundle_digest("x", {"b": 1, "a": 2}) == bundle_digest("x", {"a": 2, "b": 1})


def test_decisions_carry_the_digest(authorizer: Authorizer) -> None:
    decision = authorizer.authorize(audit_request(AUDIT))
    assert decision.digest == authorizer.digest == load_bundle(POLICIES).digest
    assert decision.record() == {
        "allowed": True,
        "policies": ["auditors-read-ledger"],
        "policy_digest": authorizer.digest,
        "errors": [],
    }


# -- request builders ------------------------------------------------------------------------------------


def test_submit_request_describes_the_recipients(authorizer: Authorizer) -> None:
    request = submit_request(GACC, "release.notice.v1", None, Tlp.AMBER, [NLRTM, COSCO, NLRTM])
    assert request == AccessRequest(
        "CN-GACC",
        "submit",
        "release.notice.v1",
        {
            "tlp": "AMBER",
            "program": "",
            "recipient_kinds": ["carrier", "port"],
            "recipients": ["CARRIER-COSCO", "PORT-NLRTM"],
            "recipient_count": 3,
            "shared_programs": [],
            "lane": "",
            "original_sender": "",
        },
    )
    decision = authorizer.authorize(request)
    assert decision.allowed
    assert decision.policy_ids == ("customs-notify-release-to-ports-and-carriers",)


def test_submit_request_bounds_the_recipients() -> None:
    with pytest.raises(LimitExceeded) as info:
        submit_request(GACC, "manifest.cargo.v1", None, "GREEN", [DOUANE] * (MAX_RECIPIENTS + 1))
    assert info.value.field == "to"


def test_receive_and_status_builders(authorizer: Authorizer) -> None:
    assert authorizer.authorize(receive_request(NLRTM, "release.notice.v1", GACC, None, "AMBER")).allowed
    assert not authorizer.authorize(receive_request(NLRTM, "manifest.cargo.v1", COSCO, None, "AMBER")).allowed
    assert authorizer.authorize(status_request(COSCO, "manifest.cargo.v1", "CARRIER-COSCO", ["CN-GACC"])).allowed
    assert authorizer.authorize(status_request(DOUANE, "manifest.cargo.v1", "CARRIER-COSCO", ["NL-DOUANE"])).allowed
    assert authorizer.authorize(status_request(AUDIT, "manifest.cargo.v1", "CARRIER-COSCO")).allowed
    assert not authorizer.authorize(status_request(COSCO, "manifest.cargo.v1", "CN-GACC")).allowed
    assert not authorizer.authorize(status_request(NLRTM, "manifest.cargo.v1", "CN-GACC", ["NL-DOUANE"])).allowed
    with pytest.raises(LimitExceeded):
        status_request(GACC, "manifest.cargo.v1", "CN-GACC", ["X"] * (MAX_RECIPIENTS + 1))


def test_authorize_many_keeps_order_and_isolates_bad_requests(authorizer: Authorizer) -> None:
    requests = [receive_request(m, "release.notice.v1", GACC, None, "AMBER") for m in (NLRTM, DOUANE, COSCO, MAERSK)]
    requests.insert(2, AccessRequest("NOBODY", "receive", "release.notice.v1", {}))
    decisions = authorizer.authorize_many(requests)
    assert [d.allowed for d in decisions] == [True, False, False, True, False]
    assert decisions[2].errors == ("unknown principal 'NOBODY'",)
    assert decisions[4].policy_ids == ("suspended-members-forbidden",)
    assert authorizer.authorize_many([]) == []


def test_overlong_context_values_are_denied(authorizer: Authorizer) -> None:
    request = submit_request(COSCO, "manifest.cargo.v1", "X" * 500, "AMBER", [GACC])
    decision = authorizer.authorize(request)
    assert not decision.allowed
    assert decision.errors
    assert "context.program" in decision.errors[0]


# -- registry reloads ------------------------------------------------------------------------------------


def test_with_registry_rebuilds_entities_only(authorizer: Authorizer) -> None:
    request = submit_request(COSCO, "manifest.cargo.v1", None, "AMBER", [GACC])
    assert authorizer.authorize(request).allowed
    suspended = Member(COSCO.id, COSCO.name, COSCO.kind, COSCO.country, suspended=True)
    reloaded = authorizer.with_registry(Registry("test-2", {**REGISTRY.members, COSCO.id: suspended}))
    assert reloaded.registry_version == "test-2"
    assert reloaded.digest == authorizer.digest
    decision = reloaded.authorize(request)
    assert not decision.allowed
    assert decision.policy_ids == ("suspended-members-forbidden",)
    assert authorizer.authorize(request).allowed  # the old authorizer is unchanged


# -- the decision table as a property --------------------------------------------------------------------


def expected_submit(caller: Member, message_type: str, program: str, tlp: Tlp, recipients: list[Member]) -> bool:
    """The baseline submit rules (and the TLP GREEN community rule) written out in Python, independently of Cedar."""
    if caller.suspended or caller.kind is MemberKind.AUDITOR:
        return False
    if program and program not in caller.programs:
        return False
    if tlp is Tlp.GREEN and program and not all(program in m.programs for m in recipients):
        return False
    kinds = {m.kind for m in recipients}
    if not kinds:
        return False
    if caller.kind is MemberKind.CARRIER:
        return message_type in {"manifest.cargo.v1", "prearrival.ens.v1"} and kinds <= {MemberKind.CUSTOMS}
    if caller.kind is MemberKind.CUSTOMS and message_type == "manifest.cargo.v1":
        return kinds <= {MemberKind.CUSTOMS}
    if caller.kind is MemberKind.CUSTOMS and message_type == "release.notice.v1":
        return kinds <= {MemberKind.PORT, MemberKind.CARRIER}
    if caller.kind is MemberKind.CUSTOMS and message_type == "aeo.status.v1":  # policies/aeo.cedar
        return kinds <= {MemberKind.CUSTOMS}
    return False


@settings(max_examples=200, deadline=None)
@given(
    caller=st.sampled_from(MEMBERS),
    message_type=st.sampled_from(BASELINE_TYPES),
    program=st.sampled_from(["", "SSTL", "CSI", "MEGAPORT"]),
    tlp=st.sampled_from(list(Tlp)),
    recipients=st.lists(st.sampled_from(MEMBERS), max_size=4),
)
def test_submit_decisions_match_the_written_rules(
    authorizer: Authorizer, caller: Member, message_type: str, program: str, tlp: Tlp, recipients: list[Member]
) -> None:
    decision = authorizer.authorize(submit_request(caller, message_type, program or None, tlp, recipients))
    assert decision.allowed == expected_submit(caller, message_type, program, tlp, recipients)
    assert not decision.errors
    if decision.allowed:
        assert len(decision.policy_ids) == 1
        assert decision.policy_ids[0] in SUBMIT_PERMITS


# -- loading files ---------------------------------------------------------------------------------------


def write_bundle(directory: Path, schema_name: str, schema: str) -> None:
    (directory / schema_name).write_text(schema)
    forbid = "forbid (principal is Cgw::Member, action, resource) when { principal.suspended };"
    (directory / "b.cedar").write_text('@id("b")\n' + forbid)
    (directory / "a.cedar").write_text('@id("a")\npermit (principal, action, resource == Cgw::Ledger::"audit");')


def test_load_bundle_reads_cedar_files_in_name_order(tmp_path: Path) -> None:
    write_bundle(tmp_path, "schema.cedarschema", (POLICIES / "schema.cedarschema").read_text())
    (tmp_path / "notes.txt").write_text("not a policy")
    bundle = load_bundle(tmp_path)
    assert bundle.text.index('@id("a")') < bundle.text.index('@id("b")')
    assert "not a policy" not in bundle.text
    decision = Authorizer(bundle, REGISTRY, MESSAGE_TYPES).authorize(audit_request(GACC))
    assert decision.allowed
    assert decision.policy_ids == ("a",)


def test_load_bundle_accepts_a_json_schema(tmp_path: Path) -> None:
    member = {"shape": {"type": "Record", "attributes": {"suspended": {"type": "Boolean"}}}}
    schema = {
        "Cgw": {
            "entityTypes": {"Member": member, "Ledger": {}},
            "actions": {"audit_read": {"appliesTo": {"principalTypes": ["Member"], "resourceTypes": ["Ledger"]}}},
        }
    }
    write_bundle(tmp_path, "schema.cedarschema.json", json.dumps(schema))
    bundle = load_bundle(tmp_path)
    assert bundle.schema == schema
    compile_bundle(bundle)


def test_load_bundle_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="does not exist"):
        load_bundle(tmp_path / "missing")
    with pytest.raises(Unavailable, match=r"no \*\.cedar"):
        load_bundle(tmp_path)
    (tmp_path / "a.cedar").write_text("// nothing")
    with pytest.raises(Unavailable, match="exactly one"):
        load_bundle(tmp_path)
    (tmp_path / "schema.cedarschema").write_text("namespace Cgw {}")
    (tmp_path / "schema.cedarschema.json").write_text("{}")
    with pytest.raises(Unavailable, match="exactly one"):
        load_bundle(tmp_path)
    (tmp_path / "schema.cedarschema").unlink()
    (tmp_path / "schema.cedarschema.json").write_text("[1]")
    with pytest.raises(Unavailable, match="JSON object"):
        load_bundle(tmp_path)
    (tmp_path / "schema.cedarschema.json").write_text("{")
    with pytest.raises(Unavailable, match="not JSON"):
        load_bundle(tmp_path)
    (tmp_path / "schema.cedarschema.json").write_text("{}")
    (tmp_path / "a.cedar").write_bytes(b"\xff\xfe")
    with pytest.raises(Unavailable, match="not UTF-8"):
        load_bundle(tmp_path)


def test_load_policy_tests_refuses_bad_cases(tmp_path: Path) -> None:
    assert load_policy_tests(tmp_path) == []
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "a.json").write_text(
        '[{"name": "n", "principal": "p", "action": "a", "resource": "r", "expect": "maybe"}]'
    )
    with pytest.raises(Unavailable) as info:
        load_policy_tests(tmp_path)
    assert info.value.field == "a.json[0].expect"
    (tests / "a.json").write_text('{"cases": []}')
    with pytest.raises(Unavailable, match="JSON list"):
        load_policy_tests(tmp_path)
    (tests / "a.json").write_text("[")
    with pytest.raises(Unavailable, match="not JSON"):
        load_policy_tests(tmp_path)
    case = {"name": "n", "principal": "p", "action": "a", "resource": "r", "expect": "deny"}
    (tests / "a.json").write_text(json.dumps([case]))
    (tests / "b.json").write_text(json.dumps([case]))
    with pytest.raises(Unavailable, match="duplicate"):
        load_policy_tests(tmp_path)
    (tests / "b.json").write_text(json.dumps([{**case, "name": "m", "surprise": 1}]))
    with pytest.raises(Unavailable, match="unexpected keys"):
        load_policy_tests(tmp_path)


def test_parsed_cases_are_values() -> None:
    (case,) = parse_policy_tests(
        [{"name": "n", "principal": "p", "action": "a", "resource": "r", "expect": "deny", "determining": ["z", "y"]}]
    )
    assert case == PolicyTestCase("n", AccessRequest("p", "a", "r", {}), False, ("y", "z"))
