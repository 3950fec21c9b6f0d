"""The end-to-end benchmark: the real gateway and the floor server, measured in one run on one machine.

Usage::

    python bench/run.py --messages 5000 --connections 32 [--rounds 5] [--out report.json] [--profile DIR]

Steps:

1. a fresh dev federation is written to a temporary directory, and ``gateway.toml`` gets a free ``rest_port``;
2. N distinct cargo manifests from CARRIER-COSCO to CN-GACC are signed into a corpus file (distinct message ids
   and manifest numbers; and by default their own containers and parties, Rule 4) before any clock starts;
3. ``customs-gateway serve --config ...`` starts pinned to core 0 (``taskset -c 0``); once ``/healthz``
   answers, ``bench/loadgen.py`` runs pinned to core 1 and sends the corpus over C keep-alive mTLS connections;
   the gateway is stopped (SIGTERM: it drains and flushes) and its ledger is counted;
4. ``bench/floor.py`` (verification + receipt only) starts on core 0 and the same corpus is sent again;
5. the two results, the ratio gateway/floor and the verdict on the targets are printed and written as JSON.

With ``--rounds N``, steps 3 and 4 run N times, in alternating order (gateway then floor, floor then gateway, ...),
each gateway on an empty store; every round is reported, and the verdict is that of the round with the median
ratio (the machine's slow and fast spells then weigh on both servers alike instead of deciding the ratio).

Rule 1: the generator and the servers are separate processes pinned to different cores, so pinning is real and
        neither steals the other's CPU. When cores 0 and 1 are not both available, the run is unpinned and the
        report says so.
Rule 2: bounded: message and connection counts are capped, every wait has a timeout, and the whole run has a
        hard deadline (``--timeout``) after which the servers are killed.
Rule 3: the server's CPU time during the load phase is read from ``/proc/<pid>/stat`` and reported per
        message, which tells whether a server was CPU-bound (and the generator was not).
Rule 4: the corpus looks like one carrier's filings (``--cargo distinct``, the default): vessel, voyage, ports
        and goods repeat, while every manifest has its own container, transport document, consignor and
        consignee, so the gateway's memories of valid identifiers and of AEO enrichments per party set miss as
        they would on new traffic. ``--cargo repeated`` (the corpus of the figures before 29 Nov 2026, second
        session) varies only the message id and the manifest number, and every such memory always hits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.app import eventloop
from gateway.client.rest import MemberCredentials, sign_message
from gateway.core.identifiers import gb11714_check_char, iso6346_check_digit, uscc_check_char
from gateway.core.model import Tlp
from gateway.core.receipt import read_receipt
from gateway.demo.samples import cargo_manifest, to_bytes
from gateway.infra.devpki import create_federation
from gateway.infra.files import load_certificates
from gateway.infra.sqlite import SqliteStore

BENCH_DIR = Path(__file__).resolve().parent
SENDER = "CARRIER-COSCO"
RECIPIENT = "CN-GACC"
MESSAGE_TYPE = "manifest.cargo.v1"
SCHEMA = "cgw.v1.CargoManifest"
SERVER_CORE = 0
GENERATOR_CORE = 1

# Signing and holding the corpus costs ~0.3 ms and ~3 KiB per message: 200k is minutes and ~600 MiB. Cap it.
MAX_MESSAGES = 200_000
MAX_ROUNDS = 9
CARGO_KINDS = ("repeated", "distinct")  # what else varies from one manifest of the corpus to the next (Rule 4)
MAX_CONNECTIONS = 512  # the gateway's default max_inflight_submits; beyond it the run measures 429s
# A server that does not answer /healthz within this is broken, not slow.
STARTUP_TIMEOUT_S = 30.0
# SIGTERM gives the gateway its drain and final checkpoint; after this it is killed.
STOP_TIMEOUT_S = 20.0
# Targets from the issue.
TARGET_MSGS_PER_S = 1000.0
TARGET_P99_MS = 50.0
TARGET_FLOOR_RATIO = 0.5


@dataclass(frozen=True, slots=True)
class Pinning:
    server: list[str]
    generator: list[str]
    note: str


def pinning(enabled: bool) -> Pinning:
    """``taskset`` prefixes for the server and the generator (Rule 1), or none with the reason."""
    taskset = shutil.which("taskset")
    cores = os.sched_getaffinity(0)
    if not enabled:
        return Pinning([], [], "unpinned (--no-pin)")
    if taskset is None:
        return Pinning([], [], "unpinned: taskset not found")
    if not {SERVER_CORE, GENERATOR_CORE} <= cores:
        return Pinning([], [], f"unpinned: cores {SERVER_CORE} and {GENERATOR_CORE} not both available ({cores})")
    return Pinning(
        [taskset, "-c", str(SERVER_CORE)],
        [taskset, "-c", str(GENERATOR_CORE)],
        f"server on core {SERVER_CORE}, generator on core {GENERATOR_CORE}",
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def set_rest_port(config: Path, port: int) -> None:
    text = config.read_text(encoding="utf-8")
    updated, count = re.subn(r"(?m)^rest_port\s*=\s*\d+", f"rest_port = {port}", text)
    if count != 1:
        raise RuntimeError(f"{config}: expected exactly one rest_port line, found {count}")
    # The gRPC listener is not measured here (bench/grpc_bench.py does): a free port, never the template's 8444.
    updated = re.sub(r"(?m)^grpc_port\s*=\s*\d+", "grpc_port = 0", updated)
    config.write_text(updated, encoding="utf-8")


def bench_manifest(cargo: str, tag: str, i: int) -> dict[str, Any]:
    """The ``i``-th manifest of a corpus (Rule 4). ``repeated``: only the manifest number is its own; ``distinct``:
    so are its container number, transport document number, consignor (USCC) and consignee (EORI), each valid by
    its own check characters."""
    manifest = cargo_manifest(f"BENCH-{tag}-{i:07d}")
    if cargo == "repeated":
        return manifest
    if cargo != "distinct":
        raise ValueError(f"cargo must be one of {CARGO_KINDS}, got {cargo!r}")
    serial = f"{i % 1_000_000:06d}"
    container = f"CSQU{serial}{iso6346_check_digit('CSQU' + serial)}"
    consignment = manifest["consignments"][0]
    consignment["transportDocumentNumber"] = f"COSU{tag}{i:07d}"
    consignment["goodsItems"][0]["containerNumbers"] = [container]
    consignment["containers"][0]["number"] = container
    organisation = f"{i % 100_000_000:08d}"
    uscc = f"91440300{organisation}{gb11714_check_char(organisation)}"
    consignment["consignor"]["identifiers"][0]["value"] = uscc + uscc_check_char(uscc)
    consignment["consignee"]["identifiers"][0]["value"] = f"NL{i % 1_000_000_000:09d}"
    return manifest


def write_corpus(federation: Path, count: int, path: Path, cargo: str = "repeated") -> float:
    """Sign ``count`` distinct manifests into ``path`` (JSON Lines, see loadgen.py); return seconds taken.
    ``cargo`` as in Rule 4; ``repeated`` by default for ``grpc_bench.py`` and ``redis_bench.py``, whose figures in
    bench/README.md were measured on that corpus."""
    credentials = MemberCredentials.from_federation(federation, SENDER)
    tag = secrets.token_hex(3).upper()  # distinct manifest numbers across runs too
    began = time.perf_counter()
    with path.open("w", encoding="ascii") as out:
        for i in range(count):
            payload = to_bytes(bench_manifest(cargo, tag, i))
            jws = sign_message(credentials, MESSAGE_TYPE, [RECIPIENT], payload, schema=SCHEMA, tlp=Tlp.AMBER)
            out.write(json.dumps({"jws": jws, "payload": base64.b64encode(payload).decode("ascii")}) + "\n")
    return time.perf_counter() - began


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc (Linux), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # fields 14 and 15 of stat(5), counted after "pid (comm)"
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_healthy(url: str, ca_file: Path, process: subprocess.Popen[bytes], timeout: float) -> None:
    context = ssl.create_default_context(cafile=str(ca_file))
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it became healthy")
        try:
            with urllib.request.urlopen(url + "/healthz", context=context, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {timeout} s: {last}")


def stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


@contextlib.contextmanager
def running_server(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            stop(process)


@dataclass(frozen=True, slots=True)
class Job:
    federation: Path
    corpus: Path
    work: Path
    connections: int
    pins: Pinning
    loop: str
    deadline: float  # time.monotonic() value of the hard deadline
    profile_native: bool = False  # py-spy --native on every thread instead of --gil


def measure(name: str, server: list[str], port: int, job: Job, profile: Path | None = None) -> dict[str, Any]:
    """Start a server pinned to the server core, run the generator against it, stop it; the generator report
    plus the server's CPU during the load phase."""
    url = f"https://127.0.0.1:{port}"
    out = job.work / f"{name}-loadgen.json"
    with running_server(job.pins.server + server, job.work / f"{name}.log") as process:
        try:
            wait_healthy(url, job.federation / "ca" / "root-ca.crt", process, STARTUP_TIMEOUT_S)
        except RuntimeError as exc:
            tail = (job.work / f"{name}.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"{name}: {exc}; its log ends with:\n{tail}") from None
        generator = [
            *job.pins.generator,
            sys.executable,
            str(BENCH_DIR / "loadgen.py"),
            f"--url={url}",
            f"--federation={job.federation}",
            f"--corpus={job.corpus}",
            f"--connections={job.connections}",
            f"--loop={job.loop}",
            f"--out={out}",
            f"--timeline={job.work / f'{name}-timeline.csv'}",
        ]
        remaining = job.deadline - time.monotonic()
        if remaining < 5:
            raise RuntimeError("hard deadline reached before the load phase")
        generator.append(f"--deadline={max(1.0, remaining - 5):.0f}")
        spy = _start_profiler(process.pid, profile, job.profile_native)
        cpu_before = cpu_seconds(process.pid)
        try:
            subprocess.run(generator, check=True, timeout=remaining)
        finally:
            cpu_used = cpu_seconds(process.pid) - cpu_before
            if spy is not None:
                stop(spy, signal.SIGINT)  # py-spy writes its output on SIGINT
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    report["server_exit_code"] = process.returncode
    report["server_cpu_s"] = round(cpu_used, 3)
    report["server_cpu_us_per_msg"] = round(cpu_used / report["accepted"] * 1e6, 1) if report["accepted"] else None
    # Well below 1.0 while the generator is not saturated: the server waited (fsync, locks) or was starved of
    # its core by other work on the machine.
    report["server_cpu_utilisation"] = round(cpu_used / report["elapsed_s"], 3) if report["elapsed_s"] else None
    return report


PROFILE_SUFFIX = {"flamegraph": "svg", "speedscope": "json", "raw": "txt"}


def _start_profiler(pid: int, profile: Path | None, native: bool = False) -> subprocess.Popen[bytes] | None:
    """py-spy (when asked for) samples the server during the load phase; it needs ptrace permission.

    ``--gil`` keeps only samples of the thread holding the GIL: the CPU the interpreter spends, not threads
    parked in fsync or a queue. ``native`` samples every running thread with its C frames instead (OpenSSL,
    SQLite, the JSON codec), without the GIL filter. py-spy shares the generator's core."""
    if profile is None:
        return None
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    fmt = next(f for f, suffix in PROFILE_SUFFIX.items() if profile.suffix == "." + suffix)
    mode = ["--native"] if native else ["--gil", "--nonblocking"]  # py-spy cannot read C frames without pausing
    taskset = shutil.which("taskset")
    pin = [taskset, "-c", str(GENERATOR_CORE)] if taskset and GENERATOR_CORE in os.sched_getaffinity(0) else []
    command = [*pin, spy, "record", "--pid", str(pid), "--rate", "200", *mode]
    command += ["--format", fmt, "-o", str(profile)]
    spy_process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # let it attach before the load starts
    if spy_process.poll() is not None:
        error = spy_process.stderr.read().decode(errors="replace") if spy_process.stderr else ""
        raise RuntimeError(f"py-spy could not attach (ptrace permission?): {error.strip()[:300]}")
    return spy_process


def receipt_verifies(federation: Path, receipt: str | None) -> bool:
    """The sample receipt verifies with the gateway's signing certificate (both servers sign with it)."""
    if receipt is None:
        return False
    (certificate,) = load_certificates(federation / "gateway" / "signing.crt")
    claims = read_receipt(receipt, certificate.public_key())
    return claims.get("status") == "accepted"


def ledger_size(data_dir: Path) -> int:
    async def count() -> int:
        store = await SqliteStore.open(data_dir / "gateway.db")
        try:
            return await store.ledger_size()
        finally:
            await store.close()

    return asyncio.run(count())


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpu": model,
        "cpus_online": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        # Other work on the machine skews every figure: the load averages before the run started.
        "loadavg_before_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def verdict(gateway: dict[str, Any], floor: dict[str, Any] | None) -> dict[str, Any]:
    ratio = gateway["msgs_per_s"] / floor["msgs_per_s"] if floor and floor["msgs_per_s"] else None
    # The same comparison by CPU per message: what the two rates would be on a dedicated core, so it is far
    # less sensitive to other work on the machine than the wall-clock ratio.
    gateway_cpu, floor_cpu = gateway["server_cpu_us_per_msg"], (floor or {}).get("server_cpu_us_per_msg")
    cpu_ratio = floor_cpu / gateway_cpu if floor_cpu and gateway_cpu else None
    return {
        "ratio_gateway_to_floor": round(ratio, 3) if ratio is not None else None,
        "cpu_ratio_gateway_to_floor": round(cpu_ratio, 3) if cpu_ratio is not None else None,
        "targets": {
            f"gateway >= {TARGET_MSGS_PER_S:.0f} msgs/s": gateway["msgs_per_s"] >= TARGET_MSGS_PER_S,
            f"gateway p99 <= {TARGET_P99_MS:.0f} ms": gateway["latency_ms"]["p99"] <= TARGET_P99_MS,
            f"gateway >= {TARGET_FLOOR_RATIO} x floor": ratio is not None and ratio >= TARGET_FLOOR_RATIO,
            "no errors": gateway["error_count"] == 0 and (floor is None or floor["error_count"] == 0),
        },
    }


def render(report: dict[str, Any]) -> str:
    rows = [
        ("server", "msgs/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "errors", "CPU us/msg", "srv util", "gen CPU s")
    ]
    rounds = report.get("rounds") or [report]
    for number, measured in enumerate(rounds, 1):
        for name in ("gateway", "floor"):
            r = measured.get(name)
            if not r:
                continue
            lat = r["latency_ms"]
            rows.append(
                (
                    name if len(rounds) == 1 else f"{number}: {name}",
                    f"{r['msgs_per_s']:.1f}",
                    f"{lat['p50']:.2f}",
                    f"{lat['p90']:.2f}",
                    f"{lat['p99']:.2f}",
                    f"{lat['max']:.2f}",
                    str(r["error_count"]),
                    str(r["server_cpu_us_per_msg"]),
                    str(r["server_cpu_utilisation"]),
                    f"{r['generator_cpu_s']:.2f}/{r['elapsed_s']:.2f}",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    v = report["verdict"]
    if len(rounds) > 1:
        lines.append(f"ratios by rate, round by round: {report['ratios_by_rate']}; the verdict is the median round's")
    lines.append(
        f"ratio gateway/floor: {v['ratio_gateway_to_floor']} by rate, {v['cpu_ratio_gateway_to_floor']} by CPU per"
        " message (floor CPU / gateway CPU)"
    )
    lines.extend(f"  [{'met' if ok else 'MISSED'}] {name}" for name, ok in v["targets"].items())
    for measured in rounds:
        for name in ("gateway", "floor"):
            if (measured.get(name) or {}).get("errors"):
                lines.append(f"{name} errors: {measured[name]['errors']}")
    return "\n".join(lines)


def _profile_path(args: argparse.Namespace, server: str) -> Path | None:
    if args.profile is None:
        return None
    args.profile.mkdir(parents=True, exist_ok=True)
    return Path(args.profile) / f"{server}.{PROFILE_SUFFIX[args.profile_format]}"


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    deadline = time.monotonic() + args.timeout
    host = machine()
    pins = pinning(not args.no_pin)
    federation = work / "federation"
    config = create_federation(federation)
    corpus = work / "corpus.jsonl"
    print(f"signing {args.messages} distinct manifests ({SENDER} -> {RECIPIENT}, cargo {args.cargo}) ...", flush=True)
    signing_s = write_corpus(federation, args.messages, corpus, args.cargo)
    job = Job(federation, corpus, work, args.connections, pins, args.loop, deadline, args.profile_native)

    gateway_port = free_port()
    set_rest_port(config, gateway_port)
    gateway_bin = Path(sys.executable).parent / "customs-gateway"
    gateway_cmd = [
        str(gateway_bin) if gateway_bin.exists() else "customs-gateway",
        f"--log-level={args.gateway_log_level}",
        "serve",
        f"--config={config}",
        f"--loop={args.server_loop}",
    ]
    print(f"gateway: {' '.join(pins.server + gateway_cmd)}", flush=True)
    floor_port = free_port()
    floor_cmd = [
        sys.executable,
        str(BENCH_DIR / "floor.py"),
        f"--config={config}",
        f"--port={floor_port}",
        f"--loop={args.server_loop}",
    ]
    if not args.skip_floor:
        print(f"floor: {' '.join(pins.server + floor_cmd)}", flush=True)

    def measure_gateway(number: int) -> dict[str, Any]:
        shutil.rmtree(federation / "data", ignore_errors=True)  # every round starts from an empty store
        gateway = measure(f"gateway-{number}", gateway_cmd, gateway_port, job, _profile_path(args, "gateway"))
        gateway["ledger_size_after"] = ledger_size(federation / "data")
        gateway["receipt_verified"] = receipt_verifies(federation, gateway.pop("sample_receipt"))
        return gateway

    def measure_floor(number: int) -> dict[str, Any]:
        floor = measure(f"floor-{number}", floor_cmd, floor_port, job, _profile_path(args, "floor"))
        floor["receipt_verified"] = receipt_verifies(federation, floor.pop("sample_receipt"))
        return floor

    rounds: list[dict[str, Any]] = []
    for number in range(args.rounds):
        # Rounds alternate the order (gateway first, then floor first): the machine's slow and fast spells
        # then fall on both servers alike. Each round's log, timeline and generator report have their own files.
        if args.skip_floor:
            gateway, floor = measure_gateway(number + 1), None
        elif number % 2 == 0:
            gateway = measure_gateway(number + 1)
            floor = measure_floor(number + 1)
        else:
            floor = measure_floor(number + 1)
            gateway = measure_gateway(number + 1)
        rounds.append({"gateway": gateway, "floor": floor, "verdict": verdict(gateway, floor)})
        if args.rounds > 1:
            print(
                f"round {number + 1}/{args.rounds}: ratio {rounds[-1]['verdict']['ratio_gateway_to_floor']}", flush=True
            )
    median = median_round(rounds)
    return {
        "command": args.command,
        "messages": args.messages,
        "cargo": args.cargo,
        "connections": args.connections,
        "pinning": pins.note,
        "gateway_log_level": args.gateway_log_level,
        "server_loop": "asyncio" if eventloop.loop_factory(args.server_loop) is None else "uvloop",
        "data_dir": str(federation / "data"),
        "signing_s": round(signing_s, 2),
        "machine": host,
        # With --rounds N: the round whose gateway/floor ratio is the median (the verdict is that round's),
        # and every round below.
        "gateway": median["gateway"],
        "floor": median["floor"],
        "verdict": median["verdict"],
        "rounds": rounds,
        "ratios_by_rate": [r["verdict"]["ratio_gateway_to_floor"] for r in rounds],
    }


def median_round(rounds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median gateway/floor ratio (the lower middle one of an even count)."""
    ranked = sorted(rounds, key=lambda r: r["verdict"]["ratio_gateway_to_floor"] or 0.0)
    return ranked[(len(ranked) - 1) // 2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--timeout", type=float, default=600.0, help="hard deadline for the whole run, seconds")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "cgw-bench-report.json")
    parser.add_argument("--dir", type=Path, default=None, help="parent of the work directory (its disk is measured)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, corpus, database)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server and generator to cores")
    parser.add_argument("--skip-floor", action="store_true", help="measure the gateway only")
    parser.add_argument(
        "--rounds", type=int, default=1, help="gateway and floor this many times, in alternating order (median)"
    )
    parser.add_argument(
        "--cargo",
        choices=CARGO_KINDS,
        default="distinct",
        help="distinct: each manifest has its own container, B/L, consignor and consignee; repeated: they repeat",
    )
    parser.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto", help="generator loop")
    parser.add_argument(
        "--server-loop", choices=["auto", "uvloop", "asyncio"], default="auto", help="gateway and floor loop (--loop)"
    )
    parser.add_argument(
        "--gateway-log-level", default="info", choices=["debug", "info", "warning", "error"], help="as in production"
    )
    parser.add_argument("--profile", type=Path, help="py-spy both servers under load; files go to this directory")
    parser.add_argument("--profile-format", choices=sorted(PROFILE_SUFFIX), default="flamegraph")
    parser.add_argument(
        "--profile-native", action="store_true", help="py-spy every thread with C frames (default: GIL holder only)"
    )
    args = parser.parse_args(argv)
    args.command = " ".join(["python bench/run.py", *(sys.argv[1:] if argv is None else argv)])
    if not 1 <= args.messages <= MAX_MESSAGES:
        parser.error(f"--messages must be within 1..{MAX_MESSAGES}")
    if not 1 <= args.connections <= MAX_CONNECTIONS:
        parser.error(f"--connections must be within 1..{MAX_CONNECTIONS}")
    if not 1 <= args.rounds <= MAX_ROUNDS:
        parser.error(f"--rounds must be within 1..{MAX_ROUNDS}")

    work = Path(tempfile.mkdtemp(prefix="cgw-bench-", dir=args.dir))
    try:
        report = run(args, work)
    finally:
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(report, indent=2)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(render(report))
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
