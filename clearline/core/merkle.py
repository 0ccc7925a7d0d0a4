"""Positional keccak sparse Merkle tree (DESIGN.md rule 3).

Layout
------
- Leaves are 32-byte hashes computed by the caller (the keccak of an ABI-encoded preimage,
  i.e. a preimage whose length is a multiple of 32 bytes). ``EMPTY_LEAF`` (32 zero bytes)
  means "no leaf here".
- Inner nodes: ``hash_node(left, right) = keccak(b"\\x01" + left + right)``. The 65-byte
  preimage can never be the preimage of a leaf (those are multiples of 32 bytes), so leaves
  and nodes are domain-separated.
- ``ZERO_HASHES[0] = EMPTY_LEAF``, ``ZERO_HASHES[i + 1] = hash_node(ZERO_HASHES[i],
  ZERO_HASHES[i])``: the root of an empty subtree of height ``i``. Precomputed for 0..64.
- A tree of depth ``D`` (1..64) has leaf indices in ``[0, 2**D)``. At level ``i`` (0 = the
  leaves) bit ``i`` of the index chooses the side: 0 -> the node is the *left* child of its
  parent. Proofs are the ``D`` siblings listed bottom-up.

Solidity verifies the same proofs::

    h = leaf;
    for (uint i = 0; i < D; i++)
        h = (index >> i) & 1 == 0 ? keccak256(abi.encodePacked(hex"01", h, sib[i]))
                                  : keccak256(abi.encodePacked(hex"01", sib[i], h));
    return h == root;

Storage and cost
----------------
Nodes live in one dict per level (``level -> {position: hash}``); a node equal to the zero
hash of its level is never stored, so memory is proportional to (non-empty leaves x depth) and
deleting a leaf frees its whole path. ``set`` only records the leaf and marks its index dirty;
``root()`` re-hashes the dirty paths level by level, computing every shared parent once.

Determinism: no floats, clock, I/O or randomness; dirty indices are sorted before they are
walked, and ``items()`` is in ascending index order. Bad inputs raise ``MerkleError`` (a
``ValueError``) subclasses, never ``assert``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from clearline.core.hashing import keccak

try:  # the same backend as clearline.core.hashing.keccak, bound directly for the hot loops
    from sha3 import keccak_256 as _keccak_256
except ImportError:  # pragma: no cover - pycryptodome fallback

    class _keccak_256:  # type: ignore[no-redef]
        __slots__ = ("_d",)

        def __init__(self, data: bytes) -> None:
            self._d = keccak(data)

        def digest(self) -> bytes:
            return self._d


__all__ = [
    "EMPTY_LEAF",
    "MAX_DEPTH",
    "NODE_PREFIX",
    "ZERO_HASHES",
    "root_from_multiproof",
    "MerkleError",
    "InvalidDepth",
    "InvalidIndex",
    "InvalidHash",
    "InvalidProof",
    "SparseMerkleTree",
    "hash_node",
    "root_from_proof",
    "verify_proof",
]

MAX_DEPTH = 64
NODE_PREFIX = b"\x01"
EMPTY_LEAF = bytes(32)


# ----------------------------------------------------------------------------------- errors
class MerkleError(ValueError):
    """Base class for every malformed-input error raised by this module."""


class InvalidDepth(MerkleError):
    """Depth is not an int in ``1..MAX_DEPTH``."""


class InvalidIndex(MerkleError):
    """Leaf index is not an int in ``[0, 2**depth)``."""


class InvalidHash(MerkleError):
    """A leaf, sibling or root is not exactly 32 bytes."""


class InvalidProof(MerkleError):
    """A proof is not a sequence of exactly ``depth`` siblings."""


# ---------------------------------------------------------------------------------- hashing
def _check_hash(value: object, what: str) -> bytes:
    """``value`` as 32 immutable bytes (bytes-like inputs are copied), else ``InvalidHash``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
        if len(b) == 32:
            return b
        raise InvalidHash(f"{what} must be 32 bytes, got {len(b)} bytes")
    raise InvalidHash(f"{what} must be 32 bytes, got {type(value).__name__}")


def _check_depth(depth: object) -> int:
    if type(depth) is not int or not 1 <= depth <= MAX_DEPTH:
        raise InvalidDepth(f"depth must be an int in 1..{MAX_DEPTH}, got {depth!r}")
    return depth


