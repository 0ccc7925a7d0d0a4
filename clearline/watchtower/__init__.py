"""Watchtower: rebuild the state from L1 data alone and check every committed root.

- ``verify(rpc_url_or_chain, rollup_address, progress="auto") -> VerifyReport`` (its
  ``mismatch`` names the first commitment L1 data does not reproduce: batch, transaction,
  expected and committed value; ``line()`` says it in one line).
- ``main(argv)``: ``clearline verify --rpc URL --rollup ADDRESS [--json] [--progress ...]``.
- ``l1data.RollupReader``: the genesis config, batch headers and calldata, and queue items,
  read over JSON-RPC.
"""

from .l1data import L1DataError, RollupReader
from .verify import Mismatch, VerifyReport, main, verify

__all__ = ["L1DataError", "Mismatch", "RollupReader", "VerifyReport", "main", "verify"]
