"""WS-Security 1.1 X.509 signatures (xmlsec): signing our messages and verifying the ones we receive.

Verification (``verify``) is the defence against XML signature wrapping; its rules, in order:

Rule 1: exact shape: ``Envelope`` = ``Header`` + ``Body``; the Header holds one ``wsse:Security`` and the
        WS-Addressing headers (``Action``, ``MessageID``, ``To`` required; ``RelatesTo``, ``ReplyTo``, ``From``
        optional, each at most once) and nothing else; Security holds exactly one ``BinarySecurityToken``
        (X.509 v3, base64), one ``wsu:Timestamp`` and one ``ds:Signature``.
Rule 2: the signature is pinned: exclusive C14N (no comments), ECDSA-SHA256 or RSA-SHA256, SHA-256 digests,
        same-document ``#id`` references with exactly one exclusive-C14N transform, the key only from the
        token (``SecurityTokenReference`` to the BST). xmlsec is told which transforms it may run.
Rule 3: every ``Id``-like attribute value in the document is unique; each reference resolves to exactly one
        element, which must be one of: the Body, the Timestamp, a WS-Addressing header, at exactly those
        positions; and ALL of them must be covered. Only those registered elements are handed to xmlsec, and
        the caller reads only the very element objects that were verified (never a fresh search).
Rule 4: the certificate is validated by the federation (``ChainValidator.validate_signing``) before the
        signature is checked with its key.
Rule 5: the Timestamp is fresh: ``Created`` <= now + skew, ``Expires`` > now - skew, lifetime <= 15 minutes.

Signing (``sign``) produces exactly this shape, so the gateway's own responses and deliveries verify under it.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import xmlsec as _xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from adapters.soap.names import BASE64_BINARY, DS, EXC_C14N, SOAP11, SOAP12, WSA, WSSE, WSSE11, WSU, X509_V3
from gateway.core.errors import BadRequest, LimitExceeded, SignatureRejected
from gateway.core.model import CertifiedKey, ChainValidator

# xmlsec's bundled stubs declare neither Transform's constants nor KeyFormat: used as Any, inside this module only.
xmlsec: Any = _xmlsec

# A leaf certificate is ~0.7 KiB DER; 8 KiB allows RSA-4096 with long names, and stops a token used as ballast.
MAX_TOKEN_BYTES: Final = 8 * 1024
# References: Body + Timestamp + at most six WS-Addressing headers.
MAX_REFERENCES: Final = 8
# A Timestamp lives long enough for a slow network and a retry, not for an attacker's archive.
MAX_TIMESTAMP_LIFETIME: Final = timedelta(minutes=15)
DEFAULT_TIMESTAMP_LIFETIME: Final = timedelta(minutes=5)

REQUIRED_WSA: Final = ("Action", "MessageID", "To")
OPTIONAL_WSA: Final = ("RelatesTo", "ReplyTo", "From")
_SIGNATURE_METHODS: Final = {
    xmlsec.Transform.ECDSA_SHA256.href: xmlsec.Transform.ECDSA_SHA256,
    xmlsec.Transform.RSA_SHA256.href: xmlsec.Transform.RSA_SHA256,
}
_ID_ATTRIBUTES: Final = frozenset({"Id", "ID", "id"})
_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


@dataclass(frozen=True, slots=True)
class VerifiedSoap:
    """A SOAP message whose WS-Security signature verified: the covered elements and who signed them.

    ``body`` and ``addressing`` are the exact element objects xmlsec verified (Rule 3)."""

    soap_ns: str
    body: etree._Element
    addressing: dict[str, str]  # WS-Addressing local name -> text (Action, MessageID, To, RelatesTo ...)
    created: datetime
    expires: datetime
    certified: CertifiedKey
    certificate: bytes  # DER of the signer's certificate (from the BinarySecurityToken)


# -- helpers --------------------------------------------------------------------------------------------------


def _children(element: etree._Element) -> list[etree._Element]:
    return [c for c in element if isinstance(c.tag, str)]


def _refuse(detail: str, field: str = "Security") -> SignatureRejected:
    return SignatureRejected(detail, field=field)


def _only(parent: etree._Element, tag: str, what: str) -> etree._Element:
    found = [c for c in _children(parent) if c.tag == tag]
    if len(found) != 1:
        raise _refuse(f"exactly one {what} is required, found {len(found)}")
    return found[0]


def _parse_time(text: str | None, where: str) -> datetime:
    value = (text or "").strip()
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise _refuse("timestamp must be UTC xs:dateTime ending in Z", where)


def envelope_parts(root: etree._Element) -> tuple[str, etree._Element, etree._Element]:
    """(SOAP namespace, Header, Body) of an envelope of exactly that shape (Rule 1)."""
    soap_ns = etree.QName(root).namespace or ""
    if soap_ns not in (SOAP11, SOAP12) or etree.QName(root).localname != "Envelope":
        raise BadRequest("not a SOAP 1.1 or 1.2 Envelope", field="Envelope")
    children = _children(root)
    if [c.tag for c in children] != [_q(soap_ns, "Header"), _q(soap_ns, "Body")]:
        raise BadRequest("the Envelope must contain exactly a Header and a Body", field="Envelope")
    if (root.text or "").strip() or any((c.tail or "").strip() for c in children):
        raise BadRequest("text is not allowed in the Envelope", field="Envelope")
    return soap_ns, children[0], children[1]


def _unique_ids(root: etree._Element) -> dict[str, etree._Element]:
    ids: dict[str, etree._Element] = {}
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            if etree.QName(name).localname in _ID_ATTRIBUTES:
                if value in ids:
                    raise _refuse(f"duplicate id {value[:40]!r}")
                ids[value] = element
    return ids


# -- verification ---------------------------------------------------------------------------------------------


# SignedInfo (Rule 2): each check below refuses one way a SignedInfo or one of its references can be wrong;
# _check_signed_info runs them in a fixed order, so the first fault found is always the same one.


def _signed_info_parts(signature: etree._Element) -> tuple[etree._Element, etree._Element, list[etree._Element]]:
    """(CanonicalizationMethod, SignatureMethod, references) of the one SignedInfo, in that order."""
    signed_info = _only(signature, _q(DS, "SignedInfo"), "SignedInfo")
    parts = _children(signed_info)
    if len(parts) < 3 or parts[0].tag != _q(DS, "CanonicalizationMethod") or parts[1].tag != _q(DS, "SignatureMethod"):
        raise _refuse("SignedInfo must be CanonicalizationMethod, SignatureMethod, Reference+")
    return parts[0], parts[1], parts[2:]


def _check_canonicalization(method: etree._Element) -> None:
    if method.get("Algorithm") != EXC_C14N or _children(method):
        raise _refuse("canonicalization must be exclusive C14N without comments")


def _check_signature_method(method: etree._Element) -> None:
    if method.get("Algorithm") not in _SIGNATURE_METHODS or _children(method):
        raise _refuse("signature method must be ECDSA-SHA256 or RSA-SHA256")


def _check_reference_count(references: Sequence[etree._Element]) -> None:
    if len(references) > MAX_REFERENCES:
        raise LimitExceeded(f"more than {MAX_REFERENCES} signature references", field="Security")


def _reference_id(reference: etree._Element) -> str:
    """The id a ``ds:Reference`` points at: a same-document ``#id``, the Reference carrying only URI and Id."""
    uri = reference.get("URI") or ""
    if (
        reference.tag != _q(DS, "Reference")
        or not uri.startswith("#")
        or len(uri) < 2
        or set(reference.keys()) - {"URI", "Id"}
    ):
        raise _refuse("each reference must be a same-document #id")
    return uri[1:]


