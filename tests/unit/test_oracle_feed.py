"""The simulated feed and reporters: seeded determinism, integer outputs, regimes and jumps,
and the stale / lying / dropped reporter knobs end-to-end through signature recovery and
``aggregate``."""

from __future__ import annotations

import pytest

from clearline.core.eip712 import Domain
from clearline.oracle import DropReason, OracleConfig, OracleState, Outcome, aggregate
from clearline.oracle.feed import CALM, STRESSED, SimulatedFeed, SimulatedReporters, reporter_key
from clearline.oracle.report import recover_reporter, recover_reporters

DOMAIN = Domain(31337, bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
BTC, ETH = 0, 1
START = {BTC: 65_000_000_000, ETH: 3_200_000_000}
T0 = 1_700_000_000_000


def test_feed_is_deterministic_per_seed_and_integer():
    a = SimulatedFeed(START, seed=7, time_ms=T0).run(300)
    b = SimulatedFeed(START, seed=7, time_ms=T0).run(300)
    c = SimulatedFeed(START, seed=8, time_ms=T0).run(300)
    assert a == b and a != c
    for t, prices in a:
        assert type(t) is int
        assert set(prices) == {BTC, ETH}
        assert all(type(p) is int and p > 0 for p in prices.values())
    assert [t for t, _ in a] == [T0 + 1_000 * i for i in range(300)]


def test_feed_has_regimes_and_jumps():
    feed = SimulatedFeed(START, seed=3, time_scale=100.0, p_stress=0.05, p_calm=0.05,
                         jump_prob=(0.01, 0.05))
    regimes = set()
    for _ in range(2_000):
        feed.step()
        regimes.add(feed.regime)
    assert regimes == {CALM, STRESSED}
    assert feed.jumps > 0 and feed.steps == 2_000


def test_shock_moves_the_price_by_ppm():
    feed = SimulatedFeed({BTC: 100_000_000}, seed=1)
    assert feed.shock(BTC, -300_000) == 70_000_000
    assert feed.shock(BTC, 100_000) == 77_000_000
    with pytest.raises(ValueError):
        feed.shock(BTC, -1_000_000)


def test_feed_rejects_bad_inputs():
    with pytest.raises(ValueError):
        SimulatedFeed({})
    with pytest.raises(ValueError):
        SimulatedFeed({BTC: 0})
    with pytest.raises(ValueError):
        SimulatedFeed({BTC: 1.5})


def test_reporter_keys_are_deterministic_and_distinct():
    r1 = SimulatedReporters(DOMAIN, 4, seed=5)
    r2 = SimulatedReporters(DOMAIN, 4, seed=5)
    r3 = SimulatedReporters(DOMAIN, 4, seed=6)
    assert r1.addresses == r2.addresses and len(set(r1.addresses)) == 4
    assert not set(r1.addresses) & set(r3.addresses)
    assert r1.keys[2] == reporter_key(5, 2)
    with pytest.raises(ValueError):
        SimulatedReporters(DOMAIN, 2)


def test_reports_are_signed_and_close_to_the_truth():
    reporters = SimulatedReporters(DOMAIN, 3, seed=1, noise_ppm=200, max_latency_ms=200)
    batch = reporters.reports(START, T0)
    assert [(r.asset, recover_reporter(DOMAIN, r)) for r in batch] == \
        [(a, addr) for a in (BTC, ETH) for addr in reporters.addresses]
    for r in batch:
        assert abs(r.price - START[r.asset]) * 1_000_000 <= 200 * START[r.asset]
        assert T0 - 200 <= r.timestamp <= T0
    again = SimulatedReporters(DOMAIN, 3, seed=1, noise_ppm=200).reports(START, T0)
    assert again == batch


def run_rounds(reporters, config, rounds, feed, asset=BTC):
    state = OracleState(asset)
    results = []
    for _ in range(rounds):
        prices = feed.step()
        batch = [r for r in reporters.reports(prices, feed.time_ms) if r.asset == asset]
        res = aggregate(config, state, recover_reporters(DOMAIN, batch), feed.time_ms)
        results.append((prices[asset], res))
        state = res.state
    return results


def test_knobs_stale_liar_dropped_do_not_break_the_index():
    reporters = SimulatedReporters(DOMAIN, 5, seed=2, stale={1}, liars={2}, dropped={3},
                                   lie_ppm=500_000)
    config = OracleConfig(reporters.addresses, quorum=3, staleness_ms=3_000,
                          max_deviation_ppm=20_000, confirmations=3)
    feed = SimulatedFeed(START, seed=2, time_ms=T0, time_scale=10.0)
    results = run_rounds(reporters, config, 20, feed)
    dropped_reasons = set()
    for true, res in results:
        assert res.outcome in (Outcome.ACCEPTED,)  # the liar never triggers the guard
        assert abs(res.index_price - true) * 1_000_000 <= 1_000 * true  # within noise
        signers = {s for s, _ in res.used} | {s for s, _ in res.dropped}
        assert reporters.addresses[3] not in signers  # dropped sends nothing
        dropped_reasons |= {reason for _, reason in res.dropped}
    # the stuck reporter's one report is used once, then replays are refused, then it ages out
    assert dropped_reasons == {DropReason.ALREADY_USED, DropReason.STALE}


def test_two_liars_of_three_fresh_reports_can_move_the_median():
    """Documents the bound: the median is only safe while 2*liars < fresh reports."""
    reporters = SimulatedReporters(DOMAIN, 3, seed=4, liars={0, 1}, lie_ppm=500_000)
    config = OracleConfig(reporters.addresses, quorum=3, staleness_ms=3_000,
                          max_deviation_ppm=20_000, confirmations=2)
    feed = SimulatedFeed(START, seed=4, time_ms=T0)
    (true, first), *_ = run_rounds(reporters, config, 1, feed)
    assert first.index_price > true * 14 // 10


def test_dropping_below_quorum_freezes_the_index():
    reporters = SimulatedReporters(DOMAIN, 3, seed=9)
    config = OracleConfig(reporters.addresses, quorum=3, staleness_ms=3_000,
                          max_deviation_ppm=20_000, confirmations=2)
    feed = SimulatedFeed(START, seed=9, time_ms=T0)
    (_, first), = run_rounds(reporters, config, 1, feed)
    reporters.dropped = {0}
    state = first.state
    batch = [r for r in reporters.reports(feed.step(), feed.time_ms) if r.asset == BTC]
    res = aggregate(config, state, recover_reporters(DOMAIN, batch), feed.time_ms)
    assert res.outcome == Outcome.NO_UPDATE and res.state == state


def test_crash_shock_goes_through_the_guard():
    reporters = SimulatedReporters(DOMAIN, 3, seed=11)
    config = OracleConfig(reporters.addresses, quorum=2, staleness_ms=3_000,
                          max_deviation_ppm=100_000, confirmations=2)
    feed = SimulatedFeed(START, seed=11, time_ms=T0)
    (_, res), = run_rounds(reporters, config, 1, feed)
    before = res.index_price
    feed.shock(BTC, -300_000)
    outcomes = []
    state = res.state
    for _ in range(2):
        prices = feed.step()
        batch = [r for r in reporters.reports(prices, feed.time_ms) if r.asset == BTC]
        res = aggregate(config, state, recover_reporters(DOMAIN, batch), feed.time_ms)
        outcomes.append((res.outcome, res.liquidations_paused))
        state = res.state
    assert outcomes == [(Outcome.UNCONFIRMED, True), (Outcome.CONFIRMED, False)]
    assert state.index_price < before * 75 // 100
