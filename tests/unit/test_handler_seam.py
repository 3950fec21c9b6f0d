"""Adding a message type touches only its feature and a registration line (issue 18): a test-only handler brings
a type the core has never heard of (``test.sighting.v1``), with its own payload rules, Cedar context, pure check,
ledger fields, receipt claim and after-commit effect, and the unchanged ``Pipeline`` applies every one of them.

The same real pipeline as tests/unit/test_pipeline_core.py (dev federation certificates, real ES256 signatures,
the repository's Cedar policies plus one policy file for the new type, the in-memory store); the one recovery
loop (``gateway.exchange.recovery``) replays the handler's effect after a "crash" kept it from happening.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.app.main import load_state
from gateway.app.settings import load_settings
from gateway.client.rest import MemberCredentials, sign_message
from gateway.core.errors import BadRequest, Forbidden, Invalid
from gateway.core.payloads import MESSAGE_TYPES, ValidatedPayload
from gateway.core.policy import Authorizer
from gateway.core.receipt import read_receipt
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.exchange.access import Credentials
from gateway.exchange.handlers import Accepted, Handler, Handlers, PolicyValue, Submission
from gateway.exchange.pipeline import Inbound, Outcome, Pipeline
from gateway.exchange.recovery import Recovery
from gateway.exchange.state import GatewayState
from gateway.infra.devpki import create_federation
from gateway.infra.memory_store import MemoryStore
from gateway.infra.policyfiles import bundle_programs, load_bundle

SIGHTING, SIGHTING_SCHEMA = "test.sighting.v1", "test.v1.Sighting"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=1)

# The new type's Cedar policy: customs share sightings with customs; the handler adds ``lane`` ("HIGH" or "")
# to the context, and a HIGH sighting must go to more than one administration.
SIGHTING_POLICY = """
@id("customs-share-sightings")
permit (principal, action == Cgw::Action::"submit", resource == Cgw::MessageType::"test.sighting.v1")
when {
  principal.kind == "customs" && ["customs"].containsAll(context.recipient_kinds) &&
  (context.lane != "HIGH" || context.recipient_count > 1)
};

