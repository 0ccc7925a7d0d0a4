"""A/B of the core's hot paths between two checkouts, run interleaved on the same machine.

    PYTHONPATH=/path/to/old python bench/ab_core.py old
    PYTHONPATH=/path/to/new python bench/ab_core.py new

Prints one JSON line per run: end-to-end signed orders/s, journal replay tx/s (one root at
the end), replay with a root after every transaction, and the pure book's matching ops/s, for
the same seeded 30,000-order flow. Alternate old and new several times: the machines are shared
and a single pair is noise (identical code has varied by 40% between runs).
"""

from __future__ import annotations

import json
import sys
import tempfile

from clearline.benchmarks import bench_e2e, bench_matching, bench_replay, bench_replay_with_roots, make_signed_flow


def main(label: str) -> dict:
    genesis, deposits, payloads = make_signed_flow(30_000)
    with tempfile.TemporaryDirectory() as wd:
        e2e, path = bench_e2e(genesis, deposits, payloads, wd, 3)
        out = {"e2e": round(e2e), "replay": round(bench_replay(path, 3)),
               "replay_root_every_tx": round(bench_replay_with_roots(path, repeats=3)),
               "matching": round(bench_matching(150_000, 3))}
    print(label, json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "run")
