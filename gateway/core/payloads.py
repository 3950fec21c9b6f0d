"""Payload validation: schema (protobuf, proto3 JSON mapping) plus identifier rules, into a frozen summary.

``validate_payload(message_type, media, data)`` is the pipeline's "validate payload" step. It returns a
:class:`ValidatedPayload` (what policy and routing need) or raises a typed error whose ``field`` is the path
inside the payload, e.g. ``payload.consignments[0].containers[1].number``.

Rule 1: bound before parsing: the byte size (:data:`limits.MAX_PAYLOAD_BYTES`) is checked here, the nesting depth
        of JSON by :mod:`gateway.core.jsondecode`, both on the raw bytes; exceeding them raises ``LimitExceeded``.
Rule 2: JSON must be UTF-8 and one object; duplicate keys and the non-JSON constants NaN/Infinity are refused.
Rule 3: the proto3 JSON mapping is the schema: each key must name a field (proto or JSON name) and carry the
        JSON type of that field; lists are bounded before they are parsed. JSON takes the one-pass walk of
        :mod:`gateway.core.jsonwalk`; ``application/protobuf`` (and JSON with ``reference=True``) the reference
        path of :mod:`gateway.core.messagewalk`, which builds the message and refuses unknown binary fields.
Rule 4: the field rules annotated in the .proto files (``cgw.v1.rules``: required, max_length, max_items,
        identifier kind) are applied by the walker of either path, with the identifier checks and message hooks
        of this module (:func:`_json_rules`); :mod:`gateway.core.identifiers` checks identifiers.
Rule 5: protobuf objects never leave this module: the result is a frozen summary of plain values.
Rule 6: adding a message type is one row in :data:`MESSAGE_TYPES` plus the annotations in its .proto file;
        rules that annotations cannot express (cross-field rules, scheme-dependent identifiers) go in
        :data:`_MESSAGE_HOOKS`, keyed by the message's full name; a hook runs after the message's fields.
Rule 7: an error's field path names each field as the sender wrote it: the proto3 JSON mapping takes a field
        under its JSON name (``containerNumbers``) or its proto name (``container_numbers``), and the path uses
        the key the document's object has; a field the document does not have (a required one, or any field of
        a binary or XML payload) is named by its JSON name. Inside, the walkers (the reference, jsonwalk,
        jsonstructs) and the hooks name fields by proto name, so they agree by construction; the error is
        re-spelled once, where it leaves (:func:`validate_payload`, and :func:`respell` for the parsers of
        accepted payloads), at no cost to a payload that passes. Summary paths (``PartyRef.path``, notes) keep
        the proto names.
"""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, wraps
from types import MappingProxyType
from typing import Any, Concatenate, NamedTuple, ParamSpec, TypeVar

import msgspec
from google.protobuf.message import Message

from gateway.core import identifiers as ids
from gateway.core import jsonstructs, jsontables, jsonwalk, limits
from gateway.core.errors import GatewayError, Internal, Invalid, LimitExceeded, UnsupportedMediaType
from gateway.core.jsondecode import ROOT, decode_json
from gateway.core.locodes import FUNCTION_PORT
from gateway.core.messagewalk import (
    explain_parse_error,
    fields_by_key,
    parse_binary,
    parse_json,
    root_facts,
    walk_message,
)
from gateway.core.registry import MEMBER_ID
from gateway.wire.cgw.v1 import (
    aeo_pb2,
    common_pb2,
    csi_pb2,
    manifest_pb2,
    megaport_pb2,
    options_pb2,
    port_pb2,
    prearrival_pb2,
    recall_pb2,
    release_pb2,
    sstl_pb2,
)

MEDIA_JSON = "application/json"
MEDIA_PROTOBUF = "application/protobuf"
# A UN/EDIFACT interchange: the pipeline translates it to JSON first (gateway.features.edifact.translation); never
# parsed here.
MEDIA_EDIFACT = "application/edifact"
_MEDIA_ALIASES: Mapping[str, str] = MappingProxyType({"application/x-protobuf": MEDIA_PROTOBUF})
_ALL_MEDIA = frozenset({MEDIA_JSON, MEDIA_PROTOBUF})

# Descriptors are typed loosely: the protobuf stubs split them into python and upb classes that mypy cannot
# unify, and extensions in protoc's .pyi are typed as plain FieldDescriptor.
_Desc = Any


