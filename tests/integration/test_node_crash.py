"""A node killed with SIGKILL mid-stream loses nothing it acknowledged: on restart the
journal holds every acknowledged input, and replay reproduces the root the node reported
at each acknowledgement."""

import os
import signal
import subprocess
import sys
import time

from clearline.journal import open_journal
from clearline.sequencer import Sequencer, recover_state, replay
from clearline.core.state import State
from clearline.sim.market import SimulatedMarket, demo_genesis

CHILD = r"""
import sys
from clearline.journal import open_journal
from clearline.sequencer import Sequencer
from clearline.sim.market import SimulatedMarket, demo_genesis
path, seed = sys.argv[1], int(sys.argv[2])
genesis = demo_genesis(seed)
seq = Sequencer(open_journal(path), genesis, snapshot_every=3000)
sim = SimulatedMarket(genesis, seed=seed)
t = 1_700_000_000_000 + seq.state.time_ms % 1000
deps = sim.initial_deposits(t)
sim.observe(deps, seq.submit_txs(deps, t))
step = 0
while True:
    step += 1
    t += 50
    seq.submit_txs([sim.mark_update(t)], t)
    seq.submit(sim.step(t), t)
    print(seq.seq, seq.root().hex(), flush=True)  # acknowledged up to seq, with this root
"""


def test_sigkill_loses_no_acknowledged_input(tmp_path):
    path = str(tmp_path / "node.sqlite")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, path, "5"], stdout=subprocess.PIPE, text=True)
    acked = []
    deadline = time.monotonic() + 60
    while len(acked) < 40 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        s, root = line.split()
        acked.append((int(s), bytes.fromhex(root)))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for line in proc.stdout:  # acknowledgements still in the pipe count too
        parts = line.split()
        if len(parts) == 2:
            acked.append((int(parts[0]), bytes.fromhex(parts[1])))
    assert len(acked) >= 40, "child node did not make progress"
    last_seq, last_root = acked[-1]

    with open_journal(path) as j:
        j.verify_chain()
        state, head = recover_state(j)  # snapshot + tail
        assert head >= last_seq
        # replay from genesis reaches exactly the roots the node acknowledged with
        roots = {}
        fresh = State(demo_genesis(5))
        wanted = dict(acked)
        replay(fresh, j.entries(1, last_seq),
               on_tx=lambda e, tx, r: roots.__setitem__(e.seq, fresh.root()) if e.seq in wanted else None)
        for s, root in acked:
            assert roots[s] == root
        if head == last_seq:
            assert state.root() == last_root

    # the node restarts from the same journal and keeps going
    seq = Sequencer(open_journal(path))
    assert seq.seq == head
    genesis = demo_genesis(5)
    sim = SimulatedMarket(genesis, seed=5)
    # re-learn account ids in deposit order (they are deterministic)
    for i, t in enumerate(sim.traders):
        t.account = i
        t.nonce = seq.state.accounts[i].nonce
    now = seq.state.time_ms + 50
    seq.submit_txs([sim.mark_update(now)], now)
    acks = seq.submit(sim.step(now), now)
    assert any(a.seq > head for a in acks)
    seq.state.check_invariants()
    seq.close()
