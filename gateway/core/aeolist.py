"""Parsing AEO data: authorisation records, partner list files (CSV, JSON), operator ids and the MRA table.

Rule 1: every record is checked before it enters the registry; a list file is read row by row and each bad
        row is reported (row number, field, rule) without stopping the others (:class:`ImportReport`).
Rule 2: the issuing administration is never taken from the record: it is the authenticated sender's
        administration (``aeo.status.v1``) or the operator's ``--issuer`` (imports), and the authorisation
        number must fit it (an EU number starts with an EU Member State; China's is ``AEOCN`` + customs code).
Rule 3: identifiers of known schemes are checked by :mod:`gateway.core.identifiers`; a partner's own scheme
        (``TCUI``, ``JP_CORPORATE_NUMBER``...) must have a scheme name and a plain value (:data:`_OPEN_VALUE`).
Rule 4: the MRA table is deployer-maintained data; a table that does not parse is ``Unavailable`` (the
        gateway does not start rather than recognise the wrong traders).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError

from gateway.core import identifiers as ids
from gateway.core.aeo import (
    ADMIN_SHAPE,
    EU,
    SCHEME_SHAPE,
    TYPE_SHAPE,
    Arrangement,
    Authorisation,
    MraSide,
    MraTable,
    OperatorId,
    Status,
    crosswalk,
    parse_date,
)
from gateway.core.errors import GatewayError, IdentifierInvalid, Invalid, LimitExceeded, Unavailable
from gateway.core.payloads import spelled_as_sent
from gateway.wire.cgw.v1 import aeo_pb2

# A partner list is one administration's published AEOs: tens of thousands of rows at most (the EU has ~20 000
# authorisations); 200 000 leaves room and bounds memory at ~200 MB for the parsed rows.
MAX_IMPORT_ROWS = 200_000
MAX_IMPORT_BYTES = 64 * 1024 * 1024
# A holder is known by a handful of identifiers (EORI, national ids, the AEO number).
MAX_IDENTIFIERS = 8
MAX_HOLDER_CHARS = 140
MAX_ROW_ERRORS = 1000  # the report keeps the first ones; the count is always exact
# An MRA table lists every partner of one federation: a few hundred arrangements at most.
MAX_ARRANGEMENTS = 1000
MAX_BENEFITS = 16
MAX_TEXT_CHARS = 200

_EU_NUMBER = re.compile(r"[A-Z]{2}AEO[CSF].*")
_OPEN_VALUE = re.compile(r"[A-Z0-9][A-Z0-9/.\-]{0,34}")
_CSV_COLUMNS = ("number", "type", "status", "valid_from", "valid_until", "status_since", "holder", "identifiers")


# -- operator identifiers --------------------------------------------------------------------------------


def parse_identifier(scheme: str, value: str, field: str) -> OperatorId:
    """One holder identifier, normalised (Rule 3)."""
    scheme = scheme.strip().upper()
    if scheme in ids.SCHEME_RULES:
        return OperatorId(scheme, ids.check_party_identifier(scheme, value, field))
    if not SCHEME_SHAPE.fullmatch(scheme):
        raise Invalid("identifier scheme must be upper-case letters, digits and _ (2-32)", field=field)
    normalised = value.strip().upper().replace(" ", "")
    if not _OPEN_VALUE.fullmatch(normalised):
        raise IdentifierInvalid(f"{scheme}: 1-35 letters, digits and . / -", field=field)
    return OperatorId(scheme, normalised)


def infer_operator(text: str, field: str = "operator") -> OperatorId:
    """``SCHEME:value`` or a bare identifier whose scheme is recognised by its shape (REST and CLI input)."""
    raw = text.strip()
    if len(raw) > ids.MAX_RAW_CHARS + 33:
        raise LimitExceeded("operator identifier too long", field=field)
    if ":" in raw:
        scheme, _, value = raw.partition(":")
        return parse_identifier(scheme, value, field)
    value = raw.upper().replace(" ", "")
    for scheme in ("AEO_CN", "AEO_EU", "USCC", "CN_CUSTOMS_CODE", "EORI"):
        try:
            return OperatorId(scheme, ids.check_party_identifier(scheme, value, field))
        except GatewayError:
            continue
    raise IdentifierInvalid("not a recognisable operator identifier; use SCHEME:value", field=field)


# -- authorisations --------------------------------------------------------------------------------------


def number_scheme(admin: str) -> str:
    return {EU: "AEO_EU", "CN": "AEO_CN"}.get(admin, f"AEO_{admin}")


def _number(admin: str, value: object, field: str) -> tuple[str, str]:
    """(normalised number, issuing state) for an authorisation number of ``admin`` (Rule 2)."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid("required", field=field)
    if admin == EU:
        number = ids.check_eu_aeo(value, field)
        return number, number[:2]
    if admin == "CN":
        return ids.check_cn_aeo(value, field), "CN"
    number = value.strip().upper().replace(" ", "")
    if not _OPEN_VALUE.fullmatch(number):
        raise IdentifierInvalid("AEO number: 1-35 letters, digits and . / -", field=field)
    if number.startswith("AEOCN") or (_EU_NUMBER.fullmatch(number) and number[:2] in ids.EORI_PREFIXES):
        raise IdentifierInvalid(f"AEO number: {admin} may not issue an EU or China format number", field=field)
    return number, admin


