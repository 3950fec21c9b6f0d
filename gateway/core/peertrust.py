"""Peer gateways as a trust source: who is relaying, and may its members' signatures be believed here?

A relayed submission (issue 19) reaches this gateway from a PEER gateway of the signed federation directory
(``core/directory.py``) over mutual TLS, carrying the original sender's JWS unchanged. This module judges the two
certificates involved, against the directory in force, without I/O or a clock (time is an argument).

Rule 1: the relaying gateway is the ONE peer (this gateway's own entry excluded) whose ``tls_anchors`` the TLS
        client certificate chains to (``cryptography.x509.verification``, clientAuth EKU). No chain at all, or
        chains to the anchors of several peers (two administrations sharing a CA cannot be told apart), is
        :class:`PeerUntrusted` (401).
Rule 2: that certificate must be the peer's GATEWAY certificate: subject CN == the peer's id and no
        ``urn:cgw:member:`` SAN URI (a member's TLS certificate issued by the same CA is never a gateway), and a
        ``urn:cgw:gateway:`` SAN URI, when present, must name the same id. Otherwise :class:`PeerMismatch` (403).
Rule 3: the sender's signing certificate (the JWS ``x5c``) must chain to THAT peer's ``signing_anchors``
        (documentSigning EKU, one ``urn:cgw:member:<ID>`` SAN URI, as for members at home: ``core/pki.py``),
        never to this gateway's own federation anchor and never to another peer's. Why: the directory says
        which administration vouches for which members; a peer relaying a message its own CA did not certify
        would be vouching for someone else's members.
Rule 4: routing (:meth:`PeerTrust.check_route`): the sender is one of the relaying peer's ``members``; at least
        one recipient is a member this gateway serves (in its own registry and listed under no other gateway of
        the directory), and every other recipient is listed under another gateway of the directory (the
        relaying peer or a third one), never an id no gateway serves. Otherwise :class:`RelayRefused` (403)
        naming ``from``, ``to[i]`` or ``to``. The answer is the recipients served here, in header order: this
        gateway delivers to them only (a message to members of several gateways is relayed by its sender's
        gateway to each of them once; each takes its own share).
Rule 5: revocation of peer certificates is the peer's: the directory carries anchors, not CRLs, and the peer
        checked its member's certificate against its own CRL when it accepted the message. This gateway checks
        chain, validity and key usage; a compromised peer CA is removed by the next signed directory.
Rule 6: untrusted input is bounded before parsing (``core/pki.py`` :data:`MAX_CHAIN_LENGTH` and
        :data:`MAX_CERT_DER_BYTES`); a successful TLS identification is cached by leaf fingerprint for the
        certificate's validity (:data:`MAX_CACHED_PEERS`, oldest out): a peer relays over many connections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from gateway.core.directory import Directory, PeerGateway
from gateway.core.errors import (
    CertificateUntrusted,
    Internal,
    PeerMismatch,
    PeerUntrusted,
    RelayRefused,
)
from gateway.core.model import CertificateRef, CertifiedKey, Header, Registry
from gateway.core.pki import MAX_CERT_DER_BYTES, MAX_CHAIN_LENGTH, MEMBER_URI_PREFIX, fingerprint, member_id_of
from gateway.core.pki import policy_builder as purpose_policy

GATEWAY_URI_PREFIX = "urn:cgw:gateway:"
MAX_CACHED_PEERS = 1024  # gateway certificates: one or two per peer, MAX_GATEWAYS peers, with room for rollovers


@dataclass(frozen=True, slots=True)
class RelayingPeer:
    """A peer gateway proven by its TLS client certificate (Rules 1, 2)."""

    gateway: PeerGateway
    cert_fingerprint: str


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise Internal("validation time must be timezone-aware")
    return at.astimezone(UTC)


def _load(chain: Sequence[bytes], error: type[PeerUntrusted | CertificateUntrusted]) -> list[x509.Certificate]:
    """Rule 6: bounded, then parsed."""
    if not chain:
        raise error("empty certificate chain")
    if len(chain) > MAX_CHAIN_LENGTH:
        raise error(f"chain longer than {MAX_CHAIN_LENGTH} certificates")
    if any(len(der) > MAX_CERT_DER_BYTES for der in chain):
        raise error(f"a certificate larger than {MAX_CERT_DER_BYTES} bytes")
    try:
        return [x509.load_der_x509_certificate(der) for der in chain]
    except ValueError as exc:
        raise error(f"malformed certificate: {exc}") from None


def _store(anchors: Sequence[bytes]) -> Store:
    return Store([x509.load_der_x509_certificate(der) for der in anchors])


class PeerSigners:
    """Rule 3 as a :class:`~gateway.core.model.ChainValidator` for ``envelope.verify_envelope``: the signing
    certificates one peer's administration vouches for. Only ``validate_signing`` is meaningful here."""

    def __init__(self, peer: PeerGateway) -> None:
        self.peer = peer
        self._builder: PolicyBuilder = purpose_policy(_store(peer.signing_anchors), "signing")
        self._anchor_fingerprints = {fingerprint(der) for der in peer.signing_anchors}

    def validate_signing(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        certs = _load(chain, CertificateUntrusted)
        verifier = self._builder.time(_utc(at)).build_client_verifier()
        try:
            verified = verifier.verify(certs[0], certs[1:]).chain
        except VerificationError as exc:
            raise CertificateUntrusted(
                f"the signing certificate does not chain to the signing anchors of {self.peer.id}: {exc}"
            ) from None
        leaf, anchor = verified[0], verified[-1]
        anchor_fp = fingerprint(anchor.public_bytes(serialization.Encoding.DER))
        if len(verified) < 2 or anchor_fp not in self._anchor_fingerprints:  # pragma: no cover - store: only these
            raise CertificateUntrusted(f"the chain does not end at a signing anchor of {self.peer.id}")
        return CertifiedKey(
            member_id=member_id_of(leaf),
            fingerprint=fingerprint(chain[0]),
            public_key=leaf.public_key(),
            not_after=leaf.not_valid_after_utc,
            serial=leaf.serial_number,
            issuer=anchor_fp,
        )

    def validate_client(self, chain: Sequence[bytes], at: datetime) -> CertifiedKey:
        raise CertificateUntrusted(f"a peer's signing trust ({self.peer.id}) authenticates no TLS client")

    def recheck(self, certificate: CertificateRef, member_id: str, at: datetime) -> None:
        raise CertificateUntrusted(f"a peer's signing trust ({self.peer.id}) issues no tokens")


@dataclass(frozen=True, slots=True)
class _Known:
    peer: RelayingPeer
    valid_from: datetime
    valid_until: datetime


class PeerTrust:
    """The peers of one directory, seen from the gateway ``own_id`` (Rules 1-6)."""

    def __init__(self, directory: Directory, own_id: str) -> None:
        self.directory = directory
        self.own_id = own_id
        self.peers = directory.peers_of(own_id)
        self._tls = {p.id: purpose_policy(_store(p.tls_anchors), "client") for p in self.peers}
        self._signers = {p.id: PeerSigners(p) for p in self.peers}
        # member id -> the gateway (other than this one) the directory lists it under
        self._elsewhere = {m: p.id for p in self.peers for m in p.members}
        self._known: dict[str, _Known] = {}

    def tls_anchors_pem(self) -> bytes:
        """Every peer's TLS anchors, PEM, for the listeners' client-certificate trust (distinct, in order)."""
        seen: dict[bytes, None] = {}
        for peer in self.peers:
            for der in peer.tls_anchors:
                seen.setdefault(der, None)
        return b"".join(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM) for der in seen)

    def identify(self, client_cert: bytes | None, at: datetime) -> RelayingPeer:
        """Rules 1, 2 and 6: the peer gateway whose certificate this is."""
        at = _utc(at)
        if client_cert is None:
            raise PeerUntrusted("a relay needs the peer gateway's TLS client certificate")
        leaf_fp = fingerprint(client_cert)
        known = self._known.get(leaf_fp)
        if known is not None and known.valid_from <= at < known.valid_until:
            return known.peer
        leaf = _load([client_cert], PeerUntrusted)[0]
        chained: list[tuple[PeerGateway, list[x509.Certificate]]] = []
        for peer in self.peers:
            try:
                chain = self._tls[peer.id].time(at).build_client_verifier().verify(leaf, []).chain
            except VerificationError:
                continue
            chained.append((peer, chain))
        if not chained:
            raise PeerUntrusted("the client certificate chains to no peer gateway's TLS anchors")
        if len(chained) > 1:
            names = ", ".join(p.id for p, _ in chained)
            raise PeerUntrusted(f"the client certificate chains to the TLS anchors of several peers ({names})")
        peer, chain = chained[0]
        self._require_gateway_certificate(leaf, peer)
        found = RelayingPeer(gateway=peer, cert_fingerprint=leaf_fp)
        if len(self._known) >= MAX_CACHED_PEERS:
            del self._known[next(iter(self._known))]
        self._known[leaf_fp] = _Known(
            found,
            valid_from=max(c.not_valid_before_utc for c in chain),
            valid_until=min(c.not_valid_after_utc for c in chain),
        )
        return found

    @staticmethod
    def _require_gateway_certificate(leaf: x509.Certificate, peer: PeerGateway) -> None:
        """Rule 2."""
        names = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if len(names) == 1 else None
        if common_name != peer.id:
            raise PeerMismatch(f"a certificate of {peer.id}'s administration with CN {common_name!r}, not {peer.id!r}")
        try:
            san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
        if any(u.startswith(MEMBER_URI_PREFIX) for u in uris):
            raise PeerMismatch(f"a member certificate of {peer.id}'s administration, not its gateway's")
        if any(u.startswith(GATEWAY_URI_PREFIX) and u != GATEWAY_URI_PREFIX + peer.id for u in uris):
            raise PeerMismatch(f"the certificate names another gateway than {peer.id}")

    def signers(self, peer: RelayingPeer) -> PeerSigners:
        """Rule 3: the signing trust of the relaying peer."""
        return self._signers[peer.gateway.id]

    def served_here(self, member_id: str, registry: Registry) -> bool:
        """A member of this gateway's registry that the directory lists under no other gateway."""
        return registry.get(member_id) is not None and member_id not in self._elsewhere

    def check_route(self, peer: RelayingPeer, header: Header, registry: Registry) -> tuple[str, ...]:
        """Rule 4, on a verified header: the recipients this gateway serves (never empty)."""
        gateway = peer.gateway
        if header.sender not in gateway.members:
            where = self._elsewhere.get(header.sender)
            listed = f"a member of {where}" if where else "listed under no peer gateway"
            raise RelayRefused(f"{header.sender} is not a member of {gateway.id} ({listed})", field="from")
        here: list[str] = []
        for i, recipient in enumerate(header.to):
            if self.served_here(recipient, registry):
                here.append(recipient)
            elif recipient not in self._elsewhere:
                raise RelayRefused(
                    f"{recipient} is served by no gateway of the directory (not a member of this gateway)",
                    field=f"to[{i}]",
                )
        if not here:
            gateways = sorted({self._elsewhere[r] for r in header.to})
            raise RelayRefused(f"no recipient is served by this gateway (all by {', '.join(gateways)})", field="to")
        return tuple(here)
