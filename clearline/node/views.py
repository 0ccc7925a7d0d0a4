"""JSON views of the exchange state, shared by the REST read path and the streams.

Every function here reads ``State`` and must run on the node's sequencer thread (between two
group commits), so what it returns is one consistent state. Money, prices and sizes leave as
exact decimal strings (``clearline.api.numbers``); nothing here mutates state.
"""

from __future__ import annotations

from fractions import Fraction

from ..api.numbers import fmt_lots, fmt_ppm, fmt_scaled, fmt_ticks, fmt_usd6
from ..core.explain import explain
from ..core.instruments import InstrumentKind, MarketStatus, OptionType
from ..core.margin import health
from ..core.matching import CloseReason
from ..core.requirements import has_risk_array, standard_requirements
from ..core.units import PPM, UNDERLYING_ATOMS

__all__ = ["BOOK_DEPTH", "instrument", "book_levels", "open_order", "positions", "margin_summary", "account",
           "margin_explain", "risk", "marks", "order_status", "SIDES", "TIFS", "CLOSE_REASONS", "hex_addr"]

BOOK_DEPTH = 50  # levels per side kept by the book streams
SIDES = ("buy", "sell")
TIFS = ("GTC", "GTT", "IOC", "FOK")
KINDS = {int(InstrumentKind.PERPETUAL): "perpetual", int(InstrumentKind.OPTION): "option"}
STATUSES = {int(MarketStatus.ACTIVE): "active", int(MarketStatus.HALTED): "halted",
            int(MarketStatus.DELISTED): "delisted"}
OPTION_TYPES = {int(OptionType.CALL): "call", int(OptionType.PUT): "put"}
CLOSE_REASONS = {int(r): r.name.lower() for r in CloseReason}


def hex_addr(address: bytes) -> str:
    """EIP-55 checksummed address."""
    from ..core.eip712 import _checksum

    return _checksum(address)


def instrument(m) -> dict:
    s = m.spec
    option = s.kind == InstrumentKind.OPTION
    return {
        "id": s.id, "symbol": s.symbol, "kind": KINDS.get(s.kind, str(s.kind)), "underlying": s.underlying,
        "status": STATUSES.get(m.status, str(m.status)),
        "tick_size": fmt_usd6(s.tick_size), "lot_size": fmt_scaled(s.lot_size, 8),
        "tick_size_usd6": s.tick_size, "lot_size_atoms": s.lot_size,
        "initial_margin": fmt_ppm(s.im_ppm), "maintenance_margin": fmt_ppm(s.mm_ppm),
        "maker_fee": fmt_ppm(s.maker_fee_ppm), "taker_fee": fmt_ppm(s.taker_fee_ppm),
        "expiry_ms": s.expiry if option else None,
        "strike": fmt_ticks(s.strike, s.tick_size) if option else None,
        "option_type": OPTION_TYPES.get(s.option_type) if option else None,
    }


def book_levels(st, inst: int, depth: int = BOOK_DEPTH) -> tuple[list, list]:
    """(bids, asks) as ``[price, size, orders]`` best first."""
    spec = st.markets[inst].spec
    book = st.books[inst]
    out = []
    for side in (0, 1):
        out.append([[fmt_ticks(p, spec.tick_size), fmt_lots(q, spec.lot_size), n] for p, q, n in book.depth(side, depth)])
    return out[0], out[1]


def open_order(st, o) -> dict:
    spec = st.markets[o.instrument].spec
    return {
        "order_id": o.order_id, "client_id": str(o.client_id), "symbol": spec.symbol, "side": SIDES[o.side],
        "type": "limit", "tif": TIFS[o.tif], "price": fmt_ticks(o.price, spec.tick_size),
        "size": fmt_lots(o.size, spec.lot_size), "remaining": fmt_lots(o.remaining, spec.lot_size),
        "filled": fmt_lots(o.size - o.remaining, spec.lot_size), "post_only": bool(o.flags & 1),
        "reduce_only": bool(o.flags & 2), "expiry_ms": o.expiry,
    }


def _entry_usd6(pos, spec) -> int | None:
    """Average entry price (usd6 per whole unit, rounded to nearest) from the position's basis."""
    if pos.size == 0:
        return None
    return round(Fraction(-pos.quote * UNDERLYING_ATOMS, pos.size * spec.lot_size))


def positions(st, acct, report=None) -> list[dict]:
    """Open positions with mark, P&L, requirements and the liquidation-price estimate."""
    report = report or explain(st, acct.id)
    by_inst = {p.instrument: p for p in report.positions}
    out = []
    for inst in sorted(acct.positions):
        pos = acct.positions[inst]
        m = st.markets[inst]
        spec = m.spec
        r = by_inst.get(inst)
        im, mm = standard_requirements(spec, pos.size, m.mark_price, st.index_of(m))
        entry = _entry_usd6(pos, spec)
        value = pos.size * m.mark_price * spec.tick_value
        out.append({
            "instrument": inst, "symbol": spec.symbol, "side": "long" if pos.size > 0 else "short",
            "size": fmt_lots(abs(pos.size), spec.lot_size), "signed_size": fmt_lots(pos.size, spec.lot_size),
            "entry_price": fmt_usd6(entry) if entry is not None else None,
            "mark": fmt_ticks(m.mark_price, spec.tick_size), "notional": fmt_usd6(abs(value)),
            "unrealised_pnl": fmt_usd6(pos.quote + value),
            "liquidation_price": (fmt_ticks(r.liquidation_price, spec.tick_size)
                                  if r is not None and r.liquidation_price is not None else None),
            "initial_margin": fmt_usd6(im), "maintenance_margin": fmt_usd6(mm),
        })
    return out


