"""The SOAP contract: the ONE XML <-> protobuf mapping (round trips against the protobuf messages, strict reading
with field paths), the generated XSD validating what the mapping writes, and the WSDL loading in zeep."""

from __future__ import annotations

import io
from typing import Any

import pytest
import zeep
from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from lxml import etree

from adapters.soap import names
from adapters.soap.clientsecurity import zeep_settings
from adapters.soap.description import operations, schema_element, wsdl_document
from adapters.soap.mapping import TIMESTAMP, read_document, write_document
from gateway.core.errors import GatewayError
from gateway.core.payloads import MESSAGE_TYPES
from gateway.demo.samples import cargo_manifest, release_notice
from gateway.wire.cgw.v1 import manifest_pb2, release_pb2


def _filled(message: Message, depth: int = 0) -> Message:
    """Every field set to a non-default value (two items for repeated fields): exercises every XSD type."""
    for field in message.DESCRIPTOR.fields:
        count = 2 if field.is_repeated else 1
        for i in range(count):
            _set(message, field, i, depth)
    return message


def _value(field: Any, i: int) -> Any:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return f"v{i} <&> ü"
    if kind == FieldDescriptor.TYPE_BOOL:
        return True
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return 1234.5 + i
    if kind == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    if kind == FieldDescriptor.TYPE_BYTES:
        return b"\x00\xff" * (i + 1)
    return 7 + i


def _set(message: Message, field: Any, i: int, depth: int) -> None:
    target = getattr(message, field.name)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        child = target.add() if field.is_repeated else target
        if field.message_type.full_name == TIMESTAMP:
            child.seconds, child.nanos = 1_795_000_000 + i, 123_000_000
        elif depth < 6:
            _filled(child, depth + 1)
        else:
            child.SetInParent()
    elif field.is_repeated:
        target.append(_value(field, i))
    else:
        setattr(message, field.name, _value(field, i))


SPECS = sorted(MESSAGE_TYPES.values(), key=lambda s: s.type)


@pytest.mark.parametrize("spec", SPECS, ids=[s.type for s in SPECS])
def test_every_message_type_round_trips_and_validates_against_the_xsd(spec: Any) -> None:
    message = _filled(spec.message())
    element = write_document(message, "document")
    wrapper = etree.Element(f"{{{names.CGW}}}{names.submit_operation(spec)}")
    header = etree.SubElement(wrapper, f"{{{names.CGW}}}header")
    for name, text in (("from", "NL-DOUANE"), ("to", "CN-GACC"), ("tlp", "AMBER")):
        etree.SubElement(header, f"{{{names.CGW}}}{name}").text = text
    for name in ("created", "expires"):
        etree.SubElement(header, f"{{{names.CGW}}}{name}").text = "2026-11-28T10:00:00Z"
    wrapper.append(element)
    schema = etree.XMLSchema(schema_element())
    reparsed = etree.fromstring(etree.tostring(wrapper))
    schema.assertValid(reparsed)
    back = read_document(reparsed[1], spec.message)
    assert back == message
    assert back.SerializeToString(deterministic=True) == message.SerializeToString(deterministic=True)


def test_the_samples_round_trip() -> None:
    for document, cls in (
        (cargo_manifest(), manifest_pb2.CargoManifest),
        (release_notice(), release_pb2.ReleaseNotice),
    ):
        message = json_format.ParseDict(document, cls())
        assert read_document(etree.fromstring(etree.tostring(write_document(message))), cls) == message


def _read(xml: str) -> GatewayError:
    element = etree.fromstring(f'<ReleaseNotice xmlns="{names.CGW}">{xml}</ReleaseNotice>')
    with pytest.raises(GatewayError) as caught:
        read_document(element, release_pb2.ReleaseNotice)
    return caught.value


@pytest.mark.parametrize(
    ("xml", "field"),
    [
        ("<nope>1</nope>", "payload.nope"),
        ("<decision>MAYBE</decision>", "payload.decision"),
        ("<version>-1</version>", "payload.version"),
        ("<version>1e3</version>", "payload.version"),
        ("<version>1</version><version>2</version>", "payload.version"),
        ("<port>NLRTM</port><decision>HOLD</decision>", "payload.decision"),
        ("<effectiveTime>2026-11-28T10:00:00</effectiveTime>", "payload.effectiveTime"),
        ("<effectiveTime><x/></effectiveTime>", "payload.effectiveTime"),
        ('<reason a="1">x</reason>', "payload.reason"),
        ("text<reason>x</reason>", "payload"),
    ],
)
def test_reading_is_strict_with_field_paths(xml: str, field: str) -> None:
    error = _read(xml)
    assert error.code == "SCHEMA_INVALID" and error.field == field


def test_the_wsdl_loads_in_zeep_with_every_operation() -> None:
    document = wsdl_document("https://gateway.example/soap/v1")
    client = zeep.Client(io.BytesIO(document), settings=zeep_settings())
    for port in ("Soap11", "Soap12"):
        service = client.bind("CustomsGateway", port)
        for operation in operations():
            assert callable(getattr(service, operation))
    assert {names.submit_operation(s) for s in SPECS} <= set(operations())
    delivery = zeep.Client(
        io.BytesIO(wsdl_document("https://member.example/", delivery=True)), settings=zeep_settings()
    )
    assert callable(delivery.bind("CustomsDelivery", "Soap12").Deliver)
