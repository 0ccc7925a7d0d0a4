"""``MarginVerifier`` (L1 account health) against the Python core, on the in-process EVM.

Differential: generated ``State`` objects (random perpetual and option markets on two
underlyings with an index and one without, marks from 0 to uint64 max, risk arrays absent /
all zero / small / at the int64 bounds) hold generated accounts (both margin modes, up to 16
positions, long and short, sizes up to the int64 bounds, size-0 positions, negative and large
collateral and quotes). For every account ``MarginVerifier.health`` (``eth_call``) must return
exactly ``clearline.core.margin.health(st, acct)``, and (every 4th account) ``healthAfter``
for a random held or new instrument, size, quote and fee exactly
``health(st, acct, inst, size, quote, fee)``.

``CLEARLINE_DIFF_ACCOUNTS`` sets the number of accounts (default 2,000), ``CLEARLINE_DIFF_SEED``
the seed. The targeted tests pin the signed floor / ceil helpers at their boundaries, the
all-zero-array rule, the count / market mismatches and print the gas of a 16-position
portfolio account (``health`` and ``healthAfter``).
"""

from __future__ import annotations

import os
import random
import time

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from clearline.core.hashing import keccak
from clearline.core.instruments import InstrumentSpec
from clearline.core.margin import health
from clearline.core.state import Genesis, Position, State
from clearline.core.underlying import UnderlyingConfig
from clearline.l1.chain import InProcessChain, revert_data
from clearline.l1.deploy import load_artifact
from clearline.oracle.aggregate import OracleConfig, OracleState
from clearline.watchtower.margin_witness import margin_inputs, margin_inputs_after, market_tuple

N_ACCOUNTS = int(os.environ.get("CLEARLINE_DIFF_ACCOUNTS", "2000"))
SEED = int(os.environ.get("CLEARLINE_DIFF_SEED", "6"))
ACCOUNTS_PER_STATE = 40
MARKETS_PER_STATE = 24

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
UINT64_MAX = (1 << 64) - 1
INT256_MIN, INT256_MAX = -(1 << 255), (1 << 255) - 1

ACCOUNT_T = "(uint32,address,uint32,int256,uint64,uint8,uint8,(uint32,int64,int256,int256)[],uint256,bytes32[])"
MARKET_T = ("(uint32,bytes32,uint8,bytes32,uint64,uint64,uint32,uint32,int32,int32,uint64,uint64,uint8,uint8,"
            "uint64,uint64,int256,uint64,int64,uint32,uint64,int64,uint64,uint64,int64[16],uint64,int64,uint64,uint64)")
HEALTH_TYPES = [ACCOUNT_T, f"{MARKET_T}[]", "uint256[]"]
AFTER_TYPES = [*HEALTH_TYPES, "uint32", "int256", "int256", "int256"]
HEALTH_SEL = keccak(f"health({','.join(HEALTH_TYPES)})".encode())[:4]
AFTER_SEL = keccak(f"healthAfter({','.join(AFTER_TYPES)})".encode())[:4]
ORACLE = OracleConfig((b"\x01" * 20,), 1, 5_000, 100_000, 1)


def _selector(abi: list, name: str) -> bytes:
    (fn,) = [f for f in abi if f.get("name") == name]

    def t(p):
        if p["type"].startswith("tuple"):
            return "(" + ",".join(t(c) for c in p["components"]) + ")" + p["type"][5:]
        return p["type"]

    return keccak(f"{name}({','.join(t(p) for p in fn['inputs'])})".encode())[:4]


@pytest.fixture(scope="module")
def mv():
    chain = InProcessChain(n_accounts=1)
    art = load_artifact("MarginVerifier")
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    address = chain.transact(factory.constructor(), chain.accounts[0])["contractAddress"]
    assert _selector(art["abi"], "health") == HEALTH_SEL
    assert _selector(art["abi"], "healthAfter") == AFTER_SEL
    yield chain, chain.w3.eth.contract(address=address, abi=art["abi"])
    chain.close()


