"""The signed federation directory (core/directory.py): verified before parsed, strict, monotonic, expiring; and
the gateway side (infra/federationfiles.py) that refuses an older or expired directory across restarts."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.checkpoint import verifier_key_string
from gateway.core.cosignature import Witness
from gateway.core.directory import (
    JWS_TYPE,
    check_succession,
    directory_to_json,
    parse_directory,
    sign_directory,
    verify_directory,
)
from gateway.core.errors import Invalid, SignatureRejected, Unavailable
from gateway.core.signing import sign_compact
from gateway.infra.federationfiles import ACCEPTED_FILE, accept_directory
from gateway.infra.files import write_public
from tests.unit._testpki import TestCA

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
OPERATOR = ec.generate_private_key(ec.SECP256R1())
CA = TestCA()


def _gateway(member: str, origin: str) -> dict[str, Any]:
    der = base64.b64encode(CA.cert.public_bytes(serialization.Encoding.DER)).decode()
    return {
        "id": member,
        "administration": f"{member} customs",
        "country": member[:2],
        "rest_url": f"https://gw.{member.lower()}.example:8443",
        "grpc_target": f"gw.{member.lower()}.example:8444",
        "tls_anchors": [der],
        "signing_anchors": [der],
        "origin": origin,
        "checkpoint_keys": [verifier_key_string(origin, Ed25519PrivateKey.generate().public_key())],
        "witness_key": Witness(
            origin.split("/", maxsplit=1)[0] + "/witness", Ed25519PrivateKey.generate().public_key()
        ).vkey,
        "members": [member],
    }


def _payload(version: int = 1, days: int = 30) -> dict[str, Any]:
    return {
        "federation": "cgw-test",
        "version": version,
        "issued_at": NOW.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "gateways": [_gateway("CN-GACC", "cgw.cn.example/ledger"), _gateway("NL-DOUANE", "cgw.nl.example/ledger")],
    }


def test_signed_directory_round_trip() -> None:
    payload = _payload()
    directory = verify_directory(sign_directory(payload, OPERATOR), OPERATOR.public_key(), now=NOW)
    assert directory.version == 1 and len(directory.digest) == 64
    assert directory_to_json(directory) == payload
    nl = directory.gateways["NL-DOUANE"]
    assert directory.by_origin("cgw.nl.example/ledger") == nl
    assert nl.witness_url == "https://gw.nl-douane.example:8443/witness/add-checkpoint"
    assert [g.id for g in directory.peers_of("CN-GACC")] == ["NL-DOUANE"]


def test_another_key_a_wrong_type_or_a_non_canonical_payload_is_refused() -> None:
    token = sign_directory(_payload(), OPERATOR)
    with pytest.raises(SignatureRejected):
        verify_directory(token, ec.generate_private_key(ec.SECP256R1()).public_key(), now=NOW)
    raw = json.dumps(_payload()).encode()  # not RFC 8785: spaces, unsorted keys
    with pytest.raises(Invalid, match="canonical"):
        verify_directory(sign_compact(raw, OPERATOR, headers={"typ": JWS_TYPE}), OPERATOR.public_key(), now=NOW)
    with pytest.raises(Invalid, match="typ"):
        verify_directory(sign_compact(raw, OPERATOR, headers={"typ": "JWT"}), OPERATOR.public_key(), now=NOW)


def test_an_expired_directory_is_refused() -> None:
    token = sign_directory(_payload(days=1), OPERATOR)
    verify_directory(token, OPERATOR.public_key(), now=NOW + timedelta(hours=23))
    with pytest.raises(Invalid, match="expired") as caught:
        verify_directory(token, OPERATOR.public_key(), now=NOW + timedelta(days=1))
    assert caught.value.field == "not_after"


def _mutated(path: list[Any], value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(_payload())
    target: Any = payload
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["extra"], 1, "extra"),
        (["version"], True, "version"),
        (["version"], 0, "version"),
        (["gateways", 0, "members"], KeyError, "gateways[0].members"),
        (["gateways", 0, "rest_url"], "http://plain.example", "gateways[0].rest_url"),
        (["gateways", 1, "origin"], "cgw.cn.example/ledger", "gateways[1].checkpoint_keys[0]"),
        (["gateways", 1, "members"], ["CN-GACC"], "gateways[1].members"),
        (["gateways", 1, "id"], "CN-GACC", "gateways[1].id"),
        (["gateways", 0, "tls_anchors"], ["AAAA"], "gateways[0].tls_anchors[0]"),
        (["gateways", 0, "tls_anchors"], [], "gateways[0].tls_anchors"),
        (["not_after"], "2026-12-05T11:00:00Z", "not_after"),
        (["issued_at"], "2026-02-30T00:00:00Z", "issued_at"),
    ],
)
def test_strict_parsing(path: list[Any], value: Any, field: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_directory(_mutated(path, value))
    assert caught.value.field == field


def test_a_log_key_is_not_a_witness_key() -> None:
    payload = _payload()
    payload["gateways"][0]["witness_key"] = payload["gateways"][0]["checkpoint_keys"][0]  # type 0x01
    with pytest.raises(Invalid) as caught:
        parse_directory(payload)
    assert caught.value.field == "gateways[0].witness_key"


def test_succession_is_monotonic() -> None:
    v2 = verify_directory(sign_directory(_payload(2), OPERATOR), OPERATOR.public_key(), now=NOW)
    check_succession(v2, None)
    check_succession(v2, (1, "a" * 64))
    check_succession(v2, (2, v2.digest))  # the same document again (a restart)
    with pytest.raises(Invalid, match="older"):
        check_succession(v2, (3, "b" * 64))
    with pytest.raises(Invalid, match="another document"):
        check_succession(v2, (2, "c" * 64))


def test_the_gateway_refuses_an_older_directory_after_a_newer_one(tmp_path: Path) -> None:
    pub = tmp_path / "operator.pub"
    write_public(
        pub,
        OPERATOR.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    signed, data = tmp_path / "directory.jws", tmp_path / "data"
    data.mkdir()
    now = datetime.now(UTC)

    def publish(version: int) -> None:
        payload = _payload(version) | {
            "issued_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "not_after": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        write_public(signed, sign_directory(payload, OPERATOR).encode())

    publish(3)
    assert accept_directory(signed, pub, data, now).version == 3
    assert (data / ACCEPTED_FILE).exists()
    publish(2)  # an attacker (or a stale mirror) replaces the file with an older, validly signed one
    with pytest.raises(Unavailable, match="older than the accepted version 3"):
        accept_directory(signed, pub, data, now)
    publish(4)
    assert accept_directory(signed, pub, data, now).version == 4
    with pytest.raises(Unavailable, match="expired"):
        accept_directory(signed, pub, data, now + timedelta(days=2))
