"""``customs-gateway audit show|search``: read the ledger as an auditor, one entry at a time or filtered.

    customs-gateway audit show INDEX|FROM/ID --url URL --federation DIR --as AUDIT-GACC [--json]
    customs-gateway audit search [--message-id ID] [--sender M] [--recipient M] [--type T] [--event KIND]
                                 [--since TIME] [--until TIME] [--start N] [--scan N] --url ... [--json]

Rule 1: ``show`` prints the canonical JSON event (decoded, not base64) with its index and leaf hash, and checks
        that it is in the log: the inclusion proof for the leaf hash WE compute from the bytes received must
        lead to the root of the current checkpoint, whose signature must verify with a key of the log's key
        history taken from the federation files (``checkpoint.keys``), never from the gateway being read.
        ``FROM/ID`` names a message: its ``accepted`` entry (the ledger index its status reports).
Rule 2: ``search`` runs on the client over ``GET /v1/audit/entries`` pages (at most ``max_ledger_range`` a page):
        it reads at most ``--scan`` entries (default :data:`SCAN_DEFAULT`) from ``--start`` and says where it
        stopped, so a search over a large ledger is resumed with ``--start``, never an unbounded read.
Rule 3: a search term matches a field of that name at any depth of the event (``message_id`` also matches the
        forwarded or recalled message's id); ``--recipient`` matches ``recipient``, ``to`` and
        ``withdrawn_from``; ``--since``/``--until`` compare the event's ``at`` (RFC 3339 UTC).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from gateway.app.operatortool import connection_options, rest_client
from gateway.app.settings import load_settings
from gateway.client.rest import GatewayClient, GatewayClientError
from gateway.core.audit import EventKind
from gateway.core.checkpoint import verify_checkpoint_by_any
from gateway.core.errors import GatewayError
from gateway.core.merkle import leaf_hash, verify_inclusion
from gateway.infra.files import load_checkpoint_history

# Entries one search reads at most unless --scan says otherwise (100 pages of 1000).
SCAN_DEFAULT = 100_000
SCAN_MAX = 10_000_000
PAGE = 1000  # the gateway's default max_ledger_range
# Nested event fields a search looks into at most this deep (events are shallow; this bounds hostile input).
MAX_DEPTH = 6


def add_parsers(audit_commands: Any) -> None:
    show = audit_commands.add_parser("show", help="one ledger entry, decoded, with a verified inclusion proof")
    show.add_argument("entry", help="a ledger index, or FROM/MESSAGE_ID for a message's accepted entry")
    connection_options(show)
    show.add_argument("--json", action="store_true", help="print JSON for scripts")
    search = audit_commands.add_parser("search", help="ledger entries matching filters (client-side, bounded)")
    connection_options(search)
    search.add_argument("--json", action="store_true", help="print JSON for scripts")
    search.add_argument("--message-id", help="only events about this message id")
    search.add_argument("--sender", help="only events naming this sender")
    search.add_argument("--recipient", help="only events naming this recipient")
    search.add_argument("--type", help="message type, e.g. manifest.cargo.v1")
    search.add_argument("--event", choices=[k.value for k in EventKind], help="event kind")
    search.add_argument("--since", type=_time, help="RFC 3339 UTC, inclusive")
    search.add_argument("--until", type=_time, help="RFC 3339 UTC, exclusive")
    search.add_argument("--start", type=int, default=0, help="first ledger index to read")
    search.add_argument("--scan", type=_scan, default=SCAN_DEFAULT, help=f"entries to read at most ({SCAN_DEFAULT})")


def _time(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an RFC 3339 time") from exc
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _scan(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= SCAN_MAX:
        raise argparse.ArgumentTypeError(f"--scan must be 1..{SCAN_MAX}")
    return int(text)


async def run(args: argparse.Namespace) -> int:
    try:
        if args.audit_command == "show":
            return await _show(args)
        return await _search(args)
    except GatewayClientError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    except GatewayError as exc:  # a proof or checkpoint that does not verify
        print(f"FAILED: {exc.code}: {exc.detail}" + (f" (at {exc.field})" if exc.field else ""), file=sys.stderr)
        return 1


# -- show ------------------------------------------------------------------------------------------------------


async def _index_of(client: GatewayClient, entry: str) -> int:
    if entry.isdigit():
        return int(entry)
    sender, _, message_id = entry.partition("/")
    if not sender or not message_id:
        raise GatewayClientError(0, "USAGE", f"{entry!r} is neither a ledger index nor FROM/MESSAGE_ID")
    return int((await client.status(sender, message_id))["ledger_index"])


async def _show(args: argparse.Namespace) -> int:
    settings = load_settings(args.federation / "gateway.toml")
    history = load_checkpoint_history(settings.checkpoint_key, settings.origin)
    async with rest_client(args) as client:
        index = await _index_of(client, args.entry)
        note = await client.checkpoint()
        checkpoint, _ = verify_checkpoint_by_any(note, settings.origin, history.keys, origin=settings.origin)
        if index >= checkpoint.size:
            print(
                f"entry {index} is not covered by the current checkpoint (size {checkpoint.size}) yet: retry shortly",
                file=sys.stderr,
            )
            return 1
        [(got, data)] = await client.entries(index, index + 1)
        proof = await client.inclusion(index, checkpoint.size)
    leaf = leaf_hash(data)
    hashes = [_unb64(p) for p in proof["proof"]]
    verify_inclusion(leaf, got, checkpoint.size, hashes, checkpoint.root)
    event = json.loads(data)
    record = {
        "index": got,
        "leaf_hash": leaf.hex(),
        "event": event,
        "inclusion": {
            "checkpoint_size": checkpoint.size,
            "root": checkpoint.root.hex(),
            "proof": [h.hex() for h in hashes],
            "verified": True,
        },
    }
    if args.json:
        print(json.dumps(record, indent=2))
    else:
        print(f"entry {got}  leaf {leaf.hex()}")
        print(json.dumps(event, indent=2, sort_keys=True))
        print(
            f"inclusion proof OK: {len(hashes)} hash(es) to root {checkpoint.root.hex()} "
            f"of the signed checkpoint (size {checkpoint.size})"
        )
    return 0


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


# -- search ----------------------------------------------------------------------------------------------------


def _values(node: Any, name: str, depth: int = 0) -> Iterator[Any]:
    """Every value of a field called ``name`` in ``node``, at any depth up to :data:`MAX_DEPTH` (Rule 3)."""
    if depth > MAX_DEPTH:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            if key == name:
                yield value
            yield from _values(value, name, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _values(value, name, depth + 1)


def _has(event: dict[str, Any], names: tuple[str, ...], wanted: str) -> bool:
    for name in names:
        for value in _values(event, name):
            if value == wanted or (isinstance(value, list) and wanted in value):
                return True
    return False


def matches(event: dict[str, Any], args: argparse.Namespace) -> bool:
    """Rule 3: every given filter holds for ``event``."""
    checks = (
        (args.message_id, ("message_id",)),
        (args.sender, ("sender",)),
        (args.recipient, ("recipient", "to", "withdrawn_from")),
        (args.type, ("type",)),
    )
    if any(wanted and not _has(event, names, wanted) for wanted, names in checks):
        return False
    if args.event and event.get("event") != args.event:
        return False
    if args.since or args.until:
        try:
            at = datetime.fromisoformat(str(event.get("at")))
        except ValueError:
            return False
        if (args.since and at < args.since) or (args.until and at >= args.until):
            return False
    return True


def _summary(index: int, event: dict[str, Any]) -> str:
    who = event.get("sender") or event.get("recipient") or event.get("caller") or ""
    message = f"{who}/{event['message_id']}" if "message_id" in event else who
    extra = " ".join(f"{k}={event[k]}" for k in ("type", "code", "field", "outcome", "action") if event.get(k))
    return f"{index:>8}  {event.get('at', '')}  {event.get('event', ''):<16} {message}  {extra}".rstrip()


async def _search(args: argparse.Namespace) -> int:
    found: list[dict[str, Any]] = []
    async with rest_client(args) as client:
        start = position = args.start
        end = start + args.scan
        complete = False  # the ledger ended before the scan bound
        while position < end and not complete:
            wanted = min(end, position + PAGE) - position
            page = await client.entries(position, position + wanted)
            for index, data in page:
                event = json.loads(data)
                if matches(event, args):
                    found.append({"index": index, "event": event})
            position += len(page)
            complete = len(page) < wanted
    if args.json:
        print(json.dumps({"matches": found, "scanned": [start, position], "complete": complete}, indent=2))
    else:
        for match in found:
            print(_summary(match["index"], match["event"]))
        tail = "end of the ledger" if complete else f"the --scan bound: resume with --start {position}"
        print(f"{len(found)} match(es) in entries {start}..{position - 1} (stopped at {tail})")
    return 0
