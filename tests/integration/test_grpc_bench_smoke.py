"""Smoke test of the gRPC load generator (bench/grpc_bench.py) against a real gateway: counts, not timings."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from gateway.app.main import Gateway

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _grpc_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cgw_bench_grpc_bench", BENCH / "grpc_bench.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_generator_sends_the_corpus_over_distinct_connections(
    gateway: Gateway, federation: Path, tmp_path: Path
) -> None:
    bench = _grpc_bench()
    corpus = tmp_path / "corpus.jsonl"
    bench.rest_bench.write_corpus(federation, 24, corpus)
    messages = bench.loadgen.load_corpus(corpus)
    report = await bench.run_grpc_load(
        gateway.grpc_target, federation, messages, connections=3, request_timeout=15.0, deadline_s=60.0
    )
    assert report["accepted"] == 24
    assert report["errors"] == {}
    assert report["connections_opened"] == 3
    assert report["latency_ms"]["p50"] > 0
    assert await gateway.store.ledger_size() >= 24
    again = await bench.run_grpc_load(
        gateway.grpc_target, federation, messages[:2], connections=1, request_timeout=15.0, deadline_s=60.0
    )
    assert again["accepted"] == 2  # replays are answered with the original receipt (OK), not errors