def _reference_parts(reference: etree._Element) -> tuple[etree._Element, etree._Element]:
    """(Transforms, DigestMethod) of a reference that is exactly Transforms, DigestMethod, DigestValue."""
    inner = _children(reference)
    if [c.tag for c in inner] != [_q(DS, "Transforms"), _q(DS, "DigestMethod"), _q(DS, "DigestValue")]:
        raise _refuse("a reference is Transforms, DigestMethod, DigestValue")
    return inner[0], inner[1]


def _check_transforms(transforms: etree._Element) -> None:
    steps = _children(transforms)
    if len(steps) != 1 or steps[0].get("Algorithm") != EXC_C14N:
        raise _refuse("a reference has exactly one exclusive C14N transform")


def _check_digest_method(method: etree._Element) -> None:
    if method.get("Algorithm") != xmlsec.Transform.SHA256.href:
        raise _refuse("digest method must be SHA-256")


def _check_reference(reference: etree._Element) -> str:
    """Every check of one reference; the id it points at."""
    target = _reference_id(reference)
    transforms, digest_method = _reference_parts(reference)
    _check_transforms(transforms)
    _check_digest_method(digest_method)
    return target


def _check_distinct(ids: Sequence[str]) -> None:
    if len(set(ids)) != len(ids):
        raise _refuse("an element is referenced twice")


def _check_signed_info(signature: etree._Element) -> list[str]:
    """The ids the SignedInfo references, after every check above (Rule 2); the digests are xmlsec's to check."""
    canonicalization, signature_method, references = _signed_info_parts(signature)
    _check_canonicalization(canonicalization)
    _check_signature_method(signature_method)
    _check_reference_count(references)
    ids = [_check_reference(reference) for reference in references]
    _check_distinct(ids)
    return ids


