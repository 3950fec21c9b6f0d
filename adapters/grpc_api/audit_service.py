"""``cgw.v1.Audit``: checkpoint, inclusion and consistency proofs, entries (the auditor role only, by Cedar).

Rule 1: every call authenticates and is authorized by ``Pipeline.authorize_audit``, exactly like /v1/audit/*
        (a denial is a ``rejected`` leaf with adapter ``grpc``).
Rule 2: entry ranges are bounded by ``max_ledger_range``; sizes and indexes are checked by the ledger.
"""

from __future__ import annotations

from typing import Any

import grpc

from adapters.grpc_api.edge import GrpcServices, credentials
from gateway.core.errors import BadRequest, LimitExceeded
from gateway.ops.ledger import Ledger
from gateway.wire.cgw.v1 import audit_pb2, audit_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]


class AuditService(audit_pb2_grpc.AuditServicer):
    def __init__(self, services: GrpcServices) -> None:
        self._services = services

    async def _ledger(self, context: Context) -> Ledger:
        pipeline = self._services.pipeline
        await pipeline.authorize_audit(await pipeline.authenticate(credentials(context)), adapter="grpc")
        return self._services.ledger

    async def GetCheckpoint(self, request: audit_pb2.CheckpointRequest, context: Context) -> audit_pb2.Checkpoint:
        ledger = await self._ledger(context)
        # With witnesses: the newest cosigned checkpoint, never a smaller tree
        # (``gateway.ops.ledger.Ledger.published``).
        head = await ledger.published()
        return audit_pb2.Checkpoint(note=head.note, origin=ledger.origin, verifier_key=ledger.verifier_key)

    async def GetInclusionProof(
        self, request: audit_pb2.InclusionProofRequest, context: Context
    ) -> audit_pb2.InclusionProof:
        ledger = await self._ledger(context)
        _non_negative(index=request.index, size=request.size)
        leaf, proof = await ledger.inclusion(request.index, request.size)
        return audit_pb2.InclusionProof(index=request.index, size=request.size, leaf_hash=leaf, proof=proof)

    async def GetConsistencyProof(
        self, request: audit_pb2.ConsistencyProofRequest, context: Context
    ) -> audit_pb2.ConsistencyProof:
        ledger = await self._ledger(context)
        _non_negative(from_size=request.from_size, to_size=request.to_size)
        proof = await ledger.consistency(request.from_size, request.to_size)
        return audit_pb2.ConsistencyProof(from_size=request.from_size, to_size=request.to_size, proof=proof)

    async def GetEntries(self, request: audit_pb2.EntriesRequest, context: Context) -> audit_pb2.Entries:
        ledger = await self._ledger(context)
        limit = self._services.limits.max_ledger_range
        _non_negative(start=request.start, end=request.end)
        if request.end < request.start or request.end - request.start > limit:
            raise LimitExceeded(f"at most {limit} entries per request", field="end")
        entries = await ledger.entries(request.start, request.end)
        return audit_pb2.Entries(entries=[audit_pb2.Entry(index=e.index, data=e.data) for e in entries])


def _non_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise BadRequest(f"{name} must be >= 0", field=name)
