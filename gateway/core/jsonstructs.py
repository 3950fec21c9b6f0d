"""Payload validation at C speed for proto3 JSON in its everyday spelling: msgspec Structs derived from the walk's
tables.

The full walk of :mod:`gateway.core.jsonwalk` decodes, then checks shape and converts every key in Python (pass 1),
then applies the field rules to every field (pass 2). For the documents partners actually send, this module lets
msgspec do pass 1 and most of pass 2 while it decodes, into Struct types derived from the same
:class:`jsontables.MessageTable` of each message type; a short walk does the rest.

Rule 1: it only ever *takes* documents. :func:`decode` returns the Structs or ``None``, and :func:`walk` fills the
        summary or raises; on either, the caller runs the full walk, which owns every error (code, path,
        precedence). Every invalid document therefore ends on the full walk, and so does anything spelt in a
        way this pass does not read (Rule 2).
Rule 2: a document taken here is one the full walk takes, with the same summary: each field under its JSON name,
        with strict types (strings; booleans; integers as JSON integers within the field's range, or as decimal
        strings, the way proto3 JSON writes 64-bit integers; doubles as finite JSON numbers; enums by name;
        nested objects; lists), unknown keys refused. Not taken, so left to the full walk: escapes (``\\``)
        anywhere in the text, ``null``, proto field names, other numbers spelt as strings, enum numbers,
        Timestamps in another spelling than ``YYYY-MM-DDThh:mm:ss[.f]Z``, and message types with other
        well-known types or bytes (their Structs are not derived).
Rule 3: duplicate keys: msgspec keeps the last value. A document is taken only when the Structs, encoded again,
        have as many colons as the text: without escapes, encoding gives back every key (under the same JSON
        name) and every string as it was, so the count drops exactly when a repeated key lost a value.
Rule 4: the pass-2 rules msgspec can hold are in the types: text and list lengths, required fields (present, not
        empty, an enum not 0), enum names, measures not negative. :func:`walk` applies the others in the full
        walk's order, so the summary fills in the same order: identifiers, Timestamps (calendar included),
        integers given as strings, required numbers and booleans, and the message hooks, which read a Struct
        as the dict pass 1 would have made (``as_values``: UNSET where absent, enum numbers for names) or,
        for a message with a ``Rules.struct_hooks`` entry, the Struct itself.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, Literal, Union, cast

import msgspec

from gateway.core import jsontables, jsonwalk, limits
from gateway.core.errors import Invalid

__all__ = ["decode", "struct_for"]

_Desc = Any  # a protobuf message descriptor (see jsontables)
_TIMESTAMP = "google.protobuf.Timestamp"
_ENCODER = msgspec.json.Encoder()
_INT64 = (-(2**63), 2**63 - 1)


class Fields(msgspec.Struct, forbid_unknown_fields=True):
    """Base of the derived Structs: hooks read one as the dict pass 1 would have made (Rule 4)."""

    def as_values(self) -> dict[str, Any]:
        values = msgspec.structs.asdict(self)  # UNSET where the document had no key: pass 2's "absent"
        for name, read in self._cgw_reads:  # type: ignore[attr-defined]  # set on each derived class
            value = values[name]
            if value is not msgspec.UNSET:
                values[name] = read(value)
        return values


_RESERVED = frozenset(dir(Fields))


def _timestamp(spec: jsontables.FieldSpec) -> Callable[[str], str]:
    def read(value: str) -> str:
        if not jsonwalk.plain_utc(spec, value):
            raise Invalid("not a plain UTC timestamp", field=spec.name)  # the full walk says why (Rule 1)
        return value

    return read


def _integer(spec: jsontables.FieldSpec) -> Callable[[int | str], int]:
    low, high = spec.int_range or _INT64

    def read(value: int | str) -> int:
        if isinstance(value, int):
            return value  # msgspec checked the range
        if limits.DECIMAL.fullmatch(value) and low <= (number := int(value)) <= high:
            return number  # a decimal string, as proto3 JSON writes 64-bit integers
        raise Invalid("not a decimal integer in range", field=spec.name)  # the full walk says why (Rule 1)

    return read


def _reader(spec: jsontables.FieldSpec) -> Callable[[Any], Any] | None:
    """How a field's value is read: enum names as numbers, Timestamps checked, decimal strings as integers (the
    last two raise on what only the full walk may judge); None: as decoded."""
    one: Callable[[Any], Any]
    if spec.kind == jsontables.K_INT:
        one = _integer(spec)
    elif spec.kind == jsontables.K_ENUM:
        one = dict(spec.enum_by_name).__getitem__
    elif spec.kind == jsontables.K_WKT:
        one = _timestamp(spec)
    else:
        return None
    return (lambda values: [one(value) for value in values]) if spec.repeated else one


def _scalar_type(spec: jsontables.FieldSpec, building: set[str]) -> Any:
    """The msgspec type of one value of the field, with the pass-2 rules msgspec can hold (Rule 4)."""
    kind = spec.kind
    if kind == jsontables.K_STRING:
        if spec.identifier:
            return str  # the identifier rule runs in the walk
        return Annotated[str, msgspec.Meta(max_length=spec.max_length)]
    if kind == jsontables.K_BOOL:
        return bool
    if kind == jsontables.K_DOUBLE:
        return Annotated[float, msgspec.Meta(ge=0.0)]  # measures: finite (JSON has no infinity) and not negative
    if kind == jsontables.K_INT and spec.int_range is not None:
        low, high = spec.int_range  # msgspec bounds fit an int64: uint64 values above it take the full walk
        bounded = Annotated[int, msgspec.Meta(ge=max(low, _INT64[0]), le=min(high, _INT64[1]))]
        return Union[bounded, str]  # noqa: UP007 - a runtime type; strings are checked by the walk
    if kind == jsontables.K_ENUM and spec.enum_by_name:
        names = [name for name, number in spec.enum_by_name.items() if number or not spec.required]
        return Literal[tuple(names)] if names else None
    if kind == jsontables.K_WKT and spec.message == _TIMESTAMP:
        return str  # checked by the walk
    if kind == jsontables.K_MESSAGE:
        return _derive(jsontables.message_table(spec.message), building)
    return None  # bytes, other well-known types: the full walk only


def _field_type(spec: jsontables.FieldSpec, one: Any) -> tuple[Any, Any]:
    """The field's type and default: required fields have none and are not empty; lists are bounded."""
    required = spec.required and (spec.repeated or spec.kind in (jsontables.K_STRING, jsontables.K_ENUM))
    if spec.kind == jsontables.K_ENUM and not spec.repeated and 0 not in spec.enum_numbers:
        required = True  # absent reads as 0, which pass 2 refuses for an enum without it
    if spec.repeated:
        one = Annotated[list[one], msgspec.Meta(min_length=1 if required else 0, max_length=spec.max_items)]
    elif required and spec.kind == jsontables.K_STRING:
        one = Annotated[one, msgspec.Meta(min_length=1)]
    if required or (spec.required and spec.kind in (jsontables.K_MESSAGE, jsontables.K_WKT)):
        return one, msgspec.NODEFAULT
    return Union[one, msgspec.UnsetType], msgspec.UNSET  # noqa: UP007 - a runtime type


