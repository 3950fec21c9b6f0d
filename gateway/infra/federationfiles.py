"""The federation directory on disk: the operator's key pair, the draft, the signed directory, the witness key.

Layout written by ``customs-gateway federation init DIR`` (gateway/app/federationtool.py)::

    DIR/operator.key      the federation operator's P-256 signing key (mode 0600; DEV: keep it offline)
    DIR/operator.pub      its public key (PEM): every gateway's [federation] operator_key
    DIR/directory.json    the draft the operator edits (add-peer), unsigned
    DIR/directory.jws     the signed directory (sign): every gateway's [federation] directory

Rule 1: fail closed: a directory that does not verify, has expired, or is older than the last one this gateway
        accepted is ``Unavailable`` (the gateway does not start, or keeps the directory it has).
Rule 2: the last accepted (version, digest) is kept in ``<data_dir>/directory.accepted``, written atomically
        before the directory is used, so a restart cannot be fed an older directory (versions only
        go up: ``gateway.core.directory.check_succession``).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gateway.core.directory import Directory, check_succession, verify_directory
from gateway.core.errors import GatewayError, Unavailable
from gateway.core.signing import PublicKey
from gateway.infra.files import load_private_key, read_bounded, write_public

MAX_DIRECTORY_BYTES = 4 << 20  # 256 gateways with two anchors each and their member lists: well under this
MAX_PUBLIC_KEY_BYTES = 8 << 10
ACCEPTED_FILE = "directory.accepted"
OPERATOR_KEY, OPERATOR_PUB, DRAFT, SIGNED = "operator.key", "operator.pub", "directory.json", "directory.jws"


def load_operator_key(path: Path) -> PublicKey:
    data = read_bounded(path, MAX_PUBLIC_KEY_BYTES, "federation operator key")
    try:
        key = load_pem_public_key(data)
    except ValueError as exc:
        raise Unavailable(f"federation operator key {path} is not a PEM public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Unavailable(f"federation operator key {path} must be ECDSA P-256", field="federation.operator_key")
    return key


def read_directory(path: Path, operator_key: PublicKey, now: datetime) -> Directory:
    """The signed directory at ``path``, verified and unexpired (no succession check: ``federation show``)."""
    token = read_bounded(path, MAX_DIRECTORY_BYTES, "federation directory").decode("ascii", errors="replace")
    try:
        return verify_directory(token, operator_key, now=now)
    except GatewayError as exc:
        raise Unavailable(f"federation directory {path}: {exc.detail}", field=exc.field) from exc


def _accepted(data_dir: Path) -> tuple[int, str] | None:
    path = data_dir / ACCEPTED_FILE
    if not path.exists():
        return None
    try:
        value = json.loads(read_bounded(path, 4096, "accepted directory record"))
        return int(value["version"]), str(value["digest"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Unavailable(f"{path} is malformed: {exc}") from None


def check_directory(path: Path, operator_key_path: Path, data_dir: Path, now: datetime) -> Directory:
    """Rule 1: the directory at ``path``, if it may follow the last one accepted (not recorded yet)."""
    directory = read_directory(path, load_operator_key(operator_key_path), now)
    try:
        check_succession(directory, _accepted(data_dir))
    except GatewayError as exc:
        raise Unavailable(f"federation directory {path}: {exc.detail}", field=exc.field) from exc
    return directory


def record_accepted(data_dir: Path, directory: Directory) -> None:
    """Rule 2: ``directory`` is the last accepted one (written atomically, before it is used)."""
    record = {"version": directory.version, "digest": directory.digest}
    write_public(data_dir / ACCEPTED_FILE, (json.dumps(record) + "\n").encode("ascii"))


def accept_directory(path: Path, operator_key_path: Path, data_dir: Path, now: datetime) -> Directory:
    """Rules 1-2: the directory at ``path``, if it may follow the last one accepted; recorded as accepted."""
    directory = check_directory(path, operator_key_path, data_dir, now)
    record_accepted(data_dir, directory)
    return directory


def load_witness_key(path: Path) -> Ed25519PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, Ed25519PrivateKey):
        raise Unavailable("the witness key must be Ed25519", field="federation.witness_key")
    return key
