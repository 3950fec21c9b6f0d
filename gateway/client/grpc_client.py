"""The reference gRPC client: the same signed messages as ``gateway.client.rest``, over ``cgw.v1.Exchange`` / ``Audit``.

Rule 1: the client signs exactly what it sends: the JWS compact string and the payload bytes, unchanged.
Rule 2: mTLS always (the gateway's gRPC listener requires a client certificate); a bearer token from REST
        ``/v1/token`` may be added with ``use_token`` (it travels as ``authorization: Bearer ...`` metadata).
Rule 3: every unary call has a deadline; errors come back as ``GatewayClientError`` whose ``code`` is the stable
        code from the ``google.rpc.ErrorInfo`` detail and whose ``status`` is the numeric gRPC status code.
Rule 4: receipts are verified against the gateway's certificate before they are returned.
Rule 5: gRPC and protobuf objects stay inside this module: callers get dicts shaped like the REST JSON bodies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from typing import Any, Self

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from gateway.client.rest import (
    DEFAULT_TIMEOUT_SECONDS,
    ClientSetupError,
    GatewayClientError,
    GatewayUnreachable,
    MemberCredentials,
    ReceiptVerifier,
    Submitted,
    sign_message,
)
from gateway.core.release import PortNotice, Status, notice_record
from gateway.wire.cgw.v1 import (
    audit_pb2,
    audit_pb2_grpc,
    exchange_pb2,
    exchange_pb2_grpc,
    port_pb2,
    port_pb2_grpc,
    recognition_pb2,
    recognition_pb2_grpc,
)

# grpc's trailing-metadata key for the serialized google.rpc.Status (grpcio-status writes it).
STATUS_DETAILS_KEY = "grpc-status-details-bin"
# Bytes of a message the client accepts (an inbox item with a payload up to the gateway's 2 MiB default).
MAX_RECEIVE_MESSAGE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StreamedItem:
    cursor: int
    sender: str
    message_id: str
    type: str
    received: str
    envelope: str
    payload: bytes


def _status_json(status: exchange_pb2.MessageStatus) -> dict[str, Any]:
    """The REST body shape (``from``/``to`` keys) so that callers and parity tests compare like with like."""
    return {
        "message_id": status.message_id,
        "from": status.sender,
        "to": list(status.recipients),
        "type": status.type,
        "received": status.received,
        "ledger_index": status.ledger_index,
        "evidence_sha256": status.evidence_sha256,
        "receipt": status.receipt,
    }


def _full_status_json(status: exchange_pb2.MessageStatus) -> dict[str, Any]:
    """GetStatus: the REST status body, with each recipient's state and the forwards."""
    return _status_json(status) | {
        "recipients": [_recipient_json(r) for r in status.recipient_states],
        "forwards": [
            {
                "from": f.sender,
                "message_id": f.message_id,
                "to": list(f.recipients),
                "received": f.received,
                "ledger_index": f.ledger_index,
            }
            for f in status.forwards
        ],
    }


def _recipient_json(state: exchange_pb2.RecipientState) -> dict[str, Any]:
    """A recipient's state in the REST shape (empty strings and unset messages become None)."""
    d = state.delivery
    relay = {"last_code": d.last_code or None, "receipt": d.receipt or None} if state.peer else {}
    return {
        "member": state.member,
        "peer": state.peer or None,
        "cursor": state.cursor,
        "state": state.state,
        "settled": state.settled or None,
        "delivery": {
            "attempts": d.attempts,
            "outcome": d.outcome,
            "last_status": d.last_status,
            "updated": d.updated,
            "next_attempt": d.next_attempt or None,
        }
        | relay
        if state.HasField("delivery")
        else None,
        "withdrawn_by": {"from": state.withdrawn_by.sender, "message_id": state.withdrawn_by.message_id}
        if state.HasField("withdrawn_by")
        else None,
    }


