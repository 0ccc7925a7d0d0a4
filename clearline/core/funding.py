"""Perpetual funding: premium sampling, the interval rate, and exact settlement.

Every ``funding_sample_ms`` the premium index of each perpetual is sampled from its book:
``premium = (max(0, impact_bid - index) - max(0, index - impact_ask)) / index`` (ppm,
rounded toward zero), where the impact bid/ask is the average price of selling/buying
``impact_notional`` into the book (a side too thin for that counts as no premium). At the
end of each ``funding_interval_ms`` the rate is
``F = clamp(P + clamp(I - P, -clamp, +clamp), -cap, +cap)`` with ``P`` the average of the
samples and ``I`` the interest component, both per interval.

Settlement is exact and comes in bounded steps (``clearline.core.operator``): FUNDING_SETTLE
moves the market's cumulative ``funding_index`` (1e-12 USD per lot) by ``F * mark *
tick_value``; then one FUNDING_PAY per holder pays ``size * (market index - position index)
/ 1e6`` (payers round up, receivers round down) and brings the position's index level; the
rounding remainder goes to the insurance fund with the last payment, so no value is created or
lost. Nothing else is accepted while an interval is being paid.
"""

from __future__ import annotations

from .book import BUY, SELL, Book
from .units import PPM


def impact_price(book: Book, side: int, notional_usd6: int, tick_value: int) -> int | None:
    """Average price (ticks, rounded against the taker) of taking ``notional_usd6`` from the
    side opposite ``side``; None if the book is too thin."""
    filled_value = 0  # ticks * lots
    filled_lots = 0
    need = notional_usd6
    for price, level in book.opposite_levels(side):
        for o in level.values():
            lot_value = price * tick_value
            take = min(o.remaining, -(-need // lot_value))
            filled_lots += take
            filled_value += take * price
            need -= take * lot_value
            if need <= 0:
                if side == BUY:
                    return -(-filled_value // filled_lots)
                return filled_value // filled_lots
    return None


def premium_ppm(book: Book, index_ticks: int, notional_usd6: int, tick_value: int) -> int:
    if index_ticks <= 0:
        return 0
    impact_bid = impact_price(book, SELL, notional_usd6, tick_value)
    impact_ask = impact_price(book, BUY, notional_usd6, tick_value)
    up = max(0, impact_bid - index_ticks) if impact_bid is not None else 0
    down = max(0, index_ticks - impact_ask) if impact_ask is not None else 0
    diff = up - down
    q = abs(diff) * PPM // index_ticks
    return q if diff >= 0 else -q


def funding_rate_ppm(avg_premium: int, interest: int, clamp: int, cap: int) -> int:
    adj = interest - avg_premium
    adj = -clamp if adj < -clamp else clamp if adj > clamp else adj
    rate = avg_premium + adj
    return -cap if rate < -cap else cap if rate > cap else rate


def average(total: int, count: int) -> int:
    """Integer mean rounded toward zero (0 for no samples)."""
    if count <= 0:
        return 0
    q = abs(total) // count
    return q if total >= 0 else -q


def funding_payment(size: int, mark: int, tick_value: int, rate_ppm: int) -> int:
    """Signed usd6 the holder pays (>0) or receives (<0), rounded against the holder."""
    return index_payment(size, rate_ppm * mark * tick_value)


def index_payment(size: int, index_move: int) -> int:
    """Signed usd6 a holder of ``size`` lots pays (>0) or receives (<0) for a funding index move
    of ``index_move`` (1e-12 USD per lot): ceil, so payers pay up and receivers get the floor."""
    return -((-size * index_move) // PPM)
