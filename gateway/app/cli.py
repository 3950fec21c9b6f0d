"""The ``customs-gateway`` command.

    customs-gateway init DIR                 create a dev federation (CA, members, gateway keys, registry, config)
    customs-gateway init --peers 2 DIR       two administrations (CN-GACC, NL-DOUANE) and their signed directory
    customs-gateway init --renew DIR         renew what expires within --within-days (same keys), re-sign the CRL
    customs-gateway crl renew DIR            re-sign the dev CRL (keeps its revocations; --revoke CERTFILE adds one)
    customs-gateway serve --config FILE      run the gateway
    customs-gateway demo [--keep DIR]        run the end-to-end scenario on loopback; exit 0 only if all behaved
    customs-gateway demo --federation        the same across two gateways (CN-GACC, NL-DOUANE) on loopback
    customs-gateway send ...                 sign a payload file with a member's key and submit it
    customs-gateway audit verify ...         re-check a whole ledger offline (from the store file or over REST)
    customs-gateway checkpoint rotate-key --config FILE   new checkpoint key; the old one stays in checkpoint.keys
    customs-gateway aeo import FILE ...      import a partner's AEO list (CSV/JSON) with a per-row report
    customs-gateway aeo check OPERATOR ...   is this operator a recognised AEO (offline, same rules as the gateway)
    customs-gateway policy validate|test|explain   check the Cedar policies offline (gateway/ops/policyadmin.py)
    customs-gateway inbox|forward|recall|status|ports|dead-letters ...   the API's operations
    (gateway/app/operatortool.py)
    customs-gateway audit show|search ...    one ledger entry with its verified inclusion proof; filtered entries
    customs-gateway config check --config FILE   check a deployment offline, one OK/FAIL line per check
    customs-gateway federation init|add-peer|sign|show   the signed directory of peer gateways (federationtool.py)

Exit codes: 0 success, 1 a check failed or the gateway refused, 2 usage or configuration error (one line on
stderr: a bad argument or URL, a missing file, an unknown member, a port in use), or ``serve`` could not start
or stop cleanly (``UNAVAILABLE``: its data_dir is in use by another process, a full disk, ...), 3 no gateway
answered at the URL (refused, TLS handshake failed, timed out), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from gateway import __version__
from gateway.app import aeotool, audittool, configcheck, eventloop, federationtool, operatortool
from gateway.app.settings import load_settings
from gateway.core.errors import GatewayError
from gateway.core.model import Tlp
from gateway.ops import policyadmin
from gateway.ops.telemetry import configure_logging

if TYPE_CHECKING:
    from gateway.client.rest import Submitted


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Epilogs keep their line breaks; an option's help ends with its default when it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if not action.option_strings or "%(default)" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser: ``add_subparsers`` makes its parsers of this class, so all share the format
    and a usage mistake is one line on stderr (exit 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - one statement per option of the command tree
    parser = _Parser(prog="customs-gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"], help="log lines at or above"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create a development federation in DIR")
    init.add_argument("directory", type=Path, help="where to write it (must be empty unless --force or --renew)")
    mode = init.add_mutually_exclusive_group()
    mode.add_argument("--force", action="store_true", help="write into a non-empty directory")
    mode.add_argument(
        "--renew", action="store_true", help="renew the federation in DIR (gateway.toml and registry edits kept)"
    )
    init.add_argument(
        "--within-days", type=_days, default=30, help="with --renew: renew what expires within this many days"
    )
    init.add_argument("--rotate-keys", action="store_true", help="with --renew: give renewed certificates new keys")
    init.add_argument(
        "--peers",
        type=int,
        choices=[2, 3],
        help="two administrations: DIR/cn (CN-GACC), DIR/nl (NL-DOUANE), DIR/ops (the signed directory); "
        "3 adds DIR/us (US-CBP)",
    )
    init.add_argument(
        "--base-port",
        type=_port,
        default=8443,
        help="with --peers: CN-GACC's REST port; its gRPC port is +1, NL-DOUANE's REST +2 and gRPC +3 "
        "(US-CBP's +4 and +5)",
    )

    crl = commands.add_parser("crl", help="the development CA's revocation list")
    crl_commands = crl.add_subparsers(dest="crl_command", required=True)
    crl_renew = crl_commands.add_parser("renew", help="re-sign DIR/ca/root-ca.crl for another week")
    crl_renew.add_argument("directory", type=Path, help="directory written by 'init'")
    crl_renew.add_argument(
        "--revoke", type=Path, action="append", default=[], metavar="CERTFILE", help="also revoke this certificate"
    )

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", type=Path, required=True, help="the gateway's TOML configuration file")
    serve.add_argument("--loop", choices=eventloop.LOOPS, default="auto", help="event loop (auto: uvloop if installed)")

    demo = commands.add_parser("demo", help="run the end-to-end demo scenario on loopback")
    demo.add_argument("--keep", type=Path, help="keep the federation and data in this directory")
    demo.add_argument(
        "--federation",
        action="store_true",
        help="two administrations (init --peers 2), two gateways: a manifest relayed across the border, "
        "receipts both ways, cross-cosigned ledgers",
    )

    send = commands.add_parser("send", help="sign a payload file with a member's key and submit it")
    operatortool.connection_options(send)  # --url, --federation, --as, --token (shared by every client command)
    send.add_argument("--type", required=True, help="message type, e.g. manifest.cargo.v1")
    send.add_argument("--to", required=True, help="comma-separated recipient member ids")
    send.add_argument("--tlp", default="AMBER", choices=[t.value for t in Tlp], help="TLP 2.0 sharing label")
    send.add_argument("--program", help="the programme the message travels under (SSTL, CSI, MEGAPORT)")
    send.add_argument(
        "--media", help="payload media type (default: application/edifact for .edi files or UNA/UNB, else JSON)"
    )
    send.add_argument(
        "--transport",
        default="rest",
        choices=["rest", "grpc"],
        help="rest (--url https://host:port) or grpc (--url host:port of the gRPC listener, mTLS)",
    )
    send.add_argument("payload", type=Path, help="the payload file (JSON, or a UN/EDIFACT .edi interchange)")
    _add_samples(send, commands)

    aeotool.add_parser(commands)  # customs-gateway aeo import|check (gateway/app/aeotool.py)
    policyadmin.add_parser(commands)  # customs-gateway policy validate|test|explain
    operatortool.add_parser(
        commands
    )  # inbox, forward, recall, status, ports, dead-letters (gateway/app/operatortool.py)
    configcheck.add_parser(commands)  # customs-gateway config check (gateway/app/configcheck.py)
    federationtool.add_parser(commands)  # customs-gateway federation init|add-peer|sign|show

    audit = commands.add_parser("audit", help="audit the ledger")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="re-check the whole ledger against a signed checkpoint")
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help="read the gateway's own store (offline)")
    source.add_argument("--url", help="fetch entries and checkpoint over REST as an auditor")
    verify.add_argument("--federation", type=Path, help="with --url: directory written by 'init'")
    verify.add_argument("--as", dest="member", default="AUDIT-GACC", help="with --url: the auditor member id")
    verify.add_argument(
        "--checkpoint", type=Path, help="check against this saved signed checkpoint instead of the latest one"
    )
    audittool.add_parsers(audit_commands)  # audit show|search (gateway/app/audittool.py)
    federationtool.add_verify_arguments(verify)  # --federation-directory, --require-cosigners, --compare

    checkpoint = commands.add_parser("checkpoint", help="the ledger's checkpoint signing key")
    checkpoint_commands = checkpoint.add_subparsers(dest="checkpoint_command", required=True)
    rotate = checkpoint_commands.add_parser(
        "rotate-key", help="replace the checkpoint key (recorded in the ledger when the gateway next starts)"
    )
    rotate.add_argument("--config", type=Path, required=True, help="the gateway's TOML configuration file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(level=args.log_level)
    try:
        with asyncio.Runner(loop_factory=eventloop.loop_factory(getattr(args, "loop", "asyncio"))) as runner:
            return runner.run(_dispatch(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (GatewayError, OSError) as exc:
        message, code = _failure(exc)
    except Exception as exc:
        from gateway.client.rest import ClientSetupError, GatewayUnreachable

        if not isinstance(exc, ClientSetupError | GatewayUnreachable):
            raise
        message, code = exc.detail, EXIT_USAGE if isinstance(exc, ClientSetupError) else EXIT_UNREACHABLE
    print(f"error: {message}", file=sys.stderr)
    return code


def _failure(exc: GatewayError | OSError) -> tuple[str, int]:
    """One line and the exit code for an error raised in this process (not a gateway's answer)."""
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), EXIT_USAGE
    code = EXIT_USAGE if exc.code == "UNAVAILABLE" else EXIT_FAILED
    if exc.detail and exc.public == type(exc).default_public:  # a gateway's generic text for its callers: say what
        return f"{exc.code}: {exc.detail}", code
    return f"{exc.code}: {exc.public}" + (f" ({exc.detail})" if exc.detail else ""), code


