"""``[federation]`` settings: the signed federation directory and this gateway's witness (issue 19).

    [federation]
    directory = "federation/directory.jws"     # the signed directory (customs-gateway federation sign)
    operator_key = "federation/operator.pub"   # the federation operator's public key (PEM) that signs it
    witness_key = "gateway/witness.key"        # this gateway's Ed25519 cosignature key (mode 0600)
    gateway_id = "CN-GACC"                     # its entry in the directory (default: [gateway] member_id)
    submit_timeout_seconds = 5.0               # one add-checkpoint request to a peer witness
    client_cert = "gateway/relay-client.pem"   # this gateway's TLS client cert towards its peers (optional)
    client_key = "gateway/relay-client.key"    # its private key (mode 0600); both or neither
    relay_transport = "rest"                   # or "grpc": relay over the peer's grpc_target when it has one

Rule 1: without the section the gateway runs no witness and submits to none (a single-gateway install).
Rule 2: paths are relative to the config file's directory, like every other path (``gateway.app.settings``).
Rule 3: the client certificate is issued by this gateway's own administration CA (one of its ``tls_anchors`` in the
        directory) with subject CN = the gateway id; peers authenticate relays and witness submissions by it.
Rule 4: ``relay_transport`` picks how relays leave: ``rest`` (``POST /v1/relay/messages``, the default) or ``grpc``
        (``Exchange.Relay`` at the peer's ``grpc_target``; a peer whose entry names none is still relayed over
        REST). Witness submissions are REST either way (C2SP tlog-witness is HTTP).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.errors import Unavailable
from gateway.core.registry import MEMBER_ID

KEYS = frozenset(
    {
        "directory",
        "operator_key",
        "witness_key",
        "gateway_id",
        "submit_timeout_seconds",
        "client_cert",
        "client_key",
        "relay_transport",
    }
)
RELAY_TRANSPORTS = ("rest", "grpc")
# A peer witness on another continent answers in well under a second; a hung one must not stall the round.
DEFAULT_SUBMIT_TIMEOUT_SECONDS = 5.0
MAX_SUBMIT_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class FederationSettings:
    directory: Path
    operator_key: Path
    witness_key: Path
    gateway_id: str
    submit_timeout_seconds: float = DEFAULT_SUBMIT_TIMEOUT_SECONDS
    client_cert: Path | None = None  # Rule 3
    client_key: Path | None = None
    relay_transport: str = "rest"  # Rule 4


def parse_federation_settings(raw: Mapping[str, Any] | None, base: Path, member_id: str) -> FederationSettings | None:
    if raw is None:
        return None
    paths: dict[str, Path] = {}
    for key in ("directory", "operator_key", "witness_key"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise Unavailable(f"config: [federation] {key} must be a path", field=f"federation.{key}")
        paths[key] = base / value
    gateway_id = raw.get("gateway_id", member_id)
    if not isinstance(gateway_id, str) or not MEMBER_ID.fullmatch(gateway_id):
        raise Unavailable("config: [federation] gateway_id must be a member id", field="federation.gateway_id")
    timeout = raw.get("submit_timeout_seconds", DEFAULT_SUBMIT_TIMEOUT_SECONDS)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 < timeout <= MAX_SUBMIT_TIMEOUT_SECONDS
    ):
        raise Unavailable(
            f"config: [federation] submit_timeout_seconds must be in (0, {MAX_SUBMIT_TIMEOUT_SECONDS}]",
            field="federation.submit_timeout_seconds",
        )
    client: dict[str, Path | None] = {}
    for key in ("client_cert", "client_key"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise Unavailable(f"config: [federation] {key} must be a path", field=f"federation.{key}")
        client[key] = base / value if value else None
    if (client["client_cert"] is None) != (client["client_key"] is None):
        raise Unavailable("config: [federation] client_cert and client_key go together", field="federation.client_key")
    transport = raw.get("relay_transport", "rest")
    if transport not in RELAY_TRANSPORTS:
        raise Unavailable(
            f"config: [federation] relay_transport must be one of {', '.join(RELAY_TRANSPORTS)}",
            field="federation.relay_transport",
        )
    return FederationSettings(
        directory=paths["directory"],
        operator_key=paths["operator_key"],
        witness_key=paths["witness_key"],
        gateway_id=gateway_id,
        submit_timeout_seconds=float(timeout),
        client_cert=client["client_cert"],
        client_key=client["client_key"],
        relay_transport=str(transport),
    )
