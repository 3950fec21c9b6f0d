"""Access decisions: Cedar policies evaluated against the federation registry.

Rule 1: deny by default and fail closed. A request is allowed only when Cedar says ``Allow`` AND nothing went
        wrong: an unknown principal, action or resource, a context of the wrong shape, or any Cedar evaluation
        error (even one inside a policy that did not decide) turns the answer into a deny whose ``errors``
        record why.
Rule 2: every decision names the policy-set digest and the ``@id`` of each determining policy, so the ledger
        can explain it later. A bundle whose policies lack a unique, non-empty ``@id`` is refused.
Rule 3: parse once, decide many times. The bundle is validated against its schema and the policy set, schema
        and entity graph are parsed into cedarpy handles when an :class:`Authorizer` is built (once per
        bundle and registry version); ``authorize`` only marshals the request.
Rule 4: anything wrong with the bundle or the registry while building an authorizer is ``Unavailable``: the
        gateway refuses new messages rather than guess.
Rule 5: the request context is checked against a per-action table before Cedar sees it
        (:mod:`gateway.core.policycontext`); the schema states the same shapes and the policy tests check both agree.
Rule 6: an :class:`Authorizer` remembers the decisions the engine gave it (at most
        :data:`MAX_CACHED_DECISIONS`, keyed by the exact request: principal, action, resource and every context
        value with its type, so a remembered request is not even marshalled again): its policies and entities never
        change, so the same request always gets the same answer, and traffic repeats a few sender / type /
        programme / TLP / recipient combinations. Engine failures are never remembered. A reload builds a new
        authorizer and so starts with no memory.

Entity model (built by ``gateway.core.policyentities``; see ``policies/schema.cedarschema``): ``Cgw::Member``
(one per registry member, ``in`` the ``Cgw::Program`` entities of its programmes), ``Cgw::MessageType`` (one per
known type), ``Cgw::Ledger::"audit"`` and ``Cgw::Gateway::"gateway"``. A ``Cgw::PeerGateway`` (the principal of
``relay``) comes from the federation directory, not the registry: the request that names one carries its
:class:`PeerPrincipal` and the authorizer adds that one entity to its graph for the decision (remembered per peer,
Rule 6).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cedarpy
import rfc8785

from gateway.core import programs as program_rules
from gateway.core.errors import Unavailable
from gateway.core.model import Registry
from gateway.core.policycontext import (
    ACTIONS,
    MAX_NAME_CHARS,
    cedar_context,
    request_key,
    uid,
)
from gateway.core.policyentities import build_entities, peer_record
from gateway.core.policyrequests import GATEWAY_ID, LEDGER_ID, AccessRequest, PeerPrincipal
from gateway.core.programs import Programs

# -- limits ----------------------------------------------------------------------------------------------
# Policies are hand-written text; a bundle beyond this is a mistake or an attack on the loader.
MAX_POLICY_TEXT_CHARS = 1_000_000
MAX_SCHEMA_CHARS = 1_000_000
# Errors are copied into the ledger: keep each decision's record bounded.
MAX_RECORDED_ERRORS = 16
MAX_ERROR_CHARS = 500
# Distinct decisions one authorizer remembers (Rule 6): member x type x programme x TLP x recipient set in a
# real federation is a few hundred combinations; the bound keeps memory flat (~1 KiB each) under odd traffic.
MAX_CACHED_DECISIONS = 4096
MAX_CACHED_PEERS = 256  # entity graphs with one peer added: one per peer gateway (directory MAX_GATEWAYS)

_BUNDLE_DOMAIN = b"cgw-policy-bundle/v1\x00"


# -- the bundle ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyBundle:
    """Policy text + schema as loaded, and the digest every decision records.

    Build with :func:`parse_bundle`; ``digest`` is SHA-256 (hex) over the normalised text and schema, and over
    ``data``: the decision-relevant data files beside the policies (``programs.json``), as (name, text) pairs,
    so that a changed lane or programme member changes the digest every decision records."""

    text: str
    schema: str | dict[str, Any]
    digest: str
    data: tuple[tuple[str, str], ...] = ()

    def data_file(self, name: str) -> str | None:
        return next((text for file, text in self.data if file == name), None)


def normalise_text(text: str) -> str:
    """One spelling for digesting: LF line ends, no trailing blanks, no leading/trailing empty lines."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n") + "\n"


