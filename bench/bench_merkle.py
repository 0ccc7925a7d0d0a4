"""Benchmark for clearline.core.merkle.

``run(seconds_budget)`` returns a dict of figures (rates per second, higher is better):

- ``keccak65_per_s``: raw node hashes per second (the floor everything else is bound by);
- ``single_d{D}_updates_per_s``: ``set`` one random leaf then ``root()``, repeated;
- ``batch1000_d{D}_leaves_per_s``: ``set`` 1000 random leaves then one ``root()`` (mean;
  ``..._best_batch_...`` is the fastest single batch, less sensitive to a busy machine);
- ``batch1000_d{D}_hashes_per_leaf``: node hashes per leaf for those batches (dedup effect);
- ``proof_d32_per_s`` / ``verify_d32_per_s``: proof extraction and verification;
- ``copy_10k_d32_ms``: ``copy()`` of a tree with 10,000 leaves.

Trees are pre-filled with 10,000 random leaves (untimed) so the sibling lookups hit real
nodes. Randomness is seeded; this is a benchmark, not core code.
"""

from __future__ import annotations

import random
import time

from clearline.core.hashing import keccak
from clearline.core.merkle import SparseMerkleTree, verify_proof

PREFILL = 10_000
BATCH = 1_000
DESIGN_BASELINE_D32 = 22_000  # DESIGN.md: depth-32 single-leaf updates/s, pure Python


def _leaves(rng: random.Random, depth: int, n: int) -> list[tuple[int, bytes]]:
    top = (1 << depth) - 1
    return [(rng.randint(0, top), keccak(rng.randbytes(16))) for _ in range(n)]


def _prefilled(depth: int, seed: int) -> SparseMerkleTree:
    rng = random.Random(seed)
    t = SparseMerkleTree(depth)
    t.update(_leaves(rng, depth, PREFILL))
    t.root()
    return t


def _count_hashes(depth: int, indices: list[int]) -> int:
    """Distinct nodes re-hashed when ``indices`` are dirty (one per distinct parent per level)."""
    level = set(indices)
    total = 0
    for _ in range(depth):
        level = {i >> 1 for i in level}
        total += len(level)
    return total


def bench_keccak(seconds: float) -> float:
    from sha3 import keccak_256

    one, a, b = b"\x01", bytes(32), bytes(range(32))
    n = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    while True:
        for _ in range(10_000):
            keccak_256(one + a + b).digest()
        n += 10_000
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - t0)


def bench_single(depth: int, seconds: float, seed: int = 1) -> float:
    t = _prefilled(depth, seed)
    rng = random.Random(seed + 100)
    work = _leaves(rng, depth, 2_000)
    set_, root = t.set, t.root
    n = 0
    elapsed = 0.0
    while elapsed < seconds or n == 0:
        t0 = time.perf_counter()
        for i, v in work:
            set_(i, v)
            root()
        elapsed += time.perf_counter() - t0
        n += len(work)
    return n / elapsed


def bench_batch(depth: int, seconds: float, seed: int = 2) -> tuple[float, float, float]:
    """(mean leaves/s, best-batch leaves/s, node hashes per leaf) for batches of BATCH."""
    t = _prefilled(depth, seed)
    rng = random.Random(seed + 100)
    n = 0
    hashes = 0
    elapsed = 0.0
    best = float("inf")
    while elapsed < seconds or n == 0:
        batch = _leaves(rng, depth, BATCH)
        hashes += _count_hashes(depth, [i for i, _ in batch])
        set_ = t.set
        t0 = time.perf_counter()
        for i, v in batch:
            set_(i, v)
        t.root()
        dt = time.perf_counter() - t0
        best = min(best, dt)
        elapsed += dt
        n += BATCH
    return n / elapsed, BATCH / best, hashes / n


def bench_proofs(seconds: float, depth: int = 32, seed: int = 3) -> tuple[float, float]:
    t = _prefilled(depth, seed)
    root = t.root()
    items = t.items()[:2_000]
    t0 = time.perf_counter()
    n = 0
    proofs = []
    while True:
        for i, _ in items:
            proofs.append(t.proof(i))
        n += len(items)
        if time.perf_counter() - t0 >= seconds / 2:
            break
    proof_rate = n / (time.perf_counter() - t0)
    proofs = proofs[: len(items)]
    t0 = time.perf_counter()
    n = 0
    while True:
        for (i, v), p in zip(items, proofs):
            if not verify_proof(root, depth, i, v, p):
                raise RuntimeError("benchmark proof failed to verify")
        n += len(items)
        if time.perf_counter() - t0 >= seconds / 2:
            break
    return proof_rate, n / (time.perf_counter() - t0)


def bench_copy(depth: int = 32, seed: int = 4) -> float:
    t = _prefilled(depth, seed)
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        t.copy()
        best = min(best, time.perf_counter() - t0)
    return best * 1000.0


def run(seconds_budget: float) -> dict:
    """Run every measurement within roughly ``seconds_budget`` seconds of timed work."""
    slice_ = max(seconds_budget, 0.5) / 8.0
    out: dict = {"depth_prefill_leaves": PREFILL, "batch_size": BATCH}
    out["keccak65_per_s"] = round(bench_keccak(slice_ / 2))
    for depth in (32, 48):
        out[f"single_d{depth}_updates_per_s"] = round(bench_single(depth, slice_))
        rate, best, hpl = bench_batch(depth, slice_ * 1.5)
        out[f"batch1000_d{depth}_leaves_per_s"] = round(rate)
        out[f"batch1000_d{depth}_best_batch_leaves_per_s"] = round(best)
        out[f"batch1000_d{depth}_hashes_per_leaf"] = round(hpl, 2)
    proof_rate, verify_rate = bench_proofs(slice_)
    out["proof_d32_per_s"] = round(proof_rate)
    out["verify_d32_per_s"] = round(verify_rate)
    out["copy_10k_d32_ms"] = round(bench_copy(), 2)
    out["design_baseline_d32_updates_per_s"] = DESIGN_BASELINE_D32
    out["batch1000_d32_vs_baseline"] = round(
        out["batch1000_d32_leaves_per_s"] / DESIGN_BASELINE_D32, 2
    )
    return out


if __name__ == "__main__":
    import sys

    budget = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    for key, value in run(budget).items():
        print(f"{key:40s} {value}")