async def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "init":
        return _init(args)
    if args.command == "crl":
        return _crl_renew(args.directory, args.revoke)
    if args.command == "serve":
        from gateway.app.main import serve

        await serve(load_settings(args.config))
        return 0
    if args.command == "demo":
        if args.federation:
            from gateway.demo.federation import run_federation_demo

            return await run_federation_demo(keep=args.keep)
        from gateway.demo.run import run_demo

        return await run_demo(keep=args.keep)
    if args.command == "send":
        return await _send(args)
    if args.command == "samples":
        return _samples(args.directory)
    offline = {
        "aeo": aeotool.run,
        "policy": policyadmin.run,
        "config": configcheck.run,
        "federation": federationtool.run,
    }
    if args.command in offline:  # subcommand modules that register their own parsers
        return offline[args.command](args)
    if args.command in operatortool.COMMANDS:
        return await operatortool.run(args)
    if args.command == "audit":
        return await _audit(args)
    if args.command == "checkpoint":
        return _rotate_checkpoint_key(args.config)
    return 2


async def _audit(args: argparse.Namespace) -> int:
    from gateway.app.auditor import verify_from_store, verify_over_rest

    if args.audit_command != "verify":
        return await audittool.run(args)
    note: bytes | None = None
    if args.checkpoint:
        from gateway.core.checkpoint import MAX_NOTE_BYTES

        try:
            with args.checkpoint.open("rb") as handle:
                note = handle.read(MAX_NOTE_BYTES + 1)  # a larger note is refused by the check itself
        except OSError as exc:
            print(f"error: cannot read the checkpoint {args.checkpoint}: {exc.strerror}", file=sys.stderr)
            return 2
    witnesses = federationtool.witnesses(args)
    if args.config:
        report = await verify_from_store(load_settings(args.config), note, witnesses)
    else:
        if args.federation is None:
            print("error: --url needs --federation", file=sys.stderr)
            return 2
        report = await verify_over_rest(args.url, args.federation, args.member, note, witnesses)
    cosigned = f"; cosigned by {len(report.cosigners)} peer witness(es) {list(report.cosigners)}" if witnesses else ""
    print(
        f"ledger OK: {report.size} entries, root {report.root.hex()}, "
        f"checkpoint covers {report.checkpoint_size}; events {dict(report.events_by_kind)}; "
        f"signed by {report.signed_by} ({report.key_rotations} key rotation(s) in the ledger){cosigned}"
    )
    return 0


