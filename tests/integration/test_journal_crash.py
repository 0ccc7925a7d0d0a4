"""Crash safety of the SQLite journal: SIGKILL a writer at random moments, then reopen.

A child process appends batches to a file journal in a loop and prints the last seq of each
batch (flushed) only after ``append`` returned, i.e. after the input would have been
acknowledged. The parent kills it with SIGKILL at a random moment and checks that every
acknowledged entry survived, that the log is gap-free with the expected payloads, and that the
hash chain verifies. Several rounds run on the same file, so each round also recovers from the
previous crash and keeps appending.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

from clearline.core.hashing import keccak  # noqa: E402
from clearline.journal import SQLiteJournal  # noqa: E402

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

# Payload and signer are a pure function of the seq, so the parent can check every byte.
_CHILD = textwrap.dedent(
    """
    import random, sys
    from clearline.core.hashing import keccak
    from clearline.journal import SQLiteJournal

    def item(seq):
        h = keccak(seq.to_bytes(8, "big"))
        return (h * (1 + seq % 15), h[:20] if seq % 2 else b"")

    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    j = SQLiteJournal(path, synchronous="FULL")
    head = j.head()[0]
    print("start", head, flush=True)
    n = 0
    while True:
        size = rng.choice((1, 10, 100, 500, 1000))
        entries = j.append([item(s) for s in range(head + 1, head + 1 + size)])
        head = entries[-1].seq
        n += 1
        if n % 7 == 0:
            j.save_snapshot(head, b"state-%d" % head, keccak(b"root-%d" % head))
        print(head, flush=True)
    """
)


def _item(seq: int) -> tuple[bytes, bytes]:
    h = keccak(seq.to_bytes(8, "big"))
    return (h * (1 + seq % 15), h[:20] if seq % 2 else b"")


def _run_and_kill(path: Path, seed: int, rng: random.Random) -> tuple[int, int]:
    """Start the writer, kill it at a random moment; return (start head, last acked seq)."""
    pythonpath = os.pathsep.join(filter(None, [str(_ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=pythonpath)
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(seed)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    watchdog = threading.Timer(20.0, proc.kill)  # never hang the suite
    watchdog.start()
    try:
        first = proc.stdout.readline().split()
        assert first and first[0] == "start", proc.stderr.read()
        start = int(first[1])
        acked = start
        for _ in range(rng.randint(2, 25)):
            line = proc.stdout.readline()
            assert line, f"writer died early: {proc.stderr.read()}"
            acked = int(line)
        time.sleep(rng.uniform(0.0, 0.03))  # land somewhere inside a later append
        proc.send_signal(signal.SIGKILL)
        # lines still in the pipe were acknowledged before the kill: they count too
        for line in proc.stdout:
            acked = int(line)
        proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:  # pragma: no cover
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return start, acked


def test_sigkill_never_loses_acknowledged_entries(tmp_path):
    path = tmp_path / "crash.sqlite"
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    deadline = time.monotonic() + 6.0
    rounds = 0
    prev_head = 0
    while rounds < 3 or (rounds < 8 and time.monotonic() < deadline):
        start, acked = _run_and_kill(path, seed=rng.randrange(1 << 30), rng=rng)
        rounds += 1
        assert start == prev_head  # the child saw exactly what the last check saw
        with SQLiteJournal(path) as j:  # open itself checks the tail link
            head_seq, head_hash = j.head()
            assert head_seq >= acked, f"round {rounds}: acked {acked} but head is {head_seq}"
            assert j.verify_chain() == (head_seq, head_hash)
            seq = 0
            for e in j.entries():
                seq += 1
                assert e.seq == seq
                assert (e.payload, e.signer) == _item(seq), f"payload of seq {seq}"
            assert seq == head_seq
            snap = j.latest_snapshot()
            if snap is not None:
                assert snap.journal_hash == j.entry(snap.seq).hash
                assert snap.state_blob == b"state-%d" % snap.seq
            assert len(j.snapshot_seqs()) <= 3
        prev_head = head_seq
    assert prev_head > 0
