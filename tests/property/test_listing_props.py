"""Property tests for the integer calendar and the option listing rule.

``datetime`` is used here only as an independent reference implementation.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from clearline.core.instruments import InstrumentKind, default_perpetuals
from clearline.core.listing import (
    DAY_MS,
    HOUR_MS,
    ListingRule,
    OptionTemplate,
    civil_from_days,
    days_from_civil,
    days_in_month,
    expired,
    last_friday,
    listings_due,
    ms_of,
    scheduled_expiries,
    strike_grid,
    weekday,
    ymd,
)

USD = 1_000_000
EPOCH_ORD = dt.date(1970, 1, 1).toordinal()
PY_MIN = dt.date.min.toordinal() - EPOCH_ORD
PY_MAX = dt.date.max.toordinal() - EPOCH_ORD
NOW_2000 = 946_684_800_000
NOW_2200 = 7_258_118_400_000

BTC_OPT = OptionTemplate("BTC", tick_size=100_000, lot_size=1_000_000, im_ppm=150_000, mm_ppm=75_000,
                         maker_fee_ppm=200, taker_fee_ppm=500, strike_step_usd6=1_000 * USD)

rules = st.tuples(st.integers(0, 10), st.integers(0, 6), st.integers(0, 6)).filter(any).flatmap(
    lambda counts: st.builds(
        ListingRule,
        daily=st.just(counts[0]),
        weekly=st.just(counts[1]),
        monthly=st.just(counts[2]),
        min_lead_ms=st.integers(0, 3 * DAY_MS),
        strikes_each_side=st.integers(0, 6),
        expiry_hour_utc=st.integers(0, 23),
    )
)


@given(st.integers(-(10**12), 10**12))
def test_civil_roundtrip_wide_range(z):
    y, m, d = civil_from_days(z)
    assert 1 <= m <= 12 and 1 <= d <= days_in_month(y, m)
    assert days_from_civil(y, m, d) == z
    assert civil_from_days(z + 1) > (y, m, d)


@settings(max_examples=500)
@given(st.integers(PY_MIN, PY_MAX))
def test_civil_matches_datetime(z):
    d = dt.date.fromordinal(z + EPOCH_ORD)
    assert civil_from_days(z) == (d.year, d.month, d.day)
    assert days_from_civil(d.year, d.month, d.day) == z
    assert weekday(z) == d.weekday()


@given(st.integers(1, 9999), st.integers(1, 12), st.data())
def test_last_friday_matches_datetime(y, m, data):
    lf = last_friday(y, m)
    assert dt.date(y, m, lf).weekday() == 4
    assert lf + 7 > days_in_month(y, m)
    d = data.draw(st.integers(1, days_in_month(y, m)))
    assert (dt.date(y, m, d) - dt.date(1970, 1, 1)).days == days_from_civil(y, m, d)


@given(st.integers(-(10**15), 10**15))
def test_ymd_ms_of_roundtrip(ms):
    y, m, d = ymd(ms)
    start = ms_of(y, m, d)
    assert start <= ms < start + DAY_MS
    assert ms_of(y, m, d, 23) == start + 23 * HOUR_MS


def reference_schedule(rule: ListingRule, now_ms: int) -> list[int]:
    """Brute force over datetime days: the definition, written independently."""
    cutoff = now_ms + rule.min_lead_ms
    day = dt.date(1970, 1, 1) + dt.timedelta(days=cutoff // DAY_MS - 1)
    daily: list[dt.date] = []
    weekly: list[dt.date] = []
    monthly: list[dt.date] = []
    while len(daily) < rule.daily or len(weekly) < rule.weekly or len(monthly) < rule.monthly:
        t = ((day - dt.date(1970, 1, 1)).days * 24 + rule.expiry_hour_utc) * HOUR_MS
        if t > cutoff:
            if len(daily) < rule.daily:
                daily.append(day)
            if day.weekday() == 4:
                if len(weekly) < rule.weekly:
                    weekly.append(day)
                if (day + dt.timedelta(days=7)).month != day.month and len(monthly) < rule.monthly:
                    monthly.append(day)
        day += dt.timedelta(days=1)
    days = sorted(set(daily + weekly + monthly))
    return [((d - dt.date(1970, 1, 1)).days * 24 + rule.expiry_hour_utc) * HOUR_MS for d in days]


@settings(max_examples=300)
@given(rules, st.integers(NOW_2000, NOW_2200))
def test_schedule_matches_reference(rule, now):
    got = scheduled_expiries(rule, now)
    assert got == reference_schedule(rule, now)
    assert got == sorted(set(got))
    assert all(t > now + rule.min_lead_ms and t % DAY_MS == rule.expiry_hour_utc * HOUR_MS for t in got)
    assert max(rule.daily, rule.weekly, rule.monthly) <= len(got) <= rule.daily + rule.weekly + rule.monthly


@given(st.integers(1, 20), st.integers(1_000, 10**9).map(lambda p: p * 1_000), st.integers(0, 10**9),
       st.integers(0, 10**13))
def test_compressed_schedule(n, period, lead, now):
    rule = ListingRule(daily=n, weekly=3, monthly=3, min_lead_ms=lead, strikes_each_side=1,
                       compressed_period_ms=period)
    got = scheduled_expiries(rule, now)
    assert len(got) == n
    assert all(t % period == 0 for t in got)
    assert got[0] > now + lead >= got[0] - period
    assert all(b - a == period for a, b in zip(got, got[1:]))


@given(st.integers(1, 10**15), st.integers(1, 10**12), st.integers(0, 50))
def test_strike_grid_props(index, step, n):
    g = strike_grid(index, step, n)
    assert g == sorted(set(g))
    assert all(k > 0 and k % step == 0 for k in g)
    assert len(g) <= 2 * n + 1
    centre = (index * 2 + step) // (2 * step) * step
    # half-up nearest multiple: index - step/2 < centre <= index + step/2
    assert 2 * index - step < 2 * centre <= 2 * index + step
    assert g == [c for c in range(centre - n * step, centre + n * step + 1, step) if c > 0]


@settings(max_examples=40, deadline=None)
@given(rules, st.integers(NOW_2000, NOW_2200), st.integers(1, 300_000), st.integers(1, 300_000),
       st.integers(0, 3 * DAY_MS))
def test_listings_due_idempotent_and_consistent(rule, now, idx1, idx2, dt_ms):
    perps = default_perpetuals()
    first = listings_due(rule, BTC_OPT, now, idx1 * USD, perps, next_id=2)
    assert [s.id for s in first] == list(range(2, 2 + len(first)))
    for s in first:
        s.validate()
    assert listings_due(rule, BTC_OPT, now, idx1 * USD, perps + first, next_id=2 + len(first)) == []
    # later, with a moved index: only contracts not listed yet, ids continue consecutively
    nid = 2 + len(first)
    second = listings_due(rule, BTC_OPT, now + dt_ms, idx2 * USD, perps + first, next_id=nid)
    assert [s.id for s in second] == list(range(nid, nid + len(second)))
    keys = [(s.expiry, s.strike, s.option_type) for s in first + second]
    assert len(keys) == len(set(keys))
    symbols = [s.symbol for s in perps + first + second]
    assert len(symbols) == len(set(symbols))
    assert [(s.expiry, s.strike, s.option_type) for s in second] == sorted(
        (s.expiry, s.strike, s.option_type) for s in second)
    everything = perps + first + second
    ex = expired(everything, now + dt_ms)
    assert all(s.kind == InstrumentKind.OPTION and s.expiry <= now + dt_ms for s in ex)
    assert ex == sorted(ex, key=lambda s: (s.expiry, s.id))
    assert len(ex) == sum(1 for s in everything if s.kind == InstrumentKind.OPTION and s.expiry <= now + dt_ms)
