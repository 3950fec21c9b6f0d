"""Cross-witnessing between federation gateways (C2SP tlog-witness, tlog-cosignature; issue 19).

Each gateway is a witness of its peers' ledgers (:class:`WitnessService`, behind ``POST
/witness/add-checkpoint``) and submits its own checkpoints to its peers' witnesses (:class:`Cosigner`).

Rule 1: the witness judges with ``core.witness.judge`` from the log keys in the signed federation directory and
        the latest state it cosigned, and persists a new state with the store's atomic compare-and-set; a lost
        race is judged again on fresh state (at most :data:`CAS_ATTEMPTS` times). The cosignature goes out only
        after the state is durable.
Rule 2: a request is unauthenticated by design (the checkpoint carries the log's signature); its body is bounded
        (``core.witness.MAX_REQUEST_BYTES``). Refusals are logged; a fork (a second root for a cosigned size) and
        a failed consistency proof are evidence of a misbehaving log and are also recorded as ``admin`` ledger
        events (``witness_refused``), with the origin, size and both roots.
Rule 3: the submitting side sends each new checkpoint to every peer witness of the directory (over TLS to the peer's
        anchors, presenting the gateway client certificate when ``[federation]`` gives one), concurrently, each
        request bounded by ``submit_timeout_seconds``; it starts from the size the witness last reported (0 at
        first) and follows a 409 ``text/x.tlog.size`` hint once per round. It checks each returned line with the
        peer's witness key from the directory before publishing it: a peer cannot add a line that does not verify.
Rule 4: a 409 without the size body (the witness holds another root for that size) or a 422 (our tree is not
        consistent with what it cosigned) means our log was forked or rolled back, or the witness lies: the
        gateway logs an error and records an ``admin`` ``witness_conflict`` ledger event naming the peer, size
        and root. It never retries such a checkpoint with that witness.
Rule 5: the published checkpoint (``checkpoint.note``, ``GET /v1/audit/checkpoint``) is the newest one a round
        finished with, with every cosignature it collected (possibly none); before the first round, the plain one.
Rule 6: see :class:`DirectoryInForce`. A directory is only put in force when it still lists this gateway as it
        runs (:func:`require_own_entry`: its id, origin, current checkpoint key and witness key).
Rule 7: alarms are counted too (``gateway.exchange.metrics``): ``cgw_witness_conflicts`` per peer on the
        submitting side (Rule 4), ``cgw_witness_refused`` per verdict on the witness side (Rule 2).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.core.audit import AuditEvent, EventKind
from gateway.core.checkpoint import peek_origin
from gateway.core.cosignature import append_cosignatures, cosign, verify_cosigned
from gateway.core.directory import Directory, PeerGateway
from gateway.core.errors import GatewayError, LimitExceeded, ProofInvalid, SignatureRejected, Unavailable
from gateway.core.witness import (
    SIZE_CONTENT_TYPE,
    AddCheckpoint,
    Cosigned,
    Outcome,
    Verdict,
    add_checkpoint_body,
    judge,
    parse_add_checkpoint,
)
from gateway.exchange.metrics import Metrics
from gateway.interfaces.protocols import Clock, Store, WitnessStore
from gateway.ops.ledger import Ledger, SignedHead

log = structlog.get_logger("gateway.witness")

CAS_ATTEMPTS = 8  # concurrent submissions of one log race only with each other: a few redos at most
MAX_RESPONSE_BYTES = 16 * 1024  # a witness answers with one or a few signature lines
SIZE_HINTS_PER_ROUND = 1  # follow a 409 size hint once; a witness that keeps moving is tried next round
CONFLICT_ACTION = "witness_conflict"
REFUSED_ACTION = "witness_refused"


class DirectoryInForce:
    """The accepted federation directory, refused from its ``not_after`` on (``gateway.core.directory``): a
    running gateway stops witnessing and submitting with an expired directory rather than trust stale keys.

    Rule 6: the one place the directory in force is kept: a hot reload (``gateway.ops.directoryadmin``) puts a
    newer one in with :meth:`replace`, and everything that calls this object (witness, submissions, routing,
    relays, the delivery worker) uses it from its next call on."""

    def __init__(self, directory: Directory, clock: Clock) -> None:
        self._directory = directory
        self._clock = clock

    @property
    def current(self) -> Directory:
        """The accepted directory, expired or not (for reports; decisions call the object)."""
        return self._directory

    def replace(self, directory: Directory) -> None:
        self._directory = directory

    def __call__(self) -> Directory:
        if self._clock.now() >= self._directory.not_after:
            raise Unavailable(
                f"the federation directory (version {self._directory.version}) expired at "
                f"{self._directory.not_after.isoformat()}",
                field="federation.directory",
            )
        return self._directory


def require_own_entry(
    directory: Directory, gateway_id: str, origin: str, checkpoint_vkey: str, witness_key: Ed25519PublicKey
) -> PeerGateway:
    """Rule 6: this gateway's entry in ``directory``, which must name its origin, its current checkpoint key and
    its witness key; ``Unavailable`` otherwise (at startup: the gateway does not start; on a reload: refused)."""
    me = directory.gateways.get(gateway_id)
    if me is None or me.origin != origin or checkpoint_vkey not in me.checkpoint_keys:
        raise Unavailable(
            f"the federation directory (version {directory.version}) does not list this gateway as "
            f"{gateway_id} with origin {origin} and its checkpoint key",
            field="federation.gateway_id",
        )
    if me.witness.key != witness_key:
        raise Unavailable("the witness key is not the one the directory lists", field="federation.witness_key")
    return me


@dataclass(frozen=True, slots=True)
class WitnessAnswer:
    status: int
    body: bytes
    content_type: str
    verdict: Verdict


class WitnessService:
    """The witness of this gateway (Rules 1-2)."""

    def __init__(
        self,
        *,
        store: WitnessStore,
        ledger_store: Store,
        directory: Callable[[], Directory],
        name: str,
        key: Ed25519PrivateKey,
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._store = store
        self._ledger_store = ledger_store
        self._directory = directory
        self._name = name
        self._key = key
        self._clock = clock

    async def add_checkpoint(self, body: bytes) -> WitnessAnswer:
        try:
            request = parse_add_checkpoint(body)
            origin = peek_origin(request.note)
        except (ProofInvalid, LimitExceeded) as exc:  # a malformed request is 400 in the spec (not our 422)
            log.warning("checkpoint refused", verdict=Verdict.BAD_REQUEST.value, detail=exc.detail[:200])
            return WitnessAnswer(400, f"{exc.field}: {exc.detail}\n".encode(), "text/plain", Verdict.BAD_REQUEST)
        peer = self._directory().by_origin(origin)
        outcome = await self._decide(request, origin, peer)
        if outcome.verdict is Verdict.COSIGN and outcome.checkpoint is not None:
            at = int(self._clock.now().timestamp())
            line = cosign(outcome.checkpoint, self._name, self._key, at)
            log.info("checkpoint cosigned", origin=origin, size=outcome.checkpoint.size)
            return WitnessAnswer(200, line.encode("utf-8"), "text/plain", outcome.verdict)
        log.warning("checkpoint refused", origin=origin, verdict=outcome.verdict.value, detail=outcome.detail[:200])
        if self._metrics is not None:  # Rule 7
            self._metrics.witness_refused.labels(verdict=outcome.verdict.value).inc()
        if outcome.verdict in (Verdict.FORK, Verdict.PROOF_INVALID) and outcome.checkpoint is not None:
            latest = await self._store.latest(origin)
            await self._ledger_store.record(
                AuditEvent(
                    EventKind.ADMIN,
                    self._clock.now(),
                    {
                        "action": REFUSED_ACTION,
                        "verdict": outcome.verdict.value,
                        "origin": origin,
                        "size": outcome.checkpoint.size,
                        "root": base64.b64encode(outcome.checkpoint.root).decode("ascii"),
                        "cosigned_size": latest.size if latest else 0,
                        "cosigned_root": base64.b64encode(latest.root).decode("ascii") if latest else "",
                    },
                )
            )
        if outcome.verdict is Verdict.SIZE_MISMATCH:
            return WitnessAnswer(409, f"{outcome.latest_size}\n".encode("ascii"), SIZE_CONTENT_TYPE, outcome.verdict)
        return WitnessAnswer(outcome.status, (outcome.detail + "\n").encode("utf-8"), "text/plain", outcome.verdict)

    async def _decide(self, request: AddCheckpoint, origin: str, peer: PeerGateway | None) -> Outcome:
        keys = None if peer is None else peer.log_keys
        for _ in range(CAS_ATTEMPTS):
            latest = await self._store.latest(origin)
            outcome = judge(request, origin, keys, latest)
            if outcome.verdict is not Verdict.COSIGN or outcome.checkpoint is None:
                return outcome
            new = Cosigned(outcome.checkpoint.size, outcome.checkpoint.root)
            if new == latest or await self._store.compare_and_set(origin, latest, new):
                return outcome
        return Outcome(Verdict.SIZE_MISMATCH, "the log's state kept changing", latest_size=(await self._latest(origin)))

    async def _latest(self, origin: str) -> int:
        latest = await self._store.latest(origin)
        return 0 if latest is None else latest.size


def peer_tls(peer: PeerGateway) -> ssl.SSLContext:
    """Rule 3: the peer's server certificate must chain to the TLS anchors the directory lists for it."""
    context = ssl.create_default_context(cadata=b"".join(peer.tls_anchors))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class Cosigner:
    """The submitting side (Rules 3-5): one round per new checkpoint, called by the checkpoint loop."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        store: Store,
        clock: Clock,
        directory: Callable[[], Directory],
        gateway_id: str,
        timeout_seconds: float,
        tls: Callable[[PeerGateway], ssl.SSLContext] = peer_tls,
        metrics: Metrics | None = None,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        # Rule 3: the TLS context towards a peer; the gateway passes one that also presents its client certificate
        # (``gateway.infra.relay_client.relay_tls``) when ``[federation]`` gives one
        self._tls_for = tls
        self._store = store
        self._clock = clock
        self._directory = directory
        self._gateway_id = gateway_id
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._known: dict[str, int] = {}  # per peer id: the size its witness last reported for our log
        self._conflicts: set[tuple[str, int]] = set()  # (peer, size) already recorded (Rule 4)
        self._session: aiohttp.ClientSession | None = None
        self._complete: tuple[int, int] | None = None  # (size, peers) of the last round every peer cosigned
        # per peer: its TLS context, by its anchors (one context keeps the pooled connection alive; a new
        # directory with other anchors gets a new one)
        self._tls: dict[str, tuple[tuple[bytes, ...], ssl.SSLContext]] = {}

    def _peers(self) -> Sequence[PeerGateway]:
        return self._directory().peers_of(self._gateway_id)

    async def round(self) -> SignedHead:
        """Submit the current checkpoint to every peer witness; publish it with the cosignatures collected."""
        head = await self._ledger.checkpoint()
        try:
            peers = self._peers()
        except Unavailable as exc:  # an expired directory: publish without cosignatures, loudly
            log.error("no peer witnesses", code=exc.code, detail=exc.detail)
            peers = ()
        if self._complete == (head.size, len(peers)):
            return await self._ledger.published()  # nothing new, and every peer has cosigned it
        lines = await asyncio.gather(*(self._submit(peer, head) for peer in peers))
        cosignatures = [line for line in lines if line]
        self._complete = (head.size, len(peers)) if len(cosignatures) == len(peers) else None
        note = append_cosignatures(head.note, cosignatures)
        log.info("checkpoint published", size=head.size, cosignatures=len(cosignatures), peers=len(peers))
        return await self._ledger.publish_cosigned(head, note)

    async def _session_for(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def _submit(self, peer: PeerGateway, head: SignedHead) -> str | None:
        try:
            return await self._submit_once(peer, head)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("peer witness unreachable", peer=peer.id, error=type(exc).__name__, detail=str(exc)[:200])
        except GatewayError as exc:
            log.error("peer witness answer refused", peer=peer.id, code=exc.code, detail=exc.detail[:200])
        return None

    async def _submit_once(self, peer: PeerGateway, head: SignedHead) -> str | None:
        session = await self._session_for()
        context = self._context(peer)
        for _ in range(1 + SIZE_HINTS_PER_ROUND):
            old = self._known.get(peer.id, 0)
            if old > head.size:
                await self._conflict(peer, head, f"the witness has cosigned size {old}, larger than ours")
                return None
            proof = await self._ledger.consistency(old, head.size) if 0 < old < head.size else []
            body = add_checkpoint_body(old, proof, head.note)
            async with session.post(peer.witness_url, data=body, ssl=context) as response:
                text = (await response.content.read(MAX_RESPONSE_BYTES + 1)).decode("utf-8", errors="replace")
                status, kind = response.status, response.content_type
            if status == 200:
                line = self._checked_line(peer, head, text)
                self._known[peer.id] = head.size
                return line
            if status == 409 and kind == SIZE_CONTENT_TYPE:
                hint = text.strip()
                if not hint.isdigit() or len(hint) > 19:
                    log.error("peer witness sent a malformed size", peer=peer.id)
                    return None
                self._known[peer.id] = int(hint)
                continue
            if status in (409, 422):
                await self._conflict(peer, head, f"HTTP {status}: {text.strip()[:160]}")
                return None
            log.warning("peer witness refused the checkpoint", peer=peer.id, status=status, detail=text[:200])
            return None
        return None

    def _context(self, peer: PeerGateway) -> ssl.SSLContext:
        known = self._tls.get(peer.id)
        if known is None or known[0] != peer.tls_anchors:
            known = self._tls[peer.id] = (peer.tls_anchors, self._tls_for(peer))
        return known[1]

    def _checked_line(self, peer: PeerGateway, head: SignedHead, text: str) -> str:
        line = text if text.endswith("\n") else text + "\n"
        witness = peer.witness
        _, _, found = verify_cosigned(
            append_cosignatures(head.note, [line]), self._ledger.origin, [self._ledger.signing_key], [witness]
        )
        if not found:
            raise SignatureRejected(f"the answer of {peer.id} is not a cosignature by {witness.vkey}")
        return line

    async def _conflict(self, peer: PeerGateway, head: SignedHead, detail: str) -> None:
        """Rule 4: alarm (error log) and record it once per (peer, size)."""
        log.error(
            "ALARM: a peer witness reports a conflicting view of our ledger (fork or rollback)",
            peer=peer.id,
            size=head.size,
            root=head.root.hex(),
            detail=detail,
        )
        if (peer.id, head.size) in self._conflicts:
            return
        self._conflicts.add((peer.id, head.size))
        if self._metrics is not None:  # Rule 7: once per (peer, size), as the ledger event
            self._metrics.witness_conflicts.labels(peer=peer.id).inc()
        fields = {
            "action": CONFLICT_ACTION,
            "witness": peer.witness_key,
            "peer": peer.id,
            "size": head.size,
            "root": base64.b64encode(head.root).decode("ascii"),
            "detail": detail[:200],
        }
        await self._store.record(AuditEvent(EventKind.ADMIN, self._clock.now(), fields))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
