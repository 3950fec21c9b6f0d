"""One-pass validation of a decoded proto3-JSON payload, without building the protobuf message.

:func:`walk_json` is what :func:`gateway.core.payloads.validate_payload` runs for ``application/json``. It
enforces exactly what the reference path (shape check, ``json_format.ParseDict``, rule walk on the message:
:mod:`gateway.core.messagewalk`, for ``application/protobuf`` and as the test oracle) enforces, with the same
error codes and field paths, at a fraction of the cost.

Rule 1: it reads the per-message tables of :mod:`gateway.core.jsontables` (built once per descriptor), never the
        descriptors; a table marked ``fast = False`` is refused (the caller uses the reference path for it).
Rule 2: the error precedence is the reference's: pass 1 walks the JSON in document order; a *shape* error
        (unknown key, wrong JSON type, integer out of range, too many items, null in a list, duplicate key)
        is raised at once, a *conversion* error (what ParseDict refuses: enum names, integer and float strings,
        Timestamps, base64, unpaired surrogates) is remembered and raised after the pass, with the path
        ParseDict's message yields (through the same explanation function). Pass 2 applies the field rules in
        descriptor order on the converted values (required, max items / length, identifiers, enums, measures),
        then the message hooks, exactly like the reference walker.
Rule 3: field paths are built only when needed: on error, for identifier checks and for hooked messages.
Rule 4: hooks receive a read-only view that answers like the generated message (defaults for absent fields,
        enum numbers, nested enum wrappers such as ``Party.Role``), so the same hook serves both paths.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

import msgspec
from google.protobuf.descriptor import FieldDescriptor

from gateway.core import limits
from gateway.core.errors import Internal, Invalid, LimitExceeded
from gateway.core.jsondecode import json_integer
from gateway.core.jsontables import (
    K_BOOL,
    K_BYTES,
    K_DOUBLE,
    K_ENUM,
    K_INT,
    K_MESSAGE,
    K_STRING,
    K_WKT,
    STRING_WKT,
    TABLES,
    FieldSpec,
    MessageTable,
    table_for,
)

_Desc = Any  # see jsontables: the protobuf stubs cannot type descriptors usefully

# Enum numbers are stored as int32: a larger number is refused by the protobuf runtime.
_ENUM_RANGE = limits.INTEGER_RANGES[FieldDescriptor.CPPTYPE_INT32]
_UNPAIRED_SURROGATE = re.compile("[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]")
# The common Timestamp spelling, checked without strptime (~30 µs); anything else goes to FromJsonString.
_PLAIN_UTC = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?Z")
# Absent: pass 1 leaves the key out of its dict; a Struct of gateway.core.jsonstructs holds msgspec's UNSET.
_MISSING: Any = msgspec.UNSET


# -- pass 1: shape and conversion, in document order ------------------------------------------------------

# A trail is (parent trail, JSON key as sent, proto name, list index or -1); None at the root.
_Trail = tuple[Any, str, str, int] | None


def payload_path(root: str, trail: _Trail) -> str:
    """The reference's path: proto names, e.g. ``payload.consignments[0].consignor``."""
    parts: list[str] = []
    while trail is not None:
        trail, _key, name, index = trail
        parts.append(f".{name}[{index}]" if index >= 0 else f".{name}")
    return root + "".join(reversed(parts))


def _parse_path(table_name: str, trail: _Trail) -> str:
    """ParseDict's path: the root message's short name, then the keys as the document spelled them."""
    parts: list[str] = []
    while trail is not None:
        trail, key, _name, index = trail
        parts.append(f".{key}[{index}]" if index >= 0 else f".{key}")
    return table_name + "".join(reversed(parts))


