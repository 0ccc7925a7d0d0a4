"""Property tests: the incremental sparse tree against a naive full-tree reference."""

from hypothesis import given, settings
from hypothesis import strategies as st

from clearline.core.hashing import keccak
from clearline.core.merkle import (
    EMPTY_LEAF,
    ZERO_HASHES,
    SparseMerkleTree,
    root_from_proof,
    verify_proof,
)


# ------------------------------------------------------------------ naive reference
def naive_levels(depth: int, leaves: dict[int, bytes]) -> list[list[bytes]]:
    """Every node of the full tree, level 0 = the 2**depth leaves. Only for depth <= 8."""
    level = [leaves.get(i, b"\x00" * 32) for i in range(2**depth)]
    out = [level]
    for _ in range(depth):
        level = [keccak(b"\x01" + level[j] + level[j + 1]) for j in range(0, len(level), 2)]
        out.append(level)
    return out


def naive_root(depth: int, leaves: dict[int, bytes]) -> bytes:
    return naive_levels(depth, leaves)[depth][0]


def naive_proof(depth: int, leaves: dict[int, bytes], index: int) -> list[bytes]:
    levels = naive_levels(depth, leaves)
    return [levels[h][(index >> h) ^ 1] for h in range(depth)]


def sparse_reference_root(depth: int, leaves: dict[int, bytes]) -> bytes:
    """Recursive split-on-top-bit definition; works for any depth with few leaves."""

    def sub(height: int, items: list[tuple[int, bytes]]) -> bytes:
        if not items:
            return ZERO_HASHES[height]
        if height == 0:
            return items[0][1]
        bit = 1 << (height - 1)
        return keccak(
            b"\x01"
            + sub(height - 1, [x for x in items if not x[0] & bit])
            + sub(height - 1, [x for x in items if x[0] & bit])
        )

    return sub(depth, [(i, v) for i, v in leaves.items() if v != EMPTY_LEAF])


# ------------------------------------------------------------------------ strategies
# A small pool of leaf values plus EMPTY_LEAF (= delete), so overwrites and deletes are common.
LEAF_POOL = [keccak(b"v%d" % i) for i in range(6)]
leaf_values = st.one_of(
    st.sampled_from(LEAF_POOL), st.just(EMPTY_LEAF), st.binary(min_size=32, max_size=32)
)


@st.composite
def small_scenarios(draw, max_depth=8):
    depth = draw(st.integers(1, max_depth))
    index = st.integers(0, 2**depth - 1)
    op = st.one_of(
        st.tuples(st.just("set"), index, leaf_values),
        st.tuples(st.just("del"), index),
        st.tuples(st.just("root")),
        st.tuples(st.just("proof"), index),
    )
    ops = draw(st.lists(op, max_size=60))
    return depth, ops


@st.composite
def big_scenarios(draw):
    depth = draw(st.sampled_from([16, 32, 48, 64]))
    # cluster indices sometimes so that paths share many levels
    base = draw(st.integers(0, 2**depth - 1))
    index = st.one_of(
        st.integers(0, 2**depth - 1),
        st.integers(0, 15).map(lambda d: base ^ d),
        st.sampled_from([0, 2**depth - 1]),
    )
    op = st.one_of(
        st.tuples(st.just("set"), index, leaf_values),
        st.tuples(st.just("del"), index),
        st.tuples(st.just("root")),
    )
    return depth, draw(st.lists(op, max_size=30))


# ---------------------------------------------------------------------------- properties
@settings(max_examples=300, deadline=None)
@given(small_scenarios())
def test_incremental_root_matches_naive_full_tree(scenario):
    depth, ops = scenario
    tree = SparseMerkleTree(depth)
    model: dict[int, bytes] = {}
    for op in ops:
        if op[0] == "set":
            _, i, v = op
            tree.set(i, v)
            if v == EMPTY_LEAF:
                model.pop(i, None)
            else:
                model[i] = v
        elif op[0] == "del":
            tree.delete(op[1])
            model.pop(op[1], None)
        elif op[0] == "root":
            assert tree.root() == naive_root(depth, model)
        else:
            i = op[1]
            p = tree.proof(i)
            assert p == naive_proof(depth, model, i)
            assert verify_proof(naive_root(depth, model), depth, i, model.get(i, EMPTY_LEAF), p)
    root = tree.root()
    assert root == naive_root(depth, model)
    assert len(tree) == len(model)
    assert tree.items() == sorted(model.items())
    for i in range(2**depth):
        assert tree.get(i) == model.get(i, EMPTY_LEAF)
    # incremental == from scratch (one batch), whatever the history
    fresh = SparseMerkleTree(depth)
    fresh.update(model.items())
    assert fresh.root() == root
    # storage is exactly what the path structure requires
    assert tree.node_count() == fresh.node_count() <= len(model) * depth


