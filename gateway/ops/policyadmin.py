"""Policy administration: check a policy directory, hot-reload it, and the ``customs-gateway policy`` command.

Rule 1: a policy set goes live only after it passed everything: the bundle parses and validates against its
        schema, the programme table parses and agrees with the live registry, and every policy test case
        passes (on ``sample-registry.json`` when the directory has one, else on the live registry).
Rule 2: a reload builds the complete new :class:`~gateway.core.policy.Authorizer` off the event loop and swaps
        it in one assignment (``GatewayState.swap``); a refused set leaves the old one serving.
Rule 3: every reload, accepted or refused, is a ``policy_reloaded`` ledger event with the trigger (``sighup``
        or ``admin``), who asked, the old and the new digest, and why a refused set was refused.
Rule 4: the admin endpoint asks Cedar (``admin`` action on ``Cgw::Gateway::"gateway"``); the baseline grants it
        to the home customs administration only (``home-customs-administers``). A denial is audited.
Rule 5: several processes on one shared store run ONE policy set. A process publishes the digest of the set it
        accepted, at startup and on every accepted reload, on the store's policy board (``ports.PolicyBoard``;
        the last one published wins). Every process reads the board every :data:`FOLLOW_INTERVAL_SECONDS`; when
        the published digest is not its own, it re-reads its policy directory (the files the processes share)
        and swaps in that set, checked as in Rule 1, only if its digest IS the published one: a ``policy_reloaded``
        ledger event with trigger ``published``. Otherwise it keeps its set, logs the mismatch at error and
        reports it (:attr:`PolicyReloader.sync`) until the files or the board agree. Every decision records the
        digest of the set that made it (``Decision.digest``), whichever process made it.

    customs-gateway policy validate [--policies DIR]     parse + schema-validate + programme table
    customs-gateway policy test [--policies DIR]         run every policy test case
    customs-gateway policy explain --principal ID --action A --resource R [--context JSON] [--policies DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import Forbidden, GatewayError, Unavailable
from gateway.core.model import Caller, Registry
from gateway.core.payloads import MESSAGE_TYPES
from gateway.core.policy import Authorizer, compile_bundle
from gateway.core.policycase import run_policy_tests
from gateway.core.policyrequests import AccessRequest, admin_request
from gateway.exchange.rejections import Rejections
from gateway.exchange.state import GatewayState
from gateway.infra.policyfiles import (
    SAMPLE_REGISTRY_FILE,
    bundle_programs,
    load_bundle,
    load_policy_tests,
    load_sample_registry,
)
from gateway.interfaces.config import default_policies_dir
from gateway.interfaces.protocols import Clock, PolicyBoard, Store

log = structlog.get_logger("gateway.ops.policyadmin")

# How many failing cases a refusal names in its ledger event and error detail (the rest are counted).
MAX_REPORTED_FAILURES = 5
# Rule 5: how often a process reads the policy board; a reload elsewhere applies here within about this long.
FOLLOW_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class CheckedPolicies:
    """A policy directory that passed Rule 1: the authorizer to swap in and what was checked."""

    authorizer: Authorizer
    digest: str
    cases: int


def check_directory(
    directory: Path, registry: Registry | None, message_types: Iterable[str] = MESSAGE_TYPES
) -> CheckedPolicies:
    """Rule 1. ``registry`` is the live registry (None: the sample federation only, e.g. the CLI).

    Raises ``Unavailable`` naming the first problem (a failing test case is one)."""
    types = tuple(message_types)
    bundle = load_bundle(directory)
    compiled = compile_bundle(bundle)
    programs = bundle_programs(bundle, types)
    sample = load_sample_registry(directory) if (directory / SAMPLE_REGISTRY_FILE).exists() else registry
    if sample is None:
        raise Unavailable(f"no {SAMPLE_REGISTRY_FILE} in {directory} and no live registry", field=str(directory))
    tested = Authorizer(compiled, sample, types, programs=programs)
    cases = load_policy_tests(directory)
    failures = run_policy_tests(tested, cases)
    if failures:
        named = "; ".join(f"{f.case.name}: {f.reason}" for f in failures[:MAX_REPORTED_FAILURES])
        raise Unavailable(f"{len(failures)} of {len(cases)} policy test cases fail: {named}", field="policies/tests")
    live = tested if registry is None else Authorizer(compiled, registry, types, programs=programs)
    return CheckedPolicies(authorizer=live, digest=compiled.bundle.digest, cases=len(cases))


def _digest_of(directory: Path) -> str:
    """The digest of what is in ``directory`` now, for the ledger ("" when it does not even load)."""
    try:
        return load_bundle(directory).digest
    except GatewayError:
        return ""


@dataclass(frozen=True, slots=True)
class Reload:
    accepted: bool
    old_digest: str
    new_digest: str
    cases: int = 0
    code: str = ""
    detail: str = ""

    def record(self) -> dict[str, object]:
        return {
            "accepted": self.accepted,
            "old_digest": self.old_digest,
            "new_digest": self.new_digest,
            "cases": self.cases,
        } | ({"code": self.code, "detail": self.detail[:500]} if not self.accepted else {})


async def require_admin(state: GatewayState, rejections: Rejections, caller: Caller, adapter: str) -> None:
    """Rule 4 for every reload endpoint: the Cedar ``admin`` action; a denial is a ``rejected`` leaf (by
    ``gateway.exchange.rejections``) and raised as ``Forbidden``."""
    decision = state.require_authorizer().authorize(admin_request(caller.member))
    if not decision.allowed:
        exc = Forbidden(f"admin denied for {caller.member.id} by {list(decision.policy_ids) or 'default deny'}")
        fields = {"policy": list(decision.policy_ids), "policy_digest": decision.digest}
        await rejections.record(exc, adapter=adapter, action="admin", caller=caller.member.id, peer=None, fields=fields)
        raise exc


class Recorded(Protocol):
    def record(self) -> dict[str, object]: ...


def admin_body(caller: Caller, result: Recorded) -> dict[str, object]:
    """A reload asked for at an admin endpoint, as the JSON body answered (the ledger record and who asked)."""
    return {"trigger": "admin", "by": caller.member.id} | result.record()


@dataclass(frozen=True, slots=True)
class PolicySync:
    """Rule 5: the policy set this process runs against the one published for the deployment."""

    live: str  # the digest of the set deciding here
    published: str  # the digest on the board (the live one when there is no board: one process)
    problem: str = ""  # why this process does not run the published set ("" when it does)

    @property
    def in_sync(self) -> bool:
        return self.live == self.published and not self.problem


class PolicyReloader:
    """Hot reload of ``directory`` into ``state`` (Rules 1-4), followed across processes (Rule 5).

    ``lock`` is shared with the trust reloader (gateway/ops/trustadmin.py): a policy set is checked against the
    registry, so a policy reload and a trust reload (which may bring a new registry) never interleave."""

    def __init__(
        self,
        *,
        state: GatewayState,
        store: Store,
        clock: Clock,
        directory: Path,
        rejections: Rejections,
        lock: asyncio.Lock | None = None,
        board: PolicyBoard | None = None,
        follow_interval: float = FOLLOW_INTERVAL_SECONDS,
    ) -> None:
        self._state = state
        self._rejections = rejections
        self._store = store
        self._clock = clock
        self._directory = directory
        self._board = board
        self._follow_interval = follow_interval
        self._lock = lock or asyncio.Lock()  # one reload at a time: the second waits and re-reads the files
        self._published = ""
        self._problem = ""
        self._following: asyncio.Task[None] | None = None

    @property
    def sync(self) -> PolicySync:
        """Rule 5: whether this process runs the published policy set (and why not)."""
        live = self._state.require_authorizer().digest
        return PolicySync(live, self._published if self._board is not None else live, self._problem)

    async def start(self) -> None:
        """Rule 5: publish the set this process started with, then follow the board (no board: nothing to do)."""
        if self._board is None:
            return
        async with self._lock:
            await self._publish(self._state.require_authorizer().digest)
        self._following = asyncio.create_task(self._follow_loop(), name="cgw-policy-follow")

    async def stop(self) -> None:
        if self._following is not None:
            self._following.cancel()
            await asyncio.gather(self._following, return_exceptions=True)

    async def _publish(self, digest: str) -> None:
        assert self._board is not None
        await self._board.publish_policy(digest)
        self._published, self._problem = digest, ""

    async def _follow_loop(self) -> None:
        while True:
            try:
                await self.follow()
            except GatewayError as exc:  # the store is unavailable: keep the set, try again
                self._report(f"{exc.code}: the policy board is unreadable: {exc.detail}")
            await asyncio.sleep(self._follow_interval)

    def _report(self, problem: str) -> None:
        if problem != self._problem:  # once per distinct problem, not every second
            live = self._state.require_authorizer().digest
            log.error("policy set is not the published one", live=live, published=self._published, problem=problem)
        self._problem = problem

    async def follow(self) -> PolicySync:
        """Rule 5: one look at the board; swap in the published set when the directory now holds it."""
        if self._board is None:
            return self.sync
        async with self._lock:  # the board is read inside: a reload here publishes inside it too
            published = await self._board.published_policy()
            live = self._state.require_authorizer().digest
            if published is None:  # the board was emptied (a fresh store): this process's set stands
                await self._publish(live)
                return self.sync
            self._published = published
            if published == live:
                self._problem = ""
                return self.sync
            on_disk = await asyncio.to_thread(_digest_of, self._directory)
            if on_disk != published:  # cheap: the full check only runs for the set that was published
                self._report(f"the policy directory holds {on_disk[:12] or 'no loadable set'}, not {published[:12]}")
                return self.sync
            try:
                checked = await asyncio.to_thread(
                    check_directory, self._directory, self._state.require_trust().registry
                )
            except GatewayError as exc:
                self._report(f"the published set {published[:12]} is refused here: {exc.code}: {exc.detail[:300]}")
                return self.sync
            self._state.swap(authorizer=checked.authorizer)
            self._problem = ""
            result = Reload(True, live, checked.digest, cases=checked.cases)
            fields = {"trigger": "published", "by": ""} | result.record()
            await self._store.record(AuditEvent(EventKind.POLICY_RELOADED, self._clock.now(), fields))
            log.info("policy set followed", old_digest=live, new_digest=checked.digest)
            return self.sync

    async def reload(self, trigger: str, by: str = "") -> Reload:
        """Check and swap (Rules 1-3). Never raises for a refused set: the refusal is the result."""
        async with self._lock:
            old = self._state.require_authorizer()
            registry = self._state.require_trust().registry
            try:
                checked = await asyncio.to_thread(check_directory, self._directory, registry)
            except GatewayError as exc:
                new_digest = await asyncio.to_thread(_digest_of, self._directory)
                result = Reload(False, old.digest, new_digest, code=exc.code, detail=exc.detail)
            else:
                self._state.swap(authorizer=checked.authorizer)
                result = Reload(True, old.digest, checked.digest, cases=checked.cases)
                if self._board is not None:  # Rule 5: the other processes follow
                    try:
                        await self._publish(checked.digest)
                    except GatewayError as exc:
                        self._report(f"{exc.code}: the accepted set was not published: {exc.detail}")
            fields = {"trigger": trigger, "by": by} | result.record()
            await self._store.record(AuditEvent(EventKind.POLICY_RELOADED, self._clock.now(), fields))
            log.info("policy reload", **fields)
            return result

    async def reload_by(self, caller: Caller, adapter: str = "rest") -> Reload:
        """The admin endpoint: Cedar decides (Rule 4); a denial is audited and raised as ``Forbidden``."""
        await require_admin(self._state, self._rejections, caller, adapter)
        return await self.reload("admin", caller.member.id)

    async def reload_for(self, caller: Caller) -> dict[str, object]:
        """``reload_by`` as the JSON body the REST adapter returns."""
        return admin_body(caller, await self.reload_by(caller))


# -- the command ---------------------------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    policy = commands.add_parser("policy", help="validate, test or explain the Cedar access policies")
    actions = policy.add_subparsers(dest="policy_command", required=True)
    for name, text in (
        ("validate", "parse and schema-validate the policies and the programme table"),
        ("test", "run every policy test case"),
        ("explain", "decide one request and name the policies that decided"),
    ):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--policies", type=Path, default=default_policies_dir(), help="the policy directory")
        if name == "explain":
            sub.add_argument("--principal", required=True, help="a member id of the sample federation")
            sub.add_argument("--action", required=True, help="submit, receive, forward, read_status, ...")
            sub.add_argument("--resource", required=True, help="a message type, 'audit' or 'gateway'")
            sub.add_argument("--context", default="{}", help="the request context as a JSON object")


def run(args: argparse.Namespace) -> int:
    """Exit codes: 0 valid / all pass / explained, 1 a test failed, 2 the set does not load."""
    directory: Path = args.policies
    try:
        if args.policy_command == "explain":
            return _explain(directory, args)
        types = tuple(MESSAGE_TYPES)
        bundle = load_bundle(directory)
        compiled = compile_bundle(bundle)
        programs = bundle_programs(bundle, types)
        sample = load_sample_registry(directory)
        authorizer = Authorizer(compiled, sample, types, programs=programs)
    except GatewayError as exc:
        print(f"invalid: {exc.detail} ({exc.field})" if exc.field else f"invalid: {exc.detail}", file=sys.stderr)
        return 2
    if args.policy_command == "validate":
        print(
            f"valid: {len(compiled.names)} policies, {len(programs.programs)} programmes,"
            f" digest {compiled.bundle.digest}"
        )
        return 0
    cases = load_policy_tests(directory)
    failures = run_policy_tests(authorizer, cases)
    for failure in failures:
        print(f"FAIL {failure.case.name}: {failure.reason} {failure.decision.record()}")
    print(f"{len(cases) - len(failures)} of {len(cases)} policy test cases pass (digest {compiled.bundle.digest})")
    return 1 if failures else 0


def _explain(directory: Path, args: argparse.Namespace) -> int:
    try:
        context = json.loads(args.context)
    except json.JSONDecodeError as exc:
        print(f"--context is not JSON: {exc.msg}", file=sys.stderr)
        return 2
    if not isinstance(context, dict):
        print("--context must be a JSON object", file=sys.stderr)
        return 2
    types = tuple(MESSAGE_TYPES)
    bundle = load_bundle(directory)
    authorizer = Authorizer(bundle, load_sample_registry(directory), types, programs=bundle_programs(bundle, types))
    decision = authorizer.authorize(AccessRequest(args.principal, args.action, args.resource, context))
    print(json.dumps({"decision": "allow" if decision.allowed else "deny"} | decision.record(), indent=2))
    return 0
