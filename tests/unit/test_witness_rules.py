"""The add-checkpoint verdict table (``gateway.core.witness``), row by row, over real trees and signatures."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.core.checkpoint import Checkpoint, peek_origin, sign_checkpoint
from gateway.core.errors import LimitExceeded, ProofInvalid
from gateway.core.merkle import MerkleTree, leaf_hash
from gateway.core.witness import (
    MAX_PROOF_LINES,
    MAX_REQUEST_BYTES,
    STATUS,
    AddCheckpoint,
    Cosigned,
    Verdict,
    add_checkpoint_body,
    judge,
    parse_add_checkpoint,
)

ORIGIN = "cgw.cn-gacc.example/ledger"
KEY = Ed25519PrivateKey.generate()


def _tree(n: int, tag: bytes = b"") -> MerkleTree:
    tree = MerkleTree()
    for i in range(n):
        tree.append(leaf_hash(tag + str(i).encode()))
    return tree


def _note(tree: MerkleTree, size: int, key: Ed25519PrivateKey = KEY) -> bytes:
    return sign_checkpoint(Checkpoint(ORIGIN, size, tree.root(size)), ORIGIN, key)


def _request(old: int, tree: MerkleTree, size: int, *, proof: list[bytes] | None = None) -> AddCheckpoint:
    if proof is None:
        proof = list(tree.consistency_proof(old, size)) if 0 < old < size else []
    return parse_add_checkpoint(add_checkpoint_body(old, proof, _note(tree, size)))


def _judge(request: AddCheckpoint, latest: Cosigned | None, keys: bool = True) -> Verdict:
    outcome = judge(request, peek_origin(request.note), [KEY.public_key()] if keys else None, latest)
    return outcome.verdict


def test_first_checkpoint_of_a_log_is_cosigned_from_old_zero() -> None:
    tree = _tree(5)
    request = _request(0, tree, 5)
    outcome = judge(request, ORIGIN, [KEY.public_key()], None)
    assert outcome.verdict is Verdict.COSIGN and outcome.status == 200
    assert outcome.checkpoint == Checkpoint(ORIGIN, 5, tree.root(5))


def test_verdict_table() -> None:
    tree = _tree(9)
    cosigned = Cosigned(5, tree.root(5))
    assert _judge(_request(5, tree, 9), cosigned) is Verdict.COSIGN  # 200: consistent growth
    assert _judge(_request(5, tree, 9), cosigned, keys=False) is Verdict.UNKNOWN_LOG  # 404
    stranger = parse_add_checkpoint(add_checkpoint_body(5, [], _note(tree, 9, Ed25519PrivateKey.generate())))
    assert _judge(stranger, cosigned) is Verdict.UNTRUSTED  # 403: no signature by a known key
    too_old = parse_add_checkpoint(add_checkpoint_body(10, [], _note(tree, 9)))
    assert _judge(too_old, cosigned) is Verdict.BAD_REQUEST  # 400: old size > checkpoint size
    outcome = judge(_request(3, tree, 9), ORIGIN, [KEY.public_key()], cosigned)
    assert (outcome.verdict, outcome.status, outcome.latest_size) == (Verdict.SIZE_MISMATCH, 409, 5)
    assert _judge(_request(0, tree, 9), cosigned) is Verdict.SIZE_MISMATCH  # the client's first guess
    bad_proof = _request(5, tree, 9, proof=list(_tree(9, b"x").consistency_proof(5, 9)))
    assert _judge(bad_proof, cosigned) is Verdict.PROOF_INVALID  # 422
    assert _judge(_request(5, tree, 5), cosigned) is Verdict.COSIGN  # the same checkpoint again: cosigned again
    assert {v: STATUS[v] for v in Verdict} == {
        Verdict.COSIGN: 200,
        Verdict.UNKNOWN_LOG: 404,
        Verdict.UNTRUSTED: 403,
        Verdict.BAD_REQUEST: 400,
        Verdict.SIZE_MISMATCH: 409,
        Verdict.FORK: 409,
        Verdict.PROOF_INVALID: 422,
    }


def test_a_second_root_for_a_cosigned_size_is_a_fork() -> None:
    tree, fork = _tree(5), _tree(5, b"fork")
    outcome = judge(_request(5, fork, 5), ORIGIN, [KEY.public_key()], Cosigned(5, tree.root(5)))
    assert (outcome.verdict, outcome.status) == (Verdict.FORK, 409)
    # a forked tree that grew past the cosigned size cannot prove consistency with it
    longer = _tree(8, b"fork")
    request = _request(5, longer, 8)
    assert _judge(request, Cosigned(5, tree.root(5))) is Verdict.PROOF_INVALID


def test_a_proof_from_the_empty_tree_must_be_empty() -> None:
    tree = _tree(4)
    request = _request(0, tree, 4, proof=[leaf_hash(b"x")])
    assert _judge(request, None) is Verdict.PROOF_INVALID


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"old 5\n", "body"),  # no blank line
        (b"old 05\n\nx", "old"),
        (b"new 5\n\nx", "old"),
        (b"old -1\n\nx", "old"),
        (b"old 99999999999999999999\n\nx", "old"),
        (b"old 1\nnot-base64!\n\nx", "proof[0]"),
        (b"old 1\n" + base64.b64encode(b"short") + b"\n\nx", "proof[0]"),
        (b"old 1\xff\n\nx", "body"),
    ],
)
def test_malformed_bodies_are_400(body: bytes, field: str) -> None:
    with pytest.raises(ProofInvalid) as caught:
        parse_add_checkpoint(body)
    assert caught.value.field == field


def test_named_bounds() -> None:
    line = base64.b64encode(bytes(32)) + b"\n"
    with pytest.raises(LimitExceeded):
        parse_add_checkpoint(b"old 1\n" + line * (MAX_PROOF_LINES + 1) + b"\nx")
    with pytest.raises(LimitExceeded):
        parse_add_checkpoint(b"old 1\n\n" + b"x" * MAX_REQUEST_BYTES)
