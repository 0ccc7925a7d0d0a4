"""Decimal strings <-> integers at the API boundary: exact both ways, junk refused."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearline.api.errors import ApiError
from clearline.api.numbers import (amount_to_usd6, fmt_lots, fmt_ticks, fmt_usd6, parse_uint, price_to_ticks,
                                   size_to_lots)


def test_exact_conversions():
    assert price_to_ticks("65000.5", 100_000) == 650_005
    assert price_to_ticks("65000.50000", 100_000) == 650_005
    assert size_to_lots("0.01", 10_000) == 100
    assert amount_to_usd6("1500.25") == 1_500_250_000
    assert amount_to_usd6("0.000001") == 1
    assert fmt_ticks(650_005, 100_000) == "65000.5" and fmt_lots(100, 10_000) == "0.01"
    assert fmt_usd6(-1_500_250_000) == "-1500.25" and fmt_usd6(0) == "0"


@pytest.mark.parametrize("text", ["1e5", "0x10", "12,5", " 1", "1 ", "-1", "+1", "NaN", "inf", "", "1.", ".5",
                                  "01", "1_000", "١٢", "1.2.3"])
def test_junk_is_malformed(text):
    with pytest.raises(ApiError) as e:
        price_to_ticks(text, 100_000)
    assert e.value.name == "MALFORMED_NUMBER"


@pytest.mark.parametrize("fn, text", [(lambda t: price_to_ticks(t, 100_000), "65000.05"),
                                      (lambda t: size_to_lots(t, 10_000), "0.00015"),
                                      (amount_to_usd6, "0.0000001")])
def test_off_grid_is_not_a_multiple(fn, text):
    with pytest.raises(ApiError) as e:
        fn(text)
    assert e.value.name == "NOT_A_MULTIPLE"


def test_uints():
    assert parse_uint("18446744073709551615", "nonce") == (1 << 64) - 1
    for bad, name in ((1 << 64, "OUT_OF_RANGE"), ("-1", "MALFORMED_NUMBER"), (True, "BAD_REQUEST"),
                      (1.5, "BAD_REQUEST")):
        with pytest.raises(ApiError) as e:
            parse_uint(bad, "nonce")
        assert e.value.name == name


@given(ticks=st.integers(1, (1 << 64) - 1), tick=st.sampled_from([1, 10_000, 100_000, 1_000_000]),
       lots=st.integers(1, (1 << 63)), lot=st.sampled_from([1, 1_000, 10_000, 1_000_000]))
def test_round_trip_is_exact(ticks, tick, lots, lot):
    assert price_to_ticks(fmt_ticks(ticks, tick), tick) == ticks
    assert size_to_lots(fmt_lots(lots, lot), lot) == lots
