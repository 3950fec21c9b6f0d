"""Trust material on disk: certificates, CRLs, private keys and the federation registry.

Rule 1: fail closed. Every problem (missing file, unreadable, too large, malformed, a key file that other
        users can access, an invalid registry) raises :class:`~gateway.core.errors.Unavailable` naming the
        file; the gateway then refuses new messages rather than run on a guess.
Rule 2: a private key file must not be accessible by group or other (mode 0600 or stricter); the mode is read
        from the opened descriptor, so the check and the read see the same file.
Rule 3: every file read is bounded by a named limit before it is parsed.
Rule 4: secrets are created with mode 0600 from the first byte (``mkstemp``: ``O_EXCL``, 0600), never chmod'ed
        later from a wider mode; an existing file is replaced atomically (a new file renamed over it), never
        rewritten in place or briefly missing.
Rule 5: error details carry paths and reasons, never file contents.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_der_private_key,
    load_pem_private_key,
)

from gateway.core.checkpoint import verifier_key_string
from gateway.core.errors import Invalid, LimitExceeded, Unavailable
from gateway.core.keyhistory import KeyHistory, history_text, parse_key_history, parse_public_key, public_key_text
from gateway.core.model import Registry
from gateway.core.pki import FederationTrust
from gateway.core.registry import parse_registry

MAX_CERT_FILE_BYTES = 1 << 20  # 1 MiB: a bundle of a few hundred PEM certificates
MAX_CRL_FILE_BYTES = 32 << 20  # 32 MiB: large national CAs publish CRLs of a few MB; bounded all the same
MAX_KEY_FILE_BYTES = 64 << 10  # 64 KiB: the largest PEM key (RSA-16384) is well under this
MAX_KEY_HISTORY_BYTES = 8 << 10  # keyhistory.MAX_KEYS lines of 45 bytes, with room to spare
MAX_REGISTRY_FILE_BYTES = 16 << 20  # 16 MiB: MAX_MEMBERS members with all their fingerprints fit easily
T = TypeVar("T")
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644
_GROUP_OTHER = 0o077


def _read(path: Path, limit: int, what: str, *, secret: bool = False) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise Unavailable(f"cannot open {what} {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Unavailable(f"{what} {path} is not a regular file")
        if secret and info.st_mode & _GROUP_OTHER:
            raise Unavailable(
                f"{what} {path} is accessible by group/other (mode {stat.S_IMODE(info.st_mode):04o}); "
                "run chmod 600 on it"
            )
        if info.st_size > limit:
            raise Unavailable(f"{what} {path} is larger than {limit} bytes")
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise Unavailable(f"cannot read {what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise Unavailable(f"{what} {path} is larger than {limit} bytes")
    return data


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    """A public file's bytes, at most ``limit`` of them (Rules 1, 3); ``Unavailable`` naming ``what`` otherwise."""
    return _read(Path(path), limit, what)


def load_certificates(path: Path) -> list[x509.Certificate]:
    """All certificates of a PEM bundle (or one DER certificate); at least one."""
    data = _read(Path(path), MAX_CERT_FILE_BYTES, "certificate file")
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise Unavailable(f"certificate file {path} is malformed: {exc}") from None
    if not certs:
        raise Unavailable(f"certificate file {path} holds no certificate")
    return certs


def load_crl(path: Path) -> x509.CertificateRevocationList:
    """One CRL, PEM or DER. Its signature and freshness are checked by ``FederationTrust``."""
    data = _read(Path(path), MAX_CRL_FILE_BYTES, "CRL file")
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise Unavailable(f"CRL file {path} is malformed: {exc}") from None


def load_private_key(path: Path) -> PrivateKeyTypes:
    """An unencrypted PKCS#8 / traditional private key, PEM or DER, from a file of mode 0600 (Rule 2)."""
    data = _read(Path(path), MAX_KEY_FILE_BYTES, "private key file", secret=True)
    try:
        if b"-----BEGIN" in data:
            return load_pem_private_key(data, password=None)
        return load_der_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        # The message of cryptography's errors never includes key bytes.
        raise Unavailable(f"private key file {path} is malformed or encrypted: {exc}") from None


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def load_registry(path: Path) -> Registry:
    """The federation registry (strict JSON: no duplicate keys); an invalid one is ``Unavailable``."""
    data = _read(Path(path), MAX_REGISTRY_FILE_BYTES, "registry file")
    try:
        decoded = json.loads(data.decode("utf-8"), object_pairs_hook=_reject_duplicate_keys)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Unavailable(f"registry file {path} is not valid JSON: {exc}") from None
    try:
        return parse_registry(decoded)
    except Invalid as exc:
        raise Unavailable(f"registry file {path}: {exc.detail}", field=exc.field) from exc


def load_trust(anchors: Path, crl: Path, registry: Path) -> FederationTrust:
    """A ``FederationTrust`` from the three trust files (raises ``Unavailable`` for any problem)."""
    return FederationTrust(load_certificates(anchors), load_crl(crl), load_registry(registry))


