"""Batcher: replay the journal into a replica state, compute the roots, post L1 batches.

- ``Batcher(journal, client, genesis, txs_per_root=16, max_txs=1000, max_bytes=120_000,
  max_delay_ms=2000, deadline_margin=None, snapshot_every=16)``: ``post_pending(now_ms)``,
  ``flush()``, ``build()`` / ``post(plan)``, ``sync()``, ``finalize_ready()``,
  ``withdrawals(n)`` / ``claims(n, owner)``. Crash and retry safety, the meta rows and the
  posting rules are described in ``clearline.batcher.batcher``.
- ``L1QueueFeeder(client)``: Vault queue items -> ``Deposit`` / ``ForcedWithdrawal`` for the
  sequencer, in queue order (``feed(sequencer, now_ms)``).
- ``records``: the pure derivations (withdrawal records, root positions) that the watchtower
  shares.
- ``harness`` (imported on demand): a whole rollup driven by the simulated market on any
  chain (``make_sim_rollup``), and ``measure_l1`` for the L1 cost and watchtower figures.
"""

from .batcher import Batcher, BatcherError, BatchPlan, Claim, PostResult
from .feeder import FeederError, L1QueueFeeder, queue_item_tx
from .records import root_count, root_tx_index, withdrawal_records

__all__ = [
    "BatchPlan",
    "Batcher",
    "BatcherError",
    "Claim",
    "FeederError",
    "L1QueueFeeder",
    "PostResult",
    "queue_item_tx",
    "root_count",
    "root_tx_index",
    "withdrawal_records",
]
