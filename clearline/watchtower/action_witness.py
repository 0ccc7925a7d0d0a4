"""The witness of an OperatorAction proof (FraudVerifier KIND_OPERATOR_ACTION, MarkVerifier.judgeAction).

``action_judgement(state, tx, post_root)`` returns the verdict the MarkVerifier gives on the
OperatorAction ``tx`` at the pre-state ``state`` (left untouched) with a human detail and the
ABI-encoded ``ActionWitness``: the pre-state's root preimage, the consensus parameters, a
first leaf with its compressed proof -- the target's account leaf for CANCEL_ALL_ORDERS, the
target's market leaf (``b""`` with an absence proof) for FUNDING_SETTLE, FUNDING_PAY,
SETTLE_OPTION and SETTLE_POSITION, the order's leaf at its id (``b""`` with an absence proof
when it is not open) for CLOSE_ORDER -- a second one: account ``arg``'s leaf for FUNDING_PAY
and SETTLE_POSITION, the option's underlying leaf for SETTLE_OPTION (proven in the tree that
already holds the option's new leaf), the order's market leaf for CLOSE_ORDER -- and, for a
CLOSE_ORDER of an order that is not its side's head, a third: the leaf of the order before it
(whose ``next`` it takes), proven in the orders tree with the closed order's leaf emptied.

The verdict, in the contract's words:

1. any action: 31 for a time before the pre-state's, a signer other than the operator
   (EIP-712, low s), a signed timestamp of 0 or after the time, an action not in 1..10;
2. CANCEL_ALL_ORDERS: 31 for an unknown account, a trigger not 1 or 2, an account whose
   flags lack OPERATOR_MAY_CANCEL;
3. LIST_OPTIONS: 31 for an unconfigured underlying; EXPIRE_ORDERS: 31 (retired: the core rejects
   it; CLOSE_ORDER closes one expired order a step);
4. FUNDING_SETTLE, FUNDING_PAY (FundingVerifier), SETTLE_OPTION, SETTLE_POSITION,
   CLOSE_ORDER (ExpiryVerifier): re-executed from their leaves, so 31 when the core rejects
   the step, 30 when the committed post-root is not the result (``step_judgement``);
5. 0 otherwise -- also when the core rejects the action for a reason these inputs do not show
   (CANCEL_ALL_ORDERS of an account without open orders, nothing due, the listing rule, a
   LIQUIDATE of a healthy account: KIND_COLLATERAL_ROOT's).
"""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass

from eth_abi import encode as abi_encode

from clearline.core import eip712
from clearline.core.errors import Rejected
from clearline.core.merkle import EMPTY_LEAF
from clearline.core.state import UNDERLYING_BASE, State
from clearline.core.txs import AccountFlag, CancelTrigger, OperatorAction, OperatorActionKind
from clearline.l1.formats import STATE_ABI, compress_proof
from clearline.l1.params import CONSENSUS_PARAMS_ABI, consensus_params

__all__ = ["ACTION_WITNESS_TYPE", "REEXECUTED_ACTIONS", "ActionJudgement", "action_judgement", "step_judgement"]

_STATE = STATE_ABI
ACTION_WITNESS_TYPE = (f"({_STATE},{CONSENSUS_PARAMS_ABI},bytes,uint256,bytes32[],bytes,uint256,bytes32[],uint256,"
                       "bytes,uint256,bytes32[])")

_A = OperatorActionKind
# the steps re-executed on L1 from their target market's leaf (and a second leaf)
_MARKET_STEPS = (_A.FUNDING_SETTLE, _A.FUNDING_PAY, _A.SETTLE_OPTION, _A.SETTLE_POSITION)
REEXECUTED_ACTIONS = (*_MARKET_STEPS, _A.CLOSE_ORDER)  # whose post-root the verdict judges


@dataclass
class ActionJudgement:
    """``reason`` 31 (the core rejects the OperatorAction provably) or 0; ``witness`` the
    ABI-encoded ``ActionWitness``."""

    reason: int
    detail: str
    witness: bytes


def _signer(state: State, tx: OperatorAction) -> bytes | None:
    """The signer recovered from the signature (as the contract does; ``tx.signer`` is not trusted)."""
    try:
        return eip712.recover_signer(state.domain, tx)
    except Rejected:
        return None


