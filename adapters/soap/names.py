"""Namespaces, the service's operations and their WS-Addressing actions: the SOAP contract's fixed names.

Rule 1: one operation per message type (``Submit<ProtoMessageName>``), plus ``GetStatus``, ``PullInbox`` and
        ``AckInbox``; ``Deliver`` is the separate delivery contract members implement; the table is derived from
        ``gateway.core.payloads.MESSAGE_TYPES`` so a new message type needs no edit here.
Rule 2: the WS-Addressing action of an operation is ``ACTION_BASE + name``; the response's is the same with
        ``Response`` appended.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from gateway.core.payloads import MESSAGE_TYPES, MessageTypeSpec

SOAP11: Final = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12: Final = "http://www.w3.org/2003/05/soap-envelope"
WSSE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSSE11: Final = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd"
WSU: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS: Final = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N: Final = "http://www.w3.org/2001/10/xml-exc-c14n#"
WSA: Final = "http://www.w3.org/2005/08/addressing"
WSAM: Final = "http://www.w3.org/2007/05/addressing/metadata"
CGW: Final = "urn:cgw:soap:v1"
X509_V3: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"
BASE64_BINARY: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"

ACTION_BASE: Final = "urn:cgw:soap:v1:"
SOAP_PATH: Final = "/soap/v1"

# Media type of a SOAP 1.1 request (text/xml) and of SOAP 1.2 (application/soap+xml).
MEDIA_SOAP11: Final = "text/xml"
MEDIA_SOAP12: Final = "application/soap+xml"

QUERY_OPERATIONS: Final = ("GetStatus", "PullInbox", "AckInbox")
# The operation a member's own SOAP endpoint implements to receive pushed messages (``?wsdl=delivery``).
DELIVERY_OPERATIONS: Final = ("Deliver",)
WSA_ANONYMOUS: Final = "http://www.w3.org/2005/08/addressing/anonymous"


def submit_operation(spec: MessageTypeSpec) -> str:
    """``SubmitCargoManifest`` for cgw.v1.CargoManifest."""
    return "Submit" + spec.message.DESCRIPTOR.name


def action(operation: str) -> str:
    return ACTION_BASE + operation


def _submit_table() -> Mapping[str, MessageTypeSpec]:
    return MappingProxyType({submit_operation(spec): spec for spec in MESSAGE_TYPES.values()})


SUBMIT_OPERATIONS: Final = _submit_table()
