from gateway.wire.cgw.v1 import common_pb2 as _common_pb2
from gateway.wire.cgw.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AeoAuthorisation(_message.Message):
    __slots__ = ("number", "type", "status", "valid_from", "valid_until", "status_since", "holder", "identifiers")
    class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATUS_UNSPECIFIED: _ClassVar[AeoAuthorisation.Status]
        ACTIVE: _ClassVar[AeoAuthorisation.Status]
        SUSPENDED: _ClassVar[AeoAuthorisation.Status]
        REVOKED: _ClassVar[AeoAuthorisation.Status]
        EXPIRED: _ClassVar[AeoAuthorisation.Status]
    STATUS_UNSPECIFIED: AeoAuthorisation.Status
    ACTIVE: AeoAuthorisation.Status
    SUSPENDED: AeoAuthorisation.Status
    REVOKED: AeoAuthorisation.Status
    EXPIRED: AeoAuthorisation.Status
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    STATUS_SINCE_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    number: str
    type: str
    status: AeoAuthorisation.Status
    valid_from: str
    valid_until: str
    status_since: str
    holder: str
    identifiers: _containers.RepeatedCompositeFieldContainer[_common_pb2.PartyIdentifier]
    def __init__(self, number: _Optional[str] = ..., type: _Optional[str] = ..., status: _Optional[_Union[AeoAuthorisation.Status, str]] = ..., valid_from: _Optional[str] = ..., valid_until: _Optional[str] = ..., status_since: _Optional[str] = ..., holder: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[_common_pb2.PartyIdentifier, _Mapping]]] = ...) -> None: ...

class AeoStatusUpdate(_message.Message):
    __slots__ = ("authorisations",)
    AUTHORISATIONS_FIELD_NUMBER: _ClassVar[int]
    authorisations: _containers.RepeatedCompositeFieldContainer[AeoAuthorisation]
    def __init__(self, authorisations: _Optional[_Iterable[_Union[AeoAuthorisation, _Mapping]]] = ...) -> None: ...
