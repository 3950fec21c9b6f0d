"""``customs-gateway inbox|forward|recall|status|ports|dead-letters``: the API's operations from the command line.

    customs-gateway inbox pull|ack|follow       read the caller's inbox (pull: one page; follow: long-poll until ^C)
    customs-gateway forward FROM ID --to M,...  sign our own envelope over a received message and forward it
    customs-gateway recall FROM ID              sign and send an intel.recall.v1 for a message
    customs-gateway status FROM ID              a message's status with every recipient's state and its forwards
    customs-gateway ports notices|snapshot|gate-out LOCODE ...   a port's release stream; report a gate-out
    customs-gateway dead-letters list|redrive   the push dead letters (Cedar ``admin``)

Rule 1: every command names its gateway and identity the way ``send`` does (``connection_options``: ``--url``,
        ``--federation``, ``--as``, ``--token``) and talks through the reference clients (``gateway.client.rest``;
        ``gateway.client.grpc_client`` with ``--transport grpc`` where the gRPC API has the operation).
Rule 2: output is human-readable by default; ``--json`` prints JSON for scripts (one document per command, one
        object per line for ``inbox follow``).
Rule 3: messages are signed by the same code as ``send`` (``gateway.client.rest.sign_message``); a forward repeats
        the original's type, TLP, programme and payload reference, read from the original's signed header.
Rule 4: exit codes as ``customs-gateway``: 0 done, 1 the gateway refused (its code, detail and field are
        printed), 2 usage (a missing file, a message not found locally).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gateway.client.grpc_client import GrpcGatewayClient
from gateway.client.rest import GatewayClient, GatewayClientError, MemberCredentials, Submitted
from gateway.core.envelope import parse_header
from gateway.core.model import Header, Tlp
from gateway.core.payloads import MESSAGE_TYPES
from gateway.infra.files import load_registry

COMMANDS = ("inbox", "forward", "recall", "status", "ports", "dead-letters")
RECALL_TYPE = "intel.recall.v1"
GATE_OUT_TYPE = "port.gate-out.v1"
RECALL_REASONS = ("ERROR", "SUPERSEDED", "SOURCE_WITHDRAWN", "LEGAL", "OTHER")
# ``inbox follow`` asks the gateway to hold each empty poll this long (it caps the wait at max_wait_seconds).
FOLLOW_WAIT_SECONDS = 25
# ``forward`` looks for the original in at most this many inbox pages before asking for --saved.
FORWARD_SEARCH_PAGES = 20


def connection_options(parser: argparse.ArgumentParser) -> None:
    """The gateway and identity options every client command takes (``send`` and the commands here)."""
    parser.add_argument("--url", required=True, help="gateway base URL, e.g. https://127.0.0.1:8443")
    parser.add_argument("--federation", type=Path, required=True, help="directory written by 'init'")
    parser.add_argument("--as", dest="member", required=True, help="the member id to act as")
    parser.add_argument("--token", action="store_true", help="authenticate with an access token instead of mTLS")


def _client_command(commands: Any, name: str, text: str, *, grpc: bool = False) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(name, help=text, description=text)
    connection_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    if grpc:
        parser.add_argument(
            "--transport",
            default="rest",
            choices=["rest", "grpc"],
            help="rest (--url https://host:port) or grpc (--url host:port of the gRPC listener, mTLS)",
        )
    return parser


def _cursor(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 2**63:
        raise argparse.ArgumentTypeError(f"{text!r} is not a cursor (a positive integer)")
    return int(text)


def add_parser(commands: Any) -> None:
    inbox = commands.add_parser("inbox", help="read and acknowledge the caller's inbox")
    inbox_commands = inbox.add_subparsers(dest="inbox_command", required=True)
    pull = _client_command(inbox_commands, "pull", "one page of unacknowledged items, oldest first", grpc=True)
    pull.add_argument("--after", type=int, default=0, help="only items with a cursor above this")
    pull.add_argument("--limit", type=int, default=100, help="items per page (at most the gateway's max_pull_items)")
    pull.add_argument("--wait", type=int, default=0, help="long-poll up to this many seconds when there are none")
    follow = _client_command(inbox_commands, "follow", "print items as they arrive (long-poll) until Ctrl-C")
    follow.add_argument("--after", type=int, default=0, help="start after this inbox cursor")
    follow.add_argument("--limit", type=int, default=0, help="stop after this many items (0: never)")
    for command in (pull, follow):
        command.add_argument("--ack", action="store_true", help="acknowledge each item once printed")
        command.add_argument("--save", type=Path, help="write each item's envelope and payload into this directory")
    ack = _client_command(inbox_commands, "ack", "acknowledge items by cursor", grpc=True)
    ack.add_argument("cursors", nargs="+", type=_cursor, help="inbox cursors to acknowledge")

    _exchange_parsers(commands)
    _port_parsers(commands)
    _dead_letter_parsers(commands)


def _exchange_parsers(commands: Any) -> None:
    forward = _client_command(commands, "forward", "forward a received message (our envelope, its payload)")
    forward.add_argument("sender", help="the original's sender")
    forward.add_argument("message_id", help="the original's message id")
    forward.add_argument("--to", required=True, help="comma-separated new recipient member ids")
    forward.add_argument("--saved", type=Path, help="the directory 'inbox pull --save' wrote (acknowledged items)")

    recall = _client_command(commands, "recall", "recall a message (intel.recall.v1)", grpc=True)
    recall.add_argument("sender", help="the recalled message's sender (the originator)")
    recall.add_argument("message_id", help="id of the sender's own message to recall")
    recall.add_argument("--reason", default="ERROR", choices=RECALL_REASONS, help="why it is recalled")
    recall.add_argument("--remarks", default="", help="free text for the recipients")
    recall.add_argument("--to", help="recall recipients (default: the message's recipients, from its status)")
    recall.add_argument("--tlp", default="AMBER", choices=[t.value for t in Tlp], help="TLP 2.0 label of the recall")
    recall.add_argument("--program", help="the programme of the recalled message (SSTL, CSI, MEGAPORT)")

    status = _client_command(commands, "status", "a message's status, recipients' states and forwards", grpc=True)
    status.add_argument("sender", help="member id of the message's sender")
    status.add_argument("message_id", help="the message id")


def _port_parsers(commands: Any) -> None:
    ports = commands.add_parser("ports", help="port release streams")
    port_commands = ports.add_subparsers(dest="ports_command", required=True)
    notices = _client_command(port_commands, "notices", "the port's stream entries after a sequence number")
    notices.add_argument("locode", help="UN/LOCODE of the port")
    notices.add_argument("--after", type=int, default=0, help="entries after this stream seq")
    notices.add_argument("--limit", type=int, default=100, help="entries per page (at most 500)")
    notices.add_argument("--wait", type=int, default=0, help="long-poll this many seconds for new entries (at most 30)")
    snapshot = _client_command(port_commands, "snapshot", "the decisions in force at the port", grpc=True)
    snapshot.add_argument("locode", help="UN/LOCODE of the port")
    gate = _client_command(port_commands, "gate-out", "report a container leaving the terminal", grpc=True)
    gate.add_argument("locode", help="the port's UN/LOCODE (e.g. NLRTM)")
    gate.add_argument("container", help="ISO 6346 number of the container that left")
    gate.add_argument("--bl", default="", help="the transport document (B/L) number")
    gate.add_argument("--terminal", default="", help="terminal the container left from")
    gate.add_argument("--at", help="gate-out time, RFC 3339 UTC (default: now)")
    gate.add_argument("--to", help="default: the federation's home administration")


def _dead_letter_parsers(commands: Any) -> None:
    dead = commands.add_parser("dead-letters", help="push deliveries that gave up (the admin API)")
    dead_commands = dead.add_subparsers(dest="dead_command", required=True)
    listing = _client_command(dead_commands, "list", "dead letters, oldest first")
    listing.add_argument("--recipient", default="", help="only this recipient's dead letters (all when empty)")
    listing.add_argument("--after", type=int, default=0, help="start after this cursor")
    listing.add_argument("--limit", type=int, default=100, help="dead letters per page")
    redrive = _client_command(dead_commands, "redrive", "make dead letters due again")
    redrive.add_argument("cursors", nargs="+", type=_cursor, help="cursors of the dead letters to push again")


# -- running ---------------------------------------------------------------------------------------------------


@asynccontextmanager
async def rest_client(args: argparse.Namespace) -> AsyncIterator[GatewayClient]:
    """The REST reference client for ``connection_options`` (with an access token for ``--token``)."""
    credentials = MemberCredentials.from_federation(args.federation, args.member)
    async with GatewayClient(args.url, credentials, mtls=not args.token) as client:
        if args.token:
            await client.fetch_token()
        yield client


@asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[Any]:
    """REST, or gRPC for ``--transport grpc`` (same method names, REST-shaped answers)."""
    if getattr(args, "transport", "rest") != "grpc":
        async with rest_client(args) as client:
            yield client
        return
    if args.token:
        raise _Usage("--token needs --transport rest (gRPC callers always present their certificate)")
    async with GrpcGatewayClient(args.url, MemberCredentials.from_federation(args.federation, args.member)) as client:
        yield client


class _Usage(Exception):
    """A usage problem found while running (exit 2)."""


async def run(args: argparse.Namespace) -> int:
    handlers: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
        "inbox": _inbox,
        "forward": _forward,
        "recall": _recall,
        "status": _status,
        "ports": _ports,
        "dead-letters": _dead_letters,
    }
    try:
        return await handlers[args.command](args)
    except GatewayClientError as exc:
        refusal = {"status": exc.status, "code": exc.code, "detail": exc.detail, "field": exc.field}
        if getattr(args, "json", False):
            print(json.dumps(refusal))
        else:
            print(f"refused: {exc}", file=sys.stderr)
        return 1
    except _Usage as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _emit(args: argparse.Namespace, body: Any, lines: list[str]) -> None:
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print("\n".join(lines))


# -- inbox -----------------------------------------------------------------------------------------------------


def _item_line(item: dict[str, Any]) -> str:
    line = f"{item['cursor']:>8}  {item['from']}/{item['message_id']}  {item['type']}  received {item['received']}"
    if item.get("forward_of"):
        line += f"  (forward of {item['forward_of']['from']}/{item['forward_of']['message_id']})"
    return line


def _item_record(item: dict[str, Any]) -> dict[str, Any]:
    """An item for --json output: the payload as base64, as the REST API sends it."""
    return item | {"payload": base64.b64encode(item["payload"]).decode("ascii")}


def _save(directory: Path, item: dict[str, Any]) -> None:
    """``--save``: ``<from>_<id>.jws`` (the exact evidence) and ``<from>_<id>.payload`` (the exact bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{item['from']}_{item['message_id']}"
    (directory / f"{stem}.jws").write_text(item["envelope"])
    (directory / f"{stem}.payload").write_bytes(item["payload"])


async def _inbox(args: argparse.Namespace) -> int:
    if args.inbox_command == "ack":
        async with _client(args) as client:
            count = await client.ack(list(args.cursors))
        _emit(args, {"acknowledged": count}, [f"acknowledged {count} of {len(args.cursors)}"])
        return 0
    if args.inbox_command == "follow":
        return await _follow(args)
    async with _client(args) as client:
        if args.transport == "grpc":
            items = await _grpc_page(client, args.after, args.limit)
        else:
            page = await client.pull(after=args.after, limit=args.limit, wait=args.wait)
            items = page["items"]
        for item in items:
            if args.save:
                _save(args.save, item)
        acked = await client.ack([i["cursor"] for i in items]) if args.ack and items else 0
    next_after = items[-1]["cursor"] if items else args.after
    body = {"items": [_item_record(i) for i in items], "next_after": next_after, "acknowledged": acked}
    lines = [_item_line(i) for i in items] or ["inbox empty"]
    if args.ack:
        lines.append(f"acknowledged {acked}")
    _emit(args, body, lines)
    return 0


async def _grpc_page(client: Any, after: int, limit: int) -> list[dict[str, Any]]:
    """``inbox pull --transport grpc``: the Inbox stream without follow, as REST-shaped items."""
    items: list[dict[str, Any]] = []
    async for streamed in client.inbox(after=after, follow=False):
        items.append(
            {
                "cursor": streamed.cursor,
                "from": streamed.sender,
                "message_id": streamed.message_id,
                "type": streamed.type,
                "received": streamed.received,
                "envelope": streamed.envelope,
                "payload": streamed.payload,
            }
        )
        if len(items) >= limit:
            break
    return items


async def _follow(args: argparse.Namespace) -> int:
    """Long-poll the inbox and print one line per item until Ctrl-C (or ``--limit`` items)."""
    after, shown = args.after, 0
    async with rest_client(args) as client:
        while True:
            page = await client.pull(after=after, wait=FOLLOW_WAIT_SECONDS)
            for item in page["items"]:
                if args.save:
                    _save(args.save, item)
                if args.ack:
                    await client.ack([item["cursor"]])
                print(json.dumps(_item_record(item)) if args.json else _item_line(item), flush=True)
                after, shown = item["cursor"], shown + 1
                if args.limit and shown >= args.limit:
                    return 0


# -- forward and recall ----------------------------------------------------------------------------------------


def _recipients(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _signed_header(jws: str) -> Header:
    """The header an envelope carries (its JWS payload), read without verifying: the gateway verified it when it
    accepted the message, and it verifies the forward against the stored original again."""
    try:
        segment = jws.split(".")[1]
        return parse_header(json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))))
    except (IndexError, ValueError) as exc:
        raise _Usage("the original's envelope is not a JWS (a SOAP original cannot be forwarded from here)") from exc


