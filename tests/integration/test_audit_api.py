"""The audit endpoints (auditor role only) against our own offline verifiers, and the ledger's fail-loud audit."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import rfc8785

from gateway.app.auditor import verify_from_store, verify_over_rest
from gateway.app.main import Gateway
from gateway.client.rest import GatewayClientError
from gateway.core.checkpoint import parse_verifier_key
from gateway.core.errors import ProofInvalid
from gateway.core.ledgercheck import verify_ledger
from gateway.core.merkle import leaf_hash, verify_consistency, verify_inclusion
from gateway.demo.samples import cargo_manifest, to_bytes
from tests.integration.conftest import ClientFactory


def head(note: bytes) -> tuple[int, bytes]:
    lines = note.decode().split("\n")
    return int(lines[1]), base64.b64decode(lines[2])


async def fill(clients: ClientFactory, count: int) -> list[int]:
    carrier = clients("CARRIER-COSCO")
    indexes = []
    for i in range(count):
        sent = await carrier.submit(
            "manifest.cargo.v1", ["CN-GACC"], to_bytes(cargo_manifest(f"M-{i}")), schema="cgw.v1.CargoManifest"
        )
        indexes.append(sent.receipt["ledger_index"])
    return indexes


async def test_proofs_from_the_api_verify_offline(gateway: Gateway, clients: ClientFactory) -> None:
    auditor = clients("AUDIT-GACC")
    await fill(clients, 3)
    first_size, first_root = head(await auditor.checkpoint())
    indexes = await fill(clients, 4)
    second_size, second_root = head(await auditor.checkpoint())
    assert second_size == first_size + 4
    for index in indexes:
        proof = await auditor.inclusion(index, second_size)
        entry = (await auditor.entries(index, index + 1))[0][1]
        assert base64.b64decode(proof["leaf_hash"]) == leaf_hash(entry)
        verify_inclusion(
            leaf_hash(entry), index, second_size, [base64.b64decode(p) for p in proof["proof"]], second_root
        )
    consistency = await auditor.consistency(first_size, second_size)
    verify_consistency(
        first_size, second_size, [base64.b64decode(p) for p in consistency["proof"]], first_root, second_root
    )
    with pytest.raises(ProofInvalid):
        verify_consistency(
            first_size, second_size, [base64.b64decode(p) for p in consistency["proof"]], second_root, first_root
        )


@pytest.mark.parametrize("member", ["CARRIER-COSCO", "PORT-NLRTM", "NL-DOUANE"])
async def test_only_auditors_and_the_home_administration_read_the_ledger(clients: ClientFactory, member: str) -> None:
    with pytest.raises(GatewayClientError) as err:
        await clients(member).checkpoint()
    assert (err.value.status, err.value.code) == (403, "POLICY_DENIED")
    assert (await clients("CN-GACC").checkpoint()).count(b"\n") >= 4  # home-customs-reads-ledger


async def test_bad_proof_requests_are_client_errors(clients: ClientFactory) -> None:
    auditor = clients("AUDIT-GACC")
    await fill(clients, 2)
    for call in (auditor.inclusion(5, 2), auditor.inclusion(0, 999), auditor.consistency(3, 1)):
        with pytest.raises(GatewayClientError) as err:
            await call
        assert err.value.status == 422


async def test_whole_ledger_verifies_and_any_alteration_fails(gateway: Gateway, clients: ClientFactory) -> None:
    await fill(clients, 5)
    auditor = clients("AUDIT-GACC")
    note = await auditor.checkpoint()
    entries = await auditor.entries(0, 1000)
    key = gateway.ledger.verifier_key
    origin = gateway.settings.origin
    name, public_key = parse_verifier_key(key)
    report = verify_ledger(entries, note, name, public_key, origin=origin)
    assert report.size == len(entries) == report.checkpoint_size
    assert report.events_by_kind["accepted"] == 5
    # Alter one accepted event (still canonical JSON): the signed root no longer matches.
    index, data = entries[2]
    event = json.loads(data)
    event["to"] = ["US-CBP"]
    altered = [*entries[:2], (index, rfc8785.dumps(event)), *entries[3:]]
    with pytest.raises(ProofInvalid):
        verify_ledger(altered, note, name, public_key, origin=origin)
    with pytest.raises(ProofInvalid, match="first bad index 1"):
        verify_ledger([entries[0], *entries[2:]], note, name, public_key, origin=origin)
    with pytest.raises(ProofInvalid, match="first bad index 1"):
        verify_ledger([entries[0], entries[2], entries[1], *entries[3:]], note, name, public_key, origin=origin)


async def test_auditor_tools_over_rest_and_from_store(
    gateway: Gateway, clients: ClientFactory, federation: Path
) -> None:
    await fill(clients, 3)
    report = await verify_over_rest(gateway.url, federation, "AUDIT-GACC")
    assert report.events_by_kind["accepted"] == 3
    await gateway.ledger.checkpoint()  # publishes the note file the offline check reads
    offline = await verify_from_store(gateway.settings)
    assert offline.size >= report.size
