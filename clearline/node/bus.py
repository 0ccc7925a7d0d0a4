"""The event bus: accepted transactions -> stream messages and market history.

Runs on the node's sequencer thread only. ``on_tx`` is a ``Sequencer`` listener (it sees each
accepted transaction with its receipt, in journal order); ``end_batch`` runs after each group
commit and turns what the batch touched into channel messages, each numbered by its channel
without gaps, encoded to JSON once, and handed to ``publish`` (the WebSocket hub, which fans
the same bytes out to every subscriber). Snapshots (``snapshot``) are built on the same thread
between batches, so a snapshot with sequence number k is exactly the state after update k.

Account channels (orders, fills, positions, margin of one account) cost work per batch, so
they are computed only for accounts someone has subscribed to (``activate``); a channel's
numbering starts at its activation and never restarts within the node's epoch.
"""

from __future__ import annotations

import json
from collections import deque

from ..api.numbers import fmt_lots, fmt_ticks, fmt_usd6
from ..core import ledger as L
from ..core.state import State
from ..core.txs import MarkUpdate, Order, OrderType, Replace
from ..sequencer.recovery import load_genesis, replay
from . import views

__all__ = ["EventBus", "History", "rebuild_history"]

HISTORY_REPLAY = 100_000  # journal entries (at least) replayed at start to refill the history

TRADES_KEPT = 2_000  # per instrument, for REST and stream snapshots
FILLS_KEPT = 500  # per account
FUNDING_KEPT = 500  # per instrument
CANDLE_SECONDS_KEPT = 86_400  # 1 s candles per instrument: one day
SNAPSHOT_TRADES = 50


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


class History:
    """Trades, 1-second candles, fills per account, funding and withdrawals: since node start,
    refilled on start by ``rebuild_history`` from the journal."""

    def __init__(self):
        self.trade_id = 0
        self.trades: dict[int, deque] = {}
        self.candles: dict[int, deque] = {}  # inst -> deque of [t_s, o, h, l, c, volume_lots, n] (ticks)
        self.fills: dict[int, deque] = {}
        self.funding: dict[int, deque] = {}
        self.withdrawals: list[dict] = []  # {"seq", "account", "owner", "amount" (usd6)}

    def add_trade(self, inst: int, trade: dict, price: int, qty: int, time_ms: int) -> None:
        self.trades.setdefault(inst, deque(maxlen=TRADES_KEPT)).append(trade)
        candles = self.candles.setdefault(inst, deque(maxlen=CANDLE_SECONDS_KEPT))
        t = time_ms // 1000
        if candles and candles[-1][0] == t:
            c = candles[-1]
            c[2] = max(c[2], price)
            c[3] = min(c[3], price)
            c[4] = price
            c[5] += qty
            c[6] += 1
        else:
            candles.append([t, price, price, price, price, qty, 1])

    def candle_rows(self, inst: int, interval_s: int, limit: int) -> list[list[int]]:
        """Aggregated candles (oldest first): [start_s, o, h, l, c, volume_lots, trades]."""
        out: list[list[int]] = []
        for c in reversed(self.candles.get(inst, ())):
            start = c[0] - c[0] % interval_s
            if out and out[-1][0] == start:
                agg = out[-1]
                agg[1] = c[1]  # walking backwards: the earlier candle's open
                agg[2] = max(agg[2], c[2])
                agg[3] = min(agg[3], c[3])
                agg[5] += c[5]
                agg[6] += c[6]
            else:
                if len(out) == limit:
                    break
                out.append([start, c[1], c[2], c[3], c[4], c[5], c[6]])
        out.reverse()
        return out


def _order_terms(tif: int, flags: int) -> dict:
    """The terms an order event repeats, so a client can keep its open-orders table from the
    stream alone (the same fields as ``views.open_order``)."""
    return {"type": "limit", "tif": views.TIFS[tif], "post_only": bool(flags & 1), "reduce_only": bool(flags & 2)}


