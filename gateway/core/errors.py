"""The one exception tree of customs-gateway.

Every error the gateway can report derives from :class:`GatewayError` and carries

* a stable ``code`` (upper snake case, part of the public API, listed in README's error table),
* a ``kind`` (:class:`ErrorKind`) that ``adapters/status.py`` maps to HTTP / SOAP / gRPC status,
* a ``public`` message safe to show to the caller,
* a ``detail`` for logs and the ledger only (never sent to the caller),
* an optional ``field`` path (``payload.consignments[0].containers[1].number``) naming what was wrong; in a
  payload, each field is named as the sender wrote it (``payload.containerNumbers[1]``): ``gateway.core.payloads``
  re-spells the path once, where the error leaves validation.

Rule 1: authentication failures never say which check failed: all of them share the public message of
        :class:`Unauthenticated`; the distinguishing detail goes to the ledger or the log only.
Rule 2: secrets, tokens, keys and payload bodies never appear in ``public`` or ``detail``.

Tree (each class, its stable code and the HTTP status ``adapters/status.py`` gives its kind)::

    GatewayError
    ├── BadRequest                  MALFORMED_REQUEST         400
    │   ├── LimitExceeded           LIMIT_EXCEEDED            413
    │   ├── UnsupportedMediaType    UNSUPPORTED_MEDIA_TYPE    415
    │   ├── MethodNotAllowed        METHOD_NOT_ALLOWED        405
    │   └── RequestTimeout          REQUEST_TIMEOUT           408
    ├── Unauthenticated             UNAUTHENTICATED           401
    │   ├── TokenInvalid            TOKEN_INVALID             401
    │   ├── TokenReplayed           TOKEN_REPLAYED            401
    │   └── PeerUntrusted           PEER_UNTRUSTED            401
    ├── SignatureRejected           SIGNATURE_INVALID         401
    │   ├── AlgorithmNotAllowed     ALG_NOT_ALLOWED           401
    │   ├── CertificateUntrusted    CERT_UNTRUSTED            401
    │   ├── CertificateRevoked      CERT_REVOKED              401
    │   ├── SignerMismatch          SIGNER_MISMATCH           401
    │   └── PayloadDigestMismatch   PAYLOAD_DIGEST_MISMATCH   401
    ├── Forbidden                   POLICY_DENIED             403
    │   ├── PeerMismatch            PEER_MISMATCH             403
    │   └── RelayRefused            RELAY_REFUSED             403
    ├── NotFound                    NOT_FOUND                 404
    ├── DuplicateConflict           DUPLICATE_CONFLICT        409
    ├── Invalid                     SCHEMA_INVALID            422
    │   ├── HeaderInvalid           HEADER_INVALID            422
    │   ├── IdentifierInvalid       IDENTIFIER_INVALID        422
    │   ├── UnknownRecipient        UNKNOWN_RECIPIENT         422
    │   ├── MessageExpired          MESSAGE_EXPIRED           422
    │   ├── MessageNotYetValid      MESSAGE_NOT_YET_VALID     422
    │   ├── ProofInvalid            PROOF_INVALID             422
    │   └── EdifactInvalid          EDIFACT_INVALID           422
    ├── Overloaded                  RATE_LIMITED              429
    ├── Unavailable                 UNAVAILABLE               503  (fail closed: trust list, policies, store, key)
    └── Internal                    INTERNAL                  500  (a bug; the caller sees no detail)

Defined elsewhere, each keeping its parent's code: ``StreamGap`` (Invalid, ``gateway.core.release``),
``PortMoved`` (Unavailable, ``gateway.infra.redis_sequencer``; never reaches a client) and ``IdentifierErrors``
(IdentifierInvalid, ``adapters.edifact.cuscar``). ``tests/unit/test_errors.py`` holds this tree to the classes.
"""

from __future__ import annotations

import enum
from typing import ClassVar


