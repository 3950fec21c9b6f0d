"""Programmes as data (policies/programs.json), the programme message types, and the policy cases that use them."""

from __future__ import annotations

import copy
import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.errors import Invalid, Unavailable
from gateway.core.model import Member, MemberKind, Registry, Tlp
from gateway.core.payloads import MESSAGE_TYPES, validate_payload
from gateway.core.policy import Authorizer, compile_bundle
from gateway.core.policycase import run_policy_tests
from gateway.core.policyrequests import forward_request, shared_programs, submit_request
from gateway.core.programs import check_registry, parse_programs
from gateway.demo import programsamples
from gateway.demo.samples import to_bytes
from gateway.infra.devpki import MEMBERS as DEV_MEMBERS
from gateway.infra.policyfiles import load_bundle, load_policy_tests, load_programs, load_sample_registry

POLICIES = Path(__file__).resolve().parents[2] / "policies"
RAW = json.loads((POLICIES / "programs.json").read_text())
PROGRAMS = load_programs(POLICIES, MESSAGE_TYPES)
SAMPLE = load_sample_registry(POLICIES)


def test_the_shipped_table() -> None:
    sstl = PROGRAMS.get("SSTL")
    assert sstl is not None
    assert sstl.members == {"CN-GACC", "NL-DOUANE"}
    assert sstl.default_tlp is Tlp.AMBER
    assert "CNYTN-NLRTM" in {lane.key for lane in sstl.lanes}
    assert PROGRAMS.program_of("csi.examination-request.v1") == "CSI"
    assert PROGRAMS.program_of("megaport.rpm-alarm.v1") == "MEGAPORT"
    assert PROGRAMS.program_of("intel.recall.v1") is None
    assert PROGRAMS.program_of("manifest.cargo.v1") is None


def test_the_table_agrees_with_the_sample_and_dev_registries() -> None:
    check_registry(PROGRAMS, SAMPLE)
    for dev in DEV_MEMBERS:
        for program in PROGRAMS.programs.values():
            assert (dev.id in program.members) == (program.id in dev.programs), (dev.id, program.id)


