"""Load generator: replays a corpus of pre-signed messages over keep-alive mTLS and reports what came back.

Usage (normally started by ``bench/run.py``, pinned to its own core with ``taskset``)::

    python bench/loadgen.py --url https://127.0.0.1:8443 --federation DIR --corpus corpus.jsonl \\
        --connections 32 --out result.json

The corpus is JSON Lines, one message a line: ``{"jws": "<compact JWS>", "payload": "<base64 of the body>"}``
(written by ``bench/run.py``); signing happens before the clock starts, so the generator only sends.

Rule 1: C connections, C workers: each worker sends its next message only after the previous answer has been
        read, so exactly C requests are in flight and every connection is reused (keep-alive). The number of
        TLS connections opened is counted and reported; it must equal C.
Rule 2: the connections are opened and the TLS handshakes done before the clock starts (one ``/healthz``
        per connection), so the figures are steady-state request handling, not handshakes.
Rule 3: only ``201 Created`` counts as accepted. Anything else is an error, counted by ``<status> <code>``
        (the RFC 9457 ``code`` of the problem body), or by the exception name when no response came back.
Rule 4: latency is taken per request with ``perf_counter`` from just before the request is written to just
        after the whole response body is read; percentiles are over the accepted requests only.
Rule 5: bounded: a timeout per request and a deadline for the whole run; the workers stop at the deadline and
        the report says how many messages were not sent.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.metadata
import json
import math
import os
import resource
import ssl
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp

ENVELOPE_HEADER = "Cgw-Envelope"
SUBMIT_PATH = "/v1/messages"
HEALTH_PATH = "/healthz"
# A corpus line holds one JWS (~2 KiB with its x5c) and a base64 payload; 4 MiB per line bounds a bad file.
MAX_CORPUS_LINE_BYTES = 4 * 1024 * 1024
# The generator keeps every message in memory; a million small manifests is ~3 GiB: refuse more.
MAX_MESSAGES = 1_000_000
# More connections than this is a different experiment (and the gateway's in-flight limit is 512).
MAX_CONNECTIONS = 1024


@dataclass(frozen=True, slots=True)
class Message:
    jws: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    ca_file: Path
    client_cert: Path
    client_key: Path


@dataclass
class Tally:
    """What the workers observed; filled in while the run goes on."""

    latencies: list[float] = field(default_factory=list)
    # (seconds since the clock started, latency in seconds, HTTP status) per answered request: --timeline
    timeline: list[tuple[float, float, int]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    sample_receipt: str | None = None
    connections_opened: int = 0


def load_corpus(path: Path, limit: int | None = None) -> list[Message]:
    """Read a corpus file (Rule: one ``{"jws", "payload"}`` object a line); ``limit`` keeps the first lines."""
    messages: list[Message] = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if limit is not None and len(messages) >= limit:
                break
            if len(line) > MAX_CORPUS_LINE_BYTES:
                raise ValueError(f"{path}:{number}: line longer than {MAX_CORPUS_LINE_BYTES} bytes")
            if not line.strip():
                continue
            item = json.loads(line)
            if not isinstance(item, dict) or not isinstance(item.get("jws"), str):
                raise ValueError(f"{path}:{number}: expected an object with 'jws' and 'payload'")
            messages.append(Message(jws=item["jws"], payload=base64.b64decode(item["payload"], validate=True)))
            if len(messages) > MAX_MESSAGES:
                raise ValueError(f"{path}: more than {MAX_MESSAGES} messages")
    return messages


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (the smallest value with at least ``fraction`` of the values at or below it)."""
    if not sorted_values:
        return math.nan
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be within [0, 1]")
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(tally: Tally, elapsed: float, *, total: int, connections: int, loop_name: str) -> dict[str, Any]:
    """The generator's report (one JSON object); latencies in milliseconds."""
    ordered = sorted(tally.latencies)
    accepted = len(ordered)
    usage = resource.getrusage(resource.RUSAGE_SELF)

    def ms(value: float) -> float:
        return round(value * 1000, 3)

    return {
        "loop": loop_name,
        "connections": connections,
        "connections_opened": tally.connections_opened,
        "messages": total,
        "sent": tally.sent,
        "not_sent": total - tally.sent,
        "accepted": accepted,
        "errors": dict(sorted(tally.errors.items())),
        "error_count": sum(tally.errors.values()),
        "elapsed_s": round(elapsed, 4),
        "msgs_per_s": round(accepted / elapsed, 1) if elapsed > 0 else 0.0,
        "latency_ms": {
            "p50": ms(percentile(ordered, 0.50)),
            "p90": ms(percentile(ordered, 0.90)),
            "p99": ms(percentile(ordered, 0.99)),
            "max": ms(ordered[-1]) if ordered else math.nan,
            "mean": ms(sum(ordered) / accepted) if accepted else math.nan,
        },
        # CPU the generator itself used: close to elapsed_s means the generator, not the server, was the limit.
        "generator_cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "sample_receipt": tally.sample_receipt,
    }


