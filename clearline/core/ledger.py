"""Ledger primitives shared by every transaction handler: moving positions and cash,
charging fees, closing orders, and the receipt events that record each step.

Invariant kept by every function here: total cash (collateral + position quotes + fee pool
+ insurance fund) changes only by deposits and withdrawals.
"""

from __future__ import annotations

from .book import BUY
from .instruments import InstrumentKind
from .matching import execute_on_book
from .state import Position
from .units import PPM, UNDERLYING_ATOMS

_OPTION = int(InstrumentKind.OPTION)


# -- receipt events -----------------------------------------------------------------------------
class Event:
    __slots__ = ()

    def as_dict(self) -> dict:
        return {"type": type(self).__name__, **{k: getattr(self, k) for k in self.__slots__}}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"


def _event(name: str, fields: str, doc: str):
    names = tuple(fields.split())

    def __init__(self, *args):
        for k, v in zip(names, args, strict=True):
            setattr(self, k, v)

    return type(name, (Event,), {"__slots__": names, "__init__": __init__, "__doc__": doc})


class Fill(Event):
    """A trade at the maker's price; taker_order 0 = liquidation order."""

    __slots__ = ("instrument", "price", "qty", "taker_side", "taker_order", "taker_account", "maker_order",
                 "maker_account", "taker_fee", "maker_fee")

    def __init__(self, instrument, price, qty, taker_side, taker_order, taker_account, maker_order, maker_account,
                 taker_fee, maker_fee):
        self.instrument = instrument
        self.price = price
        self.qty = qty
        self.taker_side = taker_side
        self.taker_order = taker_order
        self.taker_account = taker_account
        self.maker_order = maker_order
        self.maker_account = maker_account
        self.taker_fee = taker_fee
        self.maker_fee = maker_fee


class OrderClosed(Event):
    """An order left the book (or its unrested remainder was dropped)."""

    __slots__ = ("order_id", "account", "instrument", "reason", "unfilled")

    def __init__(self, order_id, account, instrument, reason, unfilled):
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.reason = reason
        self.unfilled = unfilled


class OrderRested(Event):
    """An order rests on the book."""

    __slots__ = ("order_id", "account", "instrument", "side", "price", "remaining")

    def __init__(self, order_id, account, instrument, side, price, remaining):
        self.order_id = order_id
        self.account = account
        self.instrument = instrument
        self.side = side
        self.price = price
        self.remaining = remaining
CollateralMoved = _event("CollateralMoved", "kind from_account to_account amount",
                         "Deposit, withdrawal request or transfer (-1 = outside).")
ForcedWithdrawalDenied = _event("ForcedWithdrawalDenied", "queue_index account owner amount reason",
                                "An L1 forced withdrawal refused by the rule; reason is an ErrorCode.")
FundingSettled = _event("FundingSettled", "instrument rate_ppm mark paid received to_insurance",
                        "Funding of one interval, at its FUNDING_SETTLE: what its FUNDING_PAYs will move "
                        "(payers' total, receivers' total, rounding remainder).")
FundingPaid = _event("FundingPaid", "instrument account amount",
                     "One holder's funding of a settled interval: paid (>0) or received (<0), usd6.")
FundingSampled = _event("FundingSampled", "instrument premium_ppm samples", "A premium index sample.")
MarginModeSet = _event("MarginModeSet", "account mode", "An account switched margin mode.")
AccountFlagsSet = _event("AccountFlagsSet", "account flags", "An account's owner replaced its flags.")
IndexUpdated = _event("IndexUpdated", "underlying outcome index median reports_used liquidations_paused",
                      "Oracle aggregation result for one underlying.")
LiquidationStarted = _event("LiquidationStarted", "account equity maintenance",
                            "An account below maintenance margin is being liquidated.")
LiquidationFill = _event("LiquidationFill", "account instrument qty avg_price bound fee",
                         "Part of a position closed into the book, bounded by the bankruptcy price.")
InsuranceCovered = _event("InsuranceCovered", "account amount fund_after", "The insurance fund covered a deficit.")
Deleveraged = _event("Deleveraged", "account counterparty instrument qty price haircut",
                     "Auto-deleveraging: a position closed against a ranked opposite position.")
LiquidationEnded = _event("LiquidationEnded", "account equity maintenance positions_left",
                          "State of the account after liquidation.")
InstrumentListed = _event("InstrumentListed", "instrument symbol expiry strike option_type", "A new option.")
ExpirySettled = _event("ExpirySettled", "underlying expiry settlement_price instruments",
                       "An option of an expiry settled at the expiry's index TWAP (usd6), at its SETTLE_OPTION.")
