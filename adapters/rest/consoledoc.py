"""OpenAPI entries of the audit console routes (``adapters/rest/consoleroutes.py``), merged by ``openapi.py``."""

from __future__ import annotations

from typing import Any

from adapters.rest.consoleroutes import FILES
from gateway.core.exchanges import FILTER_FIELDS, MAX_BUCKET_SECONDS, MAX_FILTER_CHARS, MIN_BUCKET_SECONDS
from gateway.ops.exchangelog import MAX_HITS

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_ERRORS = dict.fromkeys(("400", "401", "403", "404", "413", "422", "429", "503"), _PROBLEM)
_TIME = {"type": "string", "format": "date-time"}
_SCAN = {
    "scanned_from": {"type": "integer", "minimum": 0, "description": "lowest ledger index the scan read"},
    "scanned_to": {"type": "integer", "minimum": 0, "description": "the scan read indexes below this one"},
    "complete": {"type": "boolean", "description": "false: the bounded scan stopped early; page on"},
}
_ENTRY = {"type": "object", "description": "the ledger entry (canonical audit record) as JSON"}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def _text(name: str, description: str, max_length: int = MAX_FILTER_CHARS) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", "maxLength": max_length},
    }


def _number(name: str, description: str, minimum: int, maximum: int) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum},
    }


def _static(summary: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "security": [{}],
            "responses": {"200": {"description": "file", "content": content}} | _ERRORS,
        }
    }


_SINCE = _text("since", "RFC 3339 time with offset: entries at or after it", 40)
_UNTIL = _text("until", "RFC 3339 time with offset: entries before it", 40)


def console_paths() -> dict[str, Any]:
    files: dict[str, Any] = {media: {} for media in sorted(set(FILES.values()))}
    return {
        "/console": {
            "get": {
                "summary": "The audit console (redirects to /console/)",
                "security": [{}],
                "responses": {"308": {"description": "to /console/"}} | _ERRORS,
            }
        },
        "/console/": _static("The audit console's page (HTML; it reads the /v1/audit endpoints)", {"text/html": {}}),
        "/console/{name}": {
            "get": {
                "summary": "One of the console's files (scripts, style); any other name is 404",
                "security": [{}],
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": sorted(FILES)},
                    }
                ],
                "responses": {"200": {"description": "file", "content": files}} | _ERRORS,
            }
        },
        "/v1/audit/exchanges": {
            "get": {
                "summary": "Ledger entries matching every given filter, newest first (auditors, home customs)",
                "parameters": [
                    *(_text(name, f"{name} to match") for name in FILTER_FIELDS),
                    _SINCE,
                    _UNTIL,
                    _number("before", "scan entries below this index (page on with scanned_from)", 0, 2**63 - 1),
                    _number("limit", "most hits to return", 1, MAX_HITS),
                ],
                "responses": {"200": _json("#/components/schemas/Exchanges", "hits")} | _ERRORS,
            }
        },
        "/v1/audit/story/{sender}/{message_id}": {
            "get": {
                "summary": "The ledger entries about one message, in ledger order (auditors, home customs)",
                "parameters": [
                    {"name": "sender", "in": "path", "required": True, "schema": {"type": "string"}},
                    {"name": "message_id", "in": "path", "required": True, "schema": {"type": "string"}},
                ],
                "responses": {"200": _json("#/components/schemas/Story", "the story")} | _ERRORS,
            }
        },
        "/v1/audit/rejections": {
            "get": {
                "summary": "Rejected events per code and time bucket (auditors, home customs)",
                "parameters": [
                    _SINCE,
                    _UNTIL,
                    _number(
                        "bucket", "bucket length in seconds (default 3600)", MIN_BUCKET_SECONDS, MAX_BUCKET_SECONDS
                    ),
                ],
                "responses": {"200": _json("#/components/schemas/Rejections", "counts")} | _ERRORS,
            }
        },
    }


def console_schemas() -> dict[str, Any]:
    hit = {
        "type": "object",
        "required": ["index", "event", "entry"],
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "at": {"type": ["string", "null"]},
            "event": {"type": ["string", "null"]},
            "sender": {"type": ["string", "null"]},
            "message_id": {"type": ["string", "null"]},
            "type": {"type": ["string", "null"]},
            "recipients": {"type": "array", "items": {"type": "string"}},
            "code": {"type": ["string", "null"]},
            "entry": _ENTRY,
        },
    }
    step = {
        "type": "object",
        "required": ["index", "step", "entry"],
        "properties": {
            "index": {"type": "integer", "minimum": 0},
            "at": {"type": ["string", "null"]},
            "step": {
                "type": "string",
                "enum": [
                    "accepted",
                    "forwarded",
                    "delivered",
                    "delivery_failed",
                    "acknowledged",
                    "recalled",
                    "port_update",
                    "rejected",
                ],
            },
            "entry": _ENTRY,
        },
    }
    bucket = {
        "type": "object",
        "required": ["start", "counts"],
        "properties": {"start": _TIME, "counts": {"type": "object", "additionalProperties": {"type": "integer"}}},
    }
    return {
        "Exchanges": {
            "type": "object",
            "required": ["hits", *_SCAN],
            "properties": {"hits": {"type": "array", "items": hit}} | _SCAN,
        },
        "Story": {
            "type": "object",
            "required": ["message", "steps", "scanned_to", "complete"],
            "properties": {
                "message": {"$ref": "#/components/schemas/Message"},
                "steps": {"type": "array", "items": step},
                "scanned_to": _SCAN["scanned_to"],
                "complete": _SCAN["complete"],
            },
        },
        "Rejections": {
            "type": "object",
            "required": ["bucket_seconds", "codes", "buckets", "since", "until", *_SCAN],
            "properties": {
                "bucket_seconds": {"type": "integer"},
                "codes": {"type": "array", "items": {"type": "string"}},
                "buckets": {"type": "array", "items": bucket},
                "since": _TIME,
                "until": _TIME,
            }
            | _SCAN,
        },
    }
