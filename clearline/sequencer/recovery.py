"""Rebuild state from a journal: latest snapshot (root checked) plus replay of the tail.

Replay is the same ``core.apply`` the sequencer runs; the journal holds only accepted
transactions, so any rejection during replay means the journal and the code disagree,
and the node must not start.
"""

from __future__ import annotations

from typing import Callable, Iterable

from ..core.apply import apply
from ..core.encoding import decode_tx
from ..core.errors import InvariantBroken
from ..core.txs import MatchStep
from ..core.state import Genesis, State
from ..journal import Journal

GENESIS_KEY = "genesis"


def replay(state: State, entries: Iterable, on_tx: Callable | None = None, on_step: Callable | None = None,
           stepwise: bool = False) -> int:
    """Apply journal entries in order. ``on_tx(entry, tx, receipt)`` after each. Returns count.
    ``stepwise``: orders matched one resting order at a time, as L1 batch data re-executes
    them (``clearline.core.order_steps``), each ``MatchStep`` after its order's ``on_tx``,
    followed by ``on_step(receipt)``; the state after an entry is the same either way."""
    n = 0
    for entry in entries:
        tx = decode_tx(entry.payload)
        if entry.signer:
            tx.signer = entry.signer
        receipt = apply(state, tx, None, stepwise)
        if not receipt.ok:
            raise InvariantBroken(f"journal entry {entry.seq} was accepted once but now fails: {receipt}")
        if on_tx is not None:
            on_tx(entry, tx, receipt)
        while state.pending is not None:
            receipt = apply(state, MatchStep(state.time_ms))
            if not receipt.ok:
                raise InvariantBroken(f"a matching step of journal entry {entry.seq} fails: {receipt}")
            if on_step is not None:
                on_step(receipt)
        n += 1
    return n


def load_genesis(journal: Journal, genesis: Genesis | None) -> Genesis:
    stored = journal.get_meta(GENESIS_KEY)
    if stored is None:
        if genesis is None:
            raise ValueError("empty journal and no genesis given")
        journal.set_meta(GENESIS_KEY, genesis.to_json())
        return genesis
    stored_genesis = Genesis.from_json(stored)
    if genesis is not None and genesis.to_json() != stored:
        raise ValueError("the journal was started from a different genesis")
    return stored_genesis


def recover_state(journal: Journal, genesis: Genesis | None = None, use_snapshot: bool = True) -> tuple[State, int]:
    """State after every journal entry. Returns (state, last applied seq)."""
    g = load_genesis(journal, genesis)
    snap = journal.latest_snapshot() if use_snapshot else None
    if snap is not None:
        state = State.from_blob(snap.state_blob)
        if state.root() != snap.state_root:
            raise InvariantBroken(f"snapshot at seq {snap.seq} does not reproduce its root")
        start = snap.seq
    else:
        state = State(g)
        start = 0
    n = replay(state, journal.entries(start + 1))
    return state, start + n
