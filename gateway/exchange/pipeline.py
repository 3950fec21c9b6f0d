"""The ONE pipeline every adapter feeds: REST, SOAP and gRPC only translate wire formats to ``Inbound``.

The numbered steps of a submission (DESIGN.md), the same for every message type, each producing the stronger
type the next step requires; the domain features add their own work at the steps marked (h), through the
handlers registered for the message's type and media (``gateway.exchange.handlers``: the hooks in brackets)::

    1. authenticate   Credentials -> Caller
    2. verify         Inbound -> VerifiedEnvelope   (chain, CRL, signer == from == caller, digest, window)
                      JWS via envelope.verify_envelope; a SignedDocument (SOAP WS-Security) via the adapter
                      kind's DocumentVerifier, then envelope.verify_signed_claims: the same checks after it
    3. replay         duplicate? -> the original receipt; same id, other bytes -> DUPLICATE_CONFLICT
    4. begin      (h) each applicable handler makes its state for this submission      [begin]
    5. validate   (h) -> ValidatedPayload (schema + identifiers with field paths); a foreign payload
                      is translated first by the handler owning its media             [translate]
    6. authorize  (h) -> Permit (Cedar ``submit`` and ``receive``, deny by default, policy ids + digest),
                      the handlers adding to the request's context                     [policy_context]
    7. check      (h) the handlers' pure checks of what Cedar allowed                   [check]
    8. persist    (h) -> StoredMessage (message + inbox rows + ledger leaf + receipt, one durable
                      transaction); the ledger event and the receipt carry the handlers'
                      fields and claims; a handler may own the write                   [ledger_fields,
                                                                                         receipt_claims,
                                                                                         persistence]
    9. effects    (h) after the commit, each handler's idempotent effect (replayed after a crash by
                      gateway.exchange.recovery); the recipients' long-polls wake     [after_commit]
       -> receipt to the sender. A refusal at any step after 4 reaches every handler   [refused]

A relayed submission (``relay``, issue 19) takes the same steps with another authentication and trust source
(``gateway/core/peertrust.py``): the peer gateway's TLS certificate instead of a member's, the sender's chain to
that peer's signing anchors instead of this federation's, then routing (sender a member of that peer, at least
one recipient served here, the others served by gateways of the directory); authorize adds Cedar ``relay`` by the
``Cgw::PeerGateway``; the ledger leaf names it (``relayed_by``) and the recipients taken here (``delivered_here``),
and the receipt is this gateway's, as for any submission. Only the recipients served here are decided (``submit``,
``receive``), stored, delivered and named in the receipt; the others are their own gateways' (never relayed on).

Rule 1: nothing is acknowledged before it is durable (the store returns only after its fsync).
Rule 2: every rejection is recorded by ``gateway.exchange.rejections`` with its reason code (never the secret material):
        one ``rejected`` leaf for an authenticated caller, counted into the interval's ``rejected_summary`` leaf
        otherwise; a submission's rejection is logged once on the canonical exchange line. The adapters' error
        boundaries report every other refusal through ``Pipeline.rejected``. A rejection the store cannot
        write (a full disk) is written once it takes writes again (``gateway/exchange/deferredaudit.py``).
Rule 3: errors are ``GatewayError`` subclasses only; anything else is a bug and becomes ``Internal``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from gateway.core import envelope as envelope_rules
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.envelope import VerifiedEnvelope
from gateway.core.errors import (
    BadRequest,
    DuplicateConflict,
    ErrorKind,
    Forbidden,
    GatewayError,
    Internal,
    NotFound,
    Overloaded,
)
from gateway.core.forwarding import check_forward, lane_of, stored_header
from gateway.core.model import Caller, Header, Member
from gateway.core.payloads import ValidatedPayload, validate_payload
from gateway.core.peertrust import PeerTrust, RelayingPeer
from gateway.core.policy import MAX_CACHED_DECISIONS, Decision
from gateway.core.policyrequests import (
    AccessRequest,
    PeerPrincipal,
    audit_request,
    forward_request,
    receive_request,
    relay_request,
    submit_request,
)
from gateway.core.receipt import make_receipt
from gateway.exchange.access import Credentials, IssuedToken, authenticate_caller, issue_token
from gateway.exchange.deferredaudit import DeferredAudit
from gateway.exchange.evidence import evidence_digest
from gateway.exchange.faults import NO_CRASH, CrashPoint
from gateway.exchange.handlers import (
    EMPTY_HOOKS,
    Accepted,
    Handler,
    Handlers,
    Hooks,
    Persistence,
    PolicyValue,
    Submission,
    Write,
)
from gateway.exchange.inbox import Inbox, MessageStatus, Wakeups
from gateway.exchange.metrics import Metrics
from gateway.exchange.rejections import Rejections
from gateway.exchange.stages import Stage
from gateway.exchange.state import GatewayState
from gateway.interfaces.protocols import (
    Clock,
    DocumentVerifier,
    InboxItem,
    ReceiptFactory,
    Relays,
    Store,
    StoredMessage,
    relay_store,
)

__all__ = ["Inbound", "Outcome", "Permit", "Pipeline", "SignedDocument", "evidence_digest"]

log = structlog.get_logger("gateway.exchange")


@dataclass(frozen=True, slots=True)
class Inbound:
    adapter: str  # "rest" | "soap" | "grpc"
    credentials: Credentials
    unverified_jws: str
    payload: bytes
    # Set by adapters whose messages are signed inside the document (SOAP WS-Security) instead of a JWS:
    # verified by the DocumentVerifier registered for ``adapter``; ``unverified_jws`` and ``payload`` are unused.
    document: SignedDocument | None = None


@dataclass(frozen=True, slots=True)
class SignedDocument:
    """The exact signed document received, and the addresses (WS-Addressing ``To``) it may be addressed to."""

    unverified: bytes
    audiences: tuple[str, ...]


def _relayed_record(relay: RelayingPeer, here: Sequence[str]) -> dict[str, Any]:
    """The ``accepted`` leaf of a relay names the peer gateway as the caller, its certificate, and the recipients
    this gateway took (the leaf's ``to`` is the whole signed list)."""
    fields = {"caller": relay.gateway.id, "relayed_by": relay.gateway.id, "relay_cert": relay.cert_fingerprint}
    return fields | {"delivered_here": list(here)}


@dataclass(frozen=True, slots=True)
class Permit:
    """Built only by ``Pipeline._authorize``: the exchange is allowed, and why."""

    envelope: VerifiedEnvelope
    payload: ValidatedPayload
    decision: Decision


@dataclass(frozen=True, slots=True)
class Outcome:
    message: StoredMessage
    duplicate: bool

    @property
    def receipt(self) -> str:
        return self.message.receipt.decode("ascii")


@dataclass(slots=True)
class _Handling:
    """The handlers of one submission and their states (step 4), for the steps after it and for a refusal."""

    hooks: Hooks = EMPTY_HOOKS
    submission: Submission | None = None
    states: dict[Handler[Any], Any] = field(default_factory=dict)

    def begin(self, submission: Submission, hooks: Hooks) -> None:
        self.hooks, self.submission = hooks, submission
        self.states = {h: h.begin(submission) for h in hooks.handlers}

    async def refused(self, error: GatewayError) -> None:
        if self.submission is not None:
            for handler in self.hooks.refused:
                await handler.refused(self.submission, self.states[handler], error)


def _validate_as_sent(header: Header, payload: bytes) -> ValidatedPayload:
    return validate_payload(header.type, header.payload.media, payload, schema=header.payload.schema)


class Pipeline:
    def __init__(
        self,
        *,
        store: Store,
        state: GatewayState,
        clock: Clock,
        metrics: Metrics | None = None,
        crash: CrashPoint = NO_CRASH,
        document_verifiers: Mapping[str, DocumentVerifier] | None = None,
        handlers: Handlers | None = None,
        wakeups: Wakeups | None = None,
        routes: Callable[[Sequence[str]], Relays] | None = None,
        peers: Callable[[], PeerTrust] | None = None,
    ) -> None:
        self._store = store
        # Relays from peer gateways (issue 19): the peers of the directory in force (core/peertrust.py; it raises
        # Unavailable once the directory expired). None: a relay is NOT_FOUND.
        self._peers = peers
        # Gateway-to-gateway relay (issue 19): the remote recipients by peer gateway (Directory.routes); the store
        # gives them one relay entry per peer instead of inbox entries (gateway.interfaces.protocols: Store Rule 4)
        self._routes = routes
        limits = state.limits
        # Rule 2: the one recorder of rejections (also used by the admin services: policy reload, dead letters)
        # Rejections a store outage kept from the ledger, written once it takes writes again (Rule 2)
        self.deferred_audit = DeferredAudit(store, metrics)
        self.rejections = Rejections(
            store=store,
            clock=clock,
            interval_seconds=limits.rejected_summary_seconds,
            max_keys=limits.rejected_summary_keys,
            deferred=self.deferred_audit,
        )
        # The features' hooks (gateway/exchange/handlers.py), registered by the composition root
        self.handlers = Handlers() if handlers is None else handlers
        self._inbox = Inbox(
            store=store,
            state=state,
            clock=clock,
            wakeups=Wakeups() if wakeups is None else wakeups,
            delivered=self.handlers.delivered_fields,
        )
        self._document_verifiers = dict(document_verifiers or {})
        self._state = state
        self._clock = clock
        self._metrics = metrics
        self._crash = crash
        self._inflight = 0
        # Allowed submissions by what decided them, for the policy set and registry they were decided under
        # (_authorize): a repeat skips building the submit and receive requests. Refusals are never kept.
        self._allowed: dict[tuple[object, ...], Decision] = {}
        self._allowed_under: tuple[object, object] | None = None
        self._verification = Stage(self._verify_jws)
        # Untranslated payloads (JSON, protobuf) are validated as a stage (gateway/exchange/stages.py)
        self._validation = Stage(_validate_as_sent)

    # -- authentication ---------------------------------------------------------------------------------

    async def authenticate(self, credentials: Credentials) -> Caller:
        """Authenticate a caller for a non-submit operation; a failure reaches the adapter's error boundary,
        which reports it to :meth:`rejected` (submit and forward record their own)."""
        return await self._authenticate(credentials)

    async def _authenticate(self, credentials: Credentials) -> Caller:
        return authenticate_caller(self._state, self._clock.now(), credentials)

    async def issue_token(self, unverified_assertion: str, client_cert: bytes | None) -> IssuedToken:
        """RFC 7523 client assertion -> short-lived access token (RFC 8705 bound when a cert is presented);
        a refusal is reported by the REST error boundary (the assertion's signer is not yet a caller)."""
        return await issue_token(self._state, self._clock.now(), self._store, unverified_assertion, client_cert)

    async def rejected(self, exc: GatewayError, *, adapter: str, action: str, credentials: Credentials) -> None:
        """An adapter's error boundary reports a refusal (Rule 2): one leaf when the credentials the transport
        presented authenticate a caller (an mTLS certificate is known before the body is read, so a refusal
        before authentication is attributed too), counted for the summary otherwise. A refusal a step already
        recorded is not recorded again."""
        if self.rejections.recorded(exc):
            return
        caller: str | None = None
        presented = credentials.client_cert is not None or credentials.bearer_token is not None
        if presented and exc.kind is not ErrorKind.UNAUTHENTICATED:  # an authentication failure: no caller
            try:
                caller = (await self._authenticate(credentials)).member.id
            except GatewayError:
                caller = None
        await self.rejections.record(exc, adapter=adapter, action=action, caller=caller, peer=credentials.peer)

    # -- submit -----------------------------------------------------------------------------------------

    async def submit(self, inbound: Inbound) -> Outcome:
        context: dict[str, Any] = {"adapter": inbound.adapter}
        handling = _Handling()
        return await self._guarded("submit", inbound, context, self._submit(inbound, context, handling), handling)

    async def _guarded(
        self,
        action: str,
        inbound: Inbound,
        context: dict[str, Any],
        work: Coroutine[Any, Any, Outcome],
        handling: _Handling | None = None,
    ) -> Outcome:
        """Run one submission (``submit`` or ``forward``): bounded in flight, every refusal audited and logged
        once on the canonical exchange line, anything not a ``GatewayError`` reported as INTERNAL (Rule 2, 3)."""
        if self._inflight >= self._state.limits.max_inflight_submits:
            work.close()
            raise Overloaded("too many submissions in flight")
        self._inflight += 1
        started = time.perf_counter()
        try:
            outcome = await work
        except GatewayError as exc:
            await self._reject(exc, inbound=inbound, action=action, fields=context)
            if handling is not None:
                await handling.refused(exc)
            failed = {"detail": exc.detail[:300]} | ({"field": exc.field} if exc.field else {})
            self._log_exchange(context | failed, "rejected", exc.code, started)
            self._observe(context, "rejected", exc.code, started)
            raise
        except Exception as exc:  # a bug: audit and report as INTERNAL, never leak the detail
            err = Internal(f"{type(exc).__name__}")
            log.exception("pipeline bug", **context)
            await self._reject(err, inbound=inbound, action=action, fields=context)
            self._observe(context, "rejected", err.code, started)
            raise err from exc
        finally:
            self._inflight -= 1
        self._log_exchange(context, "duplicate" if outcome.duplicate else "accepted", "OK", started)
        self._observe(context, "duplicate" if outcome.duplicate else "accepted", "OK", started)
        return outcome

    def _observe(self, context: dict[str, Any], decision: str, code: str, started: float) -> None:
        if self._metrics is not None:
            seconds = time.perf_counter() - started
            adapter, message_type = str(context["adapter"]), context.get("type")
            self._metrics.submitted(
                adapter=adapter, message_type=message_type, decision=decision, seconds=seconds, code=code
            )

    async def relay(self, inbound: Inbound) -> Outcome:
        """A submission relayed by a peer gateway: ``submit`` with the peer's authentication and trust source."""
        context: dict[str, Any] = {"adapter": inbound.adapter}
        handling = _Handling()
        work = self._submit(inbound, context, handling, relayed=True)
        return await self._guarded("relay", inbound, context, work, handling)

    async def _submit(
        self, inbound: Inbound, context: dict[str, Any], handling: _Handling, *, relayed: bool = False
    ) -> Outcome:
        relay: RelayingPeer | None = None
        # a relay: the recipients served here (``gateway.core.peertrust``'s routing check)
        here: tuple[str, ...] | None = None
        if relayed:  # 1 and 2 for a relay
            relay, caller, verified, now, here = self._verify_relayed(inbound, context)
        else:
            caller = await self._authenticate(inbound.credentials)  # 1
            context["caller"] = caller.member.id
            now = self._clock.now()
            if inbound.document is not None:  # 2
                verified = self._verify_document(inbound.adapter, inbound.document, caller, now)
            else:  # as a stage: every envelope of this loop iteration, back to back (gateway/exchange/stages.py)
                verified = await self._verification.run(inbound.unverified_jws, inbound.payload, caller, now)
        header = verified.header
        to = header.to if here is None else here
        context.update(message_id=header.id, sender=header.sender, type=header.type)
        digest = evidence_digest(verified.jws, verified.payload)
        existing = await self._store.find_message(header.sender, header.id)  # 3
        if existing is not None:
            return self._duplicate(existing, digest)
        hooks = self.handlers.hooks(header.type, header.payload.media)  # 4
        work = Submission(inbound.adapter, caller, verified, digest, now, relay.gateway.id if relay else "")
        handling.begin(work, hooks)
        states = handling.states
        validated = await self._validate(work, hooks, states)  # 5
        extra: dict[str, PolicyValue] = {}  # 6
        for handler in hooks.policy_context:
            extra.update(await handler.policy_context(work, states[handler], validated))
        permit = self._authorize(caller, verified, validated, context, extra, relay=relay, to=to)
        for handler in hooks.check:  # 7
            handler.check(work, states[handler], validated)
        message = StoredMessage(  # 8
            sender=header.sender,
            message_id=header.id,
            type=header.type,
            recipients=to,
            jws=verified.jws,
            payload=verified.payload,
            digest=digest,
            received_at=now,
        )
        write = self._write(work, hooks, states, validated=validated, permit=permit, message=message, relay=relay)
        stored_or_duplicate = await self._persist(write, header, digest)
        if isinstance(stored_or_duplicate, Outcome):
            return stored_or_duplicate
        stored = stored_or_duplicate
        self._crash.hit("after-persist")  # crash-safety tests: durable, but no receipt sent yet
        if hooks.after_commit:  # 9
            accepted = Accepted(stored, header.payload.media, caller.member)
            for handler in hooks.after_commit:
                await handler.after_commit(accepted, states[handler])
        for recipient in to:
            self._inbox.wake(recipient)
        return Outcome(message=stored, duplicate=False)

    def _verify_relayed(
        self, inbound: Inbound, context: dict[str, Any]
    ) -> tuple[RelayingPeer, Caller, VerifiedEnvelope, datetime, tuple[str, ...]]:
        """Authenticate the relaying peer gateway, verify the sender's envelope against that peer's signing anchors,
        check the routing (``gateway.core.peertrust``: the peer's certificate, signing anchors, members and routing,
        which names the recipients served here). The caller the later steps see is the sender as this gateway's
        registry describes it (its ``submit`` is decided like a local sender's, for the recipients served here)."""
        if self._peers is None:
            raise NotFound("this gateway relays for no peer ([federation] is not configured)")
        peers = self._peers()
        now = self._clock.now()
        relay = peers.identify(inbound.credentials.client_cert, now)
        context["caller"] = context["relayed_by"] = relay.gateway.id
        trust = self._state.require_trust()
        limits = self._state.limits
        verified = envelope_rules.verify_envelope(
            inbound.unverified_jws,
            inbound.payload,
            validator=peers.signers(relay),
            registry=trust.registry,
            now=now,
            caller=None,  # the peer gateway is not the sender; the route check below binds the two
            max_skew=limits.clock_skew,
            max_lifetime=limits.max_message_lifetime,
            registered=False,
        )
        here = peers.check_route(relay, verified.header, trust.registry)
        caller = Caller(member=verified.signer, method="relay", cert_fingerprint=relay.cert_fingerprint)
        return relay, caller, verified, now, here

    def _write(
        self,
        work: Submission,
        hooks: Hooks,
        states: Mapping[Handler[Any], Any],
        *,
        validated: ValidatedPayload,
        permit: Permit,
        message: StoredMessage,
        relay: RelayingPeer | None,
    ) -> Callable[[], Awaitable[StoredMessage]]:
        """Step 8: the ledger event and receipt with the handlers' fields and claims, and the durable write
        (the handler's own strategy, else ``Store.accept`` with the relay entries of remote recipients)."""
        header = work.envelope.header
        strategy: Persistence | None = None
        for handler in hooks.persistence:
            if (strategy := handler.persistence(work, states[handler], validated)) is not None:
                break
        # a relayed message is never relayed on: its other recipients are their own gateways' (peertrust Rule 4)
        relays = self._routes(header.to) if self._routes is not None and relay is None else {}
        fields: dict[str, Any] = {}
        for handler in hooks.ledger_fields:
            fields.update(handler.ledger_fields(work, states[handler], validated))
        if relays:
            fields["relay"] = {peer: list(members) for peer, members in sorted(relays.items())}
        if relay is not None:
            fields.update(_relayed_record(relay, message.recipients))
        decision = permit.decision
        event = self._accepted_event(
            work.adapter,
            work.caller,
            work.envelope,
            digest=work.digest,
            decision=decision,
            now=work.received_at,
            extra=fields,
        )
        claims: dict[str, Mapping[str, str]] = {}
        for handler in hooks.receipt_claims:
            claims.update(handler.receipt_claims(work, states[handler]))
        receipt = self._receipt_factory(message, decision.digest, claims)
        if strategy is None:

            async def accept() -> StoredMessage:
                return await self._store.accept(message, event, receipt, relays=relays or None)

            return accept

        write, own = Write(message, event, receipt, decision, relays or None), strategy

        async def persist() -> StoredMessage:
            done = await own(write)
            for member_id in done.woken:
                self._inbox.wake(member_id)
            return done.message

        return persist

    async def _validate(self, work: Submission, hooks: Hooks, states: Mapping[Handler[Any], Any]) -> ValidatedPayload:
        """Step 5: the first handler that translates the payload's media, else the schema as sent (a stage)."""
        for handler in hooks.translate:
            validated = await handler.translate(work, states[handler])
            if validated is not None:
                return validated
        return await self._validation.run(work.envelope.header, work.envelope.payload)

    def _verify_jws(self, unverified_jws: str, payload: bytes, caller: Caller, now: datetime) -> VerifiedEnvelope:
        trust = self._state.require_trust()
        limits = self._state.limits
        return envelope_rules.verify_envelope(
            unverified_jws,
            payload,
            validator=trust.validator,
            registry=trust.registry,
            now=now,
            caller=caller,
            max_skew=limits.clock_skew,
            max_lifetime=limits.max_message_lifetime,
        )

    @staticmethod
    def _accepted_event(
        adapter: str,
        caller: Caller,
        verified: VerifiedEnvelope,
        *,
        digest: str,
        decision: Decision,
        now: datetime,
        extra: Mapping[str, Any],
    ) -> AuditEvent:
        """The ``accepted`` ledger leaf: who, what, the evidence digests, the signer and the decision."""
        header = verified.header
        fields: dict[str, Any] = {
            "adapter": adapter,
            "caller": caller.member.id,
            "message_id": header.id,
            "sender": header.sender,
            "type": header.type,
            "to": list(header.to),
            "tlp": header.tlp.value,
            "program": header.program or "",
            "evidence_sha256": digest,
            "payload_sha256": header.payload.sha256,
            "signer_cert": verified.signer_fingerprint,
            "decision": "allow",
            "policy_ids": list(decision.policy_ids),
            "policy_digest": decision.digest,
        }
        fields.update(extra)
        return AuditEvent(EventKind.ACCEPTED, now, fields)

    def _receipt_factory(
        self, message: StoredMessage, policy_digest: str, claims: Mapping[str, Mapping[str, str]] | None
    ) -> ReceiptFactory:
        """Signs the receipt inside the store's durable write, once the ledger index is known (receipt.py)."""
        signer = self._state.receipt_signer

        def receipt(leaf_index: int, received_at: datetime) -> bytes:
            return make_receipt(
                message_id=message.message_id,
                sender=message.sender,
                recipients=message.recipients,
                message_type=message.type,
                evidence_sha256=message.digest,
                leaf_index=leaf_index,
                received_at=received_at,
                gateway=self._state.member_id,
                policy_digest=policy_digest,
                signer=signer,
                claims=claims,
            )

        return receipt

    async def _persist(
        self, write: Callable[[], Awaitable[StoredMessage]], header: Header, digest: str
    ) -> StoredMessage | Outcome:
        """The durable write; when a concurrent submission of the same (sender, id) won the race, the duplicate
        rule decides (the original receipt for the same bytes, else DUPLICATE_CONFLICT)."""
        try:
            return await write()
        except DuplicateConflict:
            raced = await self._store.find_message(header.sender, header.id)
            if raced is None:
                raise
            return self._duplicate(raced, digest)

    def _verify_document(self, adapter: str, document: SignedDocument, caller: Caller, now: Any) -> VerifiedEnvelope:
        """The verify step for document-signed submissions: the adapter kind's verifier, then the envelope rules."""
        verifier = self._document_verifiers.get(adapter)
        if verifier is None:
            raise BadRequest(f"the {adapter} adapter has no document verifier")
        trust = self._state.require_trust()
        limits = self._state.limits
        claims = verifier.verify(
            document.unverified,
            audiences=document.audiences,
            validator=trust.validator,
            now=now,
            max_skew=limits.clock_skew,
        )
        return envelope_rules.verify_signed_claims(
            claims,
            registry=trust.registry,
            now=now,
            caller=caller,
            max_skew=limits.clock_skew,
            max_lifetime=limits.max_message_lifetime,
        )

    def _stored_header(self, message: StoredMessage) -> Header:
        """The header of accepted evidence: a document-signed one (SOAP) re-read by its verifier, else the JWS."""
        for verifier in self._document_verifiers.values():
            header = verifier.stored_header(message.jws, accepted_at=message.received_at)
            if header is not None:
                return header
        return stored_header(message.jws)

    @staticmethod
    def _duplicate(existing: StoredMessage, digest: str) -> Outcome:
        if existing.digest != digest:
            raise DuplicateConflict(f"digest {digest} differs from accepted {existing.digest}", field="id")
        return Outcome(message=existing, duplicate=True)

    def _authorize(
        self,
        caller: Caller,
        verified: VerifiedEnvelope,
        validated: ValidatedPayload,
        context: dict[str, Any],
        extra: Mapping[str, PolicyValue],
        *,
        relay: RelayingPeer | None = None,
        to: tuple[str, ...] | None = None,
    ) -> Permit:
        """Step 6; ``extra``: what the handlers add to the ``submit`` request's Cedar context; ``to``: the
        recipients decided (a relay: those served here), else the header's."""
        trust = self._state.require_trust()
        header = verified.header
        to = header.to if to is None else to
        lane = lane_of(validated)
        under = (self._state.require_authorizer(), trust.registry)
        if self._allowed_under is None or any(a is not b for a, b in zip(under, self._allowed_under, strict=True)):
            self._allowed, self._allowed_under = {}, under  # another policy set or registry: decide afresh
        relayed_by = relay.gateway if relay else None  # the directory's entry: its members are part of the decision
        key: tuple[object, ...] = (caller.member.id, header.type, header.program, header.tlp, to, lane)
        key += (relayed_by, *extra.items())
        decision = self._allowed.get(key)
        if decision is not None:  # the same requests as an earlier submission, both allowed then
            context["policy"] = list(decision.policy_ids)
            context["policy_digest"] = decision.digest
            return Permit(envelope=verified, payload=validated, decision=decision)
        recipients = [trust.registry.members[r] for r in to]
        relayed: Decision | None = None
        if relay is not None:  # the peer may relay this sender's message to these recipients (Cgw::PeerGateway)
            relayed = self._decide_relay(relay, caller.member, verified.header, recipients, context)
        request = submit_request(caller.member, header.type, header.program, header.tlp.value, recipients, lane=lane)
        if extra:
            added = {name: list(value) if isinstance(value, tuple) else value for name, value in extra.items()}
            request = AccessRequest(
                request.principal, request.action, request.resource_type, {**request.context, **added}
            )
        decision = self._decide(request, context)
        self._check_receivers(verified, caller.member, recipients, context)
        if relayed is not None:  # both decided: the ledger names the policies of both
            decision = Decision(True, relayed.policy_ids + decision.policy_ids, decision.digest, decision.errors)
            context["policy"] = list(decision.policy_ids)
        if not decision.errors:
            if len(self._allowed) >= MAX_CACHED_DECISIONS:
                self._allowed.clear()
            self._allowed[key] = decision
        return Permit(envelope=verified, payload=validated, decision=decision)

    def _decide(self, request: AccessRequest, context: dict[str, Any]) -> Decision:
        """One Cedar decision; its policy ids go to the audit record; a deny is ``Forbidden``."""
        decision = self._state.require_authorizer().authorize(request)
        context["policy"] = list(decision.policy_ids)
        context["policy_digest"] = decision.digest
        if decision.errors:
            context["policy_errors"] = list(decision.errors)
        if not decision.allowed:
            raise Forbidden(
                f"{request.action} {request.resource_type} denied by {list(decision.policy_ids) or 'default deny'}"
                f" (policy set {decision.digest[:12]})"
            )
        return decision

    def _decide_relay(
        self, relay: RelayingPeer, sender: Member, header: Header, recipients: Sequence[Member], context: dict[str, Any]
    ) -> Decision:
        """Cedar ``relay`` by the peer gateway (its directory entry as the ``Cgw::PeerGateway`` entity)."""
        gateway = relay.gateway
        peer = PeerPrincipal(gateway.id, gateway.administration, gateway.country, gateway.members)
        request = relay_request(peer, sender, header.type, header.program, header.tlp.value, recipients=recipients)
        decision = self._state.require_authorizer().authorize(request, peer=peer)
        context["policy"] = list(decision.policy_ids)
        context["policy_digest"] = decision.digest
        if decision.errors:
            context["policy_errors"] = list(decision.errors)
        if not decision.allowed:
            raise Forbidden(
                f"relay {header.type} by {gateway.id} for {sender.id} denied by "
                f"{list(decision.policy_ids) or 'default deny'} (policy set {decision.digest[:12]})"
            )
        return decision

    def _check_receivers(
        self, verified: VerifiedEnvelope, sender: Member, recipients: Sequence[Member], context: dict[str, Any]
    ) -> None:
        """The ``receive`` side: every recipient may take delivery of this type from this sender, or none does."""
        header = verified.header
        requests = [receive_request(r, header.type, sender, header.program, header.tlp.value) for r in recipients]
        decisions = self._state.require_authorizer().authorize_many(requests)
        for recipient, decision in zip(recipients, decisions, strict=True):
            if not decision.allowed:
                context["policy"] = list(decision.policy_ids)
                context["policy_digest"] = decision.digest
                raise Forbidden(
                    f"receive {header.type} by {recipient.id} denied by "
                    f"{list(decision.policy_ids) or 'default deny'} (policy set {decision.digest[:12]})"
                )

    # -- forward ----------------------------------------------------------------------------------------

    async def forward(self, inbound: Inbound, sender: str, message_id: str) -> Outcome:
        """Pass the message ``sender/message_id`` that the caller received on to new recipients.

        ``inbound`` carries the forwarder's own signed envelope over the ORIGINAL payload (its ``payload`` is
        not used: the stored bytes are). Same checks as ``submit`` (verify, replay, validate, the ``forward``
        and ``receive`` policies); the original's evidence is kept unchanged and delivered beside it."""
        context: dict[str, Any] = {"adapter": inbound.adapter, "forward_of": f"{sender}/{message_id}"}
        return await self._guarded("forward", inbound, context, self._forward(inbound, (sender, message_id), context))

    async def _forward(self, inbound: Inbound, named: tuple[str, str], context: dict[str, Any]) -> Outcome:
        caller = await self._authenticate(inbound.credentials)
        context["caller"] = caller.member.id
        relay = relay_store(self._store)
        received = await relay.find_message(*named)
        if received is None or caller.member.id not in received.recipients:
            raise NotFound(f"no message {named[0]}/{named[1]} received by {caller.member.id}")
        root = await relay.forward_of(*named) or named
        original = received if root == named else await relay.find_message(*root)
        if original is None:  # pragma: no cover - the store keeps links only to accepted messages
            raise Internal("a forward links to a missing original")
        trust = self._state.require_trust()
        now = self._clock.now()
        verified = self._verify_jws(inbound.unverified_jws, original.payload, caller, now)
        header = verified.header
        context.update(message_id=header.id, sender=header.sender, type=header.type)
        check_forward(self._stored_header(original), header)
        digest = evidence_digest(verified.jws, verified.payload)
        existing = await self._store.find_message(header.sender, header.id)
        if existing is not None:
            return self._duplicate(existing, digest)
        validated = await self._validate_forward(inbound.adapter, caller, verified, digest, now)
        recipients = [trust.registry.members[r] for r in header.to]
        relays = self._routes(header.to) if self._routes is not None else {}  # relayed as the forward (issue 19)
        request = forward_request(
            caller.member,
            header.type,
            header.program,
            header.tlp.value,
            recipients,
            original_sender=original.sender,
            lane=lane_of(validated),
        )
        decision = self._decide(request, context)
        self._check_receivers(verified, caller.member, recipients, context)
        message = StoredMessage(
            sender=header.sender,
            message_id=header.id,
            type=header.type,
            recipients=header.to,
            jws=verified.jws,
            payload=original.payload,
            digest=digest,
            received_at=now,
        )
        event = self._accepted_event(
            inbound.adapter,
            caller,
            verified,
            digest=digest,
            decision=decision,
            now=now,
            extra={
                "action": "forward",
                "forward_of": {"sender": original.sender, "message_id": original.message_id},
                "parent": {"sender": named[0], "message_id": named[1]},
                "original_evidence_sha256": original.digest,
            }
            | ({"relay": {peer: list(members) for peer, members in sorted(relays.items())}} if relays else {}),
        )
        receipt = self._receipt_factory(message, decision.digest, None)
        stored_or_duplicate = await self._persist(
            lambda: relay.accept_forward(message, named, event, receipt, relays=relays or None), header, digest
        )
        if isinstance(stored_or_duplicate, Outcome):
            return stored_or_duplicate
        stored = stored_or_duplicate
        for recipient in header.to:
            self._inbox.wake(recipient)
        return Outcome(message=stored, duplicate=False)

    async def _validate_forward(
        self, adapter: str, caller: Caller, verified: VerifiedEnvelope, digest: str, now: datetime
    ) -> ValidatedPayload:
        """Step 5 for a forward of stored evidence: translated like a submission, and nothing else of the
        handlers runs (a forward gets no answer, no enrichment, no effect)."""
        hooks = self.handlers.hooks(verified.header.type, verified.header.payload.media)
        work = Submission(adapter, caller, verified, digest, now)
        states = {h: h.begin(work) for h in hooks.translate}
        return await self._validate(work, hooks, states)

    # -- inbox (gateway/exchange/inbox.py) ----------------------------------------------------------------------

    async def pull(self, caller: Caller, *, after: int, limit: int, wait: float) -> list[InboxItem]:
        return await self._inbox.pull(caller, after=after, limit=limit, wait=wait)

    async def ack(self, caller: Caller, cursors: Sequence[int]) -> int:
        return await self._inbox.ack(caller, cursors)

    async def status(self, caller: Caller, sender: str, message_id: str) -> MessageStatus:
        return await self._inbox.status(caller, sender, message_id)

    async def authorize_audit(self, caller: Caller, *, adapter: str) -> Decision:
        """Ledger reads (Cedar ``audit_read``: auditors and the home administration in the baseline), decided like
        everything else; a denial is audited with the adapter that received the read and the policies that decided."""
        decision = self._state.require_authorizer().authorize(audit_request(caller.member))
        if not decision.allowed:
            exc = Forbidden(f"audit_read denied for {caller.member.id}")
            fields = {"policy": list(decision.policy_ids), "policy_digest": decision.digest}
            await self.rejections.record(
                exc, adapter=adapter, action="audit_read", caller=caller.member.id, peer=None, fields=fields
            )
            raise exc
        return decision

    # -- audit helpers ----------------------------------------------------------------------------------

    async def _reject(self, exc: GatewayError, *, inbound: Inbound, action: str, fields: dict[str, Any]) -> None:
        """A submission's refusal: a leaf when the caller was authenticated before the refusal, else counted."""
        caller = fields.get("caller")
        await self.rejections.record(
            exc,
            adapter=inbound.adapter,
            action=action,
            caller=caller if isinstance(caller, str) else None,
            peer=inbound.credentials.peer,
            fields=fields,
        )

    @staticmethod
    def _log_exchange(context: dict[str, Any], decision: str, code: str, started: float) -> None:
        log.info(
            "exchange",
            decision=decision,
            reason=code,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            **{k: v for k, v in context.items() if k not in ("policy", "policy_errors")},
        )
