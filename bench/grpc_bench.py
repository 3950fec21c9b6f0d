"""gRPC submit benchmark, measured the same way as REST (``bench/run.py`` + ``bench/loadgen.py``), side by side.

Usage::

    python bench/grpc_bench.py --messages 5000 --connections 32          # REST and gRPC, one report
    python bench/grpc_bench.py generate --target 127.0.0.1:8444 --federation DIR --corpus corpus.jsonl \\
        --connections 32 --out result.json                              # the gRPC generator on its own

Rule 1: the same method as the REST benchmark: one corpus of N distinct pre-signed manifests (``run.write_corpus``,
        signed before any clock starts), the gateway (``customs-gateway serve``) pinned to core 0 and the
        generator to core 1, C workers each sending its next message only after the previous answer arrived
        (exactly C requests in flight), latency per request with ``perf_counter``, percentiles by nearest rank
        over the accepted requests (``loadgen.summarize``), and the server's CPU during the load phase.
Rule 2: C gRPC channels, one worker per channel, each channel its own HTTP/2 connection (a local subchannel
        pool, so channels do not share one); the handshakes are done before the clock starts (one health check
        per channel), as the REST generator warms its C keep-alive connections with ``/healthz``.
Rule 3: REST and gRPC each get a fresh gateway with an empty store (same federation, same corpus), so both
        measure N first-time acceptances; only an OK answer counts as accepted, anything else is counted by
        ``<grpc status> <stable code>``.
Rule 4: bounded: per-request deadline, a deadline for each phase, and a hard deadline for the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import loadgen  # noqa: E402 - bench scripts are siblings, not a package
import run as rest_bench  # noqa: E402

from gateway.client.grpc_client import client_error  # noqa: E402
from gateway.infra.devpki import create_federation  # noqa: E402
from gateway.wire.cgw.v1 import exchange_pb2, exchange_pb2_grpc  # noqa: E402


def _configure(template: Path, name: str, rest_port: int, grpc_port: int) -> Path:
    """A copy of the federation's gateway.toml with its own ports and data directory."""
    text = template.read_text(encoding="utf-8")
    for key, value in (("rest_port", str(rest_port)), ("grpc_port", str(grpc_port)), ("data_dir", f'"data-{name}"')):
        text, count = re.subn(rf"(?m)^{key}\s*=\s*\S+", f"{key} = {value}", text)
        if count != 1:
            raise RuntimeError(f"{template}: expected exactly one {key} line, found {count}")
    config = template.with_name(f"gateway-{name}.toml")
    config.write_text(text, encoding="utf-8")
    return config


# -- the gRPC generator ------------------------------------------------------------------------------------


def _channel(target: str, federation: Path, member: str) -> grpc.aio.Channel:
    base = federation / "members" / member
    credentials = grpc.ssl_channel_credentials(
        (federation / "ca" / "root-ca.crt").read_bytes(),
        (base / "tls-client.key").read_bytes(),
        (base / "tls-client.crt").read_bytes(),
    )
    return grpc.aio.secure_channel(target, credentials, options=[("grpc.use_local_subchannel_pool", 1)])


async def _send_all(
    stub: exchange_pb2_grpc.ExchangeStub,
    work: Iterator[loadgen.Message],
    tally: loadgen.Tally,
    deadline: float,
    request_timeout: float,
) -> None:
    """One worker on one channel: send the next message, await the whole answer, repeat (Rule 1)."""
    for message in work:
        if time.perf_counter() >= deadline:
            return
        tally.sent += 1
        began = time.perf_counter()
        try:
            response = await stub.Submit(
                exchange_pb2.SubmitRequest(envelope=message.jws, payload=message.payload), timeout=request_timeout
            )
        except grpc.aio.AioRpcError as exc:
            error = client_error(exc)
            tally.errors[f"{exc.code().name} {error.code}"] += 1
            continue
        tally.latencies.append(time.perf_counter() - began)
        if tally.sample_receipt is None:
            tally.sample_receipt = response.message.receipt


async def run_grpc_load(
    target: str,
    federation: Path,
    messages: Sequence[loadgen.Message],
    *,
    connections: int,
    request_timeout: float,
    deadline_s: float,
    member: str = rest_bench.SENDER,
) -> dict[str, Any]:
    tally = loadgen.Tally()
    channels = [_channel(target, federation, member) for _ in range(connections)]
    try:
        for channel in channels:  # Rule 2: one connection per channel, handshake before the clock
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=request_timeout)
            tally.connections_opened += 1
        work = iter(messages)
        started = time.perf_counter()
        deadline = started + deadline_s
        await asyncio.gather(
            *(_send_all(exchange_pb2_grpc.ExchangeStub(c), work, tally, deadline, request_timeout) for c in channels)
        )
        elapsed = time.perf_counter() - started
    finally:
        for channel in channels:
            await channel.close()
    return loadgen.summarize(tally, elapsed, total=len(messages), connections=connections, loop_name="asyncio")


