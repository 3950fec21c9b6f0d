"""Relay throughput between two gateways on this machine (issue 19).

``init --peers 2`` writes CN-GACC (A) and NL-DOUANE (B) into a temporary directory; both run as real
``customs-gateway serve`` processes on loopback (SQLite stores, ``info`` logging to files, as in production).
CARRIER-COSCO, a member of A, submits ``--messages`` distinct cargo manifests addressed to NL-DOUANE at A, over
``--connections`` keep-alive mTLS connections with exactly that many requests in flight (all envelopes are signed
before any clock starts). A accepts each (its signed receipt back to the carrier), and its delivery worker relays
each to B over mTLS (``[delivery] concurrency_per_recipient`` relays in flight to B: ``--relay-concurrency``,
default the gateway's own default); B verifies, ledgers and answers with its signed receipt, which A verifies
and keeps.

Measured, from the first submit:
- ``accept_per_s``: messages / time until A's last 201 was read;
- ``relay_per_s``: messages / time until B's receipt for every message is stored at A (a delivered relay row with
  a receipt in A's SQLite file, read-only, polled every 20 ms);
then, both gateways stopped: A's ledger has one ``relay_delivered`` per message, B's ledger one ``accepted``
(``relayed_by`` A) per message, and a sample of A's stored receipts verifies against B's signing anchor.

    python bench/relay_bench.py                      # 2,000 messages, 16 connections
    python bench/relay_bench.py --messages 500 --relay-concurrency 16

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.app.federationtool import init_peers
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials, sign_message
from gateway.core.peerreceipt import verify_peer_receipt
from gateway.demo.federation import free_base_port
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.federationfiles import load_operator_key, read_directory
from gateway.infra.sqlite import SqliteStore
from gateway.interfaces.config import Delivery

CLI = [sys.executable, "-m", "gateway.app.cli"]
A, B = "CN-GACC", "NL-DOUANE"
CARRIER = "CARRIER-COSCO"
POLL_SECONDS = 0.02
START_TIMEOUT = 30.0
SAMPLE_RECEIPTS = 20
LEDGER_PAGE = 1000  # the store's largest range read
DELIVERED = """
SELECT count(*) FROM relays JOIN deliveries USING (cursor)
WHERE relays.peer = ? AND deliveries.outcome = 'delivered' AND length(deliveries.receipt) > 0
"""
DEAD = "SELECT count(*) FROM relays JOIN deliveries USING (cursor) WHERE deliveries.outcome = 'dead'"


@dataclass
class Gateway:
    fed: Path
    url: str
    process: asyncio.subprocess.Process | None = None

    @property
    def database(self) -> Path:
        return load_settings(self.fed / "gateway.toml").data_dir / "gateway.db"


async def start(gateway: Gateway) -> None:
    with (gateway.fed / "serve.log").open("w") as log:
        gateway.process = await asyncio.create_subprocess_exec(
            *CLI, "serve", "--config", str(gateway.fed / "gateway.toml"), stdout=log, stderr=asyncio.subprocess.STDOUT
        )
    tls = ssl.create_default_context(cafile=str(gateway.fed / "ca" / "root-ca.crt"))
    async with asyncio.timeout(START_TIMEOUT), aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(gateway.url + "/readyz", ssl=tls) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if gateway.process.returncode is not None:
                raise RuntimeError(f"{gateway.fed.name} exited: {(gateway.fed / 'serve.log').read_text()[-2000:]}")
            await asyncio.sleep(0.05)


async def stop(gateway: Gateway) -> None:
    process = gateway.process
    if process is not None and process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(60):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


def relayed(database: Path) -> tuple[int, int]:
    """(relays delivered with B's receipt stored, relays dead) in A's store, read-only."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as conn:
        delivered = conn.execute(DELIVERED, (B,)).fetchone()[0]
        dead = conn.execute(DEAD).fetchone()[0]
    return int(delivered), int(dead)


async def _ledger(database: Path) -> list[dict[str, Any]]:
    store = await SqliteStore.open(database)
    try:
        size = await store.ledger_size()
        entries = []
        for start in range(0, size, LEDGER_PAGE):
            entries += await store.ledger_entries(start, min(size, start + LEDGER_PAGE))
        return [json.loads(e.data) for e in entries]
    finally:
        await store.close()


async def _receipts(database: Path) -> list[tuple[str, str, bytes, str]]:
    """A sample of (sender, id, B's receipt, evidence digest) kept at A."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT inbox.sender, inbox.message_id, deliveries.receipt, messages.digest FROM relays"
            " JOIN deliveries USING (cursor) JOIN inbox USING (cursor)"
            " JOIN messages ON messages.sender = inbox.sender AND messages.message_id = inbox.message_id"
            " ORDER BY random() LIMIT ?",
            (SAMPLE_RECEIPTS,),
        ).fetchall()
    return [(str(s), str(i), bytes(r), str(d)) for s, i, r, d in rows]


async def run(messages: int, connections: int, relay_concurrency: int, keep: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cgw-relay-bench-") as tmp:
        out = keep if keep is not None else Path(tmp) / "peers"
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries the one JSON line
            cn, nl = init_peers(out, base_port=free_base_port())
        for config in (cn, nl):  # the delivery defaults but the relay concurrency towards one peer
            text = config.read_text().replace(
                "\n[federation]", f"\n[delivery]\nconcurrency_per_recipient = {relay_concurrency}\n\n[federation]", 1
            )
            config.write_text(text)
        a = Gateway(cn.parent, f"https://127.0.0.1:{load_settings(cn).rest_port}")
        b = Gateway(nl.parent, f"https://127.0.0.1:{load_settings(nl).rest_port}")
        credentials = MemberCredentials.from_federation(a.fed, CARRIER)
        corpus = []
        for n in range(messages):
            payload = to_bytes(cargo_manifest(f"COSU-MAN-{n:06d}"))
            corpus.append(
                (sign_message(credentials, "manifest.cargo.v1", [B], payload, schema="cgw.v1.CargoManifest"), payload)
            )
        try:
            await asyncio.gather(start(a), start(b))
            result = await _measure(a, corpus, connections)
        finally:
            await asyncio.gather(stop(a), stop(b))
        result |= await _check(out, a, b, messages)
    return {"messages": messages, "connections": connections, "relay_concurrency": relay_concurrency} | result


async def _measure(a: Gateway, corpus: list[tuple[str, bytes]], connections: int) -> dict[str, Any]:
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in corpus:
        queue.put_nowait(item)
    statuses: dict[int, int] = {}
    async with GatewayClient(
        a.url, MemberCredentials.from_federation(a.fed, CARRIER), connections=connections
    ) as carrier:
        await asyncio.gather(*(carrier.checkpoint() for _ in range(connections)), return_exceptions=True)  # warm TLS

        async def worker() -> None:
            while not queue.empty():
                jws, payload = queue.get_nowait()
                sent = await carrier.submit_signed(jws, payload)  # the client verifies A's receipt
                statuses[sent.status] = statuses.get(sent.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        accepted_at = time.perf_counter()
    delivered, dead = relayed(a.database)
    while delivered + dead < len(corpus):
        await asyncio.sleep(POLL_SECONDS)
        delivered, dead = relayed(a.database)
    relayed_at = time.perf_counter()
    return {
        "accept_per_s": round(len(corpus) / (accepted_at - started), 1),
        "relay_per_s": round(len(corpus) / (relayed_at - started), 1),
        "accept_s": round(accepted_at - started, 2),
        "relay_s": round(relayed_at - started, 2),
        "answers": {str(k): v for k, v in sorted(statuses.items())},
        "relays_delivered": delivered,
        "relays_dead": dead,
    }


async def _check(out: Path, a: Gateway, b: Gateway, messages: int) -> dict[str, Any]:
    """After the stop: one relay_delivered at A and one accepted (relayed_by A) at B per message; receipts verify."""
    a_events, b_events = await _ledger(a.database), await _ledger(b.database)
    directory = read_directory(
        out / "ops" / "directory.jws", load_operator_key(out / "ops" / "operator.pub"), datetime.now(UTC)
    )
    verified = 0
    for sender, message_id, receipt, digest in await _receipts(a.database):
        verify_peer_receipt(
            receipt.decode("ascii"),
            peer=B,
            signing_anchors=directory.gateways[B].signing_anchors,
            sender=sender,
            message_id=message_id,
            evidence_sha256=digest,
            at=datetime.now(UTC),
        )
        verified += 1
    relay_events = [e["message_id"] for e in a_events if e["event"] == "relay_delivered"]
    accepted_at_b = [e["message_id"] for e in b_events if e["event"] == "accepted" and e.get("relayed_by") == A]
    return {
        "a_relay_delivered_events": len(relay_events),
        "b_accepted_events": len(accepted_at_b),
        "exactly_once": len(set(relay_events)) == len(relay_events) == messages == len(set(accepted_at_b))
        and len(accepted_at_b) == messages,
        "receipts_verified": verified,
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="manifests CARRIER-COSCO submits at A")
    parser.add_argument("--connections", type=int, default=16, help="mTLS connections = submits in flight at A")
    parser.add_argument(
        "--relay-concurrency",
        type=int,
        default=Delivery().concurrency_per_recipient,
        help="[delivery] concurrency_per_recipient: relays in flight from A to B (default: the gateway's default)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="hard deadline for the whole run (seconds)")
    parser.add_argument("--keep", type=Path, help="write the two administrations (and logs, stores) here and keep them")
    args = parser.parse_args()
    if args.messages < 1 or args.connections < 1 or args.relay_concurrency < 1:
        parser.error("--messages, --connections and --relay-concurrency must be positive")

    async def bounded() -> dict[str, Any]:
        async with asyncio.timeout(args.timeout):
            return await run(args.messages, args.connections, args.relay_concurrency, args.keep)

    print(json.dumps(asyncio.run(bounded())))


if __name__ == "__main__":
    main()
