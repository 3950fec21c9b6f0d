"""The floor: the least a server must do per message, measured in the same run as the gateway.

A bare aiohttp TLS server with the gateway's own TLS settings (``gateway.app.main.server_tls``: same certificate,
key and client-CA, client certificate requested) whose ``POST /v1/messages`` handler does exactly two things:

1. verifies the envelope with the gateway's function (``gateway.core.envelope.verify_envelope`` against a
   ``FederationTrust`` from ``gateway.infra.files.load_trust``: chain (cached), CRL, signature, canonical header,
   payload digest, freshness, recipients), and
2. signs a receipt with the gateway's function and key (``gateway.core.receipt.make_receipt``),

and answers ``201`` with a body shaped like the gateway's. No store, no replay check, no payload validation, no
policy, no ledger, no logging. Whatever the gateway spends beyond this is the cost of those steps plus its
plumbing.

Usage: ``python bench/floor.py --config FEDERATION/gateway.toml --port 8444`` (``bench/run.py`` starts it
pinned to the gateway's core).

Rule 1: the floor uses the same functions, key and trust files as the gateway, never a re-implementation.
Rule 2: a refused envelope gets the same RFC 9457 problem body and status as the gateway would send.
Rule 3: the request body is bounded by the gateway's own ``max_body_bytes``.
Rule 4: the process is tuned as ``serve`` tunes the gateway's (``gateway.app.main.settle_heap``: the startup heap
        frozen, the youngest generation collected less often), so neither gains from a setting the other lacks.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from adapters.status import problem_json, status_of
from gateway.app import eventloop
from gateway.app.main import server_tls, settle_heap
from gateway.app.settings import Settings, load_settings
from gateway.core.envelope import verify_envelope
from gateway.core.errors import BadRequest, GatewayError, Unavailable
from gateway.core.pki import FederationTrust
from gateway.core.receipt import make_receipt, receipt_signer
from gateway.core.signing import chain_x5c
from gateway.exchange.state import Identity
from gateway.infra.files import load_certificates, load_private_key, load_trust

ENVELOPE_HEADER = "Cgw-Envelope"


@dataclass
class Floor:
    settings: Settings
    trust: FederationTrust
    identity: Identity
    next_index: int = 0  # stands in for the ledger index a real store would assign
    x5c: tuple[str, ...] = ()  # the receipt signer's chain, encoded once (as the gateway does)

    def __post_init__(self) -> None:
        key = self.identity.private_key
        self.signer = receipt_signer(key, chain_x5c(key, self.identity.chain))


FLOOR = web.AppKey("floor", Floor)


def _evidence_sha256(jws: str, payload: bytes) -> str:
    digest = hashlib.sha256(jws.encode("ascii", "replace"))
    digest.update(b".")
    digest.update(payload)
    return digest.hexdigest()


async def submit(request: web.Request) -> web.Response:
    floor = request.app[FLOOR]
    try:
        unverified_jws = request.headers.get(ENVELOPE_HEADER)
        if not unverified_jws:
            raise BadRequest(f"the {ENVELOPE_HEADER} header is required", field=ENVELOPE_HEADER)
        payload = await request.read()
        now = datetime.now(UTC)
        limits = floor.settings.limits
        verified = verify_envelope(
            unverified_jws,
            payload,
            validator=floor.trust,
            registry=floor.trust.registry,
            now=now,
            caller=None,
            max_skew=limits.clock_skew,
            max_lifetime=limits.max_message_lifetime,
        )
    except GatewayError as exc:
        return web.json_response(
            problem_json(exc, instance=request.path),
            status=status_of(exc).http,
            content_type="application/problem+json",
        )
    header = verified.header
    digest = _evidence_sha256(verified.jws, verified.payload)
    index = floor.next_index
    floor.next_index += 1
    receipt = make_receipt(
        message_id=header.id,
        sender=header.sender,
        recipients=header.to,
        message_type=header.type,
        evidence_sha256=digest,
        leaf_index=index,
        received_at=now,
        gateway=floor.settings.member_id,
        policy_digest="floor",
        signer=floor.signer,
    )
    body = {
        "message_id": header.id,
        "from": header.sender,
        "to": list(header.to),
        "type": header.type,
        "received": now.isoformat().replace("+00:00", "Z"),
        "ledger_index": index,
        "evidence_sha256": digest,
        "receipt": receipt.decode("ascii"),
        "duplicate": False,
    }
    return web.json_response(body, status=201)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "server": "floor"})


def build_floor(settings: Settings) -> web.Application:
    trust = load_trust(settings.trust_anchors, settings.trust_crl, settings.trust_registry)
    key = load_private_key(settings.signing_key)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise Unavailable("the gateway signing key must be ECDSA P-256", field="signing.key")
    identity = Identity(private_key=key, chain=tuple(load_certificates(settings.signing_cert)))
    app = web.Application(
        client_max_size=settings.limits.max_body_bytes,
        handler_args={"max_field_size": settings.limits.max_header_bytes},
    )
    app[FLOOR] = Floor(settings=settings, trust=trust, identity=identity)
    app.router.add_post("/v1/messages", submit)
    app.router.add_get("/healthz", healthz)
    return app


async def serve(settings: Settings, port: int) -> None:
    runner = web.AppRunner(build_floor(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, port, ssl_context=server_tls(settings))
    await site.start()
    settle_heap()  # Rule 4
    print(f"floor listening on https://{settings.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the gateway's TOML config (same TLS and keys)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--loop", choices=eventloop.LOOPS, default="auto", help="as customs-gateway serve --loop")
    args = parser.parse_args(argv)
    with asyncio.Runner(loop_factory=eventloop.loop_factory(args.loop)) as runner:
        runner.run(serve(load_settings(args.config), args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