def _text(raw: Mapping[str, Any], key: str, path: str, *, required: bool = True, limit: int = MAX_TEXT_CHARS) -> str:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise Invalid("required", field=f"{path}.{key}")
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"expected a string of at most {limit} characters", field=f"{path}.{key}")
    return value.strip()


def _date(raw: Mapping[str, Any], key: str, path: str, *, required: bool) -> date | None:
    value = raw.get(key)
    if value is None or value == "":
        if required:
            raise Invalid("required", field=f"{path}.{key}")
        return None
    try:
        return parse_date(value, key)
    except ValueError:
        raise Invalid("expected a date YYYY-MM-DD", field=f"{path}.{key}") from None


def parse_authorisation(raw: object, *, admin: str, source: str, path: str = "authorisation") -> Authorisation:
    """One authorisation record of ``admin`` (the issuer is never read from the record, Rule 2)."""
    if not isinstance(raw, Mapping):
        raise Invalid("expected an object", field=path)
    number, state = _number(admin, raw.get("number"), f"{path}.number")
    kind = _text(raw, "type", path).upper()
    if not TYPE_SHAPE.fullmatch(kind):
        raise Invalid("AEO type: 2-16 upper-case letters, digits or -", field=f"{path}.type")
    if admin == EU and kind != number[2:6]:
        raise Invalid(f"an EU authorisation {number[2:6]} number must have type {number[2:6]}", field=f"{path}.type")
    try:
        status = Status(_text(raw, "status", path).lower())
    except ValueError:
        raise Invalid("status must be active, suspended, revoked or expired", field=f"{path}.status") from None
    valid_from = _date(raw, "valid_from", path, required=True)
    assert valid_from is not None  # required=True
    valid_until = _date(raw, "valid_until", path, required=False)
    if valid_until is not None and valid_until < valid_from:
        raise Invalid("valid_until is before valid_from", field=f"{path}.valid_until")
    since = _date(raw, "status_since", path, required=False) or valid_from
    holder = _text(raw, "holder", path, limit=MAX_HOLDER_CHARS)
    items = raw.get("identifiers") or []
    if not isinstance(items, list) or len(items) > MAX_IDENTIFIERS:
        raise Invalid(f"expected a list of at most {MAX_IDENTIFIERS} identifiers", field=f"{path}.identifiers")
    identifiers = [OperatorId(number_scheme(admin), number)]
    for i, item in enumerate(items):
        where = f"{path}.identifiers[{i}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("scheme"), str):
            raise Invalid('expected {"scheme": ..., "value": ...}', field=where)
        value = item.get("value")
        if not isinstance(value, str):
            raise Invalid("required", field=f"{where}.value")
        identifiers.append(parse_identifier(item["scheme"], value, f"{where}.value"))
    return Authorisation(
        number=number,
        admin=admin,
        issuing_state=state,
        type=kind,
        status=status,
        valid_from=valid_from,
        valid_until=valid_until,
        status_since=since,
        holder=holder,
        identifiers=crosswalk(identifiers),
        source=source,
    )


def parse_admin(value: str, field: str = "issuer") -> str:
    admin = value.strip().upper()
    if not ADMIN_SHAPE.fullmatch(admin):
        raise Invalid("an administration is an ISO 3166-1 alpha-2 code or EU", field=field)
    return admin


