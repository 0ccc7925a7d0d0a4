"""Differential test: ``clearline.oracle`` (``recover_reporters`` then ``aggregate``) against
``OracleVerifier.sol`` (``aggregateSigned`` by ``eth_call`` on the in-process EVM).

Thousands of seeded random rounds: configs (1-9 reporters, quorum, staleness, deviation bound,
1-3 confirmations), prior states (with or without an index, pending jumps up and down), report
sets (known and unknown reporters, zero prices, future, stale, exactly at the staleness bound,
already used, duplicate signers, wrong asset, time going backwards) signed with real keys, a
few with bad signatures (high s, v not 27/28, wrong length, r or s zero or >= n, r not on the
curve, random bytes). For each the contract must return exactly Python's verdict: the
rejection code, or the outcome, the new state, the median and the number of fresh reports.
Then sequences of consecutive rounds that feed the returned state back in (confirmation
counting), ``reporterOf``/``reportDigest`` against ``recover_reporter``/``digest``, ``aggregate``
with given signers, the reverts on inputs Python cannot construct, and the gas of 5 and 9
reports.

``CLEARLINE_DIFF_ROUNDS`` sets the number of generated rounds (default 2,000, split over
``PARTS`` test cases so ``-n`` spreads them), ``CLEARLINE_DIFF_SEED`` the seed.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak as eth_keccak
from eth_utils import to_checksum_address

from clearline.core.eip712 import SECP256K1_N, Domain, address_of
from clearline.core.errors import ErrorCode, Rejected
from clearline.l1.chain import InProcessChain, revert_data
from clearline.l1.deploy import load_artifact
from clearline.oracle.aggregate import (
    OracleConfig,
    OracleErrorCode,
    OracleRejected,
    OracleState,
    Outcome,
    aggregate,
)
from clearline.oracle.report import PriceReport, digest, recover_reporter, recover_reporters, signed
from clearline.watchtower.oracle_witness import (
    config_tuple,
    domain_args,
    report_tuple,
    reports_tuple,
    state_from_tuple,
    state_tuple,
)

N_ROUNDS = int(os.environ.get("CLEARLINE_DIFF_ROUNDS", "2000"))
SEED = int(os.environ.get("CLEARLINE_DIFF_SEED", "6"))
PARTS = 4
U64 = (1 << 64) - 1
U32 = (1 << 32) - 1
P = 2**256 - 2**32 - 977  # secp256k1 field prime

KEYS = [eth_keccak(f"clearline oracle reporter {i}".encode()) for i in range(12)]
ADDRS = [address_of(k) for k in KEYS]
ROLLUP = eth_keccak(b"some rollup")[12:]  # the domain's verifying contract (not the verifier)


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=1)
    art = load_artifact("OracleVerifier")
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    address = chain.transact(factory.constructor(), chain.accounts[0])["contractAddress"]
    verifier = chain.w3.eth.contract(address=address, abi=art["abi"])
    domain = Domain(chain.chain_id, ROLLUP)
    yield chain, verifier, domain
    chain.close()


# ------------------------------------------------------------------------------ reference


def python_verdict(domain: Domain, cfg: OracleConfig, st: OracleState, reports: list[PriceReport],
                   now: int) -> tuple:
    """What the contract must return: (code, outcome, state tuple, median, fresh count)."""
    try:
        pairs = recover_reporters(domain, reports)
    except Rejected as exc:
        return (int(exc.code), 0, state_tuple(st), 0, 0)
    try:
        res = aggregate(cfg, st, pairs, now)
    except OracleRejected as exc:
        return (int(exc.code), 0, state_tuple(st), 0, 0)
    return (0, int(res.outcome), state_tuple(res.state), res.median, len(res.used))


def contract_verdict(verifier, domain: Domain, cfg: OracleConfig, st: OracleState,
                     reports: list[PriceReport], now: int) -> tuple:
    code, outcome, nxt, med, used = verifier.functions.aggregateSigned(
        *domain_args(domain), config_tuple(cfg), state_tuple(st), reports_tuple(reports), now).call()
    return (code, outcome, tuple(nxt), med, used)


_STATE_T = "(uint32,uint64,uint64,uint64,uint64,uint64)"
_SIGNED_IN = ["uint256", "address", "(address[],uint32,uint64,uint32,uint32)", _STATE_T,
              "(uint32,uint64,uint64,uint64,bytes)[]", "uint64"]
_SIGNED_OUT = ["uint8", "uint8", _STATE_T, "uint64", "uint256"]
_SIGNED_SELECTOR = eth_keccak(f"aggregateSigned({','.join(_SIGNED_IN)})".encode())[:4]


def contract_verdict_fast(chain: InProcessChain, verifier, domain: Domain, cfg: OracleConfig, st: OracleState,
                          reports: list[PriceReport], now: int) -> tuple:
    """``contract_verdict`` through eth-tester's eth_call directly, with the ABI coded by
    eth_abi: the same call, about a fifth cheaper than web3's contract layer (the EVM itself
    dominates the differential test's time)."""
    data = _SIGNED_SELECTOR + abi_encode(_SIGNED_IN, [*domain_args(domain), config_tuple(cfg), state_tuple(st),
                                                      reports_tuple(reports), now])
    out = chain.tester.call({"from": chain.accounts[0].address, "to": verifier.address, "data": "0x" + data.hex()},
                            "latest")
    code, outcome, nxt, med, used = abi_decode(_SIGNED_OUT, bytes.fromhex(out[2:]))
    return (code, outcome, tuple(nxt), med, used)