def client_tls(target: Target) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(target.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(target.client_cert, target.client_key)
    return context


def _problem_code(status: int, body: bytes) -> str:
    try:
        problem = json.loads(body)
    except ValueError:
        return f"{status} HTTP_ERROR"
    code = problem.get("code") if isinstance(problem, dict) else None
    return f"{status} {code if isinstance(code, str) else 'HTTP_ERROR'}"


async def _send_all(
    session: aiohttp.ClientSession,
    url: str,
    work: Iterator[Message],
    tally: Tally,
    deadline: float,
) -> None:
    """One worker: send the next message, read the whole answer, repeat (Rule 1)."""
    for message in work:
        if time.perf_counter() >= deadline:
            return
        tally.sent += 1
        began = time.perf_counter()
        try:
            async with session.post(
                url,
                data=message.payload,
                headers={ENVELOPE_HEADER: message.jws, "Content-Type": "application/json"},
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.errors[f"exception {type(exc).__name__}"] += 1
            continue
        took = time.perf_counter() - began
        tally.timeline.append((began, took, status))
        if status == 201:
            tally.latencies.append(took)
            if tally.sample_receipt is None:
                tally.sample_receipt = json.loads(body).get("receipt")
        else:
            tally.errors[_problem_code(status, body)] += 1


async def run_load(
    target: Target,
    messages: Sequence[Message],
    *,
    connections: int,
    request_timeout: float,
    deadline_s: float,
    loop_name: str,
    timeline: Path | None = None,
) -> dict[str, Any]:
    """Warm C connections, then send every message with C workers; return the summary (Rules 1-5)."""
    if not 1 <= connections <= MAX_CONNECTIONS:
        raise ValueError(f"connections must be within 1..{MAX_CONNECTIONS}")
    tally = Tally()

    async def opened(_session: aiohttp.ClientSession, _ctx: SimpleNamespace, _params: object) -> None:
        tally.connections_opened += 1

    tracing = aiohttp.TraceConfig()
    tracing.on_connection_create_end.append(opened)
    connector = aiohttp.TCPConnector(ssl=client_tls(target), limit=connections, keepalive_timeout=max(60.0, deadline_s))
    async with aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=request_timeout),
        trace_configs=[tracing],
        skip_auto_headers=("User-Agent",),
    ) as session:
        base = target.url.rstrip("/")

        async def warm() -> None:
            async with session.get(base + HEALTH_PATH) as response:
                await response.read()
                response.raise_for_status()

        await asyncio.gather(*(warm() for _ in range(connections)))  # Rule 2: handshakes before the clock
        work = iter(messages)
        started = time.perf_counter()
        deadline = started + deadline_s
        await asyncio.gather(
            *(_send_all(session, base + SUBMIT_PATH, work, tally, deadline) for _ in range(connections))
        )
        elapsed = time.perf_counter() - started
    if timeline is not None:  # where the slow answers fall in time: stalls show up as columns
        rows = (f"{began - started:.6f},{took * 1000:.3f},{status}" for began, took, status in tally.timeline)
        text = "start_s,latency_ms,status\n" + "\n".join(rows) + "\n"
        await asyncio.to_thread(timeline.write_text, text, encoding="utf-8")
    return summarize(tally, elapsed, total=len(messages), connections=connections, loop_name=loop_name)


def _event_loop(choice: str) -> tuple[Any, str]:
    """``(loop_factory, name)``: uvloop when asked for (or ``auto`` and installed), else the asyncio default."""
    if choice in ("auto", "uvloop"):
        try:
            import uvloop  # noqa: PLC0415 - optional dependency, only when present
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            return uvloop.new_event_loop, f"uvloop {importlib.metadata.version('uvloop')}"
    return None, "asyncio"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="base URL of the gateway or floor server")
    parser.add_argument("--federation", type=Path, required=True, help="dev federation directory (for TLS files)")
    parser.add_argument("--member", default="CARRIER-COSCO", help="member whose TLS client certificate is used")
    parser.add_argument("--corpus", type=Path, required=True, help="JSON Lines of pre-signed messages")
    parser.add_argument("--messages", type=int, default=None, help="send only the first N of the corpus")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per request")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds for the whole run")
    parser.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto")
    parser.add_argument("--out", type=Path, help="write the JSON report here (default: stdout)")
    parser.add_argument("--timeline", type=Path, help="write start time, latency and status per request (CSV)")
    args = parser.parse_args(argv)

    member_dir = args.federation / "members" / args.member
    target = Target(
        url=args.url,
        ca_file=args.federation / "ca" / "root-ca.crt",
        client_cert=member_dir / "tls-client.crt",
        client_key=member_dir / "tls-client.key",
    )
    messages = load_corpus(args.corpus, args.messages)
    loop_factory, loop_name = _event_loop(args.loop)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        report = runner.run(
            run_load(
                target,
                messages,
                connections=args.connections,
                request_timeout=args.timeout,
                deadline_s=args.deadline,
                loop_name=loop_name,
                timeline=args.timeline,
            )
        )
    report["pid"] = os.getpid()
    report["cpu_affinity"] = sorted(os.sched_getaffinity(0))
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