_DERIVED: dict[str, type[Fields] | None] = {}  # by message full name: a type used by several fields is derived once


def _derive(table: jsontables.MessageTable, building: set[str]) -> type[Fields] | None:
    if table.full_name in _DERIVED:
        return _DERIVED[table.full_name]
    if table.full_name in building or not table.fast:
        return None  # a recursive message type, or one the walk itself hands to the reference path
    derived = _DERIVED[table.full_name] = _derive_new(table, building)
    return derived


def _derive_new(table: jsontables.MessageTable, building: set[str]) -> type[Fields] | None:
    building.add(table.full_name)
    fields: list[tuple[str, Any, Any]] = []
    reads: list[tuple[str, Callable[[Any], Any]]] = []
    for spec in table.fields:
        one = _scalar_type(spec, building)
        if one is None or spec.name in _RESERVED:
            return None
        kind, default = _field_type(spec, one)
        fields.append((spec.name, kind, default))
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
        kw_only=True,
    )
    return cast(type[Fields], derived)


@cache
def struct_for(descriptor: _Desc) -> type[Fields] | None:
    """The Struct type of ``descriptor`` (None when the message type is left to the full walk, Rule 2)."""
    return _derive(jsontables.table_for(descriptor), set())


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


# -- pass 2 on the Structs: the rules msgspec cannot hold (Rule 4) ------------------------------------------

