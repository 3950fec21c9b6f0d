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

class InstrumentClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INSTRUMENT_CLASS_UNSPECIFIED: _ClassVar[InstrumentClass]
    INSTRUMENT_CLASS_PORTAL_MONITOR: _ClassVar[InstrumentClass]
    INSTRUMENT_CLASS_SPECTROSCOPIC_PORTAL_MONITOR: _ClassVar[InstrumentClass]
    INSTRUMENT_CLASS_RADIONUCLIDE_IDENTIFIER: _ClassVar[InstrumentClass]
    INSTRUMENT_CLASS_OTHER: _ClassVar[InstrumentClass]
INSTRUMENT_CLASS_UNSPECIFIED: InstrumentClass
INSTRUMENT_CLASS_PORTAL_MONITOR: InstrumentClass
INSTRUMENT_CLASS_SPECTROSCOPIC_PORTAL_MONITOR: InstrumentClass
INSTRUMENT_CLASS_RADIONUCLIDE_IDENTIFIER: InstrumentClass
INSTRUMENT_CLASS_OTHER: InstrumentClass

class DetectorCounts(_message.Message):
    __slots__ = ("detector_id", "category", "kind_code", "gross_counts", "background_counts", "live_time_seconds")
    class Category(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CATEGORY_UNSPECIFIED: _ClassVar[DetectorCounts.Category]
        GAMMA: _ClassVar[DetectorCounts.Category]
        NEUTRON: _ClassVar[DetectorCounts.Category]
    CATEGORY_UNSPECIFIED: DetectorCounts.Category
    GAMMA: DetectorCounts.Category
    NEUTRON: DetectorCounts.Category
    DETECTOR_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    KIND_CODE_FIELD_NUMBER: _ClassVar[int]
    GROSS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    BACKGROUND_COUNTS_FIELD_NUMBER: _ClassVar[int]
    LIVE_TIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    detector_id: str
    category: DetectorCounts.Category
    kind_code: str
    gross_counts: int
    background_counts: int
    live_time_seconds: float
    def __init__(self, detector_id: _Optional[str] = ..., category: _Optional[_Union[DetectorCounts.Category, str]] = ..., kind_code: _Optional[str] = ..., gross_counts: _Optional[int] = ..., background_counts: _Optional[int] = ..., live_time_seconds: _Optional[float] = ...) -> None: ...

class RpmAlarm(_message.Message):
    __slots__ = ("alarm_id", "instrument_id", "instrument_class", "port", "lane", "detectors", "alarm_category", "alarm_description", "alarm_time", "container_number", "transport_document_number")
    class AlarmCategory(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ALARM_CATEGORY_UNSPECIFIED: _ClassVar[RpmAlarm.AlarmCategory]
        ALPHA: _ClassVar[RpmAlarm.AlarmCategory]
        BETA: _ClassVar[RpmAlarm.AlarmCategory]
        GAMMA: _ClassVar[RpmAlarm.AlarmCategory]
        NEUTRON: _ClassVar[RpmAlarm.AlarmCategory]
        ISOTOPE: _ClassVar[RpmAlarm.AlarmCategory]
        OTHER: _ClassVar[RpmAlarm.AlarmCategory]
    ALARM_CATEGORY_UNSPECIFIED: RpmAlarm.AlarmCategory
    ALPHA: RpmAlarm.AlarmCategory
    BETA: RpmAlarm.AlarmCategory
    GAMMA: RpmAlarm.AlarmCategory
    NEUTRON: RpmAlarm.AlarmCategory
    ISOTOPE: RpmAlarm.AlarmCategory
    OTHER: RpmAlarm.AlarmCategory
    ALARM_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_CLASS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    DETECTORS_FIELD_NUMBER: _ClassVar[int]
    ALARM_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    ALARM_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ALARM_TIME_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_DOCUMENT_NUMBER_FIELD_NUMBER: _ClassVar[int]
    alarm_id: str
    instrument_id: str
    instrument_class: InstrumentClass
    port: str
    lane: str
    detectors: _containers.RepeatedCompositeFieldContainer[DetectorCounts]
    alarm_category: RpmAlarm.AlarmCategory
    alarm_description: str
    alarm_time: _timestamp_pb2.Timestamp
    container_number: str
    transport_document_number: str
    def __init__(self, alarm_id: _Optional[str] = ..., instrument_id: _Optional[str] = ..., instrument_class: _Optional[_Union[InstrumentClass, str]] = ..., port: _Optional[str] = ..., lane: _Optional[str] = ..., detectors: _Optional[_Iterable[_Union[DetectorCounts, _Mapping]]] = ..., alarm_category: _Optional[_Union[RpmAlarm.AlarmCategory, str]] = ..., alarm_description: _Optional[str] = ..., alarm_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., container_number: _Optional[str] = ..., transport_document_number: _Optional[str] = ...) -> None: ...

class AlarmAdjudication(_message.Message):
    __slots__ = ("alarm_id", "container_number", "secondary_instrument", "nuclides", "outcome", "disposition", "remarks", "adjudicated_at")
    class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OUTCOME_UNSPECIFIED: _ClassVar[AlarmAdjudication.Outcome]
        NORM: _ClassVar[AlarmAdjudication.Outcome]
        MEDICAL_OR_INDUSTRIAL: _ClassVar[AlarmAdjudication.Outcome]
        SPECIAL_NUCLEAR_MATERIAL: _ClassVar[AlarmAdjudication.Outcome]
        FALSE_ALARM: _ClassVar[AlarmAdjudication.Outcome]
        UNRESOLVED: _ClassVar[AlarmAdjudication.Outcome]
    OUTCOME_UNSPECIFIED: AlarmAdjudication.Outcome
    NORM: AlarmAdjudication.Outcome
    MEDICAL_OR_INDUSTRIAL: AlarmAdjudication.Outcome
    SPECIAL_NUCLEAR_MATERIAL: AlarmAdjudication.Outcome
    FALSE_ALARM: AlarmAdjudication.Outcome
    UNRESOLVED: AlarmAdjudication.Outcome
    class Disposition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        DISPOSITION_UNSPECIFIED: _ClassVar[AlarmAdjudication.Disposition]
        RELEASED: _ClassVar[AlarmAdjudication.Disposition]
        HELD: _ClassVar[AlarmAdjudication.Disposition]
        REFERRED: _ClassVar[AlarmAdjudication.Disposition]
    DISPOSITION_UNSPECIFIED: AlarmAdjudication.Disposition
    RELEASED: AlarmAdjudication.Disposition
    HELD: AlarmAdjudication.Disposition
    REFERRED: AlarmAdjudication.Disposition
    ALARM_ID_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SECONDARY_INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    NUCLIDES_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DISPOSITION_FIELD_NUMBER: _ClassVar[int]
    REMARKS_FIELD_NUMBER: _ClassVar[int]
    ADJUDICATED_AT_FIELD_NUMBER: _ClassVar[int]
    alarm_id: str
    container_number: str
    secondary_instrument: InstrumentClass
    nuclides: _containers.RepeatedScalarFieldContainer[str]
    outcome: AlarmAdjudication.Outcome
    disposition: AlarmAdjudication.Disposition
    remarks: str
    adjudicated_at: _timestamp_pb2.Timestamp
    def __init__(self, alarm_id: _Optional[str] = ..., container_number: _Optional[str] = ..., secondary_instrument: _Optional[_Union[InstrumentClass, str]] = ..., nuclides: _Optional[_Iterable[str]] = ..., outcome: _Optional[_Union[AlarmAdjudication.Outcome, str]] = ..., disposition: _Optional[_Union[AlarmAdjudication.Disposition, str]] = ..., remarks: _Optional[str] = ..., adjudicated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
