"""Differential test of ``MatchVerifier.meet``: one meeting of an incoming order with the head of
the book, re-executed on L1, against the core's own ``plan_match(..., max_makers=1)`` and
``settle_plan`` (``clearline.watchtower.match_witness.meeting``), on the in-process EVM.

States are built directly, so every rule of a meeting is reached without a trading history:
accounts of three owners (two subaccounts each) with thin or fat collateral, standard or
portfolio margin, perpetual and option positions (some close to the 32-position limit), risk
arrays; books of resting orders on both sides from every account, some reduce-only, some past
their expiry; a perpetual without a maker fee. Each case is an incoming order (a random account,
side, limit around the book, size, self-trade mode, reduce-only or not) matched meeting by
meeting, each meeting against the state the previous one left: the contract's ``MatchResult``
(met, lots filled, the stop reason, the resting order's close reason, and the whole post-state
preimage: accounts, orders and markets roots, fee pool) must be the core's.

``CLEARLINE_DIFF_MEETINGS`` sets the number of meetings (default 250), ``CLEARLINE_DIFF_SEED``
the seed.
"""

from __future__ import annotations

import os
import random
import statistics

import pytest

from clearline.core import eip712
from clearline.core.book import BUY, SELL, RestingOrder
from clearline.core.instruments import InstrumentKind, InstrumentSpec
from clearline.core.matching import CloseReason
from clearline.core.state import MAX_POSITIONS, Genesis, Position, State
from clearline.core.underlying import UnderlyingConfig
from clearline.l1.chain import InProcessChain, revert_data
from clearline.l1.client import decode_revert
from clearline.l1.deploy import load_artifact
from clearline.oracle.aggregate import OracleConfig, OracleState
from clearline.watchtower.match_witness import NONE, Taker, match_inputs, meeting

N_MEETINGS = int(os.environ.get("CLEARLINE_DIFF_MEETINGS", "250"))
SEED = int(os.environ.get("CLEARLINE_DIFF_SEED", "8"))
USD = 10**6
OPERATOR_KEY = bytes.fromhex("11" * 32)
KEYS = [bytes([i + 1]) * 32 for i in range(3)]


def deploy_match_verifier(chain):
    """A MatchVerifier (and the MarginVerifier it calls) on ``chain``: its web3 contract."""
    w3 = chain.w3
    deployed = {}
    for name, args in (("MarginVerifier", ()), ("MatchVerifier", None)):
        art = load_artifact(name)
        factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        ctor = factory.constructor(*(args if args is not None else (deployed["MarginVerifier"],)))
        deployed[name] = chain.transact(ctor, chain.accounts[0])["contractAddress"]
    return w3.eth.contract(address=deployed["MatchVerifier"], abi=load_artifact("MatchVerifier")["abi"])


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=2)
    yield chain, deploy_match_verifier(chain)
    chain.close()


def _specs() -> list[InstrumentSpec]:
    """Two perpetuals (BTC's without a maker fee) and calls and puts on both underlyings."""
    specs = [InstrumentSpec(0, "BTC-PERP", InstrumentKind.PERPETUAL, "BTC", tick_size=100_000, lot_size=10_000,
                            im_ppm=50_000, mm_ppm=30_000, maker_fee_ppm=0, taker_fee_ppm=500),
             InstrumentSpec(1, "ETH-PERP", InstrumentKind.PERPETUAL, "ETH", tick_size=10_000, lot_size=100_000,
                            im_ppm=50_000, mm_ppm=30_000, maker_fee_ppm=100, taker_fee_ppm=500)]
    nid = 2
    for und, tick, lot, index_ticks, step in (("BTC", 100_000, 1_000_000, 100_000, 5_000),
                                               ("ETH", 10_000, 10_000_000, 100_000, 5_000)):
        for strike in (index_ticks - step, index_ticks + step):
            for otype, tag in ((1, "C"), (2, "P")):
                specs.append(InstrumentSpec(nid, f"{und}-X-{strike}-{tag}", InstrumentKind.OPTION, und, tick, lot,
                                            150_000, 75_000, 200, 500, expiry=10**13, strike=strike,
                                            option_type=otype))
                nid += 1
    return specs