async def _original(client: GatewayClient, args: argparse.Namespace) -> tuple[str, bytes]:
    """(envelope, payload) of the message to forward: from ``--saved`` or else from the caller's inbox."""
    if args.saved:
        stem = args.saved / f"{args.sender}_{args.message_id}"
        try:
            return stem.with_suffix(".jws").read_text(), stem.with_suffix(".payload").read_bytes()
        except OSError as exc:
            raise _Usage(f"{stem}.jws/.payload: {exc.strerror} (written by 'inbox pull --save')") from exc
    after = 0
    for _ in range(FORWARD_SEARCH_PAGES):
        page = await client.pull(after=after)
        for item in page["items"]:
            if (item["from"], item["message_id"]) == (args.sender, args.message_id):
                return str(item["envelope"]), bytes(item["payload"])
        if not page["items"]:
            break
        after = page["next_after"]
    raise _Usage(
        f"{args.sender}/{args.message_id} is not in {args.member}'s inbox (acknowledged?): pass --saved DIR "
        "from 'inbox pull --save DIR'"
    )


async def _forward(args: argparse.Namespace) -> int:
    async with rest_client(args) as client:
        envelope, payload = await _original(client, args)
        header = _signed_header(envelope)
        jws = client.sign(
            header.type,
            _recipients(args.to),
            payload,
            schema=header.payload.schema,
            media=header.payload.media,
            tlp=header.tlp,
            program=header.program,
        )
        done = await client.forward_signed(args.sender, args.message_id, jws)
    return _receipt(args, done, f"forwarded {args.sender}/{args.message_id} to {args.to}")


