"""``[federation]`` settings: the signed federation directory and this gateway's witness (issue 19).

    [federation]
    directory = "federation/directory.jws"     # the signed directory (customs-gateway federation sign)
    operator_key = "federation/operator.pub"   # the federation operator's public key (PEM) that signs it
    witness_key = "gateway/witness.key"        # this gateway's Ed25519 cosignature key (mode 0600)
    gateway_id = "CN-GACC"                     # its entry in the directory (default: [gateway] member_id)
    submit_timeout_seconds = 5.0               # one add-checkpoint request to a peer witness

Rule 1: without the section the gateway runs no witness and submits to none (a single-gateway install).
Rule 2: paths are relative to the config file's directory, like every other path (``settings`` Rule 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.core.errors import Unavailable
from gateway.core.registry import MEMBER_ID

KEYS = frozenset({"directory", "operator_key", "witness_key", "gateway_id", "submit_timeout_seconds"})
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
    return FederationSettings(
        directory=paths["directory"],
        operator_key=paths["operator_key"],
        witness_key=paths["witness_key"],
        gateway_id=gateway_id,
        submit_timeout_seconds=float(timeout),
    )
