"""Strict reading of decoded JSON documents the gateway is handed as configuration (the member registry, the
federation directory): exact key sets and bounded strings, each failure an ``Invalid`` with its field path.

Rule 1: an object has no key outside ``allowed`` and every key of ``required``; unknown keys are refused,
        never ignored (a misspelt key must not silently drop a setting).
Rule 2: a string is checked for type, then length (before any pattern runs on it), then its pattern.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.core.errors import Invalid


def strict_object(
    value: object, path: str, allowed: frozenset[str], required: Iterable[str], *, public: str
) -> Mapping[str, Any]:
    """Rule 1: ``value`` as an object with exactly the permitted keys."""
    if not isinstance(value, dict):
        raise Invalid(f"expected an object, got {type(value).__name__}", field=path, public=public)
    for key in value:
        if key not in allowed:
            raise Invalid(f"unknown key {key!r}", field=f"{path}.{key}" if path else str(key), public=public)
    for key in required:
        if key not in value:
            raise Invalid("missing required key", field=f"{path}.{key}" if path else key, public=public)
    return value


def strict_string(
    value: object, path: str, *, max_length: int, pattern: re.Pattern[str] | None = None, public: str
) -> str:
    """Rule 2: ``value`` as a bounded string matching ``pattern`` in full."""
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {type(value).__name__}", field=path, public=public)
    if len(value) > max_length:
        raise Invalid(f"longer than {max_length} characters", field=path, public=public)
    if pattern is not None and not pattern.fullmatch(value):
        raise Invalid(f"{value!r} does not match {pattern.pattern}", field=path, public=public)
    return value