def _check_index(index: object, depth: int) -> int:
    if type(index) is not int or index < 0 or index >> depth:
        raise InvalidIndex(f"index must be an int in [0, 2**{depth}), got {index!r}")
    return index


def hash_node(left: bytes, right: bytes) -> bytes:
    """``keccak(0x01 || left || right)``: the parent of two 32-byte children."""
    left = _check_hash(left, "left child")
    right = _check_hash(right, "right child")
    return _keccak_256(NODE_PREFIX + left + right).digest()


def _zero_hashes() -> tuple[bytes, ...]:
    z = [EMPTY_LEAF]
    for _ in range(MAX_DEPTH):
        z.append(_keccak_256(NODE_PREFIX + z[-1] + z[-1]).digest())
    return tuple(z)


ZERO_HASHES: tuple[bytes, ...] = _zero_hashes()
"""``ZERO_HASHES[h]`` is the root of an empty subtree of height ``h`` (0..64)."""


# ----------------------------------------------------------------------------------- proofs
def root_from_proof(depth: int, index: int, leaf_hash: bytes, siblings: Sequence[bytes]) -> bytes:
    """The root implied by ``leaf_hash`` at ``index`` and its bottom-up ``siblings``."""
    depth = _check_depth(depth)
    index = _check_index(index, depth)
    h = _check_hash(leaf_hash, "leaf hash")
    if isinstance(siblings, (bytes, bytearray, memoryview, str)):
        raise InvalidProof("siblings must be a sequence of 32-byte hashes, not a byte string")
    try:
        sibs = list(siblings)
    except TypeError:
        raise InvalidProof(
            f"siblings must be a sequence of 32-byte hashes, got {type(siblings).__name__}"
        ) from None
    if len(sibs) != depth:
        raise InvalidProof(f"proof must have exactly {depth} siblings, got {len(sibs)}")
    k = _keccak_256
    one = NODE_PREFIX
    level = 0
    for s in sibs:
        if type(s) is not bytes or len(s) != 32:
            s = _check_hash(s, f"sibling {level}")
        if (index >> level) & 1:
            h = k(one + s + h).digest()
        else:
            h = k(one + h + s).digest()
        level += 1
    return h


def root_from_multiproof(depth: int, indices: Sequence[int], leaf_hashes: Sequence[bytes],
                         present_words: Sequence[int], siblings: Sequence[bytes]) -> bytes:
    """The root from the leaves at ``indices`` (ascending, distinct) and a
    ``SparseMerkleTree.multiproof`` of them; raises ``InvalidProof`` when the proof is not
    exactly used up."""
    depth = _check_depth(depth)
    nodes = [_check_index(i, depth) for i in indices]
    if not nodes or len(leaf_hashes) != len(nodes) or any(b <= a for a, b in zip(nodes, nodes[1:])):
        raise InvalidProof("a multiproof needs one leaf per ascending, distinct index")
    hashes = [_check_hash(x, "leaf") for x in leaf_hashes]
    taken = given = 0
    for h in range(depth):
        out_n, out_h, i = [], [], 0
        while i < len(nodes):
            a = nodes[i]
            if not a & 1 and i + 1 < len(nodes) and nodes[i + 1] == a + 1:
                left, right = hashes[i], hashes[i + 1]
                i += 2
            else:
                word = taken >> 8
                if word >= len(present_words):
                    raise InvalidProof("the multiproof's present bits run out")
                bit = (present_words[word] >> (taken & 255)) & 1
                taken += 1
                if bit:
                    if given >= len(siblings):
                        raise InvalidProof("the multiproof has too few siblings")
                    sib = _check_hash(siblings[given], "sibling")
                    given += 1
                else:
                    sib = ZERO_HASHES[h]
                left, right = (hashes[i], sib) if not a & 1 else (sib, hashes[i])
                i += 1
            out_n.append(a >> 1)
            out_h.append(hash_node(left, right))
        nodes, hashes = out_n, out_h
    if given != len(siblings):
        raise InvalidProof("the multiproof has unused siblings")
    return hashes[0]


def verify_proof(
    root: bytes, depth: int, index: int, leaf_hash: bytes, siblings: Sequence[bytes]
) -> bool:
    """True iff ``siblings`` prove ``leaf_hash`` at ``index`` under ``root``.

    Malformed inputs (bad depth/index, wrong sibling count, hashes that are not 32 bytes)
    raise ``MerkleError``; a well-formed proof that does not match returns False.
    """
    root = _check_hash(root, "root")
    return root_from_proof(depth, index, leaf_hash, siblings) == root


