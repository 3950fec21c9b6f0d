"""``customs-gateway samples DIR``: every file it writes is accepted as is by ``customs-gateway send`` (real
processes: the installed entry point against a ``customs-gateway serve`` of the dev federation)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo.samplefiles import GATEWAY_WRITTEN, SAMPLES
from tests.integration.test_cli import served

CGW = str(Path(sys.executable).with_name("customs-gateway"))

__all__ = ["served"]


def cgw(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CGW, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_samples_cover_every_type_a_member_sends() -> None:
    assert {s.message_type for s in SAMPLES} == set(MESSAGE_TYPES) - set(GATEWAY_WRITTEN)
    assert {s.filename for s in SAMPLES} >= {"manifest.cargo.v1.json", "manifest.cargo.v1.edi"}


def test_every_sample_is_accepted_by_send(served: tuple[Path, str, subprocess.Popen[str]], tmp_path: Path) -> None:
    federation, url, _ = served
    written = cgw("samples", "samples", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    directory = tmp_path / "samples"
    assert sorted(p.name for p in directory.iterdir()) == sorted([s.filename for s in SAMPLES] + ["README.txt"])
    readme = (directory / "README.txt").read_text()
    for sample in SAMPLES:
        # README.txt lists the very command sent here, with the dev defaults (./federation, port 8443)
        assert shlex.join(sample.send_command(Path("samples"))) in readme
        command = sample.send_command(Path("samples"), url=url, federation=federation)
        assert command[:2] == ["customs-gateway", "send"]
        sent = cgw(*command[1:], cwd=tmp_path)
        assert sent.returncode == 0, f"{sample.filename}: {sent.stdout} {sent.stderr}"
        body = json.loads(sent.stdout)
        claims = body["receipt_claims"]
        assert claims["status"] == "accepted", sample.filename
        assert claims["type"] == sample.message_type
        if sample.message_id:
            assert body["message_id"] == sample.message_id
        if sample.suffix == ".edi":
            assert claims["answer"]["status"] == "accepted"  # the CUSCAR translated and answered with a CUSRES
