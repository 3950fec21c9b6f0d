"""RFC 9162 (Certificate Transparency v2) Merkle tree math for the audit ledger.

The ledger is an append-only list of leaves; its tree hash, inclusion proofs and consistency proofs follow
RFC 9162 §2.1 exactly, so any CT / transparency-dev tooling can check what the gateway publishes.

Rule 1: hashes are domain separated: a leaf is ``SHA-256(0x00 || data)``, an interior node is
        ``SHA-256(0x01 || left || right)``; the empty tree hashes to ``SHA-256("")``.
Rule 2: verification functions return ``None`` or raise :class:`~gateway.core.errors.ProofInvalid` with a
        field path (``proof[3]``, ``root``, ``index`` ...); they never return a boolean that could be ignored.
Rule 3: every value that comes from outside (sizes, indexes, proof lengths, hash lengths) is checked against a
        named limit *before* any hashing.
Rule 4: :class:`MerkleTree` keeps one concatenated buffer of perfect-subtree hashes per level, so appends are
        amortised O(1) hashes and any historical root or proof costs O(log n) hashes, never O(n).
Rule 5: the tree size splits at the largest power of two *strictly smaller* than the size (RFC 9162 §2.1.1);
        every non-perfect subtree therefore ends at the tree's right edge and decomposes into at most
        log2(n) aligned perfect subtrees.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

from gateway.core.errors import LimitExceeded, ProofInvalid

HASH_SIZE = 32  # SHA-256 output; every leaf hash, node hash, root and proof element has exactly this length
MAX_TREE_SIZE = 2**63 - 1  # RFC 9162 sizes are uint64; we stay in the signed range other tools accept
MAX_PROOF_HASHES = 64  # a path in a tree of < 2**64 leaves has at most 64 siblings; more is an attack
LEAF_PREFIX = b"\x00"  # RFC 9162 §2.1.1 domain separation for leaves
NODE_PREFIX = b"\x01"  # RFC 9162 §2.1.1 domain separation for interior nodes

EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = HASH()


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 hash of one leaf's bytes."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 hash of an interior node from its two children's hashes."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


# -- verification (RFC 9162 §2.1.3.2 and §2.1.4.2) --------------------------------------------------------


def _check_hash(value: bytes, field: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofInvalid(f"{field} is {len(value)} bytes, expected {HASH_SIZE}", field=field)


def _check_proof(proof: Sequence[bytes]) -> None:
    if len(proof) > MAX_PROOF_HASHES:
        raise LimitExceeded(f"proof has {len(proof)} hashes, at most {MAX_PROOF_HASHES}", field="proof")
    for i, element in enumerate(proof):
        _check_hash(element, f"proof[{i}]")


def _check_size(size: int, field: str) -> None:
    if not 0 <= size <= MAX_TREE_SIZE:
        raise ProofInvalid(f"{field} {size} outside 0..{MAX_TREE_SIZE}", field=field)


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf number ``index`` (0-based) of the tree of ``tree_size`` with ``root``.

    Follows RFC 9162 §2.1.3.2; raises :class:`ProofInvalid` (or ``LimitExceeded`` for oversize proofs)."""
    _check_size(tree_size, "tree_size")
    if not 0 <= index < tree_size:
        raise ProofInvalid(f"leaf index {index} not below tree size {tree_size}", field="index")
    _check_hash(leaf_hash, "leaf_hash")
    _check_hash(root, "root")
    _check_proof(proof)

    position, last = index, tree_size - 1
    running = leaf_hash
    for sibling in proof:
        if last == 0:
            raise ProofInvalid("inclusion proof is longer than the path to the root", field="proof")
        if position & 1 or position == last:
            running = node_hash(sibling, running)
            # climb past the levels where this node is a lone right-edge node (it has no sibling there)
            while position and not position & 1:
                position >>= 1
                last >>= 1
        else:
            running = node_hash(running, sibling)
        position >>= 1
        last >>= 1
    if last != 0:
        raise ProofInvalid("inclusion proof is shorter than the path to the root", field="proof")
    if not _same(running, root):
        raise ProofInvalid("inclusion proof does not lead to the given root", field="root")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that the tree of ``size1`` with ``root1`` is a prefix of the tree of ``size2`` with ``root2``.

    Follows RFC 9162 §2.1.4.2. ``size1 == 0`` is refused: every tree extends the empty tree, so such a
    "proof" proves nothing and is more likely a caller bug. Equal sizes need an empty proof, equal roots."""
    _check_size(size1, "size1")
    _check_size(size2, "size2")
    if size1 > size2:
        raise ProofInvalid(f"size1 {size1} is larger than size2 {size2}", field="size1")
    if size1 == 0:
        raise ProofInvalid("a consistency proof from the empty tree proves nothing", field="size1")
    _check_proof(proof)
    if size1 == size2:
        if proof:
            raise ProofInvalid("equal sizes need an empty consistency proof", field="proof")
        if not _same(root1, root2):
            raise ProofInvalid("equal sizes but different roots", field="root2")
        return
    _check_hash(root1, "root1")
    _check_hash(root2, "root2")
    if not proof:
        raise ProofInvalid("empty consistency proof between different sizes", field="proof")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # size1 is a power of two: its root is itself a node of the bigger tree
        path.insert(0, root1)
    old, new = _fold_consistency(size1, size2, path)
    if not _same(old, root1):
        raise ProofInvalid("consistency proof does not lead to root1", field="root1")
    if not _same(new, root2):
        raise ProofInvalid("consistency proof does not lead to root2", field="root2")


def _fold_consistency(size1: int, size2: int, path: Sequence[bytes]) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 3-7: the (old root, new root) the path leads to, for ``0 < size1 < size2``."""
    position, last = size1 - 1, size2 - 1
    while position & 1:  # skip the levels where the old tree's right edge is a right child
        position >>= 1
        last >>= 1
    old = new = path[0]
    for sibling in path[1:]:
        if last == 0:
            raise ProofInvalid("consistency proof is longer than the path to the root", field="proof")
        if position & 1 or position == last:
            old = node_hash(sibling, old)
            new = node_hash(sibling, new)
            while position and not position & 1:
                position >>= 1
                last >>= 1
        else:
            new = node_hash(new, sibling)
        position >>= 1
        last >>= 1
    if last != 0:
        raise ProofInvalid("consistency proof is shorter than the path to the root", field="proof")
    return old, new