# ------------------------------------------------------------------------------------- tree
class SparseMerkleTree:
    """A depth-``D`` positional sparse Merkle tree with lazy, batched root recomputation."""

    __slots__ = ("_depth", "_levels", "_dirty")

    def __init__(self, depth: int) -> None:
        self._depth = _check_depth(depth)
        # _levels[0]: leaves {index: leaf}; _levels[i]: nodes of height i {position: hash};
        # _levels[depth] holds at most the root (at position 0). Zero-hash nodes are omitted.
        self._levels: list[dict[int, bytes]] = [{} for _ in range(depth + 1)]
        self._dirty: set[int] = set()

    # -- basic accessors ---------------------------------------------------------------
    @property
    def depth(self) -> int:
        return self._depth

    @property
    def capacity(self) -> int:
        """Number of leaf positions, ``2**depth``."""
        return 1 << self._depth

    def __len__(self) -> int:
        return len(self._levels[0])

    def node_count(self) -> int:
        """Stored inner nodes (non-zero-hash nodes above the leaves), after ``root()``.

        At most ``len(self) * depth``; 0 for an empty tree. For memory accounting and tests.
        """
        if self._dirty:
            self._rehash()
        return sum(len(level) for level in self._levels[1:])

    def __contains__(self, index: object) -> bool:
        """True if ``index`` holds a non-empty leaf."""
        return type(index) is int and index in self._levels[0]

    def __repr__(self) -> str:
        return (
            f"SparseMerkleTree(depth={self._depth}, leaves={len(self._levels[0])}, "
            f"dirty={len(self._dirty)})"
        )

    def get(self, index: int) -> bytes:
        """The leaf at ``index`` (``EMPTY_LEAF`` if none)."""
        _check_index(index, self._depth)
        return self._levels[0].get(index, EMPTY_LEAF)

    def items(self) -> list[tuple[int, bytes]]:
        """Non-empty ``(index, leaf)`` pairs in ascending index order."""
        return sorted(self._levels[0].items())

    # -- updates -----------------------------------------------------------------------
    def set(self, index: int, leaf_hash: bytes) -> None:
        """Record ``leaf_hash`` at ``index`` (``EMPTY_LEAF`` deletes). O(1): hashing is lazy."""
        if type(index) is not int or index < 0 or index >> self._depth:
            _check_index(index, self._depth)
        if type(leaf_hash) is not bytes or len(leaf_hash) != 32:
            leaf_hash = _check_hash(leaf_hash, "leaf hash")
        if leaf_hash == EMPTY_LEAF:
            self._levels[0].pop(index, None)
        else:
            self._levels[0][index] = leaf_hash
        self._dirty.add(index)

    def delete(self, index: int) -> None:
        """Same as ``set(index, EMPTY_LEAF)``."""
        self.set(index, EMPTY_LEAF)

    def update(self, pairs: Iterable[tuple[int, bytes]]) -> None:
        """``set`` every ``(index, leaf_hash)`` in order (later pairs win)."""
        # Validate everything before touching the tree, so a bad pair changes nothing.
        depth = self._depth
        checked = []
        for index, leaf_hash in pairs:
            _check_index(index, depth)
            checked.append((index, _check_hash(leaf_hash, "leaf hash")))
        leaves = self._levels[0]
        dirty = self._dirty
        empty = EMPTY_LEAF
        for index, leaf_hash in checked:
            if leaf_hash == empty:
                leaves.pop(index, None)
            else:
                leaves[index] = leaf_hash
            dirty.add(index)

    # -- root and proofs ---------------------------------------------------------------
    @property
    def dirty(self) -> bool:
        """True if some leaf changed since the last ``root()``."""
        return bool(self._dirty)

    def root(self) -> bytes:
        """The root; re-hashes only the paths of leaves changed since the last call."""
        if self._dirty:
            self._rehash()
        return self._levels[self._depth].get(0, ZERO_HASHES[self._depth])

    def _rehash(self) -> None:
        if len(self._dirty) == 1:
            (pos,) = self._dirty
            self._walk_up(0, pos)
            self._dirty.clear()
            return
        k = _keccak_256
        one = NODE_PREFIX
        levels = self._levels
        zeros = ZERO_HASHES
        positions = sorted(self._dirty)
        for height in range(self._depth):
            child_get = levels[height].get
            parent = levels[height + 1]
            parent_pop = parent.pop
            zc = zeros[height]
            nxt: list[int] = []
            push = nxt.append
            last = -1
            # positions is ascending, so equal parents are adjacent: each is hashed once.
            for pos in positions:
                p = pos >> 1
                if p == last:
                    continue
                last = p
                push(p)
                c = p << 1
                left = child_get(c)
                right = child_get(c | 1)
                if left is None:
                    if right is None:  # empty subtree: its zero hash is implicit
                        parent_pop(p, None)
                        continue
                    left = zc
                elif right is None:
                    right = zc
                parent[p] = k(one + left + right).digest()
            positions = nxt
            if len(positions) == 1:
                # The dirty paths have merged (in a sparse tree usually well below the root:
                # the upper levels are one path with empty siblings): walk it up without the
                # per-level list bookkeeping.
                self._walk_up(height + 1, positions[0])
                break
        self._dirty.clear()

    def _walk_up(self, height: int, pos: int) -> None:
        """Re-hash the path from node ``pos`` at ``height`` (already up to date) to the root,
        one sibling lookup per level (the fast path for a single dirty leaf, ``height`` 0)."""
        k = _keccak_256
        one = NODE_PREFIX
        levels = self._levels
        zeros = ZERO_HASHES
        h = levels[height].get(pos)  # None: the subtree under the path is empty
        for height in range(height, self._depth):
            sib = levels[height].get(pos ^ 1)
            if sib is None:
                if h is None:
                    pos >>= 1
                    levels[height + 1].pop(pos, None)
                    continue
                sib = zeros[height]
            elif h is None:
                h = zeros[height]
            if pos & 1:
                h = k(one + sib + h).digest()
            else:
                h = k(one + h + sib).digest()
            pos >>= 1
            levels[height + 1][pos] = h

    def proof(self, index: int) -> list[bytes]:
        """The ``depth`` siblings of the path of ``index``, bottom-up."""
        _check_index(index, self._depth)
        if self._dirty:
            self._rehash()
        levels = self._levels
        zeros = ZERO_HASHES
        return [levels[h].get((index >> h) ^ 1, zeros[h]) for h in range(self._depth)]

    def multiproof(self, indices: Sequence[int]) -> tuple[list[int], list[bytes]]:
        """``(present_words, siblings)`` proving the leaves at ``indices`` (ascending,
        distinct) together, in the order a level-by-level walk needs them: at each height the
        known nodes are taken in order; two that are siblings pair up, any other takes the
        next sibling, listed in ``siblings`` when it is not the empty subtree (bit set in
        ``present_words``, 256 bits per word, bit i = i-th sibling taken) and left out when it
        is. Mirrored by ``MarkVerifier._multiRoot``."""
        nodes = [_check_index(i, self._depth) for i in indices]
        if any(b <= a for a, b in zip(nodes, nodes[1:])):
            raise InvalidIndex("multiproof indices must be ascending and distinct")
        if self._dirty:
            self._rehash()
        bits, siblings, taken = 0, [], 0
        for h in range(self._depth):
            level, zero = self._levels[h], ZERO_HASHES[h]
            parents, i = [], 0
            while i < len(nodes):
                a = nodes[i]
                if not a & 1 and i + 1 < len(nodes) and nodes[i + 1] == a + 1:
                    i += 2
                else:
                    sib = level.get(a ^ 1, zero)
                    if sib != zero:
                        bits |= 1 << taken
                        siblings.append(sib)
                    taken += 1
                    i += 1
                parents.append(a >> 1)
            nodes = parents
        words = [(bits >> (256 * w)) & ((1 << 256) - 1) for w in range(max(1, -(-taken // 256)))]
        return words, siblings

    # -- copying -----------------------------------------------------------------------
    def copy(self) -> SparseMerkleTree:
        """An independent deep copy (hashes are immutable bytes, so dict copies suffice)."""
        new = SparseMerkleTree.__new__(SparseMerkleTree)
        new._depth = self._depth
        new._levels = [level.copy() for level in self._levels]
        new._dirty = set(self._dirty)
        return new

    __copy__ = copy

    def __deepcopy__(self, memo: dict) -> SparseMerkleTree:
        return self.copy()
