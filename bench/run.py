"""Benchmark runner: medians of several runs, printed as a table and saved as JSON.

    python bench/run.py            # 5 repeats per figure
    python bench/run.py --quick    # 3 repeats (what ``clearline bench`` does)

Targets (issue 2, 2-core machine): matching >= 1,000,000 ops/s; end-to-end signed >=
0.75 * 2 * sig_recover_per_s; replay >= 100,000 tx/s; p99 ack <= 5 ms at half the e2e rate.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from clearline.benchmarks import run_all  # noqa: E402

TARGETS = {
    "matching_ops_per_s": lambda f: f["matching_ops_per_s"] >= 1_000_000,
    "e2e_signed_orders_per_s": lambda f: f["e2e_signed_orders_per_s"] >= 0.75 * 2 * f["sig_recover_per_s"],
    "replay_tx_per_s": lambda f: f["replay_tx_per_s"] >= 100_000,
    "ack_latency_p99_ms": lambda f: f["ack_latency_p99_ms"] <= 5.0,
}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    figures = run_all(quick=args.quick, progress=True)
    for k, v in sorted(figures.items()):
        verdict = ""
        if k in TARGETS:
            verdict = "meets target" if TARGETS[k](figures) else "BELOW TARGET"
        print(f"{k:32s} {v:>14} {verdict}")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    out = os.path.join(os.path.dirname(__file__), "results", time.strftime("%Y%m%d-%H%M%S") + ".json")
    with open(out, "w") as f:
        json.dump(figures, f, indent=2, sort_keys=True)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