def bundle_digest(text: str, schema: str | Mapping[str, Any], data: Sequence[tuple[str, str]] = ()) -> str:
    """SHA-256 hex over a domain tag and the length-prefixed normalised policy text and schema, then each data
    file's length-prefixed name and normalised text in name order (nothing more when there is none).

    A JSON schema is canonicalised with RFC 8785, a Cedar-syntax schema is normalised like the text."""
    schema_bytes = (
        normalise_text(schema).encode() if isinstance(schema, str) else b"json:" + rfc8785.dumps(dict(schema))
    )
    text_bytes = normalise_text(text).encode()
    h = hashlib.sha256(_BUNDLE_DOMAIN)
    parts = [text_bytes, schema_bytes]
    for name, content in sorted(data):
        parts += [name.encode(), normalise_text(content).encode()]
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def parse_bundle(text: str, schema: str | dict[str, Any], data: Sequence[tuple[str, str]] = ()) -> PolicyBundle:
    """Bound the sizes and compute the digest. Syntax and validation are checked by :class:`Authorizer`."""
    if len(text) > MAX_POLICY_TEXT_CHARS:
        raise Unavailable(f"policy text exceeds {MAX_POLICY_TEXT_CHARS} characters", field="policies")
    schema_size = len(schema) if isinstance(schema, str) else len(json.dumps(schema))
    if schema_size > MAX_SCHEMA_CHARS:
        raise Unavailable(f"policy schema exceeds {MAX_SCHEMA_CHARS} characters", field="schema")
    if sum(len(content) for _, content in data) > MAX_POLICY_TEXT_CHARS:
        raise Unavailable(f"policy data files exceed {MAX_POLICY_TEXT_CHARS} characters", field="data")
    files = tuple(sorted(data))
    return PolicyBundle(text=text, schema=schema, digest=bundle_digest(text, schema, files), data=files)


# -- requests and decisions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    policy_ids: tuple[str, ...]  # @id of each determining policy (Cedar's own id when it has none)
    digest: str  # the policy bundle digest
    errors: tuple[str, ...] = ()

    def record(self) -> dict[str, object]:
        """The decision as audit-event fields."""
        return {
            "allowed": self.allowed,
            "policies": list(self.policy_ids),
            "policy_digest": self.digest,
            "errors": list(self.errors),
        }


# -- the authorizer --------------------------------------------------------------------------------------


def _clip(errors: Iterable[str]) -> tuple[str, ...]:
    return tuple(e[:MAX_ERROR_CHARS] for e in list(errors)[:MAX_RECORDED_ERRORS])


def _parse_schema(schema: str | dict[str, Any]) -> cedarpy.Schema:
    try:
        if isinstance(schema, str):
            return cedarpy.Schema.from_str(schema)
        return cedarpy.Schema.from_json_str(json.dumps(schema))
    except ValueError as exc:
        raise Unavailable(f"policy schema does not parse: {exc}", field="schema") from None


def _policy_annotations(text: str) -> dict[str, str]:
    """Cedar policy id -> @id annotation, for every static policy; refuses missing or duplicate @ids."""
    try:
        est = json.loads(cedarpy.policies_to_json_str(text))
    except ValueError as exc:
        raise Unavailable(f"policies do not parse: {exc}", field="policies") from None
    names: dict[str, str] = {}
    for policy_id, policy in {**est.get("staticPolicies", {}), **est.get("templates", {})}.items():
        name = policy.get("annotations", {}).get("id")
        if not name:
            raise Unavailable(f"policy {policy_id} has no @id annotation", field="policies")
        if name in names.values():
            raise Unavailable(f"@id {name!r} is used by more than one policy", field="policies")
        names[policy_id] = name
    if not names:
        raise Unavailable("the policy bundle contains no policies", field="policies")
    return names


