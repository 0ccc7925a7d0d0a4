"""One price-time priority order book per instrument.

The book holds resting orders and nothing else: it knows no balances, positions or fees.
Levels are insertion-ordered dicts (order id -> order), so time priority is dict order and
cancels are O(1). Each side keeps its price keys sorted with the best price *last*, so
popping an emptied best level is O(1): bids ascending by price, asks ascending by -price.

Each side is also a linked list in priority order (``prev``/``next`` on the orders): the state
root commits every order's ``next`` and each side's head, so an L1 proof can show which
resting order is the best one. The book marks what that commitment must re-hash: an order
whose ``next`` changed (into ``dirty_orders``) and a side whose head changed (the head ids on
``market``, and ``instrument`` into ``dirty_markets``). Inline, not callbacks: the book is the
hot path of matching.
"""

from __future__ import annotations

from bisect import bisect_left

BUY = 0
SELL = 1


class RestingOrder:
    """An open order. ``remaining`` is what can still trade; ``size`` the current total
    (filled + remaining)."""

    __slots__ = ("order_id", "account", "owner", "instrument", "side", "price", "size", "remaining",
                 "tif", "flags", "stp", "expiry", "client_id", "prev", "next")

    def __init__(self, order_id, account, owner, instrument, side, price, size, remaining,
                 tif, flags, stp, expiry, client_id):
        self.order_id = order_id
        self.account = account
        self.owner = owner
        self.instrument = instrument
        self.side = side
        self.price = price
        self.size = size
        self.remaining = remaining
        self.tif = tif
        self.flags = flags
        self.stp = stp
        self.expiry = expiry
        self.client_id = client_id
        self.prev: RestingOrder | None = None  # neighbours in the side's priority order (while resting)
        self.next: RestingOrder | None = None

    def __repr__(self) -> str:
        side = "BUY" if self.side == BUY else "SELL"
        return f"RestingOrder(id={self.order_id}, acct={self.account}, {side} {self.remaining}@{self.price})"


class Book:
    __slots__ = ("instrument", "bids", "asks", "bid_keys", "ask_keys", "dirty_orders", "market", "dirty_markets")

    def __init__(self, instrument: int, dirty_orders: dict | None = None, market=None,
                 dirty_markets: set | None = None):
        self.instrument = instrument
        self.bids: dict[int, dict[int, RestingOrder]] = {}
        self.asks: dict[int, dict[int, RestingOrder]] = {}
        self.bid_keys: list[int] = []  # prices ascending; best bid = bid_keys[-1]
        self.ask_keys: list[int] = []  # -prices ascending; best ask = -ask_keys[-1]
        self.dirty_orders = dirty_orders  # order id -> order, for orders whose ``next`` changed
        self.market = market  # has ``bid_head`` / ``ask_head`` (ids), kept here; None: not tracked
        self.dirty_markets = dirty_markets  # gets ``instrument`` when a head changes

    # -- queries -------------------------------------------------------------------
    def best_bid(self) -> int | None:
        return self.bid_keys[-1] if self.bid_keys else None

    def best_ask(self) -> int | None:
        return -self.ask_keys[-1] if self.ask_keys else None

    def head(self, side: int) -> RestingOrder | None:
        """The best order of ``side`` (the first of its best level), None when it is empty."""
        if side == BUY:
            return next(iter(self.bids[self.bid_keys[-1]].values())) if self.bid_keys else None
        return next(iter(self.asks[-self.ask_keys[-1]].values())) if self.ask_keys else None

    def crosses(self, side: int, price: int) -> bool:
        """Would an order on ``side`` at ``price`` trade against the opposite side?"""
        if side == BUY:
            return bool(self.ask_keys) and -self.ask_keys[-1] <= price
        return bool(self.bid_keys) and self.bid_keys[-1] >= price

    def opposite_levels(self, side: int):
        """Yield (price, level) on the side an order of ``side`` trades against, best first."""
        if side == BUY:
            levels, keys = self.asks, self.ask_keys
            for i in range(len(keys) - 1, -1, -1):
                p = -keys[i]
                yield p, levels[p]
        else:
            levels, keys = self.bids, self.bid_keys
            for i in range(len(keys) - 1, -1, -1):
                p = keys[i]
                yield p, levels[p]

    def depth(self, side: int, max_levels: int = 10) -> list[tuple[int, int, int]]:
        """[(price, total remaining, order count)] best first."""
        out = []
        levels, keys = (self.bids, self.bid_keys) if side == BUY else (self.asks, self.ask_keys)
        sign = 1 if side == BUY else -1
        for i in range(len(keys) - 1, max(-1, len(keys) - 1 - max_levels), -1):
            p = sign * keys[i]
            lvl = levels[p]
            out.append((p, sum(o.remaining for o in lvl.values()), len(lvl)))
        return out

    def orders(self, side: int):
        """All resting orders of a side in priority order (best price, then time)."""
        for _, level in self.opposite_levels(SELL if side == BUY else BUY):
            yield from level.values()

    def __len__(self) -> int:
        return sum(len(v) for v in self.bids.values()) + sum(len(v) for v in self.asks.values())

    # -- mutation ------------------------------------------------------------------
    def add(self, order: RestingOrder) -> None:
        """Rest ``order`` last at its price: after its level's tail, or, opening a level, after
        the tail of the next better level (none: it becomes the head)."""
        p = order.price
        side = order.side
        if side == BUY:
            levels, keys, k = self.bids, self.bid_keys, p
        else:
            levels, keys, k = self.asks, self.ask_keys, -p
        level = levels.get(p)
        if level is not None:
            prev = next(reversed(level.values()))
            nxt = prev.next
        else:
            if not keys or k > keys[-1]:  # a new best level: ahead of the old head
                prev, nxt = None, self.head(side)
                keys.append(k)
            else:
                i = bisect_left(keys, k)
                keys.insert(i, k)
                better = keys[i + 1]
                prev = next(reversed(levels[better if side == BUY else -better].values()))
                nxt = prev.next
            level = levels[p] = {}
        level[order.order_id] = order
        order.prev = prev
        order.next = nxt
        if prev is None:
            self._head_moved(side, order)
        else:
            prev.next = order
            d = self.dirty_orders
            if d is not None:
                d[prev.order_id] = prev
        if nxt is not None:
            nxt.prev = order

    def remove(self, order: RestingOrder) -> None:
        p = order.price
        if order.side == BUY:
            levels, keys, k = self.bids, self.bid_keys, p
        else:
            levels, keys, k = self.asks, self.ask_keys, -p
        level = levels[p]
        del level[order.order_id]
        if not level:
            del levels[p]
            if keys[-1] == k:
                keys.pop()
            else:
                del keys[bisect_left(keys, k)]
        prev, nxt = order.prev, order.next
        if prev is None:
            self._head_moved(order.side, nxt)
        else:
            prev.next = nxt
            d = self.dirty_orders
            if d is not None:
                d[prev.order_id] = prev
        if nxt is not None:
            nxt.prev = prev
        order.prev = order.next = None

    def _head_moved(self, side: int, head: RestingOrder | None) -> None:
        """Record ``side``'s new head id on the market (its leaf is to re-hash)."""
        m = self.market
        if m is not None:
            if side == BUY:
                m.bid_head = head.order_id if head is not None else 0
            else:
                m.ask_head = head.order_id if head is not None else 0
            self.dirty_markets.add(self.instrument)