@dataclass(frozen=True, slots=True)
class MessageTypeSpec:
    type: str  # the header "type", e.g. manifest.cargo.v1
    schema: str  # the header "payload.schema" id: the full protobuf message name, e.g. cgw.v1.CargoManifest
    message: builtins.type[Message]  # the generated protobuf class
    media: frozenset[str] = _ALL_MEDIA

    def __post_init__(self) -> None:
        if self.message.DESCRIPTOR.full_name != self.schema:
            raise Internal(f"message type {self.type}: schema {self.schema} is not {self.message.__name__}")

    @property
    def proto_name(self) -> str:
        return self.message.DESCRIPTOR.full_name


def _row(
    type_: str, message: builtins.type[Message], media: frozenset[str] = _ALL_MEDIA
) -> tuple[str, MessageTypeSpec]:
    return type_, MessageTypeSpec(type_, message.DESCRIPTOR.full_name, message, media)


MESSAGE_TYPES: Mapping[str, MessageTypeSpec] = MappingProxyType(
    dict(
        [
            _row("manifest.cargo.v1", manifest_pb2.CargoManifest, _ALL_MEDIA | {MEDIA_EDIFACT}),
            _row("prearrival.ens.v1", prearrival_pb2.EntrySummaryDeclaration),
            _row("release.notice.v1", release_pb2.ReleaseNotice),
            _row("sstl.security-data.v1", sstl_pb2.SstlSecurityData),
            _row("sstl.control-result.v1", sstl_pb2.SstlControlResult),
            _row("csi.examination-request.v1", csi_pb2.CsiExaminationRequest),
            _row("csi.examination-result.v1", csi_pb2.CsiExaminationResult),
            _row("megaport.rpm-alarm.v1", megaport_pb2.RpmAlarm),
            _row("megaport.adjudication.v1", megaport_pb2.AlarmAdjudication),
            _row("intel.recall.v1", recall_pb2.IntelRecall),
            _row("aeo.status.v1", aeo_pb2.AeoStatusUpdate),
            _row("port.gate-out.v1", port_pb2.GateOut),
            _row("alert.gate-out.v1", port_pb2.GateOutAlert),
            _row("port.stream.v1", port_pb2.PortStreamUpdate),
        ]
    )
)


# -- the result -------------------------------------------------------------------------------------------


# The small values of a result are named tuples: built and hashed in C, several per message (a frozen dataclass
# sets each field through object.__setattr__ and hashes in Python).


class TraderId(NamedTuple):
    scheme: str  # cgw.v1.PartyIdentifier.Scheme name: EORI, USCC, AEO_EU, AEO_CN, CN_CUSTOMS_CODE
    value: str  # normalised


class PartyRef(NamedTuple):
    role: str  # cgw.v1.Party.Role name, e.g. CONSIGNOR
    country: str  # ISO 3166-1 alpha-2 of the address
    identifiers: tuple[TraderId, ...]
    path: str  # where it sits, e.g. payload.consignments[0].consignor


class PortRef(NamedTuple):
    role: str  # the field name, e.g. port_of_loading, place_of_delivery
    code: str  # the code to use (the current port entry when a legacy alias was sent)
    declared: str  # the code as sent (normalised case)


@dataclass(frozen=True, slots=True)
class ValidatedPayload:
    """What policy, AEO enrichment and routing need from a payload that passed validation."""

    type: str
    schema: str
    media: str
    size: int
    transport_documents: tuple[str, ...] = ()
    containers: tuple[str, ...] = ()
    ports: tuple[PortRef, ...] = ()
    parties: tuple[PartyRef, ...] = ()
    vessels: tuple[str, ...] = ()  # IMO numbers
    hs_codes: tuple[str, ...] = ()
    dangerous_goods: tuple[str, ...] = ()  # UN numbers
    facts: tuple[tuple[str, str], ...] = ()  # top-level enum / integer fields, e.g. ("decision", "HOLD")
    notes: tuple[str, ...] = ()  # accepted oddities, e.g. a legacy UN/LOCODE read as its alias
    recalled: tuple[str, str] | None = None  # intel.recall.v1: (original sender, message id) it withdraws

    def fact(self, name: str) -> str | None:
        return next((value for key, value in self.facts if key == name), None)


# -- entry point ------------------------------------------------------------------------------------------