def _rotate_checkpoint_key(config: Path) -> int:
    from gateway.infra.files import rotate_checkpoint_key

    settings = load_settings(config)
    old, new = rotate_checkpoint_key(settings.checkpoint_key, settings.origin)
    print(
        f"checkpoint key rotated\n  old: {old}\n  new: {new}\n"
        "  the old key stays published in checkpoint.keys; restart the gateway: it records the rotation in the "
        "ledger and signs from then on with the new key"
    )
    return 0


def _init(args: argparse.Namespace) -> int:
    from gateway.infra.devpki import create_federation

    directory: Path = args.directory
    if args.renew:
        return _renew(directory, within_days=args.within_days, rotate_keys=args.rotate_keys)
    if args.rotate_keys:
        print("error: --rotate-keys needs --renew", file=sys.stderr)
        return 2
    if args.peers is not None:
        return _init_peers(directory, args)
    if directory.exists() and any(directory.iterdir()) and not args.force:
        print(f"error: {directory} is not empty (use --force)", file=sys.stderr)
        return 2
    config = create_federation(directory)
    print(f"dev federation written to {directory}\n  config: {config}\n  NEVER use these keys in production.")
    return 0


def _init_peers(directory: Path, args: argparse.Namespace) -> int:
    from gateway.app.federationtool import init_peers

    if args.force:
        print("error: --peers writes a new setup only: choose an empty DIR (no --force)", file=sys.stderr)
        return 2
    if directory.exists() and any(directory.iterdir()):
        print(
            f"error: {directory} is not empty: --peers writes a new setup only (renew each administration with "
            f"'init --renew {directory}/cn' and '{directory}/nl')",
            file=sys.stderr,
        )
        return 2
    configs = init_peers(directory, base_port=args.base_port, count=args.peers)
    print(f"{'two' if args.peers == 2 else 'three'} administrations written to {directory}")
    for config in configs:
        print(f"  config: {config}")
    print(f"  federation directory: {directory / 'ops' / 'directory.jws'}\n  NEVER use these keys in production.")
    return 0


def _whole(text: str, low: int, high: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what} in {low}..{high}")
    return value


def _port(text: str) -> int:
    return _whole(text, 1, 65530, "a base port (it and the next three, or five with --peers 3, are used)")


def _days(text: str) -> int:
    return _whole(text, 0, 3650, "a whole number of days")


def _renew(directory: Path, *, within_days: int, rotate_keys: bool) -> int:
    from datetime import timedelta

    from gateway.infra.renewal import renew_federation

    for line in renew_federation(directory, within=timedelta(days=within_days), rotate_keys=rotate_keys):
        print(line)
    return 0


def _crl_renew(directory: Path, revoke: list[Path]) -> int:
    from gateway.infra.renewal import renew_crl

    print(renew_crl(directory, revoke=revoke))
    return 0


