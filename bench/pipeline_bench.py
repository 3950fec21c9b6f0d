"""The whole submit pipeline in process: CPU per message with the real store, without TLS and HTTP.

Usage: ``taskset -c 0 python bench/pipeline_bench.py [--messages 4000] [--concurrency 32]``

A dev federation is created in a temporary directory, ``--messages`` distinct manifests are signed first, then
a gateway is started in this process (``running_gateway``: SQLite store, ledger, AEO, policies, ports, as
``serve`` has them) and ``--concurrency`` tasks submit the messages through ``Pipeline.submit`` with the
carrier's TLS client certificate as credentials. Reported: messages per second, process CPU per message (all
threads: the event loop, the SQLite writer's COMMITs and the checkpointer), and the group commit's batching.

What it is for: ``bench/breakdown.py`` times each step on its own, in a loop of its own; here the steps run
interleaved as in the gateway, where each costs 1.5 - 2 times as much (bench/README.md, "Where the time
goes"). The difference between this figure and ``run.py``'s gateway CPU per message is TLS and HTTP.

Rule 1: the corpus is signed before the clock starts; one message warms the caches a running gateway has.
Rule 2: the exchange log goes to a temporary file, as ``serve`` writes it to its log (JSON lines).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from gateway.app.main import running_gateway, settle_heap
from gateway.app.settings import load_settings
from gateway.client.rest import MemberCredentials, sign_message
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.exchange.access import Credentials
from gateway.exchange.pipeline import Inbound
from gateway.infra.devpki import create_federation
from gateway.ops.telemetry import configure_logging

SENDER = "CARRIER-COSCO"
RECIPIENT = "CN-GACC"
MESSAGE_TYPE = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
MAX_MESSAGES = 50_000


async def measure(count: int, concurrency: int, work: Path) -> dict[str, object]:
    config = create_federation(work / "federation")
    settings = load_settings(config)
    sender = MemberCredentials.from_federation(work / "federation", SENDER)
    corpus = []
    for i in range(count + 1):
        payload = to_bytes(cargo_manifest(f"PIPELINE-{i:07d}"))
        corpus.append((sign_message(sender, MESSAGE_TYPE, [RECIPIENT], payload, schema=SCHEMA), payload))
    cert_pem = (work / "federation" / "members" / SENDER / "tls-client.crt").read_bytes()
    credentials = Credentials(client_cert=x509.load_pem_x509_certificate(cert_pem).public_bytes(Encoding.DER))
    async with running_gateway(settings) as gateway:
        settle_heap()
        pipeline = gateway.pipeline
        jws, payload = corpus[0]
        await pipeline.submit(Inbound(adapter="rest", credentials=credentials, unverified_jws=jws, payload=payload))
        work_items = iter(corpus[1:])
        commits_before = int(getattr(gateway.store, "commits", 0))  # SQLite: transactions (fsyncs) so far

        async def submitter() -> None:
            for jws, payload in work_items:
                inbound = Inbound(adapter="rest", credentials=credentials, unverified_jws=jws, payload=payload)
                await pipeline.submit(inbound)

        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(submitter() for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        commits = int(getattr(gateway.store, "commits", 0)) - commits_before
    return {
        "messages": count,
        "concurrency": concurrency,
        "msgs_per_s": round(count / elapsed, 1),
        "cpu_us_per_msg": round(cpu / count * 1e6, 1),
        "commits": commits,
        "msgs_per_commit": round(count / max(commits, 1), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if not 1 <= args.messages <= MAX_MESSAGES:
        parser.error(f"--messages must be within 1..{MAX_MESSAGES}")
    with tempfile.TemporaryDirectory(prefix="cgw-pipeline-bench-") as tmp:
        work = Path(tmp)
        with (work / "gateway.log").open("w", encoding="utf-8") as log_file:
            real_stdout, sys.stdout = sys.stdout, log_file
            try:
                configure_logging(level="info", json=True)
                report = asyncio.run(measure(args.messages, args.concurrency, work))
            finally:
                sys.stdout = real_stdout
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
