"""Renewing a development federation in place: the CRL, and the certificates that are about to expire.

DEV ONLY, like :mod:`gateway.infra.devpki` whose layout it reads (``ca/``, ``gateway/``, ``members/<ID>/``,
``registry.json``). ``customs-gateway crl renew DIR`` runs :func:`renew_crl`; ``customs-gateway init --renew
DIR`` runs :func:`renew_federation`.

Rule 1: nothing is rotated that was not asked for. A certificate is re-issued for the SAME key (same subject,
        same extensions, a new serial and validity); a fresh key only with ``rotate_keys``. The root is
        re-issued for its own key, so every leaf it signed still chains to it. The checkpoint key is never
        touched (rotating it is ``customs-gateway checkpoint rotate-key``, recorded in the ledger).
Rule 2: only material that expires within ``within`` of ``now`` (or already has) is renewed; the CRL always is
        (it lives for days, see ``devpki.CRL_VALIDITY``). A revoked certificate is never renewed.
Rule 3: ``gateway.toml`` is never written; ``registry.json`` is read through the strict parser (an edited
        registry must still carry its correct ``version``), only the fingerprints of re-issued certificates
        are replaced, and its version is recomputed by ``registry_to_json``.
Rule 4: the CRL keeps every revoked entry of the old one (serial, date, reason) and its number grows by one;
        the old CRL must be signed by the root, so foreign entries are never carried over. Every file is
        replaced atomically (``files.write_public`` / ``write_secret``), so a running gateway that watches
        the CRL or registry sees the old file or the new one, never a torn or missing one.
Rule 5: time is an argument (``now``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.core.errors import Unavailable
from gateway.core.pki import certificate_fingerprint
from gateway.core.registry import build_registry, registry_to_json
from gateway.infra.devpki import (
    BACKDATE,
    LEAF_VALIDITY,
    ROOT_VALIDITY,
    Issuer,
    pem_key,
    revoked_entry,
    sign_crl,
)
from gateway.infra.files import (
    load_certificates,
    load_crl,
    load_private_key,
    load_registry,
    write_public,
    write_secret,
)

RENEW_WITHIN = timedelta(days=30)  # a month's notice: leaves live a year, so a monthly job never misses one
ROOT_CERT, ROOT_KEY, CRL_FILE, REGISTRY_FILE = "ca/root-ca.crt", "ca/root-ca.key", "ca/root-ca.crl", "registry.json"
LEAF_GLOBS = ("gateway/*.crt", "members/*/*.crt")  # the leaves devpki writes (and any added beside them)
_PUBLIC = "cannot renew the development federation"


@dataclass(frozen=True, slots=True)
class Renewed:
    """One line of the renewal report: ``path`` (relative to the federation directory), what was done, why."""

    path: str
    action: str  # renewed | rotated | re-signed | updated | kept | skipped
    detail: str

    def __str__(self) -> str:
        return f"{self.action:<9} {self.path}: {self.detail}"


def _fail(detail: str) -> Unavailable:
    return Unavailable(detail, public=_PUBLIC)


@contextmanager
def _renewing() -> Iterator[None]:
    """A missing or broken file is reported as this command's failure, not as the gateway failing closed."""
    try:
        yield
    except Unavailable as exc:
        if exc.public == _PUBLIC:
            raise
        raise Unavailable(exc.detail, field=exc.field, public=_PUBLIC) from exc


def load_issuer(out_dir: Path) -> tuple[Issuer, x509.Certificate]:
    """The dev root's key and certificate (they must belong together)."""
    key = load_private_key(out_dir / ROOT_KEY)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise _fail(f"{out_dir / ROOT_KEY} is not an ECDSA key")
    root = load_certificates(out_dir / ROOT_CERT)[0]
    if root.public_key() != key.public_key():
        raise _fail(f"{out_dir / ROOT_KEY} is not the key of {out_dir / ROOT_CERT}")
    return Issuer(root.subject, key), root


def _load_own_crl(out_dir: Path, root: x509.Certificate) -> x509.CertificateRevocationList:
    crl = load_crl(out_dir / CRL_FILE)
    if crl.issuer != root.subject or not crl.is_signature_valid(root.public_key()):  # type: ignore[arg-type]  # the dev root is P-256
        raise _fail(f"{out_dir / CRL_FILE} is not signed by the root CA {out_dir / ROOT_CERT}")
    return crl


