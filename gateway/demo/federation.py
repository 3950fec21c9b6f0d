"""``customs-gateway demo --federation``: two administrations, two gateways, one exchange across the border.

``init --peers 2`` (``gateway.app.federationtool.init_peers``) writes CN-GACC and NL-DOUANE (each its own CA,
gateway and members) and one signed federation directory into a temporary directory; both gateways are started
as real servers on loopback (REST and gRPC on free ports the directory names). Then:

 1. CARRIER-COSCO, a member of CN-GACC, files a cargo manifest to NL-DOUANE's officer at CN-GACC and verifies
    CN-GACC's signed receipt.
 2. CN-GACC relays it to NL-DOUANE over mutual TLS (its gateway client certificate), the carrier's envelope
    unchanged.
 3. NL-DOUANE's officer pulls it at gateway NL with NL's member credentials and re-verifies the carrier's
    signature against CN-GACC's signing anchor in the directory; then acknowledges it.
 4. NL-DOUANE's signed receipt is kept at CN-GACC and shown to the carrier (``GET /v1/messages/{from}/{id}`` at
    CN), verified against NL-DOUANE's signing anchor in the directory.
 5. The carrier recalls a second manifest at CN-GACC; the recall crosses the border and withdraws NL-DOUANE's copy
    (NL-DOUANE's ``recalled`` ledger event names the recall), and the carrier verifies NL-DOUANE's receipt for it.
 6. Each ledger's published checkpoint carries the other gateway's witness cosignature (C2SP tlog-cosignature),
    verified with the keys the directory lists.
 7. ``audit verify --require-cosigners 1`` passes over REST for both gateways.

Every step prints one ``[PASS]``/``[FAIL]`` line (a step that raises is a FAIL with the error, and the demo goes on);
the command exits 0 only when every step passed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.app.auditor import Witnesses, verify_over_rest
from gateway.app.federationtool import init_peers
from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.core import envelope
from gateway.core.cosignature import verify_cosigned
from gateway.core.directory import Directory
from gateway.core.errors import GatewayError
from gateway.core.model import Tlp
from gateway.core.payloads import MESSAGE_TYPES
from gateway.core.peerreceipt import verify_peer_receipt
from gateway.core.peertrust import PeerSigners
from gateway.demo.programsamples import intel_recall
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.federationfiles import load_operator_key, read_directory
from gateway.infra.files import load_registry

CN, NL = "CN-GACC", "NL-DOUANE"
CARRIER = "CARRIER-COSCO"
AUDITORS = {CN: "AUDIT-GACC", NL: NL}  # who reads each ledger: CN's auditor; NL's home administration
MANIFEST = "manifest.cargo.v1"
MANIFEST_SCHEMA = "cgw.v1.CargoManifest"
RECALL = "intel.recall.v1"
# A relay on loopback takes milliseconds; this bounds a hung peer so the demo fails instead of hanging.
RELAY_WAIT_SECONDS = 20.0
POLL_SECONDS = 0.1


@dataclass
class Steps:
    """The demo's step lines and verdicts."""

    results: list[tuple[str, bool]] = field(default_factory=list)

    def record(self, name: str, ok: bool, detail: str) -> None:
        self.results.append((name, ok))
        print(f"  [{'PASS' if ok else 'FAIL'}] {name}: {detail}", flush=True)

    async def attempt(self, name: str, step: Callable[[], Awaitable[tuple[bool, str]]]) -> bool:
        """Run one step; an error it raises is that step's FAIL line (the demo goes on to the next)."""
        try:
            ok, detail = await step()
        except (GatewayError, TimeoutError, AssertionError, KeyError, ValueError) as exc:
            ok, detail = False, f"{type(exc).__name__}: {getattr(exc, 'detail', None) or exc}"
        self.record(name, ok, detail)
        return ok

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(ok for _, ok in self.results)


