"""Access: who is calling (mTLS certificate or gateway-issued token) and the token endpoint's rules.

Rule 1: a caller is a registry member proven by a federation TLS client certificate (validated with the CRL,
        clientAuth EKU, registered fingerprint) or by a gateway-issued access token; a token bound to a
        certificate (RFC 8705 ``cnf.x5t#S256``) is accepted only with that certificate presented.
Rule 2: a client assertion (RFC 7523) is used once: its ``jti`` is claimed durably in the store before a token
        is issued; the issuance is a ledger event. Refusals are audited by the pipeline.
Rule 3: authentication failures share one public message; the distinguishing detail stays in ``detail``.
Rule 4: a TLS client certificate presented with a bearer token (or to the token endpoint) is always validated
        like an mTLS caller's (chain, current CRL, clientAuth EKU, registered; the trust snapshot's chain cache
        answers repeats), never matched by thumbprint alone, and it must name the token's member: a token of
        member A over a TLS connection of member B is ``TOKEN_INVALID``, bound or not.
Rule 5: revocation reaches tokens at their next use. A token derives from two certificates at most: the one
        that signed its client assertion (named in the token, ``tokens.CERT_CLAIM``) and, when bound, the TLS
        client certificate it was issued over. At every use the first is rechecked against the trust of the
        moment (``ChainValidator.recheck``: current CRL, same issuing anchor, serial not listed, still registered
        for the member) and the second is validated again (Rule 4, it must be presented). A revoked one refuses
        the token with ``CERT_REVOKED``; revoking another certificate of the member does not, since that one
        proved nothing about this token (revoke the signing certificate to cut off every token issued from it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from gateway.core import tokens
from gateway.core.audit import AuditEvent, EventKind
from gateway.core.errors import TokenInvalid, TokenReplayed, Unauthenticated
from gateway.core.model import Caller, CertifiedKey
from gateway.exchange.state import GatewayState
from gateway.interfaces.protocols import Store


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the transport proved about the peer: its TLS client certificate and/or a bearer token."""

    client_cert: bytes | None = None  # DER of the TLS client certificate (already TLS-verified)
    bearer_token: str | None = None
    peer: str | None = None  # the peer's IP address (not proof of anything: rejection summaries count by it)


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int


def _same_member(certified: CertifiedKey | None, member_id: str) -> None:
    """Rule 4: the TLS identity and the token identity agree."""
    if certified is not None and certified.member_id != member_id:
        raise TokenInvalid(f"a token of {member_id} over the TLS connection of {certified.member_id}")


def authenticate_caller(state: GatewayState, now: datetime, credentials: Credentials) -> Caller:
    """mTLS certificate or a gateway-issued access token (Rules 1, 4, 5)."""
    trust = state.require_trust()
    if credentials.bearer_token is not None:
        presented: str | None = None
        certified: CertifiedKey | None = None
        if credentials.client_cert is not None:
            presented = tokens.x5t_s256(credentials.client_cert)
        claims = tokens.verify_access_token(
            credentials.bearer_token,
            public_key=state.identity.public_key,
            issuer=state.issuer,
            audience=state.issuer,
            now=now,
            registry=trust.registry,
            presented_cert_x5t_s256=presented,
        )
        if credentials.client_cert is not None:
            certified = trust.validator.validate_client([credentials.client_cert], now)
        _same_member(certified, claims.member.id)
        trust.validator.recheck(claims.certificate, claims.member.id, now)
        return Caller(member=claims.member, method="token", cert_fingerprint=claims.certificate.fingerprint)
    if credentials.client_cert is not None:
        certified = trust.validator.validate_client([credentials.client_cert], now)
        member = trust.registry.get(certified.member_id)
        if member is None:
            raise Unauthenticated("client certificate names no registry member")
        return Caller(member=member, method="mtls", cert_fingerprint=certified.fingerprint)
    raise Unauthenticated("no client certificate and no bearer token")


async def issue_token(
    state: GatewayState, now: datetime, store: Store, unverified_assertion: str, client_cert: bytes | None
) -> IssuedToken:
    """Verify the client assertion, claim its ``jti`` once, issue the (possibly bound) token, record it."""
    trust = state.require_trust()
    assertion = tokens.verify_client_assertion(
        unverified_assertion,
        audience=state.token_audience,
        validator=trust.validator,
        registry=trust.registry,
        now=now,
    )
    if client_cert is not None:  # Rule 4: the token is bound to a validated certificate of its own member
        _same_member(trust.validator.validate_client([client_cert], now), assertion.member.id)
    if not await store.claim_once(f"jti:{assertion.member.id}:{assertion.jti}", assertion.expires):
        raise TokenReplayed("client assertion jti already used")
    ttl = state.limits.token_ttl_seconds
    bound = tokens.x5t_s256(client_cert) if client_cert else None
    token = tokens.issue_access_token(
        assertion.member,
        key=state.identity.private_key,
        key_id=state.identity.key_id,
        issuer=state.issuer,
        audience=state.issuer,
        now=now,
        ttl=ttl,
        cnf_x5t_s256=bound,
        jti=hashlib.sha256(f"{assertion.member.id}:{assertion.jti}".encode()).hexdigest()[:32],
        certificate=assertion.certificate,
    )
    await store.record(
        AuditEvent(EventKind.TOKEN_ISSUED, now, {"member": assertion.member.id, "bound": bound is not None})
    )
    return IssuedToken(token=token, expires_in=ttl)