def validate_payload(
    message_type: str, media: str, data: bytes, *, schema: str | None = None, reference: bool = False
) -> ValidatedPayload:
    """Validate ``data`` as the payload of ``message_type``; ``schema`` (the header's claim) must match.

    JSON goes through the one-pass walk of :mod:`gateway.core.jsonwalk`; ``reference=True`` forces the
    reference path (shape check, ``json_format.ParseDict``, rule walk on the message), its test oracle.
    """
    spec = MESSAGE_TYPES.get(message_type)
    if spec is None:
        raise Invalid("unknown message type", field="type")
    if schema is not None and schema != spec.schema:
        raise Invalid(f"schema must be {spec.schema} for {spec.type}", field="payload.schema")
    base_media = _base_media(media)
    if base_media not in spec.media:
        raise UnsupportedMediaType(f"{spec.type} accepts {', '.join(sorted(spec.media))}", field="payload.media")
    if base_media not in _ALL_MEDIA:
        raise UnsupportedMediaType(f"{base_media} must be translated to JSON before validation", field="payload.media")
    if len(data) > limits.MAX_PAYLOAD_BYTES:
        raise LimitExceeded(f"payload larger than {limits.MAX_PAYLOAD_BYTES} bytes", field=ROOT)
    try:
        return _validate(spec, base_media, data, reference)
    except GatewayError as exc:
        respell(exc, spec.message.DESCRIPTOR, base_media, data)  # Rule 7
        raise


def _validate(spec: MessageTypeSpec, base_media: str, data: bytes, reference: bool) -> ValidatedPayload:
    if base_media == MEDIA_JSON and not reference and jsontables.table_for(spec.message.DESCRIPTOR).fast:
        descriptor = spec.message.DESCRIPTOR
        values = jsonstructs.decode(data, descriptor)  # the everyday spelling, decoded and converted in C
        if values is not None:
            walked = _Summary()
            try:
                facts = jsonstructs.walk(values, descriptor, ROOT, walked, _json_rules())
            except GatewayError:
                # The full walk below reports it, with the reference's precedence: ``gateway.core.jsonstructs``
                # only ever takes documents, the full walk owns every error.
                pass
            else:
                return walked.freeze(spec, base_media, len(data), facts)
        walked = _Summary()
        facts = jsonwalk.walk_json(decode_json(data), descriptor, ROOT, walked, _json_rules())
        return walked.freeze(spec, base_media, len(data), facts)
    message = spec.message()
    if base_media == MEDIA_JSON:
        parse_json(data, message)
    else:
        parse_binary(data, message)
    summary = _Summary()
    walk_message(message, ROOT, summary, _json_rules(), check_unknown=base_media == MEDIA_PROTOBUF)
    return summary.freeze(spec, base_media, len(data), root_facts(message))


def _base_media(media: str) -> str:
    base, _, params = media.partition(";")
    base = base.strip().lower()
    charset = params.strip().lower()
    if charset and charset.replace(" ", "") not in {"charset=utf-8", 'charset="utf-8"'}:
        raise UnsupportedMediaType("only UTF-8 JSON is accepted", field="payload.media")
    return _MEDIA_ALIASES.get(base, base)


# -- JSON: bounds, duplicates, shape ----------------------------------------------------------------------


@cache
def _json_rules() -> jsonwalk.Rules:
    # _party checks every identifier of a party as _party_identifier does, with the same paths.
    repeated_by = MappingProxyType({"cgw.v1.PartyIdentifier": "cgw.v1.Party"})
    struct_hooks = MappingProxyType({"cgw.v1.Party": _party_struct})  # every trader party of every filing
    return jsonwalk.Rules(_check_identifier, _MESSAGE_HOOKS, explain_parse_error, repeated_by, struct_hooks)


# -- field paths as the sender wrote them (Rule 7) ----------------------------------------------------------

_SEGMENT = re.compile(r"\.([A-Za-z0-9_]+)(?:\[([0-9]+)\])?")


def spelled_path(path: str, descriptor: _Desc, document: Any) -> str:
    """``path`` (fields by proto name under :data:`ROOT`) with each field named as ``document`` spells it.

    ``document`` is the decoded JSON payload (``None`` for a binary or XML one: JSON names throughout). The
    walk stops at the first segment that names no field of its message (an unknown key, echoed as sent)."""
    if not path.startswith(ROOT + "."):
        return path
    parts = [ROOT]
    at = len(ROOT)
    node: Any = document
    while descriptor is not None and (found := _SEGMENT.match(path, at)) is not None:
        fd = fields_by_key(descriptor).get(found.group(1))
        if fd is None:
            break
        key = fd.name if isinstance(node, dict) and fd.name in node else fd.json_name
        index = found.group(2)
        parts.append(f".{key}" if index is None else f".{key}[{index}]")
        node = node.get(key) if isinstance(node, dict) else None
        if index is not None:
            node = node[int(index)] if isinstance(node, list) and int(index) < len(node) else None
        descriptor = fd.message_type
        at = found.end()
    return "".join(parts) + path[at:]


