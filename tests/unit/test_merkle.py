"""Unit tests for clearline.core.merkle (positional keccak sparse Merkle tree)."""

import copy

import pytest
from Crypto.Hash import keccak as _pycryptodome_keccak

from clearline.core import merkle
from clearline.core.hashing import keccak
from clearline.core.merkle import (
    EMPTY_LEAF,
    MAX_DEPTH,
    ZERO_HASHES,
    InvalidDepth,
    InvalidHash,
    InvalidIndex,
    InvalidProof,
    MerkleError,
    SparseMerkleTree,
    hash_node,
    root_from_proof,
    verify_proof,
)


def leaf(n: int) -> bytes:
    return keccak(b"leaf-%d" % n)


def other_keccak(data: bytes) -> bytes:
    """An independent keccak backend, to check we did not bind the wrong hash function."""
    return _pycryptodome_keccak.new(digest_bits=256, data=data).digest()


def sparse_reference_root(depth: int, leaves: dict[int, bytes]) -> bytes:
    """Recursive definition of the root: split on the top index bit. Any depth, few leaves."""

    def sub(height: int, items: list[tuple[int, bytes]]) -> bytes:
        if not items:
            return ZERO_HASHES[height]
        if height == 0:
            return items[0][1]
        bit = 1 << (height - 1)
        left = [(i, v) for i, v in items if not i & bit]
        right = [(i, v) for i, v in items if i & bit]
        return other_keccak(b"\x01" + sub(height - 1, left) + sub(height - 1, right))

    return sub(depth, [(i, v) for i, v in leaves.items() if v != EMPTY_LEAF])


# ------------------------------------------------------------------------ public surface
def test_public_api_is_exactly_this():
    assert sorted(merkle.__all__) == sorted(
        [
            "EMPTY_LEAF",
            "MAX_DEPTH",
            "NODE_PREFIX",
            "ZERO_HASHES",
            "MerkleError",
            "InvalidDepth",
            "InvalidIndex",
            "InvalidHash",
            "InvalidProof",
            "SparseMerkleTree",
            "hash_node",
            "root_from_multiproof",
            "root_from_proof",
            "verify_proof",
        ]
    )
    for name in merkle.__all__:
        assert hasattr(merkle, name)


def test_errors_are_value_errors():
    for cls in (InvalidDepth, InvalidIndex, InvalidHash, InvalidProof):
        assert issubclass(cls, MerkleError)
    assert issubclass(MerkleError, ValueError)


# ---------------------------------------------------------------------------- hashing
def test_empty_leaf_is_32_zero_bytes():
    assert EMPTY_LEAF == b"\x00" * 32


def test_hash_node_is_domain_tagged_keccak():
    a, b = leaf(1), leaf(2)
    assert hash_node(a, b) == other_keccak(b"\x01" + a + b)
    assert hash_node(a, b) != hash_node(b, a)
    # not the plain concatenation hash a leaf preimage of 64 bytes would give
    assert hash_node(a, b) != other_keccak(a + b)


def test_zero_hashes_chain():
    assert len(ZERO_HASHES) == MAX_DEPTH + 1 == 65
    assert ZERO_HASHES[0] == EMPTY_LEAF
    for i in range(MAX_DEPTH):
        assert ZERO_HASHES[i + 1] == other_keccak(b"\x01" + ZERO_HASHES[i] + ZERO_HASHES[i])
    assert len(set(ZERO_HASHES)) == 65


def test_hash_node_rejects_bad_lengths():
    with pytest.raises(InvalidHash):
        hash_node(b"\x00" * 31, b"\x00" * 32)
    with pytest.raises(InvalidHash):
        hash_node(b"\x00" * 32, b"\x00" * 33)
    with pytest.raises(InvalidHash):
        hash_node("00" * 32, b"\x00" * 32)  # type: ignore[arg-type]


# ----------------------------------------------------------------------- construction
@pytest.mark.parametrize("depth", [1, 2, 8, 16, 32, 48, 64])
def test_empty_tree_root_is_zero_hash(depth):
    t = SparseMerkleTree(depth)
    assert t.root() == ZERO_HASHES[depth]
    assert len(t) == 0
    assert t.items() == []
    assert t.node_count() == 0
    assert t.depth == depth
    assert t.capacity == 2**depth


@pytest.mark.parametrize("bad", [0, -1, 65, 100, True, 1.0, "32", None])
def test_bad_depth(bad):
    with pytest.raises(InvalidDepth, match="depth"):
        SparseMerkleTree(bad)


