"""``customs-gateway federation``: the operator's side of the signed federation directory (issue 19).

    customs-gateway federation init DIR [--name cgw-dev]        operator key pair + an empty draft directory
    customs-gateway federation add-peer DIR --config gateway.toml [--members A,B] [--rest-url URL]
                                                                add (or replace) a gateway in the draft
    customs-gateway federation sign DIR [--valid-days 30]       sign the draft: DIR/directory.jws, next version
    customs-gateway federation show FILE [--operator-key PUB]   verify a signed directory and print it

``customs-gateway init --peers 2 DIR`` (:func:`init_peers`) runs the same steps for the two-administration dev
setup: DIR/cn and DIR/nl (one administration each, ``gateway.infra.devpki``), DIR/ops (the operator);
``--peers 3`` adds DIR/us (US-CBP). :func:`add_administration` adds one more administration's entry to an
existing operator's draft (a gateway joining a running federation; ``sign`` publishes it).

``add-peer`` reads everything from the gateway's own files: its origin and checkpoint key history, its TLS and
signing trust anchors, its REST and gRPC addresses; it creates the gateway's witness key beside its checkpoint
key (``witness.key``, mode 0600) when there is none, and adds a ``[federation]`` section to its config when it
has none. A gateway only uses a *signed* directory; every ``sign`` is a new, higher version.

Exit codes: 0 success, 1 a check failed, 2 usage or file error (``Unavailable``).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app.auditor import Witnesses
from gateway.app.settings import load_settings
from gateway.core.checkpoint import MAX_NOTE_BYTES
from gateway.core.cosignature import Witness
from gateway.core.directory import directory_to_json, sign_directory
from gateway.core.errors import Unavailable
from gateway.infra.devpki import RELAY_CLIENT, Administration, create_federation, peer_administrations, pem_key
from gateway.infra.federationfiles import (
    DRAFT,
    OPERATOR_KEY,
    OPERATOR_PUB,
    SIGNED,
    load_operator_key,
    load_witness_key,
    read_directory,
)
from gateway.infra.files import (
    load_certificates,
    load_checkpoint_history,
    load_private_key,
    load_registry,
    read_bounded,
    write_public,
    write_secret,
)

MAX_DRAFT_BYTES = 4 << 20
DEFAULT_VALID_DAYS = 30
MAX_VALID_DAYS = 366  # a directory must be re-signed at least yearly: keys and endpoints change
WITNESS_KEY = "witness.key"


def add_parser(commands: Any) -> None:
    federation = commands.add_parser("federation", help="the signed federation directory (peer gateways)")
    sub = federation.add_subparsers(dest="federation_command", required=True)
    init = sub.add_parser("init", help="create the operator key pair and an empty draft directory in DIR")
    init.add_argument("directory", type=Path, help="the federation operator's directory (operator key, draft)")
    init.add_argument("--name", default="cgw-dev", help="the federation's name")
    init.add_argument("--force", action="store_true", help="replace an existing operator key")
    add = sub.add_parser("add-peer", help="add or replace a gateway in the draft, from its config")
    add.add_argument("directory", type=Path, help="the federation operator's directory holding the draft")
    add.add_argument("--config", type=Path, required=True, help="the gateway's gateway.toml")
    add.add_argument("--members", help="comma-separated member ids it serves (default: its home member)")
    add.add_argument("--rest-url", help="default: https://<host>:<rest_port> from the config")
    add.add_argument("--grpc-target", help="default: <host>:<grpc_port> from the config")
    sign = sub.add_parser("sign", help="sign the draft into DIR/directory.jws with the next version")
    sign.add_argument("directory", type=Path, help="the federation operator's directory holding the draft")
    sign.add_argument("--valid-days", type=int, default=DEFAULT_VALID_DAYS, help=f"1..{MAX_VALID_DAYS}")
    show = sub.add_parser("show", help="verify a signed directory and print it")
    show.add_argument("file", type=Path, help="a directory.jws (or the DIR holding one)")
    show.add_argument("--operator-key", type=Path, help="default: operator.pub beside the file")


def run(args: argparse.Namespace) -> int:
    command = args.federation_command
    if command == "init":
        return _init(args.directory, args.name, force=args.force)
    if command == "add-peer":
        return _add_peer(args)
    if command == "sign":
        return _sign(args.directory, args.valid_days)
    return _show(args.file, args.operator_key)


def _read_draft(directory: Path) -> dict[str, Any]:
    value = json.loads(read_bounded(directory / DRAFT, MAX_DRAFT_BYTES, "draft directory"))
    if not isinstance(value, dict) or not isinstance(value.get("gateways"), list):
        raise Unavailable(f"{directory / DRAFT} is not a draft directory")
    return value


def _write_draft(directory: Path, draft: dict[str, Any]) -> None:
    write_public(directory / DRAFT, (json.dumps(draft, indent=2) + "\n").encode())


def _init(directory: Path, name: str, *, force: bool) -> int:
    if (directory / OPERATOR_KEY).exists() and not force:
        print(f"error: {directory / OPERATOR_KEY} exists (use --force to replace the operator key)")
        return 2
    key = ec.generate_private_key(ec.SECP256R1())
    write_secret(directory / OPERATOR_KEY, pem_key(key))
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    write_public(directory / OPERATOR_PUB, public)
    _write_draft(directory, {"federation": name, "version": 0, "gateways": []})
    print(f"federation {name!r} operator key written to {directory}\n  NEVER use this dev key in production.")
    return 0


def _witness_name(origin: str) -> str:
    """``cgw.cn-gacc.example/ledger`` -> ``cgw.cn-gacc.example/witness``."""
    return (origin.rsplit("/", 1)[0] if "/" in origin else origin) + "/witness"


def _witness_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        return load_witness_key(path)
    key = Ed25519PrivateKey.generate()
    write_secret(path, pem_key(key))
    return key


def _der_list(path: Path) -> list[str]:
    return [
        base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        for cert in load_certificates(path)
    ]


def _add_peer(args: argparse.Namespace) -> int:
    members = [m.strip() for m in args.members.split(",") if m.strip()] if args.members else None
    add_peer(args.directory, args.config, members=members, rest_url=args.rest_url, grpc_target=args.grpc_target)
    return 0


def add_peer(
    directory: Path,
    config: Path,
    *,
    members: list[str] | None = None,
    rest_url: str | None = None,
    grpc_target: str | None = None,
) -> None:
    """Add (or replace) the gateway of ``config`` in the draft of ``directory`` (``federation add-peer``)."""
    draft = _read_draft(directory)
    settings = load_settings(config)
    registry = load_registry(settings.trust_registry)
    home = registry.get(settings.member_id)
    if home is None:
        raise Unavailable(f"{settings.member_id} is not in the gateway's registry")
    witness_path = (
        settings.federation.witness_key if settings.federation else settings.checkpoint_key.with_name(WITNESS_KEY)
    )
    witness = Witness(_witness_name(settings.origin), _witness_key(witness_path).public_key())
    load_private_key(settings.signing_key)  # the gateway's files must be complete before it is listed
    rest_url = rest_url or f"https://{settings.host}:{settings.rest_port}"
    grpc = (
        grpc_target
        if grpc_target is not None
        else (f"{settings.host}:{settings.grpc_port}" if settings.grpc_port else "")
    )
    entry = {
        "id": settings.member_id,
        "administration": home.name,
        "country": home.country,
        "rest_url": rest_url,
        "grpc_target": grpc,
        "tls_anchors": _der_list(settings.trust_anchors),
        "signing_anchors": _der_list(settings.trust_anchors),
        "origin": settings.origin,
        "checkpoint_keys": list(load_checkpoint_history(settings.checkpoint_key, settings.origin).vkeys),
        "witness_key": witness.vkey,
        "members": sorted(members or [settings.member_id]),
    }
    draft["gateways"] = [g for g in draft["gateways"] if g.get("id") != entry["id"]] + [entry]
    draft["gateways"].sort(key=lambda g: str(g.get("id")))
    _write_draft(directory, draft)
    if settings.federation is None:
        add_config_section(config, directory, witness_path)
    print(f"{entry['id']} added to {directory / DRAFT} (witness {witness.vkey}); sign it to publish")


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(path.resolve(), base.resolve())


def add_config_section(
    config: Path,
    directory: Path,
    witness_key: Path,
    *,
    gateway_id: str | None = None,
    client: tuple[Path, Path] | None = None,
) -> None:
    """Append a ``[federation]`` section to ``config``: the signed directory and operator key of ``directory``,
    the witness key, and optionally the gateway id and its TLS client certificate and key (paths relative to
    the config, as ``gateway.app.federationsettings`` reads them)."""
    base = config.resolve().parent
    section = (
        "\n[federation]                     # written by 'federation add-peer' / 'init --peers'\n"
        f'directory = "{_relative(directory / SIGNED, base)}"\n'
        f'operator_key = "{_relative(directory / OPERATOR_PUB, base)}"\n'
        f'witness_key = "{_relative(witness_key, base)}"\n'
    )
    if gateway_id is not None:
        section += f'gateway_id = "{gateway_id}"\n'
    if client is not None:
        section += f'client_cert = "{_relative(client[0], base)}"\nclient_key = "{_relative(client[1], base)}"\n'
    write_public(config, config.read_bytes() + section.encode())


def init_peers(out_dir: Path, *, base_port: int = 8443, count: int = 2) -> list[Path]:
    """The two-administration dev setup under ``out_dir``: ``cn/`` and ``nl/`` (each its own CA, gateway keys,
    TLS client certificate, members and registry, ``devpki.peer_administrations``), ``ops/`` (the operator key)
    and ONE signed directory listing both gateways, which both configs name. Returns the two config paths.

    Why: the same steps an operator runs by hand (``federation init``, ``add-peer``, ``sign``), so the dev setup
    cannot drift from what the commands produce."""
    ops = out_dir / "ops"
    if _init(ops, "cgw-dev-peers", force=False) != 0:
        raise Unavailable(f"{ops / OPERATOR_KEY} exists")
    configs = [add_administration(out_dir, ops, admin) for admin in peer_administrations(base_port, count)]
    _sign(ops, DEFAULT_VALID_DAYS)
    return configs


def add_administration(out_dir: Path, ops: Path, admin: Administration) -> Path:
    """One dev administration under ``out_dir/<cn|nl|us>`` (its CA, gateway keys, TLS client certificate,
    members, registry and ``[federation]`` section naming ``ops``), added to the operator's draft in ``ops``
    (unsigned). Returns its config path."""
    config = create_federation(out_dir / admin.gateway_id.split("-")[0].lower(), administration=admin)
    gateway_dir = config.parent / "gateway"
    client = (config.parent / f"{RELAY_CLIENT}.crt", config.parent / f"{RELAY_CLIENT}.key")
    add_config_section(config, ops, gateway_dir / WITNESS_KEY, gateway_id=admin.gateway_id, client=client)
    add_peer(ops, config, members=sorted(admin.local))
    return config


def _sign(directory: Path, valid_days: int) -> int:
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        print(f"error: --valid-days must be in 1..{MAX_VALID_DAYS}")
        return 2
    draft = _read_draft(directory)
    key = load_private_key(directory / OPERATOR_KEY)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise Unavailable("the operator key must be ECDSA P-256")
    version = int(draft.get("version", 0))
    if (directory / SIGNED).exists():
        version = max(version, _signed_version(directory))
    now = datetime.now(UTC).replace(microsecond=0)
    payload = {
        "federation": draft["federation"],
        "version": version + 1,
        "issued_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": (now + timedelta(days=valid_days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gateways": draft["gateways"],
    }
    token = sign_directory(payload, key)
    write_public(directory / SIGNED, (token + "\n").encode("ascii"))
    draft["version"] = version + 1
    _write_draft(directory, draft)
    print(
        f"{directory / SIGNED}: version {version + 1}, {len(draft['gateways'])} gateway(s), "
        f"valid until {payload['not_after']}"
    )
    return 0


def _signed_version(directory: Path) -> int:
    try:
        return read_directory(
            directory / SIGNED, load_operator_key(directory / OPERATOR_PUB), datetime.now(UTC)
        ).version
    except Unavailable:
        return 0  # an expired or unreadable earlier directory: the draft's version continues


def _show(file: Path, operator_key: Path | None) -> int:
    path = file / SIGNED if file.is_dir() else file
    key = load_operator_key(operator_key or path.parent / OPERATOR_PUB)
    directory = read_directory(path, key, datetime.now(UTC))
    summary = directory_to_json(directory)
    for gateway in summary["gateways"]:
        gateway["tls_anchors"] = len(gateway["tls_anchors"])
        gateway["signing_anchors"] = len(gateway["signing_anchors"])
    print(json.dumps(summary | {"digest": directory.digest}, indent=2))
    return 0


# -- audit verify --federation-directory / --require-cosigners / --compare (gateway/app/auditor.py) -------------


def add_verify_arguments(verify: Any) -> None:
    verify.add_argument(
        "--federation-directory", type=Path, help="the signed federation directory: verify witness cosignatures"
    )
    verify.add_argument(
        "--operator-key", type=Path, help="the directory's operator key (default: operator.pub beside it)"
    )
    verify.add_argument(
        "--require-cosigners", type=int, default=0, metavar="K", help="fail unless K peer witnesses cosigned"
    )
    verify.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        metavar="NOTE",
        help="another checkpoint of this log seen elsewhere: fail on a split view (repeatable)",
    )


def witnesses(args: argparse.Namespace) -> Witnesses | None:
    """The witness requirement of ``audit verify`` (None without ``--federation-directory``)."""
    if args.federation_directory is None:
        if args.require_cosigners or args.compare:
            raise Unavailable("--require-cosigners and --compare need --federation-directory")
        return None
    if args.require_cosigners < 0:
        raise Unavailable("--require-cosigners must be >= 0")
    compare = tuple(read_bounded(path, MAX_NOTE_BYTES, "checkpoint") for path in args.compare)
    return Witnesses(args.federation_directory, args.require_cosigners, args.operator_key, compare)