def _kind_of(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    return {list: "array", str: "string", bool: "boolean"}.get(type(value), "number")


class _Pass:
    """State of one walk: the root's name, the path root, the first conversion error (raised after pass 1)."""

    __slots__ = ("deferred", "explain", "root", "root_name")

    def __init__(self, root: str, root_name: str, explain: Callable[[str, Any], tuple[str, str]]) -> None:
        self.root = root
        self.root_name = root_name
        self.deferred: Invalid | None = None
        self.explain = explain

    def conversion_error(self, key: str, inner: str) -> None:
        """Remember ParseDict's error ``Failed to parse <key> field: <inner>.`` (the first one wins)."""
        if self.deferred is None:
            path, reason = self.explain(f"Failed to parse {key} field: {inner}.", None)
            self.deferred = Invalid(reason, field=path)


def _object(value: Any, table: MessageTable, trail: _Trail, run: _Pass, into: dict[str, Any] | None) -> dict[str, Any]:
    if type(value) is not dict:
        if not isinstance(value, dict):
            raise Invalid(f"expected a JSON object, got {_kind_of(value)}", field=payload_path(run.root, trail))
        duplicate = str(getattr(value, "duplicate", ""))
        raise Invalid(f"duplicate JSON key {duplicate[: limits.MAX_KEY_ECHO]!r}", field=payload_path(run.root, trail))
    out: dict[str, Any] = {} if into is None else into
    by_key = table.by_key
    for key, item in value.items():
        spec = by_key.get(key)
        if spec is None:
            echo = key[: limits.MAX_KEY_ECHO]
            raise Invalid(f"unknown field {echo!r}", field=f"{payload_path(run.root, trail)}.{echo}")
        if item is None:
            out.pop(spec.name, None)  # proto3 JSON: null clears the field
            continue
        if spec.repeated:
            out[spec.name] = _list(spec, item, run, trail, key)
        elif spec.kind == K_MESSAGE:
            out[spec.name] = _object(item, TABLES[spec.message], (trail, key, spec.name, -1), run, out.get(spec.name))
        else:
            out[spec.name] = _scalar(spec, item, run, trail, key, -1)
    return out


def _list(spec: FieldSpec, item: Any, run: _Pass, trail: _Trail, key: str) -> list[Any]:
    if type(item) is not list:
        raise Invalid(f"expected a JSON array, got {_kind_of(item)}", field=_here(run, trail, spec))
    if len(item) > spec.max_items:
        raise LimitExceeded(f"at most {spec.max_items} items, got {len(item)}", field=_here(run, trail, spec))
    converted: list[Any] = []
    for index, element in enumerate(item):
        if element is None:
            raise Invalid("null is not allowed in a list", field=f"{_here(run, trail, spec)}[{index}]")
        if spec.kind == K_MESSAGE:
            converted.append(_object(element, TABLES[spec.message], (trail, key, spec.name, index), run, None))
        else:
            converted.append(_scalar(spec, element, run, trail, key, index))
    return converted


def _here(run: _Pass, trail: _Trail, spec: FieldSpec, index: int = -1) -> str:
    path = f"{payload_path(run.root, trail)}.{spec.name}"
    return f"{path}[{index}]" if index >= 0 else path


def _scalar(  # noqa: PLR0912, PLR0917 - the hot path: common cases first, the location only matters on error
    spec: FieldSpec, value: Any, run: _Pass, trail: _Trail, key: str, index: int
) -> Any:
    kind = spec.kind
    if kind == K_STRING and type(value) is str:  # the common case first
        if not value.isascii() and _UNPAIRED_SURROGATE.search(value):
            run.conversion_error(key, f"Unpaired surrogate at {_at(run, trail, key, index)}")
        return value
    if kind == K_WKT:
        if type(value) is not str:
            raise Invalid(f"expected a JSON string, got {_kind_of(value)}", field=_here(run, trail, spec, index))
        if not plain_utc(spec, value):
            _convert_wkt(spec, value, run, _at(run, trail, key, index), key)
        return value
    if type(value) not in spec.accepted:
        accepted = sorted({_kind_of(t()) for t in spec.accepted})
        raise Invalid(
            f"expected a JSON {' or '.join(accepted)}, got {_kind_of(value)}", field=_here(run, trail, spec, index)
        )
    if kind == K_INT:
        bounds = spec.int_range
        number = json_integer(value)
        if bounds is not None and number is not None and not bounds[0] <= number <= bounds[1]:
            raise Invalid(f"integer out of range {bounds[0]}..{bounds[1]}", field=_here(run, trail, spec, index))
        if number is not None and type(value) is not str:
            return number
        return _convert_integer(spec, value, run, _at(run, trail, key, index), key)
    if kind == K_ENUM:
        number = spec.enum_by_name.get(value) if type(value) is str else None
        if number is not None:  # the common case: a known name (its path is needed only for an error)
            return number
        return _convert_enum(spec, value, run, _at(run, trail, key, index), key)
    if kind == K_DOUBLE:
        if type(value) is float and math.isfinite(value):
            return value
        return _convert_double(value, run, _at(run, trail, key, index), key)
    if kind == K_BYTES:
        return _convert_bytes(value, run, key)
    return value  # K_BOOL: the type check above was the whole rule


def _convert_wkt(spec: FieldSpec, value: str, run: _Pass, at: str, key: str) -> None:
    try:
        STRING_WKT[spec.message]().FromJsonString(value)
    except ValueError as exc:
        run.conversion_error(key, f"{exc} at {at}")


def _convert_bytes(value: str, run: _Pass, key: str) -> bytes:
    encoded = value.encode("utf-8")
    try:
        return base64.urlsafe_b64decode(encoded + b"=" * (4 - len(encoded) % 4))
    except ValueError as exc:
        run.conversion_error(key, str(exc))
        return b""


def _at(run: _Pass, trail: _Trail, key: str, index: int) -> str:
    path = f"{_parse_path(run.root_name, trail)}.{key}"
    return f"{path}[{index}]" if index >= 0 else path


def plain_utc(spec: FieldSpec, value: str) -> bool:
    """``value`` is a Timestamp in the common spelling, on a real calendar day (no FromJsonString needed)."""
    if spec.message != "google.protobuf.Timestamp":
        return False
    match = _PLAIN_UTC.fullmatch(value)
    if match is None:
        return False
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        datetime(year, month, day, hour, minute, second)  # a calendar check: no zone needed
    except ValueError:
        return False  # FromJsonString gives the reference's message
    return True


def _convert_integer(spec: FieldSpec, value: Any, run: _Pass, at: str, key: str) -> int:
    """json_format's ``_ConvertInteger`` plus the runtime's range check on assignment."""
    if isinstance(value, float) and not value.is_integer():
        run.conversion_error(key, f"Couldn't parse integer: {value} at {at}")
        return 0
    if isinstance(value, str) and " " in value:
        run.conversion_error(key, f'Couldn\'t parse integer: "{value}" at {at}')
        return 0
    try:
        number = int(value)
    except ValueError as exc:
        try:
            as_float = float(value)
        except ValueError:
            run.conversion_error(key, str(exc))
            return 0
        if not as_float.is_integer():
            run.conversion_error(key, f'Couldn\'t parse non-integer string: "{value}" at {at}')
            return 0
        number = int(as_float)
    bounds = spec.int_range
    if bounds is not None and not bounds[0] <= number <= bounds[1]:
        run.conversion_error(key, f"Value out of range: {number}")
        return 0
    return number


def _convert_enum(spec: FieldSpec, value: Any, run: _Pass, at: str, key: str) -> int:
    number = spec.enum_by_name.get(value) if type(value) is str else None
    if number is not None:
        return number
    try:
        number = int(value)
    except ValueError:
        run.conversion_error(key, f"Invalid enum value {value} for enum type {spec.enum_full_name} at {at}")
        return 0
    except OverflowError:  # an infinite JSON number (1e400); the reference lets this escape as a crash
        run.conversion_error(key, f"Invalid enum value {value} for enum type {spec.enum_full_name} at {at}")
        return 0
    known = spec.enum_type.values_by_number.get(number)
    if known is not None:
        return int(known.number)
    if spec.enum_closed:
        run.conversion_error(key, f"Invalid enum value {value} for enum type {spec.enum_full_name} at {at}")
        return 0
    if not _ENUM_RANGE[0] <= number <= _ENUM_RANGE[1]:
        run.conversion_error(key, f"Value out of range: {number}")
        return 0
    return number


def _convert_double(value: Any, run: _Pass, at: str, key: str) -> float:
    """json_format's ``_ConvertFloat`` for a double field."""
    if isinstance(value, float):
        if math.isnan(value):
            run.conversion_error(key, f'Couldn\'t parse NaN, use quoted "NaN" instead at {at}')
            return 0.0
        if math.isinf(value):
            run.conversion_error(key, f"Couldn't parse Infinity at {at}")
            return 0.0
        return value
    if value == "nan":
        run.conversion_error(key, f'Couldn\'t parse float "nan", use "NaN" instead at {at}')
        return 0.0
    try:
        return float(value)
    except ValueError:
        spelled = {"-Infinity": -math.inf, "Infinity": math.inf, "NaN": math.nan}.get(value)
        if spelled is None:
            run.conversion_error(key, f"Couldn't parse float: {value} at {at}")
            return 0.0
        return spelled
    except OverflowError:  # a huge int: float() cannot hold it; the reference's float(value) raises the same
        run.conversion_error(key, "int too large to convert to float")
        return 0.0


# -- pass 2: field rules in descriptor order, then hooks ---------------------------------------------------

CheckIdentifier = Callable[[int, str, str, str, Any], None]
Hook = Callable[[Any, str, Any], None]


@dataclass(frozen=True, slots=True)
class Rules:
    """What the reference walker applies besides the annotations: identifier checks and message hooks."""

    check_identifier: CheckIdentifier  # (kind, value, path, role, summary)
    hooks: Mapping[str, Hook]  # by message full name; called with a :class:`MessageView`
    explain: Callable[[str, Any], tuple[str, str]]  # a ParseDict error text -> (path, reason)
    # message -> parent message whose hook repeats every check of its hook on it (jsonstructs may skip the
    # child's there; the full walks call both, for the reference's error precedence)
    repeated_by: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # by message full name: the same hook reading a jsonstructs Struct itself (enums by name, every required
    # field present), for the messages that repeat most; jsonstructs calls it instead of building a MessageView
    struct_hooks: Mapping[str, Hook] = field(default_factory=lambda: MappingProxyType({}))


_DEFAULTS: Mapping[int, Any] = {K_STRING: "", K_BYTES: b"", K_BOOL: False, K_ENUM: 0, K_INT: 0, K_DOUBLE: 0.0}


def _plain(values: Any) -> dict[str, Any]:
    """Pass 1's dict as it is; a jsonstructs Struct as its dict of converted values (UNSET where absent)."""
    return values if type(values) is dict else values.as_values()


def _rules_walk(table: MessageTable, values: dict[str, Any], path: str, summary: Any, rules: Rules) -> None:
    for spec in table.fields:
        value = values.get(spec.name, _MISSING)
        if value is _MISSING and spec.absent_ok:
            continue
        kind = spec.kind
        if spec.repeated:
            _rules_list(spec, () if value is _MISSING else value, path, summary, rules)
        elif kind in (K_MESSAGE, K_WKT):
            if value is _MISSING:
                if spec.required:
                    raise Invalid("required", field=f"{path}.{spec.name}")
            elif kind == K_MESSAGE:
                _rules_walk(TABLES[spec.message], value, f"{path}.{spec.name}", summary, rules)
        else:
            if value is _MISSING:
                value = _DEFAULTS[kind]
            if spec.required and not value:
                raise Invalid("required", field=f"{path}.{spec.name}")
            if value or kind == K_ENUM:
                _rule_scalar(spec, value, path, -1, summary, rules)
    hook = rules.hooks.get(table.full_name)
    if hook is not None:
        hook(MessageView(table, values), path, summary)


def _rules_list(spec: FieldSpec, items: Any, path: str, summary: Any, rules: Rules) -> None:
    if len(items) > spec.max_items:
        raise LimitExceeded(f"at most {spec.max_items} items, got {len(items)}", field=f"{path}.{spec.name}")
    if spec.required and not items:
        raise Invalid("at least one item is required", field=f"{path}.{spec.name}")
    if spec.kind == K_MESSAGE:
        child_table = TABLES[spec.message]
        for index, item in enumerate(items):
            _rules_walk(child_table, item, f"{path}.{spec.name}[{index}]", summary, rules)
    elif spec.kind != K_WKT:
        for index, item in enumerate(items):
            _rule_scalar(spec, item, path, index, summary, rules)


def _rule_scalar(  # noqa: PLR0917 - the hot path: the path string is built only when it is used
    spec: FieldSpec, value: Any, parent: str, index: int, summary: Any, rules: Rules
) -> None:
    kind = spec.kind
    if kind in (K_STRING, K_BYTES):
        if spec.identifier:
            path = f"{parent}.{spec.name}[{index}]" if index >= 0 else f"{parent}.{spec.name}"
            rules.check_identifier(spec.identifier, value, path, spec.name, summary)
        elif len(value) > spec.max_length:
            path = f"{parent}.{spec.name}[{index}]" if index >= 0 else f"{parent}.{spec.name}"
            raise Invalid(f"at most {spec.max_length} characters, got {len(value)}", field=path)
    elif kind == K_ENUM:
        if value not in spec.enum_numbers:
            path = f"{parent}.{spec.name}[{index}]" if index >= 0 else f"{parent}.{spec.name}"
            raise Invalid(f"unknown {spec.enum_full_name.rsplit('.', 1)[-1]} value {value}", field=path)
    elif kind == K_DOUBLE and (not math.isfinite(value) or value < 0):
        # cgw.v1 uses floating point only for measures (masses, volumes): finite and not negative.
        path = f"{parent}.{spec.name}[{index}]" if index >= 0 else f"{parent}.{spec.name}"
        raise Invalid("must be a finite, non-negative number", field=path)


class MessageView:
    """Read-only stand-in for a generated message over converted values (what hooks see).

    Absent fields read as their defaults (absent messages as empty views), enums as numbers, repeated fields
    as lists; any other attribute (nested enum wrappers such as ``Party.Role``) comes from the generated class.
    Each message type's fields are properties of its own subclass (built once): a ``__getattr__`` lookup
    costs an AttributeError first, ~6 times the read itself, and hooks read several fields of every party.
    """

    __slots__ = ("_table", "_values")

    def __new__(cls, table: MessageTable, values: Any) -> MessageView:
        view = _VIEWS.get(table.full_name)
        if view is None:
            view = _VIEWS[table.full_name] = _view_class(table)
        return object.__new__(view)

    def __init__(self, table: MessageTable, values: Any) -> None:
        self._table = table
        self._values = _plain(values)

    def __getattr__(self, name: str) -> Any:  # fields are properties, except those named like a view attribute
        spec = self._table.by_name.get(name)
        return getattr(self._table.message_class, name) if spec is None else self._read(spec)

    def _read(self, spec: FieldSpec) -> Any:
        value = self._values.get(spec.name, _MISSING)
        if spec.kind == K_MESSAGE:
            child = TABLES[spec.message]
            if spec.repeated:
                return [MessageView(child, item) for item in (() if value is _MISSING else value)]
            return MessageView(child, {} if value is _MISSING else value)
        if value is _MISSING:
            return [] if spec.repeated else _DEFAULTS.get(spec.kind, "")
        return value


_VIEWS: dict[str, type[MessageView]] = {}


def _view_class(table: MessageTable) -> type[MessageView]:
    def field(spec: FieldSpec) -> property:
        return property(lambda view: view._read(spec))

    namespace: dict[str, Any] = {"__slots__": ()}
    namespace.update((spec.name, field(spec)) for spec in table.fields if spec.name not in _VIEW_NAMES)
    return type(f"{table.full_name}.View", (MessageView,), namespace)


_VIEW_NAMES = frozenset(dir(MessageView))  # a field named like one of these is read through __getattr__


# -- entry point ------------------------------------------------------------------------------------------


def walk_json(document: Any, descriptor: _Desc, root: str, summary: Any, rules: Rules) -> tuple[tuple[str, str], ...]:
    """Validate decoded JSON ``document`` as ``descriptor``; fill ``summary``; return the root's facts.

    Raises the reference path's typed errors. The caller must have checked ``table_for(descriptor).fast``.
    """
    table = table_for(descriptor)
    if not table.fast:
        raise Internal(f"{table.full_name} needs the reference validator")
    run = _Pass(root, table.name, rules.explain)
    values = _object(document, table, None, run, None)
    if run.deferred is not None:
        raise run.deferred
    _rules_walk(table, values, root, summary, rules)
    facts: list[tuple[str, str]] = []
    for spec in table.fields:
        if spec.fact:
            value = values.get(spec.name, 0)
            if spec.kind == K_ENUM:
                facts.append((spec.name, spec.enum_names[value]))
            elif value:
                facts.append((spec.name, str(value)))
    return tuple(facts)
