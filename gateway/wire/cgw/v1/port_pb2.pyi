import datetime

from gateway.wire.cgw.v1 import options_pb2 as _options_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GateOut(_message.Message):
    __slots__ = ("port", "container_number", "transport_document_number", "gate_out_time", "terminal")
    PORT_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    GATE_OUT_TIME_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_FIELD_NUMBER: _ClassVar[int]
    port: str
    container_number: str
    transport_document_number: str
    gate_out_time: _timestamp_pb2.Timestamp
    terminal: str
    def __init__(self, port: _Optional[str] = ..., container_number: _Optional[str] = ..., transport_document_number: _Optional[str] = ..., gate_out_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., terminal: _Optional[str] = ...) -> None: ...

class GateOutAlert(_message.Message):
    __slots__ = ("port", "container_number", "transport_document_number", "status", "reason", "gate_out_sender", "gate_out_message_id", "gate_out_time")
    PORT_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    GATE_OUT_SENDER_FIELD_NUMBER: _ClassVar[int]
    GATE_OUT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    GATE_OUT_TIME_FIELD_NUMBER: _ClassVar[int]
    port: str
    container_number: str
    transport_document_number: str
    status: str
    reason: str
    gate_out_sender: str
    gate_out_message_id: str
    gate_out_time: _timestamp_pb2.Timestamp
    def __init__(self, port: _Optional[str] = ..., container_number: _Optional[str] = ..., transport_document_number: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., gate_out_sender: _Optional[str] = ..., gate_out_message_id: _Optional[str] = ..., gate_out_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PortStreamUpdate(_message.Message):
    __slots__ = ("port", "entries")
    PORT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    port: str
    entries: _containers.RepeatedCompositeFieldContainer[PortStreamEntry]
    def __init__(self, port: _Optional[str] = ..., entries: _Optional[_Iterable[_Union[PortStreamEntry, _Mapping]]] = ...) -> None: ...

class PortNoticesRequest(_message.Message):
    __slots__ = ("port", "after", "follow")
    PORT_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    port: str
    after: int
    follow: bool
    def __init__(self, port: _Optional[str] = ..., after: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class PortStreamEntry(_message.Message):
    __slots__ = ("seq", "port", "transport_document_number", "container_number", "status", "previous", "version", "effective_time", "reason", "sender", "message_id")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    seq: int
    port: str
    transport_document_number: str
    container_number: str
    status: str
    previous: str
    version: int
    effective_time: _timestamp_pb2.Timestamp
    reason: str
    sender: str
    message_id: str
    def __init__(self, seq: _Optional[int] = ..., port: _Optional[str] = ..., transport_document_number: _Optional[str] = ..., container_number: _Optional[str] = ..., status: _Optional[str] = ..., previous: _Optional[str] = ..., version: _Optional[int] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ..., sender: _Optional[str] = ..., message_id: _Optional[str] = ...) -> None: ...

class PortSnapshotRequest(_message.Message):
    __slots__ = ("port",)
    PORT_FIELD_NUMBER: _ClassVar[int]
    port: str
    def __init__(self, port: _Optional[str] = ...) -> None: ...

class PortSnapshot(_message.Message):
    __slots__ = ("port", "seq", "standings")
    PORT_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STANDINGS_FIELD_NUMBER: _ClassVar[int]
    port: str
    seq: int
    standings: _containers.RepeatedCompositeFieldContainer[PortStreamEntry]
    def __init__(self, port: _Optional[str] = ..., seq: _Optional[int] = ..., standings: _Optional[_Iterable[_Union[PortStreamEntry, _Mapping]]] = ...) -> None: ...