class EventBus:
    def __init__(self, state, publish=None):
        self.publish = publish or (lambda messages: None)
        self.history = History()
        self.seqs: dict[str, int] = {}
        self.active_accounts: set[int] = set()
        # order id -> [account, inst, side, price, size, remaining, tif, flags]
        self._orders: dict[int, list] = {}
        for o in state.orders.values():
            self._orders[o.order_id] = [o.account, o.instrument, o.side, o.price, o.size, o.remaining, o.tif, o.flags]
        self._book_last: dict[int, tuple[dict, dict]] = {}
        self._last_positions: dict[int, str] = {}
        self._last_margin: dict[int, str] = {}
        self._reset_batch()

    def _reset_batch(self) -> None:
        self._books: set[int] = set()
        self._trades: dict[int, list] = {}
        self._accounts: set[int] = set()
        self._order_events: dict[int, list] = {}
        self._fill_events: dict[int, list] = {}
        self._mark_insts: set[int] = set()
        self._mark_unds: set[int] = set()
        self._everyone = False  # funding, marks: every active account's margin may have moved

    # -- per transaction (Sequencer listener) --------------------------------------------------
    def on_tx(self, seq: int, tx, receipt) -> None:
        state_markets = self._markets
        t = tx.time_ms
        taker_oid = receipt.order_id if isinstance(tx, (Order, Replace)) else 0
        taker = (-1, 0, None)  # (instrument, side, terms) of an incoming order
        if isinstance(tx, Order):
            terms = _order_terms(tx.tif, tx.flags)
            if tx.order_type == OrderType.MARKET:
                terms["type"] = "market"
            taker = (tx.instrument, tx.side, terms)
        elif isinstance(tx, Replace):
            replaced = self._orders.get(tx.order_id)
            if replaced is not None:
                taker = (replaced[1], replaced[2], _order_terms(replaced[6], replaced[7]))
        taker_fill = 0
        for ev in receipt.events:
            kind = type(ev)
            if kind is L.Fill:
                self._fill(seq, t, ev, state_markets[ev.instrument].spec)
                if ev.taker_order == taker_oid and taker_oid:
                    taker_fill += ev.qty
            elif kind is L.OrderRested:
                prev = self._orders.get(ev.order_id)
                if prev is not None:  # replaced in place (same id): the remaining shrank
                    size = prev[4] - (prev[5] - ev.remaining)
                elif taker_oid == ev.order_id:
                    size = tx.size
                else:
                    size = ev.remaining
                resting = self._state.orders.get(ev.order_id)
                tif, flags = (resting.tif, resting.flags) if resting is not None else (0, 0)
                self._orders[ev.order_id] = [ev.account, ev.instrument, ev.side, ev.price, size, ev.remaining,
                                             tif, flags]
                self._books.add(ev.instrument)
                self._order_event(seq, ev.order_id, "open", None)
            elif kind is L.OrderClosed:
                self._books.add(ev.instrument)
                if ev.order_id in self._orders:
                    self._order_event(seq, ev.order_id, views.order_status(ev.reason),
                                      views.CLOSE_REASONS.get(int(ev.reason)))
                    self._orders.pop(ev.order_id)
                elif ev.order_id == taker_oid:  # an incoming order's unrested remainder
                    self._taker_event(seq, tx, ev.order_id, ev.account, taker, "cancelled",
                                      views.CLOSE_REASONS.get(int(ev.reason)))
                    taker_oid = 0
            elif kind is L.CollateralMoved:
                for a in (ev.from_account, ev.to_account):
                    if a >= 0:
                        self._accounts.add(a)
                if ev.kind == "withdraw":
                    owner = self._owner(ev.from_account)
                    self.history.withdrawals.append({"seq": seq, "account": ev.from_account, "owner": owner,
                                                     "amount": ev.amount})
            elif kind is L.FundingSettled:
                self._funding(t, ev)
                self._everyone = True
            elif kind is L.IndexUpdated:
                self._mark_unds.add(ev.underlying)
            elif kind is L.InstrumentListed or kind is L.ExpirySettled:
                self._everyone = True
            else:
                a = getattr(ev, "account", None)
                if isinstance(a, int) and a >= 0:
                    self._accounts.add(a)
                cp = getattr(ev, "counterparty", None)
                if isinstance(cp, int) and cp >= 0:
                    self._accounts.add(cp)
        if taker_oid and taker_fill and taker_oid not in self._orders:
            # filled completely on arrival: no rest, no close event in the receipt
            self._taker_event(seq, tx, taker_oid, tx.account, taker, "filled", "filled")
        if isinstance(tx, MarkUpdate):
            self._mark_insts.update(tx.instruments)
            self._everyone = True

    # -- helpers for on_tx ---------------------------------------------------------------------
    def bind(self, state) -> None:
        self._state = state
        self._markets = state.markets

    def _owner(self, aid: int) -> str:
        return views.hex_addr(self._state.accounts[aid].owner)

    def _fill(self, seq: int, t: int, ev, spec) -> None:
        h = self.history
        h.trade_id += 1
        price, qty = fmt_ticks(ev.price, spec.tick_size), fmt_lots(ev.qty, spec.lot_size)
        trade = {"id": h.trade_id, "price": price, "size": qty, "side": views.SIDES[ev.taker_side],
                 "time_ms": t, "seq": seq}
        h.add_trade(spec.id, trade, ev.price, ev.qty, t)
        self._trades.setdefault(spec.id, []).append(trade)
        self._books.add(spec.id)
        maker = self._orders.get(ev.maker_order)
        if maker is not None:
            maker[5] -= ev.qty
            if maker[5] > 0:
                self._order_event(seq, ev.maker_order, "open", None)
        for aid, oid, side, fee, liq in ((ev.taker_account, ev.taker_order, ev.taker_side, ev.taker_fee, "taker"),
                                         (ev.maker_account, ev.maker_order, 1 - ev.taker_side, ev.maker_fee, "maker")):
            if aid < 0:
                continue
            self._accounts.add(aid)
            fill = {"trade_id": h.trade_id, "seq": seq, "time_ms": t, "symbol": spec.symbol, "order_id": oid,
                    "side": views.SIDES[side], "price": price, "size": qty, "fee": fmt_usd6(fee), "liquidity": liq}
            h.fills.setdefault(aid, deque(maxlen=FILLS_KEPT)).append(fill)
            if aid in self.active_accounts:
                self._fill_events.setdefault(aid, []).append(fill)

    def _order_event(self, seq: int, oid: int, status: str, reason) -> None:
        o = self._orders.get(oid)
        if o is None:
            return
        aid, inst, side, price, size, remaining, tif, flags = o
        self._accounts.add(aid)
        if aid not in self.active_accounts:
            return
        spec = self._markets[inst].spec
        self._order_events.setdefault(aid, []).append({
            "order_id": oid, "symbol": spec.symbol, "side": views.SIDES[side],
            "price": fmt_ticks(price, spec.tick_size), "size": fmt_lots(size, spec.lot_size),
            "remaining": fmt_lots(remaining if status == "open" else 0, spec.lot_size),
            **_order_terms(tif, flags), "status": status, "reason": reason, "seq": seq})

    def _taker_event(self, seq, tx, oid, aid, taker, status, reason) -> None:
        """An incoming order that never rested: filled on arrival, or its remainder dropped."""
        inst, side, terms = taker
        if aid < 0 or inst < 0 or aid not in self.active_accounts:
            return
        spec = self._markets[inst].spec
        self._order_events.setdefault(aid, []).append({
            "order_id": oid, "symbol": spec.symbol, "side": views.SIDES[side],
            "price": fmt_ticks(tx.price, spec.tick_size), "size": fmt_lots(tx.size, spec.lot_size),
            "remaining": "0", **terms, "status": status, "reason": reason, "seq": seq})

    def _funding(self, t: int, ev) -> None:
        spec = self._markets[ev.instrument].spec
        self.history.funding.setdefault(ev.instrument, deque(maxlen=FUNDING_KEPT)).append({
            "time_ms": t, "rate": views.fmt_ppm(ev.rate_ppm), "mark": fmt_ticks(ev.mark, spec.tick_size),
            "paid": fmt_usd6(ev.paid), "received": fmt_usd6(ev.received), "to_insurance": fmt_usd6(ev.to_insurance)})

    # -- per batch -------------------------------------------------------------------------------
    def _next(self, channel: str) -> int:
        n = self.seqs.get(channel, 0) + 1
        self.seqs[channel] = n
        return n

    def _msg(self, channel: str, data: dict) -> tuple[str, int, str]:
        seq = self._next(channel)
        return channel, seq, _dumps({"type": "update", "channel": channel, "seq": seq, "data": data})

    def end_batch(self, state) -> None:
        out: list = []
        for inst in sorted(self._books):
            m = state.markets.get(inst)
            if m is None:
                continue
            delta = self._book_delta(state, inst)
            if delta is not None:
                out.append(self._msg(f"book:{m.spec.symbol}", delta))
        for inst, trades in sorted(self._trades.items()):
            out.append(self._msg(f"trades:{state.markets[inst].spec.symbol}", {"trades": trades}))
        if self._mark_insts or self._mark_unds:
            data = views.marks(state, sorted(self._mark_insts), sorted(self._mark_unds))
            if data["marks"] or data["index"]:
                out.append(self._msg("marks", data))
        active = self.active_accounts
        if active:
            touched = sorted(active if self._everyone else (self._accounts & active))
            for aid in sorted(self._order_events):
                out.append(self._msg(f"orders:{aid}", {"events": self._order_events[aid]}))
            for aid in sorted(self._fill_events):
                out.append(self._msg(f"fills:{aid}", {"fills": self._fill_events[aid]}))
            for aid in touched:
                acct = state.accounts[aid]
                pos = {"positions": views.positions(state, acct)}
                enc = _dumps(pos)
                if enc != self._last_positions.get(aid):
                    self._last_positions[aid] = enc
                    out.append(self._msg(f"positions:{aid}", pos))
                mar = views.margin_summary(state, acct)
                enc = _dumps(mar)
                if enc != self._last_margin.get(aid):
                    self._last_margin[aid] = enc
                    out.append(self._msg(f"margin:{aid}", mar))
        self._reset_batch()
        if out:
            self.publish(out)

    def _book_delta(self, state, inst: int) -> dict | None:
        bids, asks = views.book_levels(state, inst)
        new = ({p: (q, n) for p, q, n in bids}, {p: (q, n) for p, q, n in asks})
        old = self._book_last.get(inst, ({}, {}))
        self._book_last[inst] = new
        delta = {}
        for name, o, n in (("bids", old[0], new[0]), ("asks", old[1], new[1])):
            changes = [[p, q, c] for p, (q, c) in n.items() if o.get(p) != (q, c)]
            changes += [[p, "0", 0] for p in o if p not in n]
            delta[name] = changes
        return delta if delta["bids"] or delta["asks"] else None

    # -- snapshots (node thread, between batches) ---------------------------------------------------
    def activate(self, aid: int, state) -> None:
        if aid in self.active_accounts:
            return
        self.active_accounts.add(aid)
        acct = state.accounts[aid]
        self._last_positions[aid] = _dumps({"positions": views.positions(state, acct)})
        self._last_margin[aid] = _dumps(views.margin_summary(state, acct))

    def snapshot(self, channel: str, state) -> tuple[int, dict]:
        """(seq, data) of ``channel`` now. Raises KeyError/ValueError for unknown channels."""
        name, _, arg = channel.partition(":")
        if name == "book":
            inst = self.symbol_id(state, arg)
            bids, asks = views.book_levels(state, inst)
            self._book_last.setdefault(inst, ({p: (q, n) for p, q, n in bids}, {p: (q, n) for p, q, n in asks}))
            return self.seqs.get(channel, 0), {"bids": bids, "asks": asks}
        if name == "trades":
            inst = self.symbol_id(state, arg)
            trades = list(self.history.trades.get(inst, ()))[-SNAPSHOT_TRADES:]
            return self.seqs.get(channel, 0), {"trades": trades}
        if name == "marks" and not arg:
            return self.seqs.get(channel, 0), views.marks(state)
        if name in ("orders", "fills", "positions", "margin"):
            aid = int(arg) if arg.isdigit() else -1
            if not (0 <= aid < len(state.accounts)):
                raise LookupError(f"account {arg}")
            self.activate(aid, state)
            acct = state.accounts[aid]
            seq = self.seqs.get(channel, 0)
            if name == "orders":
                return seq, {"orders": [views.open_order(state, o) for o in acct.open_orders.values()]}
            if name == "fills":
                return seq, {"fills": list(self.history.fills.get(aid, ()))[-SNAPSHOT_TRADES:]}
            if name == "positions":
                return seq, {"positions": views.positions(state, acct)}
            return seq, views.margin_summary(state, acct)
        raise ValueError(channel)

    @staticmethod
    def symbol_id(state, symbol: str) -> int:
        for inst, m in state.markets.items():
            if m.spec.symbol == symbol:
                return inst
        raise KeyError(symbol)


def rebuild_history(journal, live_state, max_entries: int = HISTORY_REPLAY) -> History | None:
    """The history (trades, candles, fills, funding, withdrawals) of the journal's last
    ``max_entries`` or more transactions, so a restarted node's tape and charts do not start
    empty: a shadow state replays them from the newest snapshot before that point (or from
    genesis) through an ``EventBus`` that publishes nothing. ``None`` if the journal is empty,
    or if the replay does not end on the live state's root (then the history starts empty,
    as before, rather than show something the state does not back)."""
    head, _ = journal.head()
    if head == 0:
        return None
    snap = journal.snapshot_at_or_before(head - max_entries) if head > max_entries else None
    if snap is None:
        state, start = State(load_genesis(journal, None)), 0
    else:
        state, start = State.from_blob(snap.state_blob), snap.seq
    bus = EventBus(state)
    bus.bind(state)

    def on_tx(entry, tx, receipt) -> None:
        bus.on_tx(entry.seq, tx, receipt)
        bus._reset_batch()  # nothing is published: only the history is kept

    replay(state, journal.entries(start + 1, head), on_tx)
    return bus.history if state.root() == live_state.root() else None
