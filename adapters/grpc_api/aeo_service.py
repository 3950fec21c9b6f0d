"""``cgw.v1.AeoRecognition``: the AEO mutual-recognition check over gRPC (the twin of GET /v1/aeo/recognition).

Rule 1: a translator only: authentication by the pipeline, the answer and its authorization by
        ``gateway.features.aeo.recognition.Recognition.lookup`` (customs members and auditors), errors through the
        server's
        interceptor and ``adapters.status``.
Rule 2: the result's nulls become empty strings (proto3 has no null for a string).
"""

from __future__ import annotations

from typing import Any

import grpc

from adapters.grpc_api.edge import GrpcServices, credentials
from gateway.core.errors import BadRequest, Unavailable
from gateway.wire.cgw.v1 import recognition_pb2, recognition_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
# The same bound as the REST query parameters (OpenAPI maxLength): identifiers are short.
MAX_FIELD_CHARS = 100


class AeoRecognitionService(recognition_pb2_grpc.AeoRecognitionServicer):
    def __init__(self, services: GrpcServices) -> None:
        self._services = services

    async def Check(self, request: recognition_pb2.RecognitionRequest, context: Context) -> recognition_pb2.Recognition:
        caller = await self._services.pipeline.authenticate(credentials(context))
        aeo = self._services.aeo
        if aeo is None:
            raise Unavailable("AEO recognition is not configured")
        for name in ("operator", "admin", "date"):
            if len(getattr(request, name)) > MAX_FIELD_CHARS:
                raise BadRequest(f"{name} longer than {MAX_FIELD_CHARS} characters", field=name)
        if not request.operator:
            raise BadRequest("operator is required", field="operator")
        result = await aeo.lookup(caller.member, request.operator, request.admin or None, request.date or None)
        record = result.record()
        return recognition_pb2.Recognition(
            operator=record["operator"],
            recognising_admin=record["recognising_admin"],
            date=record["date"],
            recognised=record["recognised"],
            authorisation=record["authorisation"] or "",
            issuing_admin=record["issuing_admin"] or "",
            type=record["type"] or "",
            status=record["status"] or "",
            arrangement=record["arrangement"] or "",
            benefits=record["benefits"],
            reasons=record["reasons"],
        )
