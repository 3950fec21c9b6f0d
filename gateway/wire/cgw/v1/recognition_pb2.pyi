from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RecognitionRequest(_message.Message):
    __slots__ = ("operator", "admin", "date")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    ADMIN_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    operator: str
    admin: str
    date: str
    def __init__(self, operator: _Optional[str] = ..., admin: _Optional[str] = ..., date: _Optional[str] = ...) -> None: ...

class Recognition(_message.Message):
    __slots__ = ("operator", "recognising_admin", "date", "recognised", "authorisation", "issuing_admin", "type", "status", "arrangement", "benefits", "reasons")
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    RECOGNISING_ADMIN_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    RECOGNISED_FIELD_NUMBER: _ClassVar[int]
    AUTHORISATION_FIELD_NUMBER: _ClassVar[int]
    ISSUING_ADMIN_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ARRANGEMENT_FIELD_NUMBER: _ClassVar[int]
    BENEFITS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    operator: str
    recognising_admin: str
    date: str
    recognised: bool
    authorisation: str
    issuing_admin: str
    type: str
    status: str
    arrangement: str
    benefits: _containers.RepeatedScalarFieldContainer[str]
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, operator: _Optional[str] = ..., recognising_admin: _Optional[str] = ..., date: _Optional[str] = ..., recognised: _Optional[bool] = ..., authorisation: _Optional[str] = ..., issuing_admin: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[str] = ..., arrangement: _Optional[str] = ..., benefits: _Optional[_Iterable[str]] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...
