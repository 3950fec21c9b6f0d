"""The benchmark itself, tiny and bounded: the runner, the generator and the floor work and report sane numbers.

No timing assertions: this machine's speed is not under test, only that the benchmark measures what it claims
(distinct messages all accepted by the real gateway and durably in its ledger, receipts that verify, keep-alive
connections, a floor that answers the same way, percentiles in order).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.payloads import ValidatedPayload, validate_payload
from gateway.demo.samples import to_bytes

BENCH = Path(__file__).resolve().parents[2] / "bench"
MESSAGES = 200
CONNECTIONS = 4

pytestmark = pytest.mark.integration


def _module(name: str) -> ModuleType:
    """Load a bench script by path (bench/ is a directory of scripts, not an installed package)."""
    spec = importlib.util.spec_from_file_location(f"cgw_bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


loadgen = _module("loadgen")
runner = _module("run")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "report.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            f"--messages={MESSAGES}",
            f"--connections={CONNECTIONS}",
            f"--out={out}",
            "--timeout=120",
            "--rounds=2",
            "--gateway-log-level=warning",
        ],
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-4000:]
    assert "ratio gateway/floor" in completed.stdout
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@pytest.mark.parametrize("server", ["gateway", "floor"])
def test_every_distinct_message_is_accepted_over_keep_alive_connections(report: dict[str, Any], server: str) -> None:
    result = report[server]
    assert result["messages"] == result["sent"] == result["accepted"] == MESSAGES
    assert result["errors"] == {}
    assert result["error_count"] == 0
    assert result["connections"] == CONNECTIONS
    assert result["connections_opened"] == CONNECTIONS  # handshakes once, then keep-alive
    assert result["receipt_verified"] is True
    assert result["msgs_per_s"] > 0
    assert result["elapsed_s"] > 0
    assert result["server_cpu_s"] > 0
    assert result["server_cpu_us_per_msg"] > 0
    assert result["loop"].startswith(("uvloop", "asyncio"))


@pytest.mark.parametrize("server", ["gateway", "floor"])
def test_latency_percentiles_are_ordered(report: dict[str, Any], server: str) -> None:
    latency = report[server]["latency_ms"]
    assert 0 < latency["p50"] <= latency["p90"] <= latency["p99"] <= latency["max"]
    assert latency["p50"] <= latency["mean"] * 10


def test_the_gateway_stored_every_accepted_message_in_its_ledger(report: dict[str, Any]) -> None:
    assert report["gateway"]["ledger_size_after"] >= MESSAGES
    assert report["gateway"]["server_exit_code"] == 0  # SIGTERM: drained and flushed cleanly


def test_report_has_the_ratio_targets_and_the_command(report: dict[str, Any]) -> None:
    cpu_ratio = report["verdict"]["cpu_ratio_gateway_to_floor"]
    assert cpu_ratio == pytest.approx(
        report["floor"]["server_cpu_us_per_msg"] / report["gateway"]["server_cpu_us_per_msg"], rel=1e-2
    )
    assert 0 < report["gateway"]["server_cpu_utilisation"] < os.cpu_count() + 0.5
    ratio = report["verdict"]["ratio_gateway_to_floor"]
    assert ratio == pytest.approx(report["gateway"]["msgs_per_s"] / report["floor"]["msgs_per_s"], rel=1e-2)
    assert report["verdict"]["targets"]["no errors"] is True
    assert len(report["verdict"]["targets"]) == 4
    assert report["command"].startswith("python bench/run.py --messages=200")
    assert report["pinning"]


def _cargo(payload: ValidatedPayload) -> tuple[object, ...]:
    return payload.containers, payload.transport_documents, tuple(p.identifiers for p in payload.parties)


def test_distinct_cargo_gives_every_manifest_its_own_valid_identifiers() -> None:
    """``bench/run.py``'s distinct cargo: each manifest its own container, B/L and parties, valid by every check
    character (the reference validation path agrees); the repeated corpus repeats them."""
    seen = set()
    for i in [*range(300), 999_999, 1_000_000, 123_456_789]:
        data = to_bytes(runner.bench_manifest("distinct", "AB12CD", i))
        validated = validate_payload(runner.MESSAGE_TYPE, "application/json", data, schema=runner.SCHEMA)
        reference = validate_payload(
            runner.MESSAGE_TYPE, "application/json", data, schema=runner.SCHEMA, reference=True
        )
        assert validated == reference
        seen.add(_cargo(validated))
    assert len(seen) == 303
    repeated = {
        _cargo(
            validate_payload(
                runner.MESSAGE_TYPE, "application/json", to_bytes(runner.bench_manifest("repeated", "AB12CD", i))
            )
        )
        for i in range(3)
    }
    assert len(repeated) == 1
    with pytest.raises(ValueError, match="cargo must be one of"):
        runner.bench_manifest("random", "AB12CD", 0)


def test_the_run_used_the_distinct_cargo_corpus(report: dict[str, Any]) -> None:
    assert report["cargo"] == "distinct"


def test_corpus_round_trip_and_bounds(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"jws": "a.b.c", "payload": "e30="}\n\n{"jws": "d.e.f", "payload": ""}\n')
    messages = loadgen.load_corpus(corpus)
    assert [(m.jws, m.payload) for m in messages] == [("a.b.c", b"{}"), ("d.e.f", b"")]
    assert len(loadgen.load_corpus(corpus, 1)) == 1
    corpus.write_text('{"payload": "e30="}\n')
    with pytest.raises(ValueError, match="expected an object"):
        loadgen.load_corpus(corpus)


@given(st.lists(st.floats(min_value=0, max_value=10, allow_nan=False), min_size=1, max_size=200), st.floats(0, 1))
def test_percentile_is_a_member_and_monotone(values: list[float], fraction: float) -> None:
    ordered = sorted(values)
    value = loadgen.percentile(ordered, fraction)
    assert value in ordered
    assert sum(v <= value for v in ordered) >= fraction * len(ordered)
    assert loadgen.percentile(ordered, min(1.0, fraction + 0.1)) >= value
    assert loadgen.percentile(ordered, 1.0) == ordered[-1]


def test_percentile_of_nothing_is_nan() -> None:
    assert math.isnan(loadgen.percentile([], 0.5))


def test_rounds_alternate_on_a_fresh_store_and_the_verdict_is_the_median_rounds(report: dict[str, Any]) -> None:
    rounds = report["rounds"]
    assert len(rounds) == 2
    assert report["ratios_by_rate"] == [r["verdict"]["ratio_gateway_to_floor"] for r in rounds]
    for measured in rounds:  # the second gateway did not find the first one's messages (no duplicates)
        assert measured["gateway"]["accepted"] == measured["gateway"]["ledger_size_after"] == MESSAGES
        assert measured["floor"]["accepted"] == MESSAGES
    assert report["verdict"] == min((r["verdict"] for r in rounds), key=lambda v: v["ratio_gateway_to_floor"])