class ErrorKind(enum.Enum):
    """Transport-neutral category of an error; adapters/status.py maps each to a wire status."""

    BAD_REQUEST = "bad_request"
    TOO_LARGE = "too_large"
    UNSUPPORTED_MEDIA = "unsupported_media"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    REQUEST_TIMEOUT = "request_timeout"
    UNAUTHENTICATED = "unauthenticated"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    INVALID = "invalid"
    OVERLOADED = "overloaded"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal"


class GatewayError(Exception):
    """Base of every error the gateway reports to a caller."""

    code: ClassVar[str] = "INTERNAL"
    kind: ClassVar[ErrorKind] = ErrorKind.INTERNAL
    default_public: ClassVar[str] = "internal error"
    # True where the detail only describes the caller's own input (which field, which rule) and is safe and
    # useful to return; False for authentication, authorization and server-side errors (Rule 1, Rule 2).
    expose_detail: ClassVar[bool] = False

    def __init__(self, detail: str = "", *, field: str | None = None, public: str | None = None) -> None:
        self.detail = detail
        self.field = field
        self.public = public if public is not None else self.default_public
        super().__init__(self._text())

    def _text(self) -> str:
        return f"{self.code}: {self.detail or self.public}" + (f" (at {self.field})" if self.field else "")

    def relocate(self, field: str) -> None:
        """Name the same place by another ``field`` path (a boundary re-spelling paths as the sender wrote them,
        ``gateway.core.payloads.respell``)."""
        self.field = field
        self.args = (self._text(),)

    def diagnostics(self) -> dict[str, str]:
        """Everything an operator needs (for logs and the ledger); never contains secrets."""
        out = {"code": self.code, "public": self.public}
        if self.detail:
            out["detail"] = self.detail
        if self.field:
            out["field"] = self.field
        return out


# -- 400 ---------------------------------------------------------------------------------------------


class BadRequest(GatewayError):
    code = "MALFORMED_REQUEST"
    kind = ErrorKind.BAD_REQUEST
    expose_detail = True
    default_public = "the request is malformed"


class LimitExceeded(BadRequest):
    code = "LIMIT_EXCEEDED"
    kind = ErrorKind.TOO_LARGE
    default_public = "a size or count limit was exceeded"


class UnsupportedMediaType(BadRequest):
    code = "UNSUPPORTED_MEDIA_TYPE"
    kind = ErrorKind.UNSUPPORTED_MEDIA
    default_public = "unsupported media type"