def _port_entry(entry: port_pb2.PortStreamEntry) -> dict[str, Any]:
    """The REST record of a stream entry (``gateway.core.release.notice_record``, byte for byte)."""
    notice = PortNotice(
        entry.seq,
        entry.port,
        entry.transport_document_number,
        entry.container_number,
        Status(entry.status),
        Status(entry.previous or entry.status),
        entry.version,
        entry.effective_time.ToDatetime(tzinfo=UTC),
        entry.reason,
        entry.sender,
        entry.message_id,
    )
    return notice_record(notice)


# Without the gateway's ErrorInfo, UNAVAILABLE comes from the channel itself: no gateway answered.
_NO_ANSWER = frozenset({grpc.StatusCode.UNAVAILABLE})


def client_error(exc: grpc.aio.AioRpcError, target: str = "") -> GatewayClientError:
    """The gateway's stable code from the ErrorInfo detail (the gRPC code name when there is none);
    :class:`GatewayUnreachable` when the channel never reached a gateway."""
    code, field = exc.code().name, None
    for key, value in exc.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    code, field = info.reason, info.metadata.get("field")
    if exc.code() in _NO_ANSWER and code == exc.code().name:
        return GatewayUnreachable(target or "the gRPC target", exc.details() or code)
    return GatewayClientError(exc.code().value[0], code, exc.details() or "", field)


