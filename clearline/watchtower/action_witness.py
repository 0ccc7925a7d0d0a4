"""The witness of an OperatorAction proof (FraudVerifier KIND_OPERATOR_ACTION, MarkVerifier.judgeAction).

``action_judgement(state, tx)`` returns the verdict the MarkVerifier gives on the
OperatorAction ``tx`` at the pre-state ``state`` (left untouched) with a human detail and the
ABI-encoded ``ActionWitness``: the pre-state's root preimage, the consensus parameters and
one leaf with its compressed proof -- the target's account leaf (accounts tree) for
CANCEL_ALL_ORDERS, the target's underlying leaf (markets tree, ``UNDERLYING_BASE + target``)
for a SETTLE_EXPIRY of a configured underlying, the target's market leaf (``b""`` for an
empty slot) for FUNDING_SETTLE and FUNDING_PAY, ``b""`` otherwise -- and, for FUNDING_PAY,
account ``arg``'s leaf with its proof.

The verdict is 31 when the core (``clearline.core.apply._operator_action``) rejects ``tx``
for a reason these inputs show, and 0 otherwise -- also when the core rejects it for a
reason they do not show (CANCEL_ALL_ORDERS of an account without open orders, nothing due,
the listing rule, a LIQUIDATE of a healthy account: KIND_COLLATERAL_ROOT's). The rules,
in the contract's words:

1. any action: time before the pre-state's; not signed by the operator (EIP-712, low s);
   a signed timestamp of 0 or after the time; an action not in 1..6;
2. CANCEL_ALL_ORDERS: an unknown account, a trigger not 1 or 2, an account whose flags lack
   OPERATOR_MAY_CANCEL;
3. SETTLE_EXPIRY: an unconfigured underlying, an expiry not among its windows, a time before
   the expiry;
4. LIST_OPTIONS: an unconfigured underlying;
5. FUNDING_SETTLE, FUNDING_PAY: re-executed from the target's market leaf (and FUNDING_PAY's
   account leaf) by the FundingVerifier, so the verdict is 31 when the core rejects it, 30
   when the committed post-root is not the result, else 0 (``funding_judgement``).
"""

from __future__ import annotations

from copy import copy
from dataclasses import dataclass

from eth_abi import encode as abi_encode

from clearline.core import eip712
from clearline.core.errors import Rejected
from clearline.core.state import UNDERLYING_BASE, State
from clearline.core.txs import AccountFlag, CancelTrigger, OperatorAction, OperatorActionKind
from clearline.l1.formats import STATE_ABI, compress_proof
from clearline.l1.params import CONSENSUS_PARAMS_ABI, consensus_params

__all__ = ["ACTION_WITNESS_TYPE", "ActionJudgement", "action_judgement", "funding_judgement"]

_STATE = STATE_ABI
ACTION_WITNESS_TYPE = f"({_STATE},{CONSENSUS_PARAMS_ABI},bytes,uint256,bytes32[],bytes,uint256,bytes32[])"

_A = OperatorActionKind


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
    ``post_root`` is the committed root after it (read for FUNDING_SETTLE and FUNDING_PAY,
    which are re-executed: ``funding_judgement``)."""
    from clearline.watchtower.fraud import state_tuple

    state.root()
    pre = state_tuple(state)
    params = consensus_params(state.genesis)
    action, target, arg = tx.action, tx.target, tx.arg
    leaf, present, siblings = b"", 0, []
    account, account_present, account_siblings = b"", 0, []
    configured = target in state.underlyings
    if action == _A.CANCEL_ALL_ORDERS and 0 <= target < len(state.accounts):
        leaf = state.account_leaf(state.accounts[target])
        present, siblings = compress_proof(state.accounts_tree.proof(target))
    elif action == _A.SETTLE_EXPIRY and configured:
        leaf = State.underlying_leaf(state.underlyings[target])
        present, siblings = compress_proof(state.markets_tree.proof(UNDERLYING_BASE + target))
    elif action in (_A.FUNDING_SETTLE, _A.FUNDING_PAY) and 0 <= target < UNDERLYING_BASE:
        m = state.markets.get(target)
        leaf = State.market_leaf(m) if m is not None else b""
        present, siblings = compress_proof(state.markets_tree.proof(target))
        if action == _A.FUNDING_PAY and 0 <= arg < len(state.accounts):
            account = state.account_leaf(state.accounts[arg])
            account_present, account_siblings = compress_proof(state.accounts_tree.proof(arg))
    witness = abi_encode([ACTION_WITNESS_TYPE], [(pre, params, leaf, present, siblings, account, account_present,
                                                 account_siblings)])

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
    if action in (_A.FUNDING_SETTLE, _A.FUNDING_PAY):
        reason, detail = funding_judgement(state, tx, post_root)
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
    if action in (_A.SETTLE_EXPIRY, _A.LIST_OPTIONS):
        if not configured:
            return verdict(31, f"{name} of unconfigured underlying {target}")
        if action == _A.SETTLE_EXPIRY:
            u = state.underlyings[target]
            if arg not in u.windows:
                return verdict(31, f"SETTLE_EXPIRY of expiry {arg}, which underlying {target} does not hold")
            if tx.time_ms < arg:
                return verdict(31, f"SETTLE_EXPIRY of expiry {arg} at {tx.time_ms}, before it")
    return verdict(0, "not provably rejected")


def funding_judgement(state: State, tx: OperatorAction, post_root: bytes | None) -> tuple[int, str]:
    """The FundingVerifier's verdict on a FUNDING_SETTLE or FUNDING_PAY (signed by the
    operator, in time) at ``state``: the core's own re-execution on a copy, except that a
    FUNDING_SETTLE is judged as if no *other* market were being paid (that rule is
    KIND_FUNDING_PENDING's: the contract sees one market leaf). 31 if rejected, else 30 when
    the result is not ``post_root`` (None: not compared), else 0."""
    from clearline.core.apply import apply

    after = State.from_blob(state.to_blob())
    if tx.action == _A.FUNDING_SETTLE:
        after.funding_paying &= {tx.target}
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
