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

class SstlSecurityData(_message.Message):
    __slots__ = ("reference", "origin_port", "destination_port", "transport_document_number", "vessel", "consignor", "consignee", "containers", "goods_items", "planned_loading")
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_PORT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    VESSEL_FIELD_NUMBER: _ClassVar[int]
    CONSIGNOR_FIELD_NUMBER: _ClassVar[int]
    CONSIGNEE_FIELD_NUMBER: _ClassVar[int]
    CONTAINERS_FIELD_NUMBER: _ClassVar[int]
    GOODS_ITEMS_FIELD_NUMBER: _ClassVar[int]
    PLANNED_LOADING_FIELD_NUMBER: _ClassVar[int]
    reference: str
    origin_port: str
    destination_port: str
    transport_document_number: str
    vessel: _common_pb2.Vessel
    consignor: _common_pb2.Party
    consignee: _common_pb2.Party
    containers: _containers.RepeatedCompositeFieldContainer[_common_pb2.Container]
    goods_items: _containers.RepeatedCompositeFieldContainer[_common_pb2.GoodsItem]
    planned_loading: _timestamp_pb2.Timestamp
    def __init__(self, reference: _Optional[str] = ..., origin_port: _Optional[str] = ..., destination_port: _Optional[str] = ..., transport_document_number: _Optional[str] = ..., vessel: _Optional[_Union[_common_pb2.Vessel, _Mapping]] = ..., consignor: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., consignee: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., containers: _Optional[_Iterable[_Union[_common_pb2.Container, _Mapping]]] = ..., goods_items: _Optional[_Iterable[_Union[_common_pb2.GoodsItem, _Mapping]]] = ..., planned_loading: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SstlControlResult(_message.Message):
    __slots__ = ("reference", "origin_port", "destination_port", "transport_document_number", "container_numbers", "result", "methods", "remarks", "control_time")
    class Result(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RESULT_UNSPECIFIED: _ClassVar[SstlControlResult.Result]
        NOT_CONTROLLED: _ClassVar[SstlControlResult.Result]
        CONTROLLED_NO_FINDING: _ClassVar[SstlControlResult.Result]
        CONTROLLED_FINDING: _ClassVar[SstlControlResult.Result]
        SEAL_DISCREPANCY: _ClassVar[SstlControlResult.Result]
    RESULT_UNSPECIFIED: SstlControlResult.Result
    NOT_CONTROLLED: SstlControlResult.Result
    CONTROLLED_NO_FINDING: SstlControlResult.Result
    CONTROLLED_FINDING: SstlControlResult.Result
    SEAL_DISCREPANCY: SstlControlResult.Result
    class Method(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        METHOD_UNSPECIFIED: _ClassVar[SstlControlResult.Method]
        DOCUMENTARY: _ClassVar[SstlControlResult.Method]
        NII_SCAN: _ClassVar[SstlControlResult.Method]
        RADIATION_SCAN: _ClassVar[SstlControlResult.Method]
        PHYSICAL: _ClassVar[SstlControlResult.Method]
        SEAL_CHECK: _ClassVar[SstlControlResult.Method]
    METHOD_UNSPECIFIED: SstlControlResult.Method
    DOCUMENTARY: SstlControlResult.Method
    NII_SCAN: SstlControlResult.Method
    RADIATION_SCAN: SstlControlResult.Method
    PHYSICAL: SstlControlResult.Method
    SEAL_CHECK: SstlControlResult.Method
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_PORT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    REMARKS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_TIME_FIELD_NUMBER: _ClassVar[int]
    reference: str
    origin_port: str
    destination_port: str
    transport_document_number: str
    container_numbers: _containers.RepeatedScalarFieldContainer[str]
    result: SstlControlResult.Result
    methods: _containers.RepeatedScalarFieldContainer[SstlControlResult.Method]
    remarks: str
    control_time: _timestamp_pb2.Timestamp
    def __init__(self, reference: _Optional[str] = ..., origin_port: _Optional[str] = ..., destination_port: _Optional[str] = ..., transport_document_number: _Optional[str] = ..., container_numbers: _Optional[_Iterable[str]] = ..., result: _Optional[_Union[SstlControlResult.Result, str]] = ..., methods: _Optional[_Iterable[_Union[SstlControlResult.Method, str]]] = ..., remarks: _Optional[str] = ..., control_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
