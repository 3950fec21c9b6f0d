"""A JSON payload's bytes to Python values, bounded before parsing: the one JSON reader of payload validation.

Both validators of a JSON payload, the one-pass walk (:mod:`gateway.core.jsonwalk`) and the reference path
(:mod:`gateway.core.messagewalk`), read the document through :func:`decode_json`; what it refuses, it refuses
for both, under the field path :data:`ROOT`.

Rule 1: the nesting depth is measured on the raw bytes (:func:`json_depth`, brackets outside strings) and
        bounded by :data:`limits.MAX_JSON_DEPTH` before the parser runs, so the parser never recurses deeper.
Rule 2: the bytes must be UTF-8 and JSON; the non-JSON constants NaN and Infinity are refused.
Rule 3: a repeated key is not resolved here: the object comes back as a :class:`DuplicateKeys` naming the key,
        and the shape checks of either validator refuse it with its path.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gateway.core import limits
from gateway.core.errors import Invalid, LimitExceeded

# The field path of the payload itself; every error path inside a payload starts with it.
ROOT = "payload"

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_OPENING = frozenset(b"[{")


def json_depth(data: bytes) -> int:
    """Deepest nesting of ``[`` / ``{`` outside strings; stops counting past :data:`limits.MAX_JSON_DEPTH`."""
    if b"\\" not in data and data.count(b'"') % 2 == 0:
        outside = b"".join(data.split(b'"')[::2])  # no escapes and paired quotes: strings are "...", as the regex
    else:
        outside = _JSON_STRING.sub(b"", data)
    depth = deepest = 0
    for byte in outside.translate(None, _NOT_BRACKETS):
        if byte in _OPENING:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limits.MAX_JSON_DEPTH:
                    break
        else:
            depth -= 1
    return deepest


class DuplicateKeys(dict[str, Any]):
    """A JSON object that repeated a key; the shape check reports it with its path."""

    __slots__ = ("duplicate",)

    def __init__(self, pairs: dict[str, Any], duplicate: str) -> None:
        super().__init__(pairs)
        self.duplicate = duplicate


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = dict(pairs)
    if len(obj) == len(pairs):
        return obj  # no key repeated (the common case, without a Python loop)
    obj = {}
    for key, value in pairs:
        if key in obj:
            return DuplicateKeys(obj, key)
        obj[key] = value
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_json(data: bytes) -> Any:
    """The decoded document (Rules 1-3); ``LimitExceeded`` or ``Invalid`` at :data:`ROOT` when it is not one."""
    if json_depth(data) > limits.MAX_JSON_DEPTH:
        raise LimitExceeded(f"JSON nested deeper than {limits.MAX_JSON_DEPTH} levels", field=ROOT)
    try:
        text = data.decode("utf-8")
        document = json.loads(text, object_pairs_hook=_object_pairs, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise Invalid(f"payload is not UTF-8 (byte {exc.start})", field=ROOT) from None
    except ValueError as exc:  # json.JSONDecodeError, refused constants, over-long integers
        raise Invalid(f"payload is not valid JSON: {str(exc)[:120]}", field=ROOT) from None
    return document


def json_integer(value: object) -> int | None:
    """The integer a decoded JSON number or decimal string denotes; None when it is not one (a boolean is not),
    and the caller's parser decides. Both validators read integers through it, so they agree on the range check."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and limits.DECIMAL.fullmatch(value):
        return int(value)
    return None
