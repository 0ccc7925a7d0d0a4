"""Cross margin, in integers: equity, requirements, and the fill gate the book asks.

``equity = collateral + sum(quote + size * mark * tick_value)`` over the account's positions
(``quote`` is the position's signed cash balance). Requirements come from
``requirements.py``: standard mode sums per-position requirements, portfolio mode takes the
worst risk-array scenario plus add-ons. Rounding is against the account.

A fill is allowed if afterwards equity >= initial requirement, or if it only reduces the
account's position in that instrument (no flip), which is allowed even below initial margin
as long as it trades no worse than the mark or leaves equity non-negative (so a reduction
at an absurd price cannot hand an insolvent account's value to the other side).
A fill that would open a position beyond ``MAX_POSITIONS`` is never allowed (makers may
have rested orders in more instruments while they held fewer positions).
"""

from __future__ import annotations

from .instruments import InstrumentKind
from .ledger import fill_fee
from .requirements import portfolio_requirements, standard_requirements
from .state import MAX_POSITIONS
from .units import PPM

_PERP = int(InstrumentKind.PERPETUAL)


def requirement(market, size: int, ppm: int) -> int:
    """Perpetual requirement of ``size`` lots at mark for a fraction ``ppm``, rounded up."""
    notional = (size if size >= 0 else -size) * market.mark_price * market.spec.tick_value
    return -((-notional * ppm) // PPM)


def fee(price: int, qty: int, tick_value: int, fee_ppm: int) -> int:
    """Perpetual trading fee in usd6, rounded up (charged to the account)."""
    return -((-price * qty * tick_value * fee_ppm) // PPM)


def health(st, acct, inst: int = -1, size: int = 0, quote: int = 0, fee: int = 0) -> tuple[int, int, int]:
    """(equity, initial, maintenance) usd6; if ``inst`` >= 0, as if the account's position in
    ``inst`` were (``size``, ``quote``) and it had paid ``fee`` more."""
    markets = st.markets
    equity = acct.collateral - fee
    im = mm = 0
    seen = inst < 0
    if acct.margin_mode == 0:
        for i, p in acct.positions.items():
            if i == inst:
                s, q = size, quote
                seen = True
            else:
                s, q = p.size, p.quote
            m = markets[i]
            spec = m.spec
            mark = m.mark_price
            equity += q + s * mark * spec.tick_value
            if s:
                if spec.kind == _PERP:
                    notional = (s if s > 0 else -s) * mark * spec.tick_value
                    im += -((-notional * spec.im_ppm) // PPM)
                    mm += -((-notional * spec.mm_ppm) // PPM)
                else:
                    a, b = standard_requirements(spec, s, mark, st.index_of(m))
                    im += a
                    mm += b
        if not seen and size:
            m = markets[inst]
            equity += quote + size * m.mark_price * m.spec.tick_value
            a, b = standard_requirements(m.spec, size, m.mark_price, st.index_of(m))
            im += a
            mm += b
        return equity, im, mm
    entries = []
    for i, p in acct.positions.items():
        if i == inst:
            s, q = size, quote
            seen = True
        else:
            s, q = p.size, p.quote
        m = markets[i]
        equity += q + s * m.mark_price * m.spec.tick_value
        entries.append((m.spec, s, m.mark_price, m.risk_array, st.index_of(m)))
    if not seen and size:
        m = markets[inst]
        equity += quote + size * m.mark_price * m.spec.tick_value
        entries.append((m.spec, size, m.mark_price, m.risk_array, st.index_of(m)))
    r = portfolio_requirements(entries)
    return equity, r.initial, r.maintenance


def account_health(st, acct) -> tuple[int, int, int]:
    """(equity, initial requirement, maintenance requirement) in usd6."""
    return health(st, acct)


def is_reducing(size: int, new_size: int) -> bool:
    return (size > 0 and 0 <= new_size < size) or (size < 0 and size < new_size <= 0)


class MarginGate:
    """FillGate for one instrument within one transaction: tracks planned, not yet applied
    fills per account so successive checks see them. ``exempt`` names an account whose
    fills are not margin-checked (the account being liquidated: its fills only reduce)."""

    __slots__ = ("st", "market", "inst", "tv", "pending", "exempt")

    def __init__(self, st, instrument: int, exempt: int = -1):
        self.st = st
        self.market = st.markets[instrument]
        self.inst = instrument
        self.tv = self.market.spec.tick_value
        self.pending: dict[int, list[int]] = {}  # account -> [dsize, dquote, dfees]
        self.exempt = exempt

    def check(self, account: int, is_buy: bool, price: int, qty: int, reduce_only: bool, is_maker: bool) -> int:
        acct = self.st.accounts[account]
        pos = acct.positions.get(self.inst)
        pend = self.pending.get(account)
        if pos is None and pend is None and len(acct.positions) >= MAX_POSITIONS:
            return 0  # a new position beyond the per-account limit (orders rested while flat)
        size = (pos.size if pos is not None else 0) + (pend[0] if pend else 0)
        if reduce_only:
            reducible = -size if is_buy else size
            if reducible <= 0:
                return 0
            return qty if qty <= reducible else reducible
        new_size = size + qty if is_buy else size - qty
        if account == self.exempt:
            return qty
        reducing = is_reducing(size, new_size)
        mark = self.market.mark_price
        if reducing and ((price <= mark) if is_buy else (price >= mark)):
            return qty  # reduces risk at a price no worse than the mark
        spec = self.market.spec
        quote = (pos.quote if pos is not None else 0) + (pend[1] if pend else 0)
        d = qty if is_buy else -qty
        fee = fill_fee(self.st, self.market, price, qty, spec.maker_fee_ppm if is_maker else spec.taker_fee_ppm)
        equity, im, _ = health(self.st, acct, self.inst, new_size, quote - d * price * self.tv,
                               fee + (pend[2] if pend else 0))
        if reducing:  # below initial margin a reduction is fine, but not one that bankrupts the account
            return qty if equity >= 0 else 0
        return qty if equity >= im else 0

    def commit(self, account: int, is_buy: bool, price: int, qty: int, is_maker: bool) -> None:
        spec = self.market.spec
        d = qty if is_buy else -qty
        fee = fill_fee(self.st, self.market, price, qty, spec.maker_fee_ppm if is_maker else spec.taker_fee_ppm)
        pend = self.pending.get(account)
        if pend is None:
            pend = self.pending[account] = [0, 0, 0]
        pend[0] += d
        pend[1] -= d * price * self.tv
        pend[2] += fee
