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
from pathlib import Path
from typing import Any

from gateway.app.federationsettings import KEYS as FEDERATION_KEYS
from gateway.app.federationsettings import FederationSettings, parse_federation_settings
from gateway.core.errors import Unavailable
from gateway.features.release.settings import KEYS as PORT_KEYS
from gateway.features.release.settings import PortSettings, parse_port_settings
from gateway.interfaces.config import Delivery, Limits, default_policies_dir


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
    crash_point: str = ""  # tests only: main.py sets it from CGW_CRASH_POINT (gateway/exchange/faults.py)
    grpc_port: int | None = None  # the gRPC listener (mTLS required) beside REST; None: not started
    ports: PortSettings = field(
        default_factory=PortSettings
    )  # port release synchronisation (gateway/features/release/settings.py)
    # How often the trust files are stat()ed for a replacement (gateway/ops/trustadmin.py); 0: only SIGHUP / admin.
    trust_watch_seconds: float = 1.0
    federation: FederationSettings | None = (
        None  # the federation directory and witness (gateway/app/federationsettings.py)
    )


# A replaced CRL must be picked up well within its own publication interval (a day); an hour is the laxest poll.
MAX_TRUST_WATCH_SECONDS = 3600


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
