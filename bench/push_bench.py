"""Push delivery throughput and latency, in one process over real HTTPS: the gateway (SQLite store) pushes
release notices to a webhook receiver on loopback.

Measures, for ``--messages`` notices submitted over ``--connections`` mTLS connections:
- submit throughput (receipts per second) while the push worker runs;
- push throughput (deliveries recorded per second, first accept to last ``delivered`` leaf);
- accept-to-push latency per message (receiver arrival time minus the submit's return), p50 / p95 / max.

    python bench/push_bench.py --messages 500 --connections 8 --concurrency 4 --poll 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.app.main import running_gateway
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, MemberCredentials
from gateway.demo.samples import release_notice, to_bytes
from gateway.infra.devpki import create_federation
from gateway.ops.telemetry import configure_logging
from tests.integration.webhook_receiver import WebhookReceiver, push_federation

PORT = "PORT-NLRTM"


async def run(messages: int, connections: int, concurrency: int, poll: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        create_federation(base)
        receiver = await WebhookReceiver(base).start()
        fed = push_federation(base, Path(tmp) / "fed", member=PORT, url=receiver.url)
        overrides = {
            "gateway.rest_port": 0,
            "gateway.grpc_port": 0,
            "gateway.data_dir": str(Path(tmp) / "data"),
            "delivery.concurrency_per_recipient": concurrency,
            "delivery.poll_interval_seconds": poll,
        }
        settings = load_settings(fed / "gateway.toml", overrides=overrides)
        accepted: dict[str, float] = {}
        try:
            async with running_gateway(settings) as gateway:
                creds = MemberCredentials.from_federation(fed, "CN-GACC")
                clients = [GatewayClient(gateway.url, creds) for _ in range(connections)]
                queue: asyncio.Queue[int] = asyncio.Queue()
                for i in range(messages):
                    queue.put_nowait(i)

                async def submitter(client: GatewayClient) -> None:
                    while not queue.empty():
                        queue.get_nowait()
                        payload = to_bytes(release_notice())
                        sent = await client.submit("release.notice.v1", [PORT], payload, schema="cgw.v1.ReleaseNotice")
                        accepted[sent.body["message_id"]] = time.perf_counter()

                started = time.perf_counter()
                await asyncio.gather(*(submitter(c) for c in clients))
                submitted = time.perf_counter()
                while await gateway.store.inbox_depths():  # noqa: ASYNC110 - polling the store
                    await asyncio.sleep(0.01)
                done = time.perf_counter()
                for c in clients:
                    await c.close()
        finally:
            await receiver.stop()
    arrivals = {json.loads(r.body)["subject"]: r.at for r in receiver.received}
    latencies = sorted((arrivals[m] - accepted[m]) * 1000 for m in accepted if m in arrivals)
    return {
        "messages": messages,
        "submit_per_s": round(messages / (submitted - started), 1),
        "push_per_s": round(messages / (done - started), 1),
        "latency_ms_p50": round(statistics.median(latencies), 1),
        "latency_ms_p95": round(latencies[int(len(latencies) * 0.95) - 1], 1),
        "latency_ms_max": round(latencies[-1], 1),
        "pushes_received": len(receiver.received),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4, help="[delivery] concurrency_per_recipient")
    parser.add_argument("--poll", type=float, default=0.5, help="[delivery] poll_interval_seconds")
    args = parser.parse_args()
    configure_logging(level="warning")
    print(json.dumps(asyncio.run(run(args.messages, args.connections, args.concurrency, args.poll)), indent=2))


if __name__ == "__main__":
    main()