Netting = _event("Netting", "account expiry gross net fees",
                 "One position's expiry netting, at its SETTLE_POSITION: gross = |payoff|, net = payoff, fees "
                 "(summed over an account's options of the expiry, the account's netting report).")


# -- positions and cash -------------------------------------------------------------------------
def trade(st, m, acct, d: int, price: int) -> None:
    """Move ``d`` lots (signed) at ``price`` into ``acct``'s position; realise P&L on
    reductions. Total cash (collateral + quote) changes by exactly -d*price*tick_value."""
    inst = m.spec.id
    tv = m.spec.tick_value
    pos = acct.positions.get(inst)
    if pos is None:
        pos = acct.positions[inst] = Position(0, 0, m.funding_index)
        st.holders[inst].add(acct.id)
    s, q = pos.size, pos.quote
    ns = s + d
    cash = -d * price * tv
    if s == 0 or (s > 0) == (d > 0):
        pos.quote = q + cash
    elif (s > 0 and ns >= 0) or (s < 0 and ns <= 0):
        kept = -((-q * ns) // s)  # basis kept, rounded up so the realised credit rounds down
        acct.collateral += q + cash - kept
        pos.quote = kept
    else:  # flip: close all at price, open the remainder
        acct.collateral += q + s * price * tv
        pos.quote = -ns * price * tv
    pos.size = ns
    m.open_interest += (ns if ns > 0 else 0) - (s if s > 0 else 0)
    if ns == 0:
        acct.collateral += pos.quote  # nothing left to carry a basis
        del acct.positions[inst]
        st.holders[inst].discard(acct.id)
    st.dirty_accounts.add(acct.id)


def fill_fee(st, m, price: int, qty: int, fee_ppm: int) -> int:
    """Fee in usd6 (rounded up). Perpetuals: ppm of the notional. Options: ppm of the
    underlying notional at the index, capped at 1/8 of the premium (rounded down)."""
    premium = price * qty * m.spec.tick_value
    if m.spec.kind != _OPTION:
        return -((-premium * fee_ppm) // PPM)
    index = st.index_of(m)
    if index <= 0:
        return -((-premium * fee_ppm) // PPM)
    u = -((-qty * index * m.spec.lot_size) // UNDERLYING_ATOMS)
    fee = -((-u * fee_ppm) // PPM)
    cap = premium // 8
    return fee if fee < cap else cap


def close_order(st, o, reason: int, events: list) -> None:
    """Remove a resting order from its book and the indexes."""
    unfilled = o.remaining
    st.books[o.instrument].remove(o)
    o.remaining = 0
    st.forget_order(o)
    events.append(OrderClosed(o.order_id, o.account, o.instrument, reason, unfilled))


def cancel_all(st, acct, reason: int, events: list, instrument: int | None = None) -> None:
    for o in [o for o in acct.open_orders.values() if instrument is None or o.instrument == instrument]:
        close_order(st, o, reason, events)


def settle_plan(st, m, taker, side: int, plan, taker_oid: int, events: list, taker_fee_ppm: int | None = None) -> None:
    """Execute a matching plan: book changes, positions, fees, events."""
    is_buy = side == BUY
    spec = m.spec
    t_ppm = spec.taker_fee_ppm if taker_fee_ppm is None else taker_fee_ppm
    closed = execute_on_book(st.books[spec.id], plan)
    for maker, q in plan.fills:
        p = maker.price
        taker_fee = fill_fee(st, m, p, q, t_ppm)
        maker_fee = fill_fee(st, m, p, q, spec.maker_fee_ppm)
        mk_acct = st.accounts[maker.account]
        trade(st, m, mk_acct, -q if is_buy else q, p)
        trade(st, m, taker, q if is_buy else -q, p)
        mk_acct.collateral -= maker_fee
        taker.collateral -= taker_fee
        st.fee_pool += taker_fee + maker_fee
        if maker.remaining:
            st.dirty_orders[maker.order_id] = maker
        events.append(Fill(spec.id, p, q, side, taker_oid, taker.id, maker.order_id, maker.account,
                           taker_fee, maker_fee))
    if plan.fills:
        st.dirty_markets.add(spec.id)
    for o, reason in closed:
        unfilled = o.remaining
        o.remaining = 0
        st.forget_order(o)
        events.append(OrderClosed(o.order_id, o.account, o.instrument, reason, unfilled))
