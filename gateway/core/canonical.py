"""RFC 8785 (JCS) canonical JSON, fast for the values the gateway signs and hashes on every message.

``rfc8785.dumps`` is a careful pure-Python serialiser and costs 50-150 us for a message header, a receipt or an
audit event. For the values those are made of (objects with ASCII keys, arrays, strings, safe integers,
booleans, null) msgspec's C encoder with sorted keys writes exactly the same bytes: RFC 8785 sorts object keys
by UTF-16 code units (the same order as code points for ASCII keys), prints integers in the I-JSON range as
plain decimals, and escapes strings as msgspec does (``\\"``, ``\\\\``, the five short escapes and ``\\u00xx`` in
lower case for the other control characters; every other code point as its UTF-8 bytes: checked for every
code point). msgspec writes an audit event with its AEO record in ~2 us where ``json.dumps`` took ~13.

Rule 1: the fast path is taken only when every value has one of those exact types (``type(v) is ...``, so
        subclasses such as enums, and tuples, mappings or floats take the reference path) and every integer
        is within [-(2**53 - 1), 2**53 - 1]; anything else, including strings that do not encode as UTF-8
        (lone surrogates), goes to ``rfc8785.dumps``, which is the reference and raises its own errors.
Rule 2: the two paths are byte-identical on every value the fast path takes; a hypothesis test holds them
        to it (``tests/unit/test_canonical.py``).
Rule 3: nesting is bounded (:data:`MAX_FAST_DEPTH`); deeper values take the reference path.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import rfc8785

__all__ = ["MAX_FAST_DEPTH", "canonical_json"]

# Headers, receipts and audit events nest 3 levels; 32 keeps the checker's recursion far from Python's limit.
MAX_FAST_DEPTH: Final = 32
_INT_MAX: Final = 2**53 - 1  # RFC 8785 3.2.2.3 / I-JSON: integers beyond this are not exact as doubles

_ENCODER: Final = msgspec.json.Encoder(order="sorted")


def _plain(value: Any, depth: int) -> bool:
    """True when ``value`` is made only of the types whose C-encoded form is already JCS (Rule 1).

    Leaves (str, bool, None) are checked inline in the loops: headers, receipts and audit events are mostly
    strings, and a call per string cost more than the encoding itself."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_INT_MAX <= value <= _INT_MAX)
    if depth >= MAX_FAST_DEPTH:
        return False
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                return False
            leaf = type(item)
            if leaf is not str and leaf is not bool and item is not None and not _plain(item, depth + 1):
                return False
        return True
    if kind is list:
        for item in value:  # noqa: SIM110 - a loop, not all(generator): no generator frame per list
            if type(item) is not str and not _plain(item, depth + 1):
                return False
        return True
    return False


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value`` (raises ``rfc8785.CanonicalizationError`` like it)."""
    if _plain(value, 0):
        try:
            return _ENCODER.encode(value)
        except UnicodeEncodeError:  # a lone surrogate: let the reference path raise its own error
            pass
    return rfc8785.dumps(value)
