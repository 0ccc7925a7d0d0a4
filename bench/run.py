"""Benchmark runner: medians of several runs, printed as a table and saved as JSON.

    python bench/run.py            # 5 repeats per figure
    python bench/run.py --quick    # 3 repeats (what ``clearline bench`` does)

Targets (issue 2, 2-core machine): matching >= 1,000,000 ops/s; end-to-end signed >=
0.75 * 2 * sig_recover_per_s; replay >= 100,000 tx/s; p99 ack <= 5 ms at half the e2e rate.
Issue 4 (L1): gas <= 2,500 and DA <= 120 bytes per trade, escape <= 500,000 gas, watchtower
rebuild >= 20,000 tx/s. ``da_signature_bytes_per_trade`` is the floor under the DA figure (and
x 40 gas under the gas figure): signatures are kept in the batch data.
Issue 6 (fraud proofs): fraud_proof_gas_max <= 3,000,000 (worst proof kind, whole transaction);
watchtower_lag_s (median, batch append to the watchtower's verdict, demo with --watch) <= one
batch interval (watchtower_batch_interval_s).
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
    "l1_gas_per_trade": lambda f: f["l1_gas_per_trade"] <= 2_500,
    "da_bytes_per_trade": lambda f: f["da_bytes_per_trade"] <= 120,
    "escape_gas": lambda f: f["escape_gas"] <= 500_000,
    "verify_tx_per_s": lambda f: f["verify_tx_per_s"] >= 20_000,
    "fraud_proof_gas_max": lambda f: f["fraud_proof_gas_max"] <= 3_000_000,
    "watchtower_lag_s": lambda f: f["watchtower_lag_s"] is not None and f["watchtower_batch_interval_s"] is not None
    and f["watchtower_lag_s"] <= f["watchtower_batch_interval_s"],
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
        print(f"{k:32s} {v if isinstance(v, (int, float)) else str(v):>14} {verdict}")
    os.makedirs(os.path.join(os.path.dirname(__file__), "results"), exist_ok=True)
    out = os.path.join(os.path.dirname(__file__), "results", time.strftime("%Y%m%d-%H%M%S") + ".json")
    with open(out, "w") as f:
        json.dump(figures, f, indent=2, sort_keys=True)
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