def margin_summary(st, acct) -> dict:
    equity, im, mm = health(st, acct)
    return {
        "collateral": fmt_usd6(acct.collateral), "equity": fmt_usd6(equity), "initial_margin": fmt_usd6(im),
        "maintenance_margin": fmt_usd6(mm), "free_collateral": fmt_usd6(max(0, min(acct.collateral, equity - im))),
        "margin_ratio": fmt_ppm(mm * PPM // equity) if equity > 0 else None,
    }


def account(st, aid: int) -> dict:
    acct = st.accounts[aid]
    report = explain(st, aid)
    return {
        "id": aid, "owner": hex_addr(acct.owner), "subaccount": acct.subaccount, "nonce": acct.nonce,
        "flags": acct.flags, "operator_may_cancel": bool(acct.flags & 1),
        "margin_mode": "portfolio" if acct.margin_mode == 1 else "standard",
        **margin_summary(st, acct),
        "positions": positions(st, acct, report),
        "open_orders": [open_order(st, o) for o in acct.open_orders.values()],
    }


def margin_explain(st, aid: int) -> dict:
    from ..risk.scenarios import SCENARIOS

    rep = explain(st, aid)
    b = rep.binding_scenario
    pos = []
    for p in rep.positions:
        spec = st.markets[p.instrument].spec
        pos.append({
            "instrument": p.instrument, "symbol": p.symbol, "size": fmt_lots(p.size, spec.lot_size),
            "mark": fmt_ticks(p.mark, spec.tick_size), "value": fmt_usd6(p.value),
            "unrealised_pnl": fmt_usd6(p.unrealised_pnl), "initial": fmt_usd6(p.initial),
            "maintenance": fmt_usd6(p.maintenance),
            "scenario_loss": fmt_usd6(p.scenario_loss) if p.scenario_loss is not None else None,
            "liquidation_price": fmt_ticks(p.liquidation_price, spec.tick_size)
            if p.liquidation_price is not None else None,
        })
    return {
        "account": aid, "mode": rep.mode, "collateral": fmt_usd6(rep.collateral), "equity": fmt_usd6(rep.equity),
        "initial": fmt_usd6(rep.initial), "maintenance": fmt_usd6(rep.maintenance),
        "free_collateral": fmt_usd6(rep.free_collateral),
        "margin_ratio": fmt_ppm(rep.margin_ratio_ppm) if rep.margin_ratio_ppm is not None else None,
        "binding_scenario": {"index": b, "label": SCENARIOS[b].label} if b is not None else None,
        "scenario_losses": [fmt_usd6(x) for x in rep.scenario_losses] if rep.scenario_losses is not None else None,
        "short_option_minimum": fmt_usd6(rep.short_option_minimum), "contingency": fmt_usd6(rep.contingency),
        "positions": pos,
    }


def risk(st, aid: int) -> dict:
    """P&L of the account's positions in each of the 16 risk scenarios (Σ size × array[s])."""
    from ..risk.scenarios import SCENARIOS

    acct = st.accounts[aid]
    totals = [0] * len(SCENARIOS)
    by_pos: list[dict] = [{} for _ in SCENARIOS]
    missing = []
    for inst in sorted(acct.positions):
        m = st.markets[inst]
        size = acct.positions[inst].size
        if not has_risk_array(m.risk_array):  # none, or all zeros: margined as standard
            missing.append(m.spec.symbol)
            continue
        for s, r in enumerate(m.risk_array):
            totals[s] += size * r
            by_pos[s][m.spec.symbol] = fmt_usd6(size * r)
    worst = min(range(len(totals)), key=lambda s: (totals[s], s))
    return {
        "account": aid, "equity": fmt_usd6(health(st, acct)[0]),
        "scenarios": [{"index": s, "label": SCENARIOS[s].label, "pnl": fmt_usd6(totals[s]), "by_position": by_pos[s]}
                      for s in range(len(totals))],
        "worst": {"index": worst, "label": SCENARIOS[worst].label, "pnl": fmt_usd6(totals[worst])},
        "without_risk_array": missing,
    }


def marks(st, instruments=None, underlyings=None) -> dict:
    """Marks (and index per underlying) of the given ids, or of every active market."""
    ms = {}
    for inst in (instruments if instruments is not None else list(st.markets)):
        m = st.markets.get(inst)
        if m is None or m.mark_price == 0 or (instruments is None and m.status != MarketStatus.ACTIVE):
            continue
        ms[m.spec.symbol] = {"mark": fmt_ticks(m.mark_price, m.spec.tick_size), "time_ms": m.mark_time}
    idx = {}
    for uid in (underlyings if underlyings is not None else list(st.underlyings)):
        u = st.underlyings[uid]
        if u.oracle.index_price:
            idx[u.config.symbol] = {"price": fmt_usd6(u.oracle.index_price), "time_ms": u.oracle.index_time_ms,
                                    "unconfirmed": bool(u.oracle.liquidations_paused)}
    return {"marks": ms, "index": idx}


def order_status(reason: int) -> str:
    return "filled" if reason == CloseReason.FILLED else "cancelled"