# ------------------------------------------------------------------------------ generator


def bad_signature(rng: random.Random, sig: bytes) -> tuple[str, bytes]:
    """A corrupted copy of a valid signature, and what kind of corruption."""
    r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    kind = "high_s" if rng.random() < 0.25 else rng.choice((
        "v01", "v29", "short", "long", "empty", "r0", "s0", "r_ge_n", "s_ge_n", "r_off_curve", "random"))
    if kind == "high_s":  # the same signature, malleated: recovers the same key, refused
        return kind, r.to_bytes(32, "big") + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - v,))
    if kind == "v01":
        return kind, sig[:64] + bytes((v - 27,))
    if kind == "v29":
        return kind, sig[:64] + bytes((rng.choice((26, 29, 255)),))
    if kind == "short":
        return kind, sig[:64]
    if kind == "long":
        return kind, sig + b"\x00"
    if kind == "empty":
        return kind, b""
    if kind == "r0":
        return kind, bytes(32) + sig[32:]
    if kind == "s0":
        return kind, sig[:32] + bytes(32) + sig[64:]
    if kind == "r_ge_n":
        return kind, rng.randrange(SECP256K1_N, 1 << 256).to_bytes(32, "big") + sig[32:]
    if kind == "s_ge_n":
        return kind, sig[:32] + rng.randrange(SECP256K1_N, 1 << 256).to_bytes(32, "big") + sig[64:]
    if kind == "r_off_curve":  # x with x^3 + 7 not a square mod p: no point, nothing recovers
        while True:
            x = rng.randrange(1, SECP256K1_N)
            if pow((x**3 + 7) % P, (P - 1) // 2, P) != 1:
                return kind, x.to_bytes(32, "big") + sig[32:]
    # random r, low s, valid v: almost always recovers some unrelated (unknown) address
    return kind, (rng.randrange(1, SECP256K1_N).to_bytes(32, "big")
                  + rng.randrange(1, SECP256K1_N // 2).to_bytes(32, "big") + bytes((rng.choice((27, 28)),)))


class Gen:
    def __init__(self, rng: random.Random, domain: Domain):
        self.rng = rng
        self.domain = domain
        self.notes: Counter = Counter()

    def config(self) -> tuple[OracleConfig, list[int]]:
        rng = self.rng
        m = rng.randint(1, 9)
        idx = rng.sample(range(len(KEYS)), m)
        quorum = rng.randint(1, m) if rng.random() < 0.7 else rng.randint(1, min(m, 3))
        staleness = rng.choice((0, 1, 7, 1_000, 30_000, 60_000, rng.randrange(1 << 20), U64, rng.randrange(1 << 64)))
        dev = rng.choice((0, 1, 1_000, 20_000, 50_000, 100_000, 1_000_000, 5_000_000, U32, rng.randrange(1 << 32)))
        conf = rng.randint(1, 3) if rng.random() < 0.97 else rng.choice((U32, 10))
        return OracleConfig(tuple(ADDRS[i] for i in idx), quorum, staleness, dev, conf), idx

    def price_near(self, base: int, dev: int) -> int:
        rng = self.rng
        roll = rng.random()
        if roll < 0.04:
            return 0
        if roll < 0.07:
            return rng.choice((1, U64, U64 - 1, rng.randrange(1, 1 << 64)))
        if base == 0:
            return rng.randrange(1, 1 << rng.choice((8, 20, 37, 64)))
        width = max(1, base * dev // 1_000_000)
        if roll < 0.55:  # within the bound (and the exact edges)
            p = base + rng.choice((0, width, -width, rng.randint(-width, width)))
        elif roll < 0.78:  # beyond, up
            p = base + width + rng.choice((1, rng.randint(1, base + 1)))
        else:  # beyond, down
            p = base - width - rng.choice((1, rng.randint(1, max(1, base))))
        return min(max(p, 1), U64)

    def state(self, cfg: OracleConfig) -> OracleState:
        rng = self.rng
        asset = rng.choice((0, 1, 2, 7, U32))
        last_round = rng.choice((0, rng.randrange(1, 1 << 41), rng.randrange(1, 1 << 41),
                                 rng.randrange(1 << 41, U64 - 10**6), U64 - rng.randrange(10) if rng.random() < 0.3 else 0))
        if rng.random() < 0.2:
            return OracleState(asset, 0, 0, last_round, 0, 0)
        index = rng.choice((1, rng.randrange(1, 1 << 20), rng.randrange(1 << 30, 1 << 40), U64, rng.randrange(1, 1 << 64)))
        index_time = rng.choice((last_round, rng.randint(0, last_round)))
        if rng.random() < 0.45:
            pending = self.price_near(index, cfg.max_deviation_ppm + 1) or index + 1
            if rng.random() < 0.05:
                pending = index  # allowed by the constructor: counts as "down"
            count = rng.choice((1, 1, 2, 3, rng.randrange(1, 1 << 64), U64))
            self.notes["pending"] += 1
            return OracleState(asset, index, index_time, last_round, min(pending, U64), count)
        return OracleState(asset, index, index_time, last_round, 0, 0)

    def timestamp(self, cfg: OracleConfig, st: OracleState, now: int) -> int:
        rng = self.rng
        lo = max(st.last_round_ms + 1, now - cfg.staleness_ms, 0)
        roll = rng.random()
        if roll < 0.7 and lo <= now:
            kind, t = "fresh", rng.randint(lo, now)
        else:
            kind, t = rng.choice((
                ("now", now),
                ("at_staleness", now - cfg.staleness_ms),
                ("just_stale", now - cfg.staleness_ms - 1),
                ("stale", now - cfg.staleness_ms - rng.randint(1, 1 << 30)),
                ("future", now + rng.choice((1, 2, rng.randint(1, 1 << 30)))),
                ("already_used", st.last_round_ms),
                ("already_used_older", st.last_round_ms - rng.randint(1, 1000)),
                ("just_after_round", st.last_round_ms + 1),
                ("zero", 0),
            ))
        if not 0 <= t <= U64:
            kind, t = "clamped", min(max(t, 0), U64)
        self.notes["ts_" + kind] += 1
        return t

    def round(self) -> tuple[OracleConfig, OracleState, list[PriceReport], int]:
        rng = self.rng
        cfg, idx = self.config()
        st = self.state(cfg)
        # time: mostly forward, sometimes exactly the last round, rarely backwards
        roll = rng.random()
        if roll < 0.03 and st.last_round_ms > 0:
            now = st.last_round_ms - rng.randint(1, min(st.last_round_ms, 10**6))
            self.notes["time_backwards"] += 1
        elif roll < 0.1:
            now = st.last_round_ms
        else:
            now = min(U64, st.last_round_ms + rng.choice((1, rng.randint(1, 10**5), rng.randint(1, 1 << 40))))
        signer_pool = list(idx) if rng.random() < 0.5 else list(range(len(KEYS)))
        k = rng.choice((rng.randint(0, 11), len(idx), len(idx) + 1))
        chosen = rng.sample(signer_pool, min(k, len(signer_pool)))
        if chosen and rng.random() < 0.05:  # one key signs two reports
            chosen.append(rng.choice(chosen))
            rng.shuffle(chosen)
            self.notes["duplicate_signer"] += 1
        base = st.index_price if st.index_price and rng.random() < 0.9 else 0
        reports = []
        for key_i in chosen:
            asset = st.asset
            if rng.random() < 0.015:
                asset = rng.choice([a for a in (0, 1, 2, 7, U32) if a != st.asset])
                self.notes["wrong_asset"] += 1
            rep = PriceReport(asset, self.price_near(base, cfg.max_deviation_ppm),
                              self.timestamp(cfg, st, now), rng.choice((0, 1, rng.randrange(1 << 64))))
            reports.append(signed(self.domain, rep, KEYS[key_i]))
        if reports and rng.random() < 0.06:
            for i in rng.sample(range(len(reports)), min(len(reports), rng.choice((1, 1, 2)))):
                kind, sig = bad_signature(rng, reports[i].signature)
                r = reports[i]
                reports[i] = PriceReport(r.asset, r.price, r.timestamp, r.round, sig)
                self.notes["sig_" + kind] += 1
        return cfg, st, reports, now


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("part", range(PARTS))
def test_aggregate_signed_matches_python(env, part):
    chain, verifier, domain = env
    rng = random.Random(f"{SEED}/{part}")
    gen = Gen(rng, domain)
    rounds = N_ROUNDS // PARTS + (1 if part < N_ROUNDS % PARTS else 0)
    codes: Counter = Counter()
    start = time.perf_counter()
    for n in range(rounds):
        cfg, st, reports, now = gen.round()
        want = python_verdict(domain, cfg, st, reports, now)
        got = (contract_verdict(verifier, domain, cfg, st, reports, now) if n % 50 == 0
               else contract_verdict_fast(chain, verifier, domain, cfg, st, reports, now))
        if got != want:
            pytest.fail(f"round {n} of part {part} (seed {SEED}): contract {got} != python {want}\n"
                        f"cfg={cfg}\nstate={st}\nnow={now}\nreports={reports}")
        if want[0] == 0:
            if state_from_tuple(got[2]) != aggregate(cfg, st, recover_reporters(domain, reports), now).state:
                pytest.fail("state_from_tuple does not give back the Python state")
        codes[(want[0], want[1])] += 1
    print(f"\npart {part}: {rounds} rounds in {time.perf_counter() - start:.1f} s, (code, outcome): "
          f"{sorted(codes.items())}\n{sorted(gen.notes.items())}")
    if rounds >= 400:  # the generator reaches every verdict
        seen_codes = {c for c, _ in codes}
        for code in (0, ErrorCode.BAD_SIGNATURE, ErrorCode.HIGH_S_SIGNATURE, *OracleErrorCode):
            if code != OracleErrorCode.MALFORMED_INPUT and int(code) not in seen_codes:
                pytest.fail(f"no round with code {int(code)}: {codes}")
        for outcome in Outcome:
            if (0, int(outcome)) not in codes:
                pytest.fail(f"no round with outcome {outcome.name}: {codes}")


def test_consecutive_rounds_feed_the_state_back(env):
    """Sequences of rounds on one asset: the contract's returned state is the next round's
    input, and must stay Python's (pending jumps counted, reset, confirmed)."""
    chain, verifier, domain = env
    rng = random.Random(f"{SEED}/sequences")
    outcomes: Counter = Counter()
    for seq in range(24):
        m = rng.randint(3, 9)
        idx = rng.sample(range(len(KEYS)), m)
        quorum = rng.randint(1, m // 2 + 1)
        cfg = OracleConfig(tuple(ADDRS[i] for i in idx), quorum, rng.choice((1_000, 5_000)),
                           rng.choice((10_000, 50_000)), rng.randint(1, 3))
        st = OracleState(rng.choice((0, 3)))
        now = rng.randrange(1 << 40)
        level = rng.randrange(10**6, 10**11)
        for step in range(10):
            now += 0 if rng.random() < 0.1 else rng.randint(1, 3_000)
            lo = max(st.last_round_ms + 1, now - cfg.staleness_ms)  # the freshness window
            roll = rng.random()
            if roll < 0.35:
                level = level * rng.choice((80, 125, 150, 60)) // 100  # a jump beyond the bound
            elif roll < 0.45 and st.index_price:
                level = st.index_price  # back to the confirmed index
            reports = []
            strangers = [n for n in range(len(KEYS)) if n not in idx][:2]
            for i in rng.sample(idx + strangers, rng.choice((rng.randint(0, m), quorum, m))):
                if rng.random() < 0.85 and lo <= now:  # mostly fresh
                    t = rng.randint(lo, now)
                else:  # maybe used, stale or future
                    t = rng.randint(max(0, now - cfg.staleness_ms - 200), now + 50)
                price = max(1, level + rng.randint(-level // 200, level // 200))
                reports.append(signed(domain, PriceReport(st.asset, price, t, step), KEYS[i]))
            want = python_verdict(domain, cfg, st, reports, now)
            got = contract_verdict_fast(chain, verifier, domain, cfg, st, reports, now)
            if got != want:
                pytest.fail(f"sequence {seq} step {step}: contract {got} != python {want}\n{cfg}\n{st}\n{reports}")
            outcomes[Outcome(got[1]).name] += 1
            st = state_from_tuple(got[2])  # the contract's state goes on
    print(f"\nsequence outcomes: {sorted(outcomes.items())}")
    if outcomes["CONFIRMED"] == 0 or outcomes["UNCONFIRMED"] == 0:
        pytest.fail(f"the sequences never confirmed a jump: {outcomes}")


def test_reporter_of_and_digest_match_python(env):
    chain, verifier, domain = env
    rng = random.Random(f"{SEED}/reporterOf")
    other = Domain(domain.chain_id + 1, domain.verifying_contract)
    kinds: Counter = Counter()
    for n in range(160):
        rep = signed(domain, PriceReport(rng.randrange(1 << 32), rng.randrange(1 << 64), rng.randrange(1 << 64),
                                         rng.randrange(1 << 64)), KEYS[n % len(KEYS)])
        if n % 2:
            kind, sig = bad_signature(rng, rep.signature)
            rep = PriceReport(rep.asset, rep.price, rep.timestamp, rep.round, sig)
        else:
            kind = "valid"
        kinds[kind] += 1
        for dom in (domain, other) if n % 8 == 0 else (domain,):
            try:
                want = (0, to_checksum_address(recover_reporter(dom, rep)))
            except Rejected as exc:
                want = (int(exc.code), "0x" + "00" * 20)
            got = tuple(verifier.functions.reporterOf(*domain_args(dom), report_tuple(rep)).call())
            if (got[0], got[1].lower()) != (want[0], want[1].lower()):
                pytest.fail(f"reporterOf {kind} {rep}: contract {got} != python {want}")
            if n % 8 == 0:
                d = verifier.functions.reportDigest(*domain_args(dom), report_tuple(rep)).call()
                if d != digest(dom, rep):
                    pytest.fail("reportDigest differs from clearline.oracle.report.digest")
    if kinds["high_s"] == 0 or kinds["valid"] == 0:
        pytest.fail(f"generator missed a case: {kinds}")


def test_aggregate_with_given_signers_matches_python(env):
    """``aggregate`` takes the signers as given, any 20 bytes (zero included), as Python's."""
    chain, verifier, domain = env
    rng = random.Random(f"{SEED}/aggregate")
    gen = Gen(rng, domain)
    for n in range(150):
        cfg, st, reports, now = gen.round()
        signers = [rng.choice(ADDRS + [bytes(20), rng.randbytes(20)]) for _ in reports]
        try:
            r = aggregate(cfg, st, list(zip(reports, signers)), now)
            want = (0, int(r.outcome), state_tuple(r.state), r.median, len(r.used))
        except OracleRejected as exc:
            want = (int(exc.code), 0, state_tuple(st), 0, 0)
        code, outcome, nxt, med, used = verifier.functions.aggregate(
            config_tuple(cfg), state_tuple(st), reports_tuple(reports), [to_checksum_address(s) for s in signers],
            now).call()
        if (code, outcome, tuple(nxt), med, used) != want:
            pytest.fail(f"aggregate round {n}: contract {(code, outcome, nxt, med, used)} != python {want}")


def _selector(signature: str) -> bytes:
    return eth_keccak(signature.encode())[:4]


@pytest.mark.parametrize("cfg, st, error", [
    (([], 1, 10, 10, 1), (0, 0, 0, 0, 0, 0), "NoReporters()"),
    (([ADDRS[0], ADDRS[1], ADDRS[0]], 1, 10, 10, 1), (0, 0, 0, 0, 0, 0), "DuplicateConfigReporter(address)"),
    (([ADDRS[0]], 0, 10, 10, 1), (0, 0, 0, 0, 0, 0), "QuorumOutOfRange(uint256,uint256)"),
    (([ADDRS[0]], 2, 10, 10, 1), (0, 0, 0, 0, 0, 0), "QuorumOutOfRange(uint256,uint256)"),
    (([ADDRS[0]], 1, 10, 10, 0), (0, 0, 0, 0, 0, 0), "ZeroConfirmations()"),
    (([ADDRS[0]], 1, 10, 10, 1), (0, 5, 0, 0, 7, 0), "PendingMismatch(uint64,uint64)"),
    (([ADDRS[0]], 1, 10, 10, 1), (0, 5, 0, 0, 0, 1), "PendingMismatch(uint64,uint64)"),
    (([ADDRS[0]], 1, 10, 10, 1), (0, 0, 0, 0, 7, 1), "PendingWithoutIndex()"),
])
def test_inputs_python_cannot_construct_revert(env, cfg, st, error):
    """What ``OracleConfig``/``OracleState`` refuse with a ValueError, the contract refuses with
    a typed revert, whatever the reports (a bad signature included)."""
    chain, verifier, domain = env
    cfg = ([to_checksum_address(a) for a in cfg[0]], *cfg[1:])
    with pytest.raises(ValueError):
        OracleConfig(tuple(bytes.fromhex(a[2:]) for a in cfg[0]), *cfg[1:])
        OracleState(*st)
    good = signed(domain, PriceReport(0, 100, 5, 0), KEYS[0])
    bad = PriceReport(0, 100, 5, 0, b"")
    for reports in ([], [good], [bad]):
        with pytest.raises(Exception) as info:
            verifier.functions.aggregateSigned(*domain_args(domain), cfg, st, reports_tuple(reports), 10).call()
        if revert_data(info.value)[:4] != _selector(error):
            pytest.fail(f"expected {error}, got {info.value!r}")


def test_aggregate_length_mismatch_reverts(env):
    chain, verifier, domain = env
    rep = signed(domain, PriceReport(0, 100, 5, 0), KEYS[0])
    with pytest.raises(Exception) as info:
        verifier.functions.aggregate(([to_checksum_address(ADDRS[0])], 1, 10, 10, 1), (0, 0, 0, 0, 0, 0),
                                     reports_tuple([rep]), [], 10).call()
    if revert_data(info.value)[:4] != _selector("LengthMismatch(uint256,uint256)"):
        pytest.fail(f"expected LengthMismatch, got {info.value!r}")


def test_gas_of_aggregate_signed(env):
    """estimate_gas of a full round (every report fresh, quorum met), printed for the record."""
    chain, verifier, domain = env
    cfg = OracleConfig(tuple(ADDRS[:9]), 5, 60_000, 20_000, 2)
    st = OracleState(1, 65_000_000_000, 1_000, 1_000, 0, 0)
    lines = []
    for n in (5, 9):
        reports = [signed(domain, PriceReport(1, 65_000_000_000 + 1_000_000 * i, 30_000, i), KEYS[i]) for i in range(n)]
        fn = verifier.functions.aggregateSigned(*domain_args(domain), config_tuple(cfg), state_tuple(st),
                                                reports_tuple(reports), 40_000)
        want = python_verdict(domain, cfg, st, reports, 40_000)
        if contract_verdict(verifier, domain, cfg, st, reports, 40_000) != want or want[1] != Outcome.ACCEPTED:
            pytest.fail(f"gas round is not an accepted round: {want}")
        lines.append(f"aggregateSigned, {n} reports, 9 reporters: estimate_gas {fn.estimate_gas():,}")
    print("\n" + "\n".join(lines))
