"""The OpenAPI 3.1 description of the REST adapter (served at ``/v1/openapi.json``).

Rule: this document describes exactly the routes in ``adapters/rest/app.py``; ``tests/adapters`` checks both
lists match and a schemathesis run checks responses against it.
"""

from __future__ import annotations

from typing import Any

from adapters.rest.consoledoc import console_paths, console_schemas
from adapters.rest.portdoc import port_paths, port_schemas
from gateway import __version__
from gateway.core.witness import MAX_REQUEST_BYTES
from gateway.interfaces.config import Limits

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_ERRORS = dict.fromkeys(("400", "401", "403", "404", "413", "415", "422", "429", "503"), _PROBLEM)


def _query(
    name: str, description: str, *, required: bool = False, minimum: int = 0, maximum: int = 10**18 - 1
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "integer", "minimum": minimum, "maximum": maximum},
    }


def _text_query(name: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": 100},
    }


_NULLABLE_TEXT = {"type": ["string", "null"]}
_RECOGNITION = {
    "type": "object",
    "required": ["operator", "recognising_admin", "date", "recognised", "benefits", "reasons"],
    "properties": {
        "operator": {"type": "string"},
        "recognising_admin": {"type": "string"},
        "date": {"type": "string", "format": "date"},
        "recognised": {"type": "boolean"},
        "authorisation": _NULLABLE_TEXT,
        "issuing_admin": _NULLABLE_TEXT,
        "type": _NULLABLE_TEXT,
        "status": _NULLABLE_TEXT,
        "arrangement": {"type": ["string", "null"], "description": "the MRA id, or home"},
        "benefits": {"type": "array", "items": {"type": "string"}},
        "reasons": {
            "type": "array",
            "items": {
                "type": "string",
                "enum": [
                    "unknown_operator",
                    "revoked",
                    "suspended",
                    "expired",
                    "not_yet_valid",
                    "no_mra_in_force",
                    "type_not_covered",
                ],
            },
        },
    },
}


# The signed payload of a submission or a relay, as the sender wrote it.
_PAYLOAD_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"type": "object"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        # a UN/EDIFACT CUSCAR interchange filed as manifest.cargo.v1 (README "EDIFACT")
        "application/edifact": {"schema": {"type": "string", "format": "binary"}},
    },
}


def _envelope_header(description: str) -> dict[str, object]:
    return {
        "name": "Cgw-Envelope",
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_TIME = {"type": "string", "format": "date-time"}
_NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}
# GET /v1/messages/{from}/{id} beyond the Message: each recipient's state and the forwards (``gateway.exchange.inbox``:
# the sender, the home administration and auditors see all; a recipient its own entry and forwards).
_STATUS_EXTRA = {
    "type": "object",
    "required": ["recipients", "forwards"],
    "properties": {
        "recipients": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["member", "peer", "cursor", "state", "settled", "delivery", "withdrawn_by"],
                "properties": {
                    "member": {"type": "string"},
                    "peer": {
                        "type": ["string", "null"],
                        "description": "a recipient served by a peer gateway: that gateway's id (the message is"
                        " relayed to it; the entry is its relay entry); null for a member served here",
                    },
                    "cursor": {"type": "integer", "minimum": 0},
                    "state": {
                        "type": "string",
                        "enum": [
                            "pending",
                            "retrying",
                            "delivered",
                            "acknowledged",
                            "dead-lettered",
                            "withdrawn",
                            "settled",
                        ],
                    },
                    "settled": _NULLABLE_TIME | {"description": "left the inbox: acknowledged, delivered or recalled"},
                    "delivery": {
                        "type": ["object", "null"],
                        "description": "push state; null for a pull recipient never pushed to",
                        "properties": {
                            "attempts": {"type": "integer", "minimum": 0},
                            "outcome": {"type": "string", "enum": ["delivered", "retry", "dead"]},
                            "last_status": {"type": "string"},
                            "updated": _TIME,
                            "next_attempt": _NULLABLE_TIME,
                            "last_code": {
                                "type": ["string", "null"],
                                "description": "a relay (peer set): the stable error code of the peer's last refusal"
                                " or failure, e.g. FORBIDDEN; null when it gave none",
                            },
                            "receipt": {
                                "type": ["string", "null"],
                                "description": "a relay (peer set): the peer gateway's signed receipt (compact JWS,"
                                " verified against the peer's signing anchors) once delivered; null before",
                            },
                        },
                    },
                    "withdrawn_by": {
                        "type": ["object", "null"],
                        "description": "the recall that withdrew this entry",
                        "properties": {"from": {"type": "string"}, "message_id": {"type": "string"}},
                    },
                },
            },
        },
        "forwards": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["from", "message_id", "to", "received", "ledger_index"],
                "properties": {
                    "from": {"type": "string"},
                    "message_id": {"type": "string"},
                    "to": {"type": "array", "items": {"type": "string"}},
                    "received": _TIME,
                    "ledger_index": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
}


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_TEXT = {"text/plain": {"schema": {"type": "string"}}}
# An add-checkpoint body (gateway/core/witness.py MAX_REQUEST_BYTES).
MAX_WITNESS_BODY_BYTES = MAX_REQUEST_BYTES