def _call(chain, contract, data: bytes) -> tuple[int, int, int]:
    """eth_call straight to eth-tester (web3's request stack costs ~15% more per call)."""
    out = chain.tester.call({"to": contract.address, "from": chain.accounts[0].address, "gas": 30_000_000,
                             "data": "0x" + data.hex()})
    return abi_decode(["int256", "int256", "int256"], bytes.fromhex(out[2:]))


def l1_health(chain, contract, st: State, aid: int) -> tuple[int, int, int]:
    return _call(chain, contract, HEALTH_SEL + abi_encode(HEALTH_TYPES, margin_inputs(st, aid)))


def l1_health_after(chain, contract, st: State, aid: int, inst: int, size: int, quote: int, fee: int):
    args = margin_inputs_after(st, aid, inst)
    return _call(chain, contract, AFTER_SEL + abi_encode(AFTER_TYPES, [*args, inst, size, quote, fee]))


# ----------------------------------------------------------------------------------- generation
def _pick(rng: random.Random, *weighted):
    """weighted: (weight, thunk) pairs."""
    total = sum(w for w, _ in weighted)
    r = rng.random() * total
    for w, f in weighted:
        r -= w
        if r < 0:
            return f()
    return weighted[-1][1]()


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def _spec(rng: random.Random, mid: int, extreme: bool) -> InstrumentSpec:
    lot = _pick(rng, (6, lambda: rng.choice([1, 10, 1_000, 10_000, 100_000, 10**6, 10**8])),
                (2, lambda: rng.randint(1, 10**9)), (1 if extreme else 0, lambda: rng.randint(1, UINT64_MAX)))
    base = 10**8 // _gcd(lot, 10**8)  # tick_size * lot_size must be a multiple of 1e8
    kmax = UINT64_MAX // base
    k = _pick(rng, (6, lambda: rng.randint(1, min(kmax, 1_000))), (2, lambda: rng.randint(1, min(kmax, 10**6))),
              (1 if extreme else 0, lambda: rng.randint(1, kmax)))
    im = _pick(rng, (4, lambda: rng.choice([50_000, 100_000, 150_000])), (3, lambda: rng.randint(2, 10**6)),
               (1, lambda: 10**6))
    mm = _pick(rng, (3, lambda: rng.randint(1, im - 1)), (1, lambda: im - 1), (1, lambda: 1))
    underlying = rng.choice(["BTC", "BTC", "ETH", "ETH", "XYZ"])  # XYZ: no underlying, index 0
    if rng.random() < 0.35:
        return InstrumentSpec(mid, f"P{mid}", 0, underlying, base * k, lot, im, mm, 0, 0)
    strike = _pick(rng, (5, lambda: rng.randint(1, 2_000_000)), (1, lambda: 0), (1, lambda: 1),
                   (1 if extreme else 0, lambda: rng.randint(0, UINT64_MAX)))
    return InstrumentSpec(mid, f"O{mid}", 1, underlying, base * k, lot, im, mm, 0, 0,
                          expiry=rng.randint(1, 10**13), strike=strike, option_type=rng.choice([1, 2, 1, 2, 0]))


def _risk_array(rng: random.Random):
    return _pick(rng, (3, lambda: None), (2, lambda: [0] * 16),
                 (4, lambda: [rng.randint(-10**9, 10**9) for _ in range(16)]),
                 (1, lambda: [rng.choice([INT64_MIN, INT64_MAX, 0, rng.randint(INT64_MIN, INT64_MAX)])
                              for _ in range(16)]),
                 (1, lambda: [0] * 15 + [rng.choice([-1, 1])]))  # one non-zero entry: an array


