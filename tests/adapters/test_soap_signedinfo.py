"""WS-Security SignedInfo checks (adapters.soap.wssecurity, Rule 2), one named check at a time.

Each test signs a real envelope with a federation member's key (``wssecurity.sign``, X.509 from devpki), breaks
exactly one thing in its SignedInfo, and checks both the named check on its own and the whole ``verify``: the same
error (code, field, detail) either way, so the check is the one that refuses the envelope. The digest values and
the coverage of each reference are not SignedInfo's to judge: the last tests show that xmlsec and the coverage
rule refuse those envelopes after the SignedInfo checks let them through.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from adapters.soap import wssecurity
from adapters.soap.names import DS, EXC_C14N, SOAP11, WSA, WSU
from gateway.core.errors import GatewayError, LimitExceeded
from gateway.core.pki import FederationTrust
from gateway.infra.devpki import create_federation
from gateway.infra.files import load_certificates, load_private_key, load_trust

NOW = datetime.now(UTC)
SKEW = timedelta(minutes=5)
INCLUSIVE_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
SHA1_DIGEST = "http://www.w3.org/2000/09/xmldsig#sha1"


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("signedinfo")
    create_federation(directory)
    return directory


@pytest.fixture(scope="module")
def trust(federation: Path) -> FederationTrust:
    return load_trust(federation / "ca/root-ca.crt", federation / "ca/root-ca.crl", federation / "registry.json")


@pytest.fixture(scope="module")
def signed(federation: Path) -> etree._Element:
    """An envelope signed by NL-DOUANE: Body, Timestamp and the three WS-Addressing headers referenced."""
    root = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soap": SOAP11, "wsa": WSA})
    header = etree.SubElement(root, f"{{{SOAP11}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action").text = "urn:cgw:soap:v1:SubmitManifest"
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = "urn:uuid:0b1c2d3e-0000-4000-8000-000000000001"
    etree.SubElement(header, f"{{{WSA}}}To").text = "urn:cgw:gateway:CN-GACC"
    body = etree.SubElement(root, f"{{{SOAP11}}}Body")
    etree.SubElement(body, "{urn:cgw:soap:v1}Ping").text = "signed"
    member = federation / "members" / "NL-DOUANE"
    wssecurity.sign(
        root,
        key=load_private_key(member / "signing.key"),  # type: ignore[arg-type]
        certificate=load_certificates(member / "signing.crt")[0],
        now=NOW,
    )
    return etree.fromstring(etree.tostring(root))  # as a receiver reads it: from the bytes on the wire


def _signature(root: etree._Element) -> etree._Element:
    found = root.find(f".//{{{DS}}}Signature")
    assert found is not None
    return found


def _signed_info(root: etree._Element) -> etree._Element:
    found = _signature(root).find(f"{{{DS}}}SignedInfo")
    assert found is not None
    return found


def _references(root: etree._Element) -> list[etree._Element]:
    return _signed_info(root).findall(f"{{{DS}}}Reference")


def _verify(root: etree._Element, trust: FederationTrust) -> wssecurity.VerifiedSoap:
    return wssecurity.verify(root, validator=trust, now=NOW, max_skew=SKEW)


def _error(call: Callable[[], object]) -> tuple[str, str | None, str]:
    with pytest.raises(GatewayError) as caught:
        call()
    return caught.value.code, caught.value.field, caught.value.detail


def _broken(
    signed: etree._Element, trust: FederationTrust, check: Callable[[etree._Element], object]
) -> tuple[str, str | None, str]:
    """The error of ``check`` (given the broken envelope), asserted to be the one ``verify`` gives."""
    alone = _error(lambda: check(signed))
    assert _error(lambda: _verify(signed, trust)) == alone
    return alone


def _refused(detail: str) -> tuple[str, str, str]:
    return ("SIGNATURE_INVALID", "Security", detail)


def test_the_signed_envelope_verifies(signed: etree._Element, trust: FederationTrust) -> None:
    verified = _verify(copy.deepcopy(signed), trust)
    assert verified.addressing["To"] == "urn:cgw:gateway:CN-GACC"
    assert len(wssecurity._check_signed_info(_signature(signed))) == 5  # Body, Timestamp, Action, MessageID, To


def test_signed_info_parts_in_their_order(signed: etree._Element, trust: FederationTrust) -> None:
    root = copy.deepcopy(signed)
    info = _signed_info(root)
    info.insert(0, info[1])  # SignatureMethod before CanonicalizationMethod
    error = _broken(root, trust, lambda r: wssecurity._signed_info_parts(_signature(r)))
    assert error == _refused("SignedInfo must be CanonicalizationMethod, SignatureMethod, Reference+")


def test_signed_info_without_references(signed: etree._Element, trust: FederationTrust) -> None:
    root = copy.deepcopy(signed)
    for reference in _references(root):
        _signed_info(root).remove(reference)
    error = _broken(root, trust, lambda r: wssecurity._signed_info_parts(_signature(r)))
    assert error == _refused("SignedInfo must be CanonicalizationMethod, SignatureMethod, Reference+")


def test_canonicalization_must_be_exclusive(signed: etree._Element, trust: FederationTrust) -> None:
    root = copy.deepcopy(signed)
    _signed_info(root)[0].set("Algorithm", INCLUSIVE_C14N)
    error = _broken(root, trust, lambda r: wssecurity._check_canonicalization(_signed_info(r)[0]))
    assert error == _refused("canonicalization must be exclusive C14N without comments")


def test_signature_method_must_be_pinned(signed: etree._Element, trust: FederationTrust) -> None:
    root = copy.deepcopy(signed)
    _signed_info(root)[1].set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    error = _broken(root, trust, lambda r: wssecurity._check_signature_method(_signed_info(r)[1]))
    assert error == _refused("signature method must be ECDSA-SHA256 or RSA-SHA256")


def test_reference_count_is_bounded(signed: etree._Element, trust: FederationTrust) -> None:
    root = copy.deepcopy(signed)
    info = _signed_info(root)
    while len(_references(root)) <= wssecurity.MAX_REFERENCES:
        info.append(copy.deepcopy(_references(root)[0]))
    error = _broken(root, trust, lambda r: wssecurity._check_reference_count(_references(r)))
    assert error == ("LIMIT_EXCEEDED", "Security", f"more than {wssecurity.MAX_REFERENCES} signature references")
    with pytest.raises(LimitExceeded):
        _verify(root, trust)


@pytest.mark.parametrize(
    ("attribute", "value"),
    [("URI", "https://attacker.example/body.xml"), ("URI", "#"), ("URI", ""), ("Type", "urn:x")],
    ids=["external", "empty-id", "no-uri", "extra-attribute"],
)
def test_reference_must_be_a_same_document_id(
    signed: etree._Element, trust: FederationTrust, attribute: str, value: str
) -> None:
    root = copy.deepcopy(signed)
    _references(root)[0].set(attribute, value)
    error = _broken(root, trust, lambda r: wssecurity._reference_id(_references(r)[0]))
    assert error == _refused("each reference must be a same-document #id")


def test_reference_parts(signed: etree._Element, trust: FederationTrust) -> None:
    root = copy.deepcopy(signed)
    reference = _references(root)[1]
    reference.remove(reference.find(f"{{{DS}}}DigestValue"))
    error = _broken(root, trust, lambda r: wssecurity._reference_parts(_references(r)[1]))
    assert error == _refused("a reference is Transforms, DigestMethod, DigestValue")


@pytest.mark.parametrize("wrong", ["second transform", "inclusive c14n"])
def test_reference_has_one_exclusive_c14n_transform(signed: etree._Element, trust: FederationTrust, wrong: str) -> None:
    root = copy.deepcopy(signed)
    transforms = _references(root)[0].find(f"{{{DS}}}Transforms")
    if wrong == "second transform":
        extra = etree.SubElement(transforms, f"{{{DS}}}Transform")
        extra.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#enveloped-signature")
    else:
        assert transforms[0].get("Algorithm") == EXC_C14N
        transforms[0].set("Algorithm", INCLUSIVE_C14N)
    error = _broken(root, trust, lambda r: wssecurity._check_transforms(_references(r)[0].find(f"{{{DS}}}Transforms")))
    assert error == _refused("a reference has exactly one exclusive C14N transform")


def test_digest_method_must_be_sha256(signed: etree._Element, trust: FederationTrust) -> None:
    root = copy.deepcopy(signed)
    _references(root)[2].find(f"{{{DS}}}DigestMethod").set("Algorithm", SHA1_DIGEST)
    error = _broken(root, trust, lambda r: wssecurity._check_digest_method(_references(r)[2][1]))
    assert error == _refused("digest method must be SHA-256")


def test_an_element_referenced_twice(signed: etree._Element, trust: FederationTrust) -> None:
    root = copy.deepcopy(signed)
    _signed_info(root).append(copy.deepcopy(_references(root)[0]))
    error = _broken(
        root, trust, lambda r: wssecurity._check_distinct([wssecurity._reference_id(ref) for ref in _references(r)])
    )
    assert error == _refused("an element is referenced twice")


def test_the_first_fault_wins(signed: etree._Element, trust: FederationTrust) -> None:
    """Two faults in one SignedInfo: the fixed order of the checks decides which one is reported."""
    root = copy.deepcopy(signed)
    _references(root)[0].find(f"{{{DS}}}DigestMethod").set("Algorithm", SHA1_DIGEST)
    _signed_info(root)[1].set("Algorithm", "http://www.w3.org/2000/09/xmldsig#rsa-sha1")
    assert _error(lambda: _verify(root, trust)) == _refused("signature method must be ECDSA-SHA256 or RSA-SHA256")


# -- what SignedInfo lets through, and the later steps refuse ---------------------------------------------------


def test_a_wrong_digest_value_passes_signed_info_and_fails_the_signature(
    signed: etree._Element, trust: FederationTrust
) -> None:
    root = copy.deepcopy(signed)
    digest = _references(root)[0].find(f"{{{DS}}}DigestValue")
    digest.text = "AAAA" + digest.text[4:] if not digest.text.startswith("AAAA") else "BBBB" + digest.text[4:]
    assert len(wssecurity._check_signed_info(_signature(root))) == 5
    assert _error(lambda: _verify(root, trust)) == _refused("WS-Security signature does not verify")


def test_a_missing_reference_passes_signed_info_and_fails_coverage(
    signed: etree._Element, trust: FederationTrust
) -> None:
    root = copy.deepcopy(signed)
    timestamp_id = root.find(f".//{{{WSU}}}Timestamp").get(f"{{{WSU}}}Id")
    (reference,) = [ref for ref in _references(root) if ref.get("URI") == "#" + timestamp_id]
    _signed_info(root).remove(reference)
    assert "#" + timestamp_id not in [ref.get("URI") for ref in _references(root)]
    assert len(wssecurity._check_signed_info(_signature(root))) == 4
    assert _error(lambda: _verify(root, trust)) == _refused("the signature does not cover Timestamp")
