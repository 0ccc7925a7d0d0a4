"""The witness of a nonce proof (FraudVerifier KIND_NONCES, MarkVerifier.judgeNonces).

Every signed user transaction the core accepts (Order, Cancel, Replace, Withdraw, Transfer,
SetMarginMode, SetAccountFlags) needs a nonce above its account's last one and then sets the
account's nonce to its own. So in a valid batch the nonces of one account's signed
transactions strictly increase in batch order, and a pair that does not -- a signature posted
twice (``replayed_signature``), or a stale one -- shows from the batch data alone that one of
them was rejected, whatever the state and whatever else the chunks hold (orders included).

``nonce_judgement(data, parts, k)`` finds the first such pair among the packed transactions
(the ones the contract reads: a fallback is passed over) and returns the proof's chunk (the later transaction's), both positions and the
ABI-encoded ``NonceWitness`` (the earlier transaction's chunk with every chunk hash of the
batch when it is another chunk).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode as abi_encode

from clearline.core.hashing import keccak

from .batch_chunks import SIGNED_KINDS, DecodedChunks

__all__ = ["NONCE_WITNESS_TYPE", "NonceJudgement", "nonce_judgement"]

NONCE_WITNESS_TYPE = "(uint256,uint256,uint256,bytes32[],bytes)"


@dataclass(frozen=True)
class NonceJudgement:
    chunk: int  # the later transaction's chunk: the one the proof names
    first: tuple[int, int]  # (chunk, index in it) of the earlier transaction
    second: tuple[int, int]
    account: int
    nonces: tuple[int, int]
    detail: str
    witness: bytes


def nonce_judgement(data: bytes, parts: list[tuple[int, int]], k: int,
                    chunks: DecodedChunks | None = None) -> NonceJudgement | None:
    """The first pair of packed signed transactions of one account whose nonces do not
    increase (see the module docstring), or None. ``data``/``parts``: the batch data and its
    chunks (``batch_data_parts``), ``k`` its txsPerRoot; ``chunks``: the same batch already
    decoded (shared with ``records_judgement``). Chunks that do not decode are passed over
    (KIND_CHUNK_DECODE's)."""
    chunks = chunks or DecodedChunks(data, parts, k)
    best: dict[int, tuple[int, int, int]] = {}  # account -> (highest nonce so far, chunk, index)
    for c in range(len(chunks)):
        for j, (packed, tx) in enumerate(chunks.txs(c) or ()):
            if not packed or type(tx) not in SIGNED_KINDS:
                continue
            seen = best.get(tx.account)
            if seen is not None and tx.nonce <= seen[0]:
                nonce1, c1, i = seen
                hashes = [] if c1 == c else [keccak(data[x:y]) for x, y in parts]
                chunk1 = b"" if c1 == c else data[parts[c1][0]:parts[c1][1]]
                witness = abi_encode([NONCE_WITNESS_TYPE], [(c1, i, j, hashes, chunk1)])
                return NonceJudgement(c, (c1, i), (c, j), tx.account, (nonce1, tx.nonce),
                                      f"account {tx.account} signs nonce {nonce1} at transaction {i} of chunk {c1} "
                                      f"and nonce {tx.nonce} at transaction {j} of chunk {c}: one was rejected "
                                      "(nonces of accepted transactions increase)", witness)
            if seen is None or tx.nonce > seen[0]:
                best[tx.account] = (tx.nonce, c, j)
    return None
