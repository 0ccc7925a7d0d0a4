"""Aggregation rules by hand-computed examples: median, quorum, staleness, reporter checks,
replay guard and the deviation guard's confirmation state machine."""

from __future__ import annotations

import pytest

from clearline.oracle import (
    DropReason,
    OracleConfig,
    OracleErrorCode,
    OracleRejected,
    OracleState,
    Outcome,
    PriceReport,
    aggregate,
    median,
)

R = tuple(bytes([i]) * 20 for i in range(1, 6))  # five known reporters
STRANGER = b"\xee" * 20
ASSET = 0
NOW = 1_000_000
CFG = OracleConfig(R, quorum=3, staleness_ms=5_000, max_deviation_ppm=100_000, confirmations=3)


def rep(signer: bytes, price: int, ts: int = NOW, asset: int = ASSET, rnd: int = 1):
    return (PriceReport(asset, price, ts, rnd), signer)


def reps(prices, ts: int = NOW):
    return [rep(R[i], p, ts) for i, p in enumerate(prices)]


def seeded(price: int = 1_000, at: int = NOW - 10_000) -> OracleState:
    return OracleState(ASSET, index_price=price, index_time_ms=at, last_round_ms=at)


# --- median ----------------------------------------------------------------------------------

def test_median_odd_and_even_counts():
    assert median([5]) == 5
    assert median([3, 1, 2]) == 2
    assert median([10, 40, 20, 30]) == 20  # even: the lower of the two middle values
    assert median([7, 7]) == 7
    assert median([1, 100]) == 1
    assert median([9, 1, 8, 2, 7, 3]) == 3
    with pytest.raises(ValueError):
        median([])


def test_aggregate_median_odd():
    res = aggregate(CFG, OracleState(ASSET), reps([1_010, 990, 1_000]), NOW)
    assert res.outcome == Outcome.ACCEPTED
    assert res.median == res.index_price == 1_000
    assert res.used == ((R[1], 990), (R[2], 1_000), (R[0], 1_010))
    assert res.state == OracleState(ASSET, 1_000, NOW, NOW, 0, 0)
    assert res.liquidations_paused is False


def test_aggregate_median_even_is_lower_middle():
    res = aggregate(CFG, OracleState(ASSET), reps([1_030, 1_000, 1_020, 1_010]), NOW)
    assert res.median == 1_010
    res = aggregate(CFG, OracleState(ASSET), reps([1_000, 1_001, 1_002, 1_003, 1_004]), NOW)
    assert res.median == 1_002


def test_equal_prices_tie_break_by_signer():
    res = aggregate(CFG, OracleState(ASSET), [rep(R[2], 5), rep(R[0], 5), rep(R[1], 5)], NOW)
    assert res.used == ((R[0], 5), (R[1], 5), (R[2], 5))
    assert res.median == 5


# --- quorum, staleness, reporters ------------------------------------------------------------

def test_quorum_not_met_is_no_update_and_state_unchanged():
    state = seeded()
    res = aggregate(CFG, state, reps([1_000, 1_001]), NOW)
    assert res.outcome == Outcome.NO_UPDATE
    assert res.state is state
    assert res.median == 0
    assert res.used == ((R[0], 1_000), (R[1], 1_001))
    # also when the third report is unusable
    res = aggregate(CFG, state, reps([1_000, 1_001]) + [rep(R[2], 1_002, ts=NOW + 1)], NOW)
    assert res.outcome == Outcome.NO_UPDATE and res.state is state
    assert aggregate(CFG, state, [], NOW).state is state


def test_staleness_boundary_is_inclusive():
    state = seeded(at=0)
    edge = NOW - CFG.staleness_ms
    res = aggregate(CFG, state, [rep(R[0], 1_000, edge), rep(R[1], 1_000, edge),
                                 rep(R[2], 1_000, edge)], NOW)
    assert res.outcome == Outcome.ACCEPTED  # age == staleness_ms is fresh
    res = aggregate(CFG, state, [rep(R[0], 1_000, edge), rep(R[1], 1_000, edge),
                                 rep(R[2], 1_000, edge - 1)], NOW)
    assert res.outcome == Outcome.NO_UPDATE
    assert res.dropped == ((R[2], DropReason.STALE),)