def free_base_port(count: int = 4) -> int:
    """A loopback port with it and the next ``count - 1`` free now: ``init --peers`` names them in the directory
    (four for two administrations, six for three)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base > 65536 - count:
            continue
        with ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
            return base
    raise RuntimeError(f"no {count} consecutive free ports on loopback")


async def run_federation_demo(*, keep: Path | None = None) -> int:
    if keep is not None:
        return await _run(keep)
    with tempfile.TemporaryDirectory(prefix="cgw-fed-demo-") as tmp:
        return await _run(Path(tmp) / "peers")


@dataclass(frozen=True)
class Scene:
    """The two running gateways, their administrations' directories and the signed federation directory."""

    out: Path
    directory: Directory
    gateways: dict[str, Gateway]

    def fed(self, gateway_id: str) -> Path:
        return self.out / gateway_id.split("-", maxsplit=1)[0].lower()

    def client(self, gateway_id: str, member: str) -> GatewayClient:
        """``member`` of ``gateway_id``'s administration, over mTLS to that gateway."""
        fed = self.fed(gateway_id)
        credentials = MemberCredentials.from_federation(fed, member)
        return GatewayClient(self.gateways[gateway_id].url, credentials, gateway_member=gateway_id)


async def _run(out: Path) -> int:
    print(f"customs-gateway demo --federation: two administrations in {out}")
    if out.exists() and any(out.iterdir()):  # noqa: ASYNC240 - once, before any gateway starts
        print(f"error: {out} is not empty: the demo writes a new setup")
        return 2
    configs = init_peers(out, base_port=free_base_port())
    operator = load_operator_key(out / "ops" / "operator.pub")
    directory = read_directory(out / "ops" / "directory.jws", operator, datetime.now(UTC))
    steps = Steps()
    cn_settings, nl_settings = (load_settings(config) for config in configs)
    async with running_gateway(cn_settings) as cn, running_gateway(nl_settings) as nl:
        print(f"\ngateway {CN} on {cn.url}, gateway {NL} on {nl.url} (mTLS; each trusts its own CA and the directory)")
        scene = Scene(out, directory, {CN: cn, NL: nl})
        await _exchange(steps, scene)
        await _recall(steps, scene)
        await _cosigned(steps, scene)
        await _audit(steps, scene)
    failed = [name for name, ok in steps.results if not ok]
    print(
        f"\nsummary: {len(steps.results) - len(failed)} passed, {len(failed)} failed"
        + (f" ({', '.join(failed)})" if failed else "")
        + f" -> {'PASS' if steps.ok else 'FAIL'}"
    )
    return 0 if steps.ok else 1


def _manifest(number: str) -> bytes:
    return to_bytes(cargo_manifest(number))


async def _exchange(steps: Steps, scene: Scene) -> None:
    print("\n1. CARRIER-COSCO files a cargo manifest at CN-GACC for NL-DOUANE's officer")
    payload = _manifest(f"COSU-MAN-{uuid.uuid4().hex[:6].upper()}")
    async with scene.client(CN, CARRIER) as carrier:
        jws = carrier.sign(MANIFEST, [NL], payload, schema=MANIFEST_SCHEMA, tlp=Tlp.AMBER)
        sent = await carrier.submit_signed(jws, payload)  # the client verifies CN-GACC's receipt signature
        receipt = sent.receipt
        message_id = str(sent.body["message_id"])
        steps.record(
            "CN-GACC's receipt to the carrier",
            sent.status == 201 and receipt["gateway"] == CN and receipt["status"] == "accepted",
            f"{sent.status}, receipt signed by {receipt['gateway']} (its CA), ledger index {receipt['ledger_index']}",
        )

        print("2. CN-GACC relays it to NL-DOUANE's gateway (mTLS, the carrier's envelope unchanged)")
        held = await steps.attempt("relayed to NL-DOUANE", lambda: _relayed(scene, message_id))

        print("3. NL-DOUANE's officer pulls it at gateway NL and re-verifies the carrier's signature")
        await steps.attempt("manifest in NL-DOUANE's inbox at NL", lambda: _pulled(scene, message_id, jws, payload))

        print("4. NL-DOUANE's signed receipt comes back to CN-GACC and the carrier")
        if held:
            await steps.attempt("CN-GACC keeps NL's receipt", lambda: _kept_receipt(scene, message_id))
            await _receipt_at_carrier(steps, scene, carrier, message_id)
        else:
            steps.record("NL's receipt at the carrier", False, "the relay did not complete")


async def _until(check: Callable[[], Awaitable[Any]], what: str) -> Any:
    """Poll ``check`` until it returns something truthy, for at most :data:`RELAY_WAIT_SECONDS`."""
    try:
        async with asyncio.timeout(RELAY_WAIT_SECONDS):
            while True:
                if found := await check():
                    return found
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        raise TimeoutError(f"{what}: not within {RELAY_WAIT_SECONDS:.0f} s") from None