async def _recall(args: argparse.Namespace) -> int:
    payload = {"originalSender": args.sender, "messageId": args.message_id, "reason": args.reason}
    if args.remarks:
        payload["remarks"] = args.remarks
    body = json.dumps(payload, separators=(",", ":")).encode()
    async with _client(args) as client:
        to = _recipients(args.to) if args.to else (await client.status(args.sender, args.message_id))["to"]
        done = await client.submit(
            RECALL_TYPE, to, body, schema=MESSAGE_TYPES[RECALL_TYPE].schema, tlp=Tlp(args.tlp), program=args.program
        )
    return _receipt(args, done, f"recalled {args.sender}/{args.message_id} ({args.reason})")


def _receipt(args: argparse.Namespace, done: Submitted, what: str) -> int:
    body = done.body | {"receipt_claims": done.receipt}
    extra = " (duplicate: the original receipt)" if done.duplicate else ""
    _emit(
        args,
        body,
        [f"{what}: {done.body['from']}/{done.body['message_id']}, ledger #{done.body['ledger_index']}{extra}"],
    )
    return 0


# -- status ----------------------------------------------------------------------------------------------------


def _sha256(text: str) -> str:
    """The SHA-256 of a receipt as the ledger's ``relay_delivered`` event names it (``receipt_sha256``)."""
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _state_line(state: dict[str, Any]) -> str:
    line = f"  {state['member']:<16} {state['state']:<14} cursor {state['cursor']}"
    peer = state.get("peer")
    if peer:
        line += f", relayed to {peer}"
    if state.get("settled"):
        line += f", settled {state['settled']}"
    delivery = state.get("delivery")
    if delivery:
        what = "relay" if peer else "push"
        line += f", {delivery['attempts']} {what} attempt(s), last {delivery['last_status']}"
        if delivery.get("last_code"):
            line += f" {delivery['last_code']}"
        line += f" at {delivery['updated']}"
        if delivery.get("next_attempt"):
            line += f", next {delivery['next_attempt']}"
        if delivery.get("receipt"):
            line += f", {peer}'s receipt sha256 {_sha256(delivery['receipt'])[:16]}"
    recall = state.get("withdrawn_by")
    if recall:
        line += f", withdrawn by {recall['from']}/{recall['message_id']}"
    return line


