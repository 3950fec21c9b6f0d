"""OpenAPI entries of the port release routes (``adapters/rest/portroutes.py``), merged by ``openapi.py``."""

from __future__ import annotations

from typing import Any

from adapters.rest.portroutes import PAGE_MAX, WAIT_MAX_SECONDS
from gateway.core.release import Status

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_ERRORS = dict.fromkeys(("400", "401", "403", "422", "429", "503"), _PROBLEM)
_LOCODE = {
    "name": "locode",
    "in": "path",
    "required": True,
    "description": "the port's UN/LOCODE (e.g. NLRTM)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 16},
}
_STATUS = {"type": "string", "enum": [str(s) for s in Status]}
_TIME = {"type": "string", "format": "date-time"}
_COMMON = {
    "transportDocumentNumber": {"type": "string"},
    "containerNumber": {"type": "string", "description": "empty: the B/L as a whole"},
    "status": _STATUS,
    "version": {"type": "integer", "minimum": 1},
    "seq": {"type": "integer", "minimum": 1},
    "effectiveTime": _TIME,
    "from": {"type": "string"},
    "messageId": {"type": "string"},
}
_NOTICE = {
    "type": "object",
    "required": [*_COMMON, "port", "previous", "reason"],
    "properties": _COMMON | {"port": {"type": "string"}, "previous": _STATUS, "reason": {"type": "string"}},
}
_STANDING = {"type": "object", "required": list(_COMMON), "properties": _COMMON}


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def port_paths() -> dict[str, Any]:
    return {
        "/v1/ports/{locode}/notices": {
            "get": {
                "summary": "The port's release stream after a sequence number (subscribed ports, home customs)",
                "parameters": [
                    _LOCODE,
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "the last seq the port applied (0: from the start)",
                        "schema": {"type": "integer", "minimum": 0, "maximum": 2**53},
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": PAGE_MAX},
                    },
                    {
                        "name": "wait",
                        "in": "query",
                        "required": False,
                        "description": "long-poll: seconds to wait for new entries when there are none",
                        "schema": {"type": "integer", "minimum": 0, "maximum": WAIT_MAX_SECONDS},
                    },
                ],
                "responses": {"200": _json("#/components/schemas/PortNotices", "entries in seq order")} | _ERRORS,
            }
        },
        "/v1/ports/{locode}/snapshot": {
            "get": {
                "summary": "The decision in force for every open B/L and container, and the seq it reflects",
                "parameters": [_LOCODE],
                "responses": {"200": _json("#/components/schemas/PortSnapshot", "the snapshot")} | _ERRORS,
            }
        },
    }


def port_schemas() -> dict[str, Any]:
    return {
        "PortNotices": {
            "type": "object",
            "required": ["port", "after", "notices", "next"],
            "properties": {
                "port": {"type": "string"},
                "after": {"type": "integer", "minimum": 0},
                "notices": {"type": "array", "items": _NOTICE},
                "next": {"type": "integer", "minimum": 0, "description": "the last seq in this page (or after)"},
            },
        },
        "PortSnapshot": {
            "type": "object",
            "required": ["port", "seq", "standings"],
            "properties": {
                "port": {"type": "string"},
                "seq": {"type": "integer", "minimum": 0},
                "standings": {"type": "array", "items": _STANDING},
            },
        },
    }