# -- aeo.status.v1 ---------------------------------------------------------------------------------------


@spelled_as_sent(aeo_pb2.AeoStatusUpdate)
def parse_status_message(media: str, data: bytes, *, admin: str, source: str) -> tuple[Authorisation, ...]:
    """The authorisations of an ``aeo.status.v1`` payload that ``validate_payload`` already accepted.

    ``admin`` is the sending administration (Rule 2): every number must be one it issues."""
    message = aeo_pb2.AeoStatusUpdate()
    try:
        if media.split(";", 1)[0].strip().lower() == "application/json":
            json_format.Parse(data, message, ignore_unknown_fields=False)
        else:
            message.ParseFromString(data)
    except (json_format.ParseError, DecodeError, ValueError) as exc:  # validate_payload accepted it: a bug
        raise Invalid(f"aeo.status.v1 payload does not parse: {str(exc)[:120]}", field="payload") from None
    out: list[Authorisation] = []
    for index, item in enumerate(message.authorisations):
        raw = {
            "number": item.number,
            "type": item.type,
            "status": aeo_pb2.AeoAuthorisation.Status.Name(item.status),
            "valid_from": item.valid_from,
            "valid_until": item.valid_until,
            "status_since": item.status_since,
            "holder": item.holder,
            "identifiers": [{"scheme": i.Scheme.Name(i.scheme), "value": i.value} for i in item.identifiers],
        }
        out.append(parse_authorisation(raw, admin=admin, source=source, path=f"payload.authorisations[{index}]"))
    numbers = [a.number for a in out]
    if len(set(numbers)) != len(numbers):
        raise Invalid("an authorisation number is repeated", field="payload.authorisations")
    return tuple(out)


# -- list files ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RowError:
    row: int  # 1-based data row (CSV: the header is row 0); JSON: 1-based list position
    code: str
    field: str
    detail: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    authorisations: tuple[Authorisation, ...]
    errors: tuple[RowError, ...]  # the first MAX_ROW_ERRORS
    rows: int
    rejected: int  # exact count of bad rows

    def record(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "accepted": len(self.authorisations),
            "rejected": self.rejected,
            "errors": [{"row": e.row, "code": e.code, "field": e.field, "detail": e.detail} for e in self.errors],
        }


def _csv_rows(text: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in _CSV_COLUMNS[:7] if c not in columns and c not in ("valid_until", "status_since")]
    if missing:
        raise Invalid(f"CSV header lacks columns {missing}; expected {list(_CSV_COLUMNS)}", field="row 0")
    rows: list[dict[str, Any]] = []
    for index, row in enumerate(reader):
        if index >= MAX_IMPORT_ROWS:
            raise LimitExceeded(f"more than {MAX_IMPORT_ROWS} rows", field=f"row {index + 1}")
        clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        pairs = [p for p in clean.get("identifiers", "").split(";") if p.strip()]
        clean["identifiers"] = [dict(zip(("scheme", "value"), p.split(":", 1), strict=False)) for p in pairs]
        rows.append(clean)
    return rows


def _json_rows(text: str) -> list[Any]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise Invalid(f"not valid JSON: {str(exc)[:120]}", field="file") from None
    rows = document.get("authorisations") if isinstance(document, dict) else document
    if not isinstance(rows, list):
        raise Invalid('expected a JSON list or {"authorisations": [...]}', field="file")
    if len(rows) > MAX_IMPORT_ROWS:
        raise LimitExceeded(f"more than {MAX_IMPORT_ROWS} rows", field="file")
    return rows


