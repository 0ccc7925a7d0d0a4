"""Property: a ``SparseMerkleTree.multiproof`` of any set of indices, fed to
``root_from_multiproof`` with the leaves at those indices, gives the tree's root; with any one
leaf changed it gives the root of the tree with that leaf changed (so one proof proves the
pre-leaves and yields the post-root, as ``MarkVerifier._multiRoot`` uses it)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from clearline.core.hashing import keccak
from clearline.core.merkle import SparseMerkleTree, root_from_multiproof

DEPTH = 12
index = st.integers(0, (1 << DEPTH) - 1)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(index, st.binary(min_size=1, max_size=4), max_size=40),
       st.sets(index, min_size=1, max_size=30), st.data())
def test_multiproof_proves_and_updates(leaves, chosen, data):
    tree = SparseMerkleTree(DEPTH)
    for i, v in leaves.items():
        tree.set(i, keccak(v))
    idx = sorted(chosen)
    present, siblings = tree.multiproof(idx)
    hashes = [tree.get(i) for i in idx]
    assert root_from_multiproof(DEPTH, idx, hashes, present, siblings) == tree.root()
    k = data.draw(st.integers(0, len(idx) - 1))
    new = keccak(b"changed" + bytes([k % 256]))
    hashes[k] = new
    tree.set(idx[k], new)
    assert root_from_multiproof(DEPTH, idx, hashes, present, siblings) == tree.root()
