"""The hand-optimised leaf encoders (clearline.core.encoding, used by ``State.root``) write
exactly the bytes of the straightforward reference encoders, and raise exactly what they
raise (same exception type and message) on values out of range or of the wrong type."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearline.core import encoding
from clearline.core.errors import InvariantBroken
from clearline.core.instruments import InstrumentSpec, Market, MarketStatus
from clearline.core.state import Genesis, State


def _outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as exc:  # compared, not swallowed
        return ("raised", type(exc), str(exc))


def uint(bits):
    return st.integers(0, (1 << bits) - 1)


def int_(bits):
    return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


# in range ~97% of the time (a leaf has up to 43 values: most leaves drawn stay valid, so
# the fast paths are exercised); else just out of range, or not a plain int at all
def near(bits, signed=False):
    good = int_(bits) if signed else uint(bits)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    bad = st.sampled_from([lo - 1, hi + 1, 1.0, None, "1", True, MarketStatus.HALTED])
    return st.integers(0, 31).flatmap(lambda r: bad if r == 0 else good)


ascii32 = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=32)
risk = st.one_of(st.none(), st.lists(near(64, True), min_size=16, max_size=16),
                 st.tuples(*[int_(64)] * 16), st.lists(int_(64), min_size=15, max_size=17),
                 st.sampled_from([5, b"\x00" * 16, "x" * 16]))

TERMS = dict(id=near(32), symbol=st.integers(0, 15).flatmap(
                 lambda r: st.sampled_from(["x" * 33, "BTC€", b"BTC"]) if r == 0 else ascii32),
             kind=near(8), underlying=ascii32, tick_size=near(64), lot_size=near(64), im_ppm=near(32),
             mm_ppm=near(32), maker_fee_ppm=near(32, True), taker_fee_ppm=near(32, True), expiry=near(64),
             strike=near(64), option_type=near(8))
STATE = dict(status=near(8), mark_price=near(64), mark_time=near(64), funding_index=near(256, True),
             open_interest=near(64), premium_sum=near(64, True), premium_samples=near(32),
             last_funding_time=near(64), last_funding_rate_ppm=near(64, True), settlement_price=near(64),
             last_sample_time=near(64), risk_array=risk, unpaid_lots=near(64), pay_float=near(64, True),
             bid_head=near(64), ask_head=near(64))


@settings(max_examples=500, deadline=None)
@given(terms=st.fixed_dictionaries(TERMS), state=st.fixed_dictionaries(STATE))
def test_market_leaf_fast_equals_reference(terms, state):
    assert _outcome(encoding.encode_market_leaf, **terms, **state) == \
        _outcome(encoding._market_leaf_reference, **terms, **state)


@settings(max_examples=500, deadline=None)
@given(state=st.fixed_dictionaries(STATE))
def test_market_leaf_state_equals_reference(state):
    values = [state[k] for k in STATE]  # positional, in leaf order
    assert _outcome(encoding.market_leaf_state, *values) == _outcome(encoding._market_state_reference, *values)


@settings(max_examples=500, deadline=None)
@given(values=st.tuples(near(64), near(32), near(32), near(8), near(8), near(8), near(8), near(64), near(64),
                        near(64), near(64), near(64), near(64)))
def test_order_leaf_fast_equals_reference(values):
    assert _outcome(encoding.encode_order_leaf, *values) == _outcome(encoding._order_leaf_reference, *values)


position = st.tuples(near(32), near(64, True), near(256, True), near(256, True))


@settings(max_examples=500, deadline=None)
@given(id=near(32), owner=st.integers(0, 7).flatmap(lambda r: st.one_of(
           st.binary(max_size=21), st.sampled_from([bytearray(20), None])) if r == 0 else
           st.binary(min_size=20, max_size=20)),
       sub=near(32), coll=near(256, True), nonce=near(64), mode=near(8), flags=near(8),
       positions=st.one_of(st.lists(position, max_size=6),
                           st.lists(position, max_size=6).map(lambda ps: sorted(
                               {p[0]: p for p in ps if type(p[0]) is int}.values())),
                           st.lists(st.tuples(uint(32), int_(64), int_(256), int_(256)), max_size=6).map(
                               lambda ps: sorted({p[0]: p for p in ps}.values())),
                           st.sampled_from([[(1, 2, 3)], [(1, 2, 3, 4, 5)], [None]])))
def test_account_leaf_fast_equals_reference(id, owner, sub, coll, nonce, mode, flags, positions):
    args = (id, owner, sub, coll, nonce, positions)
    kw = dict(margin_mode=mode, flags=flags)
    assert _outcome(encoding.encode_account_leaf, *args, **kw) == \
        _outcome(encoding._account_leaf_reference, *args, **kw)


def _spec(i: int, **kw) -> InstrumentSpec:
    base = dict(id=i, symbol=f"BTC-{i}", kind=0, underlying="BTC", tick_size=100_000, lot_size=10_000,
                im_ppm=50_000, mm_ppm=30_000, maker_fee_ppm=100, taker_fee_ppm=500)
    return InstrumentSpec(**{**base, **kw})


@settings(max_examples=200, deadline=None)
@given(state=st.fixed_dictionaries({k: (uint(8) if k == "status" else v) for k, v in STATE.items()}))
def test_state_market_leaf_cache_equals_reference(state):
    """``State._market_leaf_cached`` (constant words cached per spec) is ``State.market_leaf``,
    also after the market's spec object is replaced."""
    s = State(Genesis(1, bytes(20), bytes(20), (_spec(0), _spec(1))))
    for mid in (0, 1):
        m = s.markets[mid]
        for k, v in state.items():
            setattr(m, k, v)
        assert _outcome(s._market_leaf_cached, m) == _outcome(State.market_leaf, m)
        m.spec = _spec(mid, symbol="ETH-X", underlying="ETH", expiry=7)
        assert _outcome(s._market_leaf_cached, m) == _outcome(State.market_leaf, m)


