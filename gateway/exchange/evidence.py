"""The evidence digest: what identifies "the same bytes" of a message (signed header and payload)."""

from __future__ import annotations

import hashlib


def evidence_digest(jws: str, payload: bytes) -> str:
    """Identifies "the same bytes" of a submission (signed header and payload) for duplicate detection."""
    h = hashlib.sha256(jws.encode("ascii", "replace"))
    h.update(b".")
    h.update(payload)
    return h.hexdigest()