# -------------------------------------------------------------------------- positions
def test_depth_one_sides():
    a = leaf(0)
    t = SparseMerkleTree(1)
    t.set(0, a)
    assert t.root() == hash_node(a, EMPTY_LEAF)
    t.set(0, EMPTY_LEAF)
    t.set(1, a)
    assert t.root() == hash_node(EMPTY_LEAF, a)


def test_index_bits_choose_side_bottom_up():
    # depth 2, index 1 = 0b01: bit 0 is 1 -> right child at the leaves;
    # bit 1 is 0 -> the parent is the left child of the root.
    a = leaf(7)
    t = SparseMerkleTree(2)
    t.set(1, a)
    assert t.root() == hash_node(hash_node(EMPTY_LEAF, a), ZERO_HASHES[1])
    # index 2 = 0b10: left at the leaves, right at level 1
    t2 = SparseMerkleTree(2)
    t2.set(2, a)
    assert t2.root() == hash_node(ZERO_HASHES[1], hash_node(a, EMPTY_LEAF))


def test_full_depth_two_tree():
    ls = [leaf(i) for i in range(4)]
    t = SparseMerkleTree(2)
    for i, v in enumerate(ls):
        t.set(i, v)
    assert t.root() == hash_node(hash_node(ls[0], ls[1]), hash_node(ls[2], ls[3]))


@pytest.mark.parametrize("depth", [16, 32, 64])
def test_matches_recursive_reference_at_large_depth(depth):
    top = 2**depth - 1
    idxs = [0, 1, 2, 5, top, top - 1, 2 ** (depth - 1), 2 ** (depth - 1) - 1, 12345 % top]
    t = SparseMerkleTree(depth)
    ref = {}
    for n, i in enumerate(idxs):
        t.set(i, leaf(n))
        ref[i] = leaf(n)
        if n % 3 == 0:
            assert t.root() == sparse_reference_root(depth, ref)
    assert t.root() == sparse_reference_root(depth, ref)


# ---------------------------------------------------------------------- set/get/delete
def test_set_get_len_items_contains():
    t = SparseMerkleTree(8)
    t.set(5, leaf(5))
    t.set(3, leaf(3))
    t.set(200, leaf(200))
    assert t.get(5) == leaf(5)
    assert t.get(4) == EMPTY_LEAF
    assert len(t) == 3
    assert t.items() == [(3, leaf(3)), (5, leaf(5)), (200, leaf(200))]
    assert 5 in t and 4 not in t and "5" not in t
    t.set(5, leaf(6))  # overwrite
    assert t.get(5) == leaf(6)
    assert len(t) == 3
    t.set(5, EMPTY_LEAF)  # delete
    assert len(t) == 2
    assert t.get(5) == EMPTY_LEAF
    t.delete(3)
    assert t.items() == [(200, leaf(200))]
    t.delete(3)  # deleting an empty slot is a no-op
    assert len(t) == 1


def test_set_is_lazy_and_root_clears_dirty():
    t = SparseMerkleTree(32)
    t.set(9, leaf(9))
    assert t.dirty
    assert t.node_count() == 32  # forces a root computation
    assert not t.dirty
    r = t.root()
    assert r == sparse_reference_root(32, {9: leaf(9)})
    t.set(9, leaf(9))  # same value: dirty but same root
    assert t.dirty
    assert t.root() == r


def test_set_then_delete_everything_returns_to_empty_root():
    t = SparseMerkleTree(32)
    idxs = [0, 1, 5, 2**31, 2**32 - 1, 77, 78, 1 << 20]
    for n, i in enumerate(idxs):
        t.set(i, leaf(n))
    assert t.root() != ZERO_HASHES[32]
    assert t.node_count() > 0
    for n, i in enumerate(idxs):
        t.delete(i)
        if n == 3:
            t.root()
    assert t.root() == ZERO_HASHES[32]
    assert len(t) == 0
    assert t.node_count() == 0  # deleting frees every stored path


def test_delete_frees_path_single_leaf_fast_path():
    t = SparseMerkleTree(48)
    t.set(123456789, leaf(1))
    t.root()
    assert t.node_count() == 48
    t.delete(123456789)
    assert t.root() == ZERO_HASHES[48]
    assert t.node_count() == 0


def test_memory_proportional_to_leaves_times_depth():
    t = SparseMerkleTree(32)
    for n in range(50):
        t.set((n * 2654435761) % 2**32, leaf(n))
    assert t.node_count() <= 50 * 32
    # two adjacent leaves share every node above the leaves
    t2 = SparseMerkleTree(32)
    t2.set(10, leaf(0))
    t2.set(11, leaf(1))
    assert t2.node_count() == 32