# -- building -------------------------------------------------------------------------------------------


class TreeFrontier:
    """The right edge of a growing tree: O(log n) memory, enough to give the root at the current size.

    Used to recompute roots while streaming a ledger (offline audit) without keeping every leaf."""

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        # perfect subtree hashes from left (largest) to right (smallest); heights follow the size's set bits
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf: bytes) -> None:
        _check_hash(leaf, "leaf_hash")
        node = leaf
        carry = self._size
        while carry & 1:  # merge with every perfect subtree of equal height, like binary addition
            node = node_hash(self._stack.pop(), node)
            carry >>= 1
        self._stack.append(node)
        self._size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        running = self._stack[-1]
        for node in reversed(self._stack[:-1]):
            running = node_hash(node, running)
        return running


def root_from_leaf_hashes(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over the given leaf hashes (in order), in O(n) hashes and O(log n) memory."""
    frontier = TreeFrontier()
    for leaf in leaf_hashes:
        frontier.append(leaf)
    return frontier.root()


class MerkleTree:
    """An in-memory RFC 9162 tree over leaf hashes with O(log n) historical roots and proofs.

    ``_levels[h]`` is one ``bytearray`` holding, back to back, the hash of every *complete* perfect subtree of
    height ``h`` (``2**h`` leaves, starting at a multiple of ``2**h``). A million leaves take about 64 MB.
    """

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> int:
        """Add one leaf hash; return its index."""
        _check_hash(leaf_hash, "leaf_hash")
        if self._size >= MAX_TREE_SIZE:
            raise LimitExceeded("the tree is full", field="leaf_hash")
        index = self._size
        self._levels[0] += leaf_hash
        self._size += 1
        node, height, count = leaf_hash, 0, self._size
        while count & 1 == 0:  # this leaf completed a perfect subtree one level up
            start = len(self._levels[height]) - 2 * HASH_SIZE
            node = node_hash(bytes(self._levels[height][start : start + HASH_SIZE]), node)
            height += 1
            count >>= 1
            if height == len(self._levels):
                self._levels.append(bytearray())
            self._levels[height] += node
        return index

    def leaf(self, index: int) -> bytes:
        self._check_index(index, self._size, "index")
        return self._perfect(0, index)

    def _perfect(self, height: int, number: int) -> bytes:
        """Hash of the ``number``-th perfect subtree of ``height`` (it must be complete)."""
        start = number * HASH_SIZE
        return bytes(self._levels[height][start : start + HASH_SIZE])

    def _range(self, start: int, end: int) -> bytes:
        """MTH of leaves ``[start, end)``, where ``start`` is aligned as in a node of an RFC 9162 tree.

        Decomposes the range into aligned perfect subtrees, largest first, then folds from the right."""
        pieces: list[bytes] = []
        position = start
        while position < end:
            height = (end - position).bit_length() - 1
            if position:  # alignment bound: position must be a multiple of the piece's width
                height = min(height, (position & -position).bit_length() - 1)
            pieces.append(self._perfect(height, position >> height))
            position += 1 << height
        running = pieces[-1]
        for piece in reversed(pieces[:-1]):
            running = node_hash(piece, running)
        return running

    def _check_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ProofInvalid(f"size {size} outside 0..{self._size}", field="size")
        return size

    @staticmethod
    def _check_index(index: int, size: int, field: str) -> None:
        if not 0 <= index < size:
            raise ProofInvalid(f"{field} {index} not below size {size}", field=field)

    def root(self, size: int | None = None) -> bytes:
        """The tree hash at ``size`` leaves (default: now)."""
        size = self._check_size(size)
        return EMPTY_ROOT if size == 0 else self._range(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(index, D[0:size]), leaf-side sibling first."""
        size = self._check_size(size)
        self._check_index(index, size, "index")
        siblings: list[bytes] = []  # collected root-side first, reversed at the end
        start, end = 0, size
        while end - start > 1:
            split = start + _largest_power_of_two_below(end - start)
            if index < split:
                siblings.append(self._range(split, end))
                end = split
            else:
                siblings.append(self._range(start, split))
                start = split
        siblings.reverse()
        return siblings

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(size1, D[0:size2]) for ``0 < size1 <= size2``; empty when equal."""
        size2 = self._check_size(size2)
        if not 0 < size1 <= size2:
            raise ProofInvalid(f"size1 {size1} outside 1..{size2}", field="size1")
        nodes: list[bytes] = []  # collected root-side first
        start, end, whole = 0, size2, True
        while size1 - start != end - start:
            width = end - start
            split = start + _largest_power_of_two_below(width)
            if size1 <= split:
                nodes.append(self._range(split, end))
                end = split
            else:
                nodes.append(self._range(start, split))
                start, whole = split, False
        if not whole:  # the old tree's last node is not the old root itself, so the verifier needs it
            nodes.append(self._range(start, end))
        nodes.reverse()
        return nodes
