"""The per-message tables the one-pass JSON validation reads: each field's name, kind, accepted JSON types and rules.

:mod:`gateway.core.jsonwalk` (both passes) and :mod:`gateway.core.jsonstructs` (the msgspec Structs derived from
the same tables) never look at a protobuf descriptor while they validate: they read a :class:`MessageTable`
built from it once.

Rule 1: per-message tables are built once per descriptor (:func:`table_for`, cached): each field by its JSON
        and proto name, its kind, the Python types its JSON value may have, its integer range and its
        ``(cgw.v1.rules)`` annotation (the bounds an annotation leaves out are :mod:`gateway.core.limits`'
        defaults). A message type using a feature the one-pass walk does not implement (oneof, map, float32,
        extensions, well-known types other than Timestamp / Duration / FieldMask) gets ``fast = False``, and
        the caller uses the reference path for it.
Rule 2: building the table of a message builds (and registers by full name, for :func:`message_table`) the
        tables of every message type it contains, recursive types included.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message_factory import GetMessageClass

from gateway.core import limits
from gateway.wire.cgw.v1 import options_pb2

# Descriptors are typed loosely: the protobuf stubs cannot type them usefully (python and upb classes).
_Desc = Any
_RULES_EXTENSION: Any = options_pb2.rules


K_STRING, K_BYTES, K_BOOL, K_ENUM, K_INT, K_DOUBLE, K_MESSAGE, K_WKT = range(8)

_NUMBER_TYPES: frozenset[type] = frozenset({int, float, str})
_ACCEPTED: Mapping[int, frozenset[type]] = {
    K_STRING: frozenset({str}),
    K_BYTES: frozenset({str}),
    K_BOOL: frozenset({bool}),
    K_ENUM: _NUMBER_TYPES,
    K_INT: _NUMBER_TYPES,
    K_DOUBLE: _NUMBER_TYPES,
}
# Well-known types whose JSON form is a string, parsed by their own FromJsonString as ParseDict does.
STRING_WKT: Mapping[str, Callable[[], Any]] = {
    "google.protobuf.Timestamp": timestamp_pb2.Timestamp,
    "google.protobuf.Duration": duration_pb2.Duration,
    "google.protobuf.FieldMask": field_mask_pb2.FieldMask,
}


@dataclass(frozen=True, slots=True, eq=False)
class FieldSpec:
    name: str
    key: str  # the JSON name (the name ParseDict paths use when the document used it)
    kind: int
    repeated: bool
    accepted: frozenset[type]
    int_range: tuple[int, int] | None
    required: bool
    max_items: int
    max_length: int
    identifier: int
    enum_numbers: frozenset[int]
    enum_by_name: Mapping[str, int]
    enum_names: Mapping[int, str]
    enum_closed: bool
    enum_full_name: str
    enum_type: Any  # the enum descriptor: ParseDict looks numbers up in it (upb reads the key as int32)
    message: str  # full name of the message type (K_MESSAGE, K_WKT), else ""
    fact: bool  # a top-level fact when it is the root's field (singular enum, uint32/uint64)
    absent_ok: bool  # pass 2 has nothing to check when the field is absent (not required, default allowed)


@dataclass(frozen=True, slots=True, eq=False)
class MessageTable:
    full_name: str
    name: str  # the short name: ParseDict's path root
    fields: tuple[FieldSpec, ...]  # descriptor order
    by_key: Mapping[str, FieldSpec]  # JSON name and proto name
    by_name: Mapping[str, FieldSpec]
    fast: bool  # False: a feature outside this engine somewhere in the message tree
    message_class: Any


def _field_kind(fd: _Desc) -> int | None:
    cpp = fd.cpp_type
    if cpp == FieldDescriptor.CPPTYPE_STRING:
        return K_BYTES if fd.type == FieldDescriptor.TYPE_BYTES else K_STRING
    if cpp == FieldDescriptor.CPPTYPE_MESSAGE:
        full = fd.message_type.full_name
        if full in STRING_WKT:
            return K_WKT
        if full.startswith("google.protobuf.") or fd.message_type.GetOptions().map_entry:
            return None
        return K_MESSAGE
    return {
        FieldDescriptor.CPPTYPE_BOOL: K_BOOL,
        FieldDescriptor.CPPTYPE_ENUM: K_ENUM,
        FieldDescriptor.CPPTYPE_DOUBLE: K_DOUBLE,
        FieldDescriptor.CPPTYPE_INT32: K_INT,
        FieldDescriptor.CPPTYPE_INT64: K_INT,
        FieldDescriptor.CPPTYPE_UINT32: K_INT,
        FieldDescriptor.CPPTYPE_UINT64: K_INT,
    }.get(cpp)  # CPPTYPE_FLOAT (float32 rounding) is not implemented


def _field_spec(fd: _Desc, kind: int) -> FieldSpec:
    options = fd.GetOptions()
    rules = options.Extensions[_RULES_EXTENSION] if options.HasExtension(_RULES_EXTENSION) else None
    enum = fd.enum_type if kind == K_ENUM else None
    return FieldSpec(
        name=fd.name,
        key=fd.json_name,
        kind=kind,
        repeated=fd.is_repeated,
        accepted=_ACCEPTED.get(kind, frozenset()),
        int_range=limits.INTEGER_RANGES.get(fd.cpp_type) if kind == K_INT else None,
        required=bool(rules and rules.required),
        max_items=(rules.max_items if rules else 0) or limits.DEFAULT_MAX_ITEMS,
        max_length=(rules.max_length if rules else 0) or limits.DEFAULT_MAX_TEXT_CHARS,
        identifier=rules.identifier if rules else 0,
        enum_numbers=frozenset(enum.values_by_number) if enum else frozenset(),
        enum_by_name={v.name: v.number for v in enum.values} if enum else {},
        enum_names={n: v.name for n, v in enum.values_by_number.items()} if enum else {},
        enum_closed=bool(enum and enum.is_closed),
        enum_full_name=enum.full_name if enum else "",
        enum_type=enum,
        message=fd.message_type.full_name if kind in (K_MESSAGE, K_WKT) else "",
        fact=not fd.is_repeated
        and (kind == K_ENUM or fd.cpp_type in (FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64)),
        absent_ok=not (rules and rules.required)
        and (fd.is_repeated or kind != K_ENUM or 0 in (enum.values_by_number if enum else ())),
    )


_DESCRIPTORS: dict[str, _Desc] = {}


@cache
def table_for(descriptor: _Desc) -> MessageTable:
    """The table of ``descriptor`` and (registered for lookup by name) of every message type it contains."""
    return _build(descriptor, set())


def _build(descriptor: _Desc, building: set[str]) -> MessageTable:
    full = descriptor.full_name
    _DESCRIPTORS[full] = descriptor
    building.add(full)
    fast = not descriptor.oneofs and not descriptor.extension_ranges
    specs: list[FieldSpec] = []
    for fd in descriptor.fields:
        kind = _field_kind(fd)
        if kind is None:
            fast = False
            continue
        specs.append(_field_spec(fd, kind))
        if kind == K_MESSAGE and fd.message_type.full_name not in building:
            fast = _build_child(fd.message_type, building) and fast
    by_key: dict[str, FieldSpec] = {}
    for spec in specs:
        by_key[spec.name] = spec
        by_key[spec.key] = spec
    table = MessageTable(
        full, descriptor.name, tuple(specs), by_key, {s.name: s for s in specs}, fast, GetMessageClass(descriptor)
    )
    TABLES[full] = table
    return table


def _build_child(descriptor: _Desc, building: set[str]) -> bool:
    return (TABLES.get(descriptor.full_name) or _build(descriptor, building)).fast


TABLES: dict[str, MessageTable] = {}


def message_table(full_name: str) -> MessageTable:
    """The table of a message type already built by :func:`table_for` (as a field's ``message`` names it)."""
    return TABLES[full_name]