async def _status(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        body = await client.status(args.sender, args.message_id)
    lines = [
        f"{body['from']}/{body['message_id']}  {body['type']}  received {body['received']}"
        f"  ledger #{body['ledger_index']}",
        f"recipients ({len(body.get('recipients', []))} visible to {args.member}):",
        *(_state_line(s) for s in body.get("recipients", [])),
    ]
    for forward in body.get("forwards", []):
        lines.append(
            f"forward {forward['from']}/{forward['message_id']} -> {', '.join(forward['to'])}"
            f" received {forward['received']}"
        )
    _emit(args, body, lines)
    return 0


# -- ports -----------------------------------------------------------------------------------------------------


def _home_member(federation: Path) -> str:
    for member in load_registry(federation / "registry.json").members.values():
        if member.home:
            return member.id
    raise _Usage(f"{federation}/registry.json names no home administration: pass --to")


async def _ports(args: argparse.Namespace) -> int:
    if args.ports_command == "gate-out":
        return await _gate_out(args)
    if args.ports_command == "snapshot":
        async with _client(args) as client:
            body = await client.port_snapshot(args.locode)
        lines = [f"{body['port']} at seq {body['seq']}: {len(body['standings'])} decision(s) in force"]
        lines += [f"  {json.dumps(s, sort_keys=True)}" for s in body["standings"]]
        _emit(args, body, lines)
        return 0
    async with rest_client(args) as client:
        body = await client.port_notices(args.locode, after=args.after, limit=args.limit, wait=args.wait)
    lines = [f"{body['port']} after seq {body['after']}: {len(body['notices'])} entr(ies), next {body['next']}"]
    lines += [f"  {json.dumps(n, sort_keys=True)}" for n in body["notices"]]
    _emit(args, body, lines)
    return 0


async def _gate_out(args: argparse.Namespace) -> int:
    at = args.at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document: dict[str, Any] = {"port": args.locode, "containerNumber": args.container, "gateOutTime": at}
    if args.bl:
        document["transportDocumentNumber"] = args.bl
    if args.terminal:
        document["terminal"] = args.terminal
    body = json.dumps(document, separators=(",", ":")).encode()
    to = _recipients(args.to) if args.to else [_home_member(args.federation)]
    async with _client(args) as client:
        done = await client.submit(GATE_OUT_TYPE, to, body, schema=MESSAGE_TYPES[GATE_OUT_TYPE].schema)
    return _receipt(args, done, f"gate-out of {args.container} at {args.locode} reported")


# -- dead letters ----------------------------------------------------------------------------------------------


async def _dead_letters(args: argparse.Namespace) -> int:
    async with rest_client(args) as client:
        if args.dead_command == "redrive":
            count = await client.redrive(list(args.cursors))
            _emit(args, {"redriven": count}, [f"redriven {count} of {len(args.cursors)}"])
            return 0
        body = await client.dead_letters(recipient=args.recipient, after=args.after, limit=args.limit)
    lines = [
        f"{d['cursor']:>8}  {d['recipient']:<16} {d['from']}/{d['message_id']}  {d['attempts']} attempt(s),"
        f" last {d['last_status']}{' ' + d['last_code'] if d.get('last_code') else ''} at {d['updated']}"
        + (f"  (relay to peer gateway {d['peer']})" if d.get("peer") else "")
        for d in body["items"]
    ] or ["no dead letters"]
    _emit(args, body, lines)
    return 0
