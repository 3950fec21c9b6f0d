"""Prometheus metrics of one gateway (served at ``/metrics`` in the text exposition format).

Rule 1: one ``CollectorRegistry`` per gateway (never the process-global default), so several gateways in one
        process (tests) never share or clash.
Rule 2: every label has a bounded set of values: message types outside the known table count as ``other``,
        decisions, outcomes and certificate uses are fixed words, adapters and endpoint kinds are ours, error
        codes are the stable codes, recipients and certificate holders are registry members. Ids, senders and
        payload content are never labels.
Rule 3: gauges that mirror stored state (inbox depth, dead letters, ledger size) are read from the store at
        scrape time (:meth:`Metrics.refresh`), so they are right after a restart and across processes; the
        expiry gauges (CRL nextUpdate, certificate notAfter) are set at scrape time too
        (:meth:`Metrics.refresh_expiry`, from the current trust and clock).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gateway.interfaces.protocols import Store

# Submit latency from the first pipeline step to the durable write (seconds): group commit puts most of a
# healthy gateway's submits between 1 and 50 ms; the long tail shows fsync stalls and overload.
SUBMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# One push attempt, network included (the delivery timeout bounds it).
DELIVERY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OTHER_TYPE = "other"


class Metrics:
    def __init__(self, message_types: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._types = frozenset(message_types)
        r = self.registry
        self.messages = Counter(
            "cgw_messages",
            "Submissions by message type, decision and adapter",
            ["type", "decision", "adapter"],
            registry=r,
        )
        self.rejections = Counter("cgw_rejections", "Refused submissions by stable error code", ["code"], registry=r)
        self.submit_latency = Histogram(
            "cgw_submit_latency_seconds",
            "Submit latency through the pipeline (to the durable write)",
            ["adapter", "decision"],
            buckets=SUBMIT_BUCKETS,
            registry=r,
        )
        self.inbox_depth = Gauge(
            "cgw_inbox_depth", "Unacknowledged inbox items per recipient", ["recipient"], registry=r
        )
        self.ledger_size = Gauge("cgw_ledger_size", "Leaves in the audit ledger", registry=r)
        self.delivery_attempts = Counter(
            "cgw_delivery_attempts", "Push attempts by endpoint kind and outcome", ["kind", "outcome"], registry=r
        )
        self.delivery_retries = Counter(
            "cgw_delivery_retries", "Push attempts scheduled for a retry", ["kind"], registry=r
        )
        self.dead_lettered = Counter("cgw_dead_lettered", "Messages that became dead letters", ["kind"], registry=r)
        self.dead_letters = Gauge("cgw_dead_letters", "Dead letters waiting for an operator", registry=r)
        self.delivery_latency = Histogram(
            "cgw_delivery_latency_seconds", "One push attempt", ["kind"], buckets=DELIVERY_BUCKETS, registry=r
        )
        self.audit_deferred = Gauge(
            "cgw_audit_deferred", "Rejections waiting to be written to the ledger (the store refused)", registry=r
        )
        self.audit_dropped = Counter(
            "cgw_audit_dropped", "Rejections never written to the ledger (the deferred queue was full)", registry=r
        )
        # federation (gateway/ops/witnessing.py split-view alarms, gateway/ops/directoryadmin.py): alarms and reloads
        self.witness_conflicts = Counter(
            "cgw_witness_conflicts",
            "ALARM: a peer witness holds another view of our ledger (fork or rollback), per peer gateway",
            ["peer"],
            registry=r,
        )
        self.witness_refused = Counter(
            "cgw_witness_refused",
            "Checkpoints our witness refused, by verdict (fork and proof_invalid: a peer's log misbehaves)",
            ["verdict"],
            registry=r,
        )
        self.directory_reloads = Counter(
            "cgw_directory_reloads", "Federation directory reloads by outcome", ["outcome"], registry=r
        )
        self.directory_version = Gauge(
            "cgw_directory_version", "Version of the federation directory in force", registry=r
        )
        self.crl_next_update = Gauge(
            "cgw_crl_next_update_seconds",
            "Seconds until the loaded CRL's nextUpdate (negative: past it, every message is refused)",
            registry=r,
        )
        self.certificate_expiry = Gauge(
            "cgw_certificate_expiry_seconds",
            "Seconds until notAfter: the gateway's own certificates and each member's registered certificates seen",
            ["member", "use"],
            registry=r,
        )
        # The labelled children of the per-submission series, looked up once per label set (Rule 2 bounds them).
        self._submit_series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    def _type(self, message_type: str | None) -> str:
        return message_type if message_type in self._types else OTHER_TYPE

    def submitted(
        self, *, adapter: str, message_type: str | None, decision: str, seconds: float, code: str = "OK"
    ) -> None:
        """One submission: ``decision`` is accepted, duplicate or rejected (then ``code`` is its error code)."""
        key = (self._type(message_type), decision, adapter)
        series = self._submit_series.get(key)
        if series is None:
            series = self._submit_series[key] = (
                self.messages.labels(*key),
                self.submit_latency.labels(adapter, decision),
            )
        series[0].inc()
        series[1].observe(seconds)
        if decision == "rejected":
            self.rejections.labels(code).inc()

    def delivery(self, *, kind: str, outcome: str, seconds: float) -> None:
        """One push attempt; ``outcome`` is delivered, retry or dead."""
        self.delivery_attempts.labels(kind, outcome).inc()
        self.delivery_latency.labels(kind).observe(seconds)
        if outcome == "retry":
            self.delivery_retries.labels(kind).inc()
        elif outcome == "dead":
            self.dead_lettered.labels(kind).inc()

    async def refresh(self, store: Store) -> None:
        """Read the gauges that mirror stored state (Rule 3)."""
        self.ledger_size.set(await store.ledger_size())
        depths = await store.inbox_depths()
        self.inbox_depth.clear()
        for recipient, depth in depths.items():
            self.inbox_depth.labels(recipient).set(depth)
        self.dead_letters.set(await store.dead_letter_count())

    def refresh_expiry(self, crl_seconds: float, certificates: Mapping[tuple[str, str], float]) -> None:
        """Set the expiry gauges (Rule 3, computed by the caller from the current trust and clock): seconds
        until the CRL's nextUpdate (NaN when unknown) and until each (member, use) certificate's notAfter."""
        self.crl_next_update.set(crl_seconds)
        self.certificate_expiry.clear()
        for (member, use), seconds in certificates.items():
            self.certificate_expiry.labels(member, use).set(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