@dataclass(frozen=True, slots=True)
class CompiledBundle:
    """A bundle that parsed and validated: the cedarpy handles an :class:`Authorizer` reuses."""

    bundle: PolicyBundle
    schema: cedarpy.Schema
    policies: cedarpy.PolicySet
    names: Mapping[str, str]  # Cedar policy id -> @id


def compile_bundle(bundle: PolicyBundle) -> CompiledBundle:
    """Check the digest, parse schema and policies, require @ids, validate against the schema (Rule 4)."""
    if bundle_digest(bundle.text, bundle.schema, bundle.data) != bundle.digest:
        raise Unavailable("policy bundle digest does not match its content", field="digest")
    schema = _parse_schema(bundle.schema)
    names = _policy_annotations(bundle.text)
    try:
        policies = cedarpy.PolicySet.from_str(bundle.text)
    except ValueError as exc:
        raise Unavailable(f"policies do not parse: {exc}", field="policies") from None
    result = cedarpy.validate_policies(bundle.text, schema)
    if not result.validation_passed:
        detail = "; ".join(
            f"{names.get(e.policy_id, e.policy_id)}: {e.error}" for e in result.errors[:MAX_RECORDED_ERRORS]
        )
        raise Unavailable(f"policies fail schema validation: {detail}", field="policies")
    return CompiledBundle(bundle=bundle, schema=schema, policies=policies, names=names)