def respell(error: GatewayError, descriptor: _Desc, media: str, data: bytes) -> None:
    """Re-spell ``error``'s payload field path as the sender wrote it (Rule 7); only an error pays for it: a
    JSON payload is decoded again (it is at most :data:`limits.MAX_PAYLOAD_BYTES` and was decoded before)."""
    field = error.field
    if field is None or not field.startswith(ROOT + "."):
        return
    document: Any = None
    if media.partition(";")[0].strip().lower() == MEDIA_JSON:
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError: JSON names, then
            document = None
    error.relocate(spelled_path(field, descriptor, document))


_P = ParamSpec("_P")
_T = TypeVar("_T")


def spelled_as_sent(
    message: builtins.type[Message],
) -> Callable[[Callable[Concatenate[str, bytes, _P], _T]], Callable[Concatenate[str, bytes, _P], _T]]:
    """Rule 7 for a parser ``(media, data, ...)`` of an accepted payload of ``message``: the errors it raises
    name fields as the sender wrote them, like :func:`validate_payload`'s."""

    def decorate(parse: Callable[Concatenate[str, bytes, _P], _T]) -> Callable[Concatenate[str, bytes, _P], _T]:
        @wraps(parse)
        def parse_as_sent(media: str, data: bytes, /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
            try:
                return parse(media, data, *args, **kwargs)
            except GatewayError as exc:
                respell(exc, message.DESCRIPTOR, media, data)
                raise

        return parse_as_sent

    return decorate


# -- the rule walker --------------------------------------------------------------------------------------


class _Summary:
    """Mutable accumulator used only while walking one message (a plain class: one per validation)."""

    __slots__ = ("notes", "parties", "ports", "recalled", "values")

    def __init__(self) -> None:
        self.values: dict[int, list[str]] = {}
        self.ports: list[PortRef] = []
        self.parties: list[PartyRef] = []
        self.notes: list[str] = []
        self.recalled: tuple[str, str] | None = None

    def add(self, kind: int, value: str) -> None:
        bucket = self.values.setdefault(kind, [])
        if value not in bucket:
            bucket.append(value)

    def freeze(
        self, spec: MessageTypeSpec, media: str, size: int, facts: tuple[tuple[str, str], ...]
    ) -> ValidatedPayload:
        values = self.values
        return ValidatedPayload(
            type=spec.type,
            schema=spec.schema,
            media=media,
            size=size,
            transport_documents=tuple(values.get(options_pb2.IDENTIFIER_KIND_TRANSPORT_DOCUMENT, ())),
            containers=tuple(values.get(options_pb2.IDENTIFIER_KIND_CONTAINER_NUMBER, ())),
            ports=tuple(dict.fromkeys(self.ports)),
            parties=tuple(self.parties),
            vessels=tuple(values.get(options_pb2.IDENTIFIER_KIND_IMO_NUMBER, ())),
            hs_codes=tuple(values.get(options_pb2.IDENTIFIER_KIND_HS_CODE, ())),
            dangerous_goods=tuple(values.get(options_pb2.IDENTIFIER_KIND_UN_NUMBER, ())),
            facts=facts,
            notes=tuple(self.notes),
            recalled=self.recalled,
        )


# Each rule checks a distinct valid value once (``gateway.core.identifiers.Remembered`` keeps the normal forms
# of the valid values it met).
_IDENTIFIER_RULES: Mapping[int, ids.Checker] = MappingProxyType(
    {
        options_pb2.IDENTIFIER_KIND_CONTAINER_NUMBER: ids.Remembered(ids.check_container_number),
        options_pb2.IDENTIFIER_KIND_IMO_NUMBER: ids.Remembered(ids.check_imo),
        options_pb2.IDENTIFIER_KIND_HS_CODE: ids.Remembered(ids.check_hs_code),
        options_pb2.IDENTIFIER_KIND_UN_NUMBER: ids.Remembered(ids.check_un_number),
        options_pb2.IDENTIFIER_KIND_COUNTRY_CODE: ids.Remembered(ids.check_country),
        options_pb2.IDENTIFIER_KIND_TRANSPORT_DOCUMENT: ids.Remembered(ids.check_transport_document),
    }
)


def _port_locode(value: str, field: str) -> ids.ResolvedLocode:
    return ids.resolve_locode(value, field, function=FUNCTION_PORT)


def _any_locode(value: str, field: str) -> ids.ResolvedLocode:
    return ids.resolve_locode(value, field, function=None)


# Where a port is expected the location must have the port function; elsewhere any function will do.
_LOCODE_RULES: Mapping[int, Callable[[str, str], ids.ResolvedLocode]] = MappingProxyType(
    {
        options_pb2.IDENTIFIER_KIND_PORT_LOCODE: ids.Remembered(_port_locode),
        options_pb2.IDENTIFIER_KIND_LOCATION_LOCODE: ids.Remembered(_any_locode),
    }
)


def _check_identifier(kind: int, value: str, path: str, role: str, summary: _Summary) -> None:
    locode = _LOCODE_RULES.get(kind)
    if locode is not None:
        resolved = locode(value, path)
        summary.ports.append(PortRef(role, resolved.code, resolved.declared))
        if resolved.alias_note:
            summary.notes.append(f"{path}: {resolved.alias_note}")
        return
    rule = _IDENTIFIER_RULES.get(kind)
    if rule is None:
        raise Internal(f"no identifier rule for kind {kind}", field=path)
    summary.add(kind, rule(value, path))


# -- per-message hooks and cross-field rules --------------------------------------------------------------


def _enum_names(enum: Any) -> Mapping[int, str]:
    """Number -> name of a generated enum; the walkers refuse unknown numbers before any hook runs."""
    return MappingProxyType({value.number: value.name for value in enum.DESCRIPTOR.values})


_SCHEMES = _enum_names(common_pb2.PartyIdentifier.Scheme)
_ROLES = _enum_names(common_pb2.Party.Role)


def _party_identifier(message: Any, path: str, summary: _Summary) -> None:
    ids.check_party_identifier(_SCHEMES[message.scheme], message.value, f"{path}.value")


def _party(message: Any, path: str, summary: _Summary) -> None:
    # Runs after the walker checked every field of the party, so these calls only normalise.
    trader_ids: list[TraderId] = []
    for index, item in enumerate(message.identifiers):
        scheme = _SCHEMES[item.scheme]
        value = ids.check_party_identifier(scheme, item.value, f"{path}.identifiers[{index}].value")
        trader_ids.append(TraderId(scheme, value))
    country = _IDENTIFIER_RULES[options_pb2.IDENTIFIER_KIND_COUNTRY_CODE](
        message.address.country, f"{path}.address.country"
    )
    summary.parties.append(PartyRef(_ROLES[message.role], country, tuple(trader_ids), path))


def _party_struct(party: Any, path: str, summary: _Summary) -> None:
    """:func:`_party` on a jsonstructs Struct (``Rules.struct_hooks``): there, enums are names already and the
    required fields (role, address.country, each identifier's scheme and value) are present and not empty."""
    trader_ids: list[TraderId] = []
    identifiers = party.identifiers
    if identifiers is not msgspec.UNSET:
        for index, item in enumerate(identifiers):
            value = ids.check_party_identifier(item.scheme, item.value, f"{path}.identifiers[{index}].value")
            trader_ids.append(TraderId(item.scheme, value))
    country = _IDENTIFIER_RULES[options_pb2.IDENTIFIER_KIND_COUNTRY_CODE](
        party.address.country, f"{path}.address.country"
    )
    summary.parties.append(PartyRef(party.role, country, tuple(trader_ids), path))


def _release_notice(message: Any, path: str, summary: _Summary) -> None:
    if not message.transport_document_number and not message.container_numbers:
        raise Invalid("a transport document number or at least one container number is required", field=path)


def _entry_summary(message: Any, path: str, summary: _Summary) -> None:
    # ICS2: each house-level transport document must be unique within the filing.
    seen: set[str] = set()
    for index, house in enumerate(message.house_consignments):
        number = house.transport_document_number.strip().upper()
        if number in seen:
            raise Invalid(
                "house transport document number repeated in the filing",
                field=f"{path}.house_consignments[{index}].transport_document_number",
            )
        seen.add(number)
        # ICS2 requires the commodity code (HS, 6 digits at least) on every goods item of an entry summary.
        for item_index, item in enumerate(house.goods_items):
            if not item.hs_code:
                raise Invalid("required", field=f"{path}.house_consignments[{index}].goods_items[{item_index}].hs_code")


def _recall(message: Any, path: str, summary: _Summary) -> None:
    if not MEMBER_ID.fullmatch(message.original_sender):
        raise Invalid("not a member id", field=f"{path}.original_sender")
    summary.recalled = (message.original_sender, message.message_id)


_MESSAGE_HOOKS: Mapping[str, Callable[[Any, str, _Summary], None]] = MappingProxyType(
    {
        "cgw.v1.PartyIdentifier": _party_identifier,
        "cgw.v1.Party": _party,
        "cgw.v1.ReleaseNotice": _release_notice,
        "cgw.v1.EntrySummaryDeclaration": _entry_summary,
        "cgw.v1.IntelRecall": _recall,
    }
)
