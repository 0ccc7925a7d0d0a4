"""Operator actions: funding (ticks, settlements, payments), liquidations, expiry settlement and option listing.

The operator only decides *when*; *what* happens is fully determined by the rules and the
state, and every precondition is re-checked here (an action that is not due is rejected
with ``NOT_DUE``, so no empty housekeeping enters the log).
"""

from __future__ import annotations

from .errors import ErrorCode, InvariantBroken, Rejected
from .funding import average, funding_rate_ppm, index_payment, premium_ppm
from .instruments import InstrumentKind, MarketStatus, OptionType
from .ledger import (ExpirySettled, FundingPaid, FundingSampled, FundingSettled, InstrumentListed, Netting,
                     cancel_all, close_order, trade)
from .liquidation import liquidate
from .matching import CloseReason
from .txs import AccountFlag, CancelTrigger, OperatorActionKind
from .units import PPM, UNDERLYING_ATOMS

E = ErrorCode
_PERP = int(InstrumentKind.PERPETUAL)
_OPTION = int(InstrumentKind.OPTION)
_ACTIVE = int(MarketStatus.ACTIVE)


def handle_operator(st, tx) -> list:
    action = tx.action
    if action == OperatorActionKind.FUNDING_TICK:
        return funding_tick(st, tx.time_ms)
    if action == OperatorActionKind.LIQUIDATE:
        return liquidate(st, tx.target, tx.time_ms)
    if action == OperatorActionKind.SETTLE_OPTION:
        return settle_option(st, tx.target, tx.time_ms)
    if action == OperatorActionKind.SETTLE_POSITION:
        return settle_position(st, tx.target, tx.arg)
    if action == OperatorActionKind.CLOSE_ORDER:
        return close_order_step(st, tx.target, tx.time_ms)
    if action == OperatorActionKind.LIST_OPTIONS:
        return list_options(st, tx.target, tx.time_ms)
    if action == OperatorActionKind.CANCEL_ALL_ORDERS:
        return cancel_all_orders(st, tx.target, tx.arg)
    if action == OperatorActionKind.FUNDING_SETTLE:
        return funding_settle(st, tx.target, tx.time_ms)
    if action == OperatorActionKind.FUNDING_PAY:
        return funding_pay(st, tx.target, tx.arg)
    raise Rejected(E.UNKNOWN_ACTION, f"operator action {action}")


# -- node-enforced cancels -------------------------------------------------------------------------
def cancel_all_orders(st, account_id: int, trigger: int) -> list:
    """Cancel every resting order of an account that opted in (AccountFlag.OPERATOR_MAY_CANCEL):
    the node's cancel-on-disconnect and dead-man switch. ``trigger`` (a CancelTrigger) is only
    recorded. Without the opt-in the operator has no say over a user's orders (NOT_OPTED_IN);
    an account without open orders has nothing due (NOT_DUE)."""
    if not (0 <= account_id < len(st.accounts)):
        raise Rejected(E.UNKNOWN_ACCOUNT, f"account {account_id} does not exist")
    if trigger not in (CancelTrigger.DISCONNECT, CancelTrigger.DEAD_MAN):
        raise Rejected(E.MALFORMED, f"cancel trigger {trigger} (1 disconnect, 2 dead-man switch)")
    acct = st.accounts[account_id]
    if not acct.flags & AccountFlag.OPERATOR_MAY_CANCEL:
        raise Rejected(E.NOT_OPTED_IN, f"account {account_id} has not allowed the operator to cancel its orders")
    if not acct.open_orders:
        raise Rejected(E.NOT_DUE, f"account {account_id} has no open orders")
    events: list = []
    cancel_all(st, acct, CloseReason.OPERATOR_CANCEL, events)
    return events