async def _ledger(gateway: Gateway) -> list[dict[str, Any]]:
    size = await gateway.store.ledger_size()
    return [json.loads(entry.data) for entry in await gateway.store.ledger_entries(0, size)]


async def _events(gateway: Gateway, kind: str, message_id: str) -> list[dict[str, Any]]:
    return [e for e in await _ledger(gateway) if e.get("event") == kind and e.get("message_id") == message_id]


async def _relayed(scene: Scene, message_id: str) -> tuple[bool, str]:
    """CN-GACC recorded the relay as delivered; NL-DOUANE's ledger accepted it once, naming the relaying gateway."""
    cn, nl = scene.gateways[CN], scene.gateways[NL]
    [delivered] = await _until(lambda: _events(cn, "relay_delivered", message_id), "relay_delivered at CN-GACC")
    [accepted] = await _events(nl, "accepted", message_id)
    ok = accepted.get("relayed_by") == CN and accepted.get("sender") == CARRIER and delivered.get("peer") == NL
    return ok, (
        f"CN-GACC ledger: relay_delivered to {delivered.get('peer')}; NL-DOUANE ledger: accepted via "
        f"{accepted.get('adapter')}, relayed_by {accepted.get('relayed_by')}"
    )


async def _pulled(scene: Scene, message_id: str, jws: str, payload: bytes) -> tuple[bool, str]:
    async with scene.client(NL, NL) as officer:
        page = await officer.pull(wait=2)
        [item] = [i for i in page["items"] if i["message_id"] == message_id]
        unchanged = item["envelope"] == jws and item["payload"] == payload and item["from"] == CARRIER
        # the officer's own check: the carrier's signature, against the anchor the directory lists for CN-GACC
        registry = load_registry(scene.fed(NL) / "registry.json")
        verified = envelope.verify_envelope(
            item["envelope"],
            item["payload"],
            validator=PeerSigners(scene.directory.gateways[CN]),
            registry=registry,
            now=datetime.now(UTC),
            caller=None,
            registered=False,  # NL's registry lists the foreign carrier without its certificates
        )
        acked = await officer.ack([item["cursor"]])
    ok = unchanged and verified.header.sender == CARRIER and acked == 1
    return ok, f"envelope and payload byte-identical; signer {verified.signer.id} chains to CN-GACC's anchor; acked"


async def _kept_receipt(scene: Scene, message_id: str) -> tuple[bool, str]:
    """The receipt CN-GACC stored with the delivered relay row, verified here again from the directory."""
    cn = scene.gateways[CN]
    message = await cn.store.find_message(CARRIER, message_id)
    [state] = [s for s in await cn.store.recipient_states(CARRIER, message_id) if s.peer == NL]
    assert message is not None
    assert state.delivery is not None
    claims = _verify_nl_receipt(scene, state.delivery.receipt.decode("ascii"), message_id, message.digest)
    return True, f"verified against NL-DOUANE's signing anchor; NL ledger index {claims['ledger_index']}"


def _verify_nl_receipt(scene: Scene, receipt: str, message_id: str, digest: str) -> dict[str, Any]:
    """NL-DOUANE's receipt for exactly this message, its signer chaining to NL's anchor in the directory."""
    return verify_peer_receipt(
        receipt,
        peer=NL,
        signing_anchors=scene.directory.gateways[NL].signing_anchors,
        sender=CARRIER,
        message_id=message_id,
        evidence_sha256=digest,
        at=datetime.now(UTC),
    )


def peer_receipt(status: dict[str, Any], peer: str) -> str | None:
    """B's receipt as a status answer shows it (``GET /v1/messages/{from}/{id}``: a remote recipient names its
    ``peer``, and its relay's ``delivery.receipt`` is the peer's compact JWS once delivered); None: not shown."""
    for recipient in status.get("recipients", []):
        receipt = (recipient.get("delivery") or {}).get("receipt")
        if recipient.get("peer") == peer and isinstance(receipt, str) and receipt:
            return receipt
    return None


async def _receipt_at_carrier(steps: Steps, scene: Scene, carrier: GatewayClient, message_id: str) -> None:
    async def shown() -> tuple[bool, str]:
        status = await carrier.status(CARRIER, message_id)
        receipt = peer_receipt(status, NL)
        if receipt is None:
            return False, f"the carrier's status answer at CN-GACC shows no receipt of {NL}"
        claims = _verify_nl_receipt(scene, receipt, message_id, str(status["evidence_sha256"]))
        return True, f"status at CN-GACC shows it; signed by {claims['gateway']} (NL-DOUANE's anchor in the directory)"

    await steps.attempt("NL's receipt at the carrier", shown)