@id("customs-receive-sightings")
permit (principal, action == Cgw::Action::"receive", resource == Cgw::MessageType::"test.sighting.v1")
when { principal.kind == "customs" };
"""


class FixedClock:
    def now(self) -> datetime:
        return NOW


@dataclass
class SightingWork:
    vessel: str = ""
    severity: str = ""


@dataclass(eq=False)  # hashable by identity: the pipeline keys each submission's states by handler
class SightingHandler(Handler[SightingWork]):
    """The whole feature: payload rules, Cedar context, a pure check, ledger fields, a receipt claim, an effect."""

    name = "sightings"
    types = frozenset({SIGHTING})
    watchlist: dict[str, str] = field(default_factory=dict)  # the effect: vessel -> the sighting that named it
    refusals: list[str] = field(default_factory=list)
    scanned_to: int = 0

    def begin(self, submission: Submission) -> SightingWork:
        return SightingWork()

    async def translate(self, submission: Submission, state: SightingWork) -> ValidatedPayload | None:
        try:
            body = json.loads(submission.envelope.payload)
        except ValueError:
            raise Invalid("not JSON", field="payload") from None
        vessel, severity = body.get("vessel"), body.get("severity")
        if not isinstance(vessel, str) or not (vessel.startswith("IMO") and vessel[3:].isdigit()):
            raise Invalid("an IMO number, IMO followed by digits", field="payload.vessel")
        state.vessel, state.severity = vessel, str(severity)
        envelope = submission.envelope
        return ValidatedPayload(
            SIGHTING, SIGHTING_SCHEMA, envelope.header.payload.media, len(envelope.payload), vessels=(vessel,)
        )

    async def policy_context(
        self, submission: Submission, state: SightingWork, payload: ValidatedPayload
    ) -> Mapping[str, PolicyValue]:
        return {"lane": "HIGH"} if state.severity == "high" else {}

    def check(self, submission: Submission, state: SightingWork, payload: ValidatedPayload) -> None:
        if state.severity not in ("low", "high"):
            raise BadRequest("severity is low or high", field="payload.severity")

    def ledger_fields(
        self, submission: Submission, state: SightingWork, payload: ValidatedPayload
    ) -> Mapping[str, Any]:
        return {"sighting": {"vessel": state.vessel, "severity": state.severity}}

    def receipt_claims(self, submission: Submission, state: SightingWork) -> Mapping[str, Mapping[str, str]]:
        return {"sighting": {"vessel": state.vessel}}

    async def after_commit(self, accepted: Accepted, state: SightingWork | None) -> bool:
        vessel = json.loads(accepted.message.payload)["vessel"]
        if vessel in self.watchlist:
            return False  # idempotent
        self.watchlist[vessel] = accepted.message.message_id
        return True

    async def refused(self, submission: Submission, state: SightingWork, error: Exception) -> None:
        self.refusals.append(getattr(error, "code", ""))

    def ledger_mark(self) -> SightingHandler:
        return self

    async def scanned(self) -> int:
        return self.scanned_to

    async def set_scanned(self, size: int) -> None:
        self.scanned_to = size

    def replays(self, event: Mapping[str, Any]) -> bool:
        return event.get("type") == SIGHTING


@dataclass(frozen=True)
class Federation:
    directory: Path
    state: GatewayState


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    directory = tmp_path_factory.mktemp("federation")
    settings = load_settings(create_federation(directory, now=T0))
    state = load_state(settings)
    policies = tmp_path_factory.mktemp("policies")
    shutil.copytree(settings.policies_dir, policies, dirs_exist_ok=True)
    (policies / "sightings.cedar").write_text(SIGHTING_POLICY)  # the feature's policy file
    bundle = load_bundle(policies)
    types = [*MESSAGE_TYPES, SIGHTING]
    registry = state.require_trust().registry
    state.swap(authorizer=Authorizer(bundle, registry, types, programs=bundle_programs(bundle, MESSAGE_TYPES)))
    return Federation(directory, state)


@dataclass
class Exchange:
    federation: Federation
    store: MemoryStore
    pipeline: Pipeline
    sightings: SightingHandler

    def mtls(self, member_id: str) -> Credentials:
        pem = (self.federation.directory / "members" / member_id / "tls-client.crt").read_bytes()
        return Credentials(client_cert=x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER))

    async def submit(self, sender: str, to: list[str], body: dict[str, object]) -> Outcome:
        payload = json.dumps(body).encode()
        member = MemberCredentials.from_federation(self.federation.directory, sender)
        jws = sign_message(member, SIGHTING, to, payload, schema=SIGHTING_SCHEMA, created=T0)
        return await self.pipeline.submit(Inbound("rest", self.mtls(sender), jws, payload))

    async def leaves(self) -> list[dict[str, Any]]:
        entries = await self.store.ledger_entries(0, await self.store.ledger_size())
        return [json.loads(e.data) for e in entries]


@pytest.fixture
def exchange(federation: Federation) -> Exchange:
    store = MemoryStore(clock=FixedClock())
    handlers = Handlers()
    handlers.register(sightings := SightingHandler())  # the registration line
    pipeline = Pipeline(store=store, state=federation.state, clock=FixedClock(), handlers=handlers)
    return Exchange(federation, store, pipeline, sightings)


async def test_the_new_type_is_accepted_with_its_ledger_fields_receipt_claim_and_effect(exchange: Exchange) -> None:
    outcome = await exchange.submit("US-CBP", ["CN-GACC"], {"vessel": "IMO9321483", "severity": "low"})

    claims = read_receipt(outcome.receipt, exchange.federation.state.identity.private_key.public_key())
    assert claims["type"] == SIGHTING
    assert claims["sighting"] == {"vessel": "IMO9321483"}
    [leaf] = await exchange.leaves()
    assert leaf["event"] == "accepted"
    assert leaf["sighting"] == {"vessel": "IMO9321483", "severity": "low"}
    assert leaf["policy_ids"] == ["customs-share-sightings"]
    assert exchange.sightings.watchlist == {"IMO9321483": outcome.message.message_id}


async def test_the_handlers_payload_rule_refuses_naming_the_field(exchange: Exchange) -> None:
    with pytest.raises(Invalid) as refused:
        await exchange.submit("US-CBP", ["CN-GACC"], {"vessel": "9321483", "severity": "low"})

    assert (refused.value.code, refused.value.field) == ("SCHEMA_INVALID", "payload.vessel")
    [leaf] = await exchange.leaves()
    assert (leaf["event"], leaf["code"], leaf["field"]) == ("rejected", "SCHEMA_INVALID", "payload.vessel")
    assert exchange.sightings.refusals == ["SCHEMA_INVALID"]
    assert exchange.sightings.watchlist == {}


async def test_the_handlers_cedar_context_decides(exchange: Exchange) -> None:
    """A HIGH sighting to one administration is denied by the new type's policy; to two it is allowed."""
    with pytest.raises(Forbidden):
        await exchange.submit("US-CBP", ["CN-GACC"], {"vessel": "IMO9321483", "severity": "high"})

    await exchange.submit("US-CBP", ["CN-GACC", "NL-DOUANE"], {"vessel": "IMO9321483", "severity": "high"})

    assert [leaf["event"] for leaf in await exchange.leaves()] == ["rejected", "accepted"]
    assert exchange.sightings.refusals == ["POLICY_DENIED"]


