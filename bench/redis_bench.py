"""REST submit throughput with the Redis store, beside SQLite, in one run: 1 SQLite process, 1 Redis process,
2 Redis processes sharing one Redis.

Usage::

    python bench/redis_bench.py --messages 4000 --connections 32 [--fsync always|everysec] [--out report.json]

Rule 1: the same method as ``bench/run.py``: one corpus of N distinct pre-signed manifests (signed before any
        clock starts), ``customs-gateway serve`` processes with a fresh, empty store per scenario, and
        ``bench/loadgen.py`` (C keep-alive mTLS connections, exactly C requests in flight, warm handshakes).
Rule 2: the Redis is our own ``redis-server`` in the work directory with ``appendonly yes`` and the chosen
        ``appendfsync`` (default ``always``: every reply after its fsync, as SQLite's ``synchronous=FULL``), so
        the backends are compared at the same durability. It is stopped at the end.
Rule 3: with 2 processes the corpus is split in two halves and two generators run at once, one per gateway
        process; throughput is all accepted messages over the wall time from the first start to the last end.
Rule 4: nothing is pinned (servers, Redis and generators share the machine); the report names the core count,
        since a 2-process figure on a 2-core machine measures contention, not scale-out.
Rule 5: after each scenario the ledger is counted and the checkpoint of a live process is verified over REST
        (``audit verify``), so a figure is only reported for a ledger that is dense and consistent.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run as rest_bench  # noqa: E402 - bench scripts are siblings, not a package

from gateway.infra.devpki import create_federation  # noqa: E402
from gateway.infra.redis_store import RedisStore  # noqa: E402

MAX_MESSAGES = 100_000
# redis-server must answer PING within this after start.
REDIS_START_TIMEOUT_S = 10.0
SCENARIOS = ("sqlite-1", "redis-1", "redis-2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(work: Path, fsync: str) -> Iterator[str]:
    """Our own durable redis-server (Rule 2); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    directory = work / "redis"
    directory.mkdir()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", fsync, "--maxmemory-policy", "noeviction"]
    with (work / "redis.log").open("wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + REDIS_START_TIMEOUT_S
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start: " + (work / "redis.log").read_text()[-1000:])
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        rest_bench.stop(process)


def configure(template: Path, name: str, store: str) -> tuple[Path, int]:
    port = free_port()
    text = template.read_text(encoding="utf-8")
    text = text.replace("rest_port = 8443", f"rest_port = {port}")
    text = text.replace("grpc_port = 8444", "grpc_port = 0")
    text = text.replace('data_dir = "data"', f'data_dir = "data-{name}"')
    config = template.with_name(f"gateway-{name}.toml")
    config.write_text(text + store, encoding="utf-8")
    return config, port


def split_corpus(corpus: Path, parts: int) -> list[Path]:
    lines = corpus.read_text(encoding="ascii").splitlines(keepends=True)
    paths = []
    for k in range(parts):
        path = corpus.with_name(f"{corpus.stem}-{k}.jsonl")
        path.write_text("".join(lines[k::parts]), encoding="ascii")
        paths.append(path)
    return paths


def scenario(name: str, federation: Path, corpus: Path, connections: int, redis_url: str, work: Path) -> dict[str, Any]:
    backend, processes = name.split("-")
    count = int(processes)
    store = ""
    if backend == "redis":
        store = f'[store]\nbackend = "redis"\nredis_url = "{redis_url}"\nkey_prefix = "bench-{name}"\n'
    gateway_bin = Path(sys.executable).parent / "customs-gateway"
    corpora = split_corpus(corpus, count) if count > 1 else [corpus]
    with ExitStack() as stack:
        urls, pids = [], []
        for k in range(count):
            config, port = configure(federation / "gateway.toml", f"{name}-{k}", store)
            command = [str(gateway_bin), "--log-level=warning", "serve", f"--config={config}"]
            process = stack.enter_context(rest_bench.running_server(command, work / f"{name}-{k}.log"))
            url = f"https://127.0.0.1:{port}"
            rest_bench.wait_healthy(url, federation / "ca" / "root-ca.crt", process, rest_bench.STARTUP_TIMEOUT_S)
            urls.append(url)
            pids.append(process.pid)
        outs = [work / f"{name}-loadgen-{k}.json" for k in range(count)]
        generators = [
            [
                sys.executable,
                str(BENCH_DIR / "loadgen.py"),
                f"--url={urls[k]}",
                f"--federation={federation}",
                f"--corpus={corpora[k]}",
                f"--connections={max(1, connections // count)}",
                f"--out={outs[k]}",
            ]
            for k in range(count)
        ]
        cpu_before = sum(rest_bench.cpu_seconds(pid) for pid in pids)
        began = time.perf_counter()
        running = [subprocess.Popen(g) for g in generators]
        codes = [p.wait(timeout=600) for p in running]
        wall = time.perf_counter() - began
        cpu_used = sum(rest_bench.cpu_seconds(pid) for pid in pids) - cpu_before
        if any(codes):
            raise RuntimeError(f"{name}: a generator failed: {codes}")
        audit = subprocess.run(
            [str(gateway_bin), "audit", "verify", f"--url={urls[-1]}", f"--federation={federation}"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    reports = [json.loads(out.read_text(encoding="utf-8")) for out in outs]
    accepted = sum(r["accepted"] for r in reports)
    return {
        "scenario": name,
        "processes": count,
        "accepted": accepted,
        "errors": sum(r["error_count"] for r in reports),
        "wall_s": round(wall, 3),
        "msgs_per_s": round(accepted / wall, 1),
        "p50_ms": max(r["latency_ms"]["p50"] for r in reports),
        "p99_ms": max(r["latency_ms"]["p99"] for r in reports),
        "gateway_cpu_us_per_msg": round(cpu_used / accepted * 1e6, 1) if accepted else None,
        "ledger_size": asyncio.run(_ledger_size(backend, redis_url, f"bench-{name}", federation / f"data-{name}-0")),
        "audit_verify": audit.stdout.strip() if audit.returncode == 0 else f"FAILED: {audit.stderr.strip()[-300:]}",
    }


async def _ledger_size(backend: str, url: str, prefix: str, data_dir: Path) -> int:
    if backend == "sqlite":
        return await asyncio.to_thread(rest_bench.ledger_size, data_dir)
    store = await RedisStore.open(url, key_prefix=prefix)
    try:
        return await store.ledger_size()
    finally:
        await store.close()


def render(report: dict[str, Any]) -> str:
    lines = [
        f"{report['command']}  ({report['cores']} cores, Redis appendfsync {report['fsync']}, unpinned)",
        f"{'scenario':<10} {'procs':>5} {'accepted':>8} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/msg':>10}",
    ]
    for r in report["results"]:
        lines.append(
            f"{r['scenario']:<10} {r['processes']:>5} {r['accepted']:>8} {r['msgs_per_s']:>8} {r['p50_ms']:>8}"
            f" {r['p99_ms']:>8} {r['gateway_cpu_us_per_msg']!s:>10}  ledger {r['ledger_size']}: {r['audit_verify'][:9]}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--fsync", choices=["always", "everysec"], default="always", help="Redis appendfsync")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "cgw-redis-bench.json")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= MAX_MESSAGES:
        parser.error(f"--messages must be within 1..{MAX_MESSAGES}")
    chosen = [s for s in args.scenarios.split(",") if s]
    if not set(chosen) <= set(SCENARIOS):
        parser.error(f"--scenarios must be within {SCENARIOS}")
    with tempfile.TemporaryDirectory(prefix="cgw-redis-bench-") as tmp:
        work = Path(tmp)
        federation = work / "federation"
        create_federation(federation)
        corpus = work / "corpus.jsonl"
        print(f"signing {args.messages} distinct manifests ...", flush=True)
        rest_bench.write_corpus(federation, args.messages, corpus)
        with redis_server(work, args.fsync) as url:
            results = []
            for name in chosen:
                print(f"{name} ...", flush=True)
                results.append(scenario(name, federation, corpus, args.connections, url, work))
    report = {
        "command": " ".join(["python bench/redis_bench.py", *(sys.argv[1:] if argv is None else argv)]),
        "cores": os.cpu_count(),
        "fsync": args.fsync,
        "messages": args.messages,
        "connections": args.connections,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(render(report))
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
