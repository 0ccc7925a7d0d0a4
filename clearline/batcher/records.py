"""Pure helpers shared by the batcher and the watchtower (no I/O, no clock).

Both replay the same transactions with ``clearline.core.apply`` and must derive the same
commitments from them, so the derivations live in one place:

- ``withdrawal_records(state, receipt, position)``: the withdrawal records a transaction adds
  to its batch's withdrawal tree; ``position`` = (chunk, index in the chunk) of the transaction
  in the batch data (``tx_positions``), which each record carries so that a fraud proof can
  check it against that one transaction (``FraudVerifier`` KIND_WITHDRAWALS). Decision (documented in ``clearline.l1``): every *successful*
  withdrawal, in transaction order, user ``Withdraw`` (``CollateralMoved("withdraw", account,
  -1, amount)``) and *served* L1 forced withdrawals (``CollateralMoved("forced_withdraw",
  account, -1, amount)``) alike. The record pays the account's owner (for a forced
  withdrawal the core serves it only when the L1 requester owns the account, so the two are
  the same address). A denied forced withdrawal (``ForcedWithdrawalDenied``) adds nothing.
- ``root_count(n, txs_per_root)`` / ``root_tx_index``: where a batch's state roots sit in
  the fixed chunks of formats v1 and v2 (after transaction ``min((i + 1) * txsPerRoot, n) -
  1``; one root for an empty batch). Format v3, what the batcher posts, cuts variable chunks:
  its roots follow ``clearline.l1.batch_v3.chunk_sizes`` (one after each chunk).
"""

from __future__ import annotations

from clearline.core.ledger import CollateralMoved
from clearline.l1.formats import WithdrawalRecord

__all__ = ["WITHDRAWAL_KINDS", "root_count", "root_tx_index", "tx_positions", "withdrawal_records"]

WITHDRAWAL_KINDS = frozenset(("withdraw", "forced_withdraw"))


def withdrawal_records(state, receipt, position: tuple[int, int]) -> list[WithdrawalRecord]:
    """Withdrawal records of one applied transaction at ``position`` (chunk, index in the
    chunk) of its batch (empty for almost every transaction)."""
    out = []
    for ev in receipt.events:
        if type(ev) is CollateralMoved and ev.kind in WITHDRAWAL_KINDS:
            account = ev.from_account
            out.append(WithdrawalRecord(account, state.accounts[account].owner, ev.amount, *position))
    return out


def tx_positions(chunk_sizes) -> list[tuple[int, int]]:
    """(chunk, index in the chunk) of each transaction of a batch cut into ``chunk_sizes``."""
    return [(c, i) for c, size in enumerate(chunk_sizes) for i in range(size)]


def root_count(n_txs: int, txs_per_root: int) -> int:
    """Number of state roots a v1 / v2 batch of ``n_txs`` commits: ``max(1, ceil(n / txsPerRoot))``
    (v3: ``max(1, len(batch_v3.chunk_sizes(txs, k)))``)."""
    if txs_per_root <= 0:
        raise ValueError("txs_per_root must be positive")
    return max(1, -(-n_txs // txs_per_root))


def root_tx_index(root_index: int, n_txs: int, txs_per_root: int) -> int:
    """Index (in the batch) of the transaction after which root ``root_index`` is taken
    (-1 for the single root of an empty batch)."""
    return min((root_index + 1) * txs_per_root, n_txs) - 1
