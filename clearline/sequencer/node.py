"""The sequencer: the imperative shell around the pure core.

Intake: verify signatures in parallel -> stamp time -> apply in arrival order -> append the
accepted inputs to the journal in one group commit -> acknowledge. Nothing is acknowledged
before it is durable; a crash loses only unacknowledged inputs, and recovery (snapshot +
journal replay) rebuilds the exact state. Rejected inputs change nothing and are not
journaled. Time is passed in by the caller (the node's clock lives outside the core).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.apply import Receipt, apply
from ..core.encoding import encode_tx
from ..core.errors import InvariantBroken, Rejected
from ..core.state import Genesis
from ..journal import Journal
from .recovery import recover_state
from .verify import Verifier


@dataclass(slots=True)
class Ack:
    """Answer to one input: ``seq`` is its journal sequence number (0 if rejected)."""

    seq: int
    receipt: Receipt


class Sequencer:
    def __init__(self, journal: Journal, genesis: Genesis | None = None, *, workers: int = 2,
                 snapshot_every: int = 50_000, check_invariants: bool = False):
        self.journal = journal
        self.state, self.seq = recover_state(journal, genesis)
        self.verifier = Verifier(self.state.domain, workers=workers)
        self.snapshot_every = snapshot_every
        self.since_snapshot = 0
        self.check_invariants = check_invariants
        self.listeners: list = []  # callables (seq, tx, receipt) for events / API streams

    # -- intake ---------------------------------------------------------------------
    def submit(self, payloads: list[bytes], now_ms: int) -> list[Ack]:
        """Verify, order, apply and journal a batch of signed user inputs (ABI-encoded txs)."""
        return self.submit_verified(self.verifier.verify(payloads), now_ms)

    def submit_stream(self, batches, now_ms: int):
        """Pipelined intake for a stream of batches: the verifier threads work on later
        batches while this thread applies and journals earlier ones. Yields ack lists."""
        for verified in self.verifier.verify_stream(batches):
            yield self.submit_verified(verified, now_ms)

    def submit_txs(self, txs: list, now_ms: int) -> list[Ack]:
        """Inputs already verified or not needing it: L1 deposits, locally signed operator txs."""
        return self.submit_verified(txs, now_ms)

    def submit_verified(self, items: list, now_ms: int) -> list[Ack]:
        state = self.state
        acks: list[Ack] = []
        to_journal: list[tuple[bytes, bytes]] = []
        accepted: list = []
        t = now_ms if now_ms > state.time_ms else state.time_ms
        for tx in items:
            if isinstance(tx, Rejected):
                acks.append(Ack(0, Receipt(False, tx.code, tx.message)))
                continue
            tx.time_ms = t
            receipt = apply(state, tx)
            if receipt.ok:
                to_journal.append((encode_tx(tx), getattr(tx, "signer", None) or b""))
                accepted.append((len(acks), tx))
            acks.append(Ack(0, receipt))
        if to_journal:
            entries = self.journal.append(to_journal)  # durable before any ack leaves
            for (i, tx), entry in zip(accepted, entries):
                acks[i].seq = entry.seq
            self.seq = entries[-1].seq
            if self.check_invariants:
                state.check_invariants()
            for listener in self.listeners:
                for i, tx in accepted:
                    listener(acks[i].seq, tx, acks[i].receipt)
            self.since_snapshot += len(entries)
            if self.since_snapshot >= self.snapshot_every:
                self.snapshot()
        return acks

    # -- durability -------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Persist a snapshot at the current journal head; returns its state root."""
        root = self.state.root()
        self.journal.save_snapshot(self.seq, self.state.to_blob(), root)
        self.since_snapshot = 0
        return root

    def root(self) -> bytes:
        return self.state.root()

    def close(self) -> None:
        self.verifier.close()
        self.journal.close()

    def verify_recovery(self) -> None:
        """Rebuild from the journal and compare roots (a self-check, not a hot path)."""
        rebuilt, seq = recover_state(self.journal)
        if seq != self.seq or rebuilt.root() != self.state.root():
            raise InvariantBroken("recovered state differs from the live state")