def test_fast_encoders_raise_invariant_broken():
    with pytest.raises(InvariantBroken, match="mark_price"):
        encoding.market_leaf_state(0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, None)
    m = Market(_spec(0))
    m.risk_array = [0] * 15 + [1 << 63]
    with pytest.raises(InvariantBroken, match="risk_array"):
        State(Genesis(1, bytes(20), bytes(20), (_spec(0),)))._market_leaf_cached(m)


hash32 = st.integers(0, 15).flatmap(lambda r: st.sampled_from([bytes(31), bytearray(32), None, "x" * 32])
                                    if r == 0 else st.binary(min_size=32, max_size=32))


@settings(max_examples=500, deadline=None)
@given(kw=st.fixed_dictionaries(dict(
    accounts_root=hash32, orders_root=hash32, markets_root=hash32, l1_queue_pos=near(64), fee_pool=near(256),
    insurance_fund=near(256), next_order_id=near(64), next_account_id=near(32), time_ms=near(64),
    total_deposits=near(256), total_withdrawals=near(256))))
def test_state_encoding_fast_equals_reference(kw):
    assert _outcome(encoding.encode_state, **kw) == _outcome(encoding._state_reference, **kw)


LAYOUTS = [(encoding._DEPOSIT, encoding._DEPOSIT_MASK), (encoding._ORDER, encoding._ORDER_MASK),
           (encoding._CANCEL, encoding._CANCEL_MASK), (encoding._REPLACE, encoding._REPLACE_MASK),
           (encoding._WITHDRAW, encoding._WITHDRAW_MASK), (encoding._TRANSFER, encoding._TRANSFER_MASK),
           (encoding._OPERATOR, encoding._OPERATOR_MASK), (encoding._MARGIN_MODE, encoding._MARGIN_MODE_MASK)]


def _check_static_reference(data, layout, mask):
    if len(data) != layout.size:
        raise encoding.Rejected(encoding.ErrorCode.MALFORMED, f"expected {layout.size} bytes, got {len(data)}")
    if int.from_bytes(data, "big") & mask:
        raise encoding.Rejected(encoding.ErrorCode.MALFORMED, "non-canonical padding")
    return layout.unpack(data)


@settings(max_examples=500, deadline=None)
@given(which=st.integers(0, len(LAYOUTS) - 1), seed=st.binary(min_size=32, max_size=32),
       flips=st.lists(st.integers(0, 32 * 17 * 8 - 1), max_size=3), trim=st.sampled_from([0, 0, 0, 1, -1]))
def test_static_decode_check_equals_the_mask_check(which, seed, flips, trim):
    """``_check_static`` (pack(unpack(data)) == data) accepts exactly the bytes the padding
    mask accepts, and returns the same fields."""
    layout, mask = LAYOUTS[which]
    # canonical bytes: random field values through pack, then maybe a few bits flipped anywhere
    words = bytearray()
    while len(words) < layout.size:
        seed = encoding.keccak(seed)
        words += seed
    canonical = (int.from_bytes(words[:layout.size], "big") & ~mask).to_bytes(layout.size, "big")
    n = int.from_bytes(canonical, "big")
    for bit in flips:
        if bit < layout.size * 8:
            n ^= 1 << bit
    data = n.to_bytes(layout.size, "big")
    data = data[:-1] if trim == -1 else data + b"\x00" * trim
    assert _outcome(encoding._check_static, data, layout, mask) == _outcome(_check_static_reference, data, layout,
                                                                             mask)