async def _send(args: argparse.Namespace) -> int:
    from gateway.client.rest import GatewayClient, MemberCredentials
    from gateway.core.payloads import MESSAGE_TYPES

    spec = MESSAGE_TYPES.get(args.type)
    if spec is None:
        print(f"error: unknown message type {args.type}; known: {sorted(MESSAGE_TYPES)}", file=sys.stderr)
        return 2
    try:
        payload = args.payload.read_bytes()
    except OSError as exc:
        print(f"error: cannot read the payload {args.payload}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    args.media = args.media or _media_of(args.payload, payload)
    if args.transport == "grpc":
        return await _send_grpc(args, payload, spec.schema)
    credentials = MemberCredentials.from_federation(args.federation, args.member)

    async def submit() -> Submitted:
        async with GatewayClient(args.url, credentials, mtls=not args.token) as client:
            if args.token:
                await client.fetch_token()
            return await client.submit(args.type, _recipients(args), payload, **_sign_args(args, spec.schema))

    return await _report_submission(submit())


def _add_samples(send: argparse.ArgumentParser, commands: Any) -> None:
    """The ``samples DIR`` command, ``send --id`` (the recall sample names the id of the SSTL sample) and, in
    ``send --help``, every message type with the dev federation's sample sender and recipients."""
    from gateway.core.payloads import MESSAGE_TYPES
    from gateway.demo.samplefiles import SAMPLES

    samples = commands.add_parser("samples", help="write a valid sample payload of every message type into DIR")
    samples.add_argument("directory", type=Path, help="where to write them (created if missing)")
    send.add_argument("--id", dest="message_id", help="the envelope's message id (default: a new UUID)")

    senders = {s.message_type: f"{s.sender} -> {','.join(s.to)}" for s in SAMPLES}
    types = "\n".join(
        f"  {name:<28} {spec.schema:<31} {senders.get(name, '(written by the gateway, not sent)')}"
        for name, spec in MESSAGE_TYPES.items()
    )
    send.epilog = (
        f"message types (--type; schema; the dev federation's sample sender -> recipients):\n{types}\n"
        "TLP 2.0 (--tlp): CLEAR, GREEN, AMBER, AMBER+STRICT, RED.\n"
        "'customs-gateway samples DIR' writes a valid payload of each type and the send command for it."
    )


def _samples(directory: Path) -> int:
    from gateway.demo.samplefiles import write_samples

    written = write_samples(directory)
    print(f"{len(written) - 1} sample payloads and README.txt (the send command of each) written to {directory}")
    return 0


def _recipients(args: argparse.Namespace) -> list[str]:
    return [t.strip() for t in args.to.split(",") if t.strip()]


def _sign_args(args: argparse.Namespace, schema: str) -> dict[str, Any]:
    return {
        "schema": schema,
        "media": args.media,
        "tlp": Tlp(args.tlp),
        "program": args.program,
        "message_id": args.message_id,
    }


async def _report_submission(submission: Awaitable[Submitted]) -> int:
    """Print the gateway's answer (the receipt and its verified claims) or its refusal; the exit code says which."""
    from gateway.client.rest import ClientSetupError, GatewayClientError, GatewayUnreachable

    try:
        result = await submission
    except (ClientSetupError, GatewayUnreachable):
        raise  # no gateway's answer to print: main() says what went wrong in one line
    except GatewayClientError as exc:
        print(json.dumps({"status": exc.status, "code": exc.code, "detail": exc.detail, "field": exc.field}))
        return 1
    print(json.dumps(result.body | {"receipt_claims": result.receipt}, indent=2))
    return 0


def _media_of(path: Path, payload: bytes) -> str:
    """An EDIFACT interchange (``.edi``/``.edifact``, or starting with UNA/UNB) is sent as itself, else JSON."""
    if path.suffix.lower() in (".edi", ".edifact") or payload.lstrip()[:3] in (b"UNA", b"UNB"):
        return "application/edifact"
    return "application/json"


async def _send_grpc(args: argparse.Namespace, payload: bytes, schema: str) -> int:
    """``send --transport grpc``: Exchange.Submit over mTLS (``--token`` is refused: tokens come from REST)."""
    from gateway.client.grpc_client import GrpcGatewayClient
    from gateway.client.rest import MemberCredentials

    if args.token:
        print("error: --token needs --transport rest (gRPC callers always present their certificate)", file=sys.stderr)
        return 2
    credentials = MemberCredentials.from_federation(args.federation, args.member)

    async def submit() -> Submitted:
        async with GrpcGatewayClient(args.url, credentials) as client:
            return await client.submit(args.type, _recipients(args), payload, **_sign_args(args, schema))

    return await _report_submission(submit())


if __name__ == "__main__":
    raise SystemExit(main())
