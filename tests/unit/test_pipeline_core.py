"""The submit path of a real ``Pipeline`` over the in-memory store: no socket, no disk, still every real check.

The dev federation's certificates (``gateway.infra.devpki``), its members' real ES256 signatures, the repository's
Cedar policies and the gateway's receipt key; only the store is the in-memory one (``gateway.infra.memory_store``)
and the clock is fixed. Each test runs in a few milliseconds, so the pipeline's decisions can be tested one by one
here and over the wire in tests/integration.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app.main import load_state
from gateway.app.settings import load_settings
from gateway.client.rest import MemberCredentials, sign_message
from gateway.core.errors import DuplicateConflict, Forbidden, GatewayError
from gateway.core.merkle import leaf_hash, root_from_leaf_hashes, verify_inclusion
from gateway.core.receipt import read_receipt
from gateway.demo.samples import cargo_manifest, release_notice, to_bytes
from gateway.exchange.access import Credentials
from gateway.exchange.pipeline import Inbound, Outcome, Pipeline, evidence_digest
from gateway.exchange.state import GatewayState
from gateway.infra.devpki import create_federation
from gateway.infra.memory_store import MemoryStore
from gateway.ops.ledger import Ledger

MANIFEST, MANIFEST_SCHEMA = "manifest.cargo.v1", "cgw.v1.CargoManifest"
RELEASE, RELEASE_SCHEMA = "release.notice.v1", "cgw.v1.ReleaseNotice"
CARRIER = "CARRIER-COSCO"
# The federation's certificates and CRL are issued at T0; the gateway's clock reads a minute later.
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=1)


class FixedClock:
    def now(self) -> datetime:
        return NOW


@dataclass(frozen=True)
class Federation:
    directory: Path
    state: GatewayState


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Federation:
    directory = tmp_path_factory.mktemp("federation")
    settings = load_settings(create_federation(directory, now=T0))
    return Federation(directory, load_state(settings))


@dataclass
class Exchange:
    """One gateway (a fresh pipeline and store) and its federation's members."""

    federation: Federation
    store: MemoryStore
    pipeline: Pipeline

    def member(self, member_id: str) -> MemberCredentials:
        return MemberCredentials.from_federation(self.federation.directory, member_id)

    def mtls(self, member_id: str) -> Credentials:
        """What the TLS layer proved: the member's client certificate (DER)."""
        pem = (self.federation.directory / "members" / member_id / "tls-client.crt").read_bytes()
        return Credentials(client_cert=x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER))

    def sign(
        self,
        sender: str,
        to: list[str],
        payload: bytes,
        *,
        kind: str = MANIFEST,
        schema: str = MANIFEST_SCHEMA,
        **args: Any,
    ) -> str:
        return sign_message(self.member(sender), kind, to, payload, schema=schema, created=T0, **args)

    async def submit(self, sender: str, jws: str, payload: bytes) -> Outcome:
        return await self.pipeline.submit(Inbound("rest", self.mtls(sender), jws, payload))

    async def pending(self, member_id: str) -> list[tuple[str, str]]:
        """(sender, message id) of each item waiting in ``member_id``'s inbox, as the pipeline hands them out."""
        caller = await self.pipeline.authenticate(self.mtls(member_id))
        items = await self.pipeline.pull(caller, after=0, limit=100, wait=0)
        return [(i.message.sender, i.message.message_id) for i in items]

    async def leaves(self) -> list[dict[str, Any]]:
        entries = await self.store.ledger_entries(0, await self.store.ledger_size())
        return [json.loads(e.data) for e in entries]

    def receipt_claims(self, outcome: Outcome) -> dict[str, Any]:
        """The receipt's claims, verified with the gateway's own signing key."""
        return read_receipt(outcome.receipt, self.federation.state.identity.private_key.public_key())


@pytest.fixture
def exchange(federation: Federation) -> Exchange:
    store = MemoryStore(clock=FixedClock())
    return Exchange(federation, store, Pipeline(store=store, state=federation.state, clock=FixedClock()))


MANIFEST_BYTES = to_bytes(cargo_manifest())


