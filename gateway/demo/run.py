"""``customs-gateway demo``: a real exchange on loopback, over HTTPS with mTLS, with the reference client.

A fresh dev federation is created in a temporary directory and the gateway is started on a free port. Then:

 1. CARRIER-COSCO submits a cargo manifest to CN-GACC and verifies the signed receipt.
 2. CN-GACC pulls it, re-verifies the carrier's original signature offline, and acknowledges it.
 3. CN-GACC sends a release notice to PORT-NLRTM; the port takes an RFC 7523 access token over REST, then
    receives the notice on its gRPC Inbox stream (mTLS + the token as bearer metadata) and acknowledges it.
 4. Forgeries are refused: a tampered payload, a message signed by someone else than its sender, a revoked
    certificate, a message the policy does not allow, and an invalid container check digit.
 5. A replay of the manifest returns the original receipt (nothing is accepted twice); the same id with other
    bytes is a conflict.
 6. AUDIT-GACC verifies the whole ledger against the signed checkpoint, an inclusion proof for the manifest
    and a consistency proof between two checkpoints.
 7. AEO mutual recognition (gateway/demo/aeo.py): a recognised EU AEO consignee gets the low-risk lane; after
    NL-DOUANE suspends another EU authorisation, the next check and the next manifest show it.
 8. The carrier files a CUSCAR in UN/EDIFACT and pulls its CUSRES; a broken interchange (wrong UNT count) is
    refused with the segment and rule named, and answered with a rejecting CUSRES (gateway/demo/edifact.py).
 9. Programmes (gateway/demo/programmes.py): SSTL data CN-GACC -> NL-DOUANE on a listed lane (an off-lane one is
    refused), a CSI examination request from US-CBP answered by CN-GACC, a Megaport alarm forwarded within the
    programme (a RED forward is refused), and the originator's recall reaching every holder.

11. Port release synchronisation (gateway/demo/release.py): a hold, an inspection, a partial release, a late older
    version ignored, do-not-load to the carrier, a port that reconnects and reconciles, a refused gate-out.

Every step prints one trace line; the command exits 0 only when every step behaved as expected.
"""

from __future__ import annotations

import base64
import json
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.app.auditor import verify_over_rest
from gateway.app.main import running_gateway
from gateway.app.settings import load_settings
from gateway.client.grpc_client import GrpcGatewayClient
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials, load_signing_key, sign_message
from gateway.core import envelope
from gateway.core.merkle import verify_consistency, verify_inclusion
from gateway.core.model import Tlp
from gateway.demo.aeo import aeo_scenario
from gateway.demo.edifact import edifact_scenario
from gateway.demo.programmes import programs_scenario
from gateway.demo.release import port_scenario
from gateway.demo.samples import cargo_manifest, release_notice, to_bytes
from gateway.demo.soap import soap_scenario
from gateway.infra.devpki import create_federation
from gateway.infra.files import load_certificates, load_trust

MANIFEST = "manifest.cargo.v1"
RELEASE = "release.notice.v1"
MANIFEST_SCHEMA = "cgw.v1.CargoManifest"
RELEASE_SCHEMA = "cgw.v1.ReleaseNotice"


@dataclass
class Trace:
    steps: list[tuple[str, bool, str]] = field(default_factory=list)

    def record(self, name: str, ok: bool, detail: str) -> None:
        self.steps.append((name, ok, detail))
        print(f"  [{'ok' if ok else 'FAILED'}] {name}: {detail}", flush=True)

    async def expect_refusal(self, name: str, code: str, call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await call()
        except GatewayClientError as exc:
            self.record(name, exc.code == code, f"refused with {exc.status} {exc.code}" + _field(exc))
            return
        self.record(name, False, f"was accepted, expected {code}")

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.steps)


def _field(exc: GatewayClientError) -> str:
    return f" at {exc.field}" if exc.field else ""


async def run_demo(*, keep: Path | None = None) -> int:
    if keep is not None:
        return await _run(keep)
    with tempfile.TemporaryDirectory(prefix="cgw-demo-") as tmp:
        return await _run(Path(tmp))


