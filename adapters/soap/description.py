"""The service description: the XSD (generated from the cgw.v1 descriptors) and the WSDL around it.

Rule 1: the XSD mirrors the protos through the same walk ``mapping.py`` reads and writes (element names are
        proto3 JSON names, field-number order, enums by value name, Timestamp as ``xs:dateTime``); repeated
        fields carry their annotated ``max_items`` as ``maxOccurs``.
Rule 2: document/literal, one wrapper element per operation, two bindings (SOAP 1.1 and SOAP 1.2) on one
        address; every input names its WS-Addressing action (``wsam:Action``) so clients send WS-Addressing.
Rule 3: the WSDL is built per base URL (the address clients use) and cached; nothing here reads a request.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from google.protobuf.descriptor import FieldDescriptor
from lxml import etree

from adapters.soap import names
from adapters.soap.mapping import TIMESTAMP
from gateway.core import envelope as envelope_rules
from gateway.core.limits import DEFAULT_MAX_ITEMS
from gateway.core.payloads import MESSAGE_TYPES
from gateway.wire.cgw.v1 import options_pb2

XS: Final = "http://www.w3.org/2001/XMLSchema"
WSDL: Final = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP11: Final = "http://schemas.xmlsoap.org/wsdl/soap/"
WSDL_SOAP12: Final = "http://schemas.xmlsoap.org/wsdl/soap12/"
HTTP_TRANSPORT: Final = "http://schemas.xmlsoap.org/soap/http"

_Desc = Any
_RULES: Any = options_pb2.rules
_SCALARS: Final = {
    FieldDescriptor.TYPE_STRING: "xs:string",
    FieldDescriptor.TYPE_BOOL: "xs:boolean",
    FieldDescriptor.TYPE_DOUBLE: "xs:double",
    FieldDescriptor.TYPE_FLOAT: "xs:float",
    FieldDescriptor.TYPE_INT32: "xs:int",
    FieldDescriptor.TYPE_SINT32: "xs:int",
    FieldDescriptor.TYPE_SFIXED32: "xs:int",
    FieldDescriptor.TYPE_INT64: "xs:long",
    FieldDescriptor.TYPE_SINT64: "xs:long",
    FieldDescriptor.TYPE_SFIXED64: "xs:long",
    FieldDescriptor.TYPE_UINT32: "xs:unsignedInt",
    FieldDescriptor.TYPE_FIXED32: "xs:unsignedInt",
    FieldDescriptor.TYPE_UINT64: "xs:unsignedLong",
    FieldDescriptor.TYPE_FIXED64: "xs:unsignedLong",
    FieldDescriptor.TYPE_BYTES: "xs:base64Binary",
}

# Service-level types (header, status, inbox), as (element, type, minOccurs, maxOccurs) sequences.
_Seq = tuple[tuple[str, str, int, str], ...]
_SERVICE_TYPES: Final[dict[str, _Seq]] = {
    "MessageHeader": (
        ("from", "xs:string", 1, "1"),
        ("to", "xs:string", 1, str(envelope_rules.MAX_RECIPIENTS)),
        ("tlp", "tns:Tlp", 1, "1"),
        ("program", "xs:string", 0, "1"),
        ("created", "xs:dateTime", 1, "1"),
        ("expires", "xs:dateTime", 1, "1"),
        ("correlation", "xs:string", 0, "1"),
    ),
    "MessageStatus": (
        ("messageId", "xs:string", 1, "1"),
        ("from", "xs:string", 1, "1"),
        ("to", "xs:string", 1, "unbounded"),
        ("type", "xs:string", 1, "1"),
        ("received", "xs:dateTime", 1, "1"),
        ("ledgerIndex", "xs:long", 1, "1"),
        ("evidenceSha256", "xs:string", 1, "1"),
        ("receipt", "xs:string", 1, "1"),
        ("duplicate", "xs:boolean", 0, "1"),
        # GetStatus only: each recipient's state and the forwards (REST GET /v1/messages/{from}/{id})
        ("recipientState", "tns:RecipientState", 0, "unbounded"),
        ("forward", "tns:ForwardRef", 0, "unbounded"),
    ),
    "RecipientState": (
        ("member", "xs:string", 1, "1"),
        ("cursor", "xs:long", 1, "1"),
        ("state", "xs:string", 1, "1"),  # pending, retrying, delivered, acknowledged, dead-lettered, withdrawn
        ("settled", "xs:dateTime", 0, "1"),
        ("attempts", "xs:long", 0, "1"),  # push state, absent for a recipient never pushed to
        ("outcome", "xs:string", 0, "1"),
        ("lastStatus", "xs:string", 0, "1"),
        ("updated", "xs:dateTime", 0, "1"),
        ("nextAttempt", "xs:dateTime", 0, "1"),
        ("withdrawnByFrom", "xs:string", 0, "1"),  # the recall that withdrew the entry
        ("withdrawnByMessageId", "xs:string", 0, "1"),
        # a recipient served by a peer gateway (issue 19): the peer, its last error code, its signed receipt (JWS)
        ("peer", "xs:string", 0, "1"),
        ("lastCode", "xs:string", 0, "1"),
        ("peerReceipt", "xs:string", 0, "1"),
    ),
    "ForwardRef": (
        ("from", "xs:string", 1, "1"),
        ("messageId", "xs:string", 1, "1"),
        ("to", "xs:string", 1, "unbounded"),
        ("received", "xs:dateTime", 1, "1"),
        ("ledgerIndex", "xs:long", 1, "1"),
    ),
    "InboxItem": (
        ("cursor", "xs:long", 1, "1"),
        ("from", "xs:string", 1, "1"),
        ("messageId", "xs:string", 1, "1"),
        ("type", "xs:string", 1, "1"),
        ("received", "xs:dateTime", 1, "1"),
        ("evidence", "xs:string", 1, "1"),
        ("payload", "xs:base64Binary", 1, "1"),
    ),
    "FaultDetail": (("code", "xs:string", 1, "1"), ("field", "xs:string", 0, "1")),
}
_OPERATION_ELEMENTS: Final[dict[str, _Seq]] = {
    "GetStatus": (("from", "xs:string", 1, "1"), ("messageId", "xs:string", 1, "1")),
    "GetStatusResponse": (("status", "tns:MessageStatus", 1, "1"),),
    "PullInbox": (("after", "xs:long", 0, "1"), ("limit", "xs:int", 0, "1"), ("wait", "xs:int", 0, "1")),
    "PullInboxResponse": (("item", "tns:InboxItem", 0, "unbounded"), ("nextAfter", "xs:long", 1, "1")),
    "AckInbox": (("cursor", "xs:long", 1, "unbounded"),),
    "AckInboxResponse": (("acknowledged", "xs:int", 1, "1"),),
    "Deliver": (("item", "tns:InboxItem", 1, "1"), ("recipient", "xs:string", 1, "1")),
    "DeliverResponse": (("accepted", "xs:boolean", 1, "1"),),
}


def type_name(descriptor: _Desc) -> str:
    """XSD type name of a message or enum: its full name without the package, dots as underscores."""
    full: str = descriptor.full_name
    package: str = descriptor.file.package
    return full[len(package) + 1 :].replace(".", "_")


def _el(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{XS}}}{tag}", attrs)


def _sequence(parent: etree._Element, name: str, items: _Seq) -> None:
    complex_type = _el(parent, "complexType", name=name)
    seq = _el(complex_type, "sequence")
    for element, xsd_type, min_occurs, max_occurs in items:
        _el(seq, "element", name=element, type=xsd_type, minOccurs=str(min_occurs), maxOccurs=max_occurs)


def _field_type(field: _Desc, enums: dict[str, _Desc], messages: dict[str, _Desc]) -> str:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.full_name == TIMESTAMP:
            return "xs:dateTime"
        _collect(field.message_type, enums, messages)
        return "tns:" + type_name(field.message_type)
    if field.type == FieldDescriptor.TYPE_ENUM:
        enums[type_name(field.enum_type)] = field.enum_type
        return "tns:" + type_name(field.enum_type)
    return _SCALARS[field.type]


def _collect(message: _Desc, enums: dict[str, _Desc], messages: dict[str, _Desc]) -> None:
    name = type_name(message)
    if name in messages:
        return
    messages[name] = message
    for field in message.fields:
        _field_type(field, enums, messages)


def _message_type(schema: etree._Element, message: _Desc, enums: dict[str, _Desc], messages: dict[str, _Desc]) -> None:
    complex_type = _el(schema, "complexType", name=type_name(message))
    seq = _el(complex_type, "sequence")
    for field in sorted(message.fields, key=lambda f: f.number):
        rules = field.GetOptions().Extensions[_RULES]
        if field.is_repeated:
            bound = str(rules.max_items or DEFAULT_MAX_ITEMS)
            min_occurs = "1" if rules.required else "0"
        else:
            bound = "1"
            min_occurs = "1" if rules.required and field.type != FieldDescriptor.TYPE_ENUM else "0"
        _el(
            seq,
            "element",
            name=field.json_name,
            type=_field_type(field, enums, messages),
            minOccurs=min_occurs,
            maxOccurs=bound,
        )


def schema_element() -> etree._Element:
    """The ``xs:schema`` of the service (a fresh tree each call)."""
    schema = etree.Element(
        f"{{{XS}}}schema",
        {"targetNamespace": names.CGW, "elementFormDefault": "qualified"},
        nsmap={"xs": XS, "tns": names.CGW},
    )
    enums: dict[str, _Desc] = {}
    messages: dict[str, _Desc] = {}
    for spec in MESSAGE_TYPES.values():
        _collect(spec.message.DESCRIPTOR, enums, messages)
    for name in sorted(messages):
        _message_type(schema, messages[name], enums, messages)
    for name in sorted(enums):
        simple = _el(schema, "simpleType", name=name)
        restriction = _el(simple, "restriction", base="xs:string")
        for value in enums[name].values:
            _el(restriction, "enumeration", value=value.name)
    tlp = _el(_el(schema, "simpleType", name="Tlp"), "restriction", base="xs:string")
    for label in ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"):
        _el(tlp, "enumeration", value=label)
    for name, items in _SERVICE_TYPES.items():
        _sequence(schema, name, items)
    for operation, spec in names.SUBMIT_OPERATIONS.items():
        wrapper = _el(_el(_el(schema, "element", name=operation), "complexType"), "sequence")
        _el(wrapper, "element", name="header", type="tns:MessageHeader")
        _el(wrapper, "element", name="document", type="tns:" + type_name(spec.message.DESCRIPTOR))
        _el(schema, "element", name=operation + "Response", type="tns:MessageStatus")
    for operation, items in _OPERATION_ELEMENTS.items():
        element = _el(schema, "element", name=operation)
        seq = _el(_el(element, "complexType"), "sequence")
        for child, xsd_type, min_occurs, max_occurs in items:
            _el(seq, "element", name=child, type=xsd_type, minOccurs=str(min_occurs), maxOccurs=max_occurs)
    _el(schema, "element", name="FaultDetail", type="tns:FaultDetail")
    return schema


def operations(*, delivery: bool = False) -> tuple[str, ...]:
    if delivery:
        return names.DELIVERY_OPERATIONS
    return tuple(names.SUBMIT_OPERATIONS) + names.QUERY_OPERATIONS


def _w(parent: etree._Element, tag: str, **attrs: str) -> etree._Element:
    return etree.SubElement(parent, f"{{{WSDL}}}{tag}", attrs)


@cache
def wsdl_document(address: str, *, delivery: bool = False) -> bytes:
    """The WSDL 1.1 document for a service reachable at ``address`` (cached per address).

    ``delivery`` gives the contract a member's endpoint implements to receive pushes (``Deliver``)."""
    service_name = "CustomsDelivery" if delivery else "CustomsGateway"
    root = etree.Element(
        f"{{{WSDL}}}definitions",
        {"name": service_name, "targetNamespace": names.CGW},
        nsmap={
            "wsdl": WSDL,
            "soap": WSDL_SOAP11,
            "soap12": WSDL_SOAP12,
            "xs": XS,
            "tns": names.CGW,
            "wsam": names.WSAM,
        },
    )
    _w(root, "types").append(schema_element())
    ops = operations(delivery=delivery)
    for operation in ops:
        for suffix in ("", "Response"):
            message = _w(root, "message", name=operation + suffix)
            _w(message, "part", name="parameters", element="tns:" + operation + suffix)
    port_type = _w(root, "portType", name=service_name + "Port")
    for operation in ops:
        op = _w(port_type, "operation", name=operation)
        request = _w(op, "input", message="tns:" + operation)
        response = _w(op, "output", message="tns:" + operation + "Response")
        if not delivery:  # the deliverer sends its own WS-Addressing headers (a MessageID stable across retries)
            request.set(f"{{{names.WSAM}}}Action", names.action(operation))
            response.set(f"{{{names.WSAM}}}Action", names.action(operation + "Response"))
    for binding_suffix, soap_ns in (("Soap11", WSDL_SOAP11), ("Soap12", WSDL_SOAP12)):
        binding = _w(root, "binding", name=service_name + binding_suffix, type=f"tns:{service_name}Port")
        etree.SubElement(binding, f"{{{soap_ns}}}binding", style="document", transport=HTTP_TRANSPORT)
        for operation in ops:
            op = _w(binding, "operation", name=operation)
            etree.SubElement(op, f"{{{soap_ns}}}operation", soapAction=names.action(operation), style="document")
            for direction in ("input", "output"):
                etree.SubElement(_w(op, direction), f"{{{soap_ns}}}body", use="literal")
    service = _w(root, "service", name=service_name)
    for port_name, soap_ns in (("Soap11", WSDL_SOAP11), ("Soap12", WSDL_SOAP12)):
        port = _w(service, "port", name=port_name, binding=f"tns:{service_name}{port_name}")
        etree.SubElement(port, f"{{{soap_ns}}}address", location=address)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
