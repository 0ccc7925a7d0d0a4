"""`clearline node` on an existing journal: a plain node resumes it exactly; the simulated
market and the embedded L1 (which start from scratch) refuse to, with a clear message."""

import re
import subprocess
import sys

CLI = [sys.executable, "-m", "clearline.cli", "node", "--port", "0"]


def run(args):
    return subprocess.run(CLI + args, capture_output=True, text=True, timeout=120)


def root_of(out: str) -> tuple[int, str]:
    m = re.search(r"journal seq=(\d+) state_root=(0x[0-9a-f]{64}) replay=ok", out)
    assert m, out
    return int(m.group(1)), m.group(2)


def test_a_node_resumes_its_journal_and_the_sim_or_embedded_l1_refuse(tmp_path):
    first = run(["--data-dir", str(tmp_path), "--seconds", "3"])  # embedded L1 and its deposits
    assert first.returncode == 0, first.stderr
    seq, root = root_of(first.stdout)
    assert seq > 0

    for flags in ([], ["--no-l1", "--sim"]):
        refused = run(["--data-dir", str(tmp_path), "--seconds", "2", *flags])
        assert refused.returncode == 1
        assert f"already holds {seq:,} transactions" in refused.stderr + refused.stdout

    resumed = run(["--data-dir", str(tmp_path), "--seconds", "2", "--no-l1"])
    assert resumed.returncode == 0, resumed.stderr
    assert root_of(resumed.stdout) == (seq, root)


def test_the_demo_refuses_a_journal_that_is_not_empty(tmp_path):
    first = run(["--data-dir", str(tmp_path), "--seconds", "2", "--no-l1", "--sim"])
    assert first.returncode == 0, first.stderr
    seq, _ = root_of(first.stdout)
    demo = subprocess.run([sys.executable, "-m", "clearline.cli", "demo", "--seconds", "2", "--no-l1",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert demo.returncode == 1
    assert f"already holds {seq:,} transactions" in demo.stderr + demo.stdout