FileSignature = tuple[tuple[int, int, int, int] | None, ...]


def file_signature(paths: tuple[Path, ...]) -> FileSignature:
    """(device, inode, size, mtime in ns) of each file, None for one that cannot be stat()ed: a file replaced
    by a rename (new inode) or rewritten in place (new mtime or size) changes it. One stat per file."""
    seen: list[tuple[int, int, int, int] | None] = []
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            seen.append(None)
        else:
            seen.append((info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns))
    return tuple(seen)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write a new file beside ``path`` and rename it over ``path`` (Rule 4).

    Readers see the old file or the new one, never a missing or half-written one (a watcher of the CRL or the
    registry may read at any moment); a descriptor opened earlier on the old file keeps seeing the old bytes.
    The new file is created exclusively with its final mode, and is fsynced before, the directory after, the
    rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # O_EXCL, 0600
    try:
        try:
            os.fchmod(fd, mode)  # state the mode exactly (mkstemp's 0600, whatever the umask)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(directory)  # the rename itself survives a crash
    finally:
        os.close(directory)


def write_secret(path: Path, data: bytes) -> None:
    """Write a secret (a private key) with mode 0600 from the first byte (Rule 4)."""
    _write(Path(path), data, SECRET_MODE)


def write_public(path: Path, data: bytes) -> None:
    """Write a public file (certificate, CRL, registry, config) with mode 0644."""
    _write(Path(path), data, PUBLIC_MODE)


# -- checkpoint keys (core/keyhistory.py) ---------------------------------------------------------------------
#
# Beside the configured Ed25519 private key (``[signing] checkpoint_key``, e.g. ``checkpoint.key``) live the
# public ``checkpoint.pub`` (the key in use) and ``checkpoint.keys`` (every key ever used, oldest first).


def checkpoint_public_files(key_path: Path) -> tuple[Path, Path]:
    """(``checkpoint.pub``, ``checkpoint.keys``) beside the checkpoint private key."""
    return key_path.with_suffix(".pub"), key_path.with_suffix(".keys")


def load_checkpoint_key(key_path: Path) -> Ed25519PrivateKey:
    key = load_private_key(key_path)
    if not isinstance(key, Ed25519PrivateKey):
        raise Unavailable("the checkpoint key must be Ed25519", field="signing.checkpoint_key")
    return key


def _parsed(path: Path, parse: Callable[[str], T]) -> T:
    text = _read(path, MAX_KEY_HISTORY_BYTES, "checkpoint key file").decode("ascii", errors="replace")
    try:
        return parse(text)
    except (Invalid, LimitExceeded) as exc:
        raise Unavailable(f"checkpoint key file {path}: {exc.detail}", field=exc.field) from exc


def load_checkpoint_history(key_path: Path, name: str) -> KeyHistory:
    """The published key history (``checkpoint.keys``; before any rotation just ``checkpoint.pub``, or the
    private key's public half); ``checkpoint.pub`` must be its last key."""
    pub, keys = checkpoint_public_files(Path(key_path))
    current = _parsed(pub, lambda t: parse_public_key(t, "checkpoint.pub")) if pub.exists() else None
    if keys.exists():
        history = _parsed(keys, lambda t: parse_key_history(t, name))
        if current is not None and current != history.current:
            raise Unavailable(f"{pub} is not the last key of {keys}", field="signing.checkpoint_key")
        return history
    if current is None:
        current = load_checkpoint_key(key_path).public_key()
    return KeyHistory(name, (current,))


def write_checkpoint_history(key_path: Path, history: KeyHistory) -> None:
    """Publish ``history``: ``checkpoint.keys``, then ``checkpoint.pub`` (its last key)."""
    pub, keys = checkpoint_public_files(Path(key_path))
    write_public(keys, history_text(history).encode("ascii"))
    write_public(pub, (public_key_text(history.current) + "\n").encode("ascii"))


def rotate_checkpoint_key(key_path: Path, name: str) -> tuple[str, str]:
    """A new checkpoint key in place of the configured one, the old public key kept in the history;
    returns (old, new) verifier keys. The gateway records the rotation in its ledger when it next starts.

    Order: the history (new key appended) is published before the new private key replaces the old one, so
    the gateway never holds a key the history does not list; after a crash in between, running this again
    appends another new key (the unused one stays listed, harmless)."""
    key_path = Path(key_path)
    old = load_checkpoint_key(key_path)
    history = load_checkpoint_history(key_path, name)
    if old.public_key() not in history.keys:
        raise Unavailable(f"the checkpoint key {key_path} is not in its published key history")
    new = Ed25519PrivateKey.generate()
    rotated = history.rotated(new.public_key())
    write_checkpoint_history(key_path, rotated)
    write_secret(key_path, new.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return verifier_key_string(name, old.public_key()), rotated.vkeys[-1]
