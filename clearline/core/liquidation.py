"""Liquidation: book first, then insurance fund, then auto-deleveraging. Every step is an
event in the liquidation transaction's receipt; no loss is socialised silently.

1. Preconditions (else rejected): the account's equity is below its maintenance
   requirement, and no underlying it holds has an unconfirmed oracle jump.
2. Its open orders are cancelled.
3. Book steps: while below maintenance, take the position with the largest stand-alone
   maintenance requirement (ties: lowest instrument id) and send a reduce-only IOC order for
   ``liquidation_step`` of it (at least one lot) into the book, limited by the position's
   bankruptcy price (where closing all of it would leave equity at zero). The account pays
   no taker fee; it pays ``liquidation_fee`` of the filled notional to the insurance fund,
   capped so equity never goes below zero through the fee. Stops when healthy, when the book
   cannot absorb a step within the bound, or after ``liquidation_max_steps``.
4. Backstop, only if equity is negative: every remaining position is closed at the mark
   against the opposite positions ranked by profit ratio times leverage (highest first, ties
   by account id); the insurance fund then covers the deficit as far as it can; what it
   cannot cover is charged to those counterparties pro rata to the notional they took over
   (rounded up; the rounding surplus goes to the insurance fund). If no counterparty exists
   the remaining deficit stays on the account as a visible negative balance.
"""

from __future__ import annotations

from .book import BUY, SELL
from .errors import ErrorCode, Rejected
from .ledger import (Deleveraged, InsuranceCovered, LiquidationEnded, LiquidationFill, LiquidationStarted,
                     cancel_all, settle_plan, trade)
from .margin import MarginGate, health
from .matching import CloseReason, plan_match
from .requirements import standard_requirements
from .units import PPM

E = ErrorCode
_CANCEL_RESTING = 0


def _riskiest(st, acct) -> int:
    best, best_mm = -1, -1
    for inst in sorted(acct.positions):
        m = st.markets[inst]
        _, mm = standard_requirements(m.spec, acct.positions[inst].size, m.mark_price, st.index_of(m))
        if mm > best_mm:
            best, best_mm = inst, mm
    return best


