"""An incoming order matched one resting order at a time, each step a state of its own.

Why: a fraud proof re-executes the transactions between two committed state roots in one L1
call, and one meeting of an order with the book can cost up to ~1,900,000 gas (two margin
healths at the position limit), so an order meeting up to ``MAX_MAKERS_PER_ORDER`` resting
orders cannot be re-executed in one call. In step mode (``apply(..., stepwise=True)``, what a
replay of L1 batch data uses) an Order or Replace that crosses the book only *opens*: it is
validated exactly as when matched at once, takes its order id, and waits in the orders tree at
that id as a ``PendingTaker`` (its leaf ``encode_pending_order_leaf``). Each ``MatchStep`` then
meets the head of the opposite side once -- ``plan_match(..., max_makers=1)`` with a fresh
``MarginGate`` on the state the earlier steps left, and ``settle_plan`` -- and, when the order
is done, ends it in the same step: filled (its leaf empties), stopped (closed with the stop
reason), the head no longer crossing (a GTC/GTT remainder rests at its id, an IOC one is
closed), or ``MAX_MAKERS_PER_ORDER`` met with the head still crossing (closed,
``MAKER_LIMIT``). Until then nothing but MatchSteps is accepted (``ORDER_MATCHING``).

The final state is the one matching at once leaves (``tests/property/test_order_steps.py``;
``test_stepwise_matching.py`` shows why: a gate reads equity, the same whether a fill is
pending or applied). The node itself matches at once; only roots differ in between.

Pure: integers only, time passed in, no I/O.
"""

from __future__ import annotations

from clearline.core import encoding
from clearline.core.errors import ErrorCode as E
from clearline.core.errors import Rejected
from clearline.core.ledger import OrderClosed, OrderRested, settle_plan
from clearline.core.margin import MarginGate
from clearline.core.matching import MAX_MAKERS_PER_ORDER, CloseReason, plan_match
from clearline.core.state import RestingOrder

__all__ = ["PendingTaker", "match_step", "open_pending"]

_REDUCE_ONLY = 2
_GTT = 1  # TimeInForce: GTC (0) and GTT (1) rest


class PendingTaker:
    """The incoming order between its matching steps: what its leaf commits."""

    __slots__ = ("order_id", "account", "owner", "instrument", "side", "tif", "flags", "stp", "price", "size",
                 "remaining", "expiry", "client_id", "met")

    def __init__(self, order_id: int, account: int, owner: bytes, instrument: int, side: int, tif: int, flags: int,
                 stp: int, price: int, size: int, expiry: int, client_id: int):
        self.order_id = order_id
        self.account = account
        self.owner = owner
        self.instrument = instrument
        self.side = side
        self.tif = tif
        self.flags = flags
        self.stp = stp
        self.price = price  # the limit
        self.size = size
        self.remaining = size
        self.expiry = expiry
        self.client_id = client_id
        self.met = 0  # resting orders met so far (filled or cancelled)

    def leaf(self) -> bytes:
        return encoding.encode_pending_order_leaf(self.order_id, self.account, self.instrument, self.side, self.tif,
                                                  self.flags, self.stp, self.price, self.size, self.remaining,
                                                  self.expiry, self.client_id, self.met)

    def to_list(self) -> list:
        return [self.order_id, self.account, self.instrument, self.side, self.tif, self.flags, self.stp, self.price,
                self.size, self.remaining, self.expiry, self.client_id, self.met]

    @classmethod
    def from_list(cls, st, values: list) -> "PendingTaker":
        oid, account, inst, side, tif, flags, stp, price, size, remaining, expiry, cid, met = values
        p = cls(oid, account, st.accounts[account].owner, inst, side, tif, flags, stp, price, size, expiry, cid)
        p.remaining, p.met = remaining, met
        return p


def open_pending(st, p: PendingTaker) -> None:
    """Park a validated, crossing order at its id to be matched by MatchSteps."""
    st.pending = p
    st.dirty_orders[p.order_id] = p


def match_step(st, time_ms: int) -> list:
    """One meeting of the pending order with the head of the side it meets, and its end when it
    is done. Returns the events. ``Rejected`` (state unchanged) without a pending order or at
    another time than the order's (the time its makers' expiries are judged at)."""
    p = st.pending
    if p is None:
        raise Rejected(E.NO_ORDER_MATCHING, "no order is matching")
    if time_ms != st.time_ms:
        raise Rejected(E.NO_ORDER_MATCHING, f"a match step at {time_ms}, the order's time is {st.time_ms}")
    inst = p.instrument
    acct = st.accounts[p.account]
    book = st.books[inst]
    plan = plan_match(book, p.side, p.price, p.remaining, acct.id, acct.owner, p.stp, bool(p.flags & _REDUCE_ONLY),
                      time_ms, MarginGate(st, inst), max_makers=1)
    events: list = []
    if plan.fills or plan.cancels:
        settle_plan(st, st.markets[inst], acct, p.side, plan, p.order_id, events)
    p.remaining -= plan.filled
    p.met += 1
    stop = 0 if plan.stop == CloseReason.MAKER_LIMIT else plan.stop
    if p.remaining == 0:
        _end(st, p, None, events)
    elif stop:
        _end(st, p, stop, events)
    elif not book.crosses(p.side, p.price):
        if p.tif <= _GTT:
            _end(st, p, 0, events)
        else:
            _end(st, p, CloseReason.IOC_REMAINDER if p.remaining < p.size else CloseReason.NO_LIQUIDITY, events)
    elif p.met == MAX_MAKERS_PER_ORDER:
        _end(st, p, CloseReason.MAKER_LIMIT, events)
    else:
        st.dirty_orders[p.order_id] = p
    return events


def _end(st, p: PendingTaker, reason: int | None, events: list) -> None:
    """End the pending order: filled (``None``), rested (0) or closed with ``reason``."""
    st.pending = None
    if reason is None:
        st.dirty_orders[p.order_id] = None
    elif reason == 0:
        o = RestingOrder(p.order_id, p.account, p.owner, p.instrument, p.side, p.price, p.size, p.remaining, p.tif,
                         p.flags, p.stp, p.expiry, p.client_id)
        st.open_order(o)
        events.append(OrderRested(p.order_id, p.account, p.instrument, p.side, p.price, p.remaining))
    else:
        st.dirty_orders[p.order_id] = None
        events.append(OrderClosed(p.order_id, p.account, p.instrument, reason, p.remaining))
