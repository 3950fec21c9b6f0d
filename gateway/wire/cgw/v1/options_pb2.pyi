from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentifierKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTIFIER_KIND_UNSPECIFIED: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_CONTAINER_NUMBER: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_IMO_NUMBER: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_PORT_LOCODE: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_LOCATION_LOCODE: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_HS_CODE: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_UN_NUMBER: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_COUNTRY_CODE: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_TRANSPORT_DOCUMENT: _ClassVar[IdentifierKind]
IDENTIFIER_KIND_UNSPECIFIED: IdentifierKind
IDENTIFIER_KIND_CONTAINER_NUMBER: IdentifierKind
IDENTIFIER_KIND_IMO_NUMBER: IdentifierKind
IDENTIFIER_KIND_PORT_LOCODE: IdentifierKind
IDENTIFIER_KIND_LOCATION_LOCODE: IdentifierKind
IDENTIFIER_KIND_HS_CODE: IdentifierKind
IDENTIFIER_KIND_UN_NUMBER: IdentifierKind
IDENTIFIER_KIND_COUNTRY_CODE: IdentifierKind
IDENTIFIER_KIND_TRANSPORT_DOCUMENT: IdentifierKind
RULES_FIELD_NUMBER: _ClassVar[int]
rules: _descriptor.FieldDescriptor

class FieldRules(_message.Message):
    __slots__ = ("required", "identifier", "max_length", "max_items")
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MAX_ITEMS_FIELD_NUMBER: _ClassVar[int]
    required: bool
    identifier: IdentifierKind
    max_length: int
    max_items: int
    def __init__(self, required: _Optional[bool] = ..., identifier: _Optional[_Union[IdentifierKind, str]] = ..., max_length: _Optional[int] = ..., max_items: _Optional[int] = ...) -> None: ...
