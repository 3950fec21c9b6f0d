"""Hardened XML parsing: the ONE place where untrusted XML becomes an lxml tree.

Rule 1: bound before parsing: at most ``max_bytes`` (the caller's body limit, never above
        :data:`MAX_DOCUMENT_BYTES`).
Rule 2: no DTD of any kind (internal subset, external DTD, entity declarations): a ``<!DOCTYPE`` is refused, so
        XXE, billion laughs and external DTD fetches cannot happen; the parser is also told never to load a DTD,
        resolve an entity or touch the network, and to keep libxml2's own size and depth guards (no huge_tree).
Rule 3: no comments and no processing instructions anywhere: a SOAP message needs neither, and a comment inside a
        signed value is the classic way to make the canonical (signed) text differ from what a reader sees.
Rule 4: nesting depth at most :data:`MAX_XML_DEPTH` (the deepest cgw document is ~14 below the Envelope).
Rule 5: the input must be UTF-8 (no XML declaration naming another encoding).
Every refusal is ``BadRequest`` (MALFORMED_REQUEST) or ``LimitExceeded``; lxml objects are returned only to the
SOAP adapter's own modules.
"""

from __future__ import annotations

import re
from typing import Final

from lxml import etree

from gateway.core.errors import BadRequest, LimitExceeded

# A SOAP submission carries one business document (as XML, ~3x its protobuf size) plus ~4 KiB of WS-Security;
# the REST body limit is the operator's bound, this is the hard ceiling whatever it is set to.
MAX_DOCUMENT_BYTES: Final = 16 * 1024 * 1024
# Envelope > Body > Submit > CargoManifest > consignments > goodsItems > packages > count is 8; Party nests 4
# more; 32 leaves room for new types and keeps tree walks far from Python's recursion limit.
MAX_XML_DEPTH: Final = 32

_ENCODING_DECL: Final = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,  # never expand an entity (internal or external)
        no_network=True,  # never fetch anything
        load_dtd=False,  # never load an external DTD
        dtd_validation=False,
        attribute_defaults=False,  # DTD default attributes would change what was signed
        huge_tree=False,  # keep libxml2's own depth / text-size guards
        remove_comments=False,  # comments are detected and refused (Rule 3), not silently dropped
        remove_pis=False,
        remove_blank_text=False,  # whitespace is part of what was signed
        strip_cdata=True,
        collect_ids=False,  # IDs are resolved by wssecurity, explicitly, never by xml:id magic
    )


def parse_document(data: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._Element:
    """Parse one untrusted XML document under Rules 1-5 and return its root element."""
    limit = min(max_bytes, MAX_DOCUMENT_BYTES)
    if len(data) > limit:
        raise LimitExceeded(f"XML document larger than {limit} bytes", field="body")
    head = data[:200]
    declared = _ENCODING_DECL.match(head)
    if declared is not None and declared.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
        raise BadRequest("XML must be UTF-8", field="body")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise BadRequest("a DTD is not allowed", field="body")
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise BadRequest(f"XML is not well-formed: {str(exc)[:200]}", field="body") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None or tree.docinfo.externalDTD is not None:
        raise BadRequest("a DTD is not allowed", field="body")  # pragma: no cover - refused on the raw bytes
    if tree.docinfo.encoding.lower() not in ("utf-8", "utf8"):
        raise BadRequest("XML must be UTF-8", field="body")
    _check_tree(root)
    return root


def _check_tree(root: etree._Element) -> None:
    if root.getprevious() is not None or root.getnext() is not None:
        raise BadRequest("comments and processing instructions are not allowed", field="body")
    depth = 0
    for event, node in etree.iterwalk(root, events=("start", "end", "comment", "pi")):
        if event == "start":
            depth += 1
            if depth > MAX_XML_DEPTH:
                raise LimitExceeded(f"XML nested deeper than {MAX_XML_DEPTH}", field="body")
        elif event == "end":
            depth -= 1
        else:
            raise BadRequest("comments and processing instructions are not allowed", field="body")
        del node


def serialize(root: etree._Element) -> bytes:
    """UTF-8 bytes of a tree built by this adapter (with an XML declaration)."""
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