async def _run(directory: Path) -> int:
    print(f"customs-gateway demo: creating a dev federation in {directory}")
    directory.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before the gateway starts
    config = create_federation(directory)
    settings = load_settings(config, overrides={"gateway.rest_port": 0, "gateway.grpc_port": 0})
    trace = Trace()
    async with running_gateway(settings) as gateway:
        print(f"gateway CN-GACC listening on {gateway.url} (mTLS, federation CA)\n")

        def client(member: str, *, mtls: bool = True) -> GatewayClient:
            return GatewayClient(gateway.url, MemberCredentials.from_federation(directory, member), mtls=mtls)

        async with (
            client("CARRIER-COSCO") as carrier,
            client("CN-GACC") as gacc,
            client("PORT-NLRTM", mtls=False) as port,
            client("NL-DOUANE") as douane,
            client("AUDIT-GACC") as auditor,
        ):
            port_grpc = GrpcGatewayClient(
                gateway.grpc_target or "", MemberCredentials.from_federation(directory, "PORT-NLRTM")
            )
            async with port_grpc:
                manifest = await _exchange(trace, carrier, gacc, port, directory, port_grpc=port_grpc)
            await _forgeries(trace, carrier, douane, gacc, directory)
            await _replays(trace, carrier, manifest)
            await _audit(trace, auditor, gateway.url, directory, manifest)
            await aeo_scenario(trace.record, carrier, gacc, douane, gateway.settings.data_dir)
            await edifact_scenario(trace.record, carrier)
            await programs_scenario(trace.record, gateway.url, directory)
            await soap_scenario(trace.record, gateway.url, directory, gacc)
            await port_scenario(trace.record, gateway.url, directory)
    passed = sum(ok for _, ok, _ in trace.steps)
    print(f"\nsummary: {passed}/{len(trace.steps)} steps behaved as expected -> {'PASS' if trace.ok else 'FAIL'}")
    return 0 if trace.ok else 1


async def _exchange(
    trace: Trace,
    carrier: GatewayClient,
    gacc: GatewayClient,
    port: GatewayClient,
    directory: Path,
    *,
    port_grpc: GrpcGatewayClient,
) -> dict[str, Any]:
    print("1. carrier files a cargo manifest")
    manifest_bytes = to_bytes(cargo_manifest())
    jws = carrier.sign(MANIFEST, ["CN-GACC"], manifest_bytes, schema=MANIFEST_SCHEMA, tlp=Tlp.AMBER)
    sent = await carrier.submit_signed(jws, manifest_bytes)
    receipt = sent.receipt
    trace.record(
        "manifest accepted",
        sent.status == 201 and receipt["status"] == "accepted",
        f"receipt signed by {receipt['gateway']}, ledger index {receipt['ledger_index']}",
    )

    print("2. CN-GACC pulls, re-verifies the original evidence and acknowledges")
    page = await gacc.pull(wait=2)
    items = [i for i in page["items"] if i["message_id"] == sent.body["message_id"]]
    ok = len(items) == 1 and items[0]["payload"] == manifest_bytes and items[0]["envelope"] == jws
    if ok:
        trust = load_trust(directory / "ca/root-ca.crt", directory / "ca/root-ca.crl", directory / "registry.json")
        verified = envelope.verify_envelope(
            items[0]["envelope"],
            items[0]["payload"],
            validator=trust,
            registry=trust.registry,
            now=datetime.now(UTC),
            caller=None,
        )
        ok = verified.header.sender == "CARRIER-COSCO"
    trace.record("manifest delivered unchanged", ok, "carrier's signature re-verified by the recipient")
    acked = await gacc.ack([items[0]["cursor"]]) if items else 0
    trace.record("manifest acknowledged", acked == 1, f"cursor {items[0]['cursor'] if items else '-'}")

    print("3. CN-GACC releases the container; the port takes a token over REST and pulls over the gRPC stream")
    notice = to_bytes(release_notice("RELEASED"))
    released = await gacc.submit(RELEASE, ["PORT-NLRTM"], notice, schema=RELEASE_SCHEMA, tlp=Tlp.GREEN)
    trace.record("release notice accepted", released.status == 201, f"ledger index {released.receipt['ledger_index']}")
    port_grpc.use_token(await port.fetch_token())
    got = [i async for i in port_grpc.inbox(deadline_seconds=5) if i.type == RELEASE]
    decision = json.loads(got[0].payload)["decision"] if got else "-"
    trace.record(
        "port received the release", decision == "RELEASED", f"decision {decision} (gRPC Inbox stream, bearer token)"
    )
    acked = await port_grpc.ack([got[0].cursor]) if got else 0
    empty = [i async for i in port_grpc.inbox(deadline_seconds=5)] == []
    trace.record("port acknowledged", acked == 1 and empty, "gRPC Ack; the inbox stream is empty after it")
    return {"jws": jws, "payload": manifest_bytes, "body": sent.body}


