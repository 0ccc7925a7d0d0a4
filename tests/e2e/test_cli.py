"""The README's commands, run as a user would."""

import json
import os
import re
import subprocess
import sys

from clearline import benchmarks

CLI = [sys.executable, "-m", "clearline.cli"]


def run(args, **kw):
    return subprocess.run(CLI + args, capture_output=True, text=True, timeout=120, **kw)


def test_demo_runs_and_its_journal_replays_to_the_printed_root(tmp_path):
    res = run(["demo", "--seconds", "4", "--data-dir", str(tmp_path)])
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    m = re.search(r"state_root=0x([0-9a-f]{64})", last)
    assert m, last
    trades = int(re.search(r"trades=(\d+)", last).group(1))
    assert trades > 10  # the simulated market really traded
    assert "reproduces the state root: yes" in res.stdout

    rep = run(["replay", "--journal", str(tmp_path / "journal.sqlite")])
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.strip().endswith(f"state_root=0x{m.group(1)}")
    rep2 = run(["replay", "--journal", str(tmp_path / "journal.sqlite"), "--from-genesis"])
    assert rep2.stdout.strip().endswith(f"state_root=0x{m.group(1)}")


def test_replay_of_a_missing_journal_fails_cleanly(tmp_path):
    res = run(["replay", "--journal", "postgresql://nowhere/db"])
    assert res.returncode != 0
    assert "postgres" in (res.stderr + res.stdout).lower()


def test_bench_figures_are_produced_on_a_small_run(tmp_path):
    """Smoke-run every benchmark at tiny sizes: figures exist and are positive (no timing asserted)."""
    assert benchmarks.bench_sig_recover(n=200, repeats=1) > 0
    assert benchmarks.bench_matching(n=3_000, repeats=1) > 0
    genesis, deposits, payloads = benchmarks.make_signed_flow(600, accounts=6)
    e2e, path = benchmarks.bench_e2e(genesis, deposits, payloads, str(tmp_path), repeats=1)
    assert e2e > 0 and os.path.exists(path)
    assert benchmarks.bench_replay(path, repeats=1) > 0
    p50, p99 = benchmarks.bench_ack_latency(genesis, deposits, payloads[:300], 2_000, str(tmp_path))
    assert 0 < p50 <= p99
    json.dumps({"e2e": e2e})


def test_demo_shows_options_funding_liquidation_and_expiry_within_minutes(tmp_path):
    """Issue 3: within a few (accelerated) minutes the demo lists and trades options, pays
    funding, liquidates at least one account and settles at least one expiry."""
    res = run(["demo", "--seconds", "30", "--speed", "4", "--data-dir", str(tmp_path)])
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    figures = dict(kv.split("=") for kv in last.split() if "=" in kv)
    assert int(figures["option_trades"]) > 0, last
    assert int(figures["liquidations"]) >= 1, last
    assert int(figures["expiries"]) >= 1, last
    assert float(figures["funding_paid_usd"]) > 0, last
    assert "reproduces the state root: yes" in res.stdout
    # issue 4: the embedded L1 got batches, finalized them and paid a withdrawal
    l1_line = next(line for line in res.stdout.splitlines() if line.startswith("l1_batches="))
    l1 = dict(kv.split("=") for kv in l1_line.split())
    assert int(l1["l1_batches"]) >= 1 and int(l1["l1_gas"]) > 0, l1_line
    assert int(l1["l1_finalized"]) == int(l1["l1_batches"]), l1_line
    assert int(l1["l1_withdrawals_paid"]) >= 1, l1_line
    # margin explain works on the demo's journal for every account (same code as the engine)
    for account in range(3):
        rep = run(["margin", "explain", "--journal", str(tmp_path / "journal.sqlite"), "--account", str(account),
                   "--json"])
        assert rep.returncode == 0, rep.stderr
        data = json.loads(rep.stdout)
        assert data["account"] == account and data["initial"] >= 0
