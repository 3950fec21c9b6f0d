"""REST routes of the port release streams (issue 8): ``GET /v1/ports/{locode}/notices`` and ``/snapshot``.

A translator only, like ``app.py``: it parses the query, calls ``gateway.features.release.portstream.PortStreams``
(which
authorises the reader with Cedar ``read_port``) and renders the records of ``gateway.core.release``.

Rule 1: ``after`` is the last sequence number the port applied (0 for the start); the page holds the entries
        after it in order, at most ``limit`` (:data:`PAGE_MAX`). A consumer resumes from the last ``seq`` it
        applied and detects a gap when an entry's ``seq`` is not its last + 1. ``wait`` (seconds, at most
        :data:`WAIT_MAX_SECONDS`) long-polls: an empty page is answered when entries arrive or the wait ends.
Rule 2: the snapshot is the decision in force for every open B/L and container with the ``seq`` it reflects;
        a port that reconciles replaces its state with it and resumes with ``after=seq``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from gateway.core.errors import BadRequest, Unavailable
from gateway.core.model import Caller
from gateway.core.release import notice_record, standing_record
from gateway.features.release.portstream import PortStreams

# Entries one page returns at most (each ~300 bytes of JSON).
PAGE_MAX = 500
PAGE_DEFAULT = 100
# A long-poll (``wait``) holds the request at most this long (the inbox's default bound).
WAIT_MAX_SECONDS = 30
_DIGITS_MAX = 18


@dataclass(frozen=True, slots=True)
class _Routes:
    ports: PortStreams | None
    caller: Callable[[web.Request], Awaitable[Caller]]


ROUTES = web.AppKey("cgw-port-routes", _Routes)


def add_port_routes(
    app: web.Application, ports: PortStreams | None, *, caller: Callable[[web.Request], Awaitable[Caller]]
) -> None:
    app[ROUTES] = _Routes(ports, caller)
    app.router.add_get("/v1/ports/{locode}/notices", port_notices)
    app.router.add_get("/v1/ports/{locode}/snapshot", port_snapshot)


def _ports(request: web.Request) -> PortStreams:
    ports = request.app[ROUTES].ports
    if ports is None:
        raise Unavailable("port release streams are not configured")
    return ports


def _number(request: web.Request, name: str, default: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > _DIGITS_MAX:
        raise BadRequest(f"query parameter {name} must be a non-negative integer", field=name)
    value = int(raw)
    if value > maximum:
        raise BadRequest(f"query parameter {name} must be at most {maximum}", field=name)
    return value


async def port_notices(request: web.Request) -> web.Response:
    caller = await request.app[ROUTES].caller(request)
    after = _number(request, "after", 0, 2**53)
    limit = _number(request, "limit", PAGE_DEFAULT, PAGE_MAX)
    wait = _number(request, "wait", 0, WAIT_MAX_SECONDS)
    locode, entries = await _ports(request).follow(caller.member, request.match_info["locode"], after, limit, wait)
    return web.json_response(
        {
            "port": locode,
            "after": after,
            "notices": [notice_record(e) for e in entries],
            "next": entries[-1].seq if entries else after,
        }
    )


async def port_snapshot(request: web.Request) -> web.Response:
    caller = await request.app[ROUTES].caller(request)
    locode, seq, standings = await _ports(request).snapshot(caller.member, request.match_info["locode"])
    return web.json_response({"port": locode, "seq": seq, "standings": [standing_record(s) for s in standings]})
