"""Audit events: the records that become leaves of the tamper-evident ledger.

Rule 1: a leaf is the RFC 8785 (JCS) canonical JSON of the event, so anyone can recompute it from the entry.
Rule 2: events carry codes, ids, digests and decisions, never key material, tokens or payload bodies.
Rule 3: ``at`` is given by the caller (the core has no clock) and is written as RFC 3339 UTC with microseconds.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from gateway.core.canonical import canonical_json


class EventKind(enum.StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"  # one refused request of an authenticated caller
    REJECTED_SUMMARY = "rejected_summary"  # the counted refusals of unauthenticated callers in one interval
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"  # a push attempt that will be retried or was dead-lettered
    RELAY_DELIVERED = "relay_delivered"  # a peer gateway accepted a relayed message; names its receipt (issue 19)
    ACKNOWLEDGED = "acknowledged"
    TOKEN_ISSUED = "token_issued"  # noqa: S105 - an event name, not a secret
    POLICY_RELOADED = "policy_reloaded"
    TRUST_RELOADED = "trust_reloaded"  # anchors, CRL and registry re-read (gateway/ops/trustadmin.py)
    DIRECTORY_RELOADED = "directory_reloaded"  # the federation directory re-read (gateway/ops/directoryadmin.py)
    RECALLED = "recalled"  # one copy (an original or a forward) withdrawn by an intel.recall.v1
    ADMIN = "admin"
    # a release notice or gate-out applied to a port's stream (gateway/features/release/portstream.py)
    PORT_UPDATE = "port_update"
    GATE_OUT_ALERT = "gate_out_alert"  # a container left a port without being released


@lru_cache(maxsize=8)  # an accepted message's time is written three times: store row, receipt, ledger leaf
def rfc3339(at: datetime) -> str:
    """UTC, microsecond precision, ``Z`` suffix: one spelling so canonical bytes are stable (equal instants,
    equal text: the cache may answer for an equal datetime in another zone)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds").removesuffix("+00:00") + "Z"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    kind: EventKind
    at: datetime
    fields: Mapping[str, Any] = field(default_factory=dict)

    def canonical(self) -> bytes:
        """The exact leaf bytes: JCS of ``{"event", "at", **fields}``."""
        body: dict[str, Any] = dict(self.fields)
        body["event"] = self.kind.value
        body["at"] = rfc3339(self.at)
        return canonical_json(body)