def _priced(specs) -> State:
    """A state of ``specs`` with BTC and ETH configured and indexed (10,000 and 1,000 USD)."""
    oracle = OracleConfig((eip712.address_of(OPERATOR_KEY),), quorum=1, staleness_ms=5_000,
                          max_deviation_ppm=100_000, confirmations=2)
    genesis = Genesis(31337, bytes(20), eip712.address_of(OPERATOR_KEY), tuple(specs), (100_000, 100_000),
                      (UnderlyingConfig(0, "BTC", oracle), UnderlyingConfig(1, "ETH", oracle)))
    st = State(genesis)
    for uid, index in ((0, 10_000 * USD), (1, 1_000 * USD)):
        st.underlyings[uid].oracle = OracleState(uid, index, 1, 1)
        st.dirty_underlyings.add(uid)
    return st


def _state(rng: random.Random) -> State:
    st = _priced(_specs())
    for m in st.markets.values():
        s = m.spec
        if s.kind == InstrumentKind.OPTION:
            m.mark_price = rng.randrange(50, 1_500)
        if rng.random() < 0.7:
            m.risk_array = [rng.randrange(-50_000, 50_000) * s.tick_value // 10 for _ in range(16)]
        st.dirty_markets.add(s.id)
    st.fee_pool = 10_000 * USD  # fees collected before
    for k in KEYS:
        owner = eip712.address_of(k)
        for sub in (0, 1):
            a = st.account_for(owner, sub)
            a.collateral = rng.choice((0, 1, 50, 500, 5_000, 100_000, 100_000, 1_000_000)) * USD
            a.margin_mode = rng.randrange(2)
            n = rng.choice((0, 1, 2, 4, MAX_POSITIONS)) if rng.random() < 0.1 else rng.randrange(0, 4)
            for inst in sorted(rng.sample(sorted(st.markets), min(n, len(st.markets)))):
                m = st.markets[inst]
                size = rng.choice((-1, 1)) * rng.randrange(1, 40)
                quote = -size * m.mark_price * m.spec.tick_value + rng.randrange(-200, 200) * USD
                a.positions[inst] = Position(size, quote, m.funding_index)
                st.holders[inst].add(a.id)
    for m in st.markets.values():  # open interest: the long lots
        m.open_interest = sum(a.positions[m.spec.id].size for a in st.accounts
                              if a.positions.get(m.spec.id) is not None and a.positions[m.spec.id].size > 0)
    st.time_ms = 1_000
    return st


def _rest_orders(st: State, rng: random.Random, instrument: int, count: int) -> None:
    """Resting orders on both sides of ``instrument`` around its mark, from random accounts."""
    mark = st.markets[instrument].mark_price
    for _ in range(count):
        a = st.accounts[rng.randrange(len(st.accounts))]
        side = rng.choice((BUY, SELL))
        off = rng.randrange(0, 6) * max(1, mark // 200)
        price = max(1, mark - off) if side == BUY else mark + off
        price += rng.choice((0, 0, 1, -1)) if price > 1 else 0
        flags = 2 if rng.random() < 0.2 else 0
        expiry = rng.choice((0, 0, 0, 1_500, 5_000_000))
        size = rng.randrange(1, 30)
        o = RestingOrder(st.next_order_id, a.id, a.owner, instrument, side, price, size, size, 0 if not expiry else 1,
                         flags, 0, expiry, 0)
        st.next_order_id += 1
        st.open_order(o)


def call_or_fail(fn, *args):
    """``fn(*args).call()`` on a MatchVerifier function; a revert (the witness did not prove)
    fails the test with the decoded error."""
    try:
        return fn(*args).call()
    except Exception as exc:
        data = revert_data(exc)
        raise AssertionError(f"{fn.fn_name} reverted: {decode_revert(data) if data else exc}") from None


def _call(verifier, call, witness):
    return call_or_fail(verifier.functions.meet, call, witness)


def _norm(result) -> tuple:
    met, filled, stop, reason, post = result
    return (bool(met), int(filled), int(stop), int(reason), tuple(bytes(v) if isinstance(v, (bytes, bytearray)) else int(v)
                                                                 for v in post))


def _taker(st: State, rng: random.Random, instrument: int) -> Taker:
    holders = [a for a in st.accounts if instrument in a.positions]
    if holders and rng.random() < 0.4:  # an order against a held position: reductions, closes, flips
        a = rng.choice(holders)
        size = a.positions[instrument].size
        side = SELL if size > 0 else BUY
        qty = rng.choice((abs(size), abs(size), max(1, abs(size) // 2), abs(size) + rng.randrange(1, 10)))
        ro = rng.random() < (0.6 if qty > abs(size) else 0.2)  # more than it holds: a reduce-only cut
    else:
        a = st.accounts[rng.randrange(len(st.accounts))]
        side = rng.choice((BUY, SELL))
        qty = rng.choice((1, 2, 5, 20, 60, 200))
        ro = rng.random() < 0.2
    head = st.books[instrument].head(SELL if side == BUY else BUY)
    mark = st.markets[instrument].mark_price
    ref = head.price if head is not None else mark
    limit = max(1, ref + (1 if side == BUY else -1) * rng.choice((0, 0, 1, 5, 50, -1)) * max(1, mark // 200))
    return Taker(a.id, side, limit, qty, rng.randrange(3), ro)


def _position_changes(before: State, after: State, instrument: int) -> list[str]:
    """How a fill changed each account's position in ``instrument``."""
    out = []
    for a in before.accounts:
        p, q = a.positions.get(instrument), after.accounts[a.id].positions.get(instrument)
        s, t = (p.size if p else 0), (q.size if q else 0)
        if s == t:
            continue
        out.append("opened" if s == 0 else "closed" if t == 0 else "flipped" if (s > 0) != (t > 0)
                   else "increased" if abs(t) > abs(s) else "reduced")
    return out


def test_meetings_core_equals_verifier(env):
    _, verifier = env
    rng = random.Random(SEED)
    seen: dict[str, int] = {}
    meetings = 0
    gas: list[int] = []
    while meetings < N_MEETINGS:
        st = _state(rng)
        for inst in rng.sample(sorted(st.markets), 3):
            _rest_orders(st, rng, inst, rng.randrange(4, 14))
        st.root()
        for _ in range(6):
            inst = rng.choice([i for i in st.markets if st.orders and any(o.instrument == i for o in st.orders.values())])
            taker = _taker(st, rng, inst)
            t = rng.choice((1_000, 2_000))
            for _ in range(rng.randrange(1, 8)):  # the order's meetings, each on the state the last left
                mine = meeting(st, inst, taker, t)
                call, witness = match_inputs(st, inst, taker, t, mine)
                got = _norm(_call(verifier, call, witness))
                want = _norm(mine.result())
                assert got == want, (taker, inst, got[:4], want[:4])
                meetings += 1
                if meetings % 8 == 0 and mine.met:
                    gas.append(verifier.functions.meet(call, witness).estimate_gas())
                kind = ("nothing" if not mine.met else
                        f"fill{'_partial_maker' if mine.maker_reason == NONE else ''}" if mine.filled else
                        f"maker_{CloseReason(mine.maker_reason).name}" if mine.maker_reason != NONE else "stop")
                seen[kind] = seen.get(kind, 0) + 1
                if mine.stop:
                    seen[f"stop_{CloseReason(mine.stop).name}"] = seen.get(f"stop_{CloseReason(mine.stop).name}", 0) + 1
                if mine.filled:
                    for kind in _position_changes(st, mine.after, inst):
                        seen[kind] = seen.get(kind, 0) + 1
                    if st.markets[inst].spec.kind == InstrumentKind.OPTION:
                        seen["option_fill"] = seen.get("option_fill", 0) + 1
                    if mine.stop == CloseReason.REDUCE_ONLY:
                        seen["reduce_only_partial"] = seen.get("reduce_only_partial", 0) + 1
                st = mine.after
                if not mine.met or mine.stop or mine.filled == taker.remaining:
                    break
                taker = Taker(taker.account, taker.side, taker.limit, taker.remaining - mine.filled, taker.stp,
                              taker.reduce_only)
    print(f"\nmeetings: {meetings}; outcomes: {dict(sorted(seen.items()))}")
    print(f"meet gas over {len(gas)} sampled meetings: median {statistics.median(gas):,.0f}, max {max(gas):,}")
    for kind in ("nothing", "fill", "fill_partial_maker", "maker_EXPIRED", "maker_SELF_TRADE", "maker_INSUFFICIENT_MARGIN",
                 "maker_REDUCE_ONLY", "stop_SELF_TRADE", "stop_INSUFFICIENT_MARGIN", "stop_REDUCE_ONLY", "option_fill",
                 "opened", "increased", "reduced", "closed", "flipped", "reduce_only_partial"):
        assert seen.get(kind), (kind, seen)


def _wide_state(rng: random.Random) -> State:
    """42 instruments (2 perpetuals, 40 options), marks and risk arrays on all of them."""
    specs = list(_specs()[:2])
    nid = 2
    for und, tick, lot in (("BTC", 100_000, 1_000_000), ("ETH", 10_000, 10_000_000)):
        for k in range(10):
            for otype, tag in ((1, "C"), (2, "P")):
                strike = 80_000 + 4_000 * k
                specs.append(InstrumentSpec(nid, f"{und}-X-{strike}-{tag}", InstrumentKind.OPTION, und, tick, lot,
                                            150_000, 75_000, 200, 500, expiry=10**13, strike=strike,
                                            option_type=otype))
                nid += 1
    st = _priced(specs)
    for m in st.markets.values():
        if m.spec.kind == InstrumentKind.OPTION:
            m.mark_price = rng.randrange(50, 1_500)
        m.risk_array = [rng.randrange(-50_000, 50_000) * m.spec.tick_value // 10 for _ in range(16)]
        st.dirty_markets.add(m.spec.id)
    st.time_ms = 1_000
    return st


def _holding(st: State, key: bytes, sub: int, instruments: list[int], rng: random.Random):
    a = st.account_for(eip712.address_of(key), sub)
    a.collateral = 10_000_000 * USD
    a.margin_mode = 1
    for inst in instruments:
        m = st.markets[inst]
        size = rng.choice((-1, 1)) * rng.randrange(1, 20)
        a.positions[inst] = Position(size, -size * m.mark_price * m.spec.tick_value, m.funding_index)
        st.holders[inst].add(a.id)
        m.open_interest += max(size, 0)
    return a


def test_meetings_at_the_position_limit(env):
    """Accounts holding 31 positions (a fill opens the 32nd: both gates compute a 32-position
    portfolio health, the most a meeting computes) and 32 (a new position is refused, for a
    maker and for a taker): contract = core; the gas of the widest meeting is printed."""
    _, verifier = env
    rng = random.Random(SEED)
    st = _wide_state(rng)
    x = 2  # an option: its fee needs the underlying leaf too
    others = [i for i in sorted(st.markets) if i != x]
    maker = _holding(st, KEYS[0], 0, others[:31], rng)
    taker = _holding(st, KEYS[1], 0, others[-31:], rng)
    full_maker = _holding(st, KEYS[2], 0, others[:32], rng)
    full_taker = _holding(st, KEYS[2], 1, others[-32:], rng)
    mark = st.markets[x].mark_price
    for a, price in ((maker, mark), (full_maker, mark - 1)):  # the full maker's ask is the better one
        o = RestingOrder(st.next_order_id, a.id, a.owner, x, SELL, price, 5, 5, 0, 0, 0, 0, 0)
        st.next_order_id += 1
        st.open_order(o)
    st.root()
    gas = {}
    cases = (("full_maker", Taker(taker.id, BUY, mark, 3)), ("widest_fill", Taker(taker.id, BUY, mark, 3)),
             ("full_taker", Taker(full_taker.id, BUY, mark, 3)))
    for name, t in cases:
        mine = meeting(st, x, t, 1_000)
        call, witness = match_inputs(st, x, t, 1_000, mine)
        assert _norm(_call(verifier, call, witness)) == _norm(mine.result()), name
        gas[name] = verifier.functions.meet(call, witness).estimate_gas()
        if name == "full_maker":
            assert mine.maker_reason == CloseReason.INSUFFICIENT_MARGIN and not mine.filled
            st = mine.after  # the full maker's order is gone: the next head is the 31-position maker's
        elif name == "widest_fill":
            assert mine.filled == 3 and len(mine.after.accounts[taker.id].positions) == MAX_POSITIONS
            assert len(mine.after.accounts[maker.id].positions) == MAX_POSITIONS
        else:
            assert mine.stop == CloseReason.INSUFFICIENT_MARGIN and not mine.filled
    print(f"\nMatchVerifier.meet gas: {gas}")
    assert gas["widest_fill"] < 3_000_000, gas
