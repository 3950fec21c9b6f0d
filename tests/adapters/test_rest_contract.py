"""The REST adapter's published contract: routes == OpenAPI paths, one total status table, README in sync,
and a schemathesis run against a real gateway (no 5xx, every response matches the document)."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import fields
from pathlib import Path

import pytest

from adapters.rest.app import RestServices, build_app
from adapters.rest.openapi import openapi_document
from adapters.status import STATUS, problem_json
from gateway.core.errors import ErrorKind, IdentifierInvalid, SignerMismatch, all_error_classes
from gateway.interfaces.config import Limits

ROOT = Path(__file__).resolve().parents[2]


def test_routes_match_the_openapi_document() -> None:
    services = RestServices(pipeline=None, ledger=None, limits=Limits(), ready=lambda: True)  # type: ignore[arg-type]
    app = build_app(services)
    routes = {
        (r.method.lower(), r.resource.canonical)
        for r in app.router.routes()
        if r.resource is not None and r.method != "HEAD"
    }
    documented = {(m, path) for path, ops in openapi_document(Limits())["paths"].items() for m in ops}
    assert routes == documented


def test_status_table_is_total() -> None:
    assert set(STATUS) == set(ErrorKind)
    for cls in all_error_classes():
        assert cls.kind in STATUS


def test_problem_json_hides_authentication_detail_and_shows_validation_rule() -> None:
    auth = problem_json(SignerMismatch("cert of X used for Y", field="from"))
    assert "X used" not in auth["detail"] and "field" not in auth
    bad = problem_json(IdentifierInvalid("ISO 6346 check digit: expected 3, got 4", field="payload.x"))
    assert bad["field"] == "payload.x" and "expected 3" in bad["detail"] and bad["status"] == 422


def test_readme_lists_every_error_code_and_limit() -> None:
    readme = (ROOT / "README.md").read_text()
    for cls in all_error_classes():
        assert f"`{cls.code}`" in readme, cls.code
    for f in fields(Limits):
        assert f"`{f.name}`" in readme, f.name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.integration
def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    if schemathesis is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    cli = [sys.executable, "-m", "gateway.app.cli"]
    subprocess.run([*cli, "init", str(tmp_path)], check=True, capture_output=True, timeout=60)
    port = _free_port()
    config = tmp_path / "gateway.toml"
    text = re.sub(r"rest_port = \d+", f"rest_port = {port}", config.read_text())
    text = re.sub(r"grpc_port = \d+", "grpc_port = 0", text)
    config.write_text(text + "\n[limits]\nmax_wait_seconds = 1\n")
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen([*cli, "serve", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{port}"
    try:
        context = ssl.create_default_context(cafile=str(tmp_path / "ca/root-ca.crt"))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", context=context, timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.2)
        member = tmp_path / "members" / "AUDIT-GACC"
        result = subprocess.run(
            [
                schemathesis,
                "run",
                url + "/v1/openapi.json",
                "--tls-verify",
                str(tmp_path / "ca/root-ca.crt"),
                "--request-cert",
                str(member / "tls-client.crt"),
                "--request-cert-key",
                str(member / "tls-client.key"),
                "--max-examples",
                "15",
                "--request-timeout",
                "10",
                "--seed",
                "1",
                "--checks",
                "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
    assert "exchange" in (tmp_path / "serve.log").read_text()  # the fuzzer's submissions reached the pipeline