def _make_state(rng: random.Random, n_accounts: int) -> State:
    extreme = rng.random() < 0.3
    unders = (UnderlyingConfig(0, "BTC", ORACLE), UnderlyingConfig(1, "ETH", ORACLE))
    st = State(Genesis(1, bytes(20), bytes(20), (), (), unders))
    for uid in (0, 1):
        price = _pick(rng, (5, lambda: rng.randint(1, 10**11)), (1, lambda: 0), (1, lambda: 1),
                      (1 if extreme else 0, lambda: rng.randint(0, UINT64_MAX)))
        st.underlyings[uid].oracle = OracleState(uid, price)
    for mid in range(MARKETS_PER_STATE):
        m = st.add_market(_spec(rng, mid, extreme))
        idx = st.index_of(m)
        if m.spec.kind == 1 and idx and rng.random() < 0.6:  # strikes around the index: ITM / OTM / ATM
            k = max(0, idx // m.spec.tick_size + rng.randint(-3, 3) * max(1, idx // m.spec.tick_size // 20))
            object.__setattr__(m.spec, "strike", min(k, UINT64_MAX))
        m.mark_price = _pick(rng, (6, lambda: rng.randint(1, 10**6)), (1, lambda: 0), (1, lambda: 1),
                             (1 if extreme else 0, lambda: rng.randint(0, UINT64_MAX)))
        m.risk_array = _risk_array(rng)
    for a in range(n_accounts):
        acct = st.account_for(rng.randbytes(20), rng.randint(0, 3))
        acct.margin_mode = rng.choice([0, 1])
        acct.collateral = _pick(rng, (5, lambda: rng.randint(0, 10**12)), (2, lambda: rng.randint(-10**12, 0)),
                                (1, lambda: 0), (1, lambda: rng.randint(-(1 << 200), 1 << 200)))
        n_pos = _pick(rng, (1, lambda: 0), (6, lambda: rng.randint(1, 6)), (3, lambda: rng.randint(7, 16)))
        for inst in rng.sample(range(MARKETS_PER_STATE), n_pos):
            size = _pick(rng, (6, lambda: rng.choice([1, -1]) * rng.randint(1, 1_000)), (1, lambda: 0),
                         (2, lambda: rng.randint(-10**9, 10**9)),
                         (1 if extreme else 0.2, lambda: rng.choice([INT64_MIN, INT64_MAX, INT64_MIN + 1])))
            quote = _pick(rng, (6, lambda: rng.randint(-10**12, 10**12)), (1, lambda: 0),
                          (1, lambda: rng.randint(-(1 << 200), 1 << 200)))
            acct.positions[inst] = Position(size, quote, rng.randint(-(1 << 100), 1 << 100))
            st.holders[inst].add(acct.id)
        st.dirty_accounts.add(acct.id)
    return st


def _after_args(rng: random.Random, st: State, aid: int) -> tuple[int, int, int, int]:
    acct = st.accounts[aid]
    if acct.positions and rng.random() < 0.5:
        inst = rng.choice(sorted(acct.positions))
    else:
        inst = rng.randrange(MARKETS_PER_STATE)
    size = _pick(rng, (5, lambda: rng.randint(-10**6, 10**6)), (1, lambda: 0),
                 (1, lambda: rng.choice([INT64_MIN, INT64_MAX])))
    quote = rng.randint(-10**15, 10**15)
    fee = _pick(rng, (3, lambda: rng.randint(0, 10**7)), (1, lambda: 0), (1, lambda: rng.randint(-10**7, 0)))
    return inst, size, quote, fee


# ------------------------------------------------------------------------------------ tests
def test_health_matches_the_core_on_generated_accounts(mv):
    chain, c = mv
    rng = random.Random(SEED)
    t0, c0 = time.perf_counter(), time.process_time()
    done = after = 0
    kinds = {"standard": 0, "portfolio": 0, "options": 0, "no_array_pm": 0, "zero_array_pm": 0}
    while done < N_ACCOUNTS:
        n = min(ACCOUNTS_PER_STATE, N_ACCOUNTS - done)
        st = _make_state(rng, n)
        for aid in range(n):
            acct = st.accounts[aid]
            want = health(st, acct)
            got = l1_health(chain, c, st, aid)
            assert got == want, (SEED, done + aid, acct.margin_mode, got, want)
            kinds["portfolio" if acct.margin_mode else "standard"] += 1
            kinds["options"] += any(st.markets[i].spec.kind == 1 for i in acct.positions)
            if acct.margin_mode:
                arrays = [st.markets[i].risk_array for i, p in acct.positions.items() if p.size]
                kinds["no_array_pm"] += any(a is None for a in arrays)
                kinds["zero_array_pm"] += any(a is not None and not any(a) for a in arrays)
            if aid % 4 == 0:  # healthAfter on every 4th account
                inst, size, quote, fee = _after_args(rng, st, aid)
                want = health(st, acct, inst, size, quote, fee)
                got = l1_health_after(chain, c, st, aid, inst, size, quote, fee)
                assert got == want, (SEED, done + aid, "after", inst, size, quote, fee, got, want)
                after += 1
        done += n
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"\nmargin differential: {done} accounts (+{after} healthAfter), seed {SEED}, {elapsed:.1f} s ({cpu:.1f} s CPU); {kinds}")
    assert kinds["standard"] and kinds["portfolio"] and kinds["options"]
    assert kinds["no_array_pm"] and kinds["zero_array_pm"]


