"""Cross margin for perpetuals, in integers.

For an account: ``equity = collateral + sum(quote + size * mark * tick_value)`` over its
positions (``quote`` is the position's signed cash balance: -price*size*tick_value summed
over its fills, less what was realised into collateral). Requirements per position:
``ceil(|size| * mark * tick_value * fraction_ppm / 1e6)``, initial (IM) and maintenance (MM),
summed across positions (cross margin). Rounding is against the account.

A fill is allowed if afterwards equity >= IM, or if it only reduces the account's position
in that instrument (no flip), which is allowed even below initial margin.
"""

from __future__ import annotations

from .units import PPM


def position_value(market, size: int) -> int:
    return size * market.mark_price * market.spec.tick_value


def requirement(market, size: int, ppm: int) -> int:
    """Margin requirement of ``size`` lots at mark, rounded up."""
    notional = (size if size >= 0 else -size) * market.mark_price * market.spec.tick_value
    return -((-notional * ppm) // PPM)


def fee(price: int, qty: int, tick_value: int, fee_ppm: int) -> int:
    """Trading fee in usd6, rounded up (charged to the account)."""
    return -((-price * qty * tick_value * fee_ppm) // PPM)


def account_health(markets, account) -> tuple[int, int, int]:
    """(equity, initial requirement, maintenance requirement) in usd6."""
    equity = account.collateral
    im = mm = 0
    for inst, pos in account.positions.items():
        m = markets[inst]
        size = pos.size
        equity += pos.quote + size * m.mark_price * m.spec.tick_value
        if size:
            notional = (size if size > 0 else -size) * m.mark_price * m.spec.tick_value
            im += -((-notional * m.spec.im_ppm) // PPM)
            mm += -((-notional * m.spec.mm_ppm) // PPM)
    return equity, im, mm


def is_reducing(size: int, new_size: int) -> bool:
    return (size > 0 and 0 <= new_size < size) or (size < 0 and size < new_size <= 0)


class MarginGate:
    """FillGate for one instrument within one transaction: tracks planned, not yet
    applied fills per account so successive checks see them."""

    __slots__ = ("accounts", "markets", "market", "inst", "tv", "pending")

    def __init__(self, accounts, markets, instrument: int):
        self.accounts = accounts
        self.markets = markets
        self.market = markets[instrument]
        self.inst = instrument
        self.tv = self.market.spec.tick_value
        self.pending: dict[int, list[int]] = {}  # account -> [dsize, dquote, dfees]

    def check(self, account: int, is_buy: bool, price: int, qty: int, reduce_only: bool, is_maker: bool) -> int:
        acct = self.accounts[account]
        pos = acct.positions.get(self.inst)
        pend = self.pending.get(account)
        size = (pos.size if pos is not None else 0) + (pend[0] if pend else 0)
        if reduce_only:
            reducible = -size if is_buy else size
            if reducible <= 0:
                return 0
            return qty if qty <= reducible else reducible
        new_size = size + qty if is_buy else size - qty
        if is_reducing(size, new_size):
            return qty
        return qty if self._margin_ok(acct, pos, pend, is_buy, price, qty, is_maker) else 0

    def _margin_ok(self, acct, pos, pend, is_buy, price, qty, is_maker) -> bool:
        m = self.market
        spec = m.spec
        tv = self.tv
        d = qty if is_buy else -qty
        fee_ppm = spec.maker_fee_ppm if is_maker else spec.taker_fee_ppm
        this_fee = -((-price * qty * tv * fee_ppm) // PPM)
        equity = acct.collateral - this_fee
        im = 0
        inst = self.inst
        markets = self.markets
        for i, p in acct.positions.items():
            if i == inst:
                continue
            mk = markets[i]
            size = p.size
            equity += p.quote + size * mk.mark_price * mk.spec.tick_value
            if size:
                im += -((-(size if size > 0 else -size) * mk.mark_price * mk.spec.tick_value * mk.spec.im_ppm) // PPM)
        size = pos.size if pos is not None else 0
        quote = pos.quote if pos is not None else 0
        if pend:
            size += pend[0]
            quote += pend[1]
            equity -= pend[2]
        size += d
        quote -= d * price * tv
        mark = m.mark_price
        equity += quote + size * mark * tv
        im += -((-(size if size > 0 else -size) * mark * tv * spec.im_ppm) // PPM)
        return equity >= im

    def commit(self, account: int, is_buy: bool, price: int, qty: int, is_maker: bool) -> None:
        spec = self.market.spec
        tv = self.tv
        d = qty if is_buy else -qty
        fee_ppm = spec.maker_fee_ppm if is_maker else spec.taker_fee_ppm
        pend = self.pending.get(account)
        if pend is None:
            pend = self.pending[account] = [0, 0, 0]
        pend[0] += d
        pend[1] -= d * price * tv
        pend[2] += -((-price * qty * tv * fee_ppm) // PPM)
