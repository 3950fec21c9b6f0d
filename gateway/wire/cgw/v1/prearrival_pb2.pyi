import datetime

from gateway.wire.cgw.v1 import common_pb2 as _common_pb2
from gateway.wire.cgw.v1 import options_pb2 as _options_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HouseConsignment(_message.Message):
    __slots__ = ("transport_document_number", "consignor", "consignee", "buyer", "seller", "notify_parties", "goods_items", "place_of_delivery", "transport_charges_payment")
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONSIGNOR_FIELD_NUMBER: _ClassVar[int]
    CONSIGNEE_FIELD_NUMBER: _ClassVar[int]
    BUYER_FIELD_NUMBER: _ClassVar[int]
    SELLER_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_PARTIES_FIELD_NUMBER: _ClassVar[int]
    GOODS_ITEMS_FIELD_NUMBER: _ClassVar[int]
    PLACE_OF_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_CHARGES_PAYMENT_FIELD_NUMBER: _ClassVar[int]
    transport_document_number: str
    consignor: _common_pb2.Party
    consignee: _common_pb2.Party
    buyer: _common_pb2.Party
    seller: _common_pb2.Party
    notify_parties: _containers.RepeatedCompositeFieldContainer[_common_pb2.Party]
    goods_items: _containers.RepeatedCompositeFieldContainer[_common_pb2.GoodsItem]
    place_of_delivery: str
    transport_charges_payment: str
    def __init__(self, transport_document_number: _Optional[str] = ..., consignor: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., consignee: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., buyer: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., seller: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., notify_parties: _Optional[_Iterable[_Union[_common_pb2.Party, _Mapping]]] = ..., goods_items: _Optional[_Iterable[_Union[_common_pb2.GoodsItem, _Mapping]]] = ..., place_of_delivery: _Optional[str] = ..., transport_charges_payment: _Optional[str] = ...) -> None: ...

class EntrySummaryDeclaration(_message.Message):
    __slots__ = ("filing_type", "reference", "declarant", "representative", "carrier", "vessel", "voyage_number", "transport_document_number", "port_of_loading", "port_of_first_entry", "estimated_departure", "estimated_arrival", "containers", "house_consignments")
    class FilingType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FILING_TYPE_UNSPECIFIED: _ClassVar[EntrySummaryDeclaration.FilingType]
        F10: _ClassVar[EntrySummaryDeclaration.FilingType]
        F11: _ClassVar[EntrySummaryDeclaration.FilingType]
        F12: _ClassVar[EntrySummaryDeclaration.FilingType]
        F13: _ClassVar[EntrySummaryDeclaration.FilingType]
        F15: _ClassVar[EntrySummaryDeclaration.FilingType]
        F16: _ClassVar[EntrySummaryDeclaration.FilingType]
        F17: _ClassVar[EntrySummaryDeclaration.FilingType]
    FILING_TYPE_UNSPECIFIED: EntrySummaryDeclaration.FilingType
    F10: EntrySummaryDeclaration.FilingType
    F11: EntrySummaryDeclaration.FilingType
    F12: EntrySummaryDeclaration.FilingType
    F13: EntrySummaryDeclaration.FilingType
    F15: EntrySummaryDeclaration.FilingType
    F16: EntrySummaryDeclaration.FilingType
    F17: EntrySummaryDeclaration.FilingType
    FILING_TYPE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    DECLARANT_FIELD_NUMBER: _ClassVar[int]
    REPRESENTATIVE_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    VESSEL_FIELD_NUMBER: _ClassVar[int]
    VOYAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PORT_OF_LOADING_FIELD_NUMBER: _ClassVar[int]
    PORT_OF_FIRST_ENTRY_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DEPARTURE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_ARRIVAL_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    HOUSE_CONSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    filing_type: EntrySummaryDeclaration.FilingType
    reference: str
    declarant: _common_pb2.Party
    representative: _common_pb2.Party
    carrier: _common_pb2.Party
    vessel: _common_pb2.Vessel
    voyage_number: str
    transport_document_number: str
    port_of_loading: str
    port_of_first_entry: str
    estimated_departure: _timestamp_pb2.Timestamp
    estimated_arrival: _timestamp_pb2.Timestamp
    containers: _containers.RepeatedCompositeFieldContainer[_common_pb2.Container]
    house_consignments: _containers.RepeatedCompositeFieldContainer[HouseConsignment]
    def __init__(self, filing_type: _Optional[_Union[EntrySummaryDeclaration.FilingType, str]] = ..., reference: _Optional[str] = ..., declarant: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., representative: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., carrier: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., vessel: _Optional[_Union[_common_pb2.Vessel, _Mapping]] = ..., voyage_number: _Optional[str] = ..., transport_document_number: _Optional[str] = ..., port_of_loading: _Optional[str] = ..., port_of_first_entry: _Optional[str] = ..., estimated_departure: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., estimated_arrival: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., containers: _Optional[_Iterable[_Union[_common_pb2.Container, _Mapping]]] = ..., house_consignments: _Optional[_Iterable[_Union[HouseConsignment, _Mapping]]] = ...) -> None: ...
