"""``customs-gateway policy validate | test | explain`` and SIGHUP hot reload, as an operator runs them."""

from __future__ import annotations

import json
import re
import shutil
import signal
import sqlite3
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from gateway.interfaces.config import default_policies_dir
from tests.integration.test_cli import free_port

CLI = [sys.executable, "-m", "gateway.app.cli"]
RED_FORWARD = {
    "tlp": "RED",
    "program": "MEGAPORT",
    "recipient_kinds": ["customs"],
    "recipients": ["NL-DOUANE"],
    "recipient_count": 1,
    "shared_programs": ["MEGAPORT"],
    "lane": "",
    "original_sender": "PORT-NLRTM",
}


def policy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, "policy", *args], capture_output=True, text=True, timeout=60, check=False)


def copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(default_policies_dir(), target)
    return target


def test_validate_test_and_explain(tmp_path: Path) -> None:
    result = policy("validate")
    assert result.returncode == 0 and result.stdout.startswith("valid: "), result.stderr
    result = policy("test")
    assert result.returncode == 0 and re.search(r"(\d+) of \1 policy test cases pass", result.stdout), result.stdout
    result = policy(
        "explain",
        "--principal",
        "US-CBP",
        "--action",
        "forward",
        "--resource",
        "megaport.rpm-alarm.v1",
        "--context",
        json.dumps(RED_FORWARD),
    )
    assert result.returncode == 0, result.stderr
    explained = json.loads(result.stdout)
    assert explained["decision"] == "deny" and explained["policies"] == ["tlp-red-never-forwarded"]

    broken = copy_policies(tmp_path)
    tlp = broken / "tlp.cedar"
    tlp.write_text(tlp.read_text().replace('context.tlp == "RED"', 'context.tlp == "NOT-RED"'))
    result = policy("test", "--policies", str(broken))
    assert result.returncode == 1 and "FAIL RED is never forwarded" in result.stdout
    tlp.write_text("permit (principal, action, resource")
    result = policy("validate", "--policies", str(broken))
    assert result.returncode == 2 and "invalid:" in result.stderr


def _reloads(database: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT data FROM ledger ORDER BY idx").fetchall()
    return [e for e in (json.loads(r[0]) for r in rows) if e["event"] == "policy_reloaded"]


def _wait_for(database: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        reloads = _reloads(database)
        if len(reloads) >= count or time.monotonic() > deadline:
            return reloads
        time.sleep(0.1)


def test_sighup_reloads_a_checked_set_and_refuses_a_broken_one(tmp_path: Path) -> None:
    directory = tmp_path / "federation"
    assert subprocess.run([*CLI, "init", str(directory)], capture_output=True, check=False).returncode == 0
    policies = copy_policies(tmp_path)
    port = free_port()
    config = directory / "gateway.toml"
    text = re.sub(r"rest_port = \d+", f"rest_port = {port}", config.read_text())
    text = re.sub(r"grpc_port = \d+", "grpc_port = 0", text)
    config.write_text(text.replace("[gateway]\n", f'[gateway]\npolicies_dir = "{policies}"\n', 1))
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen([*CLI, "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        context = ssl.create_default_context(cafile=str(directory / "ca/root-ca.crt"))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=context, timeout=2):
                    break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        database = directory / "data" / "gateway.db"
        tlp = policies / "tlp.cedar"
        tlp.write_text(tlp.read_text() + "\n// reviewed by the security team\n")
        process.send_signal(signal.SIGHUP)
        [accepted] = _wait_for(database, 1)
        tlp.write_text(tlp.read_text().replace('context.tlp == "RED"', 'context.tlp == "NOT-RED"'))
        process.send_signal(signal.SIGHUP)
        reloads = _wait_for(database, 2)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert accepted["trigger"] == "sighup" and accepted["accepted"] is True
    assert accepted["old_digest"] != accepted["new_digest"]
    refused = reloads[1]
    assert refused["accepted"] is False and refused["old_digest"] == accepted["new_digest"]
    assert "RED is never forwarded" in refused["detail"]