def test_future_report_is_dropped_and_now_is_fresh():
    res = aggregate(CFG, seeded(), [rep(R[0], 1_000, NOW), rep(R[1], 1_000, NOW),
                                    rep(R[2], 1_000, NOW + 1), rep(R[3], 1_000, NOW - 1)], NOW)
    assert res.dropped == ((R[2], DropReason.FUTURE),)
    assert [s for s, _ in res.used] == [R[0], R[1], R[3]]
    assert res.outcome == Outcome.ACCEPTED


def test_unknown_reporter_is_ignored():
    res = aggregate(CFG, seeded(), reps([1_000, 1_001, 1_002]) + [rep(STRANGER, 10)], NOW)
    assert res.dropped == ((STRANGER, DropReason.UNKNOWN_REPORTER),)
    assert res.median == 1_001
    res = aggregate(CFG, seeded(), reps([1_000, 1_001]) + [rep(STRANGER, 1_002)], NOW)
    assert res.outcome == Outcome.NO_UPDATE  # strangers do not count toward quorum


def test_zero_price_is_dropped():
    res = aggregate(CFG, seeded(), reps([0, 1_001, 1_002, 1_003]), NOW)
    assert res.dropped == ((R[0], DropReason.ZERO_PRICE),)
    assert res.median == 1_002


def test_duplicate_reporter_rejects_the_whole_update():
    for dup in (rep(R[0], 1_000), rep(R[0], 2_000, NOW - 1), rep(R[0], 1, NOW + 10)):
        with pytest.raises(OracleRejected) as e:
            aggregate(CFG, seeded(), reps([1_000, 1_001, 1_002]) + [dup], NOW)
        assert e.value.code == OracleErrorCode.DUPLICATE_REPORTER == 80
    with pytest.raises(OracleRejected) as e:  # duplicates of a stranger too
        aggregate(CFG, seeded(), reps([1_000, 1_001, 1_002]) + [rep(STRANGER, 1)] * 2, NOW)
    assert e.value.code == OracleErrorCode.DUPLICATE_REPORTER


def test_wrong_asset_rejects_the_whole_update():
    with pytest.raises(OracleRejected) as e:
        aggregate(CFG, seeded(), reps([1_000, 1_001]) + [rep(R[2], 1_002, asset=1)], NOW)
    assert e.value.code == OracleErrorCode.WRONG_ASSET == 81


def test_time_going_backwards_is_rejected():
    state = seeded(at=NOW)
    with pytest.raises(OracleRejected) as e:
        aggregate(CFG, state, reps([1_000] * 3, NOW - 2), NOW - 1)
    assert e.value.code == OracleErrorCode.TIME_WENT_BACKWARDS == 82
    # same time as the last round: nothing can be fresh (no report is newer than it)
    res = aggregate(CFG, state, reps([1_000] * 3, NOW), NOW)
    assert res.outcome == Outcome.NO_UPDATE
    assert {reason for _, reason in res.dropped} == {DropReason.ALREADY_USED}


@pytest.mark.parametrize("items, now", [
    ([(PriceReport(0, 1, 1, 1), b"\x01" * 19)], NOW),
    ([(PriceReport(0, 1, 1, 1), "0x" + "01" * 20)], NOW),
    ([(PriceReport(0, 1.0, 1, 1), R[0])], NOW),
    ([(PriceReport(0, 1 << 64, 1, 1), R[0])], NOW),
    ([(PriceReport(0, True, 1, 1), R[0])], NOW),
    ([((0, 1, 1, 1), R[0])], NOW),
    ([(PriceReport(0, 1, 1, 1),)], NOW),
    ([[PriceReport(0, 1, 1, 1), R[0]]], NOW),
    ([], -1),
    ([], 1 << 64),
    ([], float(NOW)),
])
def test_malformed_input_is_rejected(items, now):
    with pytest.raises(OracleRejected) as e:
        aggregate(CFG, seeded(at=0), items, now)
    assert e.value.code == OracleErrorCode.MALFORMED_INPUT == 83
    assert e.value.message and "MALFORMED_INPUT" in str(e.value)


