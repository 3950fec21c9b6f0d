import datetime

from gateway.wire.cgw.v1 import common_pb2 as _common_pb2
from gateway.wire.cgw.v1 import options_pb2 as _options_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Consignment(_message.Message):
    __slots__ = ("transport_document_number", "consignor", "consignee", "notify_parties", "goods_items", "containers", "port_of_loading", "port_of_discharge")
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONSIGNOR_FIELD_NUMBER: _ClassVar[int]
    CONSIGNEE_FIELD_NUMBER: _ClassVar[int]
    NOTIFY_PARTIES_FIELD_NUMBER: _ClassVar[int]
    GOODS_ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    PORT_OF_LOADING_FIELD_NUMBER: _ClassVar[int]
    PORT_OF_DISCHARGE_FIELD_NUMBER: _ClassVar[int]
    transport_document_number: str
    consignor: _common_pb2.Party
    consignee: _common_pb2.Party
    notify_parties: _containers.RepeatedCompositeFieldContainer[_common_pb2.Party]
    goods_items: _containers.RepeatedCompositeFieldContainer[_common_pb2.GoodsItem]
    containers: _containers.RepeatedCompositeFieldContainer[_common_pb2.Container]
    port_of_loading: str
    port_of_discharge: str
    def __init__(self, transport_document_number: _Optional[str] = ..., consignor: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., consignee: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., notify_parties: _Optional[_Iterable[_Union[_common_pb2.Party, _Mapping]]] = ..., goods_items: _Optional[_Iterable[_Union[_common_pb2.GoodsItem, _Mapping]]] = ..., containers: _Optional[_Iterable[_Union[_common_pb2.Container, _Mapping]]] = ..., port_of_loading: _Optional[str] = ..., port_of_discharge: _Optional[str] = ...) -> None: ...

class CargoManifest(_message.Message):
    __slots__ = ("manifest_number", "vessel", "voyage_number", "carrier", "port_of_loading", "port_of_discharge", "next_port", "estimated_departure", "estimated_arrival", "consignments")
    MANIFEST_NUMBER_FIELD_NUMBER: _ClassVar[int]
    VESSEL_FIELD_NUMBER: _ClassVar[int]
    VOYAGE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CARRIER_FIELD_NUMBER: _ClassVar[int]
    PORT_OF_LOADING_FIELD_NUMBER: _ClassVar[int]
    PORT_OF_DISCHARGE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PORT_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_DEPARTURE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_ARRIVAL_FIELD_NUMBER: _ClassVar[int]
    CONSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    manifest_number: str
    vessel: _common_pb2.Vessel
    voyage_number: str
    carrier: _common_pb2.Party
    port_of_loading: str
    port_of_discharge: str
    next_port: str
    estimated_departure: _timestamp_pb2.Timestamp
    estimated_arrival: _timestamp_pb2.Timestamp
    consignments: _containers.RepeatedCompositeFieldContainer[Consignment]
    def __init__(self, manifest_number: _Optional[str] = ..., vessel: _Optional[_Union[_common_pb2.Vessel, _Mapping]] = ..., voyage_number: _Optional[str] = ..., carrier: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., port_of_loading: _Optional[str] = ..., port_of_discharge: _Optional[str] = ..., next_port: _Optional[str] = ..., estimated_departure: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., estimated_arrival: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., consignments: _Optional[_Iterable[_Union[Consignment, _Mapping]]] = ...) -> None: ...
