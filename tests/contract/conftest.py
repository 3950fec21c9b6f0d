"""Backends and test material for the Store contract suite.

Adding a backend is ONE line in ``BACKENDS``: a name and a function from a per-test temporary directory to
an object whose ``open()`` returns a fresh-or-reopened store over the SAME underlying data (so the durability
test can close and reopen). Each test starts from an empty backend.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gateway.core.audit import AuditEvent, EventKind, rfc3339
from gateway.infra.memory_store import MemoryData, MemoryStore
from gateway.infra.redis_store import RedisStore
from gateway.infra.sqlite import SqliteStore
from gateway.interfaces.protocols import Store, StoredMessage
from tests.redisenv import REDIS_PARAM, REDIS_URL


class Backend(Protocol):
    async def open(self) -> Store: ...


@dataclass
class SqliteBackend:
    path: Path

    async def open(self) -> Store:
        return await SqliteStore.open(self.path)


@dataclass
class MemoryBackend:
    """The testing aid (gateway/infra/memory_store.py): each open is a new store over the same kept data."""

    data: MemoryData = field(default_factory=MemoryData)

    async def open(self) -> Store:
        return MemoryStore(self.data)


@dataclass
class RedisBackend:
    prefix: str = field(default_factory=lambda: f"cgw-test-{uuid.uuid4().hex[:12]}")

    async def open(self) -> Store:
        # the test Redis runs without persistence; production refuses that (tests/integration/test_redis_*)
        return await RedisStore.open(REDIS_URL, key_prefix=self.prefix, allow_no_persistence=True)

    async def clean(self) -> None:
        store = await RedisStore.open(REDIS_URL, key_prefix=self.prefix, allow_no_persistence=True)
        try:
            await store.delete_all()
        finally:
            await store.close()


BACKENDS: dict[str, Callable[[Path], Backend]] = {
    "memory": lambda tmp: MemoryBackend(),
    "sqlite": lambda tmp: SqliteBackend(tmp / "store.db"),
    "redis": lambda tmp: RedisBackend(),
}


@pytest.fixture(params=[REDIS_PARAM if name == "redis" else name for name in sorted(BACKENDS)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    made = BACKENDS[request.param](tmp_path)
    yield made
    if isinstance(made, RedisBackend):
        await made.clean()


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.close()


# -- test material: real ES256 signatures for the evidence and the receipts ---------------------------------

T0 = datetime(2025, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Kit:
    """Builds signed messages, their audit events and signed receipts (the gateway's receipt key)."""

    sender_key: ec.EllipticCurvePrivateKey = field(default_factory=_p256)
    gateway_key: ec.EllipticCurvePrivateKey = field(default_factory=_p256)
    receipts_made: int = 0

    def message(
        self,
        sender: str = "CARRIER-COSCO",
        recipients: tuple[str, ...] = ("CN-GACC",),
        *,
        message_id: str | None = None,
        payload: bytes = b'{"vessel":{"imo":"IMO9321483"}}',
        at: datetime = T0,
    ) -> StoredMessage:
        mid = message_id or str(uuid.uuid4())
        header = {"id": mid, "type": "manifest.cargo.v1", "from": sender, "to": list(recipients)}
        signing_input = _b64(b'{"alg":"ES256","typ":"cgw+jws"}') + "." + _b64(json.dumps(header).encode())
        r, s = decode_dss_signature(self.sender_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        jws = signing_input + "." + _b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        digest = hashlib.sha256(jws.encode() + b"." + payload).hexdigest()
        return StoredMessage(sender, mid, "manifest.cargo.v1", recipients, jws, payload, digest, at)

    @staticmethod
    def accepted(message: StoredMessage) -> AuditEvent:
        return AuditEvent(
            EventKind.ACCEPTED,
            message.received_at,
            {"sender": message.sender, "id": message.message_id, "digest": message.digest},
        )

    @staticmethod
    def event(n: int, kind: EventKind = EventKind.REJECTED) -> AuditEvent:
        return AuditEvent(kind, T0 + timedelta(seconds=n), {"n": n, "code": "SCHEMA_INVALID"})

    def make_receipt(self, leaf_index: int, received_at: datetime) -> bytes:
        self.receipts_made += 1
        return self.gateway_key.sign(self._receipt_input(leaf_index, received_at), ec.ECDSA(hashes.SHA256()))

    def receipt_valid(self, receipt: bytes, leaf_index: int, received_at: datetime) -> bool:
        try:
            self.gateway_key.public_key().verify(
                receipt, self._receipt_input(leaf_index, received_at), ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            return False
        return True

    @staticmethod
    def _receipt_input(leaf_index: int, received_at: datetime) -> bytes:
        return f"cgw-test-receipt\x00{leaf_index}\x00{rfc3339(received_at)}".encode()


@pytest.fixture
def kit() -> Kit:
    return Kit()