@pytest.mark.parametrize("a", [0, 1, -1, 999_999, 1_000_000, 1_000_001, -999_999, -1_000_000, -1_000_001,
                               INT256_MAX, INT256_MIN, INT256_MIN + 1, INT256_MAX - 1])
@pytest.mark.parametrize("b", [1, 2, 10**6, 10**8, INT256_MAX])
def test_signed_floor_and_ceil_division(mv, a, b):
    _, c = mv
    assert c.functions.floorDiv(a, b).call() == a // b
    assert c.functions.ceilDiv(a, b).call() == -((-a) // b)


def _reverts_with(call, signature: str) -> None:
    """``call`` (a web3 contract call) reverts with the custom error ``signature``."""
    with pytest.raises(Exception) as e:
        call.call()
    data = revert_data(e.value)
    assert data[:4] == keccak(signature.encode())[:4], (signature, data.hex(), e.value)


def test_division_by_a_non_positive_divisor_reverts(mv):
    _, c = mv
    for b in (0, -1, INT256_MIN):
        _reverts_with(c.functions.floorDiv(5, b), "NonPositiveDivisor(int256)")
        _reverts_with(c.functions.ceilDiv(-5, b), "NonPositiveDivisor(int256)")


def _one_market_state(spec: InstrumentSpec, mark: int, index: int, arr) -> State:
    st = State(Genesis(1, bytes(20), bytes(20), (), (), (UnderlyingConfig(0, "BTC", ORACLE),)))
    st.underlyings[0].oracle = OracleState(0, index)
    m = st.add_market(spec)
    m.mark_price, m.risk_array = mark, arr
    return st


# tick_value 1 usd6: notional = lots * mark; 5% of 20 is exactly 1, of 21 = 1.05 -> 2, of 19 = 0.95 -> 1
PERP = InstrumentSpec(0, "P", 0, "BTC", 100, 10**6, 50_000, 30_000, 0, 0)
# a call on 1e-8 BTC lots, strike 3 USD: underlying value ceil(lots * index / 1e8), OTM floor
CALL = InstrumentSpec(1, "C", 1, "BTC", 10**6, 100, 150_000, 75_000, 0, 0, expiry=1, strike=3, option_type=1)
PUT = InstrumentSpec(2, "Q", 1, "BTC", 10**6, 100, 150_000, 75_000, 0, 0, expiry=1, strike=3, option_type=2)


def test_rounding_boundaries_and_the_zero_array_rule(mv):
    """Requirements one usd6 either side of an exact multiple, OTM credits that round down,
    and an all-zero array margining like none (standard requirement, not contingency). The
    numerators of health's divisions are never negative (marks, indices, ppm and lots are
    non-negative): the negative side of the helpers is pinned by the floor / ceil test."""
    chain, c = mv
    cases = []
    for mark in (19, 20, 21):
        for mode in (0, 1):
            for size in (1, -1, 20, -20):
                cases.append((PERP, mark, 0, None, mode, size, -size * mark))
    for spec in (CALL, PUT):
        for index in (1, 10**6 - 1, 10**6, 10**6 + 1, 3 * 10**6 - 1, 3 * 10**6, 3 * 10**6 + 1, 10**8 + 1, 0):
            for arr in (None, [0] * 16, [-1] * 16, [0] * 15 + [7]):
                for size in (-1, -7, -10**6 + 1, 3):
                    for mode in (0, 1):
                        cases.append((spec, 5, index, arr, mode, size, 0))
    for spec, mark, index, arr, mode, size, quote in cases:
        st = _one_market_state(spec, mark, index, arr)
        acct = st.account_for(b"\x02" * 20, 0)
        acct.margin_mode, acct.collateral = mode, -3
        acct.positions[spec.id] = Position(size, quote, 0)
        got = l1_health(chain, c, st, acct.id)
        assert got == health(st, acct), (spec.symbol, mark, index, arr, mode, size)
    # golden: 20 lots at mark 21 -> notional 420: im ceil(21.0) = 21, mm ceil(12.6) = 13
    st = _one_market_state(PERP, 21, 0, None)
    acct = st.account_for(b"\x02" * 20, 0)
    acct.positions[0] = Position(-20, 420, 0)
    assert l1_health(chain, c, st, acct.id) == health(st, acct) == (0, 21, 13)
    # the all-zero array is margined as no array: the standard short-call requirement
    from clearline.core.requirements import standard_requirements

    for arr in (None, [0] * 16):
        st = _one_market_state(CALL, 5, 10**8, arr)
        acct = st.account_for(b"\x02" * 20, 0)
        acct.margin_mode = 1
        acct.positions[1] = Position(-7, 0, 0)
        im, mm = standard_requirements(CALL, -7, 5, 10**8)
        assert health(st, acct)[1:] == (im, mm) == l1_health(chain, c, st, acct.id)[1:]


def _held_option_state() -> tuple[State, int]:
    st = _one_market_state(PERP, 20, 10**8, [5] * 16)
    for spec in (CALL, PUT):
        st.add_market(spec).mark_price = 5
    acct = st.account_for(b"\x04" * 20, 0)
    acct.margin_mode = 1
    acct.positions[0] = Position(3, -60, 0)
    acct.positions[1] = Position(-2, 10, 0)
    return st, acct.id


def test_market_mismatch_and_counts_revert(mv):
    chain, c = mv
    st, aid = _held_option_state()
    account, markets, index = margin_inputs(st, aid)
    fn = c.functions.health
    assert tuple(fn(account, markets, index).call()) == health(st, st.accounts[aid])
    _reverts_with(fn(account, markets[::-1], index), "MarketMismatch(uint256,uint32,uint32)")
    _reverts_with(fn(account, markets[:1], index[:1]), "MarketCountMismatch(uint256,uint256)")
    _reverts_with(fn(account, markets, index[:1]), "IndexCountMismatch(uint256,uint256)")
    _reverts_with(fn(account, markets, [index[0], UINT64_MAX + 1]), "IndexOutOfRange(uint256,uint256)")
    # a perpetual's index is not read: any value is fine
    assert tuple(fn(account, markets, [UINT64_MAX + 1, index[1]]).call()) == health(st, st.accounts[aid])
    # healthAfter: a held instrument takes no extra leaf, a new one exactly one (the right one)
    after = c.functions.healthAfter
    put = market_tuple(st, 2)
    _reverts_with(after(account, [*markets, put], [*index, 0], 1, 1, 0, 0), "MarketCountMismatch(uint256,uint256)")
    _reverts_with(after(account, markets, index, 2, 1, 0, 0), "MarketCountMismatch(uint256,uint256)")
    _reverts_with(after(account, [*markets, markets[0]], [*index, 0], 2, 1, 0, 0),
                  "MarketMismatch(uint256,uint32,uint32)")
    _reverts_with(after(account, [*markets, put], [*index, 0], 2, 1 << 63, 0, 0), "SizeOutOfRange(int256)")
    for inst, size in ((1, -(1 << 63)), (2, (1 << 63) - 1), (2, 0), (1, 0)):
        args = margin_inputs_after(st, aid, inst)
        assert tuple(after(*args, inst, size, -9, 4).call()) == health(st, st.accounts[aid], inst, size, -9, 4)


def test_a_dirty_risk_array_word_reverts(mv):
    """A riskArray word that is not a sign-extended int64 is malformed calldata (no leaf
    encodes it): it reverts, as Solidity's own decoding of such a word would."""
    chain, c = mv
    st, aid = _held_option_state()
    account, markets, index = margin_inputs(st, aid)
    loose = [t.replace("int64[16]", "int256[16]") for t in HEALTH_TYPES]
    ok = HEALTH_SEL + abi_encode(loose, [account, markets, index])
    assert _call(chain, c, ok) == health(st, st.accounts[aid])
    m0 = list(markets[0])
    m0[24] = [1 << 63, *m0[24][1:]]  # the riskArray (unpaidLots and payFloat follow it)
    with pytest.raises(Exception):
        _call(chain, c, HEALTH_SEL + abi_encode(loose, [account, [tuple(m0), markets[1]], index]))


def _gas_state() -> tuple[State, int]:
    """16 positions (perpetuals and calls / puts, long and short) in 17 markets, each with a
    risk array: the escape bound, and the 17th market for healthAfter."""
    st = State(Genesis(1, bytes(20), bytes(20), (), (), (UnderlyingConfig(0, "BTC", ORACLE),)))
    st.underlyings[0].oracle = OracleState(0, 60_000 * 10**6)
    for i in range(17):
        if i % 2:
            spec = InstrumentSpec(i, f"C{i}", 1, "BTC", 100_000, 10_000, 150_000, 75_000, 0, 0, expiry=1,
                                  strike=590_000 + 5_000 * i, option_type=1 + i % 4 // 2)
        else:
            spec = InstrumentSpec(i, f"P{i}", 0, "BTC", 100_000, 10_000, 50_000, 30_000, 0, 0)
        m = st.add_market(spec)
        m.mark_price = 600_000 if i % 2 == 0 else 20_000 + i
        m.risk_array = [(-1) ** k * (50_000 + 1_000 * k + i) for k in range(16)]
    acct = st.account_for(b"\x03" * 20, 0)
    acct.margin_mode, acct.collateral = 1, 10**12
    for i in range(16):
        size = (i + 1) * (1 if i % 3 else -1)
        acct.positions[i] = Position(size, -size * 600_000 * 10, 0)
    return st, acct.id


def _calldata_gas(data: bytes) -> int:
    zeros = data.count(0)
    return 4 * zeros + 16 * (len(data) - zeros)


def test_gas_of_a_16_position_portfolio_account():
    """Prints the gas of health / healthAfter for 16 positions in portfolio (and standard)
    mode; asserts nothing about it. Measured as transactions on a cancun chain (no EIP-7623
    calldata floor), so ``execution = gasUsed - 21,000 - calldata``: what a CALL from another
    contract pays (plus its own encoding), the figure that matters for the FraudVerifier."""
    chain = InProcessChain(n_accounts=1, hardfork="cancun")
    try:
        art = load_artifact("MarginVerifier")
        factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        c = chain.w3.eth.contract(address=chain.transact(factory.constructor(), chain.accounts[0])["contractAddress"],
                                  abi=art["abi"])
        st, aid = _gas_state()
        acct = st.accounts[aid]
        out = {}

        def measure(name, call, want):
            assert tuple(call.call()) == want
            data = bytes.fromhex(call._encode_transaction_data()[2:])
            used = chain.transact(call, chain.accounts[0])["gasUsed"]
            out[name] = (used, used - 21_000 - _calldata_gas(data), len(data))

        measure("health_pm16", c.functions.health(*margin_inputs(st, aid)), health(st, acct))
        a_args = margin_inputs_after(st, aid, 16)
        measure("healthAfter_pm16_new", c.functions.healthAfter(*a_args, 16, -5, 123, 7), health(st, acct, 16, -5, 123, 7))
        acct.margin_mode = 0
        measure("health_std16", c.functions.health(*margin_inputs(st, aid)), health(st, acct))
        print("\nMarginVerifier gas (tx gasUsed / execution only / calldata bytes): "
              + "; ".join(f"{k} {u:,} / {e:,} / {n:,}" for k, (u, e, n) in out.items()))
    finally:
        chain.close()
