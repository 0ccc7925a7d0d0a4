"""The witness of an order-rule proof (FraudVerifier KIND_ORDER, ChunkDecoder.judgeOrder).

The core rejects an Order for reasons its own fields and its market's leaf show
(``clearline.core.apply._place`` and ``_validate_order_shape``): an unknown instrument; a market
not ACTIVE, expired at the order's time (an option awaiting settlement: trading it against stale
resting orders would be a free option) or without a mark price; self-trade prevention mode 3; a
zero price or size; a market order that is not IOC or FOK; a post-only order that cannot rest; a
GTT order without an expiry; an expiry at or before the order's time. None of these can change
inside a chunk of orders (operator transactions and MarkUpdates are alone in their chunks), so
the market leaf at the chunk's pre-state decides, and one leaf proof shows it on L1.

``order_fault(state, txs)`` finds the first packed Order of a chunk (``[(packed, tx)]``, at its
pre-state ``state``) that breaks one, with the rule's name; ``order_witness(state, pre, j,
instrument)`` is the ABI-encoded ``OrderWitness``. The other refusals of an order (client id in
use, open-order and position limits, post-only crossing, reduce-only, margin, FOK) need state the
leaf does not hold and are not judged here.
"""

from __future__ import annotations

from eth_abi import encode as abi_encode

from clearline.core.instruments import MarketStatus
from clearline.core.state import UNDERLYING_BASE, State
from clearline.core.txs import OrderFlag, OrderType, Order, TimeInForce
from clearline.l1.formats import STATE_ABI, compress_proof

__all__ = ["ORDER_WITNESS_TYPE", "order_fault", "order_rule", "order_witness"]

ORDER_WITNESS_TYPE = f"(uint256,{STATE_ABI},bytes,uint256,bytes32[])"
_ACTIVE = int(MarketStatus.ACTIVE)


def order_rule(state: State, tx: Order) -> str | None:
    """The rule of ``judgeOrder`` that ``tx`` breaks at ``state`` (its name), or None."""
    m = state.markets.get(tx.instrument) if tx.instrument < UNDERLYING_BASE else None
    if m is None:
        return "unknown instrument"
    t = tx.time_ms
    if m.status != _ACTIVE:
        return "market not active"
    if m.spec.expiry and t >= m.spec.expiry:
        return "market expired"
    if m.mark_price == 0:
        return "no mark price"
    market = tx.order_type == OrderType.MARKET
    if tx.stp == 3:
        return "self-trade prevention mode 3"
    if tx.price == 0 or tx.size == 0:
        return "zero price or size"
    if market and tx.tif < TimeInForce.IOC:
        return "market order not IOC or FOK"
    if tx.flags & OrderFlag.POST_ONLY and (tx.tif >= TimeInForce.IOC or market):
        return "post-only order that cannot rest"
    if tx.tif == TimeInForce.GTT and tx.expiry == 0:
        return "GTT order without an expiry"
    if tx.expiry and t >= tx.expiry:
        return "expiry not after the order's time"
    return None


def order_fault(state: State, txs: list) -> tuple[int, str] | None:
    """``(index, rule)`` of the first packed Order of a chunk that breaks a rule, or None."""
    for j, (packed, tx) in enumerate(txs):
        if packed and type(tx) is Order:
            rule = order_rule(state, tx)
            if rule is not None:
                return j, rule
    return None


def order_witness(state: State, pre: tuple, j: int, instrument: int) -> bytes:
    """``abi.encode(OrderWitness)``: transaction ``j``, the pre-state, the instrument's market
    leaf ("" when it has none) and its compressed proof against the markets root."""
    state.root()
    leaf, present, siblings = b"", 0, []
    if instrument < UNDERLYING_BASE:
        m = state.markets.get(instrument)
        leaf = State.market_leaf(m) if m is not None else b""
        present, siblings = compress_proof(state.markets_tree.proof(instrument))
    return abi_encode([ORDER_WITNESS_TYPE], [(j, pre, leaf, present, siblings)])
