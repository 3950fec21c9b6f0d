"""The witness's rules: C2SP ``tlog-witness`` ``add-checkpoint`` as a pure function.

Request body (``POST <prefix>/add-checkpoint``)::

    old <size>\\n                 the size of the latest checkpoint the client believes we cosigned (0: none)
    <base64 hash>\\n ...          0..63 lines: the RFC 6962 consistency proof from old size to the new size
    \\n
    <signed note>               the checkpoint, with one or more signature lines

Rule 1: the body is parsed strictly and bounded before any work (:data:`MAX_REQUEST_BYTES`,
        :data:`MAX_PROOF_LINES`); a malformed body is ``400``.
Rule 2: the verdict is a table, in the spec's order, each row a status code:

        ======  ======================================================================================
        404     the checkpoint's origin is not a log we witness
        403     no signature by one of the log's keys verifies (signatures by other keys are ignored)
        400     the old size is larger than the checkpoint's size (or the body is malformed)
        409     the old size is not the size of the latest checkpoint we cosigned for the origin (0 if
                none); body ``<latest size>\\n``, ``Content-Type: text/x.tlog.size``
        409     the old size equals the checkpoint's size but the root differs from the one we cosigned:
                a fork (split view); no size body
        422     the consistency proof from the cosigned tree to the new one does not verify
        200     cosign: the new checkpoint becomes the latest cosigned one for the origin
        ======  ======================================================================================

Rule 3: :func:`judge` only decides, from the request, the log's keys and the latest cosigned state; the caller
        persists the new state with an atomic compare-and-set against the state it judged from
        (``ports.WitnessStore``) and judges again on a lost race, so two concurrent requests cannot roll the
        witness back.
Rule 4: the protocol is unauthenticated by design: a checkpoint authenticates itself by the log's signature.
"""

from __future__ import annotations

import base64
import binascii
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.core.checkpoint import MAX_NOTE_BYTES, Checkpoint, verify_checkpoint_by_any
from gateway.core.errors import GatewayError, LimitExceeded, ProofInvalid, SignatureRejected
from gateway.core.merkle import HASH_SIZE, MAX_TREE_SIZE, verify_consistency

MAX_PROOF_LINES = 63  # the spec's bound: a consistency proof in a tree of < 2**64 leaves
# "old <20 digits>\n" + 63 proof lines of 45 bytes + a blank line + the largest note we read
MAX_REQUEST_BYTES = 32 + MAX_PROOF_LINES * 45 + 1 + MAX_NOTE_BYTES
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class Verdict(enum.StrEnum):
    """Rule 2, one row each (its HTTP status in :data:`STATUS`)."""

    COSIGN = "cosign"
    UNKNOWN_LOG = "unknown_log"
    UNTRUSTED = "untrusted"
    BAD_REQUEST = "bad_request"
    SIZE_MISMATCH = "size_mismatch"
    FORK = "fork"  # a 409 like SIZE_MISMATCH on the wire, but an alarm: the log showed two roots for one size
    PROOF_INVALID = "proof_invalid"


STATUS: Mapping[Verdict, int] = MappingProxyType(
    {
        Verdict.COSIGN: 200,
        Verdict.UNKNOWN_LOG: 404,
        Verdict.UNTRUSTED: 403,
        Verdict.BAD_REQUEST: 400,
        Verdict.SIZE_MISMATCH: 409,
        Verdict.FORK: 409,
        Verdict.PROOF_INVALID: 422,
    }
)


@dataclass(frozen=True, slots=True)
class AddCheckpoint:
    old_size: int
    proof: tuple[bytes, ...]
    note: bytes  # unverified


@dataclass(frozen=True, slots=True)
class Cosigned:
    """The latest checkpoint a witness cosigned for one origin."""

    size: int
    root: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    detail: str = ""
    checkpoint: Checkpoint | None = None  # the verified checkpoint (COSIGN, and the refusals after 403)
    latest_size: int = 0  # SIZE_MISMATCH: the size to report

    @property
    def status(self) -> int:
        return STATUS[self.verdict]


