"""What the pipeline needs to decide, held in one place so it can be swapped atomically.

Rule 1: fail closed: when the trust material, the policy set or the signing key is missing, ``require_*``
        raises ``Unavailable`` and no message is accepted.
Rule 2: a reload builds a complete new value and swaps the reference (readers never see half a reload).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.core.errors import Unavailable
from gateway.core.model import ChainValidator, Registry
from gateway.core.policy import Authorizer
from gateway.core.receipt import receipt_signer
from gateway.core.signing import chain_x5c
from gateway.interfaces.config import Limits


@dataclass(frozen=True, slots=True)
class Trust:
    validator: ChainValidator
    registry: Registry
    version: str


@dataclass(frozen=True, slots=True)
class Identity:
    """The gateway's own signing identity (receipts, access tokens)."""

    private_key: ec.EllipticCurvePrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def public_key(self) -> PublicKeyTypes:
        return self.chain[0].public_key()

    @property
    def key_id(self) -> str:
        spki = self.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(spki).hexdigest()[:16]

    def __post_init__(self) -> None:
        if not isinstance(self.private_key.curve, ec.SECP256R1):
            raise Unavailable("the gateway signing key must be ECDSA P-256")


class GatewayState:
    def __init__(
        self,
        *,
        member_id: str,
        issuer: str,
        identity: Identity,
        limits: Limits,
        trust: Trust | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.member_id = member_id
        self.issuer = issuer
        # RFC 7523 section 3: the assertion's audience identifies the authorization server (this gateway).
        self.token_audience = issuer
        self.identity = identity
        # The receipt signer: its x5c is checked against the key and its protected header encoded once here.
        self.receipt_signer = receipt_signer(identity.private_key, chain_x5c(identity.private_key, identity.chain))
        self.limits = limits
        self._trust = trust
        self._authorizer = authorizer

    def require_trust(self) -> Trust:
        if self._trust is None:
            raise Unavailable("trust list not loaded")
        return self._trust

    def require_authorizer(self) -> Authorizer:
        if self._authorizer is None:
            raise Unavailable("policy set not loaded")
        return self._authorizer

    def swap(self, *, trust: Trust | None = None, authorizer: Authorizer | None = None) -> None:
        if trust is not None:
            self._trust = trust
        if authorizer is not None:
            self._authorizer = authorizer

    @property
    def ready(self) -> bool:
        return self._trust is not None and self._authorizer is not None
