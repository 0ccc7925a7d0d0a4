"""An all-zero risk array margins like no risk array (``requirements.has_risk_array``).

The market leaf encodes a missing array (``None``) as 16 zero words, so a committed state
cannot tell the two apart; the L1 margin check (``MarginVerifier``) sees only the leaf. The
core therefore charges the standard requirement for both, in every portfolio computation:
``portfolio_requirements`` (hence ``margin.health``), ``explain`` and the vectorised
``remargin``. One non-zero entry is enough to be an array.
"""

from __future__ import annotations

import pytest

from clearline.core.explain import explain
from clearline.core.instruments import InstrumentSpec
from clearline.core.margin import health
from clearline.core.requirements import has_risk_array, portfolio_requirements, standard_requirements
from clearline.core.state import Genesis, Position, State
from clearline.risk.remargin import PORTFOLIO, PortfolioBook, remargin

M = 1_000_000
PERP = InstrumentSpec(0, "X-PERP", 0, "X", tick_size=M, lot_size=10**8, im_ppm=50_000, mm_ppm=30_000,
                      maker_fee_ppm=0, taker_fee_ppm=0)
CALL = InstrumentSpec(1, "X-100-C", 1, "X", tick_size=M, lot_size=10**8, im_ppm=150_000, mm_ppm=75_000,
                      maker_fee_ppm=0, taker_fee_ppm=0, expiry=1, strike=100, option_type=1)
INDEX = 100 * M
ZERO = [0] * 16
ONE = [0] * 15 + [-1]  # a single non-zero scenario: an array


def test_has_risk_array():
    assert not has_risk_array(None)
    assert not has_risk_array(ZERO)
    assert not has_risk_array(tuple(ZERO))
    assert has_risk_array(ONE)
    assert has_risk_array([5] * 16)


@pytest.mark.parametrize("size", [3, -3])
def test_portfolio_requirements_treat_zeros_as_none(size):
    for spec, mark in ((PERP, 100), (CALL, 5)):
        none = portfolio_requirements([(spec, size, mark, None, INDEX)])
        zero = portfolio_requirements([(spec, size, mark, ZERO, INDEX)])
        im, mm = standard_requirements(spec, size, mark, INDEX)
        for r in (none, zero):
            assert (r.initial, r.maintenance, r.binding, r.contingency, r.short_option_min, r.fallback) == \
                (im, mm, -1, 0, 0, im)
        one = portfolio_requirements([(spec, size, mark, ONE, INDEX)])
        assert one.binding >= 0 and one.contingency == 3 and one.fallback == 0


def _state(arr) -> tuple[State, int]:
    st = State(Genesis(1, bytes(20), bytes(20), (PERP, CALL), (100, 5)))
    st.markets[1].risk_array = arr
    st.markets[0].risk_array = [x * M for x in range(-8, 8)]
    acct = st.account_for(b"\x01" * 20, 0)
    acct.margin_mode, acct.collateral = 1, 50 * M
    acct.positions[0] = Position(1, -100 * M, 0)
    acct.positions[1] = Position(-2, 10 * M, 0)
    return st, acct.id


def test_health_and_explain_treat_zeros_as_none():
    st_none, a = _state(None)
    st_zero, _ = _state(list(ZERO))
    assert health(st_zero, st_zero.accounts[a]) == health(st_none, st_none.accounts[a])
    rn, rz = explain(st_none, a), explain(st_zero, a)
    assert (rz.initial, rz.maintenance, rz.binding_scenario, rz.contingency) == \
        (rn.initial, rn.maintenance, rn.binding_scenario, rn.contingency)
    call_z = next(p for p in rz.positions if p.instrument == 1)
    call_n = next(p for p in rn.positions if p.instrument == 1)
    assert (call_z.initial, call_z.maintenance, call_z.scenario_loss) == \
        (call_n.initial, call_n.maintenance, call_n.scenario_loss)
    assert call_z.initial == standard_requirements(CALL, -2, 5, 0)[0] > 0  # no underlying: index 0
    st_one, _ = _state(list(ONE))
    assert health(st_one, st_one.accounts[a]) != health(st_none, st_none.accounts[a])


def test_remargin_treats_zeros_as_none():
    def book(call_array, has=None):
        b = PortfolioBook.from_python([PERP, CALL], [100, 5], [INDEX, INDEX], [[x * M for x in range(-8, 8)],
                                                                             call_array],
                                      [50 * M], [-90 * M], [PORTFOLIO], [(0, 0, 1), (0, 1, -2)])
        return [v.tolist() for v in remargin(b)]

    none = book(None)
    assert book(ZERO) == none
    assert book(ONE) != none
    ref = portfolio_requirements([(PERP, 1, 100, [x * M for x in range(-8, 8)], INDEX), (CALL, -2, 5, ZERO, INDEX)])
    assert (none[1][0], none[2][0], none[3][0]) == (ref.initial, ref.maintenance, ref.binding)
    # has_array set explicitly on an all-zero row (update_risk) is overridden the same way
    b = PortfolioBook.from_python([PERP, CALL], [100, 5], [INDEX, INDEX], [[x * M for x in range(-8, 8)], None],
                                  [50 * M], [-90 * M], [PORTFOLIO], [(0, 0, 1), (0, 1, -2)])
    b.update_risk([ZERO], [1])
    assert bool(b.has_array[1])
    assert [v.tolist() for v in remargin(b)] == none
