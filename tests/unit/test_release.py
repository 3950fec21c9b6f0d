"""The release lifecycle as a table (gateway/core/release.py): transitions, versions, partial release, gate-out,
and the consumer's view (gaps, replays). Pure: no store, no clock."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.errors import IdentifierInvalid, Invalid, Unavailable
from gateway.core.payloads import validate_payload
from gateway.core.release import (
    BL_WIDE,
    DECISIONS,
    MAX_CONTAINERS_PER_BL,
    TRANSITIONS,
    Effect,
    GateOut,
    PortNotice,
    PortView,
    ReleaseNotice,
    Standing,
    Status,
    StreamGap,
    notice_record,
    parse_gate_out,
    parse_notice,
    parse_notice_record,
    parse_stream_update,
    plan_gate_out,
    plan_notice,
    snapshot_of,
    stream_update_payload,
)
from gateway.demo import releasesamples as portsamples
from gateway.demo.samples import to_bytes
from gateway.features.release.settings import parse_port_settings

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BL = portsamples.BL
A, B, C = portsamples.CONTAINERS


class Port:
    """The gateway side in memory: standings + stream, applying plans like a store does."""

    def __init__(self) -> None:
        self.standings: dict[tuple[str, str], Standing] = {}
        self.stream: list[PortNotice] = []

    def notice(self, decision: Status, version: int, *containers: str) -> list[Effect]:
        notice = ReleaseNotice(BL, containers, decision, version, "NLRTM", "", T0)
        plan = plan_notice(notice, ("CN-GACC", f"m{len(self.stream)}"), self.standings.values())
        self._commit(plan.numbered(len(self.stream) + 1).changes)
        return [o.effect for o in plan.outcomes]

    def gate_out(self, container: str) -> str:
        plan = plan_gate_out(GateOut("NLRTM", container, BL, T0), ("PORT-NLRTM", "g"), self.standings.values())
        self._commit(plan.numbered(len(self.stream) + 1).changes)
        return plan.alert

    def _commit(self, changes: tuple[PortNotice, ...]) -> None:
        for change in changes:
            self.stream.append(change)
            self.standings[(change.transport_document, change.container)] = change.standing()

    def status(self, container: str) -> Status:
        return self.standings[(BL, container)].status


def test_the_table_covers_the_lifecycle() -> None:
    assert TRANSITIONS[(Status.PENDING, Status.HOLD)] is Effect.APPLIED
    assert TRANSITIONS[(Status.HOLD, Status.INSPECT)] is Effect.APPLIED
    assert TRANSITIONS[(Status.INSPECT, Status.RELEASED)] is Effect.APPLIED
    assert TRANSITIONS[(Status.RELEASED, Status.DO_NOT_LOAD)] is Effect.APPLIED
    assert TRANSITIONS[(Status.CANCELLED, Status.HOLD)] is Effect.REINSTATED
    assert TRANSITIONS[(Status.PENDING, Status.CANCELLED)] is Effect.UNKNOWN
    assert TRANSITIONS[(Status.RELEASED, Status.GATED_OUT)] is Effect.APPLIED
    assert (Status.HOLD, Status.GATED_OUT) not in TRANSITIONS
    assert not any(before is Status.GATED_OUT for before, _ in TRANSITIONS)  # it left: nothing applies after
    assert (Status.CANCELLED, Status.CANCELLED) not in TRANSITIONS


def test_partial_release_hold_inspect_release() -> None:
    port = Port()
    assert port.notice(Status.HOLD, 1, A, B, C) == [Effect.APPLIED] * 3
    assert port.notice(Status.INSPECT, 2, B) == [Effect.APPLIED]
    assert port.notice(Status.RELEASED, 3, A) == [Effect.APPLIED]
    assert (port.status(A), port.status(B), port.status(C)) == (Status.RELEASED, Status.INSPECT, Status.HOLD)
    assert [e.seq for e in port.stream] == [1, 2, 3, 4, 5]
    assert port.stream[-1].previous is Status.HOLD


def test_versions_are_monotonic() -> None:
    port = Port()
    port.notice(Status.RELEASED, 5, A)
    assert port.notice(Status.HOLD, 4, A) == [Effect.STALE]  # late, older: recorded and ignored
    assert port.notice(Status.HOLD, 5, A) == [Effect.STALE]  # same version, other decision
    assert port.notice(Status.RELEASED, 5, A) == [Effect.DUPLICATE]
    assert port.status(A) is Status.RELEASED and len(port.stream) == 1


def test_a_bl_wide_notice_covers_known_containers_and_outranks_older_container_notices() -> None:
    port = Port()
    port.notice(Status.HOLD, 1, A, B)
    assert port.notice(Status.RELEASED, 3) == [Effect.APPLIED] * 3  # the B/L, A and B
    assert {c.container for c in port.stream[2:]} == {BL_WIDE, A, B}
    assert port.notice(Status.HOLD, 2, C) == [Effect.STALE]  # C stands at the B/L's v3 already


def test_cancellation_and_reinstatement() -> None:
    port = Port()
    assert port.notice(Status.CANCELLED, 1, A) == [Effect.UNKNOWN]  # reported, not ignored; nothing appended
    assert port.stream == []
    port.notice(Status.DO_NOT_LOAD, 2, A)
    assert port.notice(Status.CANCELLED, 3, A) == [Effect.APPLIED]
    assert port.notice(Status.CANCELLED, 4, A) == [Effect.REFUSED]
    assert port.notice(Status.HOLD, 5, A) == [Effect.REINSTATED]
    assert port.status(A) is Status.HOLD


def test_gate_out_only_of_a_released_container() -> None:
    port = Port()
    port.notice(Status.HOLD, 1, A, B)
    port.notice(Status.RELEASED, 2, A)
    assert port.gate_out(A) == ""
    assert port.status(A) is Status.GATED_OUT
    assert port.gate_out(B) == "container is HOLD, not RELEASED"
    assert port.gate_out(C) == "no release decision for this container at this port"
    assert port.gate_out(A) == "no release decision for this container at this port"  # it left already
    assert port.notice(Status.HOLD, 9, A) == [Effect.REFUSED]


def test_view_detects_gaps_and_ignores_replays() -> None:
    port = Port()
    port.notice(Status.HOLD, 1, A, B)
    port.notice(Status.RELEASED, 2, A)
    port.notice(Status.CANCELLED, 3, B)
    view = PortView("NLRTM").apply_all(port.stream)
    assert view.decisions() == {(BL, A): (Status.RELEASED, 2)}
    assert view.apply_all(port.stream) == view
    with pytest.raises(StreamGap):
        PortView("NLRTM").apply(port.stream[1])
    assert snapshot_of("NLRTM", 4, port.standings.values()) == view


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(DECISIONS)),
            st.integers(min_value=1, max_value=8),
            st.sets(st.sampled_from([A, B, C]), max_size=3),
        ),
        max_size=12,
    ),
    st.integers(min_value=0, max_value=12),
)
def test_snapshot_plus_resume_equals_the_whole_stream(
    decisions: list[tuple[Status, int, set[str]]], offline_after: int
) -> None:
    """Property: a port that reconciles from a snapshot at any point and resumes converges to the full replay."""
    port = Port()
    snapshot: PortView | None = None
    for index, (decision, version, containers) in enumerate(decisions):
        if index == offline_after:
            snapshot = snapshot_of("NLRTM", len(port.stream), port.standings.values())
        port.notice(decision, version, *sorted(containers))
    full = PortView("NLRTM").apply_all(port.stream)
    start = snapshot or snapshot_of("NLRTM", len(port.stream), port.standings.values())
    assert start.apply_all(port.stream).decisions() == full.decisions()
    assert full.decisions() == snapshot_of("NLRTM", len(port.stream), port.standings.values()).decisions()


def test_parsing_checks_every_identifier() -> None:
    notice = parse_notice("application/json", to_bytes(portsamples.release_notice("HOLD", 2, (A, B))))
    assert (notice.transport_document, notice.containers, notice.decision, notice.version) == (
        BL,
        (A, B),
        Status.HOLD,
        2,
    )
    with pytest.raises(IdentifierInvalid) as bad:
        parse_notice("application/json", to_bytes(portsamples.release_notice("HOLD", 2, (A, "MSKU9070324"))))
    assert bad.value.field == "payload.containerNumbers[1]"
    with pytest.raises(Invalid) as repeated:
        parse_notice("application/json", to_bytes(portsamples.release_notice("HOLD", 2, (A, A))))
    assert repeated.value.field == "payload.containerNumbers"
    gate = parse_gate_out("application/json", to_bytes(portsamples.gate_out(A, at=T0)))
    assert gate == GateOut("NLRTM", A, BL, T0)


def test_records_round_trip() -> None:
    port = Port()
    port.notice(Status.HOLD, 1, A)
    entry = port.stream[0]
    assert parse_notice_record(notice_record(entry)) == entry


def test_the_gateways_stream_update_passes_its_own_schema() -> None:
    port = Port()
    port.notice(Status.HOLD, 1, A, B)
    port.notice(Status.RELEASED, 2)
    payload = stream_update_payload("NLRTM", port.stream)
    assert validate_payload("port.stream.v1", "application/json", payload).type == "port.stream.v1"
    assert parse_stream_update("application/json", payload) == port.stream


def test_port_settings_are_checked() -> None:
    settings = parse_port_settings({"push_streams": True, "subscriptions": {"PORT-ANTWERP": ["BEANR", "beanr "]}})
    assert settings.push_streams and settings.subscriptions == {"PORT-ANTWERP": ("BEANR", "BEANR")}
    with pytest.raises(Unavailable) as bad:
        parse_port_settings({"subscriptions": {"PORT-X": ["XXZZZ"]}})
    assert bad.value.field == "ports.subscriptions.PORT-X[0]"
    with pytest.raises(Unavailable):
        parse_port_settings({"push_streams": "yes"})


def test_a_bl_holds_a_bounded_number_of_containers() -> None:
    current = [
        Standing("NLRTM", BL, f"C{i}", Status.HOLD, 1, i + 1, T0, "CN-GACC", "m") for i in range(MAX_CONTAINERS_PER_BL)
    ]
    plan = plan_notice(ReleaseNotice(BL, (A,), Status.HOLD, 2, "NLRTM", "", T0), ("CN-GACC", "m2"), current)
    assert [o.effect for o in plan.outcomes] == [Effect.REFUSED] and plan.changes == ()
    plan = plan_notice(ReleaseNotice(BL, ("C0",), Status.RELEASED, 2, "NLRTM", "", T0), ("CN-GACC", "m3"), current)
    assert [o.effect for o in plan.outcomes] == [Effect.APPLIED]