# -- funding -----------------------------------------------------------------------------------
# Funding is three bounded steps, so that each is one small L1 re-execution (FundingVerifier):
#   FUNDING_TICK           starts intervals and samples premiums (every perpetual: the book's
#                          impact prices);
#   FUNDING_SETTLE(m)      ends perpetual m's interval: the rate from its samples, the funding
#                          index moved by rate * mark * tick_value, and the holders' lots to pay
#                          (unpaid_lots = 2 * open interest);
#   FUNDING_PAY(m, a)      pays holder a its funding of that settlement (from the index move).
# Between a FUNDING_SETTLE and its last FUNDING_PAY nothing else is accepted
# (FUNDING_IN_PROGRESS, in ``apply``), so no margin check, trade or withdrawal ever sees a
# half-paid interval; the node sends the settlement and every payment together.
def funding_sample_due(m, t: int, p) -> bool:
    """Sample k (1..interval/sample) of the interval is due at ``start + k * sample_ms``;
    never two within one sample interval (a late operator cannot sample one book many times)."""
    return (min((t - m.last_funding_time) // p.funding_sample_ms, p.funding_interval_ms // p.funding_sample_ms)
            > m.premium_samples and t - m.last_sample_time >= p.funding_sample_ms)


def funding_settlements_due(st, t: int) -> list[int]:
    """The perpetuals whose funding interval has ended at ``t`` (what FUNDING_SETTLE needs
    besides its samples: a FUNDING_TICK first takes any sample still due)."""
    p = st.params
    return sorted(m.spec.id for m in st.markets.values()
                  if m.spec.kind == _PERP and m.status == _ACTIVE and m.mark_price and m.last_funding_time
                  and t >= m.last_funding_time + p.funding_interval_ms)


def funding_payments_due(st) -> list[tuple[int, int]]:
    """(instrument, account) of every FUNDING_PAY still due, in instrument then account order:
    what the node sends right after a FUNDING_SETTLE (and first thing, if it stopped between)."""
    out = []
    for mid in sorted(st.paying):
        m = st.markets[mid]
        if m.spec.kind != _PERP:  # an option's payout: settlement_steps
            continue
        out.extend((mid, aid) for aid in sorted(st.holders[mid])
                   if st.accounts[aid].positions[mid].funding_index != m.funding_index)
    return out


def funding_tick(st, t: int) -> list:
    """Start each perpetual's funding interval, and take each premium sample that is due."""
    p = st.params
    plan = []
    for m in st.markets.values():
        if m.spec.kind != _PERP or m.status != _ACTIVE or not m.mark_price:
            continue
        if m.last_funding_time == 0:
            plan.append((m, True))
        elif funding_sample_due(m, t, p):
            plan.append((m, False))
    if not plan:
        raise Rejected(E.NOT_DUE, "no funding interval to start and no premium sample is due")
    events: list = []
    for m, start in plan:
        spec = m.spec
        if start:
            m.last_funding_time = t - t % p.funding_interval_ms
        else:
            index_ticks = st.index_of(m) // spec.tick_size
            prem = premium_ppm(st.books[spec.id], index_ticks, p.impact_notional_usd6, spec.tick_value)
            m.premium_sum += prem
            m.premium_samples += 1
            m.last_sample_time = t
            events.append(FundingSampled(spec.id, prem, m.premium_samples))
        st.dirty_markets.add(spec.id)
    return events


def funding_settle(st, instrument: int, t: int) -> list:
    """End perpetual ``instrument``'s funding interval (due at its end, once every sample
    due is taken): ``F = funding_rate_ppm(average of the samples, ...)``; the funding index
    moves by ``F * mark * tick_value`` and every holder is left to be paid by a FUNDING_PAY."""
    p = st.params
    m = st.markets.get(instrument)
    if m is None:
        raise Rejected(E.UNKNOWN_INSTRUMENT, f"instrument {instrument} is not listed")
    spec = m.spec
    if spec.kind != _PERP:
        raise Rejected(E.INVALID_INSTRUMENT, f"instrument {instrument} is not a perpetual")
    start = m.last_funding_time
    if m.status != _ACTIVE or not m.mark_price or start == 0 or t < start + p.funding_interval_ms:
        raise Rejected(E.NOT_DUE, f"instrument {instrument}'s funding interval has not ended")
    if funding_sample_due(m, t, p):
        raise Rejected(E.NOT_DUE, f"instrument {instrument} has a premium sample due first (FUNDING_TICK)")
    rate = funding_rate_ppm(average(m.premium_sum, m.premium_samples), p.interest_ppm, p.premium_clamp_ppm,
                            p.funding_cap_ppm)
    step = rate * m.mark_price * spec.tick_value
    m.funding_index += step
    m.last_funding_rate_ppm = rate
    m.premium_sum = m.premium_samples = 0
    m.last_funding_time = start + (t - start) // p.funding_interval_ms * p.funding_interval_ms
    paid = received = 0
    if step:
        unpaid = 0
        for aid in st.holders[instrument]:
            size = st.accounts[aid].positions[instrument].size
            unpaid += size if size > 0 else -size
            pay = index_payment(size, step)
            if pay > 0:
                paid += pay
            else:
                received -= pay
        if unpaid != 2 * m.open_interest:
            raise InvariantBroken(f"instrument {instrument}: holders hold {unpaid} lots, open interest is "
                                  f"{m.open_interest}")
        m.unpaid_lots = unpaid
        if unpaid:
            st.paying.add(instrument)
    st.dirty_markets.add(instrument)
    return [FundingSettled(instrument, rate, m.mark_price, paid, received, paid - received)]


def funding_pay(st, instrument: int, account_id: int) -> list:
    """Pay holder ``account_id`` its funding of ``instrument``'s last settlement: its
    collateral moves by the payment, its position takes the market's funding index, the
    payment joins the market's float, and the last payment hands the float (the rounding
    remainder, >= 0) to the insurance fund."""
    m = st.markets.get(instrument)
    if m is None or not m.unpaid_lots:
        raise Rejected(E.NOT_DUE, f"no funding of instrument {instrument} is being paid")
    if not (0 <= account_id < len(st.accounts)):
        raise Rejected(E.UNKNOWN_ACCOUNT, f"account {account_id} does not exist")
    acct = st.accounts[account_id]
    pos = acct.positions.get(instrument)
    if pos is None or pos.funding_index == m.funding_index:
        raise Rejected(E.NOT_DUE, f"account {account_id} has no funding of instrument {instrument} to pay")
    pay = index_payment(pos.size, m.funding_index - pos.funding_index)
    acct.collateral -= pay
    pos.funding_index = m.funding_index
    m.pay_float += pay
    m.unpaid_lots -= pos.size if pos.size > 0 else -pos.size
    if m.unpaid_lots < 0:
        raise InvariantBroken(f"instrument {instrument}: more lots paid than held")
    if m.unpaid_lots == 0:
        st.insurance_fund += m.pay_float
        m.pay_float = 0
        st.paying.discard(instrument)
    st.dirty_accounts.add(account_id)
    st.dirty_markets.add(instrument)
    return [FundingPaid(instrument, account_id, pay)]


def pay_funding(st, m, rate: int) -> tuple[int, int]:
    """Settle one interval of funding at ``rate`` on market ``m`` in one go (FUNDING_SETTLE
    and every FUNDING_PAY of it): what the faulty sequencer uses to settle twice. Returns
    (paid, received)."""
    step = rate * m.mark_price * m.spec.tick_value
    m.funding_index += step
    paid = received = 0
    for aid in sorted(st.holders[m.spec.id]):
        acct = st.accounts[aid]
        pos = acct.positions[m.spec.id]
        pay = index_payment(pos.size, m.funding_index - pos.funding_index)
        acct.collateral -= pay
        if pay > 0:
            paid += pay
        else:
            received -= pay
        pos.funding_index = m.funding_index
        st.dirty_accounts.add(aid)
    st.insurance_fund += paid - received
    st.dirty_markets.add(m.spec.id)
    return paid, received


# -- options: listing and expiry ------------------------------------------------------------------
def _underlying(st, uid: int):
    u = st.underlyings.get(uid)
    if u is None:
        raise Rejected(E.UNKNOWN_UNDERLYING, f"underlying {uid} is not configured")
    return u


def list_options(st, uid: int, t: int) -> list:
    from .listing import ListingError, listings_due

    u = _underlying(st, uid)
    template = u.config.option_template
    if template is None or st.listing is None:
        raise Rejected(E.NOT_CONFIGURED, f"{u.config.symbol} has no option listing rule")
    if u.oracle.index_price <= 0:
        raise Rejected(E.NO_INDEX, f"{u.config.symbol} has no index price yet")
    # An expiry is listed only while its whole settlement window is ahead (expiry - window > t):
    # the TWAP accumulates the index from the listing on, so an expiry listed inside its open
    # window would miss (part of) the index before the listing.
    schedule_at = t + max(0, st.params.settlement_window_ms - st.listing.min_lead_ms)
    try:
        specs = listings_due(st.listing, template, schedule_at, u.oracle.index_price,
                             (m.spec for m in st.markets.values()), st.next_instrument_id())
    except ListingError as e:
        raise Rejected(E.INVALID_INSTRUMENT, str(e)) from None
    if not specs:
        raise Rejected(E.NOT_DUE, f"every scheduled {u.config.symbol} option is already listed")
    events: list = []
    for spec in specs:
        st.add_market(spec)
        u.windows.setdefault(spec.expiry, [0, 0, 0])[2] += 1  # [acc, dt, options not settled yet]
        events.append(InstrumentListed(spec.id, spec.symbol, spec.expiry, spec.strike, spec.option_type))
    u.windows = dict(sorted(u.windows.items()))
    st.dirty_underlyings.add(uid)
    return events


# Expiry settlement is three bounded steps too (each one or two leaves for the L1 verifier):
#   SETTLE_OPTION(m)         one option of an expired expiry: the price is the TWAP of its
#                            underlying's window (frozen at the index if the window saw no time,
#                            so every option of the expiry gets the same price), the market is
#                            delisted at its intrinsic value and its holders are left to pay;
#                            the last option of the expiry closes the window;
#   SETTLE_POSITION(m, a)    closes holder a's position at that value, less the settlement fee;
#   CLOSE_ORDER(o)           closes a resting order of a delisted market.
# Between a SETTLE_OPTION with holders and its last SETTLE_POSITION nothing else is accepted,
# as for funding.
def settle_option(st, instrument: int, t: int) -> list:
    """Settle option ``instrument`` (due at its expiry): the settlement price of its expiry,
    the market delisted with its intrinsic value (rounded down to a tick) as its mark, and
    ``unpaid_lots`` = 2 * open interest for the SETTLE_POSITIONs to come."""
    m = st.markets.get(instrument)
    if m is None:
        raise Rejected(E.UNKNOWN_INSTRUMENT, f"instrument {instrument} is not listed")
    spec = m.spec
    if spec.kind != _OPTION:
        raise Rejected(E.INVALID_INSTRUMENT, f"instrument {instrument} is not an option")
    if m.status != _ACTIVE:
        raise Rejected(E.NOT_DUE, f"option {instrument} is not active (settled already)")
    if t < spec.expiry:
        raise Rejected(E.NOT_EXPIRED, f"option {instrument} expires at {spec.expiry}, after {t}")
    u = st.underlying_by_symbol[spec.underlying]
    w = u.windows.get(spec.expiry)
    if w is None or w[2] <= 0:
        raise InvariantBroken(f"active option {instrument} has no open settlement window")
    u.advance(t, st.params.settlement_window_ms)
    if w[1] == 0:  # the window saw no time: the index now, frozen for the expiry's other options
        w[0], w[1] = u.oracle.index_price, 1
    s_usd6 = w[0] // w[1]
    strike_usd6 = spec.strike * spec.tick_size
    intrinsic = (s_usd6 - strike_usd6) if spec.option_type == OptionType.CALL else (strike_usd6 - s_usd6)
    m.status = MarketStatus.DELISTED
    m.settlement_price = s_usd6
    m.mark_price = intrinsic // spec.tick_size if intrinsic > 0 else 0
    m.unpaid_lots = 2 * m.open_interest
    if m.unpaid_lots:
        st.paying.add(instrument)
    w[2] -= 1
    if w[2] == 0:
        del u.windows[spec.expiry]
    st.dirty_markets.add(instrument)
    st.dirty_underlyings.add(u.config.id)
    return [ExpirySettled(u.config.id, spec.expiry, s_usd6, [instrument])]


def settlement_fee(m, size: int, fee_ppm: int) -> int:
    """The settlement fee of ``size`` lots of the settled option ``m`` (its mark is the payoff in
    ticks): a long that receives a payoff pays ``fee_ppm`` of the underlying notional at the
    settlement price (rounded up), at most 1/8 of the payoff; 0 otherwise. SETTLE_POSITION
    charges it, and an escape before that step deducts it (``EscapeLib.equity``)."""
    payoff = size * m.mark_price * m.spec.tick_value
    if payoff <= 0:
        return 0
    u_value = -((-size * m.settlement_price * m.spec.lot_size) // UNDERLYING_ATOMS)
    return min(-((-u_value * fee_ppm) // PPM), payoff // 8)


def settle_position(st, instrument: int, account_id: int) -> list:
    """Close account ``account_id``'s position in the settled option ``instrument`` at its
    settlement value (the market's mark); a long that receives a payoff pays the settlement
    fee (ppm of the underlying notional at the settlement price, at most 1/8 of the payoff)."""
    m = st.markets.get(instrument)
    if m is None or m.spec.kind != _OPTION or not m.unpaid_lots:
        raise Rejected(E.NOT_DUE, f"no settlement of instrument {instrument} is being paid")
    if not (0 <= account_id < len(st.accounts)):
        raise Rejected(E.UNKNOWN_ACCOUNT, f"account {account_id} does not exist")
    acct = st.accounts[account_id]
    pos = acct.positions.get(instrument)
    if pos is None:
        raise Rejected(E.NOT_DUE, f"account {account_id} holds no position in instrument {instrument}")
    spec = m.spec
    size, price = pos.size, m.mark_price
    payoff = size * price * spec.tick_value
    fee = settlement_fee(m, size, st.params.settlement_fee_ppm)
    trade(st, m, acct, -size, price)
    acct.collateral -= fee
    st.fee_pool += fee
    m.pay_float -= payoff
    m.unpaid_lots -= size if size > 0 else -size
    if m.unpaid_lots < 0 or (m.unpaid_lots == 0 and m.pay_float):
        raise InvariantBroken(f"option {instrument}: the settlement does not add up")
    if m.unpaid_lots == 0:
        st.paying.discard(instrument)
    st.dirty_markets.add(instrument)
    return [Netting(account_id, spec.expiry, abs(payoff), payoff, fee)]


def close_order_step(st, order_id: int, t: int) -> list:
    """CLOSE_ORDER: close resting order ``order_id`` when it is due to go: its market is
    delisted (a settled option's orders, reason SETTLED) or its own good-till-time expiry is
    at or before ``t`` (reason EXPIRED; matching also drops an expired order it meets). One
    order a step, so L1 re-executes it from the order's leaf (ExpiryVerifier)."""
    o = st.orders.get(order_id)
    if o is None:
        raise Rejected(E.UNKNOWN_ORDER, f"order {order_id} is not open")
    if st.markets[o.instrument].status == MarketStatus.DELISTED:
        reason = CloseReason.SETTLED
    elif o.expiry and o.expiry <= t:
        reason = CloseReason.EXPIRED
    else:
        raise Rejected(E.NOT_DUE, f"order {order_id} has not expired and its market {o.instrument} is listed")
    events: list = []
    close_order(st, o, reason, events)
    return events


def settlement_steps(st, t: int) -> list[tuple[int, int, int]]:
    """(action, target, arg) of every settlement step due at ``t``, in the order the node
    sends them: the SETTLE_POSITIONs of an option payout left unfinished; per expired option (by expiry, then id) its SETTLE_OPTION, a SETTLE_POSITION
    per holder (by account id) and a CLOSE_ORDER per resting order (by order id); then a
    CLOSE_ORDER for any order still resting on a delisted market, and for every good-till-time
    order past its expiry."""
    out = []
    # an option payout left unfinished (a node stopped between the steps) goes first: nothing
    # else is accepted until it is done
    for mid in sorted(st.paying):
        if st.markets[mid].spec.kind == _OPTION:
            out.extend((int(OperatorActionKind.SETTLE_POSITION), mid, aid) for aid in sorted(st.holders[mid]))
    due = sorted((m for m in st.markets.values() if m.spec.kind == _OPTION and m.status == _ACTIVE
                  and m.spec.expiry <= t), key=lambda m: (m.spec.expiry, m.spec.id))
    closing = {m.spec.id for m in due} | {mid for mid, m in st.markets.items() if m.status == MarketStatus.DELISTED}
    orders: dict[int, list[int]] = {}
    for mid in closing:  # their books (a delisted market's is empty once its orders are closed)
        ids = [o.order_id for side in (0, 1) for o in st.books[mid].orders(side)]
        if ids:
            orders[mid] = ids
    for m in due:
        mid = m.spec.id
        out.append((int(OperatorActionKind.SETTLE_OPTION), mid, 0))
        out.extend((int(OperatorActionKind.SETTLE_POSITION), mid, aid) for aid in sorted(st.holders[mid]))
        out.extend((int(OperatorActionKind.CLOSE_ORDER), oid, 0) for oid in sorted(orders.pop(mid, [])))
    out.extend((int(OperatorActionKind.CLOSE_ORDER), oid, 0) for mid in sorted(orders) for oid in sorted(orders[mid]))
    closing_ids = {target for action, target, _ in out if action == OperatorActionKind.CLOSE_ORDER}
    # good-till-time orders past their expiry, in (expiry, order id) order
    if st.has_due_expiry(t):
        out.extend((int(OperatorActionKind.CLOSE_ORDER), o.order_id, 0) for o in st.expired_orders(t)
                   if o.order_id not in closing_ids)
    return out


__all__ = ["handle_operator", "funding_tick", "funding_settle", "funding_pay", "funding_sample_due", "funding_settlements_due",
           "funding_payments_due", "pay_funding", "list_options", "settle_option", "settle_position", "settlement_fee",
           "close_order_step", "settlement_steps", "cancel_all_orders"]
