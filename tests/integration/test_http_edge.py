"""Hostile HTTP at the REST/SOAP listener, over real TLS sockets to a real gateway (adapters/httpedge.py):
slow heads and slow bodies are cut off within their named limits, HTTP/0.9 is refused, every 405 says what is
allowed, no answer names the server software's version, and TLS 1.2 offers AEAD suites only."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from adapters.rest.openapi import openapi_document
from gateway.app.main import Gateway, running_gateway
from gateway.app.settings import load_settings
from gateway.interfaces.config import Limits

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0
# What a deadline may take beyond its limit on a busy 2-core test host.
SLACK = 2.0


@pytest.fixture
async def gateway(federation: Path, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = load_settings(
        federation / "gateway.toml",
        overrides={
            "gateway.rest_port": 0,
            "gateway.grpc_port": 0,
            "gateway.data_dir": str(tmp_path / "data"),
            "limits.header_timeout_seconds": HEADER_TIMEOUT,
            "limits.body_timeout_seconds": BODY_TIMEOUT,
        },
    )
    async with running_gateway(settings) as running:
        yield running


def _tls(federation: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(federation / "ca/root-ca.crt"))


async def _connect(gateway: Gateway, context: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlsplit(gateway.url)
    assert url.hostname and url.port
    return await asyncio.open_connection(url.hostname, url.port, ssl=context, server_hostname="localhost")


async def _trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 1.0) -> None:
    """The slowloris: one byte per ``every`` seconds, until the server closes (or the bytes run out)."""
    for i in range(len(data)):
        writer.write(data[i : i + 1])
        try:
            await writer.drain()
        except OSError:
            return
        await asyncio.sleep(every)


async def _read_until_closed(reader: asyncio.StreamReader, bound: float) -> bytes:
    """Everything the server sends until it closes; fails if the connection is still open after ``bound``."""
    chunks: list[bytes] = []
    async with asyncio.timeout(bound):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def _raw_exchange(gateway: Gateway, federation: Path, data: bytes) -> bytes:
    reader, writer = await _connect(gateway, _tls(federation))
    writer.write(data)
    await writer.drain()
    try:
        return await _read_until_closed(reader, HEADER_TIMEOUT + SLACK + 1)
    except (ConnectionResetError, ssl.SSLError):
        return b""
    finally:
        writer.close()


async def _slowloris(
    gateway: Gateway, federation: Path, head: bytes, trickled: bytes, bound: float
) -> tuple[bytes, float]:
    """Send ``head`` at once, then ``trickled`` a byte a second: what the server answered and when it closed."""
    reader, writer = await _connect(gateway, _tls(federation))
    writer.write(head)
    await writer.drain()
    started = time.monotonic()
    trickle = asyncio.create_task(_trickle(writer, trickled))
    try:
        answer = await _read_until_closed(reader, bound)
    finally:
        trickle.cancel()
        writer.close()
    return answer, time.monotonic() - started


async def test_slowloris_head_is_disconnected_within_the_header_timeout(gateway: Gateway, federation: Path) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 60
    answer, elapsed = await _slowloris(gateway, federation, b"", head, HEADER_TIMEOUT + SLACK)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert HEADER_TIMEOUT - 0.5 <= elapsed <= HEADER_TIMEOUT + SLACK, elapsed


async def test_an_idle_connection_is_closed_too(gateway: Gateway, federation: Path) -> None:
    reader, writer = await _connect(gateway, _tls(federation))
    try:
        assert await _read_until_closed(reader, HEADER_TIMEOUT + SLACK) == b""
    finally:
        writer.close()


async def test_slow_body_is_answered_408_and_closed_within_the_body_timeout(
    gateway: Gateway, federation: Path, caplog: pytest.LogCaptureFixture
) -> None:
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nCgw-Envelope: x.y.z\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    )
    answer, elapsed = await _slowloris(gateway, federation, head, b"{" + b" " * 999, BODY_TIMEOUT + SLACK)
    assert BODY_TIMEOUT - 0.5 <= elapsed <= BODY_TIMEOUT + SLACK, elapsed
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 408 Request Timeout", answer[:300]
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in headers.lower()
    problem = json.loads(body)
    assert problem["code"] == "REQUEST_TIMEOUT" and problem["status"] == 408 and problem["field"] == "body"
    assert not [r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= logging.ERROR]


async def test_a_body_that_arrives_in_time_is_read(gateway: Gateway, federation: Path) -> None:
    """The body deadline does not touch a body that completes within it (the submit then fails on its JWS)."""
    reader, writer = await _connect(gateway, _tls(federation))
    writer.write(
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nCgw-Envelope: x.y.z\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nContent-Length: 4\r\n\r\n{"
    )
    await writer.drain()
    await _trickle(writer, b"  }", every=0.3)
    answer = await _read_until_closed(reader, 10)
    writer.close()
    assert not answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]


@pytest.mark.parametrize(
    "request_line", [b"GET /healthz\r\n\r\n", b"GET /healthz HTTP/0.9\r\n\r\n", b"GET /healthz\r\n"]
)
async def test_http_0_9_request_lines_are_refused(gateway: Gateway, federation: Path, request_line: bytes) -> None:
    answer = await _raw_exchange(gateway, federation, request_line)
    assert b"HTTP/0.9" not in answer and b'"ok"' not in answer, answer[:200]
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 "), answer[:200]


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "X1", path)


async def test_every_405_carries_allow_and_the_documented_code(gateway: Gateway, federation: Path) -> None:
    paths = {_concrete(p): {m.upper() for m in ops} for p, ops in openapi_document(Limits())["paths"].items()}
    paths["/soap/v1"] = {"GET", "POST"}
    async with aiohttp.ClientSession() as session:
        for path, methods in paths.items():
            for method in {"PUT", "DELETE", "PATCH", "POST"} - methods:
                async with session.request(method, gateway.url + path, ssl=_tls(federation)) as response:
                    assert response.status == 405, (method, path, response.status)
                    allowed = set(response.headers["Allow"].split(", "))
                    assert allowed - {"HEAD"} == methods, (path, allowed)
                    assert response.content_type == "application/problem+json"
                    problem = await response.json(content_type=None)
                    assert problem["code"] == "METHOD_NOT_ALLOWED" and problem["status"] == 405, problem


async def test_no_answer_names_the_server_software_version(gateway: Gateway, federation: Path) -> None:
    servers: list[str | None] = []
    async with aiohttp.ClientSession() as session:
        for method, path in (("GET", "/healthz"), ("GET", "/nowhere"), ("PUT", "/healthz"), ("GET", "/soap/v1?wsdl")):
            async with session.request(method, gateway.url + path, ssl=_tls(federation)) as response:
                servers.append(response.headers.get("Server"))
    # A head aiohttp's parser refuses before any application code runs (a control character in a header name).
    answer = await _raw_exchange(gateway, federation, b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad\x01Name: y\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] 400 ", answer), answer[:200]
    match = re.search(rb"\r\nServer: ([^\r]*)\r\n", answer, re.IGNORECASE)
    servers.append(match.group(1).decode() if match else None)
    for server in servers:
        assert server in (None, "customs-gateway"), servers


def _tls12_client(federation: Path, ciphers: str) -> ssl.SSLContext:
    context = _tls(federation)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(ciphers)
    return context


async def test_tls_1_2_offers_aead_suites_only(gateway: Gateway, federation: Path) -> None:
    cbc = "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA"
    with pytest.raises((ssl.SSLError, ConnectionResetError)):  # the server's handshake_failure alert, or its close
        await _connect(gateway, _tls12_client(federation, cbc))
    for aead in ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"):
        _, writer = await _connect(gateway, _tls12_client(federation, aead))
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.version() == "TLSv1.2" and ssl_object.cipher()[0] == aead
        writer.close()
    tls13 = _tls(federation)
    tls13.minimum_version = ssl.TLSVersion.TLSv1_3
    _, writer = await _connect(gateway, tls13)
    assert writer.get_extra_info("ssl_object").version() == "TLSv1.3"
    writer.close()
