"""The witness of a MarkUpdate proof (FraudVerifier KIND_MARK_UPDATE, MarkVerifier.sol).

``mark_judgement(state, tx)`` re-executes the MarkUpdate ``tx`` on a copy of ``state`` (the
pre-state of its chunk) as the core does and returns the local verdict with the witness the
MarkVerifier needs: the pre-state's root preimage, the consensus parameters, the pre leaves
of the listed instruments (transaction order, ``b""`` for an unknown one) with a permutation
that sorts them, the pre leaves of every underlying, and one multiproof of all those leaves
against the markets root. The verdict is 31 when the core rejects the transaction and else
the post-root, which the caller compares with the committed one (30 when they differ).
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_abi import encode as abi_encode

from clearline.core.apply import apply, recover_signer
from clearline.core.errors import Rejected
from clearline.core.state import UNDERLYING_BASE, State
from clearline.core.txs import MarkUpdate
from clearline.l1.formats import STATE_ABI
from clearline.l1.params import CONSENSUS_PARAMS_ABI, consensus_params

__all__ = ["MARK_WITNESS_TYPE", "MarkJudgement", "mark_judgement"]

_STATE = STATE_ABI
MARK_WITNESS_TYPE = f"({_STATE},{CONSENSUS_PARAMS_ABI},bytes[],uint256[],bytes[],bytes32[],uint256[])"


@dataclass
class MarkJudgement:
    """``reason`` 31 (the core rejects the MarkUpdate, ``post_root`` None) or 0 with the
    re-executed ``post_root``; ``witness`` the ABI-encoded ``MarkWitness``."""

    reason: int
    post_root: bytes | None
    witness: bytes
    detail: str = ""


def mark_judgement(state: State, tx: MarkUpdate) -> MarkJudgement:
    """The MarkVerifier's verdict inputs for ``tx`` applied to ``state`` (left untouched)."""
    from clearline.watchtower.fraud import state_tuple

    state.root()
    pre = state_tuple(state)
    params = consensus_params(state.genesis)
    ins = list(tx.instruments)
    order = sorted(range(len(ins)), key=lambda k: ins[k])
    markets = [State.market_leaf(state.markets[i]) if i in state.markets else b"" for i in ins]
    underlyings = params[-1]  # ConsensusParams.underlyings, its last field: (id, oracle config)
    unders = [State.underlying_leaf(state.underlyings[uid]) for uid, _ in underlyings]
    indices = [ins[k] for k in order] + [UNDERLYING_BASE + uid for uid, _ in underlyings]
    present, siblings = [], []
    if indices and all(b > a for a, b in zip(indices, indices[1:])) and (not ins or max(ins) < UNDERLYING_BASE):
        present, siblings = state.markets_tree.multiproof(indices)
    witness = abi_encode([MARK_WITNESS_TYPE], [(pre, params, markets, order, unders, siblings, present)])
    after = State.from_blob(state.to_blob())
    if tx.signer is None:
        try:
            recover_signer(after, tx)
        except Rejected as exc:
            return MarkJudgement(31, None, witness, f"the MarkUpdate's signature does not recover: {exc.message}")
    receipt = apply(after, tx)
    if not receipt.ok:
        return MarkJudgement(31, None, witness, f"the core rejects the MarkUpdate: {receipt.message}")
    return MarkJudgement(0, after.root(), witness)
