"""bench/relay_bench.py, tiny and bounded: two real gateways, every message relayed exactly once with B's receipt
kept at A and verifying, and sane rates in the one JSON line (no timing assertions: the machine is not under test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "relay_bench.py"
MESSAGES = 40

pytestmark = pytest.mark.integration  # like the other bench smoke test: two real gateway processes


def test_the_relay_bench_relays_every_message_once_and_reports_rates() -> None:
    command = [sys.executable, str(BENCH), f"--messages={MESSAGES}", "--connections=4", "--timeout=120"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    [line] = completed.stdout.splitlines()  # one JSON line on stdout, nothing else
    result = json.loads(line)
    assert result["answers"] == {"201": MESSAGES}
    assert (result["relays_delivered"], result["relays_dead"]) == (MESSAGES, 0)
    assert result["a_relay_delivered_events"] == result["b_accepted_events"] == MESSAGES
    assert result["exactly_once"] is True
    assert result["receipts_verified"] == 20
    assert result["relay_s"] >= result["accept_s"] > 0  # the last relay follows the last accept
    assert result["accept_per_s"] > 0 and result["relay_per_s"] > 0