def _op(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": responses | _ERRORS, **extra}


def openapi_document(limits: Limits) -> dict[str, Any]:
    """The document for this gateway's configured limits (the bounds it states are the ones it enforces)."""
    message = {
        "type": "object",
        "required": ["message_id", "from", "to", "type", "received", "ledger_index", "receipt"],
        "properties": {
            "message_id": {"type": "string"},
            "from": {"type": "string"},
            "to": {"type": "array", "items": {"type": "string"}},
            "type": {"type": "string"},
            "received": {"type": "string", "format": "date-time"},
            "ledger_index": {"type": "integer", "minimum": 0},
            "evidence_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
            "receipt": {"type": "string", "description": "gateway-signed JWS (typ cgw-receipt+jws)"},
            "duplicate": {"type": "boolean"},
        },
    }
    inbox_item = {
        "type": "object",
        "required": ["cursor", "from", "message_id", "type", "received", "envelope", "payload"],
        "properties": {
            "cursor": {"type": "integer", "minimum": 1},
            "from": {"type": "string"},
            "message_id": {"type": "string"},
            "type": {"type": "string"},
            "received": {"type": "string", "format": "date-time"},
            "envelope": {"type": "string", "description": "the sender's original JWS (evidence)"},
            "payload": {"type": "string", "contentEncoding": "base64"},
            "forward_of": {
                "type": "object",
                "description": "a forward: the original's sender, id and signed envelope (evidence, unchanged)",
                "required": ["from", "message_id", "envelope"],
                "properties": {
                    "from": {"type": "string"},
                    "message_id": {"type": "string"},
                    "envelope": {"type": "string"},
                },
            },
            "annotations": {
                "type": "object",
                "description": "recorded by the gateway with the accepted message (not signed by the sender):"
                " `aeo` = AEO recognition of each trader party and the lane of each consignment",
            },
        },
    }
    problem = {
        "type": "object",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "description": "stable error code (see README)"},
            "detail": {"type": "string"},
            "field": {"type": "string"},
            "instance": {"type": "string"},
        },
    }
    b64_list = {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}}
    auth: list[dict[str, list[str]]] = [{"mtls": []}, {"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "customs-gateway REST API",
            "version": __version__,
            "description": "Signed message exchange between customs administrations, carriers and ports.",
        },
        "security": auth,
        "paths": {
            "/v1/messages": {
                "post": _op(
                    "Submit a signed message",
                    {
                        "200": _json("Message", "duplicate: the original receipt"),
                        "201": _json("Message", "accepted"),
                    },
                    parameters=[_envelope_header("JWS compact over the RFC 8785 canonical header, x5c chain")],
                    requestBody=_PAYLOAD_BODY,
                )
            },
            "/v1/relay/messages": {
                "post": _op(
                    "Gateway to gateway: a peer gateway of the federation directory (mTLS with its gateway client"
                    " certificate) relays a message of one of its members, the sender's envelope unchanged",
                    {
                        "200": _json("Message", "duplicate: this gateway's original receipt"),
                        "201": _json("Message", "accepted; the receipt is this gateway's"),
                        "409": _PROBLEM,  # DUPLICATE_CONFLICT: the same (sender, id) with other bytes
                    },
                    parameters=[
                        _envelope_header("the original sender's JWS compact, byte for byte as the peer received it")
                    ],
                    requestBody=_PAYLOAD_BODY,
                    security=[{"mtls": []}],
                )
            },
            "/v1/messages/{sender}/{message_id}": {
                "get": _op(
                    "Status and receipt of a message, each recipient's state and its forwards (sender, recipients,"
                    " auditors; a recipient sees its own entry only)",
                    {"200": _json("MessageStatus", "the message status")},
                    parameters=[
                        {"name": "sender", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "message_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    ],
                )
            },
            "/v1/messages/{sender}/{message_id}/forward": {
                "post": _op(
                    "Forward a received message: the forwarder's own envelope over the original payload",
                    {
                        "200": _json("Message", "duplicate: the original receipt"),
                        "201": _json("Message", "accepted; recipients get it with the original's evidence"),
                    },
                    parameters=[
                        {"name": "sender", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "message_id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {
                            "name": "Cgw-Envelope",
                            "in": "header",
                            "required": True,
                            "description": "the forwarder's JWS compact envelope (same type, TLP, programme and"
                            " payload digest as the original; new recipients)",
                            "schema": {"type": "string"},
                        },
                    ],
                )
            },
            "/v1/admin/policies/reload": {
                "post": _op(
                    "Validate the policy directory, run its tests and swap it in (admin action in Cedar)",
                    {"200": _json("PolicyReload", "the reload as recorded in the ledger (accepted or refused)")},
                )
            },
            "/v1/admin/trust/reload": {
                "post": _op(
                    "Re-read the trust anchors, the CRL and the registry, check them and swap them in (admin action"
                    " in Cedar); a new CRL applies from the next request on, to certificates and access tokens",
                    {"200": _json("TrustReload", "the reload as recorded in the ledger (accepted or refused)")},
                )
            },
            "/v1/inbox": {
                "get": _op(
                    "Pull unacknowledged messages after a cursor (long-poll with wait)",
                    {"200": _json("Inbox", "inbox page")},
                    parameters=[
                        _query("after", "resume after this cursor"),
                        _query("limit", "maximum items (larger values are capped)", minimum=1),
                        _query("wait", "seconds to wait when empty", maximum=int(limits.max_wait_seconds)),
                    ],
                )
            },
            "/v1/inbox/ack": {
                "post": _op(
                    "Acknowledge inbox items by cursor",
                    {"200": _json("Ack", "how many were newly acknowledged")},
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AckRequest"}}},
                    },
                )
            },
            "/v1/token": {
                "post": _op(
                    "RFC 7523 private_key_jwt client assertion -> short-lived access token (RFC 8705 bound)",
                    {"200": _json("Token", "access token")},
                    security=[{}],
                    requestBody={
                        "required": True,
                        "content": {
                            "application/x-www-form-urlencoded": {
                                "schema": {
                                    "type": "object",
                                    "required": ["grant_type", "client_assertion_type", "client_assertion"],
                                    "properties": {
                                        "grant_type": {"const": "client_credentials"},
                                        "client_assertion_type": {
                                            "const": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
                                        },
                                        "client_assertion": {"type": "string"},
                                    },
                                }
                            }
                        },
                    },
                )
            },
            "/witness/add-checkpoint": {
                "post": {
                    "summary": "C2SP tlog-witness: cosign a peer gateway's checkpoint (unauthenticated by design)",
                    "security": [{}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "text/plain": {
                                "schema": {
                                    "type": "string",
                                    "maxLength": MAX_WITNESS_BODY_BYTES,
                                    "description": "old <size>, 0-63 base64 consistency proof lines, a blank line, "
                                    "the signed checkpoint note",
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "cosignature line(s)", "content": _TEXT},
                        "400": {"description": "malformed request, or old size > checkpoint size"},
                        "403": {"description": "no signature by a known key of the log"},
                        "404": {"description": "unknown log origin (or no witness configured)"},
                        "409": {
                            "description": "old size is not the latest cosigned size (body: that size), or a "
                            "second root for a cosigned size (a fork)",
                            "content": {"text/x.tlog.size": {"schema": {"type": "string"}}},
                        },
                        "422": {"description": "the consistency proof does not verify"},
                        "503": {"description": "the witness state or the federation directory is unavailable"},
                    },
                }
            },
            "/v1/audit/checkpoint": {
                "get": _op(
                    "Latest signed tree head (C2SP tlog-checkpoint signed note); with witnesses, the newest "
                    "one published with the peers' cosignature lines",
                    {
                        "200": {
                            "description": "signed note",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                )
            },
            "/v1/audit/key": {
                "get": _op(
                    "The checkpoint verifier key in use (signed-note vkey) and every key of its history, oldest first",
                    {"200": _json("VerifierKey", "verifier key")},
                )
            },
            "/v1/audit/proof/inclusion": {
                "get": _op(
                    "RFC 9162 inclusion proof",
                    {"200": _json("InclusionProof", "proof")},
                    parameters=[
                        _query("index", "leaf index", required=True),
                        _query("size", "tree size", required=True, minimum=1),
                    ],
                )
            },
            "/v1/audit/proof/consistency": {
                "get": _op(
                    "RFC 9162 consistency proof",
                    {"200": _json("ConsistencyProof", "proof")},
                    parameters=[
                        _query("from", "older tree size", required=True, minimum=1),
                        _query("to", "newer tree size", required=True, minimum=1),
                    ],
                )
            },
            "/v1/audit/entries": {
                "get": _op(
                    "Ledger entries (canonical audit records, base64)",
                    {"200": _json("Entries", "entries")},
                    parameters=[_query("start", "first index"), _query("end", "end index (exclusive)")],
                )
            },
            **console_paths(),
            "/v1/aeo/recognition": {
                "get": _op(
                    "Is this operator an AEO the administration recognises on the date? (customs, auditors)",
                    {"200": _json("Recognition", "the recognition result")},
                    parameters=[
                        _text_query("operator", "SCHEME:value (EORI, USCC, AEO_EU, AEO_CN, ...) or a bare id", True),
                        _text_query("admin", "recognising administration (ISO alpha-2 or EU); default: home"),
                        _text_query("date", "YYYY-MM-DD; default: today (UTC)"),
                    ],
                )
            },
            **port_paths(),  # port release streams (adapters/rest/portdoc.py)
            "/v1/admin/dead-letters": {
                "get": _op(
                    "Push deliveries that gave up (Cedar admin action)",
                    {"200": _json("DeadLetters", "dead letters, oldest cursor first")},
                    parameters=[
                        {"name": "recipient", "in": "query", "required": False, "schema": {"type": "string"}},
                        _query("after", "list after this cursor"),
                        _query("limit", "page size", minimum=1, maximum=500),
                    ],
                )
            },
            "/v1/admin/dead-letters/redrive": {
                "post": _op(
                    "Retry dead letters now (Cedar admin action; a ledger event)",
                    {"200": _json("Redrive", "how many were dead letters")},
                    requestBody={"required": True, **_json("AckRequest", "the cursors to redrive")},
                )
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics (text exposition format)",
                    "security": [{}],
                    "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}},
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "security": [{}],
                    "responses": {"200": {"description": "ok"}},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "security": [{}],
                    "responses": {"200": {"description": "alive"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness (store reads and writes, keys, trust list, CRL current, policies loaded)",
                    "security": [{}],
                    "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "mtls": {"type": "mutualTLS", "description": "federation TLS client certificate"},
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
                }
            },
            "schemas": {
                "Recognition": _RECOGNITION,
                **port_schemas(),
                **console_schemas(),
                "Message": message,
                "MessageStatus": {"allOf": [{"$ref": "#/components/schemas/Message"}, _STATUS_EXTRA]},
                "Problem": problem,
                "Inbox": {
                    "type": "object",
                    "required": ["items", "next_after"],
                    "properties": {
                        "items": {"type": "array", "items": inbox_item},
                        "next_after": {"type": "integer", "minimum": 0},
                    },
                },
                "AckRequest": {
                    "type": "object",
                    "required": ["cursors"],
                    "properties": {
                        "cursors": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": limits.max_ack_items,
                            "items": {"type": "integer", "minimum": 1},
                        }
                    },
                },
                "DeadLetters": {
                    "type": "object",
                    "required": ["items", "next_after"],
                    "properties": {
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["cursor", "recipient", "from", "message_id", "attempts", "last_status"],
                                "properties": {
                                    "cursor": {"type": "integer", "minimum": 1},
                                    "recipient": {"type": "string"},
                                    "from": {"type": "string"},
                                    "message_id": {"type": "string"},
                                    "attempts": {"type": "integer", "minimum": 0},
                                    "last_status": {"type": "string"},
                                    "updated": {"type": "string", "format": "date-time"},
                                    "peer": {
                                        "type": ["string", "null"],
                                        "description": "a relay entry (recipient relay:<peer>): the peer gateway",
                                    },
                                    "last_code": {
                                        "type": ["string", "null"],
                                        "description": "a relay entry: the peer's stable error code, if it gave one",
                                    },
                                },
                            },
                        },
                        "next_after": {"type": "integer", "minimum": 0},
                    },
                },
                "Redrive": {
                    "type": "object",
                    "required": ["redriven"],
                    "properties": {"redriven": {"type": "integer", "minimum": 0}},
                },
                "TrustReload": {
                    "type": "object",
                    "required": ["accepted", "old_version", "new_version", "crl"],
                    "properties": {
                        "accepted": {"type": "boolean"},
                        "old_version": {"type": "string"},
                        "new_version": {"type": "string", "description": "empty when the files were refused"},
                        "crl": {
                            "type": "object",
                            "description": "the CRL serving after the reload",
                            "required": ["this_update", "next_update", "number", "revoked"],
                            "properties": {
                                "this_update": {"type": "string", "format": "date-time"},
                                "next_update": {"type": "string", "format": "date-time"},
                                "number": {"type": ["integer", "null"]},
                                "revoked": {"type": "integer", "minimum": 0},
                            },
                        },
                        "code": {"type": "string"},
                        "detail": {"type": "string"},
                        "trigger": {"type": "string"},
                        "by": {"type": "string"},
                    },
                },
                "PolicyReload": {
                    "type": "object",
                    "required": ["accepted", "old_digest", "new_digest", "cases"],
                    "properties": {
                        "accepted": {"type": "boolean"},
                        "old_digest": {"type": "string"},
                        "new_digest": {"type": "string"},
                        "cases": {"type": "integer", "minimum": 0},
                        "code": {"type": "string"},
                        "detail": {"type": "string"},
                        "trigger": {"type": "string"},
                        "by": {"type": "string"},
                    },
                },
                "Ack": {
                    "type": "object",
                    "required": ["acknowledged"],
                    "properties": {"acknowledged": {"type": "integer", "minimum": 0}},
                },
                "Token": {
                    "type": "object",
                    "required": ["access_token", "token_type", "expires_in"],
                    "properties": {
                        "access_token": {"type": "string"},
                        "token_type": {"const": "Bearer"},
                        "expires_in": {"type": "integer"},
                    },
                },
                "VerifierKey": {
                    "type": "object",
                    "properties": {
                        "origin": {"type": "string"},
                        "verifier_key": {"type": "string"},
                        "verifier_keys": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "InclusionProof": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "size": {"type": "integer"},
                        "leaf_hash": {"type": "string"},
                        "proof": b64_list,
                    },
                },
                "ConsistencyProof": {
                    "type": "object",
                    "properties": {"from": {"type": "integer"}, "to": {"type": "integer"}, "proof": b64_list},
                },
                "Entries": {
                    "type": "object",
                    "properties": {
                        "entries": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {"index": {"type": "integer"}, "data": {"type": "string"}},
                            },
                        }
                    },
                },
            },
        },
    }
