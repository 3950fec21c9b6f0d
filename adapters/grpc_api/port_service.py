"""``cgw.v1.PortStream``: a port's ordered release stream and its snapshot over gRPC (the twin of REST
``GET /v1/ports/{locode}/notices`` and ``/snapshot``).

Rule 1: a translator only: authentication by the pipeline, authorisation (Cedar ``read_port``) and the data by
        ``gateway.features.release.portstream.PortStreams``; errors through the server's interceptor and
        ``adapters.status``.
Rule 2: ``Notices`` sends the entries after ``after`` in sequence order; with ``follow`` it keeps the stream
        open and sends new entries as the port's stream grows, until the call's deadline or the client cancels.
        Each send waits for HTTP/2 flow control; at most one page (:data:`PAGE_MAX`) is held in memory, and open
        streams are capped (:data:`MAX_PORT_STREAMS`, then RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from adapters.grpc_api.edge import GrpcServices, credentials
from gateway.core.errors import Overloaded, Unavailable
from gateway.core.release import Standing, stream_entry_message
from gateway.features.release.portstream import PortStreams
from gateway.wire.cgw.v1 import port_pb2, port_pb2_grpc

Context = grpc.aio.ServicerContext[Any, Any]
# Entries read from the store per page.
PAGE_MAX = 500
# Open Notices streams across all callers (each holds a task and up to one page).
MAX_PORT_STREAMS = 256


def standing_entry(standing: Standing) -> port_pb2.PortStreamEntry:
    out = port_pb2.PortStreamEntry(
        seq=standing.seq,
        port=standing.port,
        transport_document_number=standing.transport_document,
        container_number=standing.container,
        status=str(standing.status),
        version=standing.version,
        sender=standing.sender,
        message_id=standing.message_id,
    )
    out.effective_time.FromDatetime(standing.effective)
    return out


class PortStreamService(port_pb2_grpc.PortStreamServicer):
    def __init__(self, services: GrpcServices) -> None:
        self._services = services
        self._open_streams = 0

    def _ports(self) -> PortStreams:
        if self._services.ports is None:
            raise Unavailable("port release streams are not configured")
        return self._services.ports

    async def Notices(
        self, request: port_pb2.PortNoticesRequest, context: Context
    ) -> AsyncIterator[port_pb2.PortStreamEntry]:
        caller = await self._services.pipeline.authenticate(credentials(context))
        ports, limits = self._ports(), self._services.limits
        if self._open_streams >= MAX_PORT_STREAMS:
            raise Overloaded(f"{MAX_PORT_STREAMS} port streams open")
        self._open_streams += 1
        try:
            after = request.after
            while True:
                wait = 0.0
                if request.follow:
                    remaining = context.time_remaining()
                    wait = limits.max_wait_seconds if remaining is None else min(limits.max_wait_seconds, remaining)
                _, entries = await ports.follow(caller.member, request.port, after, PAGE_MAX, max(0.0, wait))
                if not entries and not request.follow:
                    return
                for entry in entries:
                    yield stream_entry_message(entry)  # waits for flow control: the consumer's pace bounds the stream
                    after = entry.seq
        finally:
            self._open_streams -= 1

    async def Snapshot(self, request: port_pb2.PortSnapshotRequest, context: Context) -> port_pb2.PortSnapshot:
        caller = await self._services.pipeline.authenticate(credentials(context))
        locode, seq, standings = await self._ports().snapshot(caller.member, request.port)
        return port_pb2.PortSnapshot(port=locode, seq=seq, standings=[standing_entry(s) for s in standings])