def _size(text: str, field: str) -> int:
    if not text or (len(text) > 1 and text[0] == "0") or not text.isdigit() or not text.isascii():
        raise ProofInvalid("a decimal size without leading zeros", field=field)
    if len(text) > 19 or int(text) > MAX_TREE_SIZE:
        raise ProofInvalid(f"size above {MAX_TREE_SIZE}", field=field)
    return int(text)


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Rule 1: the request body; ``LimitExceeded`` / ``ProofInvalid`` (both a 400) for anything malformed."""
    if len(body) > MAX_REQUEST_BYTES:
        raise LimitExceeded(f"request body larger than {MAX_REQUEST_BYTES} bytes", field="body")
    cut = body.find(b"\n\n")
    if cut < 0:
        raise ProofInvalid("no blank line before the checkpoint", field="body")
    head, note = body[: cut + 1], body[cut + 2 :]
    try:
        lines = head.decode("ascii")[:-1].split("\n")
    except UnicodeDecodeError as exc:
        raise ProofInvalid("request lines are not ASCII", field="body") from exc
    first = lines[0]
    if not first.startswith("old "):
        raise ProofInvalid("the first line must be 'old <size>'", field="old")
    old_size = _size(first[4:], "old")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise LimitExceeded(f"more than {MAX_PROOF_LINES} consistency proof lines", field="proof")
    proof: list[bytes] = []
    for i, line in enumerate(lines[1:]):
        try:
            value = base64.b64decode(line.encode("ascii"), validate=True)
        except binascii.Error as exc:
            raise ProofInvalid("not standard base64", field=f"proof[{i}]") from exc
        if len(value) != HASH_SIZE or base64.b64encode(value).decode("ascii") != line:
            raise ProofInvalid(f"not the canonical base64 of a {HASH_SIZE}-byte hash", field=f"proof[{i}]")
        proof.append(value)
    return AddCheckpoint(old_size, tuple(proof), note)


def add_checkpoint_body(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """The request a log (the submitting gateway) sends: the inverse of :func:`parse_add_checkpoint`."""
    lines = [f"old {old_size}"] + [base64.b64encode(p).decode("ascii") for p in proof]
    return ("\n".join(lines) + "\n\n").encode("ascii") + note


def judge(
    request: AddCheckpoint,
    origin: str,
    log_keys: Sequence[Ed25519PublicKey] | None,
    latest: Cosigned | None,
) -> Outcome:
    """Rule 2 for ``request`` whose note names ``origin`` (``checkpoint.peek_origin``): ``log_keys`` are the
    keys we trust for that log (None: not a log we witness), ``latest`` what we last cosigned for it."""
    if log_keys is None:
        return Outcome(Verdict.UNKNOWN_LOG, f"unknown log {origin!r}")
    try:
        checkpoint, _ = verify_checkpoint_by_any(request.note, origin, log_keys, origin=origin)
    except SignatureRejected as exc:
        return Outcome(Verdict.UNTRUSTED, exc.detail)
    except GatewayError as exc:
        return Outcome(Verdict.BAD_REQUEST, exc.detail)
    if request.old_size > checkpoint.size:
        return Outcome(Verdict.BAD_REQUEST, f"old size {request.old_size} > checkpoint size {checkpoint.size}")
    latest_size = 0 if latest is None else latest.size
    if request.old_size != latest_size:
        return Outcome(
            Verdict.SIZE_MISMATCH,
            f"old size {request.old_size}, latest cosigned {latest_size}",
            checkpoint,
            latest_size=latest_size,
        )
    if latest is not None and request.old_size == checkpoint.size:
        if checkpoint.root != latest.root:
            return Outcome(Verdict.FORK, f"a second root for size {checkpoint.size} of {origin}", checkpoint)
        return Outcome(Verdict.COSIGN, "already cosigned", checkpoint)
    if latest is not None and latest.size > 0:
        try:
            verify_consistency(latest.size, checkpoint.size, request.proof, latest.root, checkpoint.root)
        except GatewayError as exc:
            return Outcome(Verdict.PROOF_INVALID, exc.detail, checkpoint)
    elif request.proof:
        return Outcome(Verdict.PROOF_INVALID, "a proof from the empty tree must be empty", checkpoint)
    return Outcome(Verdict.COSIGN, "", checkpoint)