class GrpcGatewayClient:
    def __init__(self, target: str, credentials: MemberCredentials, *, gateway_member: str = "CN-GACC") -> None:
        if credentials.tls_cert is None or credentials.tls_key is None:
            raise GatewayClientError(0, "MTLS_REQUIRED", "the gRPC listener requires a TLS client certificate")
        self.target = target.removeprefix("grpcs://").removeprefix("https://").rstrip("/")
        if "://" in self.target or ":" not in self.target:
            raise ClientSetupError(f"gRPC target {target!r} is not HOST:PORT (the gateway's gRPC listener, TLS)")
        self.credentials = credentials
        self.gateway_member = gateway_member
        channel_credentials = grpc.ssl_channel_credentials(
            root_certificates=credentials.ca_file.read_bytes(),
            private_key=credentials.tls_key.read_bytes(),
            certificate_chain=credentials.tls_cert.read_bytes(),
        )
        self._channel = grpc.aio.secure_channel(
            self.target,
            channel_credentials,
            options=[("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES)],
        )
        self._exchange = exchange_pb2_grpc.ExchangeStub(self._channel)
        self._audit = audit_pb2_grpc.AuditStub(self._channel)
        self._aeo = recognition_pb2_grpc.AeoRecognitionStub(self._channel)
        self._ports = port_pb2_grpc.PortStreamStub(self._channel)
        self._token: str | None = None
        self._receipts = ReceiptVerifier(credentials.ca_file)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    def use_token(self, token: str | None) -> None:
        """Send this access token (from REST /v1/token) as bearer metadata on every call."""
        self._token = token

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._token}"),) if self._token else ()

    async def _unary(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=DEFAULT_TIMEOUT_SECONDS, metadata=self._metadata())
        except grpc.aio.AioRpcError as exc:
            raise client_error(exc, self.target) from exc

    # -- exchange ---------------------------------------------------------------------------------------

    def sign(self, message_type: str, to: list[str], payload: bytes, **sign_args: Any) -> str:
        return sign_message(self.credentials, message_type, to, payload, **sign_args)

    async def submit_signed(self, jws: str, payload: bytes) -> Submitted:
        request = exchange_pb2.SubmitRequest(envelope=jws, payload=payload)
        response: exchange_pb2.SubmitResponse = await self._unary(self._exchange.Submit, request)
        body = _status_json(response.message) | {"duplicate": response.duplicate}
        receipt = self._receipts.read(body["receipt"])
        return Submitted(status=grpc.StatusCode.OK.value[0], body=body, receipt=receipt)

    async def submit(self, message_type: str, to: list[str], payload: bytes, **sign_args: Any) -> Submitted:
        return await self.submit_signed(self.sign(message_type, to, payload, **sign_args), payload)

    async def status(self, sender: str, message_id: str) -> dict[str, Any]:
        request = exchange_pb2.GetStatusRequest(sender=sender, message_id=message_id)
        return _full_status_json(await self._unary(self._exchange.GetStatus, request))

    async def ack(self, cursors: list[int]) -> int:
        response: exchange_pb2.AckResponse = await self._unary(
            self._exchange.Ack, exchange_pb2.AckRequest(cursors=cursors)
        )
        return int(response.acknowledged)

    async def inbox(
        self, *, after: int = 0, follow: bool = False, deadline_seconds: float | None = None
    ) -> AsyncIterator[StreamedItem]:
        """Stream unacknowledged items after ``after``; ``follow`` waits for new ones until the deadline."""
        call = self._exchange.Inbox(
            exchange_pb2.InboxRequest(after=after, follow=follow), timeout=deadline_seconds, metadata=self._metadata()
        )
        try:
            async for item in call:
                yield StreamedItem(
                    cursor=item.cursor,
                    sender=item.sender,
                    message_id=item.message_id,
                    type=item.type,
                    received=item.received,
                    envelope=item.envelope,
                    payload=item.payload,
                )
        except grpc.aio.AioRpcError as exc:
            raise client_error(exc, self.target) from exc
        finally:
            call.cancel()

    # -- port release streams ---------------------------------------------------------------------------

    async def port_notices(
        self, port: str, *, after: int = 0, follow: bool = False, deadline_seconds: float | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """cgw.v1.PortStream/Notices: the port's entries after ``after`` as the REST records; ``follow`` keeps
        the stream open for new entries until the deadline."""
        call = self._ports.Notices(
            port_pb2.PortNoticesRequest(port=port, after=after, follow=follow),
            timeout=deadline_seconds,
            metadata=self._metadata(),
        )
        try:
            async for entry in call:
                yield _port_entry(entry)
        except grpc.aio.AioRpcError as exc:
            raise client_error(exc, self.target) from exc
        finally:
            call.cancel()

    async def port_snapshot(self, port: str) -> dict[str, Any]:
        """cgw.v1.PortStream/Snapshot as the REST body (standings without ``previous``/``reason``/``port``)."""
        answer: port_pb2.PortSnapshot = await self._unary(self._ports.Snapshot, port_pb2.PortSnapshotRequest(port=port))
        drop = ("previous", "reason", "port")
        standings = [{k: v for k, v in _port_entry(s).items() if k not in drop} for s in answer.standings]
        return {"port": answer.port, "seq": answer.seq, "standings": standings}

    # -- AEO --------------------------------------------------------------------------------------------

    async def aeo_recognition(self, operator: str, *, admin: str = "", date: str = "") -> dict[str, Any]:
        """cgw.v1.AeoRecognition/Check, as the same dict as REST (empty strings for none)."""
        request = recognition_pb2.RecognitionRequest(operator=operator, admin=admin, date=date)
        answer: recognition_pb2.Recognition = await self._unary(self._aeo.Check, request)
        return json_format.MessageToDict(
            answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )

    # -- audit ------------------------------------------------------------------------------------------

    async def checkpoint(self) -> tuple[bytes, str, str]:
        """(signed note, origin, verifier key)."""
        head: audit_pb2.Checkpoint = await self._unary(self._audit.GetCheckpoint, audit_pb2.CheckpointRequest())
        return head.note, head.origin, head.verifier_key

    async def inclusion(self, index: int, size: int) -> tuple[bytes, list[bytes]]:
        request = audit_pb2.InclusionProofRequest(index=index, size=size)
        proof: audit_pb2.InclusionProof = await self._unary(self._audit.GetInclusionProof, request)
        return proof.leaf_hash, list(proof.proof)

    async def consistency(self, first: int, second: int) -> list[bytes]:
        request = audit_pb2.ConsistencyProofRequest(from_size=first, to_size=second)
        proof: audit_pb2.ConsistencyProof = await self._unary(self._audit.GetConsistencyProof, request)
        return list(proof.proof)

    async def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        page: audit_pb2.Entries = await self._unary(
            self._audit.GetEntries, audit_pb2.EntriesRequest(start=start, end=end)
        )
        return [(e.index, e.data) for e in page.entries]

    # -- receipts ---------------------------------------------------------------------------------------
