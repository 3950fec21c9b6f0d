"""The reference validator: build the protobuf message of a payload, then walk its field rules on the message.

:func:`gateway.core.payloads.validate_payload` runs it for ``application/protobuf`` and, with
``reference=True``, for JSON, where it is the test oracle of the one-pass walk (:mod:`gateway.core.jsonwalk`),
which must give the same result or the same error for every document.

Rule 1: JSON is decoded by :func:`gateway.core.jsondecode.decode_json`, then its shape is checked against the
        descriptor with the path (each key names a field by proto or JSON name and carries the JSON type of that
        field; integers within their range; lists within their bound, no null inside) before
        ``json_format.ParseDict`` (``ignore_unknown_fields=False``) builds the message; what ParseDict still
        refuses is explained as a path and a reason by :func:`explain_parse_error`.
Rule 2: binary protobuf is parsed as it is; :func:`walk_message` with ``check_unknown`` refuses unknown fields.
Rule 3: :func:`walk_message` applies the ``(cgw.v1.rules)`` annotations (required, max_items, max_length,
        identifier kind) in descriptor order, enums and measures, then the message hooks; identifier checks and
        hooks come from the caller as a :class:`gateway.core.jsonwalk.Rules`, the same the one-pass walk uses.
Rule 4: protobuf objects never leave through this module's results: the walk fills the caller's summary and
        :func:`root_facts` returns plain strings.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from gateway.core import jsonwalk, limits
from gateway.core.errors import Invalid, LimitExceeded
from gateway.core.jsondecode import ROOT, DuplicateKeys, decode_json, json_integer
from gateway.wire.cgw.v1 import options_pb2

# Descriptors are typed loosely: the protobuf stubs split them into python and upb classes that mypy cannot
# unify, and extensions in protoc's .pyi are typed as plain FieldDescriptor.
_Desc = Any
_RULES_EXTENSION: Any = options_pb2.rules
_FLOAT_TYPES = (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT)


def parse_json(data: bytes, message: Message) -> None:
    document = decode_json(data)
    _check_shape(document, message.DESCRIPTOR, ROOT)
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=False)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        path, reason = explain_parse_error(str(exc), message.DESCRIPTOR)
        raise Invalid(reason, field=path) from None


@cache
def fields_by_key(descriptor: _Desc) -> Mapping[str, _Desc]:
    keys: dict[str, _Desc] = {}
    for fd in descriptor.fields:
        keys[fd.name] = fd
        keys[fd.json_name] = fd
    return MappingProxyType(keys)


def _json_kind(value: object) -> str:
    return {dict: "object", DuplicateKeys: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "number"
    )


# The JSON value kinds the proto3 JSON mapping accepts for each field type (numbers may be quoted).
_NUMBER = frozenset({"number", "string"})
_ACCEPTED_KINDS: Mapping[int, frozenset[str]] = MappingProxyType(
    {
        FieldDescriptor.CPPTYPE_STRING: frozenset({"string"}),
        FieldDescriptor.CPPTYPE_BOOL: frozenset({"boolean"}),
        FieldDescriptor.CPPTYPE_ENUM: frozenset({"string", "number"}),
        FieldDescriptor.CPPTYPE_INT32: _NUMBER,
        FieldDescriptor.CPPTYPE_INT64: _NUMBER,
        FieldDescriptor.CPPTYPE_UINT32: _NUMBER,
        FieldDescriptor.CPPTYPE_UINT64: _NUMBER,
        FieldDescriptor.CPPTYPE_DOUBLE: _NUMBER,
        FieldDescriptor.CPPTYPE_FLOAT: _NUMBER,
    }
)
# Well-known types whose JSON form is a string rather than an object.
_STRING_WKT = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"})


def _check_shape(value: object, descriptor: _Desc, path: str) -> None:
    if not isinstance(value, dict):
        raise Invalid(f"expected a JSON object, got {_json_kind(value)}", field=path)
    if isinstance(value, DuplicateKeys):
        raise Invalid(f"duplicate JSON key {value.duplicate[: limits.MAX_KEY_ECHO]!r}", field=path)
    fields = fields_by_key(descriptor)
    for key, item in value.items():
        fd = fields.get(key)
        if fd is None:
            raise Invalid(f"unknown field {key[: limits.MAX_KEY_ECHO]!r}", field=f"{path}.{key[: limits.MAX_KEY_ECHO]}")
        child = f"{path}.{fd.name}"
        if item is None:
            continue  # proto3 JSON: null means the default value
        if fd.is_repeated:
            if not isinstance(item, list):
                raise Invalid(f"expected a JSON array, got {_json_kind(item)}", field=child)
            limit = _rules(fd).max_items or limits.DEFAULT_MAX_ITEMS
            if len(item) > limit:
                raise LimitExceeded(f"at most {limit} items, got {len(item)}", field=child)
            for index, element in enumerate(item):
                if element is None:
                    raise Invalid("null is not allowed in a list", field=f"{child}[{index}]")
                _check_value(fd, element, f"{child}[{index}]")
        else:
            _check_value(fd, item, child)


def _check_value(fd: _Desc, value: object, path: str) -> None:
    if fd.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
        if fd.message_type.full_name in _STRING_WKT:
            if not isinstance(value, str):
                raise Invalid(f"expected a JSON string, got {_json_kind(value)}", field=path)
            return
        _check_shape(value, fd.message_type, path)
        return
    accepted = _ACCEPTED_KINDS.get(fd.cpp_type, frozenset({"string"}))
    kind = _json_kind(value)
    if kind not in accepted:
        raise Invalid(f"expected a JSON {' or '.join(sorted(accepted))}, got {kind}", field=path)
    bounds = limits.INTEGER_RANGES.get(fd.cpp_type)
    number = json_integer(value)
    if bounds is not None and number is not None and not bounds[0] <= number <= bounds[1]:
        raise Invalid(f"integer out of range {bounds[0]}..{bounds[1]}", field=path)


_PARSE_ERROR_AT = re.compile(r' at "?[A-Za-z0-9_]+((?:\.[A-Za-z0-9_]+(?:\[\d+\])?)*)"?\.*$')
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def explain_parse_error(message: str, descriptor: _Desc) -> tuple[str, str]:
    """Best-effort path and reason from a json_format error (the shape check already caught most)."""
    first_line = message.splitlines()[0] if message else "invalid value"
    reason = first_line.rsplit(" field: ", 1)[-1]
    path = ROOT
    found = _PARSE_ERROR_AT.search(reason)
    if found:
        path = ROOT + _CAMEL.sub(lambda m: "_" + m.group(1).lower(), found.group(1))
        reason = reason[: found.start()]
    return path, reason.rstrip(". ")[:160] or "invalid value"


def parse_binary(data: bytes, message: Message) -> None:
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise Invalid(f"payload is not a valid protobuf message: {str(exc)[:120]}", field=ROOT) from None


@cache
def _rules(fd: _Desc) -> options_pb2.FieldRules:
    options = fd.GetOptions()
    if options.HasExtension(_RULES_EXTENSION):
        rules: options_pb2.FieldRules = options.Extensions[_RULES_EXTENSION]
        return rules
    return options_pb2.FieldRules()


def _check_scalar(  # noqa: PLR0917 - the reference walker's one scalar step
    fd: _Desc, rules: options_pb2.FieldRules, value: Any, path: str, s: Any, checks: jsonwalk.Rules
) -> None:
    if fd.cpp_type == FieldDescriptor.CPPTYPE_STRING:
        if rules.identifier:
            checks.check_identifier(rules.identifier, value, path, fd.name, s)
        elif len(value) > (limit := rules.max_length or limits.DEFAULT_MAX_TEXT_CHARS):
            raise Invalid(f"at most {limit} characters, got {len(value)}", field=path)
    elif fd.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        if fd.enum_type.values_by_number.get(value) is None:
            raise Invalid(f"unknown {fd.enum_type.name} value {value}", field=path)
    elif fd.cpp_type in _FLOAT_TYPES and (not math.isfinite(value) or value < 0):
        # cgw.v1 uses floating point only for measures (masses, volumes): finite and not negative.
        raise Invalid("must be a finite, non-negative number", field=path)


def walk_message(message: Message, path: str, summary: Any, checks: jsonwalk.Rules, *, check_unknown: bool) -> None:
    """Apply the field rules of ``message`` and its children, then ``checks``' identifier rules and hooks."""
    descriptor: _Desc = message.DESCRIPTOR
    if check_unknown and len(UnknownFieldSet(message)):
        raise Invalid("unknown field in binary payload", field=path)
    for fd in descriptor.fields:
        rules = _rules(fd)
        child = f"{path}.{fd.name}"
        if fd.is_repeated:
            _walk_list(fd, rules, getattr(message, fd.name), child, summary, checks, check_unknown=check_unknown)
        elif fd.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            if message.HasField(fd.name):
                _walk_child(getattr(message, fd.name), child, summary, checks, check_unknown)
            elif rules.required:
                raise Invalid("required", field=child)
        else:
            value = getattr(message, fd.name)
            if rules.required and not value:
                raise Invalid("required", field=child)
            if value or fd.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
                _check_scalar(fd, rules, value, child, summary, checks)
    hook = checks.hooks.get(descriptor.full_name)
    if hook is not None:
        hook(message, path, summary)


