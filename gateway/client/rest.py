"""The reference client partners can use: signs envelopes with a member's key and talks to a gateway over mTLS.

Rule 1: the client signs exactly what it sends: the JWS goes into ``Cgw-Envelope`` and the payload bytes are the
        body, unchanged.
Rule 2: every call has a timeout; errors come back as :class:`GatewayClientError` with the gateway's stable code.
Rule 3: receipts are verified against the gateway's certificate before they are returned.
Rule 4: a call that never reached a gateway says so: :class:`ClientSetupError` (a URL that is not
        ``https://HOST[:PORT]``, a member the federation directory does not hold) before any connection,
        :class:`GatewayUnreachable` when no gateway answered (refused, TLS handshake failed, timed out); aiohttp's
        exceptions are translated in one place (``GatewayClient._call``).
"""

from __future__ import annotations

import base64
import ssl
import urllib.parse
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from gateway.core import envelope, tokens
from gateway.core.model import Header, Tlp
from gateway.core.receipt import read_receipt
from gateway.core.signing import PrivateKey, alg_for_key, header_x5c, peek_header
from gateway.infra.files import load_certificates, load_private_key

# A client call must never hang: the long-poll wait is added on top of this.
DEFAULT_TIMEOUT_SECONDS = 15.0


class GatewayClientError(Exception):
    def __init__(self, status: int, code: str, detail: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        super().__init__(f"{status} {code}: {detail}" + (f" (at {field})" if field else ""))


class ClientSetupError(GatewayClientError):
    """The call was not made: its URL or credentials are wrong (nothing was sent to a gateway)."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(0, "CLIENT_SETUP", detail, field)


class GatewayUnreachable(GatewayClientError):
    """No gateway answered: the connection was refused, its TLS handshake failed or the answer did not come."""

    def __init__(self, target: str, reason: str) -> None:
        super().__init__(0, "UNREACHABLE", f"no answer from a gateway at {target}: {reason}")


def gateway_url(url: str) -> str:
    """``url`` without a trailing slash, if it is ``https://HOST[:PORT]`` (the gateway speaks HTTPS only)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    hint = f"; did you mean https://{url}?" if "://" not in url else ""
    raise ClientSetupError(f"gateway URL {url!r} is not https://HOST[:PORT] (the gateway speaks HTTPS only){hint}")


def load_signing_key(path: Path) -> PrivateKey:
    key = load_private_key(path)
    if not isinstance(key, ec.EllipticCurvePrivateKey | Ed25519PrivateKey | rsa.RSAPrivateKey):
        raise GatewayClientError(0, "KEY_UNSUPPORTED", f"{path}: not an ECDSA, Ed25519 or RSA key")
    alg_for_key(key)  # refuses curves and sizes the gateway would refuse
    return key


@dataclass(frozen=True, slots=True)
class MemberCredentials:
    member_id: str
    signing_key: PrivateKey
    signing_chain: tuple[x509.Certificate, ...]
    tls_cert: Path | None
    tls_key: Path | None
    ca_file: Path

    @classmethod
    def from_federation(cls, federation_dir: Path, member_id: str) -> MemberCredentials:
        """Credentials of a member in a directory written by ``customs-gateway init``."""
        members = federation_dir / "members"
        if not members.is_dir():
            raise ClientSetupError(f"{federation_dir} is not a federation directory written by 'init' (no members/)")
        base = members / member_id
        if not member_id or "/" in member_id or not base.is_dir():
            known = ", ".join(sorted(p.name for p in members.iterdir() if p.is_dir()))
            raise ClientSetupError(
                f"{member_id!r} is not a member of the federation in {federation_dir}; members: {known}"
            )
        return cls(
            member_id=member_id,
            signing_key=load_signing_key(base / "signing.key"),
            signing_chain=tuple(load_certificates(base / "signing.crt")),
            tls_cert=base / "tls-client.crt",
            tls_key=base / "tls-client.key",
            ca_file=federation_dir / "ca" / "root-ca.crt",
        )


@dataclass(frozen=True, slots=True)
class Submitted:
    status: int
    body: dict[str, Any]
    receipt: dict[str, Any]

    @property
    def duplicate(self) -> bool:
        return bool(self.body.get("duplicate"))


def sign_message(
    credentials: MemberCredentials,
    message_type: str,
    to: list[str],
    payload: bytes,
    *,
    schema: str,
    media: str = "application/json",
    tlp: Tlp = Tlp.AMBER,
    program: str | None = None,
    correlation: str | None = None,
    message_id: str | None = None,
    created: datetime | None = None,
    lifetime: timedelta = timedelta(days=1),
) -> str:
    """The JWS compact envelope for ``payload``, signed with the member's signing key."""
    created = created or datetime.now(UTC)
    header = Header(
        id=message_id or str(uuid.uuid4()),
        type=message_type,
        sender=credentials.member_id,
        to=tuple(to),
        tlp=tlp,
        created=created,
        expires=created + lifetime,
        payload=envelope.payload_ref(media, schema, payload),
        program=program,
        correlation=correlation,
    )
    return envelope.sign_envelope(header, credentials.signing_key, credentials.signing_chain)


class ReceiptVerifier:
    """Verifies gateway receipts (Rule 3): the signer's certificate, taken from the receipt's x5c, must be valid
    now and issued by our trust anchor; the first trusted certificate is remembered."""

    def __init__(self, ca_file: Path) -> None:
        self._ca_file = ca_file
        self._trusted: x509.Certificate | None = None

    def signer_key(self, receipt: str) -> PublicKeyTypes:
        leaf = x509.load_der_x509_certificate(header_x5c(peek_header(receipt))[0])
        if self._trusted is not None and leaf == self._trusted:
            return leaf.public_key()
        now = datetime.now(UTC)
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise GatewayClientError(0, "RECEIPT_UNTRUSTED", "receipt signer certificate is not valid now")
        for anchor in load_certificates(self._ca_file):
            try:
                leaf.verify_directly_issued_by(anchor)
            except (ValueError, TypeError, InvalidSignature):
                continue
            self._trusted = leaf
            return leaf.public_key()
        raise GatewayClientError(0, "RECEIPT_UNTRUSTED", "receipt signer does not chain to the anchor")

    def read(self, receipt: str) -> dict[str, Any]:
        """The verified receipt claims."""
        return read_receipt(receipt, self.signer_key(receipt))


class GatewayClient:
    def __init__(
        self,
        base_url: str,
        credentials: MemberCredentials,
        *,
        mtls: bool = True,
        connections: int = 8,
        gateway_member: str = "CN-GACC",
    ) -> None:
        self.base_url = gateway_url(base_url)
        # The gateway's token issuer id (RFC 7523 audience): urn:cgw:gateway:<home administration>.
        self.gateway_issuer = f"urn:cgw:gateway:{gateway_member}"
        self.credentials = credentials
        context = ssl.create_default_context(cafile=str(credentials.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if mtls and credentials.tls_cert and credentials.tls_key:
            context.load_cert_chain(credentials.tls_cert, credentials.tls_key)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=context, limit=connections),
            timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT_SECONDS),
        )
        self._token: str | None = None
        self._receipts = ReceiptVerifier(credentials.ca_file)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._session.close()

    def sign(self, message_type: str, to: list[str], payload: bytes, **sign_args: Any) -> str:
        """The JWS compact envelope for ``payload`` signed with this client's member key (nothing is sent)."""
        return sign_message(self.credentials, message_type, to, payload, **sign_args)

    # -- calls ------------------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    async def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        headers = self._headers() | kwargs.pop("headers", {})
        try:
            async with self._session.request(method, self.base_url + path, headers=headers, **kwargs) as response:
                if response.content_type in ("application/json", "application/problem+json"):
                    body: Any = await response.json(content_type=None)
                else:
                    body = await response.read()
        except aiohttp.ClientConnectorError as exc:  # refused, unresolvable, TLS handshake (Rule 4)
            raise GatewayUnreachable(self.base_url, f"cannot connect ({exc.os_error or exc})") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise GatewayUnreachable(self.base_url, f"the connection broke before the answer ({exc!r})") from exc
        except TimeoutError as exc:
            raise GatewayUnreachable(self.base_url, "no answer before the call's timeout") from exc
        if response.status >= 400:
            if isinstance(body, dict):
                raise GatewayClientError(
                    response.status, str(body.get("code")), str(body.get("detail")), body.get("field")
                )
            raise GatewayClientError(response.status, "HTTP_ERROR", repr(body)[:200])
        return response.status, body, response

    async def submit_signed(self, jws: str, payload: bytes, media: str = "application/json") -> Submitted:
        status, body, _ = await self._call(
            "POST", "/v1/messages", data=payload, headers={"Cgw-Envelope": jws, "Content-Type": media}
        )
        receipt = self._receipts.read(body["receipt"])
        return Submitted(status=status, body=body, receipt=receipt)

    async def submit(self, message_type: str, to: list[str], payload: bytes, **sign_args: Any) -> Submitted:
        media = sign_args.get("media", "application/json")
        return await self.submit_signed(self.sign(message_type, to, payload, **sign_args), payload, media)

    async def forward_signed(self, sender: str, message_id: str, jws: str) -> Submitted:
        """Forward the received message ``sender/message_id``: ``jws`` is our own envelope over its payload."""
        status, body, _ = await self._call(
            "POST", f"/v1/messages/{sender}/{message_id}/forward", headers={"Cgw-Envelope": jws}
        )
        receipt = self._receipts.read(body["receipt"])
        return Submitted(status=status, body=body, receipt=receipt)

    async def reload_policies(self) -> dict[str, Any]:
        """Ask the gateway to re-read, check and swap its policy set (the admin action)."""
        _, body, _ = await self._call("POST", "/v1/admin/policies/reload")
        return dict(body)

    async def reload_trust(self) -> dict[str, Any]:
        """Ask the gateway to re-read, check and swap its trust anchors, CRL and registry (the admin action)."""
        _, body, _ = await self._call("POST", "/v1/admin/trust/reload")
        return dict(body)

    async def pull(self, *, after: int = 0, limit: int = 100, wait: int = 0) -> dict[str, Any]:
        _, body, _ = await self._call(
            "GET",
            "/v1/inbox",
            params={"after": after, "limit": limit, "wait": wait},
            timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT_SECONDS + wait),
        )
        for item in body["items"]:
            item["payload"] = base64.b64decode(item["payload"])
        return dict(body)

    async def ack(self, cursors: list[int]) -> int:
        _, body, _ = await self._call("POST", "/v1/inbox/ack", json={"cursors": cursors})
        return int(body["acknowledged"])

    async def aeo_recognition(self, operator: str, *, admin: str = "", date: str = "") -> dict[str, Any]:
        """GET /v1/aeo/recognition: is ``operator`` an AEO ``admin`` (default: the gateway's home) recognises?"""
        params = {"operator": operator} | ({"admin": admin} if admin else {}) | ({"date": date} if date else {})
        _, body, _ = await self._call("GET", "/v1/aeo/recognition", params=params)
        return dict(body)

    async def port_notices(self, locode: str, *, after: int = 0, limit: int = 100, wait: int = 0) -> dict[str, Any]:
        """GET /v1/ports/{locode}/notices: the port's release stream entries with seq > ``after``; ``wait``
        long-polls for new ones."""
        _, body, _ = await self._call(
            "GET",
            f"/v1/ports/{locode}/notices",
            params={"after": after, "limit": limit, "wait": wait},
            timeout=aiohttp.ClientTimeout(total=DEFAULT_TIMEOUT_SECONDS + wait),
        )
        return dict(body)

    async def port_snapshot(self, locode: str) -> dict[str, Any]:
        """GET /v1/ports/{locode}/snapshot: the decisions in force and the seq they reflect."""
        _, body, _ = await self._call("GET", f"/v1/ports/{locode}/snapshot")
        return dict(body)

    async def dead_letters(self, *, recipient: str = "", after: int = 0, limit: int = 100) -> dict[str, Any]:
        """GET /v1/admin/dead-letters (Cedar ``admin``): dead letters with cursor > ``after``, oldest first."""
        params = {"after": after, "limit": limit} | ({"recipient": recipient} if recipient else {})
        _, body, _ = await self._call("GET", "/v1/admin/dead-letters", params=params)
        return dict(body)

    async def redrive(self, cursors: list[int]) -> int:
        """POST /v1/admin/dead-letters/redrive: these dead letters are due again; how many were dead letters."""
        _, body, _ = await self._call("POST", "/v1/admin/dead-letters/redrive", json={"cursors": cursors})
        return int(body["redriven"])

    async def status(self, sender: str, message_id: str) -> dict[str, Any]:
        _, body, _ = await self._call("GET", f"/v1/messages/{sender}/{message_id}")
        return dict(body)

    async def fetch_token(self, *, audience: str | None = None) -> str:
        """RFC 7523 client assertion -> access token; later calls send it as a bearer token."""
        assertion = tokens.make_client_assertion(
            self.credentials.member_id,
            audience or self.gateway_issuer,
            self.credentials.signing_key,
            self.credentials.signing_chain,
            now=datetime.now(UTC),
            jti=str(uuid.uuid4()),
        )
        _, body, _ = await self._call(
            "POST",
            "/v1/token",
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            },
        )
        self._token = str(body["access_token"])
        return self._token

    # -- audit ------------------------------------------------------------------------------------------

    async def checkpoint(self) -> bytes:
        _, body, _ = await self._call("GET", "/v1/audit/checkpoint")
        return bytes(body)

    async def verifier_key(self) -> str:
        _, body, _ = await self._call("GET", "/v1/audit/key")
        return str(body["verifier_key"])

    async def verifier_keys(self) -> list[str]:
        """Every checkpoint key of the log's history, oldest first (the last one is in use)."""
        _, body, _ = await self._call("GET", "/v1/audit/key")
        return [str(key) for key in body["verifier_keys"]]

    async def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        _, body, _ = await self._call("GET", "/v1/audit/entries", params={"start": start, "end": end})
        return [(int(e["index"]), base64.b64decode(e["data"])) for e in body["entries"]]

    async def inclusion(self, index: int, size: int) -> dict[str, Any]:
        _, body, _ = await self._call("GET", "/v1/audit/proof/inclusion", params={"index": index, "size": size})
        return dict(body)

    async def consistency(self, first: int, second: int) -> dict[str, Any]:
        _, body, _ = await self._call("GET", "/v1/audit/proof/consistency", params={"from": first, "to": second})
        return dict(body)

    async def exchanges(self, **filters: str | int) -> dict[str, Any]:
        """GET /v1/audit/exchanges: ledger leaves matching every filter (message_id, sender, recipient, type,
        container, bl, since, until), newest first; ``before`` and ``limit`` page."""
        _, body, _ = await self._call("GET", "/v1/audit/exchanges", params={k: str(v) for k, v in filters.items()})
        return dict(body)

    async def story(self, sender: str, message_id: str) -> dict[str, Any]:
        """GET /v1/audit/story/{sender}/{message_id}: the ledger leaves about one message, in order."""
        _, body, _ = await self._call("GET", f"/v1/audit/story/{sender}/{message_id}")
        return dict(body)

    async def rejections(self, **window: str | int) -> dict[str, Any]:
        """GET /v1/audit/rejections: rejected leaves counted per code and time bucket (since, until, bucket)."""
        _, body, _ = await self._call("GET", "/v1/audit/rejections", params={k: str(v) for k, v in window.items()})
        return dict(body)
