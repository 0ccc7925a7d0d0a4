"""The price-time order book on its own (no balances), and matching plans through ``AdmitAll``."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from clearline.core.book import BUY, SELL, Book, RestingOrder
from clearline.core.matching import AdmitAll, CloseReason, execute_on_book, plan_match

OWNER_A = b"\xaa" * 20
OWNER_B = b"\xbb" * 20


def order(oid, side, price, qty, owner=OWNER_A, account=0, expiry=0, flags=0):
    return RestingOrder(oid, account, owner, 0, side, price, qty, qty, 0, flags, 0, expiry, 0)


def test_empty_book():
    b = Book(0)
    assert b.best_bid() is None and b.best_ask() is None
    assert not b.crosses(BUY, 10**18) and not b.crosses(SELL, 1)
    assert b.depth(BUY) == [] and b.depth(SELL) == [] and len(b) == 0


def test_best_prices_depth_and_priority():
    b = Book(0)
    for o in (order(1, BUY, 100, 2), order(2, BUY, 102, 1), order(3, BUY, 100, 5), order(4, BUY, 101, 1),
              order(5, SELL, 105, 3), order(6, SELL, 103, 1), order(7, SELL, 105, 2), order(8, SELL, 110, 1)):
        b.add(o)
    assert (b.best_bid(), b.best_ask()) == (102, 103)
    assert b.depth(BUY) == [(102, 1, 1), (101, 1, 1), (100, 7, 2)]
    assert b.depth(SELL) == [(103, 1, 1), (105, 5, 2), (110, 1, 1)]
    assert b.depth(SELL, max_levels=2) == [(103, 1, 1), (105, 5, 2)]
    assert [o.order_id for o in b.orders(BUY)] == [2, 4, 1, 3]
    assert [o.order_id for o in b.orders(SELL)] == [6, 5, 7, 8]
    assert [p for p, _ in b.opposite_levels(BUY)] == [103, 105, 110]  # a buy meets the asks
    assert [p for p, _ in b.opposite_levels(SELL)] == [102, 101, 100]
    assert b.crosses(BUY, 103) and not b.crosses(BUY, 102)
    assert b.crosses(SELL, 102) and not b.crosses(SELL, 103)
    assert len(b) == 8


def test_remove_middle_best_and_last_levels():
    b = Book(0)
    os_ = [order(1, SELL, 105, 1), order(2, SELL, 103, 1), order(3, SELL, 104, 1), order(4, SELL, 104, 1)]
    for o in os_:
        b.add(o)
    b.remove(os_[2])  # one of two at 104: level stays
    assert b.depth(SELL) == [(103, 1, 1), (104, 1, 1), (105, 1, 1)]
    b.remove(os_[3])  # the level empties: key removed from the middle
    assert b.depth(SELL) == [(103, 1, 1), (105, 1, 1)] and b.ask_keys == [-105, -103]
    b.remove(os_[1])  # best level
    assert b.best_ask() == 105
    b.remove(os_[0])
    assert b.best_ask() is None and b.asks == {} and b.ask_keys == []


def test_plan_does_not_mutate_and_execute_applies():
    b = Book(0)
    for o in (order(1, SELL, 100, 2), order(2, SELL, 100, 3, owner=OWNER_B), order(3, SELL, 101, 4)):
        b.add(o)
    before = [(o.order_id, o.remaining) for o in b.orders(SELL)]
    plan = plan_match(b, BUY, 100, 4, account=9, owner=OWNER_B, stp=0, reduce_only=False, time_ms=0,
                      gate=AdmitAll())
    # order 2 is the taker's own (OWNER_B): CANCEL_RESTING skips it; 101 is beyond the limit
    assert [(o.order_id, q) for o, q in plan.fills] == [(1, 2)]
    assert [(o.order_id, r) for o, r in plan.cancels] == [(2, CloseReason.SELF_TRADE)]
    assert plan.filled == 2 and plan.stop == 0
    assert [(o.order_id, o.remaining) for o in b.orders(SELL)] == before
    closed = execute_on_book(b, plan)
    assert [(o.order_id, r) for o, r in closed] == [(1, CloseReason.FILLED), (2, CloseReason.SELF_TRADE)]
    assert [(o.order_id, o.remaining) for o in b.orders(SELL)] == [(3, 4)]
    assert closed[1][0].remaining == 3  # a cancelled order keeps its unfilled lots for the event


def test_plan_cancels_expired_and_stops_on_cancel_incoming():
    b = Book(0)
    for o in (order(1, BUY, 100, 2, expiry=50), order(2, BUY, 100, 3), order(3, BUY, 99, 4, owner=OWNER_B)):
        b.add(o)
    plan = plan_match(b, SELL, 90, 10, account=9, owner=OWNER_B, stp=1, reduce_only=False, time_ms=50,
                      gate=AdmitAll())
    assert [(o.order_id, r) for o, r in plan.cancels] == [(1, CloseReason.EXPIRED)]
    assert [(o.order_id, q) for o, q in plan.fills] == [(2, 3)]
    assert plan.filled == 3 and plan.stop == CloseReason.SELF_TRADE


# -- the book against a naive model -----------------------------------------------------------------
ops = st.lists(st.tuples(st.booleans(), st.integers(0, 1), st.integers(95, 105), st.integers(1, 5),
                         st.integers(0, 40)), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_book_matches_a_naive_model(script):
    """Priority, depth and the committed links: after every add and remove, each side's
    linked list (head, ``next``, ``prev``) is its priority order, and the book reported every
    order whose ``next`` changed and every side whose head changed."""
    relinked: dict[int, RestingOrder] = {}
    moved: set[int] = set()
    market = SimpleNamespace(bid_head=0, ask_head=0)
    b = Book(0, relinked, market, moved)
    model: dict[int, RestingOrder] = {}  # id -> order, in arrival order
    next_id = 1
    before = {BUY: [], SELL: []}  # (id, next id) in priority order
    for is_add, side, price, qty, pick in script:
        relinked.clear()
        moved.clear()
        heads_moved = False
        if is_add or not model:
            o = order(next_id, side, price, qty)
            next_id += 1
            b.add(o)
            model[o.order_id] = o
        else:
            oid = list(model)[pick % len(model)]
            gone = model.pop(oid)
            b.remove(gone)
            assert gone.prev is None and gone.next is None
        for s in (BUY, SELL):
            mine = [o for o in model.values() if o.side == s]
            # best price first, then arrival (stable sort keeps arrival order)
            mine.sort(key=lambda o: -o.price if s == BUY else o.price)
            assert [o.order_id for o in b.orders(s)] == [o.order_id for o in mine]
            walk, o = [], b.head(s)
            while o is not None:
                walk.append(o)
                o = o.next
            assert walk == mine and all(x.prev is y for x, y in zip(mine[1:], mine))
            assert (mine[0].prev if mine else None) is None
            # reported: exactly the surviving orders whose successor changed, and a moved head
            was = dict(before[s])
            assert {o.order_id for o in relinked.values() if o.side == s} == {
                o.order_id for i, o in enumerate(mine) if o.order_id in was
                and was[o.order_id] != (mine[i + 1].order_id if i + 1 < len(mine) else 0)}
            old_head = next(iter(was), 0)
            new_head = mine[0].order_id if mine else 0
            assert (market.bid_head if s == BUY else market.ask_head) == new_head
            heads_moved |= new_head != old_head
            before[s] = [(o.order_id, mine[i + 1].order_id if i + 1 < len(mine) else 0) for i, o in enumerate(mine)]
            levels: dict[int, list[int]] = {}
            for o in mine:
                levels.setdefault(o.price, []).append(o.remaining)
            assert b.depth(s, 100) == [(p, sum(v), len(v)) for p, v in levels.items()]
        assert moved == ({0} if heads_moved else set())  # the market leaf is to re-hash exactly then
        bids = [o.price for o in model.values() if o.side == BUY]
        asks = [o.price for o in model.values() if o.side == SELL]
        assert b.best_bid() == (max(bids) if bids else None)
        assert b.best_ask() == (min(asks) if asks else None)
        assert b.bid_keys == sorted(set(bids)) and b.ask_keys == sorted(-p for p in set(asks))
        assert len(b) == len(model)


def test_an_order_meets_at_most_max_makers_per_order_resting_orders():
    """Expired and self-trade cancels count as met: each touches a resting order's leaf."""
    from clearline.core.matching import MAX_MAKERS_PER_ORDER as N

    b = Book(0)
    b.add(order(1, SELL, 100, 1, expiry=10))  # expired at time 10: cancelled, counted
    b.add(order(2, SELL, 100, 1, owner=OWNER_B))  # the taker's own: cancelled (stp 0), counted
    for i in range(N + 3):
        b.add(order(3 + i, SELL, 100 + i % 3, 1))
    plan = plan_match(b, BUY, 200, 100, account=9, owner=OWNER_B, stp=0, reduce_only=False, time_ms=10,
                      gate=AdmitAll())
    assert len(plan.fills) + len(plan.cancels) == N and len(plan.fills) == N - 2
    assert plan.filled == N - 2 and plan.stop == CloseReason.MAKER_LIMIT
    met = [o.order_id for o in b.orders(SELL)][:N]
    assert [o.order_id for o, _ in plan.cancels] + [o.order_id for o, _ in plan.fills] == met
    exact = plan_match(b, BUY, 200, N - 2, account=9, owner=OWNER_B, stp=0, reduce_only=False, time_ms=10,
                       gate=AdmitAll())
    assert exact.filled == N - 2 and exact.stop == 0  # filled by the last order it may meet: no stop