def parse_list(data: bytes, *, fmt: str, admin: str, source: str) -> ImportReport:
    """A partner's (or the home administration's) list file: every good row, and a report of the bad ones."""
    if len(data) > MAX_IMPORT_BYTES:
        raise LimitExceeded(f"list file larger than {MAX_IMPORT_BYTES} bytes", field="file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"not UTF-8 (byte {exc.start})", field="file") from None
    rows = _csv_rows(text) if fmt == "csv" else _json_rows(text)
    good: dict[str, Authorisation] = {}
    errors: list[RowError] = []
    rejected = 0
    for index, raw in enumerate(rows, start=1):
        try:
            auth = parse_authorisation(raw, admin=admin, source=source, path=f"row {index}")
            if auth.number in good:
                raise Invalid("authorisation number repeated in the file", field=f"row {index}.number")
            good[auth.number] = auth
        except GatewayError as exc:
            rejected += 1
            if len(errors) < MAX_ROW_ERRORS:
                errors.append(RowError(index, exc.code, exc.field or f"row {index}", exc.detail or exc.public))
    return ImportReport(tuple(good.values()), tuple(errors), len(rows), rejected)


# -- the MRA table ---------------------------------------------------------------------------------------


def _strings(value: object, field: str, limit: int) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > limit:
        raise Unavailable(f"expected a list of at most {limit} strings", field=field)
    if not all(isinstance(v, str) and 0 < len(v) <= MAX_TEXT_CHARS for v in value):
        raise Unavailable(f"expected strings of 1-{MAX_TEXT_CHARS} characters", field=field)
    return tuple(value)


def _arrangement(raw: object, path: str) -> Arrangement:
    if not isinstance(raw, Mapping):
        raise Unavailable("expected an object", field=path)
    mid = raw.get("id")
    if not isinstance(mid, str) or not 0 < len(mid) <= 64:
        raise Unavailable("id must be a short string", field=f"{path}.id")
    sides_raw = raw.get("sides")
    if not isinstance(sides_raw, list) or len(sides_raw) != 2:
        raise Unavailable("an arrangement has exactly two sides", field=f"{path}.sides")
    sides: list[MraSide] = []
    for i, side in enumerate(sides_raw):
        where = f"{path}.sides[{i}]"
        if not isinstance(side, Mapping) or not isinstance(side.get("admin"), str):
            raise Unavailable("a side needs admin, programme and types", field=where)
        admin = side["admin"]
        if not ADMIN_SHAPE.fullmatch(admin):
            raise Unavailable("admin must be ISO 3166-1 alpha-2 or EU", field=f"{where}.admin")
        types = _strings(side.get("types"), f"{where}.types", 16)
        if not types or not all(TYPE_SHAPE.fullmatch(t) for t in types):
            raise Unavailable("types must be AEO type names", field=f"{where}.types")
        programme = side.get("programme")
        if not isinstance(programme, str) or not 0 < len(programme) <= MAX_TEXT_CHARS:
            raise Unavailable("programme must be a name", field=f"{where}.programme")
        sides.append(MraSide(admin, programme, frozenset(types)))
    if sides[0].admin == sides[1].admin:
        raise Unavailable("the two sides must be different administrations", field=f"{path}.sides")
    try:
        since = parse_date(raw.get("since"), f"{path}.since")
        until = parse_date(raw["until"], f"{path}.until") if raw.get("until") is not None else None
    except ValueError as exc:
        raise Unavailable(str(exc), field=path) from None
    if until is not None and until < since:
        raise Unavailable("until is before since", field=f"{path}.until")
    source = raw.get("source", "")
    if not isinstance(source, str) or len(source) > MAX_TEXT_CHARS:
        raise Unavailable("source must be a short string", field=f"{path}.source")
    benefits = _strings(raw.get("benefits", []), f"{path}.benefits", MAX_BENEFITS)
    return Arrangement(mid, (sides[0], sides[1]), since, until, benefits, source)


def parse_mra_table(document: object, source: str = "mra.json") -> MraTable:
    """The deployer's MRA table (Rule 4)."""
    if not isinstance(document, Mapping):
        raise Unavailable("the MRA table must be a JSON object", field=source)
    version = document.get("version")
    if not isinstance(version, str) or not 0 < len(version) <= 64:
        raise Unavailable("version must be a short string", field=f"{source}.version")
    raw = document.get("arrangements")
    if not isinstance(raw, list) or len(raw) > MAX_ARRANGEMENTS:
        raise Unavailable(f"arrangements must be a list of at most {MAX_ARRANGEMENTS}", field=f"{source}.arrangements")
    arrangements = tuple(_arrangement(item, f"{source}.arrangements[{i}]") for i, item in enumerate(raw))
    ids_seen = [a.id for a in arrangements]
    if len(set(ids_seen)) != len(ids_seen):
        raise Unavailable("arrangement ids must be unique", field=f"{source}.arrangements")
    home = _strings(document.get("home_benefits", []), f"{source}.home_benefits", MAX_BENEFITS)
    return MraTable(version=version, arrangements=arrangements, home_benefits=home)
