"""SOAP submissions: a WS-Security-verified envelope becomes the pipeline's ``SignedClaims``.

Rule 1: only the elements the signature covers are read: the Body object and the WS-Addressing values that
        ``wssecurity.verify`` returns (never a new search of the document).
Rule 2: the Body holds exactly one ``Submit<Message>`` element: ``header`` (from, to+, tlp, program?, created,
        expires, correlation?) then ``document`` (the business document, read by ``mapping``).
Rule 3: the message id is the WS-Addressing ``MessageID`` (``urn:uuid:<lowercase uuid>``), so WS-Addressing
        drives duplicate detection; ``Action`` must be the operation's action and ``To`` one of the gateway's
        addresses (a message signed for another service is refused).
Rule 4: the payload handed to the pipeline is the document as deterministic protobuf
        (``application/protobuf``); the header binds it by SHA-256 like a JWS header does, and the evidence is
        the exact signed envelope as received.
Rule 5: stored evidence (a forward's original) is re-read the same way, from the covered elements, its signature
        checked again with the embedded certificate; what was judged at acceptance is not judged again (the
        signer's federation validation, since a later revocation must not make accepted evidence unreadable;
        freshness, evaluated at the acceptance time; the ``To`` address). Evidence that does not read back is
        ``Internal`` (a corrupt store), never a caller error.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from cryptography import x509
from lxml import etree

from adapters.soap import document as xml_document
from adapters.soap import mapping, names, wssecurity
from gateway.core.envelope import SignedClaims, parse_header
from gateway.core.errors import BadRequest, GatewayError, HeaderInvalid, Internal, SignatureRejected
from gateway.core.model import CertificateRef, CertifiedKey, ChainValidator, Header
from gateway.core.payloads import MEDIA_PROTOBUF, MessageTypeSpec
from gateway.core.pki import certificate_fingerprint

_MESSAGE_ID: Final = re.compile(r"urn:uuid:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
_HEADER_ORDER: Final = ("from", "to", "tlp", "program", "created", "expires", "correlation")
_HEADER_REQUIRED: Final = frozenset({"from", "to", "tlp", "created", "expires"})
# Stored evidence: freshness is judged at the acceptance time (Rule 5); this only absorbs the skew allowed then.
STORED_SKEW: Final = timedelta(days=1)


def body_operation(body: etree._Element) -> tuple[str, etree._Element]:
    """The single operation element of a Body, with its local name (``SubmitCargoManifest``)."""
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1 or (body.text or "").strip() or (children[0].tail or "").strip():
        raise BadRequest("the Body must contain exactly one operation element", field="Body")
    qname = etree.QName(children[0])
    if qname.namespace != names.CGW:
        raise BadRequest(f"unknown operation {qname.localname[:40]!r}", field="Body")
    return qname.localname, children[0]


def _time_text(element: etree._Element, where: str) -> str:
    stamp = mapping.read_timestamp(element.text or "", where, error=HeaderInvalid)
    return mapping.format_timestamp(stamp, micro=True)


def read_header(element: etree._Element) -> dict[str, Any]:
    """The ``header`` element as the JSON object of an envelope header (without id, type and payload)."""
    if element.attrib or (element.text or "").strip():
        raise HeaderInvalid("header has no attributes or text", field="header")
    out: dict[str, Any] = {}
    position = 0
    for child in element:
        if not isinstance(child.tag, str):  # pragma: no cover - comments are refused when parsing
            continue
        qname = etree.QName(child)
        name = qname.localname
        if qname.namespace != names.CGW or name not in _HEADER_ORDER:
            raise HeaderInvalid(f"unknown header element {name[:40]!r}", field=name[:40])
        index = _HEADER_ORDER.index(name)
        if index < position or (name != "to" and name in out):
            raise HeaderInvalid("header elements follow the schema order, each once", field=name)
        position = index
        if child.attrib or len(child) or (child.tail or "").strip():
            raise HeaderInvalid("a header value is plain text", field=name)
        text = child.text or ""
        if name == "to":
            out.setdefault("to", []).append(text)
        elif name in ("created", "expires"):
            out[name] = _time_text(child, name)
        else:
            out[name] = text
    for name in sorted(_HEADER_REQUIRED - set(out)):
        raise HeaderInvalid("required element is missing", field=name)
    return out


def read_submission(
    verified: wssecurity.VerifiedSoap, spec: MessageTypeSpec, operation: str, element: etree._Element
) -> tuple[dict[str, Any], bytes]:
    """(header JSON object, payload bytes) of a verified ``Submit*`` operation element (Rules 1-4)."""
    if verified.addressing.get("Action") != names.action(operation):
        raise SignatureRejected("WS-Addressing Action does not match the operation", field="Action")
    match = _MESSAGE_ID.fullmatch(verified.addressing.get("MessageID", ""))
    if match is None:
        raise HeaderInvalid("MessageID must be urn:uuid:<lowercase UUID>", field="MessageID")
    parts = [c for c in element if isinstance(c.tag, str)]
    if [etree.QName(c).localname for c in parts] != ["header", "document"] or element.attrib:
        raise BadRequest(f"{operation} holds exactly header and document", field=operation)
    if any(etree.QName(c).namespace != names.CGW for c in parts) or (element.text or "").strip():
        raise BadRequest(f"{operation} holds exactly header and document", field=operation)
    header = read_header(parts[0])
    message = mapping.read_document(parts[1], spec.message)
    payload = message.SerializeToString(deterministic=True)
    header.update(
        id=match.group(1),
        type=spec.type,
        payload={
            "media": MEDIA_PROTOBUF,
            "schema": spec.schema,
            "sha256": hashlib.sha256(payload).hexdigest(),
            "size": len(payload),
        },
    )
    return header, payload


class SoapDocumentVerifier:
    """The pipeline's ``DocumentVerifier`` for the ``soap`` adapter kind."""

    kind: Final = "soap"

    def __init__(self, *, max_bytes: int = xml_document.MAX_DOCUMENT_BYTES) -> None:
        self._max_bytes = max_bytes

    def verify(
        self,
        unverified: bytes,
        *,
        audiences: Sequence[str],
        validator: ChainValidator,
        now: datetime,
        max_skew: timedelta,
    ) -> SignedClaims:
        root = xml_document.parse_document(unverified, max_bytes=self._max_bytes)
        verified = wssecurity.verify(root, validator=validator, now=now, max_skew=max_skew)
        if verified.addressing.get("To") not in audiences:
            raise SignatureRejected("the message is addressed to another service", field="To")
        operation, element = body_operation(verified.body)
        spec = names.SUBMIT_OPERATIONS.get(operation)
        if spec is None:
            raise BadRequest(f"{operation[:40]} is not a submit operation", field="Body")
        header_json, payload = read_submission(verified, spec, operation, element)
        return SignedClaims(
            header=parse_header(header_json),
            payload=payload,
            evidence=unverified.decode("utf-8"),
            certified=verified.certified,
        )

    def stored_header(self, evidence: str, *, accepted_at: datetime) -> Header | None:
        """The header of a SOAP envelope this gateway accepted at ``accepted_at`` (Rule 5); None for a JWS."""
        if not evidence.lstrip().startswith("<"):  # a JWS compact string is never XML
            return None
        try:
            raw = evidence.encode("utf-8")
            root = xml_document.parse_document(raw, max_bytes=len(raw))  # within the bound when accepted
            verified = wssecurity.verify(root, validator=_AcceptedSigner(), now=accepted_at, max_skew=STORED_SKEW)
            operation, element = body_operation(verified.body)
            spec = names.SUBMIT_OPERATIONS.get(operation)
            if spec is None:
                raise BadRequest(f"{operation[:40]} is not a submit operation", field="Body")
            header_json, _ = read_submission(verified, spec, operation, element)
            return parse_header(header_json)
        except (GatewayError, ValueError) as exc:
            raise Internal(f"stored SOAP evidence does not read back ({type(exc).__name__})") from exc


class _AcceptedSigner:
    """``ChainValidator`` for evidence accepted earlier (Rule 5): certifies the embedded certificate as it is."""

    def validate_signing(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        leaf = x509.load_der_x509_certificate(chain[0])
        return CertifiedKey(
            member_id="",
            fingerprint=certificate_fingerprint(leaf),
            public_key=leaf.public_key(),
            not_after=leaf.not_valid_after_utc,
            serial=leaf.serial_number,
            issuer="",
        )

    def validate_client(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        raise Internal("stored evidence has no TLS client chain")

    def recheck(self, certificate: CertificateRef, member_id: str, at: datetime) -> None:
        raise Internal("stored evidence is not rechecked")
