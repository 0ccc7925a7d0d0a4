"""Option listing: integer calendar, expiry schedule, strike grid, symbols, listings_due.

``datetime`` appears here only as an independent reference; ``clearline.core.listing``
itself must never import it (checked below).
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

import clearline.core.listing as listing_module
from clearline.core.instruments import InstrumentKind, InstrumentSpec, OptionType, default_perpetuals
from clearline.core.listing import (
    DAY_MS,
    HOUR_MS,
    ListingError,
    ListingRule,
    OptionTemplate,
    civil_from_days,
    days_from_civil,
    days_in_month,
    expired,
    is_leap_year,
    last_friday,
    listings_due,
    ms_of,
    option_symbol,
    scheduled_expiries,
    strike_grid,
    weekday,
    ymd,
)

C, P = OptionType.CALL, OptionType.PUT
USD = 1_000_000
MIN = 60_000

RULE = ListingRule(daily=2, weekly=2, monthly=2, min_lead_ms=HOUR_MS, strikes_each_side=5)
BTC_OPT = OptionTemplate("BTC", tick_size=100_000, lot_size=1_000_000, im_ppm=150_000, mm_ppm=75_000,
                         maker_fee_ppm=200, taker_fee_ppm=500, strike_step_usd6=1_000 * USD)
ETH_OPT = OptionTemplate("ETH", tick_size=10_000, lot_size=10_000_000, im_ppm=150_000, mm_ppm=75_000,
                         maker_fee_ppm=200, taker_fee_ppm=500, strike_step_usd6=50 * USD)


def at(y: int, m: int, d: int, h: int = 0, minute: int = 0, ms: int = 0) -> int:
    return ms_of(y, m, d, h) + minute * MIN + ms


def exp8(y: int, m: int, d: int) -> int:
    return ms_of(y, m, d, 8)


def py_ms(y: int, m: int, d: int, h: int = 0) -> int:
    delta = dt.datetime(y, m, d, h, tzinfo=dt.timezone.utc) - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * 1000


# ------------------------------------------------------------------ purity
def test_listing_module_imports_no_clock_or_randomness():
    tree = ast.parse(Path(listing_module.__file__).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    assert not names & {"datetime", "time", "random", "calendar", "secrets", "os"}
    assert not any(isinstance(n, ast.Assert) for n in ast.walk(tree))
    assert not any(isinstance(n, ast.Constant) and isinstance(n.value, float) for n in ast.walk(tree))
    assert not any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.Div) for n in ast.walk(tree))


# ------------------------------------------------------------------ calendar
def test_known_calendar_facts():
    assert days_from_civil(1970, 1, 1) == 0
    assert civil_from_days(0) == (1970, 1, 1)
    assert weekday(0) == 3  # Thursday
    assert civil_from_days(-1) == (1969, 12, 31)
    assert days_from_civil(2026, 11, 27) == 20_784
    assert weekday(days_from_civil(2026, 11, 27)) == 4  # Friday
    assert last_friday(2026, 11) == 27
    assert last_friday(2026, 12) == 25
    assert last_friday(2027, 2) == 26
    assert last_friday(2027, 1) == 29
    assert last_friday(2026, 10) == 30
    assert days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28) == 2  # 2000 is leap (÷400)
    assert days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28) == 1  # 2100 is not
    assert days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28) == 2
    assert days_from_civil(2028, 3, 1) - days_from_civil(2028, 2, 28) == 2
    assert [is_leap_year(y) for y in (2024, 2026, 2028, 2000, 1900, 2100, 2400)] == [
        True, False, True, True, False, False, True]
    assert days_in_month(2024, 2) == 29 and days_in_month(2100, 2) == 28 and days_in_month(2026, 4) == 30
    assert days_in_month(2026, 12) == 31


def test_ymd_and_ms_of():
    t = ms_of(2026, 11, 27, 8)
    assert t == py_ms(2026, 11, 27, 8) == 20_784 * DAY_MS + 8 * HOUR_MS
    assert ymd(t) == (2026, 11, 27)
    assert ymd(t - 8 * HOUR_MS) == (2026, 11, 27)
    assert ymd(t - 8 * HOUR_MS - 1) == (2026, 11, 26)
    assert ymd(-1) == (1969, 12, 31)
    assert ms_of(1970, 1, 1) == 0


def test_calendar_matches_datetime_over_four_centuries():
    base = dt.date(1970, 1, 1).toordinal()
    for z in range(days_from_civil(1900, 1, 1), days_from_civil(2300, 1, 1), 7):
        d = dt.date.fromordinal(z + base)
        assert civil_from_days(z) == (d.year, d.month, d.day)
        assert days_from_civil(d.year, d.month, d.day) == z
        assert weekday(z) == d.weekday()


@pytest.mark.parametrize("args", [(2026, 13, 1), (2026, 0, 1), (2026, 2, 29), (2024, 2, 30), (2026, 4, 31),
                                  (2026, 1, 0)])
def test_invalid_dates_rejected(args):
    with pytest.raises(ListingError):
        days_from_civil(*args)


@pytest.mark.parametrize("hour", [-1, 24, True])
def test_invalid_hour_rejected(hour):
    with pytest.raises(ListingError):
        ms_of(2026, 1, 1, hour)


def test_listing_error_is_value_error():
    assert issubclass(ListingError, ValueError)


# ------------------------------------------------------------------ schedule
def test_schedule_thursday_morning_dedups_daily_weekly_monthly():
    # Thu 2026-11-26 06:00: cutoff 07:00, so today's 08:00 counts. Fri 27 is daily+weekly+monthly.
    got = scheduled_expiries(RULE, at(2026, 11, 26, 6))
    assert got == [exp8(2026, 11, 26), exp8(2026, 11, 27), exp8(2026, 12, 4), exp8(2026, 12, 25)]


def test_schedule_min_lead_boundary():
    # cutoff exactly 08:00 -> today's expiry is not strictly later, it is skipped
    assert scheduled_expiries(RULE, at(2026, 11, 26, 7))[0] == exp8(2026, 11, 27)
    assert scheduled_expiries(RULE, at(2026, 11, 26, 7) - 1)[0] == exp8(2026, 11, 26)
    assert scheduled_expiries(RULE, at(2026, 11, 26, 7)) == [
        exp8(2026, 11, 27), exp8(2026, 11, 28), exp8(2026, 12, 4), exp8(2026, 12, 25)]


def test_schedule_just_before_and_after_expiry_hour_without_lead():
    rule = ListingRule(daily=1, weekly=0, monthly=0, min_lead_ms=0, strikes_each_side=1)
    assert scheduled_expiries(rule, at(2026, 11, 26, 7, 59, 59_999)) == [exp8(2026, 11, 26)]
    assert scheduled_expiries(rule, at(2026, 11, 26, 8)) == [exp8(2026, 11, 27)]
    assert scheduled_expiries(rule, at(2026, 11, 26, 8) + 1) == [exp8(2026, 11, 27)]


def test_schedule_on_friday_after_the_monthly_rolls_to_next_month():
    got = scheduled_expiries(RULE, at(2026, 11, 27, 7, 30))  # cutoff 08:30 Friday, past expiry
    assert got == [exp8(2026, 11, 28), exp8(2026, 11, 29), exp8(2026, 12, 4), exp8(2026, 12, 11),
                   exp8(2026, 12, 25), exp8(2027, 1, 29)]


def test_schedule_friday_before_expiry_keeps_this_friday():
    got = scheduled_expiries(RULE, at(2026, 11, 27, 6))
    assert got == [exp8(2026, 11, 27), exp8(2026, 11, 28), exp8(2026, 12, 4), exp8(2026, 12, 25)]


def test_schedule_across_year_end_and_february():
    got = scheduled_expiries(RULE, at(2026, 12, 25, 9))
    assert got == [exp8(2026, 12, 26), exp8(2026, 12, 27), exp8(2027, 1, 1), exp8(2027, 1, 8),
                   exp8(2027, 1, 29), exp8(2027, 2, 26)]


def test_schedule_leap_day():
    rule = ListingRule(daily=2, weekly=0, monthly=1, min_lead_ms=0, strikes_each_side=1)
    assert scheduled_expiries(rule, at(2028, 2, 28, 9)) == [exp8(2028, 2, 29), exp8(2028, 3, 1),
                                                             exp8(2028, 3, 31)]
    assert scheduled_expiries(rule, at(2027, 2, 28, 9))[:2] == [exp8(2027, 3, 1), exp8(2027, 3, 2)]


def test_schedule_other_expiry_hour_and_large_lead():
    rule = ListingRule(daily=1, weekly=1, monthly=0, min_lead_ms=3 * DAY_MS, strikes_each_side=1,
                       expiry_hour_utc=16)
    # Mon 2026-11-23 17:00 + 3 days = Thu 26 17:00 -> first Fri 27 16:00
    assert scheduled_expiries(rule, at(2026, 11, 23, 17)) == [ms_of(2026, 11, 27, 16)]


def test_schedule_monthly_only():
    rule = ListingRule(daily=0, weekly=0, monthly=3, min_lead_ms=HOUR_MS, strikes_each_side=1)
    assert scheduled_expiries(rule, at(2026, 11, 1)) == [exp8(2026, 11, 27), exp8(2026, 12, 25),
                                                         exp8(2027, 1, 29)]


def test_schedule_is_deterministic_and_sorted():
    now = at(2026, 6, 15, 12, 34, 567)
    a = scheduled_expiries(RULE, now)
    assert a == scheduled_expiries(RULE, now) == sorted(set(a))


def test_compressed_mode():
    rule = ListingRule(daily=3, weekly=5, monthly=5, min_lead_ms=10_000, strikes_each_side=1,
                       compressed_period_ms=60_000)
    assert scheduled_expiries(rule, 125_000) == [180_000, 240_000, 300_000]
    assert scheduled_expiries(rule, 110_000) == [180_000, 240_000, 300_000]  # cutoff on a multiple: excluded
    assert scheduled_expiries(rule, 109_999) == [120_000, 180_000, 240_000]
    now = at(2026, 11, 27, 8, 3, 5_000)
    got = scheduled_expiries(rule, now)
    assert got == [at(2026, 11, 27, 8, 4), at(2026, 11, 27, 8, 5), at(2026, 11, 27, 8, 6)]


@pytest.mark.parametrize("kwargs", [
    dict(daily=0, weekly=0, monthly=0),
    dict(daily=-1),
    dict(weekly=367),
    dict(daily=True),
    dict(expiry_hour_utc=24),
    dict(expiry_hour_utc=-1),
    dict(min_lead_ms=-1),
    dict(strikes_each_side=-1),
    dict(strikes_each_side=501),
    dict(compressed_period_ms=-60_000),
    dict(compressed_period_ms=1_500),
    dict(compressed_period_ms=60_000, daily=0),
    dict(daily=2.0),
])
def test_rule_validation(kwargs):
    base = dict(daily=2, weekly=2, monthly=2, min_lead_ms=HOUR_MS, strikes_each_side=5)
    base.update(kwargs)
    with pytest.raises(ListingError):
        ListingRule(**base)


def test_schedule_rejects_bad_now():
    with pytest.raises(ListingError):
        scheduled_expiries(RULE, -1)
    with pytest.raises(ListingError):
        scheduled_expiries(RULE, 1.5)


# ------------------------------------------------------------------ strikes
def test_strike_grid_examples():
    step = 1_000 * USD
    assert strike_grid(100_300 * USD, step, 2) == [98_000 * USD, 99_000 * USD, 100_000 * USD,
                                                   101_000 * USD, 102_000 * USD]
    assert strike_grid(100_500 * USD, step, 0) == [101_000 * USD]  # exactly half: rounds up
    assert strike_grid(100_500 * USD - 1, step, 0) == [100_000 * USD]
    assert strike_grid(100_000 * USD, step, 1) == [99_000 * USD, 100_000 * USD, 101_000 * USD]
    assert strike_grid(1_500 * USD, step, 3) == [k * step for k in (1, 2, 3, 4, 5)]  # -1, 0 dropped
    assert strike_grid(1, step, 2) == [step, 2 * step]  # centre 0
    assert strike_grid(4, 3, 0) == [3] and strike_grid(5, 3, 0) == [6]  # odd step


@pytest.mark.parametrize("args", [(0, 1, 1), (-5, 1, 1), (100, 0, 1), (100, -1, 1), (100, 1, -1),
                                  (100, 1, 501)])
def test_strike_grid_validation(args):
    with pytest.raises(ListingError):
        strike_grid(*args)


# ------------------------------------------------------------------ symbols
def test_option_symbols():
    t = exp8(2026, 11, 27)
    assert option_symbol("BTC", t, 100_000 * USD, C) == "BTC-20261127-100000-C"
    assert option_symbol("ETH", t, 3_250 * USD, P) == "ETH-20261127-3250-P"
    assert option_symbol("ETH", t, 1_500_000, P) == "ETH-20261127-1.5-P"
    assert option_symbol("X", t, 123_456, C) == "X-20261127-0.123456-C"
    assert option_symbol("BTC", t, 100_000 * USD + 1, C) == "BTC-20261127-100000.000001-C"
    assert option_symbol("BTC", t, 100_000 * USD + 10, C) == "BTC-20261127-100000.00001-C"
    # not at the rule's expiry hour: the time of day is appended so symbols stay unique
    assert option_symbol("BTC", t + 5 * MIN, 100_000 * USD, C) == "BTC-20261127T0805-100000-C"
    assert option_symbol("BTC", t + 5 * MIN + 7_000, 100_000 * USD, C) == "BTC-20261127T080507-100000-C"
    assert option_symbol("BTC", ms_of(2026, 11, 27, 16), 1 * USD, C, expiry_hour_utc=16) == "BTC-20261127-1-C"
    assert option_symbol("BTC", t, 1 * USD, C, expiry_hour_utc=16) == "BTC-20261127T0800-1-C"


@pytest.mark.parametrize("args", [
    ("VERYLONGUNDERLYINGNAME", exp8(2026, 11, 27), 100_000 * USD + 1, C),  # > 32 bytes
    ("BTC", exp8(2026, 11, 27), 0, C),
    ("BTC", exp8(2026, 11, 27), 1 * USD, OptionType.NONE),
    ("BTC", exp8(2026, 11, 27), 1 * USD, True),
    ("BTC", 0, 1 * USD, C),
    ("BTC", exp8(2026, 11, 27) + 1, 1 * USD, C),  # not a whole second
    ("", exp8(2026, 11, 27), 1 * USD, C),
    ("BTC", ms_of(10_000, 1, 1, 8), 1 * USD, C),  # 5-digit year
])
def test_option_symbol_errors(args):
    with pytest.raises(ListingError):
        option_symbol(*args)


# ------------------------------------------------------------------ templates
@pytest.mark.parametrize("kwargs", [
    dict(underlying="BT-C"),
    dict(underlying=""),
    dict(underlying="btc€"),
    dict(underlying="TOOLONGXX"),
    dict(tick_size=0),
    dict(tick_size=1, lot_size=1),  # tick*lot not a multiple of 1e8
    dict(mm_ppm=150_000),  # maintenance not below initial
    dict(im_ppm=1_000_001),
    dict(maker_fee_ppm=600),  # maker > taker
    dict(taker_fee_ppm=200_000),  # > 10%
    dict(strike_step_usd6=0),
    dict(lot_size=True),
])
def test_template_validation(kwargs):
    base = dict(underlying="BTC", tick_size=100_000, lot_size=1_000_000, im_ppm=150_000, mm_ppm=75_000,
                maker_fee_ppm=200, taker_fee_ppm=500, strike_step_usd6=1_000 * USD)
    base.update(kwargs)
    with pytest.raises(ListingError):
        OptionTemplate(**base)


# ------------------------------------------------------------------ listings_due
NOW = at(2026, 11, 26, 6)  # schedule: Nov 26, Nov 27, Dec 4, Dec 25


def key(s: InstrumentSpec) -> tuple[int, int, int]:
    return (s.expiry, s.strike * s.tick_size, s.option_type)


def test_listings_due_initial_listing():
    perps = default_perpetuals()
    new = listings_due(RULE, BTC_OPT, NOW, 100_300 * USD, perps, next_id=2)
    assert len(new) == 4 * 11 * 2
    assert [s.id for s in new] == list(range(2, 2 + 88))
    # deterministic order: expiry, strike, call before put
    assert [key(s) for s in new] == sorted(key(s) for s in new)
    assert new[0].symbol == "BTC-20261126-95000-C" and new[1].symbol == "BTC-20261126-95000-P"
    assert new[-1].symbol == "BTC-20261225-105000-P"
    for s in new:
        s.validate()
        assert s.kind == InstrumentKind.OPTION and s.underlying == "BTC"
        assert s.tick_size == 100_000 and s.lot_size == 1_000_000
        assert (s.im_ppm, s.mm_ppm, s.maker_fee_ppm, s.taker_fee_ppm) == (150_000, 75_000, 200, 500)
        assert s.strike * s.tick_size % (1_000 * USD) == 0
    first = new[0]
    assert first.expiry == exp8(2026, 11, 26) and first.strike == 95_000 * USD // 100_000
    assert first.option_type == C and new[1].option_type == P
    assert len({s.symbol for s in new}) == len(new)
    # the same call is deterministic
    assert listings_due(RULE, BTC_OPT, NOW, 100_300 * USD, perps, next_id=2) == new


def test_listings_due_is_idempotent():
    perps = default_perpetuals()
    new = listings_due(RULE, BTC_OPT, NOW, 100_300 * USD, perps, next_id=2)
    assert listings_due(RULE, BTC_OPT, NOW, 100_300 * USD, perps + new, next_id=2 + len(new)) == []
    # the index moving inside the same rounding bucket changes nothing either
    assert listings_due(RULE, BTC_OPT, NOW + MIN, 100_499 * USD, perps + new, next_id=90) == []


def test_index_move_adds_only_missing_strikes():
    perps = default_perpetuals()
    new = listings_due(RULE, BTC_OPT, NOW, 100_300 * USD, perps, next_id=2)
    more = listings_due(RULE, BTC_OPT, NOW, 102_000 * USD, perps + new, next_id=90)
    # grid 97k..107k: 106k and 107k are new for each of the 4 expiries, calls and puts
    assert len(more) == 4 * 2 * 2
    assert [s.id for s in more] == list(range(90, 106))
    assert {s.strike * s.tick_size for s in more} == {106_000 * USD, 107_000 * USD}
    assert [s.symbol for s in more[:4]] == ["BTC-20261126-106000-C", "BTC-20261126-106000-P",
                                             "BTC-20261126-107000-C", "BTC-20261126-107000-P"]
    all_keys = [key(s) for s in new + more]
    assert len(all_keys) == len(set(all_keys))


def test_time_passing_adds_new_expiry_only():
    perps = default_perpetuals()
    new = listings_due(RULE, BTC_OPT, NOW, 100_300 * USD, perps, next_id=2)
    later = at(2026, 11, 26, 9)  # schedule now: Nov 27, Nov 28, Dec 4, Dec 25
    more = listings_due(RULE, BTC_OPT, later, 100_300 * USD, perps + new, next_id=90)
    assert len(more) == 22
    assert {s.expiry for s in more} == {exp8(2026, 11, 28)}


def test_other_underlyings_do_not_count_as_listed():
    btc = listings_due(RULE, BTC_OPT, NOW, 100_000 * USD, [], next_id=0)
    eth = listings_due(RULE, ETH_OPT, NOW, 3_000 * USD, btc, next_id=len(btc))
    assert len(eth) == len(btc) == 88
    assert eth[0].symbol == "ETH-20261126-2750-C" and eth[0].id == 88
    assert eth[0].strike == 2_750 * USD // 10_000


def test_existing_matched_by_strike_value_not_ticks():
    # a contract listed with another tick size is still the same contract
    new = listings_due(RULE, BTC_OPT, NOW, 100_000 * USD, [], next_id=0)
    coarser = OptionTemplate("BTC", tick_size=1_000_000, lot_size=100_000, im_ppm=150_000, mm_ppm=75_000,
                             maker_fee_ppm=200, taker_fee_ppm=500, strike_step_usd6=1_000 * USD)
    assert listings_due(RULE, coarser, NOW, 100_000 * USD, new, next_id=len(new)) == []


def test_strikes_not_divisible_by_tick_are_skipped():
    tmpl = OptionTemplate("XYZ", tick_size=300_000, lot_size=1_000, im_ppm=150_000, mm_ppm=75_000,
                          maker_fee_ppm=0, taker_fee_ppm=0, strike_step_usd6=1 * USD)
    rule = ListingRule(daily=1, weekly=0, monthly=0, min_lead_ms=0, strikes_each_side=5)
    got = listings_due(rule, tmpl, NOW, 10 * USD, [], next_id=0)
    assert [s.strike * s.tick_size // USD for s in got[::2]] == [6, 9, 12, 15]
    assert [s.strike for s in got[::2]] == [20, 30, 40, 50]


def test_compressed_listing_symbols_are_unique():
    rule = ListingRule(daily=3, weekly=0, monthly=0, min_lead_ms=10_000, strikes_each_side=1,
                       compressed_period_ms=60_000)
    now = at(2026, 11, 27, 8, 3, 5_000)
    got = listings_due(rule, BTC_OPT, now, 100_000 * USD, [], next_id=0)
    assert len(got) == 3 * 3 * 2
    assert len({s.symbol for s in got}) == len(got)
    assert got[0].symbol == "BTC-20261127T0804-99000-C"
    assert got[0].expiry == at(2026, 11, 27, 8, 4)


def test_listings_due_errors():
    perps = default_perpetuals()
    with pytest.raises(ListingError, match="id 0"):
        listings_due(RULE, BTC_OPT, NOW, 100_000 * USD, perps, next_id=0)
    with pytest.raises(ListingError):
        listings_due(RULE, BTC_OPT, NOW, 100_000 * USD, perps, next_id=(1 << 24) - 1)  # id overflow
    with pytest.raises(ListingError):
        listings_due(RULE, BTC_OPT, NOW, 100_000 * USD, perps, next_id=-1)
    with pytest.raises(ListingError):
        listings_due(RULE, BTC_OPT, NOW, 0, perps, next_id=2)
    with pytest.raises(ListingError):
        listings_due(RULE, BTC_OPT, -1, 100_000 * USD, perps, next_id=2)
    clash = InstrumentSpec(500, "BTC-20261126-100000-C", InstrumentKind.PERPETUAL, "OTHER", 100_000, 10_000,
                           50_000, 30_000, 0, 0)
    with pytest.raises(ListingError, match="symbol"):
        listings_due(RULE, BTC_OPT, NOW, 100_000 * USD, [clash], next_id=0)


def test_listings_due_accepts_any_iterable():
    perps = default_perpetuals()
    new = listings_due(RULE, BTC_OPT, NOW, 100_300 * USD, iter(perps), next_id=2)
    assert listings_due(RULE, BTC_OPT, NOW, 100_300 * USD, (s for s in perps + new), next_id=90) == []


# ------------------------------------------------------------------ expiry
def test_expired_orders_by_expiry_then_id():
    perps = default_perpetuals()
    new = listings_due(RULE, BTC_OPT, NOW, 100_300 * USD, perps, next_id=2)
    specs = list(reversed(perps + new))
    assert expired(specs, exp8(2026, 11, 26) - 1) == []
    due = expired(specs, exp8(2026, 11, 26))  # expiry <= now
    assert len(due) == 22 and [s.id for s in due] == list(range(2, 24))
    due = expired(specs, exp8(2026, 11, 27) + 1)
    assert len(due) == 44 and [s.id for s in due] == list(range(2, 46))
    assert all(s.kind == InstrumentKind.OPTION for s in expired(specs, 1 << 62))
    assert len(expired(specs, 1 << 62)) == 88
