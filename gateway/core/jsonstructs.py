"""A first pass at C speed for proto3-JSON payloads in their everyday spelling: msgspec Structs derived from the
walk's tables.

Pass 1 of :mod:`gateway.core.jsonwalk` (decode, shape, conversion) is a Python walk over every key of the
document; for the documents partners actually send, msgspec does the same work while it decodes. This module
derives, from the same :class:`jsonwalk.MessageTable` of each message type, msgspec Struct types and decodes
with them; pass 2 (field rules, identifiers, hooks) then runs unchanged on the Structs.

Rule 1: it only ever *takes* documents: :func:`decode` returns the converted values, or ``None`` and the caller
        runs the full walk, which owns every error (code, path, precedence). Every invalid document therefore
        ends on the full walk, and so does anything spelt in a way this pass does not read (see Rule 2).
Rule 2: a document taken here is one pass 1 takes, converted to the same values: each field under its JSON name,
        with strict types (strings; booleans; integers as JSON integers within the field's range, or as decimal
        strings, the way proto3 JSON writes 64-bit integers; doubles as finite JSON numbers; enums by name;
        nested objects; lists), unknown keys refused. Not taken, so left to the full walk: escapes (``\\``)
        anywhere in the text, ``null``, proto field names, other numbers spelt as strings, enum numbers,
        Timestamps in another spelling than ``YYYY-MM-DDThh:mm:ss[.f]Z``, and message types with other
        well-known types or bytes (their Structs are not derived).
Rule 3: duplicate keys: msgspec keeps the last value. A document is taken only when the Structs, encoded again,
        have as many colons as the text: without escapes, encoding gives back every key (under the same JSON
        name) and every string as it was, so the count drops exactly when a repeated key lost a value.
Rule 4: pass 2 reads a Struct as the dict pass 1 would have made (``as_values``): UNSET for absent fields
        (pass 2's "absent"), enum numbers for enum names, and every Timestamp checked, calendar included.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, Literal, Union, cast

import msgspec

from gateway.core import jsonwalk
from gateway.core.errors import Invalid

__all__ = ["decode", "struct_for"]

_Desc = Any  # a protobuf message descriptor (see jsonwalk)
_TIMESTAMP = "google.protobuf.Timestamp"
_ENCODER = msgspec.json.Encoder()
_INT64 = (-(2**63), 2**63 - 1)


class Fields(msgspec.Struct, forbid_unknown_fields=True):
    """Base of the derived Structs: pass 2 reads one as the dict pass 1 would have made (Rule 4)."""

    def as_values(self) -> dict[str, Any]:
        values = msgspec.structs.asdict(self)  # UNSET where the document had no key: pass 2's "absent"
        for name, read in self._cgw_reads:  # type: ignore[attr-defined]  # set on each derived class
            value = values[name]
            if value is not msgspec.UNSET:
                values[name] = read(value)
        return values


_RESERVED = frozenset(dir(Fields))


def _timestamp(spec: jsonwalk.FieldSpec) -> Callable[[str], str]:
    def read(value: str) -> str:
        if not jsonwalk.plain_utc(spec, value):
            raise Invalid("not a plain UTC timestamp", field=spec.name)  # the full walk says why (Rule 1)
        return value

    return read


def _integer(spec: jsonwalk.FieldSpec) -> Callable[[int | str], int]:
    low, high = spec.int_range or _INT64

    def read(value: int | str) -> int:
        if isinstance(value, int):
            return value  # msgspec checked the range
        if jsonwalk.DECIMAL.fullmatch(value) and low <= (number := int(value)) <= high:
            return number  # a decimal string, as proto3 JSON writes 64-bit integers
        raise Invalid("not a decimal integer in range", field=spec.name)  # the full walk says why (Rule 1)

    return read


def _reader(spec: jsonwalk.FieldSpec) -> Callable[[Any], Any] | None:
    """How pass 2 reads the field: enum names as numbers, Timestamps checked, decimal strings as integers;
    None: as decoded."""
    if spec.kind == jsonwalk.K_INT:
        one_int = _integer(spec)
        if spec.repeated:
            return lambda values: [one_int(value) for value in values]
        return one_int
    if spec.kind == jsonwalk.K_ENUM:
        numbers = dict(spec.enum_by_name)
        if spec.repeated:
            return lambda names: [numbers[name] for name in names]
        return numbers.__getitem__
    if spec.kind == jsonwalk.K_WKT:
        one = _timestamp(spec)
        if spec.repeated:
            return lambda values: [one(value) for value in values]
        return one
    return None


def _scalar_type(spec: jsonwalk.FieldSpec, building: set[str]) -> Any:
    kind = spec.kind
    if kind == jsonwalk.K_STRING:
        return str
    if kind == jsonwalk.K_BOOL:
        return bool
    if kind == jsonwalk.K_DOUBLE:
        return float
    if kind == jsonwalk.K_INT and spec.int_range is not None:
        low, high = spec.int_range  # msgspec bounds fit an int64: uint64 values above it take the full walk
        bounded = Annotated[int, msgspec.Meta(ge=max(low, _INT64[0]), le=min(high, _INT64[1]))]
        return Union[bounded, str]  # noqa: UP007 - a runtime type; strings are read when pass 2 reads them
    if kind == jsonwalk.K_ENUM and spec.enum_by_name:
        return Literal[tuple(spec.enum_by_name)]
    if kind == jsonwalk.K_WKT and spec.message == _TIMESTAMP:
        return str
    if kind == jsonwalk.K_MESSAGE:
        return _derive(jsonwalk.message_table(spec.message), building)
    return None  # bytes, other well-known types: the full walk only


def _derive(table: jsonwalk.MessageTable, building: set[str]) -> type[Fields] | None:
    if table.full_name in building or not table.fast:
        return None  # a recursive message type, or one the walk itself hands to the reference path
    building.add(table.full_name)
    fields: list[tuple[str, Any, Any]] = []
    reads: list[tuple[str, Callable[[Any], Any]]] = []
    for spec in table.fields:
        kind = _scalar_type(spec, building)
        if kind is None or spec.name in _RESERVED:
            return None
        if spec.repeated:
            kind = list[kind]  # type: ignore[valid-type]
        fields.append((spec.name, Union[kind, msgspec.UnsetType], msgspec.UNSET))  # noqa: UP007 - a runtime type
        read = _reader(spec)
        if read is not None:
            reads.append((spec.name, read))
    building.discard(table.full_name)
    derived = msgspec.defstruct(
        table.full_name.replace(".", "_"),
        fields,
        bases=(Fields,),
        namespace={"_cgw_reads": tuple(reads)},
        rename={spec.name: spec.key for spec in table.fields},
        forbid_unknown_fields=True,
    )
    return cast(type[Fields], derived)


@cache
def struct_for(descriptor: _Desc) -> type[Fields] | None:
    """The Struct type of ``descriptor`` (None when the message type is left to the full walk, Rule 2)."""
    return _derive(jsonwalk.table_for(descriptor), set())


@cache
def _decoder(descriptor: _Desc) -> msgspec.json.Decoder[Any] | None:
    derived = struct_for(descriptor)
    return None if derived is None else msgspec.json.Decoder(derived)


def decode(data: bytes, descriptor: _Desc) -> Fields | None:
    """The converted values of ``data`` as ``descriptor``, or None: the full walk decides (Rule 1)."""
    decoder = _decoder(descriptor)
    if decoder is None or b"\\" in data:
        return None
    try:
        values: Fields = decoder.decode(data)
    except (msgspec.MsgspecError, ValueError):  # ValueError: UnicodeDecodeError
        return None
    if data.count(b":") != _ENCODER.encode(values).count(b":"):
        return None  # a key repeated (Rule 3)
    return values
