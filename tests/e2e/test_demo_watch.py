"""``clearline demo --watch --challenge``: an honest demo with a watchtower attached (one that
would prove fraud itself) produces no challenge, and the watchtower checks every batch the demo
posted (issue 6)."""

import re
import subprocess
import sys

CLI = [sys.executable, "-m", "clearline.cli"]


def test_honest_demo_with_a_watchtower_has_no_challenge(tmp_path):
    res = subprocess.run(CLI + ["demo", "--seconds", "8", "--speed", "4", "--no-api", "--watch", "--challenge",
                                "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    out = res.stdout
    batches = int(re.search(r"l1_batches=(\d+)", out).group(1))
    m = re.search(r"watch_checked_batches=(\d+) watch_challenges=(\d+) watch_lag_s=([0-9.]+) "
                  r"watch_lag_max_s=([0-9.]+)", out)
    assert m, out[-2000:]
    assert batches >= 2
    assert int(m.group(1)) == batches  # every posted batch was checked
    assert int(m.group(2)) == 0  # and none was challenged
    assert "watch_proven" not in out and "fault_injected" not in out
    last = re.search(r"l1_finalized=(\d+) .*l1_last_batch=(\d+) l1_frozen=(\w+)", out)
    assert last and last.group(3) == "no"
    assert int(last.group(1)) == int(last.group(2)) == batches  # nothing reverted; all finalized at the end
    assert "reproduces the state root: yes" in out