_Step = Callable[[Any, str, Any, jsonwalk.Rules], None]  # (struct, path, summary, rules)


def _refuse(spec: jsontables.FieldSpec) -> None:
    raise Invalid("left to the full walk", field=spec.name)  # the full walk says why (Rule 1)


def _each(spec: jsontables.FieldSpec, read: Callable[[Any], Any]) -> _Step:
    """A step reading every value of the field with ``read``, which raises on what the full walk must judge."""
    name = spec.name
    if spec.repeated:

        def step_list(obj: Any, path: str, summary: Any, rules: jsonwalk.Rules) -> None:
            items = getattr(obj, name)
            if items is not msgspec.UNSET:
                for item in items:
                    read(item)

        return step_list

    def step(obj: Any, path: str, summary: Any, rules: jsonwalk.Rules) -> None:
        value = getattr(obj, name)
        if value is not msgspec.UNSET:
            read(value)

    return step


def _identifier(spec: jsontables.FieldSpec) -> _Step:
    """Pass 2's identifier rule: every list item, a single value when not empty (jsonwalk._rule_scalar)."""
    name, kind = spec.name, spec.identifier
    if spec.repeated:

        def step_list(obj: Any, path: str, summary: Any, rules: jsonwalk.Rules) -> None:
            items = getattr(obj, name)
            if items is not msgspec.UNSET:
                for index, item in enumerate(items):
                    rules.check_identifier(kind, item, f"{path}.{name}[{index}]", name, summary)

        return step_list

    def step(obj: Any, path: str, summary: Any, rules: jsonwalk.Rules) -> None:
        value = getattr(obj, name)
        if value is not msgspec.UNSET and value:
            rules.check_identifier(kind, value, f"{path}.{name}", name, summary)

    return step


_Plan = tuple[tuple["_Step", ...], jsontables.MessageTable, bool]  # steps, table, whether its hook runs
_Hooks = tuple[frozenset[str], frozenset[tuple[str, str]]]  # hooked messages; (message, parent) repeated by it


def _visit(plan: _Plan, obj: Any, path: str, summary: Any, rules: jsonwalk.Rules) -> None:
    """Pass 2 on one Struct: its steps in descriptor order, then its message hook, as jsonwalk._rules_walk."""
    steps, table, hooked = plan
    for step in steps:
        step(obj, path, summary, rules)
    if hooked:
        direct = rules.struct_hooks.get(table.full_name)
        if direct is not None:
            direct(obj, path, summary)
        else:
            rules.hooks[table.full_name](jsonwalk.MessageView(table, obj), path, summary)


def _child(spec: jsontables.FieldSpec, table: jsontables.MessageTable, parent: str, hooks: _Hooks) -> _Step | None:
    """Walk a message field's Structs, when anything below it has a step or a hook. A hook the parent's hook
    repeats (``Rules.repeated_by``) is left out: it could only refuse what the parent's refuses (Rule 1)."""
    steps = _steps(table, hooks)
    hooked = table.full_name in hooks[0] and (table.full_name, parent) not in hooks[1]
    if not steps and not hooked:
        return None
    name, plan = spec.name, (steps, table, hooked)
    if spec.repeated:

        def step_list(obj: Any, path: str, summary: Any, rules: jsonwalk.Rules) -> None:
            items = getattr(obj, name)
            if items is not msgspec.UNSET:
                for index, item in enumerate(items):
                    _visit(plan, item, f"{path}.{name}[{index}]", summary, rules)

        return step_list

    def step(obj: Any, path: str, summary: Any, rules: jsonwalk.Rules) -> None:
        value = getattr(obj, name)
        if value is not msgspec.UNSET:
            _visit(plan, value, f"{path}.{name}", summary, rules)

    return step


