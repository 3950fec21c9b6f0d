"""Project Wycheproof signature vectors through our own verifiers (``gateway.core.signing.verify_raw*``).

Every case of every file is run: ``valid`` must be accepted, ``invalid`` must be rejected.

"acceptable" cases (legal but discouraged inputs, e.g. BER-encoded or weak-parameter signatures) are held to
the strict side: our verifiers must REJECT them, because a signature that some verifiers refuse is not one
we want as evidence that must re-verify for years. The four files shipped today contain no acceptable case;
the count assertion documents that, and the rule applies if a future file adds some.

Public keys are loaded from each group's ``publicKeyDer`` (SubjectPublicKeyInfo). Skips cleanly when
``../shared/vectors/wycheproof`` is absent (a fresh clone has no ``../shared``).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key

from gateway.core import signing
from gateway.core.errors import SignatureRejected
from tests.shareddata import shared_path

pytestmark = pytest.mark.shared

Verifier = Callable[[Any, bytes, bytes], None]


def _es256_p1363(key: Any, msg: bytes, sig: bytes) -> None:
    signing.verify_raw("ES256", key, msg, sig)


def _eddsa(key: Any, msg: bytes, sig: bytes) -> None:
    signing.verify_raw("EdDSA", key, msg, sig)


def _ps256(key: Any, msg: bytes, sig: bytes) -> None:
    signing.verify_raw("PS256", key, msg, sig)


# file, verifier, expected (valid, invalid, acceptable) counts: a changed file is noticed, not silently run
CASES: list[tuple[str, Verifier, tuple[int, int, int]]] = [
    ("ecdsa_secp256r1_sha256_test.json", signing.verify_raw_der, (174, 310, 0)),
    ("ecdsa_secp256r1_sha256_p1363_test.json", _es256_p1363, (173, 89, 0)),
    ("ed25519_test.json", _eddsa, (88, 63, 0)),
    ("rsa_pss_2048_sha256_mgf1_32_test.json", _ps256, (63, 45, 0)),
]


@pytest.mark.parametrize(("name", "verify", "expected"), CASES, ids=[c[0] for c in CASES])
def test_every_wycheproof_case(name: str, verify: Verifier, expected: tuple[int, int, int]) -> None:
    path = shared_path(f"vectors/wycheproof/{name}")
    data = json.loads(path.read_text(encoding="utf-8"))
    counts: collections.Counter[str] = collections.Counter()
    wrong: list[str] = []
    for group in data["testGroups"]:
        key = load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
        for case in group["tests"]:
            counts[case["result"]] += 1
            try:
                verify(key, bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"]))
                accepted = True
            except SignatureRejected:
                accepted = False
            if accepted != (case["result"] == "valid"):
                wrong.append(f"tcId {case['tcId']} ({case['result']}, {case['comment']}): accepted={accepted}")
    assert (counts["valid"], counts["invalid"], counts["acceptable"]) == expected
    assert sum(counts.values()) == data["numberOfTests"]
    assert not wrong, "\n".join(wrong[:20])
