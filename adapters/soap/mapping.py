"""The ONE mapping between the XSD business documents and the cgw.v1 protobuf messages.

The XSD (``description.py``) is generated from the same descriptors this module walks, so the two cannot drift:

Rule 1: a message is an element in :data:`names.CGW` whose children are its fields in field-number order; a
        field's element name is its proto3 JSON name (``transportDocumentNumber``); a repeated field is the same
        element repeated; a field left at its default is omitted.
Rule 2: scalar lexical forms are XSD's: ``xs:string``, ``xs:boolean`` (true/false/1/0), ``xs:unsignedInt`` etc.
        (decimal digits, range-checked), ``xs:double`` (finite only), enums by value name,
        ``google.protobuf.Timestamp`` as ``xs:dateTime`` with an explicit offset, ``bytes`` as base64.
Rule 3: reading is strict: an unknown or misplaced element, an attribute, text between child elements, a
        second occurrence of a singular field or a malformed value raises ``Invalid`` (SCHEMA_INVALID) with the
        payload field path, fields named as their elements are: by JSON name
        (``payload.consignments[0].goodsItems[1].hsCode``). Business rules (required, identifiers, bounds) stay
        in ``gateway.core.payloads`` and run on the result like for every adapter (its paths in JSON names too).
Rule 4: protobuf and lxml objects stay inside the SOAP adapter; the pipeline receives deterministic protobuf
        bytes (``application/protobuf``).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from datetime import UTC, datetime
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from lxml import etree

from adapters.soap.names import CGW
from gateway.core.errors import Invalid, LimitExceeded

_Desc = Any  # protobuf descriptors (python / upb classes mypy cannot unify)

TIMESTAMP: Final = "google.protobuf.Timestamp"
# Elements read per document: the payload bound (8 MiB of protobuf) is far above any real manifest's element
# count; this stops a flat document of millions of tiny elements before protobuf objects are built for it.
MAX_ELEMENTS: Final = 500_000
_MAX_NAME_ECHO: Final = 40

_INT_RANGES: Final = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
_FLOAT_TYPES: Final = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_INTEGER: Final = re.compile(r"[+-]?[0-9]{1,20}")
_DOUBLE: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_DATETIME: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def qname(local: str) -> str:
    return f"{{{CGW}}}{local}"


def _local(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{" + CGW + "}"):
        return ""
    return tag[len(CGW) + 2 :]


def _echo(name: object) -> str:
    text = str(name)
    return text if len(text) <= _MAX_NAME_ECHO else text[:_MAX_NAME_ECHO] + "..."


# -- XML -> protobuf ------------------------------------------------------------------------------------------


def read_document(element: etree._Element, message_class: type[Message], path: str = "payload") -> Message:
    """Build ``message_class`` from its XML element (Rule 3); the element's own name is the caller's business."""
    message = message_class()
    budget = [MAX_ELEMENTS]
    _read_message(element, message, path, budget)
    return message


def _read_message(element: etree._Element, message: Message, path: str, budget: list[int]) -> None:
    if element.attrib:
        raise Invalid(f"attribute {_echo(next(iter(element.attrib)))} is not allowed", field=path)
    if (element.text or "").strip():
        raise Invalid("text is not allowed here", field=path)
    fields = message.DESCRIPTOR.fields_by_camelcase_name
    seen: set[str] = set()
    last_number = 0
    counts: dict[str, int] = {}
    for child in element:
        budget[0] -= 1
        if budget[0] < 0:
            raise LimitExceeded(f"more than {MAX_ELEMENTS} elements", field=path)
        if (child.tail or "").strip():
            raise Invalid("text is not allowed here", field=path)
        name = _local(child)
        field: _Desc = fields.get(name)
        if field is None:
            raise Invalid(f"unknown element {_echo(child.tag)}", field=f"{path}.{_echo(name or child.tag)}")
        if field.number < last_number:
            raise Invalid("element out of order (fields follow the field-number order)", field=f"{path}.{name}")
        last_number = field.number
        repeated = field.is_repeated
        if not repeated and name in seen:
            raise Invalid("element may occur once", field=f"{path}.{name}")
        seen.add(name)
        index = counts.get(name, 0)
        counts[name] = index + 1
        where = f"{path}.{name}[{index}]" if repeated else f"{path}.{name}"  # the element name: the JSON name
        _read_field(child, message, field, where, budget)


def _read_field(child: etree._Element, message: Message, field: _Desc, where: str, budget: list[int]) -> None:
    repeated = field.is_repeated
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == TIMESTAMP:
            stamp = _timestamp(_text(child, where), where)
            if repeated:
                getattr(message, field.name).add().CopyFrom(stamp)
            else:
                getattr(message, field.name).CopyFrom(stamp)
            return
        target = getattr(message, field.name).add() if repeated else getattr(message, field.name)
        if not repeated:
            target.SetInParent()
        _read_message(child, target, where, budget)
        return
    value = _scalar(field, _text(child, where), where)
    if repeated:
        getattr(message, field.name).append(value)
    else:
        setattr(message, field.name, value)


def _text(child: etree._Element, where: str) -> str:
    if child.attrib:
        raise Invalid(f"attribute {_echo(next(iter(child.attrib)))} is not allowed", field=where)
    if len(child):
        raise Invalid("a value element has no child elements", field=where)
    return child.text or ""


def _scalar(field: _Desc, text: str, where: str) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return text
    stripped = text.strip()  # XSD's whiteSpace=collapse for every non-string type
    if kind == FieldDescriptor.TYPE_BOOL:
        if stripped not in ("true", "false", "1", "0"):
            raise Invalid("must be an xs:boolean", field=where)
        return stripped in ("true", "1")
    if kind in _INT_RANGES:
        low, high = _INT_RANGES[kind]
        if not _INTEGER.fullmatch(stripped) or not low <= int(stripped) <= high:
            raise Invalid(f"must be an integer in {low}..{high}", field=where)
        return int(stripped)
    if kind in _FLOAT_TYPES:
        if not _DOUBLE.fullmatch(stripped) or not math.isfinite(float(stripped)):
            raise Invalid("must be a finite xs:double", field=where)
        return float(stripped)
    if kind == FieldDescriptor.TYPE_ENUM:
        value = field.enum_type.values_by_name.get(stripped)
        if value is None:
            raise Invalid(f"must be one of {sorted(field.enum_type.values_by_name)}", field=where)
        return value.number
    if kind == FieldDescriptor.TYPE_BYTES:
        try:
            return base64.b64decode(stripped, validate=True)
        except binascii.Error:
            raise Invalid("must be xs:base64Binary", field=where) from None
    raise Invalid("field type not supported over SOAP", field=where)  # pragma: no cover - no such field today


def _timestamp(text: str, where: str) -> Timestamp:
    return read_timestamp(text, where)


def read_timestamp(text: str, where: str, *, error: type[Invalid] = Invalid) -> Timestamp:
    """An ``xs:dateTime`` with an explicit offset as a protobuf Timestamp (``error`` names the failure)."""
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        raise error("must be an xs:dateTime with a time zone (e.g. 2026-11-28T10:00:00Z)", field=where)
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    nanos = int((match.group(7) or "0").ljust(9, "0"))
    zone = match.group(8)
    try:
        at = datetime(year, month, day, hour, minute, second)
        if zone == "Z":
            offset_seconds = 0
        else:
            sign = 1 if zone[0] == "+" else -1
            offset_seconds = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
        seconds = int(at.replace(tzinfo=UTC).timestamp()) - offset_seconds
    except ValueError:
        raise error("is not a valid date and time", field=where) from None
    stamp = Timestamp(seconds=seconds, nanos=nanos)
    if not -62135596800 <= seconds <= 253402300799:
        raise error("is outside 0001-01-01..9999-12-31", field=where)
    return stamp


# -- protobuf -> XML ------------------------------------------------------------------------------------------


def write_document(message: Message, element_name: str | None = None) -> etree._Element:
    """The XML element of ``message`` (named after the message unless ``element_name`` is given)."""
    element = etree.Element(qname(element_name or message.DESCRIPTOR.name), nsmap={None: CGW})
    _write_message(message, element)
    return element


def _write_message(message: Message, element: etree._Element) -> None:
    fields: list[_Desc] = list(message.DESCRIPTOR.fields)
    for field in sorted(fields, key=lambda f: f.number):
        repeated = field.is_repeated
        if repeated:
            values = list(getattr(message, field.name))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            values = [getattr(message, field.name)] if message.HasField(field.name) else []
        else:
            value = getattr(message, field.name)
            values = [] if value == field.default_value else [value]
        for value in values:
            child = etree.SubElement(element, qname(field.json_name))
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                if field.message_type.full_name == TIMESTAMP:
                    child.text = format_timestamp(value)
                else:
                    _write_message(value, child)
            else:
                child.text = _format_scalar(field, value)


def _format_scalar(field: _Desc, value: Any) -> str:
    if field.type == FieldDescriptor.TYPE_BOOL:
        return "true" if value else "false"
    if field.type == FieldDescriptor.TYPE_ENUM:
        described = field.enum_type.values_by_number.get(value)
        return described.name if described is not None else str(value)
    if field.type in _FLOAT_TYPES:
        return repr(float(value))
    if field.type == FieldDescriptor.TYPE_BYTES:
        return base64.b64encode(value).decode("ascii")
    return str(value)


def format_timestamp(stamp: Timestamp, *, micro: bool = False) -> str:
    """``xs:dateTime`` in UTC with ``Z``; ``micro`` gives the envelope header form (exactly six digits)."""
    at = datetime.fromtimestamp(stamp.seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if micro:
        return f"{at}.{stamp.nanos // 1000:06d}Z"
    return at + (f".{stamp.nanos:09d}".rstrip("0") if stamp.nanos else "") + "Z"
