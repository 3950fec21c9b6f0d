from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitRequest(_message.Message):
    __slots__ = ("envelope", "payload")
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    envelope: str
    payload: bytes
    def __init__(self, envelope: _Optional[str] = ..., payload: _Optional[bytes] = ...) -> None: ...

class MessageStatus(_message.Message):
    __slots__ = ("message_id", "sender", "recipients", "type", "received", "ledger_index", "evidence_sha256", "receipt", "recipient_states", "forwards")
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_STATES_FIELD_NUMBER: _ClassVar[int]
    FORWARDS_FIELD_NUMBER: _ClassVar[int]
    message_id: str
    sender: str
    recipients: _containers.RepeatedScalarFieldContainer[str]
    type: str
    received: str
    ledger_index: int
    evidence_sha256: str
    receipt: str
    recipient_states: _containers.RepeatedCompositeFieldContainer[RecipientState]
    forwards: _containers.RepeatedCompositeFieldContainer[ForwardRef]
    def __init__(self, message_id: _Optional[str] = ..., sender: _Optional[str] = ..., recipients: _Optional[_Iterable[str]] = ..., type: _Optional[str] = ..., received: _Optional[str] = ..., ledger_index: _Optional[int] = ..., evidence_sha256: _Optional[str] = ..., receipt: _Optional[str] = ..., recipient_states: _Optional[_Iterable[_Union[RecipientState, _Mapping]]] = ..., forwards: _Optional[_Iterable[_Union[ForwardRef, _Mapping]]] = ...) -> None: ...

class RecipientState(_message.Message):
    __slots__ = ("member", "cursor", "state", "settled", "delivery", "withdrawn_by", "peer")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWN_BY_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    member: str
    cursor: int
    state: str
    settled: str
    delivery: PushState
    withdrawn_by: MessageRef
    peer: str
    def __init__(self, member: _Optional[str] = ..., cursor: _Optional[int] = ..., state: _Optional[str] = ..., settled: _Optional[str] = ..., delivery: _Optional[_Union[PushState, _Mapping]] = ..., withdrawn_by: _Optional[_Union[MessageRef, _Mapping]] = ..., peer: _Optional[str] = ...) -> None: ...

class PushState(_message.Message):
    __slots__ = ("attempts", "outcome", "last_status", "updated", "next_attempt", "last_code", "receipt")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LAST_STATUS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    LAST_CODE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    attempts: int
    outcome: str
    last_status: str
    updated: str
    next_attempt: str
    last_code: str
    receipt: str
    def __init__(self, attempts: _Optional[int] = ..., outcome: _Optional[str] = ..., last_status: _Optional[str] = ..., updated: _Optional[str] = ..., next_attempt: _Optional[str] = ..., last_code: _Optional[str] = ..., receipt: _Optional[str] = ...) -> None: ...

class MessageRef(_message.Message):
    __slots__ = ("sender", "message_id")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    sender: str
    message_id: str
    def __init__(self, sender: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class ForwardRef(_message.Message):
    __slots__ = ("sender", "message_id", "recipients", "received", "ledger_index")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECIPIENTS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    LEDGER_INDEX_FIELD_NUMBER: _ClassVar[int]
    sender: str
    message_id: str
    recipients: _containers.RepeatedScalarFieldContainer[str]
    received: str
    ledger_index: int
    def __init__(self, sender: _Optional[str] = ..., message_id: _Optional[str] = ..., recipients: _Optional[_Iterable[str]] = ..., received: _Optional[str] = ..., ledger_index: _Optional[int] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("message", "duplicate")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    message: MessageStatus
    duplicate: bool
    def __init__(self, message: _Optional[_Union[MessageStatus, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class InboxRequest(_message.Message):
    __slots__ = ("after", "follow")
    AFTER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    after: int
    follow: bool
    def __init__(self, after: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class InboxItem(_message.Message):
    __slots__ = ("cursor", "sender", "message_id", "type", "received", "envelope", "payload")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    cursor: int
    sender: str
    message_id: str
    type: str
    received: str
    envelope: str
    payload: bytes
    def __init__(self, cursor: _Optional[int] = ..., sender: _Optional[str] = ..., message_id: _Optional[str] = ..., type: _Optional[str] = ..., received: _Optional[str] = ..., envelope: _Optional[str] = ..., payload: _Optional[bytes] = ...) -> None: ...

class AckRequest(_message.Message):
    __slots__ = ("cursors",)
    CURSORS_FIELD_NUMBER: _ClassVar[int]
    cursors: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, cursors: _Optional[_Iterable[int]] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ("acknowledged",)
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    acknowledged: int
    def __init__(self, acknowledged: _Optional[int] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("sender", "message_id")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    sender: str
    message_id: str
    def __init__(self, sender: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...