class MethodNotAllowed(BadRequest):
    """The path exists but not for this method; ``allowed`` is what the HTTP answer lists in ``Allow``."""

    code = "METHOD_NOT_ALLOWED"
    kind = ErrorKind.METHOD_NOT_ALLOWED
    default_public = "this method is not allowed on this path"

    def __init__(self, detail: str = "", *, allowed: tuple[str, ...] = (), field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.allowed = allowed


class RequestTimeout(BadRequest):
    code = "REQUEST_TIMEOUT"
    kind = ErrorKind.REQUEST_TIMEOUT
    default_public = "the request did not arrive in time"


# -- 401 ---------------------------------------------------------------------------------------------


class Unauthenticated(GatewayError):
    code = "UNAUTHENTICATED"
    kind = ErrorKind.UNAUTHENTICATED
    default_public = "authentication failed"


class TokenInvalid(Unauthenticated):
    code = "TOKEN_INVALID"


class TokenReplayed(Unauthenticated):
    code = "TOKEN_REPLAYED"


class PeerUntrusted(Unauthenticated):
    """A relay whose TLS client certificate does not chain to the TLS anchors of exactly one peer gateway of
    the federation directory in force (gateway/core/peertrust.py)."""

    code = "PEER_UNTRUSTED"


class SignatureRejected(GatewayError):
    code = "SIGNATURE_INVALID"
    kind = ErrorKind.UNAUTHENTICATED
    default_public = "the message signature could not be verified"


class AlgorithmNotAllowed(SignatureRejected):
    code = "ALG_NOT_ALLOWED"
    default_public = "signature algorithm not allowed (ES256, EdDSA, PS256 only)"


class CertificateUntrusted(SignatureRejected):
    code = "CERT_UNTRUSTED"
    default_public = "the signing certificate does not chain to the federation trust anchor"


class CertificateRevoked(SignatureRejected):
    code = "CERT_REVOKED"
    default_public = "the signing certificate is revoked"


class SignerMismatch(SignatureRejected):
    code = "SIGNER_MISMATCH"
    default_public = "the signer is not the sender named in the header or not the authenticated caller"


class PayloadDigestMismatch(SignatureRejected):
    code = "PAYLOAD_DIGEST_MISMATCH"
    default_public = "the payload does not match the signed digest or size"


# -- 403 / 404 / 409 ---------------------------------------------------------------------------------


class Forbidden(GatewayError):
    code = "POLICY_DENIED"
    kind = ErrorKind.FORBIDDEN
    default_public = "the access policy does not permit this exchange"


class PeerMismatch(Forbidden):
    """A certificate of a peer administration's CA that is not that peer's gateway certificate (its CN is not
    the gateway id, or it names a member)."""

    code = "PEER_MISMATCH"
    default_public = "the client certificate is not the relaying gateway's certificate"


class RelayRefused(Forbidden):
    """A relay the directory does not route through this peer to this gateway: the sender is not a member of
    the relaying peer, or a recipient is not a member this gateway serves."""

    code = "RELAY_REFUSED"
    default_public = "this relay is not routed through the relaying gateway to this gateway"
    expose_detail = True


class NotFound(GatewayError):
    code = "NOT_FOUND"
    kind = ErrorKind.NOT_FOUND
    default_public = "not found"


class DuplicateConflict(GatewayError):
    code = "DUPLICATE_CONFLICT"
    kind = ErrorKind.CONFLICT
    default_public = "a different message with this sender and id was already accepted"


# -- 422 ---------------------------------------------------------------------------------------------


class Invalid(GatewayError):
    code = "SCHEMA_INVALID"
    kind = ErrorKind.INVALID
    expose_detail = True
    default_public = "the message does not match its schema"


class HeaderInvalid(Invalid):
    code = "HEADER_INVALID"
    default_public = "the message header is invalid"


class IdentifierInvalid(Invalid):
    code = "IDENTIFIER_INVALID"
    default_public = "an identifier failed its format or check-digit rule"


class UnknownRecipient(Invalid):
    code = "UNKNOWN_RECIPIENT"
    default_public = "a recipient is not a member of the federation"


class MessageExpired(Invalid):
    code = "MESSAGE_EXPIRED"
    default_public = "the message has expired"


class MessageNotYetValid(Invalid):
    code = "MESSAGE_NOT_YET_VALID"
    default_public = "the message was created in the future (beyond the allowed clock skew)"


class ProofInvalid(Invalid):
    code = "PROOF_INVALID"
    default_public = "a Merkle proof, checkpoint or ledger entry does not verify"


class EdifactInvalid(Invalid):
    """A UN/EDIFACT interchange broke a syntax, envelope or directory rule; ``field`` names the segment
    (``segment[12].UNT``) and ``detail`` starts with the rule id (``UNT.count``)."""

    code = "EDIFACT_INVALID"
    default_public = "the EDIFACT interchange breaks a syntax, envelope or message-structure rule"


# -- 429 / 503 / 500 ---------------------------------------------------------------------------------


class Overloaded(GatewayError):
    code = "RATE_LIMITED"
    kind = ErrorKind.OVERLOADED
    default_public = "the gateway is busy; retry later"


class Unavailable(GatewayError):
    code = "UNAVAILABLE"
    kind = ErrorKind.UNAVAILABLE
    default_public = "the gateway cannot accept messages right now (fail closed)"


class Internal(GatewayError):
    code = "INTERNAL"
    kind = ErrorKind.INTERNAL
    default_public = "internal error"


def all_error_classes() -> list[type[GatewayError]]:
    """Every concrete error class, for the README table and the status-table completeness test."""
    seen: list[type[GatewayError]] = []
    stack: list[type[GatewayError]] = [GatewayError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(seen, key=lambda c: c.code)