async def test_the_handlers_pure_check_refuses_after_cedar_and_stores_nothing(exchange: Exchange) -> None:
    with pytest.raises(BadRequest) as refused:
        await exchange.submit("US-CBP", ["CN-GACC"], {"vessel": "IMO9321483", "severity": "urgent"})

    assert refused.value.field == "payload.severity"
    assert [leaf["event"] for leaf in await exchange.leaves()] == ["rejected"]
    assert await exchange.store.inbox_depths() == {}


async def test_other_types_never_reach_the_handler(exchange: Exchange) -> None:
    payload = to_bytes(cargo_manifest())
    member = MemberCredentials.from_federation(exchange.federation.directory, "US-CBP")
    jws = sign_message(member, "manifest.cargo.v1", ["CN-GACC"], payload, schema="cgw.v1.CargoManifest", created=T0)

    await exchange.pipeline.submit(Inbound("rest", exchange.mtls("US-CBP"), jws, payload))

    assert exchange.pipeline.handlers.hooks("manifest.cargo.v1", "application/json").handlers == ()
    [leaf] = await exchange.leaves()
    assert "sighting" not in leaf
    assert (exchange.sightings.watchlist, exchange.sightings.refusals) == ({}, [])


async def test_the_recovery_loop_replays_a_lost_effect_once(exchange: Exchange, federation: Federation) -> None:
    first = await exchange.submit("US-CBP", ["CN-GACC"], {"vessel": "IMO9321483", "severity": "low"})
    await exchange.submit("US-CBP", ["CN-GACC"], {"vessel": "IMO9074729", "severity": "low"})
    # The "crash": a new process whose effect store never saw the accepted sightings, scanning from 0.
    restarted = SightingHandler()
    handlers = Handlers()
    handlers.register(restarted)
    recovery = Recovery(
        store=exchange.store, handlers=handlers, registry=lambda: federation.state.require_trust().registry
    )

    assert await recovery.run() == {"sightings": 2}
    assert restarted.watchlist["IMO9321483"] == first.message.message_id
    assert restarted.scanned_to == await exchange.store.ledger_size()
    assert await recovery.run() == {"sightings": 0}  # past the mark: nothing read again
    restarted.scanned_to = 0
    assert await recovery.run() == {"sightings": 0}  # read again: the effect is idempotent
