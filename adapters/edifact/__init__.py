"""UN/EDIFACT carrier filings: CUSCAR in (converted to ``manifest.cargo.v1``), CUSRES out.

Public API::

    parse_interchange(bytes) -> Interchange          syntax + envelope checks (adapters.edifact.syntax)
    read_cuscar(bytes, strict=False) -> (Interchange, manifest)
                                                      + directory structure (strict: no PIA extension)
                                                      + identifiers -> proto3 JSON dict
    to_cuscar(manifest, ..., hs_extension=False) -> bytes
                                                      manifest JSON dict -> CUSCAR interchange (HS code in CST)
    build_cusres(...) -> bytes                        the CUSRES answer
    EdifactTranslator                                 the pipeline's translator for application/edifact
"""

from adapters.edifact.cusres import build_cusres
from adapters.edifact.syntax import Interchange, Message, Segment, parse_interchange
from adapters.edifact.translator import ANSWER_TYPE, MEDIA_EDIFACT, EdifactTranslator, read_cuscar
from adapters.edifact.writer import to_cuscar

__all__ = [
    "ANSWER_TYPE",
    "MEDIA_EDIFACT",
    "EdifactTranslator",
    "Interchange",
    "Message",
    "Segment",
    "build_cusres",
    "parse_interchange",
    "read_cuscar",
    "to_cuscar",
]