async def _forgeries(
    trace: Trace, carrier: GatewayClient, douane: GatewayClient, gacc: GatewayClient, directory: Path
) -> None:
    print("4. forgeries and disallowed messages are refused")
    payload = to_bytes(cargo_manifest("COSU-MAN-0002"))
    jws = carrier.sign(MANIFEST, ["CN-GACC"], payload, schema=MANIFEST_SCHEMA)
    tampered = payload.replace(b"5400.0", b"54.0")
    await trace.expect_refusal(
        "tampered payload", "PAYLOAD_DIGEST_MISMATCH", lambda: carrier.submit_signed(jws, tampered)
    )
    # NL-DOUANE signs a header that claims to come from CN-GACC and submits it over its own mTLS session.
    forged = douane.sign(MANIFEST, ["CN-GACC"], payload, schema=MANIFEST_SCHEMA)
    body = forged.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["from"] = "CN-GACC"
    resigned = _resign(directory, "NL-DOUANE", claims)
    await trace.expect_refusal(
        "signer is not the sender", "SIGNER_MISMATCH", lambda: douane.submit_signed(resigned, payload)
    )
    revoked = _revoked_client_sign(directory, payload)
    await trace.expect_refusal("revoked certificate", "CERT_REVOKED", lambda: douane.submit_signed(revoked, payload))
    await trace.expect_refusal(
        "carrier sends a release notice (policy)",
        "POLICY_DENIED",
        lambda: carrier.submit(RELEASE, ["PORT-NLRTM"], to_bytes(release_notice()), schema=RELEASE_SCHEMA),
    )
    bad = to_bytes(cargo_manifest("COSU-MAN-0003", container="MSKU9070324"))
    await trace.expect_refusal(
        "bad container check digit",
        "IDENTIFIER_INVALID",
        lambda: carrier.submit(MANIFEST, ["CN-GACC"], bad, schema=MANIFEST_SCHEMA),
    )


def _resign(directory: Path, member: str, claims: dict[str, Any]) -> str:
    """Sign arbitrary header claims with a member's key (to build a forgery the gateway must refuse)."""
    creds = MemberCredentials.from_federation(directory, member)
    return envelope.sign_envelope(envelope.parse_header(claims), creds.signing_key, creds.signing_chain)


def _revoked_client_sign(directory: Path, payload: bytes) -> str:
    """NL-DOUANE's revoked (but otherwise valid) signing certificate signs a well-formed manifest."""
    base = directory / "members" / "NL-DOUANE"
    revoked = replace(
        MemberCredentials.from_federation(directory, "NL-DOUANE"),
        signing_key=load_signing_key(base / "revoked-signing.key"),
        signing_chain=tuple(load_certificates(base / "revoked-signing.crt")),
    )
    return sign_message(revoked, MANIFEST, ["CN-GACC"], payload, schema=MANIFEST_SCHEMA)


async def _replays(trace: Trace, carrier: GatewayClient, manifest: dict[str, Any]) -> None:
    print("5. replays: nothing is accepted twice")
    again = await carrier.submit_signed(manifest["jws"], manifest["payload"])
    same = again.duplicate and again.body["ledger_index"] == manifest["body"]["ledger_index"]
    trace.record(
        "replay returns the original receipt", same, f"duplicate, still ledger index {again.body['ledger_index']}"
    )
    header = envelope.parse_header(_claims(manifest["jws"]))
    other = to_bytes(cargo_manifest("COSU-MAN-9999"))
    conflicting = sign_message(
        carrier.credentials, MANIFEST, ["CN-GACC"], other, schema=MANIFEST_SCHEMA, message_id=header.id
    )
    await trace.expect_refusal(
        "same id, other bytes", "DUPLICATE_CONFLICT", lambda: carrier.submit_signed(conflicting, other)
    )


def _claims(jws: str) -> dict[str, Any]:
    body = jws.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


async def _audit(trace: Trace, auditor: GatewayClient, url: str, directory: Path, manifest: dict[str, Any]) -> None:
    print("6. the auditor verifies the ledger")
    first = await auditor.checkpoint()
    first_size, first_root = _head(first)
    report = await verify_over_rest(url, directory, "AUDIT-GACC")
    trace.record(
        "whole ledger verified",
        report.checkpoint_size >= first_size and report.size >= report.checkpoint_size,
        f"{report.size} entries, events {dict(report.events_by_kind)}",
    )
    index = int(manifest["body"]["ledger_index"])
    proof = await auditor.inclusion(index, first_size)
    verify_inclusion(
        base64.b64decode(proof["leaf_hash"]),
        index,
        first_size,
        [base64.b64decode(p) for p in proof["proof"]],
        first_root,
    )
    trace.record("manifest acceptance is in the signed tree", True, f"inclusion proof for leaf {index} of {first_size}")
    await auditor.status("CARRIER-COSCO", manifest["body"]["message_id"])
    second = await auditor.checkpoint()
    second_size, second_root = _head(second)
    consistency = await auditor.consistency(first_size, second_size)
    verify_consistency(
        first_size, second_size, [base64.b64decode(p) for p in consistency["proof"]], first_root, second_root
    )
    trace.record("the log only grew", True, f"consistency proof {first_size} -> {second_size}")
    await trace.expect_refusal(
        "a carrier cannot read the ledger", "POLICY_DENIED", lambda: _carrier_reads(directory, url)
    )


async def _carrier_reads(directory: Path, url: str) -> bytes:
    async with GatewayClient(url, MemberCredentials.from_federation(directory, "CARRIER-COSCO")) as carrier:
        return await carrier.checkpoint()


def _head(note: bytes) -> tuple[int, bytes]:
    lines = note.decode().split("\n")
    return int(lines[1]), base64.b64decode(lines[2])