class Authorizer:
    """Decides access requests for one policy bundle and one registry version.

    ``bundle`` may be a :class:`CompiledBundle` to skip re-parsing when only the registry changed.
    ``validate_requests=True`` also has Cedar check every request against the schema (about 25 us more per
    decision); the context table above already guards the shape, so production leaves it off."""

    def __init__(
        self,
        bundle: PolicyBundle | CompiledBundle,
        registry: Registry,
        message_types: Iterable[str],
        *,
        validate_requests: bool = False,
        programs: Programs = program_rules.EMPTY,
    ) -> None:
        compiled = bundle if isinstance(bundle, CompiledBundle) else compile_bundle(bundle)
        self._programs = programs
        self._compiled = compiled
        self._digest = compiled.bundle.digest
        self._message_types = frozenset(message_types)
        self._registry = registry
        self._entities = build_entities(registry, self._message_types, compiled.schema, programs)
        self._validate_requests = validate_requests
        self._request_schema = compiled.schema if validate_requests else None
        self._decided: dict[Hashable, Decision] = {}  # Rule 6: request key -> the engine's decision
        self._with_peer: dict[PeerPrincipal, cedarpy.Entities] = {}  # the entity graph plus one peer gateway

    @property
    def digest(self) -> str:
        return self._digest

    @property
    def registry_version(self) -> str:
        return self._registry.version

    def with_registry(self, registry: Registry) -> Authorizer:
        """A new authorizer for another registry version, reusing the parsed policies and schema."""
        return Authorizer(
            self._compiled,
            registry,
            self._message_types,
            validate_requests=self._validate_requests,
            programs=self._programs,
        )

    @property
    def programs(self) -> Programs:
        return self._programs

    @property
    def compiled(self) -> CompiledBundle:
        return self._compiled

    def _deny(self, *errors: str) -> Decision:
        return Decision(allowed=False, policy_ids=(), digest=self._digest, errors=_clip(errors))

    def _cedar_request(self, request: AccessRequest, peer: PeerPrincipal | None) -> dict[str, object]:
        """Marshal a request; raises ValueError when it names something unknown or has a bad context."""
        rule = ACTIONS.get(request.action)
        if rule is None:
            raise ValueError(f"unknown action {request.action[:MAX_NAME_CHARS]!r}")
        if rule.principal_entity == "PeerGateway":
            if peer is None or peer.id != request.principal:
                raise ValueError(f"unknown peer gateway {request.principal[:MAX_NAME_CHARS]!r}")
        elif self._registry.get(request.principal) is None:
            raise ValueError(f"unknown principal {request.principal[:MAX_NAME_CHARS]!r}")
        known: Callable[[str], bool] = {
            "MessageType": self._message_types.__contains__,
            "Ledger": LEDGER_ID.__eq__,
            "Gateway": GATEWAY_ID.__eq__,
        }[rule.resource_entity]
        if not known(request.resource_type):
            raise ValueError(f"unknown {rule.resource_entity} {request.resource_type[:MAX_NAME_CHARS]!r}")
        return {
            "principal": uid(rule.principal_entity, request.principal),
            "action": uid("Action", request.action),
            "resource": uid(rule.resource_entity, request.resource_type),
            "context": cedar_context(rule, request.context),
        }

    def authorize(self, request: AccessRequest, *, peer: PeerPrincipal | None = None) -> Decision:
        """Allow only on a clean Cedar ``Allow``; everything else is a recorded deny (Rule 1). ``peer`` is the
        ``Cgw::PeerGateway`` a ``relay`` request names as its principal."""
        return self.authorize_many((request,), peer=peer)[0]

    def _entities_with(self, peer: PeerPrincipal | None) -> cedarpy.Entities:
        """The registry's entity graph, plus ``peer`` (built once per peer; raises ValueError when it does not fit)."""
        if peer is None:
            return self._entities
        entities = self._with_peer.get(peer)
        if entities is None:
            delta = json.dumps([peer_record(peer)])
            entities = self._entities.with_added_json_str(delta, self._compiled.schema)
            if len(self._with_peer) >= MAX_CACHED_PEERS:
                del self._with_peer[next(iter(self._with_peer))]
            self._with_peer[peer] = entities
        return entities

    def authorize_many(self, requests: Sequence[AccessRequest], *, peer: PeerPrincipal | None = None) -> list[Decision]:
        """Decide several requests in one engine call (e.g. ``receive`` for every recipient), in order."""
        try:
            entities = self._entities_with(peer)
        except ValueError as exc:
            return [self._deny(f"peer gateway entity: {exc}") for _ in requests]
        decisions: list[Decision | None] = []
        batch: list[dict[str, object]] = []
        keys: list[Hashable | None] = []
        for request in requests:
            key = request_key(request)
            if key is not None and peer is not None:
                key = (key, peer)  # the decision depends on the peer's facts too
            known = self._decided.get(key) if key is not None else None
            if known is not None:
                decisions.append(known)
                continue
            try:
                marshalled = self._cedar_request(request, peer)
            except ValueError as exc:
                decisions.append(self._deny(str(exc)))
                continue
            decisions.append(None)
            batch.append(marshalled)
            keys.append(key)
        if not batch:
            return [d for d in decisions if d is not None]
        try:
            results = cedarpy.is_authorized_batch(batch, self._compiled.policies, entities, self._request_schema)
        except Exception as exc:  # a failure inside the engine must deny and be recorded, never escape
            failed = self._deny(f"policy engine failed: {type(exc).__name__}: {exc}")
            return [d or failed for d in decisions]
        if len(results) != len(batch):  # pragma: no cover - the engine answers every request
            failed = self._deny("policy engine returned the wrong number of results")
            return [d or failed for d in decisions]
        fresh = [self._decision(result) for result in results]
        for key, decision in zip(keys, fresh, strict=True):
            if key is None:
                continue  # a context value that cannot be a key: asked again every time
            if len(self._decided) >= MAX_CACHED_DECISIONS:
                del self._decided[next(iter(self._decided))]  # forget the oldest
            self._decided[key] = decision
        answers = iter(fresh)
        return [d or next(answers) for d in decisions]

    def _decision(self, result: cedarpy.AuthzResult) -> Decision:
        diagnostics = result.diagnostics
        errors = _clip(str(e) for e in diagnostics.errors)
        policy_ids = tuple(sorted(self._compiled.names.get(reason, reason) for reason in diagnostics.reasons))
        return Decision(
            allowed=result.allowed and not errors,
            policy_ids=policy_ids,
            digest=self._digest,
            errors=errors,
        )
