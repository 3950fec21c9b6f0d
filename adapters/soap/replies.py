"""SOAP replies: faults through the one status table, and responses signed by the gateway with WS-Security.

Rule 1: a fault carries the stable code: SOAP 1.1 ``faultcode`` = ``soap:Client.<CODE>`` / ``soap:Server.<CODE>``
        (the SOAP 1.1 dotted refinement), SOAP 1.2 ``Code/Value`` = ``env:Sender`` / ``env:Receiver`` with
        ``Subcode/Value`` = ``cgw:<CODE>``; both add ``cgw:FaultDetail`` (code, field). The text is the public
        message only (plus the detail when the error marks it safe, as for REST).
Rule 2: HTTP status: 500 for every SOAP 1.1 fault (SOAP 1.1 / WS-I BP), for SOAP 1.2 400 for Sender and 500
        for Receiver faults (SOAP 1.2 HTTP binding).
Rule 3: every non-fault response is signed (``wssecurity.sign``: Body, Timestamp and the WS-Addressing headers)
        with the gateway's signing key; ``RelatesTo`` echoes the request's MessageID.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from lxml import etree

from adapters.soap import names, wssecurity
from adapters.soap.document import serialize
from adapters.status import status_of
from gateway.core.errors import ErrorKind, GatewayError


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str


def content_type(soap_ns: str) -> str:
    return names.MEDIA_SOAP11 if soap_ns == names.SOAP11 else names.MEDIA_SOAP12


def _envelope(soap_ns: str) -> tuple[etree._Element, etree._Element, etree._Element]:
    root = etree.Element(
        f"{{{soap_ns}}}Envelope", nsmap={"soap": soap_ns, "wsa": names.WSA, "wsu": names.WSU, "cgw": names.CGW}
    )
    header = etree.SubElement(root, f"{{{soap_ns}}}Header")
    body = etree.SubElement(root, f"{{{soap_ns}}}Body")
    return root, header, body


def fault(error: GatewayError, soap_ns: str) -> Reply:
    status = status_of(error)
    root, _header, body = _envelope(soap_ns)
    text = f"{error.public}: {error.detail}" if error.expose_detail and error.detail else error.public
    fault_el = etree.SubElement(body, f"{{{soap_ns}}}Fault")
    if soap_ns == names.SOAP11:
        etree.SubElement(fault_el, "faultcode").text = f"soap:{status.soap11}.{error.code}"
        etree.SubElement(fault_el, "faultstring").text = text
        detail_parent = etree.SubElement(fault_el, "detail")
        http = 500
    else:
        code = etree.SubElement(fault_el, f"{{{soap_ns}}}Code")
        etree.SubElement(code, f"{{{soap_ns}}}Value").text = f"soap:{status.soap12}"
        sub = etree.SubElement(code, f"{{{soap_ns}}}Subcode")
        etree.SubElement(sub, f"{{{soap_ns}}}Value").text = f"cgw:{error.code}"
        reason = etree.SubElement(fault_el, f"{{{soap_ns}}}Reason")
        reason_text = etree.SubElement(reason, f"{{{soap_ns}}}Text")
        reason_text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        reason_text.text = text
        detail_parent = etree.SubElement(fault_el, f"{{{soap_ns}}}Detail")
        http = 400 if status.soap12 == "Sender" else 500
    detail = etree.SubElement(detail_parent, f"{{{names.CGW}}}FaultDetail")
    etree.SubElement(detail, f"{{{names.CGW}}}code").text = error.code
    if error.field and error.kind is not ErrorKind.UNAUTHENTICATED:
        etree.SubElement(detail, f"{{{names.CGW}}}field").text = error.field
    return Reply(http, serialize(root), content_type(soap_ns))


def signed_response(
    soap_ns: str,
    operation: str,
    payload: etree._Element,
    *,
    relates_to: str | None,
    key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    now: datetime,
) -> Reply:
    """The ``<operation>Response`` envelope around ``payload`` (the response element), signed (Rule 3)."""
    root, header, body = _envelope(soap_ns)
    etree.SubElement(header, f"{{{names.WSA}}}Action").text = names.action(operation + "Response")
    etree.SubElement(header, f"{{{names.WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, f"{{{names.WSA}}}RelatesTo").text = relates_to
    etree.SubElement(header, f"{{{names.WSA}}}To").text = names.WSA_ANONYMOUS
    body.append(payload)
    wssecurity.sign(root, key=key, certificate=certificate, now=now)
    return Reply(200, serialize(root), content_type(soap_ns))
