from gateway.wire.cgw.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Vessel(_message.Message):
    __slots__ = ("name", "imo", "flag")
    NAME_FIELD_NUMBER: _ClassVar[int]
    IMO_FIELD_NUMBER: _ClassVar[int]
    FLAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    imo: str
    flag: str
    def __init__(self, name: _Optional[str] = ..., imo: _Optional[str] = ..., flag: _Optional[str] = ...) -> None: ...

class Address(_message.Message):
    __slots__ = ("lines", "city", "postal_code", "country")
    LINES_FIELD_NUMBER: _ClassVar[int]
    CITY_FIELD_NUMBER: _ClassVar[int]
    POSTAL_CODE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedScalarFieldContainer[str]
    city: str
    postal_code: str
    country: str
    def __init__(self, lines: _Optional[_Iterable[str]] = ..., city: _Optional[str] = ..., postal_code: _Optional[str] = ..., country: _Optional[str] = ...) -> None: ...

class PartyIdentifier(_message.Message):
    __slots__ = ("scheme", "value")
    class Scheme(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        SCHEME_UNSPECIFIED: _ClassVar[PartyIdentifier.Scheme]
        EORI: _ClassVar[PartyIdentifier.Scheme]
        USCC: _ClassVar[PartyIdentifier.Scheme]
        AEO_EU: _ClassVar[PartyIdentifier.Scheme]
        AEO_CN: _ClassVar[PartyIdentifier.Scheme]
        CN_CUSTOMS_CODE: _ClassVar[PartyIdentifier.Scheme]
    SCHEME_UNSPECIFIED: PartyIdentifier.Scheme
    EORI: PartyIdentifier.Scheme
    USCC: PartyIdentifier.Scheme
    AEO_EU: PartyIdentifier.Scheme
    AEO_CN: PartyIdentifier.Scheme
    CN_CUSTOMS_CODE: PartyIdentifier.Scheme
    SCHEME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    scheme: PartyIdentifier.Scheme
    value: str
    def __init__(self, scheme: _Optional[_Union[PartyIdentifier.Scheme, str]] = ..., value: _Optional[str] = ...) -> None: ...

class Party(_message.Message):
    __slots__ = ("name", "role", "identifiers", "address")
    class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ROLE_UNSPECIFIED: _ClassVar[Party.Role]
        CONSIGNOR: _ClassVar[Party.Role]
        CONSIGNEE: _ClassVar[Party.Role]
        NOTIFY: _ClassVar[Party.Role]
        CARRIER: _ClassVar[Party.Role]
        DECLARANT: _ClassVar[Party.Role]
        REPRESENTATIVE: _ClassVar[Party.Role]
        BUYER: _ClassVar[Party.Role]
        SELLER: _ClassVar[Party.Role]
    ROLE_UNSPECIFIED: Party.Role
    CONSIGNOR: Party.Role
    CONSIGNEE: Party.Role
    NOTIFY: Party.Role
    CARRIER: Party.Role
    DECLARANT: Party.Role
    REPRESENTATIVE: Party.Role
    BUYER: Party.Role
    SELLER: Party.Role
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: Party.Role
    identifiers: _containers.RepeatedCompositeFieldContainer[PartyIdentifier]
    address: Address
    def __init__(self, name: _Optional[str] = ..., role: _Optional[_Union[Party.Role, str]] = ..., identifiers: _Optional[_Iterable[_Union[PartyIdentifier, _Mapping]]] = ..., address: _Optional[_Union[Address, _Mapping]] = ...) -> None: ...

class Packages(_message.Message):
    __slots__ = ("count", "type_code")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TYPE_CODE_FIELD_NUMBER: _ClassVar[int]
    count: int
    type_code: str
    def __init__(self, count: _Optional[int] = ..., type_code: _Optional[str] = ...) -> None: ...

class GoodsItem(_message.Message):
    __slots__ = ("sequence", "hs_code", "description", "packages", "gross_mass_kg", "un_number", "container_numbers")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HS_CODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PACKAGES_FIELD_NUMBER: _ClassVar[int]
    GROSS_MASS_KG_FIELD_NUMBER: _ClassVar[int]
    UN_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    hs_code: str
    description: str
    packages: Packages
    gross_mass_kg: float
    un_number: str
    container_numbers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, sequence: _Optional[int] = ..., hs_code: _Optional[str] = ..., description: _Optional[str] = ..., packages: _Optional[_Union[Packages, _Mapping]] = ..., gross_mass_kg: _Optional[float] = ..., un_number: _Optional[str] = ..., container_numbers: _Optional[_Iterable[str]] = ...) -> None: ...

class Container(_message.Message):
    __slots__ = ("number", "seals", "size_type", "empty")
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    SEALS_FIELD_NUMBER: _ClassVar[int]
    SIZE_TYPE_FIELD_NUMBER: _ClassVar[int]
    EMPTY_FIELD_NUMBER: _ClassVar[int]
    number: str
    seals: _containers.RepeatedScalarFieldContainer[str]
    size_type: str
    empty: bool
    def __init__(self, number: _Optional[str] = ..., seals: _Optional[_Iterable[str]] = ..., size_type: _Optional[str] = ..., empty: _Optional[bool] = ...) -> None: ...