def _issued_by(cert: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _resign_crl(
    issuer: Issuer,
    root: x509.Certificate,
    old: x509.CertificateRevocationList,
    revoke: Sequence[x509.Certificate],
    now: datetime,
) -> tuple[x509.CertificateRevocationList, list[int]]:
    """The old CRL's entries plus ``revoke`` (each checked to be the root's), signed again; new serials."""
    entries = list(old)
    listed = {entry.serial_number for entry in entries}
    added: list[int] = []
    for cert in revoke:
        if not _issued_by(cert, root):
            raise _fail(
                f"certificate serial {cert.serial_number:x} ({cert.subject.rfc4514_string()}) "
                "was not issued by this federation's root CA"
            )
        if cert.serial_number not in listed:
            entries.append(revoked_entry(cert.serial_number, now))
            listed.add(cert.serial_number)
            added.append(cert.serial_number)
    try:
        number = old.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number + 1
    except x509.ExtensionNotFound:
        number = 1
    return sign_crl(issuer, entries, now, number), added


def _crl_line(crl: x509.CertificateRevocationList, added: list[int]) -> Renewed:
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    detail = f"number {number}, {len(crl)} revoked, next update {crl.next_update_utc:%Y-%m-%d %H:%M} UTC"
    if added:
        detail += "; newly revoked serial " + ", ".join(f"{serial:x}" for serial in added)
    return Renewed(CRL_FILE, "re-signed", detail)


@_renewing()
def renew_crl(out_dir: Path, *, revoke: Sequence[Path] = (), now: datetime | None = None) -> Renewed:
    """Re-sign the dev CRL (valid from ``now`` for ``devpki.CRL_VALIDITY``), keeping its entries (Rule 4);
    ``revoke`` names certificate files (issued by the root) to add."""
    now = datetime.now(UTC) if now is None else now.astimezone(UTC)
    out_dir = Path(out_dir)
    issuer, root = load_issuer(out_dir)
    certificates = [load_certificates(path)[0] for path in revoke]
    crl, added = _resign_crl(issuer, root, _load_own_crl(out_dir, root), certificates, now)
    write_public(out_dir / CRL_FILE, crl.public_bytes(serialization.Encoding.PEM))
    return _crl_line(crl, added)


def reissue(
    issuer: Issuer,
    cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime,
    validity: timedelta,
) -> x509.Certificate:
    """``cert`` again for ``public_key``: its subject and extensions, a new serial and validity (Rule 1)."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(cert.subject)
        .issuer_name(issuer.name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + validity)
    )
    for extension in cert.extensions:
        value: x509.ExtensionType = extension.value
        if isinstance(value, x509.SubjectKeyIdentifier):
            value = x509.SubjectKeyIdentifier.from_public_key(public_key)
        elif isinstance(value, x509.AuthorityKeyIdentifier):
            value = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(value, critical=extension.critical)
    return builder.sign(issuer.key, hashes.SHA256())


def _until(cert: x509.Certificate) -> str:
    return f"{cert.not_valid_after_utc:%Y-%m-%d}"


@dataclass(slots=True)
class _Plan:
    """What a renewal will write, built completely (and checked) before the first file is replaced."""

    secrets: dict[Path, bytes] = dataclasses.field(default_factory=dict)
    public: dict[Path, bytes] = dataclasses.field(default_factory=dict)
    fingerprints: dict[str, str] = dataclasses.field(default_factory=dict)  # old -> new
    report: list[Renewed] = dataclasses.field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Context:
    out_dir: Path
    issuer: Issuer
    root: x509.Certificate
    revoked: frozenset[int]  # serials the CRL lists
    now: datetime
    due: datetime  # renew what expires before this
    rotate_keys: bool


def _plan_leaf(plan: _Plan, context: _Context, path: Path) -> None:
    issuer, root, now = context.issuer, context.root, context.now
    rotate_keys = context.rotate_keys
    relative = str(path.relative_to(context.out_dir))
    certs = load_certificates(path)
    cert = certs[0]
    if len(certs) != 1 or not _issued_by(cert, root):
        plan.report.append(Renewed(relative, "skipped", "not a single certificate issued by the root CA"))
        return
    if cert.serial_number in context.revoked:
        plan.report.append(Renewed(relative, "skipped", "revoked (listed in the CRL), never renewed"))
        return
    if cert.not_valid_after_utc > context.due:
        plan.report.append(Renewed(relative, "kept", f"valid until {_until(cert)}"))
        return
    key_path = path.with_suffix(".key")
    if rotate_keys:
        key = ec.generate_private_key(ec.SECP256R1())
        plan.secrets[key_path] = pem_key(key)
    else:
        loaded = load_private_key(key_path)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.public_key() != cert.public_key():
            raise _fail(f"{key_path} is not the key of {path}")
        key = loaded
    fresh = reissue(issuer, cert, key.public_key(), now, LEAF_VALIDITY)
    plan.public[path] = fresh.public_bytes(serialization.Encoding.PEM)
    plan.fingerprints[certificate_fingerprint(cert)] = certificate_fingerprint(fresh)
    was = "expired" if cert.not_valid_after_utc <= now else "expires"
    how = ("rotated", "new key") if rotate_keys else ("renewed", "same key")
    plan.report.append(Renewed(relative, how[0], f"{was} {_until(cert)}, now valid until {_until(fresh)} ({how[1]})"))


def _plan_registry(plan: _Plan, out_dir: Path) -> None:
    if not plan.fingerprints:
        return
    registry = load_registry(out_dir / REGISTRY_FILE)  # strict: an edit must keep the version right (Rule 3)
    members = []
    replaced = 0
    for member in registry.members.values():
        listed = frozenset(plan.fingerprints.get(fp, fp) for fp in member.cert_fingerprints)
        replaced += len(member.cert_fingerprints - listed)
        members.append(dataclasses.replace(member, cert_fingerprints=listed))
    if not replaced:
        return
    document = registry_to_json(build_registry(members))
    plan.public[out_dir / REGISTRY_FILE] = (json.dumps(document, indent=2) + "\n").encode()
    plan.report.append(
        Renewed(REGISTRY_FILE, "updated", f"{replaced} fingerprint(s) replaced, version {document['version']}")
    )


@_renewing()
def renew_federation(
    out_dir: Path, *, within: timedelta = RENEW_WITHIN, rotate_keys: bool = False, now: datetime | None = None
) -> list[Renewed]:
    """Renew what expires within ``within`` (Rules 1-3) and re-sign the CRL; return what was done, per file."""
    now = datetime.now(UTC) if now is None else now.astimezone(UTC)
    out_dir = Path(out_dir)
    due = now + within
    issuer, root = load_issuer(out_dir)
    crl = _load_own_crl(out_dir, root)
    plan = _Plan()
    if root.not_valid_after_utc <= due:
        fresh_root = reissue(issuer, root, issuer.key.public_key(), now, ROOT_VALIDITY)
        plan.public[out_dir / ROOT_CERT] = fresh_root.public_bytes(serialization.Encoding.PEM)
        plan.report.append(Renewed(ROOT_CERT, "renewed", f"valid until {_until(fresh_root)} (same key)"))
    else:
        plan.report.append(Renewed(ROOT_CERT, "kept", f"valid until {_until(root)}"))
    revoked = frozenset(entry.serial_number for entry in crl)
    context = _Context(out_dir, issuer, root, revoked, now, due, rotate_keys)
    for path in sorted(p for pattern in LEAF_GLOBS for p in out_dir.glob(pattern)):
        _plan_leaf(plan, context, path)
    _plan_registry(plan, out_dir)
    new_crl, _ = _resign_crl(issuer, root, crl, (), now)
    plan.public[out_dir / CRL_FILE] = new_crl.public_bytes(serialization.Encoding.PEM)
    plan.report.append(_crl_line(new_crl, []))
    for path, data in plan.secrets.items():  # keys before their certificates, the registry and CRL last
        write_secret(path, data)
    for path, data in plan.public.items():
        write_public(path, data)
    return plan.report