def _token(security: etree._Element, signature: etree._Element) -> bytes:
    token = _only(security, _q(WSSE, "BinarySecurityToken"), "BinarySecurityToken")
    if token.get("ValueType") != X509_V3 or token.get("EncodingType") != BASE64_BINARY:
        raise _refuse("the token must be an X.509 v3 certificate in base64")
    key_info = _only(signature, _q(DS, "KeyInfo"), "KeyInfo")
    reference = _only(
        _only(key_info, _q(WSSE, "SecurityTokenReference"), "SecurityTokenReference"),
        _q(WSSE, "Reference"),
        "token Reference",
    )
    token_id = token.get(_q(WSU, "Id"))
    if not token_id or reference.get("URI") != "#" + token_id:
        raise _refuse("the signature key must be the BinarySecurityToken")
    text = "".join((token.text or "").split())
    if len(text) > MAX_TOKEN_BYTES * 4 // 3 + 4:
        raise LimitExceeded(f"certificate token larger than {MAX_TOKEN_BYTES} bytes", field="Security")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise _refuse("the token is not base64") from None


def _header_parts(header: etree._Element) -> tuple[etree._Element, dict[str, etree._Element]]:
    security = None
    addressing: dict[str, etree._Element] = {}
    for child in _children(header):
        qname = etree.QName(child)
        if child.tag == _q(WSSE, "Security") and security is None:
            security = child
        elif qname.namespace == WSA and qname.localname in REQUIRED_WSA + OPTIONAL_WSA:
            if qname.localname in addressing:
                raise _refuse(f"WS-Addressing {qname.localname} occurs twice", qname.localname)
            addressing[qname.localname] = child
        else:
            raise BadRequest(f"header {qname.localname[:40]!r} is not understood", field="Header")
    if security is None:
        raise _refuse("a wsse:Security header is required")
    for name in REQUIRED_WSA:
        if name not in addressing:
            raise _refuse(f"WS-Addressing {name} is required", name)
    allowed = {_q(WSSE, "BinarySecurityToken"), _q(WSU, "Timestamp"), _q(DS, "Signature")}
    if any(c.tag not in allowed for c in _children(security)):
        raise _refuse("unexpected element in the Security header")
    return security, addressing


def _covered(root: etree._Element, uris: list[str], must_cover: dict[str, etree._Element]) -> list[etree._Element]:
    """The referenced elements (Rule 3): each resolves once, is one of ``must_cover``, and all are covered."""
    ids = _unique_ids(root)
    by_identity = {id(element): role for role, element in must_cover.items()}
    covered: dict[str, etree._Element] = {}
    for uri in uris:
        target = ids.get(uri)
        if target is None or target.get(_q(WSU, "Id")) != uri:
            raise _refuse("a reference does not resolve to a wsu:Id")
        role = by_identity.get(id(target))
        if role is None:
            raise _refuse("a reference covers an element other than Body, Timestamp or WS-Addressing")
        covered[role] = target
    missing = sorted(set(must_cover) - set(covered))
    if missing:
        raise _refuse(f"the signature does not cover {', '.join(missing)}")
    return list(covered.values())


def _check_signature(signature: etree._Element, certificate: bytes, covered: list[etree._Element]) -> None:
    ctx = xmlsec.SignatureContext()
    ctx.key = xmlsec.Key.from_memory(certificate, xmlsec.KeyFormat.CERT_DER)
    for transform in (xmlsec.Transform.EXCL_C14N, xmlsec.Transform.SHA256):
        ctx.enable_reference_transform(transform)
    for transform in (xmlsec.Transform.EXCL_C14N, *_SIGNATURE_METHODS.values(), xmlsec.Transform.SHA256):
        ctx.enable_signature_transform(transform)
    for element in covered:
        ctx.register_id(element, "Id", WSU)
    try:
        ctx.verify(signature)
    except xmlsec.Error:
        raise SignatureRejected("WS-Security signature does not verify", field="Security") from None


def _freshness(timestamp: etree._Element, now: datetime, max_skew: timedelta) -> tuple[datetime, datetime]:
    created = _parse_time(_only(timestamp, _q(WSU, "Created"), "Created").text, "Timestamp.Created")
    expires = _parse_time(_only(timestamp, _q(WSU, "Expires"), "Expires").text, "Timestamp.Expires")
    if created > now + max_skew:
        raise _refuse("Timestamp Created is in the future", "Timestamp.Created")
    if expires <= now - max_skew:
        raise _refuse("Timestamp has expired", "Timestamp.Expires")
    if not timedelta(0) < expires - created <= MAX_TIMESTAMP_LIFETIME:
        raise _refuse(f"Timestamp lifetime must be within {MAX_TIMESTAMP_LIFETIME}", "Timestamp.Expires")
    return created, expires


