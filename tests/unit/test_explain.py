"""Margin explained: totals equal the engine's, and liquidation prices are exact boundaries."""

import pytest

from clearline.core.explain import explain
from helpers import BTC, ETH, Exchange

FUND = 1_000_000_000  # $1,000


@pytest.fixture
def ex():
    return Exchange()


def _equity_minus_mm_at(ex, account, instrument, price):
    ex.ok(ex.mark({instrument: price}))
    eq, _, mm = ex.health(account)
    return eq - mm


@pytest.mark.parametrize("side", ["long", "short"])
def test_liquidation_price_is_the_last_healthy_tick(side):
    ex = Exchange()
    a = ex.account(1, FUND)
    mkr = ex.account(2, 100 * FUND)
    mark = ex.state.markets[BTC].mark_price
    size = 15_000  # lots of $1 notional each against $1,000: ~15x
    if side == "long":
        ex.ok(ex.sell(mkr, mark, size))
        ex.ok(ex.buy(a, mark, size))
    else:
        ex.ok(ex.buy(mkr, mark, size))
        ex.ok(ex.sell(a, mark, size))
    rep = explain(ex.state, a)
    eq, im, mm = ex.health(a)
    assert (rep.equity, rep.initial, rep.maintenance) == (eq, im, mm)
    (pos,) = rep.positions
    assert pos.size == (size if side == "long" else -size)
    assert (pos.initial, pos.maintenance) == (im, mm)  # a single position carries everything
    liq = pos.liquidation_price
    assert liq is not None
    beyond = liq - 1 if side == "long" else liq + 1
    assert _equity_minus_mm_at(ex, a, BTC, liq) >= 0  # still healthy at the reported price
    assert _equity_minus_mm_at(ex, a, BTC, beyond) < 0  # one tick further: liquidatable


def test_explain_sums_positions_in_standard_mode(ex):
    a = ex.account(1, 10 * FUND)
    mkr = ex.account(2, 100 * FUND)
    for inst, size in ((BTC, 40), (ETH, 70)):
        mark = ex.state.markets[inst].mark_price
        ex.ok(ex.sell(mkr, mark, size, instrument=inst))
        ex.ok(ex.buy(a, mark, size, instrument=inst))
    rep = explain(ex.state, a)
    assert rep.mode == "standard"
    assert sum(p.initial for p in rep.positions) == rep.initial
    assert sum(p.maintenance for p in rep.positions) == rep.maintenance
    assert rep.free_collateral == max(0, min(rep.collateral, rep.equity - rep.initial))
    assert rep.binding_scenario is None