def _required(spec: jsontables.FieldSpec, read: Callable[[Any], Any]) -> _Step:
    """A required integer, double or boolean: present and not its default (pass 2's ``required``)."""
    name = spec.name

    def step(obj: Any, path: str, summary: Any, rules: jsonwalk.Rules) -> None:
        value = getattr(obj, name)
        if value is msgspec.UNSET or not read(value):
            _refuse(spec)

    return step


def _step(spec: jsontables.FieldSpec, parent: str, hooks: _Hooks) -> _Step | None:
    kind = spec.kind
    if kind == jsontables.K_MESSAGE:
        return _child(spec, jsontables.message_table(spec.message), parent, hooks)
    if kind == jsontables.K_STRING and spec.identifier:
        return _identifier(spec)
    if spec.required and not spec.repeated and kind in (jsontables.K_INT, jsontables.K_DOUBLE, jsontables.K_BOOL):
        return _required(spec, _integer(spec) if kind == jsontables.K_INT else _same)
    if kind == jsontables.K_INT:
        return _each(spec, _integer(spec))  # a decimal string: in range, or refused
    if kind == jsontables.K_WKT:
        return _each(spec, _timestamp(spec))
    return None


def _same(value: Any) -> Any:
    return value


_STEPS: dict[tuple[str, _Hooks], tuple[_Step, ...]] = {}
_BY_RULES: dict[tuple[str, int], tuple[jsonwalk.Rules, tuple[_Step, ...]]] = {}


def _steps(table: jsontables.MessageTable, hooks: _Hooks) -> tuple[_Step, ...]:
    """The checks pass 2 still owes a Struct of ``table`` (in descriptor order, so the summary fills in the
    full walk's order); built once per message type."""
    key = (table.full_name, hooks)
    found = _STEPS.get(key)
    if found is None:
        steps = [_step(spec, table.full_name, hooks) for spec in table.fields]
        found = _STEPS[key] = tuple(step for step in steps if step is not None)
    return found


def _steps_for(table: jsontables.MessageTable, rules: jsonwalk.Rules) -> tuple[_Step, ...]:
    """:func:`_steps` for the hooks of ``rules``, looked up by identity (the rules object is kept alive here)."""
    found = _BY_RULES.get((table.full_name, id(rules)))
    if found is None or found[0] is not rules:
        hooks = (frozenset(rules.hooks), frozenset(rules.repeated_by.items()))
        found = _BY_RULES[table.full_name, id(rules)] = (rules, _steps(table, hooks))
    return found[1]


def _facts(table: jsontables.MessageTable, values: Fields) -> tuple[tuple[str, str], ...]:
    """The root's facts as the full walk gives them (jsonwalk.walk_json), read off the Struct: enums are names
    here already, integers may be decimal strings."""
    facts: list[tuple[str, str]] = []
    for spec in table.fields:
        if spec.fact:
            value = getattr(values, spec.name)
            if spec.kind == jsontables.K_ENUM:
                facts.append((spec.name, spec.enum_names[0] if value is msgspec.UNSET else value))
            elif value is not msgspec.UNSET and (number := _integer(spec)(value)):
                facts.append((spec.name, str(number)))
    return tuple(facts)


def walk(
    values: Fields, descriptor: _Desc, root: str, summary: Any, rules: jsonwalk.Rules
) -> tuple[tuple[str, str], ...]:
    """Pass 2 on :func:`decode`'s Structs: fill ``summary`` as the full walk would; return the root's facts.

    Raises a ``GatewayError`` when the document is to go to the full walk after all (Rule 1)."""
    table = jsontables.table_for(descriptor)
    _visit((_steps_for(table, rules), table, table.full_name in rules.hooks), values, root, summary, rules)
    return _facts(table, values)
