"""Golden vectors for the state-root Merkle tree.

These bytes are shared with the Solidity verifier and the watchtower: a change here is a
consensus change. The vectors in ``vectors/merkle.json`` were produced by an independent
recursive reference (pycryptodome keccak, split on the top index bit), not by this module.
"""

import json
from pathlib import Path

import pytest

from clearline.core.hashing import keccak
from clearline.core.merkle import (
    EMPTY_LEAF,
    ZERO_HASHES,
    SparseMerkleTree,
    root_from_proof,
    verify_proof,
)

VECTORS = json.loads((Path(__file__).parent / "vectors" / "merkle.json").read_text())

# Pinned here as well as in the data file, so that editing the JSON alone cannot move them.
ZERO_HASH_32 = "0x7c1d0e8a93ea9c09cc13b91ead8f72de66a33cb695c30934dc2d75bffac1248e"
ZERO_HASH_1 = "0xc07a1e8b7e0057673fdc2affe190d8a960c5fe615663f27b7ce84f3d93ef92a6"
# leaves keccak(b"leaf-0".."leaf-4") at indices 0, 1, 5, 2**31, 2**32 - 1 of a depth-32 tree
DEPTH32_FINAL_ROOT = "0xd25778acf8cf8048a51b0aad8c4bf41ac5a9f29c58f64a30419a8ac81021bb80"


def h(x: str) -> bytes:
    assert x.startswith("0x")
    return bytes.fromhex(x[2:])


def test_zero_hashes_pinned():
    assert "0x" + ZERO_HASHES[32].hex() == ZERO_HASH_32
    assert "0x" + ZERO_HASHES[1].hex() == ZERO_HASH_1
    assert ["0x" + z.hex() for z in ZERO_HASHES[:5]] == VECTORS["zero_hashes_0_to_4"]
    assert SparseMerkleTree(32).root() == h(ZERO_HASH_32)


def test_depth32_roots_after_each_insertion():
    v = VECTORS["depth32"]
    assert [s["index"] for s in v["steps"]] == [0, 1, 5, 2**31, 2**32 - 1]
    t = SparseMerkleTree(v["depth"])
    for step in v["steps"]:
        leaf = h(step["leaf"])
        assert leaf == keccak(step["leaf_preimage"].encode("ascii"))
        t.set(step["index"], leaf)
        assert "0x" + t.root().hex() == step["root_after"]


def test_depth32_roots_batched_and_in_any_order():
    v = VECTORS["depth32"]
    steps = v["steps"]
    expected = h(steps[-1]["root_after"])
    for order in (steps, steps[::-1], steps[2:] + steps[:2]):
        t = SparseMerkleTree(32)
        for step in order:
            t.set(step["index"], h(step["leaf"]))
        assert t.root() == expected
    assert "0x" + expected.hex() == DEPTH32_FINAL_ROOT


def test_depth32_proof_siblings():
    v = VECTORS["depth32"]
    t = SparseMerkleTree(32)
    for step in v["steps"]:
        t.set(step["index"], h(step["leaf"]))
    p = v["proof"]
    siblings = [h(s) for s in p["siblings"]]
    assert len(siblings) == 32
    assert t.proof(p["index"]) == siblings
    assert verify_proof(t.root(), 32, p["index"], h(p["leaf"]), siblings)
    assert root_from_proof(32, p["index"], h(p["leaf"]), siblings) == h(DEPTH32_FINAL_ROOT)
    # index 5 = 0b101: its sibling leaf (4) is empty, the pair (6, 7) is empty,
    # the quad (0..3) holds leaves 0 and 1, and above that only the far-away leaves matter.
    assert siblings[0] == EMPTY_LEAF
    assert siblings[1] == ZERO_HASHES[1]
    assert siblings[2] not in ZERO_HASHES
    assert siblings[3:31] == list(ZERO_HASHES[3:31])
    assert siblings[31] not in ZERO_HASHES


def test_depth32_delete():
    v = VECTORS["depth32"]
    t = SparseMerkleTree(32)
    for step in v["steps"]:
        t.set(step["index"], h(step["leaf"]))
    t.root()
    t.delete(1)
    assert "0x" + t.root().hex() == v["after_deleting_index_1"]


def test_depth64_root():
    v = VECTORS["depth64"]
    t = SparseMerkleTree(v["depth"])
    for item in v["leaves"]:
        t.set(int(item["index"]), h(item["leaf"]))
    assert "0x" + t.root().hex() == v["root"]
    for item in v["leaves"]:
        i = int(item["index"])
        assert verify_proof(h(v["root"]), 64, i, h(item["leaf"]), t.proof(i))


@pytest.mark.parametrize("n", range(3))
def test_depth64_leaves_are_keccak_of_preimages(n):
    leaves = {int(x["index"]): h(x["leaf"]) for x in VECTORS["depth64"]["leaves"]}
    assert keccak(b"leaf-%d" % n) in leaves.values()
