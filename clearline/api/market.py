"""Market data routes: info, instruments, book, trades, candles, marks, option chain, funding."""

from __future__ import annotations

import math

from fastapi import APIRouter, Query

from ..core import eip712
from ..core.errors import ErrorCode
from ..core.instruments import InstrumentKind, MarketStatus, OptionType
from ..node import views
from .auth import LOGIN_FIELDS, LOGIN_TYPE, LOGIN_WINDOW_MS
from .bodies import ENUMS
from .errors import ApiError
from .numbers import fmt_lots, fmt_scaled, fmt_ticks, fmt_usd6

__all__ = ["router"]

_SIGNED_TYPES = ("Order", "Cancel", "Replace", "Withdraw", "Transfer", "SetAccountFlags", "SetMarginMode")


def _inst(st, symbol: str) -> int:
    for inst, m in st.markets.items():
        if m.spec.symbol == symbol:
            return inst
    raise ApiError(ErrorCode.UNKNOWN_INSTRUMENT, f"unknown symbol {symbol!r}: see GET /api/v1/instruments")


def _round(x: float, digits: int = 6):
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def router(api) -> APIRouter:
    r = APIRouter(tags=["market data"])
    node = api.node

    @r.get("/info", summary="Chain, EIP-712 domain and type strings, enums, node time and limits")
    async def info():
        st = node.state
        domain = st.domain
        types = {name: [{"name": n, "type": t} for n, t in eip712.TYPES[name]] for name in _SIGNED_TYPES}
        types["Login"] = [{"name": n, "type": t} for n, t in LOGIN_FIELDS]
        strings = {name: eip712.type_string(name) for name in ("EIP712Domain", *_SIGNED_TYPES)}
        strings["Login"] = LOGIN_TYPE
        seq = await api.read(lambda n: n.seq.seq)
        return {
            "chain_id": domain.chain_id, "rollup": views.hex_addr(domain.verifying_contract),
            "operator": views.hex_addr(st.operator),
            "eip712": {"domain": {"name": eip712.DOMAIN_NAME, "version": eip712.DOMAIN_VERSION,
                                  "chainId": domain.chain_id,
                                  "verifyingContract": views.hex_addr(domain.verifying_contract)},
                       "domain_separator": "0x" + domain.separator.hex(), "types": types, "type_strings": strings},
            "enums": ENUMS, "node_time_ms": node.clock(), "journal_seq": seq, "epoch": node.epoch,
            "demo": node.demo, "l1": node.l1 is not None,
            "limits": {"orders_per_s": api.limiter.rate, "burst": api.limiter.burst, "book_depth": views.BOOK_DEPTH,
                       "ws_replay": api.hub.ring, "login_window_ms": LOGIN_WINDOW_MS},
        }

    @r.get("/instruments", summary="Listed instruments with tick and lot sizes, margins and fees")
    async def instruments(all: bool = Query(False, description="also halted and delisted instruments")):
        def read(n):
            return [views.instrument(m) for m in n.state.markets.values()
                    if all or m.status == MarketStatus.ACTIVE]
        return {"instruments": await api.read(read)}

    @r.get("/book/{symbol}", summary="Order book levels [price, size, orders], best first")
    async def book(symbol: str, depth: int = Query(20, ge=1, le=views.BOOK_DEPTH)):
        def read(n):
            st = n.state
            inst = _inst(st, symbol)
            bids, asks = views.book_levels(st, inst, depth)
            return {"symbol": symbol, "seq": n.bus.seqs.get(f"book:{symbol}", 0), "journal_seq": n.seq.seq,
                    "time_ms": st.time_ms, "bids": bids, "asks": asks}
        return await api.read(read)

    @r.get("/trades/{symbol}", summary="Recent trades, newest first (side = taker side)")
    async def trades(symbol: str, limit: int = Query(100, ge=1, le=1000)):
        def read(n):
            inst = _inst(n.state, symbol)
            rows = list(n.bus.history.trades.get(inst, ()))[-limit:]
            rows.reverse()
            return {"symbol": symbol, "trades": rows}
        return await api.read(read)

    @r.get("/candles/{symbol}", summary="OHLCV candles from recent trades (kept across restarts), oldest first")
    async def candles(symbol: str, interval_s: int = Query(60, ge=1, le=86_400),
                      limit: int = Query(300, ge=1, le=1000)):
        def read(n):
            inst = _inst(n.state, symbol)
            return inst, n.bus.history.candle_rows(inst, interval_s, limit)
        inst, rows = await api.read(read)
        spec = node.specs[inst]
        return {"symbol": symbol, "interval_s": interval_s, "candles": [
            {"t": t * 1000, "open": fmt_ticks(o, spec.tick_size), "high": fmt_ticks(h, spec.tick_size),
             "low": fmt_ticks(lo, spec.tick_size), "close": fmt_ticks(c, spec.tick_size),
             "volume": fmt_lots(v, spec.lot_size), "trades": k} for t, o, h, lo, c, v, k in rows]}

    @r.get("/marks", summary="Mark price per instrument and index per underlying")
    async def marks():
        def read(n):
            return {"time_ms": n.state.time_ms, **views.marks(n.state)}
        return await api.read(read)

    @r.get("/funding/{symbol}", summary="Funding of a perpetual: current interval and history, newest first")
    async def funding(symbol: str, limit: int = Query(50, ge=1, le=500)):
        def read(n):
            st = n.state
            inst = _inst(st, symbol)
            m = st.markets[inst]
            if m.spec.kind != InstrumentKind.PERPETUAL:
                raise ApiError(ErrorCode.INVALID_INSTRUMENT, f"{symbol} is not a perpetual")
            p = st.params
            rows = list(n.bus.history.funding.get(inst, ()))[-limit:]
            rows.reverse()
            start = m.last_funding_time
            return {"symbol": symbol, "interval_ms": p.funding_interval_ms,
                    "current": {"last_rate": views.fmt_ppm(m.last_funding_rate_ppm),
                                "premium_samples": m.premium_samples, "interval_start_ms": start or None,
                                "next_funding_ms": start + p.funding_interval_ms if start else None},
                    "history": rows}
        return await api.read(read)

    @r.get("/options/chain", summary="Option chain per expiry and strike: marks, quotes, implied vol and Greeks")
    async def chain(underlying: str = Query("BTC")):
        def read(n):
            st = n.state
            u = st.underlying_by_symbol.get(underlying)
            if u is None:
                raise ApiError(ErrorCode.UNKNOWN_UNDERLYING, f"unknown underlying {underlying!r}")
            rows = []
            for m in st.markets.values():
                s = m.spec
                if s.kind != InstrumentKind.OPTION or s.underlying != underlying or m.status != MarketStatus.ACTIVE:
                    continue
                book = st.books[s.id]
                rows.append((s, m.mark_price, book.best_bid(), book.best_ask(), m.open_interest))
            return u.oracle.index_price, n.clock(), rows
        index, now, rows = await api.read(read)
        return _chain(underlying, index, now, rows, node.pricing_time_scale)

    return r