def generate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="grpc_bench.py generate", description="the gRPC submit load generator")
    parser.add_argument("--target", required=True, help="host:port of the gateway's gRPC listener")
    parser.add_argument("--federation", type=Path, required=True)
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds per request")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds for the whole run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if not 1 <= args.connections <= rest_bench.MAX_CONNECTIONS:
        parser.error(f"--connections must be within 1..{rest_bench.MAX_CONNECTIONS}")
    messages = loadgen.load_corpus(args.corpus)
    report = asyncio.run(
        run_grpc_load(
            args.target,
            args.federation,
            messages,
            connections=args.connections,
            request_timeout=args.timeout,
            deadline_s=args.deadline,
        )
    )
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


# -- the side-by-side run ----------------------------------------------------------------------------------


def measure_grpc(config: Path, rest_port: int, grpc_port: int, job: rest_bench.Job, serve: list[str]) -> dict[str, Any]:
    """As ``run.measure``, with the gRPC generator (the server is the same ``serve`` command)."""
    out = job.work / "gateway-grpc-loadgen.json"
    url = f"https://127.0.0.1:{rest_port}"
    with rest_bench.running_server(job.pins.server + serve, job.work / "gateway-grpc.log") as process:
        rest_bench.wait_healthy(url, job.federation / "ca" / "root-ca.crt", process, rest_bench.STARTUP_TIMEOUT_S)
        remaining = job.deadline - time.monotonic()
        if remaining < 5:
            raise RuntimeError("hard deadline reached before the load phase")
        generator = [
            *job.pins.generator,
            sys.executable,
            str(Path(__file__).resolve()),
            "generate",
            f"--target=127.0.0.1:{grpc_port}",
            f"--federation={job.federation}",
            f"--corpus={job.corpus}",
            f"--connections={job.connections}",
            f"--deadline={max(1.0, remaining - 5):.0f}",
            f"--out={out}",
        ]
        cpu_before = rest_bench.cpu_seconds(process.pid)
        try:
            subprocess.run(generator, check=True, timeout=remaining)
        finally:
            cpu_used = rest_bench.cpu_seconds(process.pid) - cpu_before
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    report["server_cpu_s"] = round(cpu_used, 3)
    report["server_cpu_us_per_msg"] = round(cpu_used / report["accepted"] * 1e6, 1) if report["accepted"] else None
    report["server_cpu_utilisation"] = round(cpu_used / report["elapsed_s"], 3) if report["elapsed_s"] else None
    return report


def _serve(config: Path, log_level: str) -> list[str]:
    binary = Path(sys.executable).parent / "customs-gateway"
    return [
        str(binary) if binary.exists() else "customs-gateway",
        f"--log-level={log_level}",
        "serve",
        f"--config={config}",
    ]


def side_by_side(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    deadline = time.monotonic() + args.timeout
    pins = rest_bench.pinning(not args.no_pin)
    federation = work / "federation"
    template = create_federation(federation)
    corpus = work / "corpus.jsonl"
    print(f"signing {args.messages} distinct manifests ...", flush=True)
    rest_bench.write_corpus(federation, args.messages, corpus)
    job = rest_bench.Job(federation, corpus, work, args.connections, pins, "asyncio", deadline)
    results: dict[str, Any] = {}
    ports = [rest_bench.free_port() for _ in range(4)]
    rest_config = _configure(template, "rest", ports[0], ports[1])
    print("REST phase ...", flush=True)
    results["rest"] = rest_bench.measure("gateway-rest", _serve(rest_config, args.gateway_log_level), ports[0], job)
    grpc_config = _configure(template, "grpc", ports[2], ports[3])
    print("gRPC phase ...", flush=True)
    results["grpc"] = measure_grpc(grpc_config, ports[2], ports[3], job, _serve(grpc_config, args.gateway_log_level))
    for report in results.values():
        report.pop("sample_receipt", None)
    return {
        "command": args.command,
        "messages": args.messages,
        "connections": args.connections,
        "pinning": pins.note,
        "machine": rest_bench.machine(),
        **results,
    }


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['command']}  ({report['pinning']})",
        "transport  msgs/s   p50 ms   p90 ms   p99 ms   max ms   server CPU us/msg   CPU util   errors",
    ]
    for name in ("rest", "grpc"):
        r = report[name]
        lat = r["latency_ms"]
        lines.append(
            f"{name:<9} {r['msgs_per_s']:>7} {lat['p50']:>8} {lat['p90']:>8} {lat['p99']:>8} {lat['max']:>8}"
            f" {r['server_cpu_us_per_msg']!s:>19} {r['server_cpu_utilisation']!s:>10}   {r['errors'] or 0}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["generate"]:
        return generate(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=600.0, help="hard deadline for the whole run, seconds")
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--gateway-log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "cgw-grpc-bench-report.json")
    args = parser.parse_args(argv)
    args.command = " ".join(["python bench/grpc_bench.py", *argv])
    if not 1 <= args.messages <= rest_bench.MAX_MESSAGES:
        parser.error(f"--messages must be within 1..{rest_bench.MAX_MESSAGES}")
    if not 1 <= args.connections <= rest_bench.MAX_CONNECTIONS:
        parser.error(f"--connections must be within 1..{rest_bench.MAX_CONNECTIONS}")
    with tempfile.TemporaryDirectory(prefix="cgw-grpc-bench-") as tmp:
        report = side_by_side(args, Path(tmp))
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render(report))
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