def test_setting_empty_leaf_on_fresh_tree_keeps_empty_root():
    t = SparseMerkleTree(16)
    t.set(4, EMPTY_LEAF)
    assert t.root() == ZERO_HASHES[16]
    assert len(t) == 0


def test_accepts_bytes_like_leaf_and_stores_bytes():
    t = SparseMerkleTree(8)
    buf = bytearray(leaf(1))
    t.set(1, buf)
    buf[0] ^= 0xFF  # mutating the caller's buffer must not change the tree
    assert t.get(1) == leaf(1)
    assert type(t.get(1)) is bytes
    t.set(2, memoryview(leaf(2)))
    assert t.get(2) == leaf(2)


def test_update_many():
    t = SparseMerkleTree(16)
    t.update([(1, leaf(1)), (2, leaf(2)), (1, leaf(3)), (2, EMPTY_LEAF)])
    assert t.items() == [(1, leaf(3))]
    ref = SparseMerkleTree(16)
    ref.set(1, leaf(3))
    assert t.root() == ref.root()


def test_update_is_atomic_on_bad_input():
    t = SparseMerkleTree(16)
    t.set(1, leaf(1))
    r = t.root()
    with pytest.raises(InvalidIndex):
        t.update([(2, leaf(2)), (2**16, leaf(3))])
    with pytest.raises(InvalidHash):
        t.update([(2, leaf(2)), (3, b"short")])
    assert t.items() == [(1, leaf(1))]
    assert not t.dirty
    assert t.root() == r


@pytest.mark.parametrize("bad", [-1, 2**16, 2**64, True, 1.0, "1", None])
def test_bad_index(bad):
    t = SparseMerkleTree(16)
    with pytest.raises(InvalidIndex, match=r"index must be an int in \[0, 2\*\*16\)"):
        t.set(bad, leaf(0))
    with pytest.raises(InvalidIndex):
        t.get(bad)
    with pytest.raises(InvalidIndex):
        t.proof(bad)
    assert not t.dirty and len(t) == 0


@pytest.mark.parametrize("bad", [b"", b"\x01" * 31, b"\x01" * 33, "ab" * 16, None, 5, [0] * 32])
def test_bad_leaf(bad):
    t = SparseMerkleTree(16)
    with pytest.raises(InvalidHash, match="leaf hash must be 32 bytes"):
        t.set(0, bad)
    assert not t.dirty and len(t) == 0


def test_max_depth_extremes():
    t = SparseMerkleTree(64)
    top = 2**64 - 1
    t.set(top, leaf(1))
    t.set(0, leaf(0))
    assert t.root() == sparse_reference_root(64, {0: leaf(0), top: leaf(1)})
    assert verify_proof(t.root(), 64, top, leaf(1), t.proof(top))


# ------------------------------------------------------------------------------- proofs
def _tree_with_leaves(depth, idxs):
    t = SparseMerkleTree(depth)
    for n, i in enumerate(idxs):
        t.set(i, leaf(n))
    return t


def test_every_proof_verifies_including_empty_slots():
    idxs = [0, 1, 5, 6, 7, 100, 255]
    t = _tree_with_leaves(8, idxs)
    root = t.root()
    for i in range(256):
        p = t.proof(i)
        assert len(p) == 8
        assert all(type(s) is bytes and len(s) == 32 for s in p)
        assert verify_proof(root, 8, i, t.get(i), p)
        assert root_from_proof(8, i, t.get(i), p) == root


def test_proof_of_lone_leaf_is_zero_hashes():
    t = SparseMerkleTree(32)
    t.set(2**31 + 3, leaf(0))
    assert t.proof(2**31 + 3) == list(ZERO_HASHES[:32])


def test_proof_computes_root_if_dirty():
    t = _tree_with_leaves(16, [3, 4, 9000])
    assert t.dirty
    p = t.proof(4)
    assert not t.dirty
    assert verify_proof(t.root(), 16, 4, leaf(1), p)


