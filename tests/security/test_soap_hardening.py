"""Hostile SOAP input: hardened parsing (XXE, billion laughs, external DTD, oversized, deeply nested), XML
signature wrapping, comment injection, unsigned headers, stale timestamps and untrusted certificates.

Everything goes through the real verifier the pipeline uses (``SoapDocumentVerifier``) with a real federation."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from lxml import etree

from adapters.soap import names
from adapters.soap.composer import compose_submission
from adapters.soap.document import MAX_XML_DEPTH, parse_document
from adapters.soap.submission import SoapDocumentVerifier
from gateway.core.envelope import SignedClaims
from gateway.core.errors import GatewayError
from gateway.core.pki import FederationTrust
from gateway.demo.samples import cargo_manifest
from gateway.infra.devpki import create_federation
from gateway.infra.files import load_certificates, load_private_key, load_trust
from gateway.wire.cgw.v1 import manifest_pb2

AUDIENCE = "urn:cgw:gateway:CN-GACC"
SKEW = timedelta(minutes=5)


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("soapfed")
    create_federation(directory)
    return directory


@pytest.fixture(scope="module")
def trust(federation: Path) -> FederationTrust:
    return load_trust(federation / "ca/root-ca.crt", federation / "ca/root-ca.crl", federation / "registry.json")


def _signed(federation: Path, member: str = "NL-DOUANE", *, stem: str = "signing", **kwargs: Any) -> bytes:
    base = federation / "members" / member
    manifest = json_format.ParseDict(cargo_manifest(), manifest_pb2.CargoManifest())
    _, body = compose_submission(
        manifest,
        sender=kwargs.pop("sender", member),
        to=["CN-GACC"],
        address=AUDIENCE,
        key=load_private_key(base / f"{stem}.key"),  # type: ignore[arg-type]
        certificate=load_certificates(base / f"{stem}.crt")[0],
        **kwargs,
    )
    return body


def _verify(trust: FederationTrust, data: bytes) -> SignedClaims:
    return SoapDocumentVerifier().verify(
        data, audiences=[AUDIENCE], validator=trust, now=datetime.now(UTC), max_skew=SKEW
    )


def _refused(trust: FederationTrust, data: bytes) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        _verify(trust, data)
    return caught.value


def _tree(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def _bytes(root: etree._Element) -> bytes:
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


# -- the baseline -----------------------------------------------------------------------------------------------


def test_a_signed_submission_verifies_and_reads_only_signed_values(federation: Path, trust: FederationTrust) -> None:
    data = _signed(federation)
    claims = _verify(trust, data)
    assert claims.header.sender == "NL-DOUANE" and claims.header.to == ("CN-GACC",)
    assert claims.certified.member_id == "NL-DOUANE" and claims.evidence == data.decode()
    assert manifest_pb2.CargoManifest.FromString(claims.payload).vessel.imo == "9811000"


# -- hardened parsing ----------------------------------------------------------------------------------------------

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&xxe;</soap:Body></soap:Envelope>"""
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&lol3;</soap:Body></soap:Envelope>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body/></soap:Envelope>"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd"> %remote;]><x/>"""
UTF16_DTD = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'.encode("utf-16")


@pytest.mark.parametrize(
    "document",
    [XXE, BILLION_LAUGHS, EXTERNAL_DTD, PARAMETER_ENTITY],
    ids=["xxe", "billion-laughs", "external-dtd", "parameter-entity"],
)
def test_any_dtd_is_refused_before_anything_is_resolved(document: bytes) -> None:
    with pytest.raises(GatewayError) as caught:
        parse_document(document)
    assert caught.value.code == "MALFORMED_REQUEST" and "DTD" in caught.value.detail


def test_non_utf8_documents_are_refused() -> None:
    with pytest.raises(GatewayError) as caught:
        parse_document(UTF16_DTD)
    assert caught.value.code == "MALFORMED_REQUEST"


def test_oversized_documents_are_refused_before_parsing() -> None:
    with pytest.raises(GatewayError) as caught:
        parse_document(b"<a>" + b"x" * 2048 + b"</a>", max_bytes=1024)
    assert caught.value.code == "LIMIT_EXCEEDED"


def test_deeply_nested_documents_are_refused() -> None:
    depth = MAX_XML_DEPTH + 1
    assert parse_document(b"<a>" * (depth - 1) + b"</a>" * (depth - 1)) is not None
    with pytest.raises(GatewayError) as caught:
        parse_document(b"<a>" * depth + b"</a>" * depth)
    assert caught.value.code == "LIMIT_EXCEEDED"
    with pytest.raises(GatewayError) as caught:  # far beyond: libxml2's own guard, still a clean refusal
        parse_document(b"<a>" * 100_000 + b"</a>" * 100_000)
    assert caught.value.code in {"LIMIT_EXCEEDED", "MALFORMED_REQUEST"}


def test_processing_instructions_are_refused() -> None:
    with pytest.raises(GatewayError):
        parse_document(b"<a><?xml-stylesheet href='http://x/'?></a>")


# -- signature wrapping, comments, coverage --------------------------------------------------------------------


def test_comment_injected_into_a_signed_value_is_refused(federation: Path, trust: FederationTrust) -> None:
    data = _signed(federation).replace(b"<cgw:from>NL-DOUANE</cgw:from>", b"<cgw:from>NL-<!-- -->DOUANE</cgw:from>")
    assert b"<!-- -->" in data
    assert _refused(trust, data).code == "MALFORMED_REQUEST"


def test_wrapping_the_signed_body_and_adding_a_forged_one_is_refused(federation: Path, trust: FederationTrust) -> None:
    root = _tree(_signed(federation))
    soap_ns = etree.QName(root).namespace
    body = root.find(_q(soap_ns, "Body"))
    forged = copy.deepcopy(body)
    del forged.attrib[_q(names.WSU, "Id")]
    forged.find(f".//{{{names.CGW}}}voyageNumber").text = "FORGED"
    # classic XSW: the signed Body moves into a header wrapper, a forged Body takes its place
    wrapper = etree.SubElement(root.find(_q(soap_ns, "Header")), _q("urn:attacker", "Wrapper"))
    wrapper.append(body)
    root.append(forged)
    assert _refused(trust, _bytes(root)).code in {"SIGNATURE_INVALID", "MALFORMED_REQUEST"}


def test_the_signed_body_hidden_in_the_security_header_is_refused(federation: Path, trust: FederationTrust) -> None:
    root = _tree(_signed(federation))
    soap_ns = etree.QName(root).namespace
    body = root.find(_q(soap_ns, "Body"))
    forged = copy.deepcopy(body)
    del forged.attrib[_q(names.WSU, "Id")]
    forged.find(f".//{{{names.CGW}}}voyageNumber").text = "FORGED"
    security = root.find(f".//{{{names.WSSE}}}Security")
    etree.SubElement(security, _q("urn:attacker", "Wrapper")).append(body)
    root.append(forged)
    err = _refused(trust, _bytes(root))
    assert err.code == "SIGNATURE_INVALID" and "unexpected element" in err.detail


def test_a_second_element_with_the_signed_id_is_refused(federation: Path, trust: FederationTrust) -> None:
    root = _tree(_signed(federation))
    soap_ns = etree.QName(root).namespace
    body = root.find(_q(soap_ns, "Body"))
    forged = copy.deepcopy(body[0])
    forged.set(_q(names.WSU, "Id"), body.get(_q(names.WSU, "Id")))
    body[0].find(f".//{{{names.CGW}}}document").append(forged)  # somewhere inside the signed body
    err = _refused(trust, _bytes(root))
    assert err.code in {"SIGNATURE_INVALID", "SCHEMA_INVALID"}


def test_a_forged_body_with_the_signed_id_is_refused(federation: Path, trust: FederationTrust) -> None:
    root = _tree(_signed(federation))
    soap_ns = etree.QName(root).namespace
    body = root.find(_q(soap_ns, "Body"))
    body.find(f".//{{{names.CGW}}}voyageNumber").text = "FORGED"
    assert _refused(trust, _bytes(root)).code == "SIGNATURE_INVALID"


def test_an_unsigned_addressing_header_is_refused(federation: Path, trust: FederationTrust) -> None:
    root = _tree(_signed(federation))
    header = root.find(_q(etree.QName(root).namespace, "Header"))
    etree.SubElement(header, _q(names.WSA, "ReplyTo")).text = "https://attacker.example/"
    err = _refused(trust, _bytes(root))
    assert err.code == "SIGNATURE_INVALID" and "ReplyTo" in err.detail


def test_a_changed_signed_to_address_is_refused(federation: Path, trust: FederationTrust) -> None:
    data = _signed(federation)
    assert _refused(trust, data.replace(AUDIENCE.encode(), b"urn:cgw:gateway:DE-ZOLL")).code == "SIGNATURE_INVALID"


def test_an_unknown_header_is_refused(federation: Path, trust: FederationTrust) -> None:
    root = _tree(_signed(federation))
    header = root.find(_q(etree.QName(root).namespace, "Header"))
    etree.SubElement(header, _q("urn:x", "Extra")).text = "x"
    assert _refused(trust, _bytes(root)).code == "MALFORMED_REQUEST"


def test_a_weak_signature_method_is_refused(federation: Path, trust: FederationTrust) -> None:
    data = _signed(federation).replace(
        b"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256", b"http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    )
    assert _refused(trust, data).code == "SIGNATURE_INVALID"


# -- time and certificates -------------------------------------------------------------------------------------


def test_an_expired_timestamp_is_refused(federation: Path, trust: FederationTrust) -> None:
    err = _refused(trust, _signed(federation, signed_at=datetime.now(UTC) - timedelta(hours=1)))
    assert err.code == "SIGNATURE_INVALID" and err.field == "Timestamp.Expires"


def test_a_future_timestamp_is_refused(federation: Path, trust: FederationTrust) -> None:
    err = _refused(trust, _signed(federation, signed_at=datetime.now(UTC) + timedelta(hours=1)))
    assert err.field == "Timestamp.Created"


def test_a_revoked_certificate_is_refused(federation: Path, trust: FederationTrust) -> None:
    assert _refused(trust, _signed(federation, stem="revoked-signing")).code == "CERT_REVOKED"


def test_a_certificate_from_another_federation_is_refused(
    federation: Path, trust: FederationTrust, tmp_path: Path
) -> None:
    create_federation(tmp_path)
    assert _refused(trust, _signed(tmp_path)).code == "CERT_UNTRUSTED"


def test_a_tls_client_certificate_cannot_sign(federation: Path, trust: FederationTrust) -> None:
    assert _refused(trust, _signed(federation, stem="tls-client")).code == "CERT_UNTRUSTED"


def test_a_message_for_another_service_is_refused(federation: Path, trust: FederationTrust) -> None:
    with pytest.raises(GatewayError) as caught:
        SoapDocumentVerifier().verify(
            _signed(federation),
            audiences=["https://elsewhere/soap/v1"],
            validator=trust,
            now=datetime.now(UTC),
            max_skew=SKEW,
        )
    assert caught.value.field == "To"