async def test_an_accepted_message_is_stored_ledgered_and_receipted(exchange: Exchange) -> None:
    jws = exchange.sign(CARRIER, ["CN-GACC"], MANIFEST_BYTES)

    outcome = await exchange.submit(CARRIER, jws, MANIFEST_BYTES)

    assert not outcome.duplicate
    stored = outcome.message
    assert (stored.sender, stored.type, stored.recipients) == (CARRIER, MANIFEST, ("CN-GACC",))
    assert (stored.jws, stored.payload, stored.received_at) == (jws, MANIFEST_BYTES, NOW)
    assert await exchange.store.find_message(CARRIER, stored.message_id) == stored
    claims = exchange.receipt_claims(outcome)
    assert claims["status"] == "accepted"
    assert (claims["message_id"], claims["from"], claims["to"]) == (stored.message_id, CARRIER, ["CN-GACC"])
    assert claims["evidence_sha256"] == evidence_digest(jws, MANIFEST_BYTES) == stored.digest
    assert claims["ledger_index"] == stored.leaf_index == 0
    [leaf] = await exchange.leaves()
    assert (leaf["event"], leaf["message_id"], leaf["sender"]) == ("accepted", stored.message_id, CARRIER)
    assert leaf["policy_ids"]  # Cedar's permit, named
    assert leaf["policy_digest"] == claims["policy_digest"] == exchange.federation.state.require_authorizer().digest


async def test_the_same_bytes_again_get_the_original_receipt_and_change_nothing(exchange: Exchange) -> None:
    jws = exchange.sign(CARRIER, ["CN-GACC"], MANIFEST_BYTES)
    first = await exchange.submit(CARRIER, jws, MANIFEST_BYTES)

    again = await exchange.submit(CARRIER, jws, MANIFEST_BYTES)

    assert again.duplicate
    assert again.receipt == first.receipt
    assert await exchange.store.ledger_size() == 1
    assert await exchange.pending("CN-GACC") == [(CARRIER, first.message.message_id)]


async def test_identical_submissions_racing_are_accepted_once(exchange: Exchange) -> None:
    """The memory store yields at every call as a real store does, so the racers all pass the replay lookup
    before the first accept lands: the store's duplicate refusal is what keeps it to one message."""
    jws = exchange.sign(CARRIER, ["CN-GACC"], MANIFEST_BYTES)

    outcomes = await asyncio.gather(*(exchange.submit(CARRIER, jws, MANIFEST_BYTES) for _ in range(8)))

    assert sorted(o.duplicate for o in outcomes) == [False] + [True] * 7
    assert len({o.receipt for o in outcomes}) == 1
    assert [leaf["event"] for leaf in await exchange.leaves()] == ["accepted"]


async def test_the_same_id_with_other_bytes_is_a_duplicate_conflict(exchange: Exchange) -> None:
    message_id = str(uuid.uuid4())
    first = await exchange.submit(
        CARRIER, exchange.sign(CARRIER, ["CN-GACC"], MANIFEST_BYTES, message_id=message_id), MANIFEST_BYTES
    )
    other = to_bytes(cargo_manifest("COSU-MAN-0002"))

    with pytest.raises(DuplicateConflict) as refused:
        await exchange.submit(CARRIER, exchange.sign(CARRIER, ["CN-GACC"], other, message_id=message_id), other)

    assert refused.value.code == "DUPLICATE_CONFLICT"
    assert await exchange.store.find_message(CARRIER, message_id) == first.message  # the original stands
    leaves = await exchange.leaves()
    assert [leaf["event"] for leaf in leaves] == ["accepted", "rejected"]
    assert (leaves[1]["code"], leaves[1]["caller"], leaves[1]["message_id"]) == (
        "DUPLICATE_CONFLICT",
        CARRIER,
        message_id,
    )
    assert await exchange.pending("CN-GACC") == [(CARRIER, message_id)]


