"""One batch's chunks decoded once, for the proofs judged from the batch data alone
(``record_witness``: the withdrawal records; ``nonce_witness``: nonces that do not increase;
``fraud.signature_fault``: signers and nonces against the pre-state).

``DecodedChunks(data, parts, k).txs(c)`` is chunk ``c``'s transactions, each with whether it is
packed (the verifier reads packed transactions only; a fallback is never judged), or None when
the chunk does not decode under the verifier's strict rules (KIND_CHUNK_DECODE's business).
Decoded on demand and kept, so ``fraud.build_proof`` decodes each chunk once for both kinds.
"""

from __future__ import annotations

from clearline.core.txs import Cancel, Order, Replace, SetAccountFlags, SetMarginMode, Transfer, Withdraw
from clearline.l1.batch_v2 import FALLBACK, BatchFormatError
from clearline.l1.batch_v3 import decode_chunk_v3

__all__ = ["SIGNED_KINDS", "DecodedChunks"]

# the user-signed kinds, each with an account and a nonce (what KIND_NONCES and KIND_SIGNATURE judge)
SIGNED_KINDS = (Order, Cancel, Replace, Withdraw, Transfer, SetMarginMode, SetAccountFlags)


class DecodedChunks:
    def __init__(self, data: bytes, parts: list[tuple[int, int]], k: int):
        self.data, self.parts, self.k = data, parts, k
        self._cache: dict[int, list | None] = {}

    def __len__(self) -> int:
        return len(self.parts)

    def txs(self, c: int) -> list | None:
        """``[(packed, tx)]`` of chunk ``c``, or None when it does not decode."""
        if c not in self._cache:
            from .fraud import decode_chunk_reason, walk_chunk  # fraud imports the witness modules

            a, e = self.parts[c]
            chunk = self.data[a:e]
            bad, _, _, _, count = decode_chunk_reason(chunk, self.k)
            out = None
            if not bad:
                try:
                    txs = decode_chunk_v3(self.data, a, e, self.k)
                except BatchFormatError:
                    txs = None
                if txs is not None and len(txs) == count:
                    out = [(chunk[walk_chunk(chunk, count, j)[2]] != FALLBACK, tx) for j, tx in enumerate(txs)]
            self._cache[c] = out
        return self._cache[c]