def test_reports_are_never_reused_across_rounds():
    """Replay guard: a report with timestamp <= last_round_ms is ALREADY_USED."""
    first = aggregate(CFG, seeded(), reps([1_000, 1_001, 1_002], NOW - 100), NOW - 50)
    assert first.outcome == Outcome.ACCEPTED
    again = aggregate(CFG, first.state, reps([1_000, 1_001, 1_002], NOW - 100), NOW)
    assert again.outcome == Outcome.NO_UPDATE
    assert again.dropped == tuple((R[i], DropReason.ALREADY_USED) for i in range(3))
    # a report between the two rounds is fine
    mixed = aggregate(CFG, first.state, reps([1_000, 1_001, 1_002], NOW - 49), NOW)
    assert mixed.outcome == Outcome.ACCEPTED


# --- deviation guard -------------------------------------------------------------------------

def step(state, price, now, n=3):
    return aggregate(CFG, state, reps([price] * n, now), now)


def test_move_within_bound_is_accepted_boundary_inclusive():
    # bound: |m - 1000| * 1e6 <= 100_000 * 1000  <=>  |m - 1000| <= 100
    for price in (1_100, 900, 1_000):
        res = step(seeded(), price, NOW)
        assert (res.outcome, res.index_price) == (Outcome.ACCEPTED, price)
    for price in (1_101, 899):
        res = step(seeded(), price, NOW)
        assert (res.outcome, res.index_price) == (Outcome.UNCONFIRMED, 1_000)


def test_jump_needs_n_consecutive_rounds_then_is_accepted():
    state = seeded()
    r1 = step(state, 1_500, NOW)
    assert r1.outcome == Outcome.UNCONFIRMED and r1.liquidations_paused
    assert r1.state == OracleState(ASSET, 1_000, NOW - 10_000, NOW, 1_500, 1)
    assert r1.median == 1_500 and r1.index_price == 1_000
    r2 = step(r1.state, 1_400, NOW + 1_000)
    assert r2.outcome == Outcome.UNCONFIRMED and r2.liquidations_paused
    assert (r2.state.pending_price, r2.state.pending_count) == (1_400, 2)
    r3 = step(r2.state, 1_450, NOW + 2_000)
    assert r3.outcome == Outcome.CONFIRMED and not r3.liquidations_paused
    assert r3.state == OracleState(ASSET, 1_450, NOW + 2_000, NOW + 2_000, 0, 0)
    # the new level is now the reference: small moves around it are plain updates
    r4 = step(r3.state, 1_500, NOW + 3_000)
    assert (r4.outcome, r4.index_price) == (Outcome.ACCEPTED, 1_500)


def test_jump_that_reverts_resets_the_count():
    r1 = step(seeded(), 1_500, NOW)
    r2 = step(r1.state, 1_500, NOW + 1_000)
    assert r2.state.pending_count == 2
    back = step(r2.state, 1_050, NOW + 2_000)  # within the bound of the confirmed 1_000
    assert back.outcome == Outcome.ACCEPTED and back.index_price == 1_050
    assert back.state.pending_count == 0 and not back.liquidations_paused
    again = step(back.state, 1_500, NOW + 3_000)
    assert again.outcome == Outcome.UNCONFIRMED and again.state.pending_count == 1


def test_jump_in_the_other_direction_restarts_the_count():
    r1 = step(seeded(), 1_500, NOW)
    r2 = step(r1.state, 1_500, NOW + 1_000)
    down = step(r2.state, 500, NOW + 2_000)
    assert down.outcome == Outcome.UNCONFIRMED
    assert (down.state.pending_price, down.state.pending_count) == (500, 1)
    d2 = step(down.state, 520, NOW + 3_000)
    d3 = step(d2.state, 510, NOW + 4_000)
    assert d3.outcome == Outcome.CONFIRMED and d3.index_price == 510