def _chain(underlying: str, index_usd6: int, now_ms: int, rows, scale: float) -> dict:
    from ..risk import black76, year_fraction
    from ..risk.errors import RiskError

    forward = index_usd6 / 1e6
    expiries: dict[int, dict] = {}
    for spec, mark, bid, ask, oi in sorted(rows, key=lambda r: (r[0].expiry, r[0].strike, r[0].option_type)):
        t = year_fraction(now_ms, spec.expiry) * scale
        strike = spec.strike * spec.tick_size / 1e6
        is_call = spec.option_type == OptionType.CALL
        iv = delta = gamma = vega = theta = None
        if mark and t > 0 and forward > 0:
            try:
                iv = black76.implied_vol(mark * spec.tick_size / 1e6, forward, strike, t, 0.0, is_call)
                g = black76.greeks(forward, strike, t, 0.0, iv, is_call)
                delta, gamma, vega, theta = g.delta, g.gamma, g.vega / 100, g.theta / 365
            except RiskError:
                pass
        leg = {"symbol": spec.symbol, "mark": fmt_ticks(mark, spec.tick_size) if mark else None,
               "bid": fmt_ticks(bid, spec.tick_size) if bid is not None else None,
               "ask": fmt_ticks(ask, spec.tick_size) if ask is not None else None,
               "open_interest": fmt_lots(oi, spec.lot_size), "iv": _round(iv), "delta": _round(delta),
               "gamma": _round(gamma), "vega": _round(vega), "theta": _round(theta)}
        strikes = expiries.setdefault(spec.expiry, {})
        row = strikes.setdefault(spec.strike, {"strike": fmt_ticks(spec.strike, spec.tick_size), "call": None,
                                               "put": None})
        row["call" if is_call else "put"] = leg
    return {"underlying": underlying, "index": fmt_usd6(index_usd6), "forward": fmt_scaled(index_usd6, 6),
            "time_ms": now_ms, "time_scale": scale,
            "expiries": [{"expiry_ms": e, "strikes": [strikes[k] for k in sorted(strikes)]}
                         for e, strikes in sorted(expiries.items())]}