def action_judgement(state: State, tx: OperatorAction, post_root: bytes | None = None) -> ActionJudgement:
    """The MarkVerifier's ``judgeAction`` verdict on ``tx`` at ``state``, and its witness;
    ``post_root`` is the committed root after it (read for the steps that are re-executed:
    ``step_judgement``)."""
    from clearline.watchtower.fraud import state_tuple

    state.root()
    pre = state_tuple(state)
    params = consensus_params(state.genesis)
    action, target, arg = tx.action, tx.target, tx.arg
    leaf, present, siblings = b"", 0, []
    leaf2, present2, siblings2 = b"", 0, []
    leaf3, present3, siblings3 = b"", 0, []
    index = 0
    if action == _A.CANCEL_ALL_ORDERS and 0 <= target < len(state.accounts):
        leaf = state.account_leaf(state.accounts[target])
        present, siblings = compress_proof(state.accounts_tree.proof(target))
    elif action in _MARKET_STEPS and 0 <= target < UNDERLYING_BASE:
        m = state.markets.get(target)
        leaf = State.market_leaf(m) if m is not None else b""
        present, siblings = compress_proof(state.markets_tree.proof(target))
        if action in (_A.FUNDING_PAY, _A.SETTLE_POSITION) and 0 <= arg < len(state.accounts):
            leaf2 = state.account_leaf(state.accounts[arg])
            present2, siblings2 = compress_proof(state.accounts_tree.proof(arg))
        elif action == _A.SETTLE_OPTION and m is not None and m.spec.underlying in state.underlying_by_symbol:
            # the underlying's leaf, proven in the tree that already holds the option's new leaf:
            # its siblings are those of the state after the step (only the two leaves change)
            u = state.underlying_by_symbol[m.spec.underlying]
            leaf2 = State.underlying_leaf(u)
            after = _applied(state, tx)
            present2, siblings2 = compress_proof(after.markets_tree.proof(UNDERLYING_BASE + u.config.id))
    elif action == _A.CLOSE_ORDER and 0 <= target < state.next_order_id:
        index = target
        present, siblings = compress_proof(state.orders_tree.proof(target))
        o = state.orders.get(target)
        if o is not None:
            leaf = State.order_leaf(o)
            leaf2 = State.market_leaf(state.markets[o.instrument])
            present2, siblings2 = compress_proof(state.markets_tree.proof(o.instrument))
            if o.prev is not None:  # not its side's head: the order before it, in the tree without o
                leaf3 = State.order_leaf(o.prev)
                without = state.orders_tree.copy()
                without.set(target, EMPTY_LEAF)
                present3, siblings3 = compress_proof(without.proof(o.prev.order_id))
    witness = abi_encode([ACTION_WITNESS_TYPE], [(pre, params, leaf, present, siblings, leaf2, present2, siblings2,
                                                 index, leaf3, present3, siblings3)])

    def verdict(reason: int, detail: str) -> ActionJudgement:
        return ActionJudgement(reason, detail, witness)

    name = _A(action).name if action in _A._value2member_map_ else f"action {action}"
    if tx.time_ms < state.time_ms:
        return verdict(31, f"{name} at {tx.time_ms} is before the state's time {state.time_ms}")
    signer = _signer(state, tx)
    if signer != state.operator:
        return verdict(31, f"{name} is not signed by the operator"
                       + (f" (signer 0x{signer.hex()})" if signer else " (the signature does not recover)"))
    if not 0 < tx.timestamp <= tx.time_ms:
        return verdict(31, f"{name}'s signed timestamp {tx.timestamp} is 0 or after its time {tx.time_ms}")
    if action not in _A._value2member_map_:
        return verdict(31, f"unknown operator action {action}")
    if action in REEXECUTED_ACTIONS:
        reason, detail = step_judgement(state, tx, post_root)
        return verdict(reason, detail)
    if action == _A.CANCEL_ALL_ORDERS:
        if not 0 <= target < len(state.accounts):
            return verdict(31, f"CANCEL_ALL_ORDERS of unknown account {target}")
        if arg not in (CancelTrigger.DISCONNECT, CancelTrigger.DEAD_MAN):
            return verdict(31, f"CANCEL_ALL_ORDERS with trigger {arg} (1 or 2)")
        if not state.accounts[target].flags & AccountFlag.OPERATOR_MAY_CANCEL:
            return verdict(31, f"CANCEL_ALL_ORDERS of account {target}, which has not allowed the operator to "
                               "cancel its orders")
        return verdict(0, "not provably rejected")
    if action == _A.EXPIRE_ORDERS:
        return verdict(31, "EXPIRE_ORDERS is retired (UNKNOWN_ACTION): CLOSE_ORDER closes one expired order a step")
    if action == _A.LIST_OPTIONS and target not in state.underlyings:
        return verdict(31, f"LIST_OPTIONS of unconfigured underlying {target}")
    return verdict(0, "not provably rejected")


def _applied(state: State, tx: OperatorAction) -> State:
    """A copy of ``state`` after the core applies ``tx`` as the operator's (unchanged if rejected)."""
    from clearline.core.apply import apply

    after = State.from_blob(state.to_blob())
    probe = copy(tx)
    probe.signer = state.operator
    apply(after, probe)
    after.root()
    return after


def step_judgement(state: State, tx: OperatorAction, post_root: bytes | None) -> tuple[int, str]:
    """The FundingVerifier's or ExpiryVerifier's verdict on a step they re-execute (signed by
    the operator, in time) at ``state``: the core's own re-execution on a copy, judged as if no
    *other* market were being paid (that rule is KIND_FUNDING_PENDING's: the contracts see one
    market). 31 if rejected, else 30 when the result is not ``post_root`` (None: not
    compared), else 0."""
    from clearline.core.apply import apply

    after = State.from_blob(state.to_blob())
    after.paying &= {tx.target} if tx.action in _MARKET_STEPS else set()
    probe = copy(tx)
    probe.signer = state.operator
    receipt = apply(after, probe)
    name = _A(tx.action).name
    if not receipt.ok:
        return 31, f"{name}({tx.target}, {tx.arg}) is rejected: {receipt.code.name} ({receipt.message})"
    root = after.root()
    if post_root is not None and root != post_root:
        return 30, (f"re-executing {name}({tx.target}, {tx.arg}) gives post-root 0x{root.hex()}, not the "
                    f"committed 0x{post_root.hex()}")
    return 0, "honest"