@settings(max_examples=150, deadline=None)
@given(big_scenarios())
def test_incremental_root_matches_reference_at_large_depth(scenario):
    depth, ops = scenario
    tree = SparseMerkleTree(depth)
    model: dict[int, bytes] = {}
    for op in ops:
        if op[0] == "set":
            tree.set(op[1], op[2])
            model[op[1]] = op[2]
        elif op[0] == "del":
            tree.delete(op[1])
            model[op[1]] = EMPTY_LEAF
        else:
            assert tree.root() == sparse_reference_root(depth, model)
    root = tree.root()
    assert root == sparse_reference_root(depth, model)
    # single-leaf-at-a-time path gives the same root as batched recomputation
    one_by_one = SparseMerkleTree(depth)
    for i, v in model.items():
        one_by_one.set(i, v)
        one_by_one.root()
    assert one_by_one.root() == root
    live = {i: v for i, v in model.items() if v != EMPTY_LEAF}
    for i, v in live.items():
        p = tree.proof(i)
        assert root_from_proof(depth, i, v, p) == root


@settings(max_examples=100, deadline=None)
@given(small_scenarios(max_depth=8), st.data())
def test_every_proof_verifies_and_tampering_fails(scenario, data):
    depth, ops = scenario
    tree = SparseMerkleTree(depth)
    for op in ops:
        if op[0] == "set":
            tree.set(op[1], op[2])
        elif op[0] == "del":
            tree.delete(op[1])
    root = tree.root()
    i = data.draw(st.integers(0, 2**depth - 1), label="index")
    v = tree.get(i)
    p = tree.proof(i)
    assert verify_proof(root, depth, i, v, p)
    level = data.draw(st.integers(0, depth - 1), label="level")
    byte = data.draw(st.integers(0, 31), label="byte")
    bad = list(p)
    bad[level] = bad[level][:byte] + bytes([bad[level][byte] ^ 0x80]) + bad[level][byte + 1 :]
    assert not verify_proof(root, depth, i, v, bad)
    other_leaf = data.draw(
        st.binary(min_size=32, max_size=32).filter(lambda b: b != v), label="leaf"
    )
    assert not verify_proof(root, depth, i, other_leaf, p)
    j = data.draw(st.integers(0, 2**depth - 1).filter(lambda j: j != i), label="other index")
    # Soundness: reusing i's proof at index j can only succeed when the statement is true
    # anyway (at every differing bit the running hash equals the sibling, i.e. the subtrees
    # are identical, e.g. two equal neighbouring leaves or two empty slots).
    if verify_proof(root, depth, j, v, p):
        assert tree.get(j) == v


@settings(max_examples=100, deadline=None)
@given(small_scenarios(max_depth=8), small_scenarios(max_depth=8))
def test_copy_is_independent(s1, s2):
    depth, ops1 = s1
    _, ops2 = s2
    ops2 = [op for op in ops2 if len(op) == 1 or op[1] < 2**depth]
    tree = SparseMerkleTree(depth)
    model: dict[int, bytes] = {}

    def apply(t, m, ops):
        for op in ops:
            if op[0] == "set":
                t.set(op[1], op[2])
                m[op[1]] = op[2]
            elif op[0] == "del":
                t.delete(op[1])
                m[op[1]] = EMPTY_LEAF
            elif op[0] == "root":
                t.root()

    apply(tree, model, ops1)
    before_items = tree.items()
    before_root = naive_root(depth, {i: v for i, v in model.items() if v != EMPTY_LEAF})
    clone = tree.copy()
    clone_model = dict(model)
    apply(clone, clone_model, ops2)
    assert tree.items() == before_items
    assert tree.root() == before_root
    live = {i: v for i, v in clone_model.items() if v != EMPTY_LEAF}
    assert clone.root() == naive_root(depth, live)
    assert clone.items() == sorted(live.items())


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 64), st.data())
def test_set_then_delete_all_returns_to_empty(depth, data):
    idxs = data.draw(st.lists(st.integers(0, 2**depth - 1), max_size=20, unique=True))
    tree = SparseMerkleTree(depth)
    for n, i in enumerate(idxs):
        tree.set(i, keccak(b"leaf-%d" % n))
    tree.root()
    order = data.draw(st.permutations(idxs))
    for i in order:
        tree.delete(i)
        if data.draw(st.booleans()):
            tree.root()
    assert tree.root() == ZERO_HASHES[depth]
    assert len(tree) == 0
    assert tree.node_count() == 0
