"""transparency-dev/merkle RFC 6962 / 9162 proof vectors, run through our own verify functions.

Only ``inclusion/`` and ``consistency/`` are used: the ``subtree*`` folders exercise proofs for arbitrary
subtree ranges (``start``/``end``), an API this gateway does not offer.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gateway.core import merkle
from gateway.core.errors import GatewayError
from tests.shareddata import SHARED, missing, shared_path

VECTORS = SHARED / "vectors" / "merkle"

pytestmark = pytest.mark.shared


def load(kind: str) -> list[Any]:
    folder = VECTORS / kind
    if not folder.is_dir():
        return [pytest.param(None, id=f"{kind}-absent")]
    files = sorted(folder.rglob("*.json"))
    return [pytest.param(json.loads(f.read_text()), id=str(f.relative_to(folder))) for f in files]


def b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def require(case: dict[str, Any] | None) -> dict[str, Any]:
    if case is None:
        pytest.skip(missing("vectors/merkle"))  # the folder was absent when the cases were collected
    return case


@pytest.mark.parametrize("case", load("inclusion"))
def test_inclusion_vector(case: dict[str, Any] | None) -> None:
    case = require(case)

    def run() -> None:
        merkle.verify_inclusion(
            b64(case["leafHash"]),
            case["leafIdx"],
            case["treeSize"],
            [b64(p) for p in case["proof"] or []],
            b64(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(GatewayError):
            run()
    else:
        run()


@pytest.mark.parametrize("case", load("consistency"))
def test_consistency_vector(case: dict[str, Any] | None) -> None:
    case = require(case)

    def run() -> None:
        merkle.verify_consistency(
            case["size1"],
            case["size2"],
            [b64(p) for p in case["proof"] or []],
            b64(case["root1"]),
            b64(case["root2"]),
        )

    if case["wantErr"]:
        with pytest.raises(GatewayError):
            run()
    else:
        run()


def test_vector_folders_are_not_empty() -> None:
    folder = shared_path("vectors/merkle")
    assert len(list((folder / "inclusion").rglob("*.json"))) > 50
    assert len(list((folder / "consistency").rglob("*.json"))) > 50
