"""The witness of a withdrawal-records proof (FraudVerifier KIND_WITHDRAWALS; the records are
opened by MarkVerifier.judgeRecords).

A batch's withdrawal records are posted with it (``appendBatch``'s ``withdrawals``; the Rollup
computes the header's ``withdrawalsRoot`` from them), each naming the transaction that pays it
(chunk, index in the chunk). In a valid batch every Withdraw is accepted and pays exactly its
record, so most faults in the records show against the batch data alone, without any state.
``records_judgement(data, parts, k, records, domain)`` finds the first one the contract proves,
in the contract's words:

1. mode 1, reason 40: a record names a chunk the batch lacks, or a transaction of its chunk
   that is not there, is not a packed Withdraw or ForcedWithdrawal, or whose account, amount
   or owner (a ForcedWithdrawal's; a Withdraw's EIP-712 signer, low s) differ from the
   record's -- e.g. a record the sequencer added to pay itself;
2. mode 2, reason 41: records i and i + 1 are not in strictly increasing position order (a
   record posted twice, for one);
3. mode 3, reason 42: a packed Withdraw that no record names (its account was debited, and
   nothing pays it on L1).

Records in a chunk that does not decode are left to KIND_CHUNK_DECODE; a record in an empty
batch is KIND_FRAMING's.

With the state around one chunk, ``records_sum_judgement(records, chunk, pre, post)`` finds
what the data alone cannot show: mode 4, reason 43, the records naming the chunk do not sum
to the state's withdrawals over it (``post.totalWithdrawals - pre.totalWithdrawals``; every
accepted Withdraw and served ForcedWithdrawal adds exactly its amount there and pays exactly
one record). So a ForcedWithdrawal the state denies but a record pays, or one the state
serves (debits) that no record pays, is proven once the roots around its chunk are right.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from eth_abi import encode as abi_encode

from clearline.core import eip712
from clearline.core.errors import Rejected
from clearline.core.txs import ForcedWithdrawal, Withdraw
from clearline.l1.formats import STATE_ABI, WITHDRAWALS_DEPTH, WithdrawalRecord, compress_proof, withdrawals_tree

from .batch_chunks import DecodedChunks

__all__ = ["RECORDS_WITNESS_TYPE", "RecordsJudgement", "records_judgement", "records_sum_judgement",
           "records_sum_witness", "records_witness"]

_RECORD = "(uint32,address,uint64,uint32,uint16)"
RECORDS_WITNESS_TYPE = f"(uint256,uint256,(uint256,bool,{_RECORD},uint256,bytes32[])[])"

BAD_RECORD, RECORD_ORDER, MISSING_RECORD, RECORD_SUM = 40, 41, 42, 43


@dataclass(frozen=True)
class RecordsJudgement:
    """What ``judgeRecords`` and the FraudVerifier will say: ``reason`` for a proof against
    chunk ``chunk`` with the ABI-encoded ``RecordsWitness``."""

    reason: int
    mode: int
    chunk: int
    tx_index: int | None  # in the chunk: the transaction judged (None: no transaction is)
    detail: str
    witness: bytes


def _position(r: WithdrawalRecord) -> int:
    return (r.chunk << 16) | r.tx_index


def _pays(packed: bool, tx, r: WithdrawalRecord, domain) -> bool:
    """``FraudVerifier._paysRecord``: the transaction pays exactly record ``r``."""
    if not packed:
        return False
    if type(tx) is ForcedWithdrawal:
        return tx.account == r.account_id and tx.amount == r.amount and bytes(tx.owner) == bytes(r.owner)
    if type(tx) is not Withdraw or tx.account != r.account_id or tx.amount != r.amount:
        return False
    try:
        return eip712.recover_signer(domain, tx) == bytes(r.owner)
    except Rejected:
        return False


def records_witness(records: list[WithdrawalRecord], mode: int, tx_index: int, indices: list[int],
                    states: tuple[tuple, tuple] | None = None) -> bytes:
    """The ABI-encoded ``RecordsWitness``: ``mode``, ``tx_index`` and leaves ``indices`` of the
    tree of ``records`` with their compressed proofs (an index past the records: an empty leaf);
    with ``states`` (mode 4: the EscapeState tuples around the chunk), followed by both."""
    tree = withdrawals_tree(records)
    proofs = []
    for i in indices:
        present, kept = compress_proof(tree.proof(i))
        if i < len(records):
            proofs.append((i, False, records[i].as_abi(), present, kept))
        else:
            proofs.append((i, True, (0, "0x" + "00" * 20, 0, 0, 0), present, kept))
    if states is None:
        return abi_encode([RECORDS_WITNESS_TYPE], [(mode, tx_index, proofs)])
    return abi_encode([RECORDS_WITNESS_TYPE, STATE_ABI, STATE_ABI], [(mode, tx_index, proofs), *states])


_TOTAL_WITHDRAWALS = 10  # EscapeState.totalWithdrawals, in a state tuple


def records_sum_judgement(records: list[WithdrawalRecord], chunk: int, pre: tuple, post: tuple
                          ) -> RecordsJudgement | None:
    """Mode 4 (reason 43) for chunk ``chunk`` of a batch whose posted ``records`` are in order
    (mode 2 first), when the roots around the chunk are ``pre`` and ``post`` (EscapeState
    tuples, ``fraud.state_tuple``): the records naming the chunk do not sum to the state's
    withdrawals over it. None when they do (or the tree is full: no leaf after them to open)."""
    paid = sum(r.amount for r in records if r.chunk == chunk)
    moved = post[_TOTAL_WITHDRAWALS] - pre[_TOTAL_WITHDRAWALS]
    if paid == moved:
        return None
    witness = records_sum_witness(records, chunk, pre, post)
    if witness is None:
        return None
    return RecordsJudgement(RECORD_SUM, 4, chunk, None,
                            f"the withdrawal records naming chunk {chunk} pay {paid}, but the state's "
                            f"withdrawals move by {moved} over it ("
                            + ("paid though not withdrawn, e.g. a forced withdrawal recorded though denied)"
                               if paid > moved else "withdrawn but not paid, e.g. a forced withdrawal served "
                               "without a record)"),
                            witness)


def records_sum_witness(records: list[WithdrawalRecord], chunk: int, pre: tuple, post: tuple) -> bytes | None:
    """Mode 4's witness for chunk ``chunk`` (ordered ``records``): the record before the run
    naming the chunk (if any), the run, the leaf after it; then ``pre`` and ``post``. None
    when the leaf after the run is past a full tree."""
    run = [i for i, r in enumerate(records) if r.chunk == chunk]
    first = run[0] if run else bisect_left([r.chunk for r in records], chunk)
    after = first + len(run)
    if after >= 1 << WITHDRAWALS_DEPTH:
        return None
    indices = ([first - 1] if first else []) + run + [after]
    return records_witness(records, 4, 0, indices, (pre, post))


def records_judgement(data: bytes, parts: list[tuple[int, int]], k: int, records: list[WithdrawalRecord],
                      domain, chunks: DecodedChunks | None = None) -> RecordsJudgement | None:
    """The first provable fault in the batch's posted ``records`` (see the module docstring),
    or None. ``data``/``parts``: the batch data and its chunks (``batch_data_parts``); ``k``
    its txsPerRoot; ``domain``: the Rollup's EIP-712 domain; ``chunks``: the same batch
    already decoded (shared with ``nonce_judgement``)."""
    chunks = chunks or DecodedChunks(data, parts, k)
    n = len(chunks)
    # the chunk a proof not about one transaction carries: any that decodes (the verifier walks it)
    any_chunk = next((c for c in range(n) if chunks.txs(c) is not None), None)
    if any_chunk is None:
        return None  # no chunk decodes (KIND_CHUNK_DECODE's), or none at all (KIND_FRAMING's)
    for i, r in enumerate(records):
        if r.chunk >= n:
            return RecordsJudgement(BAD_RECORD, 1, any_chunk, None, f"withdrawal record {i} names chunk {r.chunk}, "
                                    f"the batch has {n}", records_witness(records, 1, 0, [i]))
        txs = chunks.txs(r.chunk)
        if txs is None:
            continue
        if r.tx_index >= len(txs) or not _pays(*txs[r.tx_index], r, domain):
            what = "no transaction" if r.tx_index >= len(txs) else type(txs[r.tx_index][1]).__name__
            return RecordsJudgement(BAD_RECORD, 1, r.chunk, r.tx_index,
                                    f"withdrawal record {i} ({r.amount} to 0x{bytes(r.owner).hex()} from account "
                                    f"{r.account_id}) names transaction {r.tx_index} of chunk {r.chunk}: {what}, "
                                    "which does not pay it", records_witness(records, 1, 0, [i]))
    positions = [_position(r) for r in records]
    for i in range(len(records) - 1):
        if positions[i] >= positions[i + 1]:
            return RecordsJudgement(RECORD_ORDER, 2, any_chunk, None, f"withdrawal records {i} and {i + 1} name positions out "
                                    f"of order ({records[i].position()} then {records[i + 1].position()})",
                                    records_witness(records, 2, 0, [i, i + 1]))
    for c in range(n):
        txs = chunks.txs(c)
        for j, (packed, tx) in enumerate(txs or ()):
            if not packed or type(tx) is not Withdraw:
                continue
            pos = (c << 16) | j
            i = bisect_left(positions, pos)
            if i < len(positions) and positions[i] == pos:
                continue
            if i >= 1 << WITHDRAWALS_DEPTH:
                continue  # a full tree: no leaf after it to open (not provable)
            indices = [i - 1, i] if i else [0]
            return RecordsJudgement(MISSING_RECORD, 3, c, j, f"the Withdraw of {tx.amount} from account {tx.account} "
                                    f"(transaction {j} of chunk {c}) has no withdrawal record",
                                    records_witness(records, 3, j, indices))
    return None
