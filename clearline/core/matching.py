"""Matching: walk the opposite side of a book and *plan* fills, then execute the plan.

Planning reads the book and never mutates it, so an order that must be rejected as a
whole (FOK not fillable, post-only crossing) changes nothing. The book talks to balances
only through ``FillGate`` (how much of ``qty`` may this account trade now?), in the
spirit of dYdX v4's separation of the book from collateral checks.

Rules applied while planning, in this order, for each resting order at a crossing price:
1. an expired resting order (``expiry`` set and ``time_ms >= expiry``) is cancelled;
2. a resting order of the same owner triggers self-trade prevention (incoming order's mode);
3. the maker's gate: 0 -> the maker order is cancelled (margin / reduce-only), a smaller
   amount -> partial fill and the rest of the maker order is cancelled (reduce-only cap);
4. the taker's gate: 0 -> matching stops; a smaller amount -> fill it and stop.
Fills happen at the resting order's price.

Bounded work: an order meets at most ``MAX_MAKERS_PER_ORDER`` resting orders (each one filled,
or cancelled by rules 1-3). Matching stops before the next one (``CloseReason.MAKER_LIMIT``)
and the rest of the order is closed, never rested (it could cross the book). Without a bound,
one order sweeping a deep book would be a transition too large to re-execute in one L1 call.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Protocol

from .book import BUY, Book, RestingOrder


class CloseReason(IntEnum):
    """Why an order left the book (or never rested). Stable codes, part of the API."""

    FILLED = 0
    USER_CANCEL = 1
    EXPIRED = 2
    SELF_TRADE = 3
    INSUFFICIENT_MARGIN = 4
    REDUCE_ONLY = 5
    IOC_REMAINDER = 6
    REPLACED = 7
    NO_LIQUIDITY = 8
    LIQUIDATION = 9
    SETTLED = 10
    OPERATOR_CANCEL = 11  # cancel-on-disconnect / dead-man switch of an opted-in account
    MAKER_LIMIT = 12  # the order met MAX_MAKERS_PER_ORDER resting orders: its rest is closed


MAX_MAKERS_PER_ORDER = 16


class FillGate(Protocol):
    """The narrow interface from the book to the margin side."""

    def check(self, account: int, is_buy: bool, price: int, qty: int, reduce_only: bool, is_maker: bool) -> int:
        """How many of ``qty`` lots (0..qty) ``account`` may trade now, given fills
        already committed to this gate."""

    def commit(self, account: int, is_buy: bool, price: int, qty: int, is_maker: bool) -> None:
        """Record a planned fill so later checks in the same match see it."""


class AdmitAll:
    """A gate that admits everything: for benchmarking the book alone."""

    __slots__ = ()

    def check(self, account, is_buy, price, qty, reduce_only, is_maker):
        return qty

    def commit(self, account, is_buy, price, qty, is_maker):
        pass


class Plan:
    __slots__ = ("fills", "cancels", "filled", "stop")

    def __init__(self):
        self.fills: list[tuple[RestingOrder, int]] = []  # (maker, lots) at maker.price
        self.cancels: list[tuple[RestingOrder, int]] = []  # (resting order, CloseReason)
        self.filled = 0
        self.stop = 0  # CloseReason that ended matching early, 0 if none


_REDUCE_ONLY = 2
_CANCEL_RESTING = 0
_CANCEL_BOTH = 2


def plan_match(book: Book, side: int, limit: int, qty: int, account: int, owner: bytes, stp: int,
               reduce_only: bool, time_ms: int, gate: FillGate, max_makers: int = MAX_MAKERS_PER_ORDER) -> Plan:
    """The fills and cancels of an order against ``book`` (read only). ``max_makers`` < the
    bound plans a prefix of the meetings: with 1, the one meeting an order step re-executes on L1
    (``clearline.watchtower.match_witness``); a plan stopped by it has ``stop == MAKER_LIMIT``."""
    plan = Plan()
    fills = plan.fills
    cancels = plan.cancels
    remaining = qty
    is_buy = side == BUY
    check = gate.check
    commit = gate.commit
    met = 0
    for price, level in book.opposite_levels(side):
        if (price > limit) if is_buy else (price < limit):
            break
        for o in level.values():
            if met == max_makers:
                plan.stop = CloseReason.MAKER_LIMIT
                break
            met += 1
            exp = o.expiry
            if exp and time_ms >= exp:
                cancels.append((o, CloseReason.EXPIRED))
                continue
            if o.owner == owner:
                if stp == _CANCEL_RESTING:
                    cancels.append((o, CloseReason.SELF_TRADE))
                    continue
                if stp == _CANCEL_BOTH:
                    cancels.append((o, CloseReason.SELF_TRADE))
                plan.stop = CloseReason.SELF_TRADE
                break
            want = o.remaining if o.remaining < remaining else remaining
            maker_ro = bool(o.flags & _REDUCE_ONLY)
            mq = check(o.account, not is_buy, price, want, maker_ro, True)
            if mq <= 0:
                cancels.append((o, CloseReason.REDUCE_ONLY if maker_ro else CloseReason.INSUFFICIENT_MARGIN))
                continue
            tq = check(account, is_buy, price, mq, reduce_only, False)
            if tq <= 0:
                plan.stop = CloseReason.REDUCE_ONLY if reduce_only else CloseReason.INSUFFICIENT_MARGIN
                break
            if tq < mq and check(o.account, not is_buy, price, tq, maker_ro, True) < tq:
                plan.stop = CloseReason.INSUFFICIENT_MARGIN
                break
            commit(o.account, not is_buy, price, tq, True)
            commit(account, is_buy, price, tq, False)
            fills.append((o, tq))
            remaining -= tq
            if mq < want and tq == mq:
                cancels.append((o, CloseReason.REDUCE_ONLY))  # maker's reduce-only cap reached
            if tq < mq:
                plan.stop = CloseReason.REDUCE_ONLY if reduce_only else CloseReason.INSUFFICIENT_MARGIN
                break
            if remaining == 0:
                break
        if remaining == 0 or plan.stop:
            break
    plan.filled = qty - remaining
    return plan


def execute_on_book(book: Book, plan: Plan) -> list[tuple[RestingOrder, int]]:
    """Apply a plan to the book. Returns the orders that left it, with the reason.

    A cancelled order keeps its ``remaining`` (the unfilled lots, for its OrderClosed
    event); the caller zeroes it when it forgets the order."""
    closed = []
    for o, q in plan.fills:
        o.remaining -= q
        if o.remaining == 0:
            book.remove(o)
            closed.append((o, CloseReason.FILLED))
    for o, reason in plan.cancels:
        if o.remaining > 0:
            book.remove(o)
            closed.append((o, reason))
    return closed