def _addressing_texts(addressing: dict[str, etree._Element]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for name, element in addressing.items():
        if name in ("ReplyTo", "From"):
            texts[name] = "".join(element.itertext()).strip()
        else:
            if _children(element):
                raise BadRequest(f"WS-Addressing {name} is a text value", field=name)
            texts[name] = (element.text or "").strip()
    return texts


def verify(root: etree._Element, *, validator: ChainValidator, now: datetime, max_skew: timedelta) -> VerifiedSoap:
    """Verify the WS-Security signature of an envelope under Rules 1-5 and return what it covers."""
    soap_ns, header, body = envelope_parts(root)
    security, addressing = _header_parts(header)
    timestamp = _only(security, _q(WSU, "Timestamp"), "Timestamp")
    signature = _only(security, _q(DS, "Signature"), "Signature")
    uris = _check_signed_info(signature)
    certificate = _token(security, signature)
    covered = _covered(root, uris, {"Body": body, "Timestamp": timestamp} | addressing)
    certified = validator.validate_signing([certificate], now)  # Rule 4: the federation first
    _check_signature(signature, certificate, covered)
    created, expires = _freshness(timestamp, now, max_skew)
    return VerifiedSoap(
        soap_ns=soap_ns,
        body=body,
        addressing=_addressing_texts(addressing),
        created=created,
        expires=expires,
        certified=certified,
        certificate=certificate,
    )


# -- signing --------------------------------------------------------------------------------------------------


def _ensure_id(element: etree._Element, prefix: str) -> str:
    existing = element.get(_q(WSU, "Id"))
    if existing:
        return str(existing)
    value = f"{prefix}-{uuid.uuid4().hex}"
    element.set(_q(WSU, "Id"), value)
    return value


def sign(
    root: etree._Element,
    *,
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    certificate: x509.Certificate,
    now: datetime,
    lifetime: timedelta = DEFAULT_TIMESTAMP_LIFETIME,
) -> None:
    """Add a wsse:Security header (BST, Timestamp, Signature over Body, Timestamp and every WS-Addressing
    header) to the envelope ``root`` in place."""
    soap_ns = etree.QName(root).namespace or ""
    body = root.find(_q(soap_ns, "Body"))
    if body is None:
        raise ValueError("the envelope needs a Body")
    header = root.find(_q(soap_ns, "Header"))
    if header is None:
        header = etree.Element(_q(soap_ns, "Header"))
        body.addprevious(header)
    security = etree.SubElement(header, _q(WSSE, "Security"), nsmap={"wsse": WSSE, "wsu": WSU, "wsse11": WSSE11})
    security.set(_q(soap_ns, "mustUnderstand"), "1" if soap_ns == SOAP11 else "true")
    token = etree.SubElement(security, _q(WSSE, "BinarySecurityToken"), ValueType=X509_V3, EncodingType=BASE64_BINARY)
    token.text = base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")
    token_id = _ensure_id(token, "X509")
    timestamp = etree.SubElement(security, _q(WSU, "Timestamp"))
    etree.SubElement(timestamp, _q(WSU, "Created")).text = now.astimezone(UTC).strftime(_TIME_FORMAT)
    etree.SubElement(timestamp, _q(WSU, "Expires")).text = (now + lifetime).astimezone(UTC).strftime(_TIME_FORMAT)
    method = (
        xmlsec.Transform.ECDSA_SHA256 if isinstance(key, ec.EllipticCurvePrivateKey) else xmlsec.Transform.RSA_SHA256
    )
    signature = xmlsec.template.create(root, xmlsec.Transform.EXCL_C14N, method)
    security.append(signature)
    targets: Sequence[etree._Element] = [
        body,
        timestamp,
        *(c for c in _children(header) if etree.QName(c).namespace == WSA),
    ]
    ctx = xmlsec.SignatureContext()
    for target in targets:
        reference = xmlsec.template.add_reference(
            signature, xmlsec.Transform.SHA256, uri="#" + _ensure_id(target, "id")
        )
        xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
        ctx.register_id(target, "Id", WSU)
    key_info = xmlsec.template.ensure_key_info(signature)
    reference_holder = etree.SubElement(key_info, _q(WSSE, "SecurityTokenReference"))
    etree.SubElement(reference_holder, _q(WSSE, "Reference"), URI="#" + token_id, ValueType=X509_V3)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    ctx.key = xmlsec.Key.from_memory(pem, xmlsec.KeyFormat.PEM)
    ctx.sign(signature)
