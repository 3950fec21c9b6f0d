"""The rejection tally (gateway/core/tally.py): peer networks, the bound on keys, one summary per interval."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import GatewayError
from gateway.core.ledgercheck import MAX_ENTRY_BYTES
from gateway.core.tally import MAX_SUMMARY_KEYS, OVERFLOW_NETWORK, RejectionTally, peer_network

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.9", "198.51.100.0/24"),  # IPv4-mapped: counted as its IPv4 address
        ("fe80::1%eth0", "fe80::/64"),
        ("", "unknown"),
        (None, "unknown"),
        ("/run/cgw.sock", "unknown"),
    ],
)
def test_peer_network(address: str | None, network: str) -> None:
    assert peer_network(address) == network


def test_counts_drain_once_per_interval() -> None:
    tally = RejectionTally()
    assert tally.drain(T0) is None  # nothing counted: no summary
    for i in range(20):
        tally.add("UNAUTHENTICATED" if i % 2 else "MALFORMED_REQUEST", "rest", "10.0.0.0/24", T0 + timedelta(i))
    summary = tally.drain(T0 + timedelta(days=30))
    assert summary is not None
    assert summary["total"] == 20 and summary["since"] == "2026-12-05T12:00:00.000000Z"
    assert summary["counts"] == [
        {"code": "MALFORMED_REQUEST", "adapter": "rest", "network": "10.0.0.0/24", "count": 10},
        {"code": "UNAUTHENTICATED", "adapter": "rest", "network": "10.0.0.0/24", "count": 10},
    ]
    assert tally.drain(T0) is None  # a new interval starts empty


def test_distinct_networks_are_bounded_and_nothing_is_lost() -> None:
    tally = RejectionTally(max_keys=3)
    for i in range(1000):
        tally.add("UNAUTHENTICATED", "grpc", f"10.{i // 256}.{i % 256}.0/24", T0)
    summary = tally.drain(T0)
    assert summary is not None and summary["total"] == 1000
    assert len(summary["counts"]) == 4
    assert {"code": "UNAUTHENTICATED", "adapter": "grpc", "network": OVERFLOW_NETWORK, "count": 997} in summary[
        "counts"
    ]


def test_a_full_summary_leaf_stays_within_what_an_offline_audit_accepts() -> None:
    tally = RejectionTally(max_keys=10 * MAX_SUMMARY_KEYS)  # clamped to MAX_SUMMARY_KEYS
    for i in range(MAX_SUMMARY_KEYS + 10):
        tally.add("UNSUPPORTED_MEDIA_TYPE", "rest", f"ffff:ffff:ffff:{i:04x}::/64", T0)
    for code in _codes(GatewayError):  # the worst case: every code overflows on every adapter
        for adapter in ("rest", "soap", "grpc"):
            tally.add(code, adapter, "ffff:ffff:ffff:ffff::/64", T0)
    summary = tally.drain(T0)
    assert summary is not None and len(summary["counts"]) > MAX_SUMMARY_KEYS
    leaf = AuditEvent(EventKind.REJECTED_SUMMARY, T0, summary).canonical()
    assert len(leaf) < MAX_ENTRY_BYTES * 3 // 4


def _codes(error: type[GatewayError]) -> set[str]:
    return {error.code}.union(*(_codes(sub) for sub in error.__subclasses__()))