def bankruptcy_price(equity: int, size: int, mark: int, tick_value: int) -> int:
    """Price (ticks) at which closing ``size`` lots leaves equity at zero, rounded so the
    liquidation order never trades worse than it: sells round up, buys round down."""
    if size > 0:
        return max(1, mark - (equity // (size * tick_value)))
    return mark + equity // (-size * tick_value)


def check_liquidatable(st, acct) -> tuple[int, int]:
    """Precondition 1: ``(equity, maintenance)`` if ``acct`` may be liquidated now, else
    Rejected (also what the L1 verifier re-computes to prove a wrongful liquidation)."""
    equity, _, mm = health(st, acct)
    if equity >= mm:
        raise Rejected(E.NOT_LIQUIDATABLE, f"equity {equity} is not below maintenance {mm}")
    for inst in acct.positions:
        u = st.underlying_by_symbol.get(st.markets[inst].spec.underlying)
        if u is not None and u.liquidations_paused:
            raise Rejected(E.LIQUIDATIONS_PAUSED, f"{u.config.symbol} index jump not yet confirmed")
    return equity, mm


def liquidate(st, account: int, t: int) -> list:
    if not (0 <= account < len(st.accounts)):
        raise Rejected(E.UNKNOWN_ACCOUNT, f"account {account} does not exist")
    acct = st.accounts[account]
    equity, mm = check_liquidatable(st, acct)

    p = st.params
    events: list = [LiquidationStarted(account, equity, mm)]
    cancel_all(st, acct, CloseReason.LIQUIDATION, events)
    for _ in range(p.liquidation_max_steps):
        equity, _, mm = health(st, acct)
        if equity >= mm or not acct.positions:
            break
        inst = _riskiest(st, acct)
        m = st.markets[inst]
        tv = m.spec.tick_value
        size = acct.positions[inst].size
        lots = size if size > 0 else -size
        qty = min(lots, max(1, -((-lots * p.liquidation_step_ppm) // PPM)))
        bound = bankruptcy_price(equity, size, m.mark_price, tv)
        side = SELL if size > 0 else BUY
        plan = plan_match(st.books[inst], side, bound, qty, acct.id, acct.owner, _CANCEL_RESTING, True, t,
                          MarginGate(st, inst, exempt=acct.id))
        if plan.filled == 0:
            break
        notional = sum(o.price * q for o, q in plan.fills) * tv
        settle_plan(st, m, acct, side, plan, 0, events, taker_fee_ppm=0)
        equity_after, _, _ = health(st, acct)
        fee = min(-((-notional * p.liquidation_fee_ppm) // PPM), max(0, equity_after))
        acct.collateral -= fee
        st.insurance_fund += fee
        avg = -(-notional // (plan.filled * tv))
        events.append(LiquidationFill(account, inst, plan.filled, avg, bound, fee))

    equity, _, mm = health(st, acct)
    if equity < 0:
        _backstop(st, acct, events)
    equity, _, mm = health(st, acct)
    events.append(LiquidationEnded(account, equity, mm, len(acct.positions)))
    st.dirty_accounts.add(account)
    return events


def adl_ranking(st, inst: int, side_sign: int, exclude: int) -> list[int]:
    """Holders of ``inst`` whose position sign is ``side_sign``, most profitable times most
    leveraged first (ties: account id)."""
    m = st.markets[inst]
    tv = m.spec.tick_value
    ranked = []
    for aid in sorted(st.holders[inst]):
        if aid == exclude:
            continue
        a = st.accounts[aid]
        pos = a.positions[inst]
        if (pos.size > 0) != (side_sign > 0):
            continue
        upnl = pos.quote + pos.size * m.mark_price * tv
        profit_ppm = upnl * PPM // max(1, abs(pos.quote))
        equity, _, _ = health(st, a)
        notional = sum(abs(q.size) * st.markets[i].mark_price * st.markets[i].spec.tick_value
                       for i, q in a.positions.items())
        leverage_ppm = notional * PPM // max(1, equity)
        score = profit_ppm * leverage_ppm if profit_ppm > 0 and equity > 0 else -1
        ranked.append((-score, aid))
    ranked.sort()
    return [aid for _, aid in ranked]


def _backstop(st, acct, events: list) -> None:
    taken: list[tuple[int, int]] = []  # (counterparty, notional usd6 taken over)
    for inst in sorted(acct.positions):
        m = st.markets[inst]
        size = acct.positions[inst].size
        left = size if size > 0 else -size
        sign = 1 if size > 0 else -1
        for cp_id in adl_ranking(st, inst, -sign, acct.id):
            if left == 0:
                break
            cp = st.accounts[cp_id]
            cp_lots = abs(cp.positions[inst].size)
            q = cp_lots if cp_lots < left else left
            trade(st, m, acct, -sign * q, m.mark_price)
            trade(st, m, cp, sign * q, m.mark_price)
            taken.append((cp_id, q * m.mark_price * m.spec.tick_value))
            events.append(Deleveraged(acct.id, cp_id, inst, q, m.mark_price, 0))
            left -= q
        st.dirty_markets.add(inst)
    equity, _, _ = health(st, acct)
    deficit = -equity
    if deficit <= 0:
        return
    cover = min(deficit, st.insurance_fund)
    if cover:
        st.insurance_fund -= cover
        acct.collateral += cover
        events.append(InsuranceCovered(acct.id, cover, st.insurance_fund))
    rest = deficit - cover
    total = sum(n for _, n in taken)
    if rest <= 0 or total <= 0:
        return
    charged = 0
    for cp_id, n in taken:
        haircut = -((-rest * n) // total)
        st.accounts[cp_id].collateral -= haircut
        st.dirty_accounts.add(cp_id)
        charged += haircut
        events.append(Deleveraged(acct.id, cp_id, -1, 0, 0, haircut))
    acct.collateral += rest
    st.insurance_fund += charged - rest