def _broken(path: list[Any], value: object) -> dict[str, Any]:
    data = copy.deepcopy(RAW)
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["programs", 0, "id"], "sstl", "programs[0].id"),
        (["programs", 0, "members", 1], "CN-GACC", "programs[0].members[1]"),
        (["programs", 0, "message_types", 0], "sstl.nothing.v1", "programs[0].message_types[0]"),
        (["programs", 1, "message_types", 0], "sstl.security-data.v1", "programs[1].message_types"),
        (["programs", 0, "default_tlp"], "AMBER-ISH", "programs[0].default_tlp"),
        (["programs", 0, "retention_days"], True, "programs[0].retention_days"),
        (["programs", 0, "retention_days"], 0, "programs[0].retention_days"),
        (["programs", 0, "lanes", 0, "origin"], "ZZZZZ", "programs[0].lanes[0].origin"),
        (["programs", 0, "lanes", 0, "destination"], "CNYTN", "programs[0].lanes[0]"),
        (["programs", 0, "lanes", 1], {"origin": "CNYTN", "destination": "NLRTM"}, "programs[0].lanes[1]"),
        (["programs", 0, "lanes", 0, "via"], "BEANR", "programs[0].lanes[0].via"),
        (["programs", 0, "name"], KeyError, "programs[0].name"),
        (["programs", 2, "id"], "SSTL", "programs[2].id"),
    ],
)
def test_a_broken_table_is_refused_with_a_path(path: list[Any], value: object, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_programs(_broken(path, value), MESSAGE_TYPES)
    assert caught.value.field == field


def test_legacy_port_codes_in_lanes_are_read_as_the_current_code() -> None:
    programs = parse_programs(_broken(["programs", 0, "lanes", 1, "origin"], "CNSHA"), MESSAGE_TYPES)
    sstl = programs.get("SSTL")
    assert sstl is not None and sstl.lanes[1].key == "CNSHG-NLRTM"


def test_a_registry_that_disagrees_is_refused() -> None:
    members = dict(SAMPLE.members)
    cbp = members["US-CBP"]
    members["US-CBP"] = Member(cbp.id, cbp.name, cbp.kind, cbp.country, frozenset({"CSI"}))
    with pytest.raises(Invalid, match="US-CBP"):
        check_registry(PROGRAMS, Registry("other", members))
    members["NL-DOUANE"] = Member(
        "NL-DOUANE", "Douane", MemberKind.CUSTOMS, "NL", frozenset({"SSTL", "MEGAPORT", "CSI"})
    )
    members["US-CBP"] = cbp
    with pytest.raises(Unavailable, match="NL-DOUANE"):  # the authorizer fails closed on it
        Authorizer(load_bundle(POLICIES), Registry("other", members), MESSAGE_TYPES, programs=PROGRAMS)


def test_every_policy_case_passes_on_the_sample_federation() -> None:
    authorizer = Authorizer(load_bundle(POLICIES), SAMPLE, MESSAGE_TYPES, programs=PROGRAMS, validate_requests=True)
    cases = load_policy_tests(POLICIES)
    assert {c.request.action for c in cases} >= {"submit", "receive", "forward", "read_status", "audit_read", "admin"}
    failures = run_policy_tests(authorizer, cases)
    assert not failures, [(f.case.name, f.reason) for f in failures]


def test_builders_state_the_recipients_shared_programmes() -> None:
    members = SAMPLE.members
    assert shared_programs([members["NL-DOUANE"], members["US-CBP"]]) == ["MEGAPORT"]
    assert shared_programs([members["CN-GACC"], members["CARRIER-COSCO"]]) == []
    assert shared_programs([]) == []
    request = forward_request(
        members["US-CBP"],
        "megaport.rpm-alarm.v1",
        "MEGAPORT",
        "AMBER",
        [members["NL-DOUANE"]],
        original_sender="PORT-NLRTM",
    )
    assert request.action == "forward"
    assert request.context["original_sender"] == "PORT-NLRTM"
    assert request.context["shared_programs"] == ["MEGAPORT", "SSTL"]
    sstl = submit_request(
        members["CN-GACC"], "sstl.security-data.v1", "SSTL", "AMBER", [members["NL-DOUANE"]], lane="CNYTN-NLRTM"
    )
    assert sstl.context["lane"] == "CNYTN-NLRTM"


# -- the programme message types ---------------------------------------------------------------------------

SAMPLES = {
    "sstl.security-data.v1": programsamples.sstl_security_data(),
    "sstl.control-result.v1": programsamples.sstl_control_result(),
    "csi.examination-request.v1": programsamples.csi_examination_request(),
    "csi.examination-result.v1": programsamples.csi_examination_result(),
    "megaport.rpm-alarm.v1": programsamples.rpm_alarm(),
    "megaport.adjudication.v1": programsamples.alarm_adjudication(),
    "intel.recall.v1": programsamples.intel_recall("NL-DOUANE", "0b1c2d3e-0000-4000-8000-000000000001"),
}


@pytest.mark.parametrize("message_type", sorted(SAMPLES))
def test_every_programme_sample_validates(message_type: str) -> None:
    validated = validate_payload(message_type, "application/json", to_bytes(SAMPLES[message_type]))
    assert validated.type == message_type


def test_the_sstl_lane_and_the_recall_target_are_extracted() -> None:
    data = validate_payload("sstl.security-data.v1", "application/json", to_bytes(SAMPLES["sstl.security-data.v1"]))
    assert {p.role: p.code for p in data.ports} == {"origin_port": "CNYTN", "destination_port": "NLRTM"}
    recall = validate_payload("intel.recall.v1", "application/json", to_bytes(SAMPLES["intel.recall.v1"]))
    assert recall.recalled == ("NL-DOUANE", "0b1c2d3e-0000-4000-8000-000000000001")


@pytest.mark.parametrize(
    ("message_type", "change", "field"),
    [
        ("megaport.rpm-alarm.v1", {"containerNumber": "MSKU9070324"}, "payload.containerNumber"),
        ("megaport.rpm-alarm.v1", {"alarmCategory": "ALARM_CATEGORY_UNSPECIFIED"}, "payload.alarmCategory"),
        ("megaport.rpm-alarm.v1", {"detectors": []}, "payload.detectors"),
        ("sstl.security-data.v1", {"originPort": "ZZZZZ"}, "payload.originPort"),
        ("csi.examination-request.v1", {"containerNumbers": []}, "payload.containerNumbers"),
        ("csi.examination-result.v1", {"hostResponse": "MAYBE"}, "payload.hostResponse"),
        ("intel.recall.v1", {"originalSender": "nl-douane"}, "payload.originalSender"),
    ],
)
def test_programme_payloads_are_checked_with_paths(message_type: str, change: dict[str, Any], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        validate_payload(message_type, "application/json", to_bytes({**SAMPLES[message_type], **change}))
    assert caught.value.field is not None and caught.value.field.startswith(field)


# -- forward decisions as a property: the TLP and programme rules written out in Python, independently of Cedar --

FORWARDABLE_TYPES = (
    "manifest.cargo.v1",
    "megaport.rpm-alarm.v1",
    "csi.examination-result.v1",
    "sstl.control-result.v1",
)
AUTHORIZER = Authorizer(load_bundle(POLICIES), SAMPLE, MESSAGE_TYPES, programs=PROGRAMS)


def expected_forward(forwarder: Member, message_type: str, program: str, tlp: Tlp, recipients: list[Member]) -> bool:
    owner = PROGRAMS.program_of(message_type) or ""
    shared = set(shared_programs(recipients))
    if forwarder.suspended or forwarder.kind is MemberKind.AUDITOR:
        return False
    if program and program not in forwarder.programs:
        return False
    if owner and (program != owner or owner not in shared):
        return False
    if owner == "SSTL":  # the samples below never carry a lane
        return False
    if tlp in (Tlp.RED, Tlp.AMBER_STRICT):
        return False
    if tlp is Tlp.AMBER and (not program or program not in shared):
        return False
    if tlp is Tlp.GREEN and program and program not in shared:
        return False
    in_program = bool(program) and program in forwarder.programs and program in shared
    return bool(recipients) and (in_program or tlp is Tlp.CLEAR)


@settings(max_examples=300, deadline=None)
@given(
    forwarder=st.sampled_from(sorted(SAMPLE.members.values(), key=lambda m: m.id)),
    message_type=st.sampled_from(FORWARDABLE_TYPES),
    program=st.sampled_from(["", "SSTL", "CSI", "MEGAPORT"]),
    tlp=st.sampled_from(list(Tlp)),
    recipients=st.lists(st.sampled_from(sorted(SAMPLE.members.values(), key=lambda m: m.id)), max_size=3, unique=True),
)
def test_forward_decisions_match_the_written_rules(
    forwarder: Member, message_type: str, program: str, tlp: Tlp, recipients: list[Member]
) -> None:
    request = forward_request(forwarder, message_type, program or None, tlp, recipients, original_sender="PORT-NLRTM")
    decision = AUTHORIZER.authorize(request)
    assert not decision.errors
    assert decision.allowed == expected_forward(forwarder, message_type, program, tlp, recipients), decision


def test_the_programme_table_is_part_of_the_digest(tmp_path: Path) -> None:
    shutil.copytree(POLICIES, tmp_path / "policies")
    before = load_bundle(tmp_path / "policies")
    table = tmp_path / "policies" / "programs.json"
    table.write_text(table.read_text().replace('"destination": "NLRTM"', '"destination": "BEANR"', 1))
    after = load_bundle(tmp_path / "policies")
    assert after.text == before.text and after.schema == before.schema
    assert after.digest != before.digest  # a changed lane changes what every decision records
    forged = dataclasses.replace(after, data=before.data)
    with pytest.raises(Unavailable, match="digest"):
        compile_bundle(forged)