async def _recall(steps: Steps, scene: Scene) -> None:
    print("5. the carrier recalls a second manifest at CN-GACC; the recall crosses the border")
    cn, nl = scene.gateways[CN], scene.gateways[NL]

    async def crossed() -> tuple[bool, str]:
        async with scene.client(CN, CARRIER) as carrier:
            sent = await carrier.submit(MANIFEST, [NL], _manifest("COSU-MAN-RECALL"), schema=MANIFEST_SCHEMA)
            original = str(sent.body["message_id"])
            await _until(lambda: _events(cn, "relay_delivered", original), "the second manifest relayed")
            recall = to_bytes(intel_recall(CARRIER, original))
            recalled = await carrier.submit(RECALL, [NL], recall, schema=MESSAGE_TYPES[RECALL].schema, tlp=Tlp.GREEN)
            recall_id = str(recalled.body["message_id"])
            await _until(lambda: _events(cn, "relay_delivered", recall_id), "the recall relayed")
            withdrawn = await _until(lambda: _withdrawn(nl, original, recall_id), "NL-DOUANE's copy withdrawn")
            async with scene.client(NL, NL) as officer:
                page = await officer.pull(wait=0)
            gone = not [i for i in page["items"] if i["message_id"] == original]
            status = await carrier.status(CARRIER, recall_id)
        receipt = peer_receipt(status, NL)
        if receipt is None:
            return False, f"the carrier's status of the recall at CN-GACC shows no receipt of {NL}"
        _verify_nl_receipt(scene, receipt, recall_id, str(status["evidence_sha256"]))
        return gone, (
            f"NL-DOUANE ledger: recalled, withdrawn from {withdrawn}; the officer's inbox "
            f"{'no longer holds it' if gone else 'STILL holds it'}; NL's receipt for the recall verified at the carrier"
        )

    await steps.attempt("recall crosses the border", crossed)


async def _withdrawn(gateway: Gateway, message_id: str, recall_id: str) -> list[str]:
    """Whom ``gateway``'s ``recalled`` ledger event for ``message_id`` by the recall ``recall_id`` withdrew it from."""
    for event in await _ledger(gateway):
        recall = event.get("recall") or {}
        named = event.get("message_id") == message_id and recall.get("message_id") == recall_id
        if event.get("event") == "recalled" and named:
            return list(event.get("withdrawn_from", []))
    return []


async def _cosigned(steps: Steps, scene: Scene) -> None:
    print("6. each ledger's checkpoint is cosigned by the other gateway's witness")
    for gateway_id, peer_id in ((CN, NL), (NL, CN)):

        async def cosigned(g: str = gateway_id, p: str = peer_id) -> tuple[bool, str]:
            return await _cosignature(scene, g, p)

        await steps.attempt(f"{gateway_id} checkpoint cosigned by {peer_id}", cosigned)


async def _cosignature(scene: Scene, gateway_id: str, peer_id: str) -> tuple[bool, str]:
    gateway = scene.gateways[gateway_id]
    assert gateway.witnessing is not None
    await gateway.witnessing.cosigner.round()  # a round now rather than at the next checkpoint interval
    async with scene.client(gateway_id, AUDITORS[gateway_id]) as auditor:
        note = await auditor.checkpoint()
    entry, peer = scene.directory.gateways[gateway_id], scene.directory.gateways[peer_id]
    checkpoint, _, found = verify_cosigned(note, entry.origin, entry.log_keys, [peer.witness], origin=entry.origin)
    ok = [c.witness for c in found] == [peer.witness.vkey]
    return ok, f"size {checkpoint.size}, cosigned by {peer.witness.name} (its key in the directory)"


async def _audit(steps: Steps, scene: Scene) -> None:
    print("7. audit verify --require-cosigners 1, for each ledger")
    witnesses = Witnesses(scene.out / "ops" / "directory.jws", require=1)
    for gateway_id in (CN, NL):

        async def verified(g: str = gateway_id) -> tuple[bool, str]:
            gateway = scene.gateways[g]
            report = await verify_over_rest(gateway.url, scene.fed(g), AUDITORS[g], None, witnesses)
            return len(report.cosigners) >= 1, f"{report.size} entries, cosigned by {list(report.cosigners)}"

        await steps.attempt(f"audit verify {gateway_id} --require-cosigners 1", verified)