def test_no_update_round_neither_advances_nor_resets_a_pending_jump():
    r1 = step(seeded(), 1_500, NOW)
    idle = step(r1.state, 1_500, NOW + 1_000, n=2)
    assert idle.outcome == Outcome.NO_UPDATE and idle.state == r1.state
    assert idle.liquidations_paused  # still unconfirmed
    r2 = step(idle.state, 1_500, NOW + 2_000)
    assert r2.state.pending_count == 2


def test_first_round_sets_the_index_without_guard():
    res = step(OracleState(ASSET), 123_456_789, NOW)
    assert (res.outcome, res.index_price) == (Outcome.ACCEPTED, 123_456_789)


def test_one_confirmation_accepts_at_once_and_zero_bound_guards_every_move():
    cfg = OracleConfig(R[:3], quorum=2, staleness_ms=0, max_deviation_ppm=0, confirmations=1)
    res = aggregate(cfg, seeded(), reps([2_000, 2_000]), NOW)
    assert (res.outcome, res.index_price) == (Outcome.CONFIRMED, 2_000)
    res = aggregate(cfg, res.state, reps([2_000, 2_000], NOW + 1), NOW + 1)
    assert res.outcome == Outcome.ACCEPTED
    cfg2 = OracleConfig(R[:3], quorum=2, staleness_ms=0, max_deviation_ppm=0, confirmations=2)
    res = aggregate(cfg2, seeded(), reps([1_001, 1_001]), NOW)
    assert res.outcome == Outcome.UNCONFIRMED


def test_crash_of_thirty_percent_pauses_liquidations_until_confirmed():
    cfg = OracleConfig(R[:3], quorum=2, staleness_ms=2_000, max_deviation_ppm=50_000,
                       confirmations=2)
    state = seeded(65_000_000_000)
    crash = 45_500_000_000
    r1 = aggregate(cfg, state, reps([crash, crash, crash]), NOW)
    assert r1.outcome == Outcome.UNCONFIRMED and r1.liquidations_paused
    assert r1.index_price == 65_000_000_000
    r2 = aggregate(cfg, r1.state, reps([crash] * 3, NOW + 1_000), NOW + 1_000)
    assert r2.outcome == Outcome.CONFIRMED and r2.index_price == crash
    assert not r2.liquidations_paused


def test_inputs_are_not_mutated_and_any_iterable_works():
    items = reps([1_000, 1_001, 1_002])
    snapshot = list(items)
    state = seeded()
    a = aggregate(CFG, state, iter(items), NOW)
    b = aggregate(CFG, state, tuple(items), NOW)
    assert a == b and items == snapshot and state == seeded()


# --- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(reporters=()),
    dict(reporters=[R[0], R[1]]),
    dict(reporters=(R[0], R[0])),
    dict(reporters=(R[0], b"\x01" * 19)),
    dict(quorum=0),
    dict(quorum=6),
    dict(quorum=True),
    dict(staleness_ms=-1),
    dict(max_deviation_ppm=-1),
    dict(max_deviation_ppm=1 << 32),
    dict(confirmations=0),
    dict(confirmations=2.0),
])
def test_bad_config_is_a_value_error(kwargs):
    base = dict(reporters=R, quorum=3, staleness_ms=1, max_deviation_ppm=1, confirmations=1)
    with pytest.raises(ValueError):
        OracleConfig(**{**base, **kwargs})


@pytest.mark.parametrize("kwargs", [
    dict(asset=-1), dict(asset=1 << 32), dict(index_price=-1), dict(pending_count=1),
    dict(pending_price=5, pending_count=0), dict(index_price=0, pending_price=5, pending_count=1),
    dict(last_round_ms=1.5),
])
def test_bad_state_is_a_value_error(kwargs):
    with pytest.raises(ValueError):
        OracleState(**{"asset": 0, **kwargs})


def test_config_and_state_are_frozen_values():
    with pytest.raises(AttributeError):
        CFG.quorum = 1  # type: ignore[misc]
    assert CFG == OracleConfig(R, 3, 5_000, 100_000, 3)
    assert CFG.is_reporter(R[4]) and not CFG.is_reporter(STRANGER)
    with pytest.raises(AttributeError):
        seeded().index_price = 1  # type: ignore[misc]
