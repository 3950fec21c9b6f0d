from gateway.wire.cgw.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IntelRecall(_message.Message):
    __slots__ = ("original_sender", "message_id", "reason", "remarks")
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REASON_UNSPECIFIED: _ClassVar[IntelRecall.Reason]
        ERROR: _ClassVar[IntelRecall.Reason]
        SUPERSEDED: _ClassVar[IntelRecall.Reason]
        SOURCE_WITHDRAWN: _ClassVar[IntelRecall.Reason]
        LEGAL: _ClassVar[IntelRecall.Reason]
        OTHER: _ClassVar[IntelRecall.Reason]
    REASON_UNSPECIFIED: IntelRecall.Reason
    ERROR: IntelRecall.Reason
    SUPERSEDED: IntelRecall.Reason
    SOURCE_WITHDRAWN: IntelRecall.Reason
    LEGAL: IntelRecall.Reason
    OTHER: IntelRecall.Reason
    ORIGINAL_SENDER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REMARKS_FIELD_NUMBER: _ClassVar[int]
    original_sender: str
    message_id: str
    reason: IntelRecall.Reason
    remarks: str
    def __init__(self, original_sender: _Optional[str] = ..., message_id: _Optional[str] = ..., reason: _Optional[_Union[IntelRecall.Reason, str]] = ..., remarks: _Optional[str] = ...) -> None: ...
