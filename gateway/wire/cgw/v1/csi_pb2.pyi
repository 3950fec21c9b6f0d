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

class ExaminationMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXAMINATION_METHOD_UNSPECIFIED: _ClassVar[ExaminationMethod]
    EXAMINATION_METHOD_NII_XRAY: _ClassVar[ExaminationMethod]
    EXAMINATION_METHOD_NII_GAMMA: _ClassVar[ExaminationMethod]
    EXAMINATION_METHOD_RADIATION_SCAN: _ClassVar[ExaminationMethod]
    EXAMINATION_METHOD_PHYSICAL: _ClassVar[ExaminationMethod]
    EXAMINATION_METHOD_SEAL_CHECK: _ClassVar[ExaminationMethod]
EXAMINATION_METHOD_UNSPECIFIED: ExaminationMethod
EXAMINATION_METHOD_NII_XRAY: ExaminationMethod
EXAMINATION_METHOD_NII_GAMMA: ExaminationMethod
EXAMINATION_METHOD_RADIATION_SCAN: ExaminationMethod
EXAMINATION_METHOD_PHYSICAL: ExaminationMethod
EXAMINATION_METHOD_SEAL_CHECK: ExaminationMethod

class CsiExaminationRequest(_message.Message):
    __slots__ = ("referral_id", "port", "destination_port", "transport_document_number", "container_numbers", "vessel", "priority", "reason", "reason_text", "requested_methods", "examine_before")
    class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        PRIORITY_UNSPECIFIED: _ClassVar[CsiExaminationRequest.Priority]
        ROUTINE: _ClassVar[CsiExaminationRequest.Priority]
        HIGH: _ClassVar[CsiExaminationRequest.Priority]
        URGENT: _ClassVar[CsiExaminationRequest.Priority]
    PRIORITY_UNSPECIFIED: CsiExaminationRequest.Priority
    ROUTINE: CsiExaminationRequest.Priority
    HIGH: CsiExaminationRequest.Priority
    URGENT: CsiExaminationRequest.Priority
    class Reason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        REASON_UNSPECIFIED: _ClassVar[CsiExaminationRequest.Reason]
        TARGETING_SCORE: _ClassVar[CsiExaminationRequest.Reason]
        INTELLIGENCE: _ClassVar[CsiExaminationRequest.Reason]
        DATA_ANOMALY: _ClassVar[CsiExaminationRequest.Reason]
        RANDOM: _ClassVar[CsiExaminationRequest.Reason]
    REASON_UNSPECIFIED: CsiExaminationRequest.Reason
    TARGETING_SCORE: CsiExaminationRequest.Reason
    INTELLIGENCE: CsiExaminationRequest.Reason
    DATA_ANOMALY: CsiExaminationRequest.Reason
    RANDOM: CsiExaminationRequest.Reason
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_PORT_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    VESSEL_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_TEXT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_METHODS_FIELD_NUMBER: _ClassVar[int]
    EXAMINE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    port: str
    destination_port: str
    transport_document_number: str
    container_numbers: _containers.RepeatedScalarFieldContainer[str]
    vessel: _common_pb2.Vessel
    priority: CsiExaminationRequest.Priority
    reason: CsiExaminationRequest.Reason
    reason_text: str
    requested_methods: _containers.RepeatedScalarFieldContainer[ExaminationMethod]
    examine_before: _timestamp_pb2.Timestamp
    def __init__(self, referral_id: _Optional[str] = ..., port: _Optional[str] = ..., destination_port: _Optional[str] = ..., transport_document_number: _Optional[str] = ..., container_numbers: _Optional[_Iterable[str]] = ..., vessel: _Optional[_Union[_common_pb2.Vessel, _Mapping]] = ..., priority: _Optional[_Union[CsiExaminationRequest.Priority, str]] = ..., reason: _Optional[_Union[CsiExaminationRequest.Reason, str]] = ..., reason_text: _Optional[str] = ..., requested_methods: _Optional[_Iterable[_Union[ExaminationMethod, str]]] = ..., examine_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ContainerFinding(_message.Message):
    __slots__ = ("container_number", "finding", "methods", "nii_image_reference", "seal_intact", "remarks")
    class Finding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        FINDING_UNSPECIFIED: _ClassVar[ContainerFinding.Finding]
        NO_ANOMALY: _ClassVar[ContainerFinding.Finding]
        ANOMALY_RESOLVED: _ClassVar[ContainerFinding.Finding]
        ANOMALY: _ClassVar[ContainerFinding.Finding]
        NOT_EXAMINED: _ClassVar[ContainerFinding.Finding]
    FINDING_UNSPECIFIED: ContainerFinding.Finding
    NO_ANOMALY: ContainerFinding.Finding
    ANOMALY_RESOLVED: ContainerFinding.Finding
    ANOMALY: ContainerFinding.Finding
    NOT_EXAMINED: ContainerFinding.Finding
    CONTAINER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FINDING_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    NII_IMAGE_REFERENCE_FIELD_NUMBER: _ClassVar[int]
    SEAL_INTACT_FIELD_NUMBER: _ClassVar[int]
    REMARKS_FIELD_NUMBER: _ClassVar[int]
    container_number: str
    finding: ContainerFinding.Finding
    methods: _containers.RepeatedScalarFieldContainer[ExaminationMethod]
    nii_image_reference: str
    seal_intact: bool
    remarks: str
    def __init__(self, container_number: _Optional[str] = ..., finding: _Optional[_Union[ContainerFinding.Finding, str]] = ..., methods: _Optional[_Iterable[_Union[ExaminationMethod, str]]] = ..., nii_image_reference: _Optional[str] = ..., seal_intact: _Optional[bool] = ..., remarks: _Optional[str] = ...) -> None: ...

class CsiExaminationResult(_message.Message):
    __slots__ = ("referral_id", "port", "host_response", "findings", "recommendation", "examined_at")
    class HostResponse(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        HOST_RESPONSE_UNSPECIFIED: _ClassVar[CsiExaminationResult.HostResponse]
        ACCEPTED: _ClassVar[CsiExaminationResult.HostResponse]
        DECLINED: _ClassVar[CsiExaminationResult.HostResponse]
        WAIVED: _ClassVar[CsiExaminationResult.HostResponse]
    HOST_RESPONSE_UNSPECIFIED: CsiExaminationResult.HostResponse
    ACCEPTED: CsiExaminationResult.HostResponse
    DECLINED: CsiExaminationResult.HostResponse
    WAIVED: CsiExaminationResult.HostResponse
    class Recommendation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        RECOMMENDATION_UNSPECIFIED: _ClassVar[CsiExaminationResult.Recommendation]
        RELEASE: _ClassVar[CsiExaminationResult.Recommendation]
        HOLD: _ClassVar[CsiExaminationResult.Recommendation]
        DO_NOT_LOAD: _ClassVar[CsiExaminationResult.Recommendation]
    RECOMMENDATION_UNSPECIFIED: CsiExaminationResult.Recommendation
    RELEASE: CsiExaminationResult.Recommendation
    HOLD: CsiExaminationResult.Recommendation
    DO_NOT_LOAD: CsiExaminationResult.Recommendation
    REFERRAL_ID_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    HOST_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    FINDINGS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_FIELD_NUMBER: _ClassVar[int]
    EXAMINED_AT_FIELD_NUMBER: _ClassVar[int]
    referral_id: str
    port: str
    host_response: CsiExaminationResult.HostResponse
    findings: _containers.RepeatedCompositeFieldContainer[ContainerFinding]
    recommendation: CsiExaminationResult.Recommendation
    examined_at: _timestamp_pb2.Timestamp
    def __init__(self, referral_id: _Optional[str] = ..., port: _Optional[str] = ..., host_response: _Optional[_Union[CsiExaminationResult.HostResponse, str]] = ..., findings: _Optional[_Iterable[_Union[ContainerFinding, _Mapping]]] = ..., recommendation: _Optional[_Union[CsiExaminationResult.Recommendation, str]] = ..., examined_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
