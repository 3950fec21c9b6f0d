"""``customs-gateway config check --config gateway.toml``: is this deployment fit to start? Offline, read-only.

One line per check, ``OK`` or ``FAIL`` with the reason; the exit code is 1 when any check fails (2 when the
settings themselves do not parse, since nothing else can be checked then).

Rule 1: each check uses the loader the gateway itself starts with (``load_settings``, ``load_private_key`` with
        its owner-only permission rule, ``load_trust`` with its CRL signature check, ``require_home``,
        ``policyadmin.check_directory`` and the ``Authorizer`` over the live registry), so a check passes exactly
        when the gateway would accept that part at start-up. Nothing is written, nothing is contacted.
Rule 2: a check that needs an earlier result that failed (e.g. the policies need the registry) fails naming it.
Rule 3: certificates: each of the gateway's certificate files must match its private key, be valid now, chain
        to a federation anchor (each certificate directly issued by the next, the last by an anchor) and not be
        listed in the CRL. The CRL must be current now; its days to ``nextUpdate`` are printed.
Rule 4: with a ``[federation]`` section: the signed directory must verify with the operator key, be current and
        list this gateway (``gateway_id``) with its origin and witness key; the TLS client certificate, when
        configured, follows Rule 3 against this gateway's own anchors.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.app.federationsettings import FederationSettings
from gateway.app.settings import Settings, load_settings
from gateway.core.errors import GatewayError
from gateway.core.payloads import MESSAGE_TYPES
from gateway.core.pki import FederationTrust
from gateway.core.policy import Authorizer
from gateway.infra.backends import read_password
from gateway.infra.federationfiles import load_operator_key, load_witness_key, read_directory
from gateway.infra.files import (
    load_certificates,
    load_checkpoint_history,
    load_checkpoint_key,
    load_crl,
    load_private_key,
    load_registry,
)
from gateway.infra.files import load_trust as load_trust_files
from gateway.infra.policyfiles import bundle_programs, load_bundle
from gateway.ops.policyadmin import check_directory
from gateway.ops.trustadmin import require_home

# A CRL whose nextUpdate is closer than this is still OK, but the line says to renew it.
CRL_RENEW_DAYS = 2.0


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


@dataclass
class _Context:
    settings: Settings
    now: datetime
    results: dict[str, Any] = field(default_factory=dict)


class _Needs(Exception):
    """Rule 2: an earlier check this one depends on failed."""


def add_parser(commands: Any) -> None:
    config = commands.add_parser("config", help="check a deployment's configuration")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="settings, keys, certificates, CRL, registry, policies")
    check.add_argument("--config", type=Path, required=True, help="the gateway.toml to check")


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except (GatewayError, OSError, ValueError) as exc:
        print(Check("settings", ok=False, detail=_reason(exc)).line())
        return 2
    checks = check_deployment(settings, datetime.now(UTC))
    print(Check("settings", ok=True, detail=f"{args.config} parses (home member {settings.member_id})").line())
    for check in checks:
        print(check.line())
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) + 1 - failed} of {len(checks) + 1} checks OK" + (f", {failed} FAILED" if failed else ""))
    return 1 if failed else 0


def check_deployment(settings: Settings, now: datetime) -> list[Check]:
    """Every check after the settings parse, in order (Rule 1, Rule 2)."""
    context = _Context(settings, now)
    steps: Sequence[tuple[str, Callable[[_Context], str]]] = (
        ("tls key", lambda c: _key(c, "tls key", c.settings.tls_key)),
        ("signing key", lambda c: _key(c, "signing key", c.settings.signing_key)),
        ("checkpoint key", _checkpoint_key),
        *((("redis password file", _redis_password),) if settings.store.redis_password_file else ()),
        ("registry", _registry),
        ("trust anchors and CRL", _trust),
        ("CRL current", _crl_current),
        ("tls certificate", lambda c: _certificate(c, c.settings.tls_cert, "tls key")),
        ("signing certificate", lambda c: _certificate(c, c.settings.signing_cert, "signing key")),
        ("policies", _policies),
        ("policies agree with the registry", _policies_registry),
        *(_federation_steps(settings.federation) if settings.federation else ()),
    )
    checks: list[Check] = []
    for name, step in steps:
        try:
            checks.append(Check(name, ok=True, detail=step(context)))
        except (GatewayError, OSError, ValueError, _Needs) as exc:
            checks.append(Check(name, ok=False, detail=_reason(exc)))
            context.results.pop(name, None)
    return checks


def _federation_steps(federation: FederationSettings) -> Sequence[tuple[str, Callable[[_Context], str]]]:
    """With a ``[federation]`` section: the signed directory and, when configured, the TLS client certificate
    towards the peers (the same certificate rules as the gateway's own, Rule 3)."""
    steps: list[tuple[str, Callable[[_Context], str]]] = [
        ("federation directory", lambda c: _federation_directory(c, federation))
    ]
    if federation.client_cert is not None and federation.client_key is not None:
        cert, key = federation.client_cert, federation.client_key
        steps.append(("federation client key", lambda c: _key(c, "federation client key", key)))
        steps.append(("federation client certificate", lambda c: _certificate(c, cert, "federation client key")))
    return steps


def _federation_directory(context: _Context, federation: FederationSettings) -> str:
    directory = read_directory(federation.directory, load_operator_key(federation.operator_key), context.now)
    me = directory.gateways.get(federation.gateway_id)
    if me is None or me.origin != context.settings.origin:
        raise ValueError(
            f"version {directory.version} does not list {federation.gateway_id} with origin {context.settings.origin}"
        )
    if _public_of(me.witness.key) != _public(load_witness_key(federation.witness_key)):
        raise ValueError(f"{federation.witness_key} is not the witness key the directory lists")
    peers = sorted(set(directory.gateways) - {federation.gateway_id})
    return f"version {directory.version} verifies, lists {federation.gateway_id}; peers: {', '.join(peers) or 'none'}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, GatewayError):
        return exc.detail + (f" (at {exc.field})" if exc.field else "")
    return str(exc)


def _need(context: _Context, name: str) -> Any:
    if name not in context.results:
        raise _Needs(f"not checked: {name} failed")
    return context.results[name]


def _public(key: Any) -> bytes:
    return bytes(key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def _key(context: _Context, name: str, path: Path) -> str:
    """Loads with the gateway's rule: a regular file only its owner can read (chmod 600)."""
    context.results[name] = load_private_key(path)
    return f"{path} loads, mode owner-only"


def _checkpoint_key(context: _Context) -> str:
    key = load_checkpoint_key(context.settings.checkpoint_key)
    history = load_checkpoint_history(context.settings.checkpoint_key, context.settings.origin)
    if _public(key) != _public_of(history.current):
        raise ValueError("the checkpoint key is not the last key of checkpoint.keys (rotate-key half done?)")
    return f"Ed25519, {len(history.keys)} key(s) in the published history"


def _public_of(public_key: Any) -> bytes:
    return bytes(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


def _redis_password(context: _Context) -> str:
    read_password(context.settings)
    return f"{context.settings.store.redis_password_file} readable by its owner only"


def _trust(context: _Context) -> str:
    s = context.settings
    _need(context, "registry")
    trust = load_trust_files(s.trust_anchors, s.trust_crl, s.trust_registry)
    context.results["trust anchors and CRL"] = trust
    anchors = len(load_certificates(s.trust_anchors))
    return f"{anchors} anchor(s); CRL signed by {trust.crl_issuer}, {trust.revoked_count} revoked"


def _crl_current(context: _Context) -> str:
    trust: FederationTrust = _need(context, "trust anchors and CRL")
    this_update, next_update = trust.crl_window
    if not this_update <= context.now < next_update:
        raise ValueError(f"not current now (valid {this_update.isoformat()} .. {next_update.isoformat()}): renew it")
    days = (next_update - context.now).total_seconds() / 86_400
    advice = f" (renew soon: under {CRL_RENEW_DAYS:g} days)" if days < CRL_RENEW_DAYS else ""
    return f"nextUpdate {next_update.isoformat()}, {days:.1f} days from now{advice}"


def _certificate(context: _Context, path: Path, key_name: str) -> str:
    """Rule 3."""
    _need(context, "trust anchors and CRL")
    key = _need(context, key_name)
    chain = load_certificates(path)
    crl = load_crl(context.settings.trust_crl)
    leaf = chain[0]
    if _public_of(leaf.public_key()) != _public(key):
        raise ValueError(f"{path} does not match the {key_name}")
    for cert in chain:
        if not cert.not_valid_before_utc <= context.now <= cert.not_valid_after_utc:
            raise ValueError(f"{cert.subject.rfc4514_string()} is not valid now (until {cert.not_valid_after_utc})")
        if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            raise ValueError(f"{cert.subject.rfc4514_string()} (serial {cert.serial_number:x}) is revoked in the CRL")
    for lower, upper in itertools.pairwise(chain):
        _issued(lower, [upper])
    anchor = _issued(chain[-1], load_certificates(context.settings.trust_anchors))
    days = (leaf.not_valid_after_utc - context.now).total_seconds() / 86_400
    return f"matches its key, chains to {anchor.subject.rfc4514_string()}, expires in {days:.0f} days"


def _issued(cert: x509.Certificate, issuers: list[x509.Certificate]) -> x509.Certificate:
    for issuer in issuers:
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return issuer
    raise ValueError(f"{cert.subject.rfc4514_string()} is not issued by a federation anchor")


def _registry(context: _Context) -> str:
    registry = load_registry(context.settings.trust_registry)
    require_home(registry, context.settings.member_id)
    others = sorted(m.id for m in registry.members.values() if m.home and m.id != context.settings.member_id)
    if others:
        raise ValueError(f"the registry marks {', '.join(others)} as home, not {context.settings.member_id}")
    context.results["registry"] = registry
    return f"{len(registry.members)} members, version {registry.version[:12]}, home {context.settings.member_id}"


def _policies(context: _Context) -> str:
    checked = check_directory(context.settings.policies_dir, None)
    return f"{context.settings.policies_dir}: valid, {checked.cases} test cases pass, digest {checked.digest[:12]}"


def _policies_registry(context: _Context) -> str:
    registry = _need(context, "registry")
    bundle = load_bundle(context.settings.policies_dir)
    Authorizer(bundle, registry, MESSAGE_TYPES, programs=bundle_programs(bundle, MESSAGE_TYPES))
    return "the programme table and the registry's members fit the policy schema"
