"""Typed configuration values the exchange, delivery and the adapters read (parsed by ``gateway.app.settings``).

Why here: the values are needed below the composition root (the pipeline's limits, the push worker's retry
policy, the adapters' HTTP limits), while the TOML loader belongs to the app; every limit has a name, a default
and the reason beside it, and the README's configuration reference lists them all (tests/unit/test_settings.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Limits:
    # A signed header + 1 MiB payload fits; larger bodies are refused before they are read (memory bound).
    max_body_bytes: int = 2 * 1024 * 1024
    # Bounds the JSON the inbox returns in one response and the work of one pull.
    max_pull_items: int = 100
    # Long-poll waits are bounded so a client cannot park a request forever.
    max_wait_seconds: float = 30.0
    # Cursor lists in one ack request.
    max_ack_items: int = 500
    # Ledger entry range per request (auditors page through).
    max_ledger_range: int = 1000
    # Header count and size for the HTTP parser (memory). The Cgw-Envelope header carries a JWS with an x5c
    # chain (about 2 KiB for one P-256 certificate); 16 KiB leaves room for a 4-certificate chain, no more.
    max_header_count: int = 64
    max_header_bytes: int = 16 * 1024
    # A connection must deliver a complete request head within this time of opening (after the TLS handshake)
    # or of its previous answer, else it is closed (slowloris); an idle keep-alive connection closes after it too.
    header_timeout_seconds: float = 10.0
    # A request body must have arrived completely this long after its head (max_body_bytes in 30 s is ~70 KB/s);
    # a slower body is answered 408 REQUEST_TIMEOUT and its connection closed.
    body_timeout_seconds: float = 30.0
    # Accepted clock skew between a sender's `created` and our clock.
    clock_skew_seconds: int = 300
    # Longest allowed `expires - created` of a message.
    max_message_lifetime_seconds: int = 7 * 24 * 3600
    # Access tokens from /v1/token live this long.
    token_ttl_seconds: int = 300
    # Concurrent submits being processed; beyond it callers get 429 (bounded memory, not unbounded queues).
    max_inflight_submits: int = 512
    # Rejections of unauthenticated callers are counted and written as ONE ``rejected_summary`` ledger leaf per
    # this many seconds (gateway/exchange/rejections.py): an anonymous flood costs one leaf per interval, not one each.
    rejected_summary_seconds: float = 60.0
    # Distinct (code, adapter, peer network) counts one summary keeps; beyond it networks count under "*"
    # (at most 256: the leaf stays well below the 64 KiB an offline audit accepts for one entry).
    rejected_summary_keys: int = 256

    @property
    def clock_skew(self) -> timedelta:
        return timedelta(seconds=self.clock_skew_seconds)

    @property
    def max_message_lifetime(self) -> timedelta:
        return timedelta(seconds=self.max_message_lifetime_seconds)


@dataclass(frozen=True, slots=True)
class Delivery:
    """``[delivery]``: push delivery to members whose registry endpoint is a webhook (gateway/delivery/worker.py)."""

    # Attempts before a message becomes a dead letter (an operator redrives it through the admin API).
    max_attempts: int = 18
    # Backoff after attempt n: min(max, base * 2**(n-1)), half of it fixed and half random (jitter). With the
    # defaults the retries of one item span 61 min to 2 h 2 min (gateway.delivery.worker.retry_span): an endpoint
    # that is down for less than an hour loses nothing to the dead letters.
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 900.0
    # Pushes in flight to one recipient: a slow endpoint cannot take every connection of the gateway.
    concurrency_per_recipient: int = 4
    # One push (connect, TLS, request, response) must finish in this time or counts as a retryable timeout.
    timeout_seconds: float = 10.0
    # How often the worker looks for due work (new messages, retries whose time has come).
    poll_interval_seconds: float = 0.5
    # Extra CA certificates (PEM) for webhook TLS besides the system store and the federation anchors.
    ca_file: Path | None = None


def default_policies_dir() -> Path:
    """The shipped Cedar policies: the one default of ``serve`` (``policies_dir``), ``demo`` and ``policy ...``.

    An installed wheel carries them as ``gateway/policies`` (copied from the repository's ``policies/`` at build
    time, see setup.py); a checkout (or an editable install) reads ``policies/`` next to ``gateway/``.
    """
    package = Path(__file__).resolve().parents[1]  # gateway/
    installed = package / "policies"
    return installed if installed.is_dir() else package.parent / "policies"
