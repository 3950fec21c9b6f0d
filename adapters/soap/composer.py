"""Composing signed SOAP submissions without a SOAP toolkit (the demo, tests and lightweight partners).

``compose_submission`` builds exactly what the WSDL describes for ``Submit<Message>``: WS-Addressing headers
(Action, MessageID = ``urn:uuid:<id>``, To), the message header and the business document (through ``mapping``),
then signs it with ``wssecurity.sign``. zeep clients produce the same shape from the WSDL.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.protobuf.message import Message
from lxml import etree

from adapters.soap import mapping, names, wssecurity
from adapters.soap.document import serialize
from gateway.core.errors import Invalid
from gateway.core.model import Tlp


def submit_operation_for(message: Message) -> str:
    for operation, spec in names.SUBMIT_OPERATIONS.items():
        if spec.schema == message.DESCRIPTOR.full_name:
            return operation
    raise Invalid(f"{message.DESCRIPTOR.full_name} has no message type")


def _time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compose_submission(
    document: Message,
    *,
    sender: str,
    to: Sequence[str],
    address: str,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    tlp: Tlp = Tlp.AMBER,
    program: str | None = None,
    correlation: str | None = None,
    message_id: str | None = None,
    created: datetime | None = None,
    lifetime: timedelta = timedelta(days=1),
    soap_ns: str = names.SOAP12,
    signed_at: datetime | None = None,
) -> tuple[str, bytes]:
    """(message id, signed envelope bytes) of a ``Submit*`` request addressed to ``address``."""
    operation = submit_operation_for(document)
    message_id = message_id or str(uuid.uuid4())
    created = created or datetime.now(UTC)
    root = etree.Element(
        f"{{{soap_ns}}}Envelope", nsmap={"soap": soap_ns, "wsa": names.WSA, "wsu": names.WSU, "cgw": names.CGW}
    )
    header = etree.SubElement(root, f"{{{soap_ns}}}Header")
    for name, text in (("Action", names.action(operation)), ("MessageID", f"urn:uuid:{message_id}"), ("To", address)):
        etree.SubElement(header, f"{{{names.WSA}}}{name}").text = text
    body = etree.SubElement(root, f"{{{soap_ns}}}Body")
    submit = etree.SubElement(body, mapping.qname(operation))
    message_header = etree.SubElement(submit, mapping.qname("header"))
    values: list[tuple[str, str]] = [("from", sender), *(("to", r) for r in to), ("tlp", tlp.value)]
    if program is not None:
        values.append(("program", program))
    values += [("created", _time(created)), ("expires", _time(created + lifetime))]
    if correlation is not None:
        values.append(("correlation", correlation))
    for name, text in values:
        etree.SubElement(message_header, mapping.qname(name)).text = text
    submit.append(mapping.write_document(document, "document"))
    wssecurity.sign(root, key=key, certificate=certificate, now=signed_at or datetime.now(UTC))
    return message_id, serialize(root)
