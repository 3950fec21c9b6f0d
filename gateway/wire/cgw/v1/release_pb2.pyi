import datetime

from gateway.wire.cgw.v1 import options_pb2 as _options_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReleaseNotice(_message.Message):
    __slots__ = ("transport_document_number", "container_numbers", "decision", "version", "port", "reason", "effective_time")
    class Decision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DECISION_UNSPECIFIED: _ClassVar[ReleaseNotice.Decision]
        RELEASED: _ClassVar[ReleaseNotice.Decision]
        HOLD: _ClassVar[ReleaseNotice.Decision]
        INSPECT: _ClassVar[ReleaseNotice.Decision]
        DO_NOT_LOAD: _ClassVar[ReleaseNotice.Decision]
        CANCELLED: _ClassVar[ReleaseNotice.Decision]
    DECISION_UNSPECIFIED: ReleaseNotice.Decision
    RELEASED: ReleaseNotice.Decision
    HOLD: ReleaseNotice.Decision
    INSPECT: ReleaseNotice.Decision
    DO_NOT_LOAD: ReleaseNotice.Decision
    CANCELLED: ReleaseNotice.Decision
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TIME_FIELD_NUMBER: _ClassVar[int]
    transport_document_number: str
    container_numbers: _containers.RepeatedScalarFieldContainer[str]
    decision: ReleaseNotice.Decision
    version: int
    port: str
    reason: str
    effective_time: _timestamp_pb2.Timestamp
    def __init__(self, transport_document_number: _Optional[str] = ..., container_numbers: _Optional[_Iterable[str]] = ..., decision: _Optional[_Union[ReleaseNotice.Decision, str]] = ..., version: _Optional[int] = ..., port: _Optional[str] = ..., reason: _Optional[str] = ..., effective_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
