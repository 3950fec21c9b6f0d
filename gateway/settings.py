"""Settings: the gateway config file (TOML) parsed ONCE into frozen values.

Rule 1: paths in the file are relative to the directory that holds it; secrets are given as file paths, never
        as values.
Rule 2: unknown sections or keys are errors (a typo must not silently fall back to a default).
Rule 3: every limit has a name, a default and the reason beside it; the README's configuration reference lists
        them all (``tests/unit/test_settings.py`` checks the README against this module).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.core.errors import Unavailable
from gateway.federationsettings import KEYS as FEDERATION_KEYS
from gateway.federationsettings import FederationSettings, parse_federation_settings
from gateway.portsettings import KEYS as PORT_KEYS
from gateway.portsettings import PortSettings, parse_port_settings


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
    # this many seconds (gateway/rejections.py): an anonymous flood costs one leaf per interval, not one each.
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
    """``[delivery]``: push delivery to members whose registry endpoint is a webhook (gateway/delivery.py)."""

    # Attempts before a message becomes a dead letter (an operator redrives it through the admin API).
    max_attempts: int = 18
    # Backoff after attempt n: min(max, base * 2**(n-1)), half of it fixed and half random (jitter). With the
    # defaults the retries of one item span 61 min to 2 h 2 min (gateway.delivery.retry_span): an endpoint that is
    # down for less than an hour loses nothing to the dead letters.
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


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """``[store]``: where messages, inboxes, replay cache and ledger leaves live (gateway.infra)."""

    backend: str = "sqlite"  # "sqlite": one process, <data_dir>/gateway.db; "redis": several processes share it
    redis_url: str = "redis://127.0.0.1:6379/0"  # no password in it: use redis_password_file
    redis_password_file: Path | None = None  # a file holding the Redis password (AUTH), if it needs one
    # All keys are "{key_prefix}:..." (one Redis Cluster hash slot); gateways sharing state share the prefix.
    key_prefix: str = "cgw"
    # Development only: start on a Redis without AOF or with an evicting maxmemory-policy (loses messages).
    allow_no_persistence: bool = False


STORE_BACKENDS = ("sqlite", "redis")


@dataclass(frozen=True, slots=True)
class Settings:
    member_id: str
    origin: str
    host: str
    rest_port: int
    data_dir: Path
    tls_cert: Path
    tls_key: Path
    trust_anchors: Path
    trust_crl: Path
    trust_registry: Path
    signing_cert: Path
    signing_key: Path
    checkpoint_key: Path
    policies_dir: Path
    limits: Limits = field(default_factory=Limits)
    store: StoreSettings = field(default_factory=StoreSettings)
    delivery: Delivery = field(default_factory=Delivery)
    crash_point: str = ""  # tests only: main.py sets it from CGW_CRASH_POINT (gateway/faults.py)
    grpc_port: int | None = None  # the gRPC listener (mTLS required) beside REST; None: not started
    ports: PortSettings = field(default_factory=PortSettings)  # port release synchronisation (gateway/portsettings.py)
    # How often the trust files are stat()ed for a replacement (gateway/trustadmin.py); 0: only SIGHUP / admin.
    trust_watch_seconds: float = 1.0
    federation: FederationSettings | None = None  # the federation directory and witness (gateway/federationsettings.py)


# A replaced CRL must be picked up well within its own publication interval (a day); an hour is the laxest poll.
MAX_TRUST_WATCH_SECONDS = 3600


def default_policies_dir() -> Path:
    """The shipped Cedar policies: the one default of ``serve`` (``policies_dir``), ``demo`` and ``policy ...``.

    An installed wheel carries them as ``gateway/policies`` (copied from the repository's ``policies/`` at build
    time, see setup.py); a checkout (or an editable install) reads ``policies/`` next to ``gateway/``.
    """
    package = Path(__file__).resolve().parent
    installed = package / "policies"
    return installed if installed.is_dir() else package.parent / "policies"


_SECTIONS: dict[str, set[str]] = {
    "gateway": {"member_id", "origin", "host", "rest_port", "grpc_port", "data_dir", "policies_dir"},
    "tls": {"cert", "key"},
    "trust": {"anchors", "crl", "registry", "watch_seconds"},
    "signing": {"cert", "key", "checkpoint_key"},
    "limits": {f.name for f in fields(Limits)},
    "store": {f.name for f in fields(StoreSettings)},
    "delivery": {f.name for f in fields(Delivery)},
    "ports": set(PORT_KEYS),
    "federation": set(FEDERATION_KEYS),
}


def _get(table: dict[str, Any], section: str, key: str, kind: type, *, required: bool = True) -> Any:
    value = table.get(section, {}).get(key)
    if value is None:
        if required:
            raise Unavailable(f"config: missing [{section}] {key}", field=f"{section}.{key}")
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise Unavailable(f"config: [{section}] {key} must be {kind.__name__}", field=f"{section}.{key}")
    return value


def _delivery(table: dict[str, Any], base: Path) -> Delivery:
    values: dict[str, Any] = {}
    for f in fields(Delivery):
        raw = table.get("delivery", {}).get(f.name)
        if raw is not None and f.name == "ca_file":
            values[f.name] = base / str(_get(table, "delivery", "ca_file", str))
        elif raw is not None:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw <= 0:
                raise Unavailable(f"config: [delivery] {f.name} must be a positive number", field=f"delivery.{f.name}")
            values[f.name] = float(raw) if f.type == "float" else int(raw)
    return Delivery(**values)


def _store(table: dict[str, Any], base: Path) -> StoreSettings:
    backend = _get(table, "store", "backend", str, required=False) or "sqlite"
    if backend not in STORE_BACKENDS:
        raise Unavailable(f"config: [store] backend must be one of {STORE_BACKENDS}", field="store.backend")
    default = StoreSettings()
    url = _get(table, "store", "redis_url", str, required=False) or default.redis_url
    if "@" in url.partition("://")[2].partition("/")[0]:
        raise Unavailable("config: [store] redis_url must not hold credentials", field="store.redis_url")
    password = _get(table, "store", "redis_password_file", str, required=False)
    allow = _get(table, "store", "allow_no_persistence", bool, required=False)
    return StoreSettings(
        backend=backend,
        redis_url=url,
        redis_password_file=(base / password) if password else None,
        key_prefix=_get(table, "store", "key_prefix", str, required=False) or default.key_prefix,
        allow_no_persistence=bool(allow),
    )


def load_settings(path: Path, *, overrides: dict[str, Any] | None = None) -> Settings:
    """Read and check the config file; raise ``Unavailable`` (fail closed) on any problem."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise Unavailable(f"config: cannot read {path}: {exc}") from exc
    for section, content in table.items():
        if section not in _SECTIONS or not isinstance(content, dict):
            raise Unavailable(f"config: unknown section [{section}]", field=section)
        unknown = set(content) - _SECTIONS[section]
        if unknown:
            raise Unavailable(f"config: unknown key(s) {sorted(unknown)} in [{section}]", field=section)
    for key, value in (overrides or {}).items():
        section, _, name = key.partition(".")
        table.setdefault(section, {})[name] = value
    base = path.resolve().parent

    def rel(section: str, key: str) -> Path:
        return base / str(_get(table, section, key, str))

    limit_values: dict[str, Any] = {}
    for f in fields(Limits):
        raw = table.get("limits", {}).get(f.name)
        if raw is not None:
            expected = float if f.type == "float" else int
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw <= 0:
                raise Unavailable(f"config: [limits] {f.name} must be a positive number", field=f"limits.{f.name}")
            limit_values[f.name] = expected(raw)
    policies = _get(table, "gateway", "policies_dir", str, required=False)
    port = _get(table, "gateway", "rest_port", int)
    if not 0 <= port <= 65535:
        raise Unavailable("config: [gateway] rest_port out of range", field="gateway.rest_port")
    grpc_port = _get(table, "gateway", "grpc_port", int, required=False)
    watch = table.get("trust", {}).get("watch_seconds", 1.0)
    if isinstance(watch, bool) or not isinstance(watch, (int, float)) or not 0 <= watch <= MAX_TRUST_WATCH_SECONDS:
        raise Unavailable(
            f"config: [trust] watch_seconds must be a number in [0, {MAX_TRUST_WATCH_SECONDS}]",
            field="trust.watch_seconds",
        )
    if grpc_port is not None and not 0 <= grpc_port <= 65535:
        raise Unavailable("config: [gateway] grpc_port out of range", field="gateway.grpc_port")
    member_id = _get(table, "gateway", "member_id", str)
    return Settings(
        member_id=member_id,
        origin=_get(table, "gateway", "origin", str),
        host=_get(table, "gateway", "host", str),
        rest_port=port,
        data_dir=rel("gateway", "data_dir"),
        tls_cert=rel("tls", "cert"),
        tls_key=rel("tls", "key"),
        trust_anchors=rel("trust", "anchors"),
        trust_crl=rel("trust", "crl"),
        trust_registry=rel("trust", "registry"),
        signing_cert=rel("signing", "cert"),
        signing_key=rel("signing", "key"),
        checkpoint_key=rel("signing", "checkpoint_key"),
        policies_dir=(base / policies) if policies else default_policies_dir(),
        limits=Limits(**limit_values),
        store=_store(table, base),
        delivery=_delivery(table, base),
        grpc_port=grpc_port,
        ports=parse_port_settings(table.get("ports", {})),
        trust_watch_seconds=float(watch),
        federation=parse_federation_settings(table.get("federation"), base, member_id),
    )
