"""Push leases on a shared Redis store (``gateway.delivery.worker``, its per-item push lease): what they cost and
what they prevent.

``--gateways`` gateway processes' worth of gateways (in this process) share one Redis key prefix; cargo manifests
are submitted to the first and pushed by webhook to NL-DOUANE over loopback HTTPS. Reports push throughput (first
submit to empty inbox) and how many pushes the receiver got; ``--no-leases`` turns the leases off after start-up
(the behaviour before them) for comparison. The Redis at ``--redis`` is used with a fresh prefix, deleted after.

    python bench/lease_bench.py --messages 300 --gateways 2
    python bench/lease_bench.py --messages 300 --gateways 2 --no-leases
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.app.main import running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.devpki import create_federation
from gateway.infra.redis_store import RedisStore
from gateway.ops.telemetry import configure_logging
from tests.integration.webhook_receiver import WebhookReceiver, push_federation

PUSHED = "NL-DOUANE"


async def run(messages: int, gateways: int, leases: bool, redis_url: str, delay: float) -> dict[str, Any]:
    prefix = f"cgw-bench-{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        create_federation(base)
        receiver = await WebhookReceiver(base, delay=delay).start()
        fed = push_federation(base, Path(tmp) / "fed", member=PUSHED, url=receiver.url)
        try:
            async with AsyncExitStack() as stack:
                running = []
                for n in range(gateways):
                    overrides: dict[str, Any] = {
                        "gateway.rest_port": 0,
                        "gateway.grpc_port": 0,
                        "gateway.data_dir": str(Path(tmp) / f"data{n}"),
                        "store.backend": "redis",
                        "store.redis_url": redis_url,
                        "store.key_prefix": prefix,
                        "store.allow_no_persistence": True,  # a benchmark Redis
                        "delivery.poll_interval_seconds": 0.05,
                    }
                    settings = load_settings(fed / "gateway.toml", overrides=overrides)
                    gateway = await stack.enter_async_context(running_gateway(settings))
                    if not leases and gateway.delivery is not None:
                        gateway.delivery._leases = False  # the behaviour before push leases
                    running.append(gateway)
                first = running[0]
                creds = MemberCredentials.from_federation(fed, "CARRIER-COSCO")
                async with GatewayClient(first.url, creds) as carrier:
                    started = time.perf_counter()
                    for _ in range(messages):
                        payload = to_bytes(cargo_manifest())
                        await carrier.submit("manifest.cargo.v1", [PUSHED], payload, schema="cgw.v1.CargoManifest")
                    while await first.store.inbox_depths():  # noqa: ASYNC110 - polling the store
                        await asyncio.sleep(0.01)
                    done = time.perf_counter()
                await asyncio.sleep(0.5)  # late duplicates arrive now
        finally:
            await receiver.stop()
            store = await RedisStore.open(redis_url, key_prefix=prefix, allow_no_persistence=True)
            try:
                await store.delete_all()
            finally:
                await store.close()
    subjects = [json.loads(r.body)["subject"] for r in receiver.received]
    return {
        "messages": messages,
        "gateways": gateways,
        "leases": leases,
        "push_per_s": round(messages / (done - started), 1),
        "pushes_received": len(subjects),
        "distinct_messages_pushed": len(set(subjects)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--no-leases", action="store_true")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--delay", type=float, default=0.0, help="receiver delay per push (seconds)")
    args = parser.parse_args()
    configure_logging(level="warning")
    result = asyncio.run(run(args.messages, args.gateways, not args.no_leases, args.redis, args.delay))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
