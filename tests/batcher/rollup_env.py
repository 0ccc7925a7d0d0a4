"""The batcher and watchtower tests drive a whole rollup with ``clearline.batcher.harness``
(real contracts on a real EVM, real signatures, deposits through the Vault; no mocks)."""

from clearline.batcher.harness import SimRollup as Rollup
from clearline.batcher.harness import make_sim_rollup as make_rollup

__all__ = ["Rollup", "make_rollup"]