def test_tampered_proofs_fail():
    idxs = [0, 1, 5, 2**31, 2**32 - 1, 12345]
    t = _tree_with_leaves(32, idxs)
    root = t.root()
    for n, i in enumerate(idxs):
        p = t.proof(i)
        assert verify_proof(root, 32, i, leaf(n), p)
        # a flipped bit in any sibling
        for level in range(32):
            bad = list(p)
            bad[level] = bytes([bad[level][0] ^ 1]) + bad[level][1:]
            assert not verify_proof(root, 32, i, leaf(n), bad)
        # wrong leaf, empty leaf
        assert not verify_proof(root, 32, i, leaf(n + 100), p)
        assert not verify_proof(root, 32, i, EMPTY_LEAF, p)
        # wrong index: every single-bit change of the index
        for bit in range(32):
            assert not verify_proof(root, 32, i ^ (1 << bit), leaf(n), p)
        # wrong root
        assert not verify_proof(ZERO_HASHES[32], 32, i, leaf(n), p)
        # siblings in the wrong order (top-down)
        assert not verify_proof(root, 32, i, leaf(n), p[::-1])


def test_non_membership_proof():
    t = _tree_with_leaves(16, [1, 2, 3])
    root = t.root()
    p = t.proof(4)
    assert verify_proof(root, 16, 4, EMPTY_LEAF, p)
    assert not verify_proof(root, 16, 4, leaf(0), p)


def test_proof_input_validation():
    t = _tree_with_leaves(8, [1])
    root, p = t.root(), t.proof(1)
    with pytest.raises(InvalidProof, match="exactly 8 siblings, got 7"):
        verify_proof(root, 8, 1, leaf(0), p[:-1])
    with pytest.raises(InvalidProof, match="exactly 8 siblings, got 9"):
        root_from_proof(8, 1, leaf(0), p + [EMPTY_LEAF])
    with pytest.raises(InvalidProof):
        root_from_proof(8, 1, leaf(0), b"".join(p))  # a byte string is not a sequence of hashes
    with pytest.raises(InvalidProof):
        root_from_proof(8, 1, leaf(0), 5)  # type: ignore[arg-type]
    with pytest.raises(InvalidHash, match="sibling 3"):
        root_from_proof(8, 1, leaf(0), p[:3] + [b"\x00" * 31] + p[4:])
    with pytest.raises(InvalidHash, match="root"):
        verify_proof(root[:31], 8, 1, leaf(0), p)
    with pytest.raises(InvalidHash, match="leaf hash"):
        verify_proof(root, 8, 1, leaf(0) + b"\x00", p)
    with pytest.raises(InvalidIndex):
        verify_proof(root, 8, 256, leaf(0), p)
    with pytest.raises(InvalidIndex):
        verify_proof(root, 8, -1, leaf(0), p)
    with pytest.raises(InvalidDepth):
        verify_proof(root, 0, 0, leaf(0), [])
    with pytest.raises(InvalidDepth):
        verify_proof(root, 65, 0, leaf(0), p)
    # tuples and generators of siblings are fine
    assert verify_proof(root, 8, 1, leaf(0), tuple(p))
    assert verify_proof(root, 8, 1, leaf(0), (s for s in p))


# -------------------------------------------------------------------------------- copy
def test_copy_is_independent():
    t = _tree_with_leaves(32, [1, 2, 3])
    r0 = t.root()
    c = t.copy()
    assert c.root() == r0 and c.items() == t.items()
    c.set(4, leaf(4))
    c.delete(1)
    assert t.root() == r0
    assert t.items() == [(1, leaf(0)), (2, leaf(1)), (3, leaf(2))]
    t.set(5, leaf(5))
    r1 = t.root()
    assert c.get(5) == EMPTY_LEAF
    assert c.root() == sparse_reference_root(32, {2: leaf(1), 3: leaf(2), 4: leaf(4)})
    assert r1 == sparse_reference_root(32, {1: leaf(0), 2: leaf(1), 3: leaf(2), 5: leaf(5)})


def test_copy_of_dirty_tree_carries_pending_changes():
    t = SparseMerkleTree(16)
    t.set(1, leaf(1))
    t.root()
    t.set(2, leaf(2))
    t.delete(1)
    c = t.copy()
    assert c.dirty
    assert c.root() == t.root() == sparse_reference_root(16, {2: leaf(2)})
    # computing the copy's root must not clear the original's dirty set
    t2 = SparseMerkleTree(16)
    t2.set(7, leaf(7))
    c2 = t2.copy()
    c2.root()
    assert t2.dirty


def test_copy_module_protocol():
    t = _tree_with_leaves(8, [1, 2])
    for c in (copy.copy(t), copy.deepcopy(t)):
        assert c is not t and c.root() == t.root()
        c.set(3, leaf(3))
        assert t.get(3) == EMPTY_LEAF


def test_repr_mentions_depth():
    assert "depth=32" in repr(SparseMerkleTree(32))
