"""``customs-gateway aeo import|check`` as an operator runs it: a real dev federation config, a real list file,
the per-row report on stdout and the documented exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gateway.app.cli import main
from gateway.demo.aeosamples import EU_PARTNER_LIST_CSV


@pytest.fixture
def config(federation: Path, tmp_path: Path) -> Path:
    """A copy of the session federation (keys keep their modes), so the AEO store is this test's own."""
    copy = tmp_path / "federation"
    shutil.copytree(federation, copy, ignore=shutil.ignore_patterns("data"))
    return copy / "gateway.toml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["--log-level", "warning", *argv])
    return code, capsys.readouterr().out


def test_import_reports_rows_and_check_answers(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listing = tmp_path / "eu.csv"
    listing.write_text(EU_PARTNER_LIST_CSV)
    code, out = run(capsys, "aeo", "import", str(listing), "--issuer", "EU", "--config", str(config))
    report = json.loads(out)
    assert code == 1  # one row refused
    assert (report["accepted"], report["rejected"]) == (3, 1)
    assert report["errors"][0]["field"] == "row 4.number"

    code, out = run(capsys, "aeo", "check", "EORI:NL123456789", "--config", str(config))
    assert code == 0
    assert json.loads(out)["arrangement"] == "CN-EU"
    code, out = run(capsys, "aeo", "check", "DE111222333", "--config", str(config), "--date", "2026-01-01")
    assert code == 1
    assert json.loads(out)["reasons"] == ["type_not_covered"]
    code, out = run(capsys, "aeo", "check", "DE111222333", "--config", str(config), "--admin", "EU")
    assert (code, json.loads(out)["arrangement"]) == (0, "home")


def test_a_missing_file_is_a_usage_error(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run(capsys, "aeo", "import", "/nonexistent.csv", "--issuer", "EU", "--config", str(config))
    assert code == 2