async def test_a_policy_refusal_is_a_rejected_leaf_and_stores_nothing(exchange: Exchange) -> None:
    """Cedar denies a carrier's release notice to a port (policies/*.cedar): refused, ledgered, nothing kept."""
    payload = to_bytes(release_notice())
    jws = exchange.sign(CARRIER, ["PORT-NLRTM"], payload, kind=RELEASE, schema=RELEASE_SCHEMA)

    with pytest.raises(Forbidden) as refused:
        await exchange.submit(CARRIER, jws, payload)

    assert refused.value.code == "POLICY_DENIED"
    [leaf] = await exchange.leaves()
    assert (leaf["event"], leaf["code"], leaf["adapter"], leaf["action"]) == (
        "rejected",
        "POLICY_DENIED",
        "rest",
        "submit",
    )
    assert (leaf["caller"], leaf["sender"], leaf["type"]) == (CARRIER, CARRIER, RELEASE)
    assert await exchange.pending("PORT-NLRTM") == []
    assert await exchange.store.inbox_depths() == {}


async def test_an_invalid_payload_is_refused_naming_the_field(exchange: Exchange) -> None:
    payload = to_bytes(cargo_manifest(container="MSKU9070324"))  # wrong ISO 6346 check digit
    jws = exchange.sign(CARRIER, ["CN-GACC"], payload)

    with pytest.raises(GatewayError) as refused:
        await exchange.submit(CARRIER, jws, payload)

    assert refused.value.code == "IDENTIFIER_INVALID"
    [leaf] = await exchange.leaves()
    assert (leaf["event"], leaf["code"]) == ("rejected", "IDENTIFIER_INVALID")
    assert leaf["field"] == refused.value.field == "payload.consignments[0].goodsItems[0].containerNumbers[0]"


async def test_every_recipient_gets_one_inbox_row_and_acks_only_its_own(exchange: Exchange) -> None:
    to = ["CN-GACC", "US-CBP"]
    first = await exchange.submit(CARRIER, exchange.sign(CARRIER, to, MANIFEST_BYTES), MANIFEST_BYTES)
    second = await exchange.submit(CARRIER, exchange.sign(CARRIER, ["US-CBP"], MANIFEST_BYTES), MANIFEST_BYTES)
    one, two = (CARRIER, first.message.message_id), (CARRIER, second.message.message_id)

    assert await exchange.pending("CN-GACC") == [one]
    assert await exchange.pending("US-CBP") == [one, two]
    assert await exchange.pending("PORT-NLRTM") == []
    assert await exchange.store.inbox_depths() == {"CN-GACC": 1, "US-CBP": 2}
    states = await exchange.store.recipient_states(*one)
    assert [(s.recipient, s.settled_at) for s in states] == [("CN-GACC", None), ("US-CBP", None)]

    cbp = await exchange.pipeline.authenticate(exchange.mtls("US-CBP"))
    [item, _] = await exchange.pipeline.pull(cbp, after=0, limit=10, wait=0)
    assert await exchange.pipeline.ack(cbp, [item.cursor]) == 1

    assert await exchange.pending("US-CBP") == [two]
    assert await exchange.pending("CN-GACC") == [one]  # the other recipient's row is untouched
    assert (await exchange.leaves())[-1]["event"] == "acknowledged"


async def test_a_receipted_message_is_provably_in_the_ledger(exchange: Exchange) -> None:
    """The memory store's leaves feed the ledger service's Merkle tree as the real stores' do: the receipt's
    ledger index has an inclusion proof against the signed checkpoint, and the root is the RFC 6962 root of
    the stored leaves."""
    outcomes = [
        await exchange.submit(CARRIER, exchange.sign(CARRIER, ["CN-GACC"], MANIFEST_BYTES), MANIFEST_BYTES)
        for _ in range(3)
    ]
    ledger = Ledger(exchange.store, origin="cgw.test.example/ledger", key=Ed25519PrivateKey.generate())

    head = await ledger.checkpoint()

    entries = await exchange.store.ledger_entries(0, head.size)
    assert head.size == 3
    assert head.root == root_from_leaf_hashes(leaf_hash(e.data) for e in entries)
    index = exchange.receipt_claims(outcomes[1])["ledger_index"]
    leaf, proof = await ledger.inclusion(index, head.size)
    assert leaf == leaf_hash(entries[index].data)
    verify_inclusion(leaf, index, head.size, proof, head.root)  # raises when the proof does not hold