def _walk_list(  # noqa: PLR0917 - the walker's state, passed down as it is
    fd: _Desc,
    rules: options_pb2.FieldRules,
    items: Any,
    path: str,
    summary: Any,
    checks: jsonwalk.Rules,
    *,
    check_unknown: bool,
) -> None:
    limit = rules.max_items or limits.DEFAULT_MAX_ITEMS
    if len(items) > limit:
        raise LimitExceeded(f"at most {limit} items, got {len(items)}", field=path)
    if rules.required and not items:
        raise Invalid("at least one item is required", field=path)
    for index, item in enumerate(items):
        if fd.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE:
            _walk_child(item, f"{path}[{index}]", summary, checks, check_unknown)
        else:
            _check_scalar(fd, rules, item, f"{path}[{index}]", summary, checks)


def _walk_child(message: Message, path: str, summary: Any, checks: jsonwalk.Rules, check_unknown: bool) -> None:
    if message.DESCRIPTOR.full_name.startswith("google.protobuf."):
        return  # well-known types (Timestamp) are validated by the protobuf runtime
    walk_message(message, path, summary, checks, check_unknown=check_unknown)


def root_facts(message: Message) -> tuple[tuple[str, str], ...]:
    facts: list[tuple[str, str]] = []
    descriptor: _Desc = message.DESCRIPTOR
    for fd in descriptor.fields:
        if fd.is_repeated:
            continue
        value = getattr(message, fd.name)
        if fd.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
            facts.append((fd.name, fd.enum_type.values_by_number[value].name))
        elif fd.cpp_type in (FieldDescriptor.CPPTYPE_UINT64, FieldDescriptor.CPPTYPE_UINT32) and value:
            facts.append((fd.name, str(value)))
    return tuple(facts)
