"""Accounts: signatures, ownership, nonces, deposits, withdrawals, transfers, mark updates and
time. Every rejection leaves the state root (and the snapshot bytes) unchanged and consumes no
nonce (``Exchange.reject`` checks all three)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import (BTC, CHAIN_ID, CONTRACT, ETH, OPERATOR, OPERATOR_KEY, START_MS,  # noqa: E402
                     CollateralMoved, E, Exchange, key_of, owner_of)

from clearline.core import eip712  # noqa: E402
from clearline.core.apply import apply  # noqa: E402
from clearline.core.eip712 import Domain  # noqa: E402
from clearline.core.txs import CancelScope, Deposit, MarkUpdate, Order  # noqa: E402

FUND = 1_000_000_000


@pytest.fixture
def ex() -> Exchange:
    return Exchange()


# -- nonces ------------------------------------------------------------------------------------
def test_nonces_increase_gaps_allowed_replays_rejected(ex):
    a = ex.account(1, FUND)
    ex.reject(E.BAD_NONCE, ex.buy, a, 99_000, 1, nonce=0)
    ex.ok(ex.buy(a, 99_000, 1, nonce=5))  # gap 1..4 skipped
    assert ex.state.accounts[a].nonce == 5
    ex.reject(E.BAD_NONCE, ex.buy, a, 99_000, 1, nonce=5)  # replay
    ex.reject(E.BAD_NONCE, ex.buy, a, 99_000, 1, nonce=3)  # an unused but lower nonce
    ex.reject(E.BAD_NONCE, ex.cancel, a, order_id=1, nonce=5)  # nonces are shared by all kinds
    ex.reject(E.BAD_NONCE, ex.withdraw, a, 1, nonce=4)
    ex.reject(E.BAD_NONCE, ex.buy, a, 99_000, 1, nonce=1 << 64)  # above uint64
    ex.ok(ex.withdraw(a, 1, nonce=6))
    ex.ok(ex.cancel(a, order_id=1, nonce=100))
    assert ex.state.accounts[a].nonce == 100


def test_replaying_the_very_same_signed_tx_is_rejected(ex):
    a = ex.account(1, FUND)
    tx = Order(ex.time + 1, a, BTC, 0, 0, 0, 0, 0, 99_000, 1, 0, 0, 1)
    tx.signature = eip712.sign(ex.state.domain, tx, key_of(1))
    tx.signer = eip712.recover_signer(ex.state.domain, tx)
    assert apply(ex.state, tx).ok
    ex.reject(E.BAD_NONCE, apply, ex.state, tx)


def test_nonces_are_per_account(ex):
    a0 = ex.account(1, FUND, subaccount=0)
    a1 = ex.account(1, FUND, subaccount=1)
    ex.ok(ex.buy(a0, 99_000, 1, nonce=7))
    ex.ok(ex.buy(a1, 99_000, 1, nonce=1))


# -- signatures and ownership -----------------------------------------------------------------------
def test_signer_must_own_the_account(ex):
    a = ex.account(1, FUND)
    b = ex.account(2, FUND)
    ex.reject(E.NOT_ACCOUNT_OWNER, ex.buy, a, 99_000, 1, key=key_of(2))
    ex.reject(E.NOT_ACCOUNT_OWNER, ex.withdraw, a, 1, key=key_of(2))
    ex.reject(E.NOT_ACCOUNT_OWNER, ex.transfer, a, 3, 1, key=key_of(2))
    ex.reject(E.NOT_ACCOUNT_OWNER, ex.cancel, a, scope=CancelScope.ALL, key=key_of(2))
    oid = ex.ok(ex.buy(a, 99_000, 1)).order_id
    ex.reject(E.NOT_ACCOUNT_OWNER, ex.replace, a, oid, 99_000, 1, key=key_of(2))
    ex.ok(ex.buy(b, 99_000, 1, key=key_of(2)))


@pytest.mark.parametrize("domain", [Domain(CHAIN_ID + 1, CONTRACT), Domain(1, CONTRACT),
                                    Domain(CHAIN_ID, bytes(19) + b"\x01")],
                         ids=["chain+1", "mainnet", "other-contract"])
def test_signature_for_another_domain_recovers_someone_else(ex, domain):
    a = ex.account(1, FUND)
    ex.reject(E.NOT_ACCOUNT_OWNER, ex.buy, a, 99_000, 1, sign_domain=domain)
    ex.reject(E.NOT_ACCOUNT_OWNER, ex.withdraw, a, 1, sign_domain=domain)
    t = ex.next_time()
    ex.reject(E.NOT_OPERATOR, ex.submit, MarkUpdate(t, t, [BTC], [1]), OPERATOR_KEY, sign_domain=domain)


def test_unsigned_is_rejected(ex):
    a = ex.account(1, FUND)
    ex.reject(E.BAD_SIGNATURE, ex.buy, a, 99_000, 1, signed=False)
    ex.reject(E.BAD_SIGNATURE, ex.cancel, a, scope=CancelScope.ALL, signed=False)
    ex.reject(E.BAD_SIGNATURE, ex.replace, a, 1, 99_000, 1, signed=False)
    ex.reject(E.BAD_SIGNATURE, ex.withdraw, a, 1, signed=False)
    ex.reject(E.BAD_SIGNATURE, ex.transfer, a, 1, 1, signed=False)
    ex.reject(E.BAD_SIGNATURE, ex.mark, {BTC: 1}, signed=False)


def test_unknown_account(ex):
    ex.account(1, FUND)
    ex.reject(E.UNKNOWN_ACCOUNT, ex.buy, 1, 99_000, 1, key=key_of(1))
    ex.reject(E.UNKNOWN_ACCOUNT, ex.withdraw, -1, 1, key=key_of(1))


def test_a_tampered_tx_recovers_another_signer(ex):
    a = ex.account(1, FUND)
    tx = Order(ex.time + 1, a, BTC, 0, 0, 0, 0, 0, 99_000, 1, 0, 0, 1)
    tx.signature = eip712.sign(ex.state.domain, tx, key_of(1))
    tx.size = 1000  # changed after signing
    tx.signer = eip712.recover_signer(ex.state.domain, tx)
    assert tx.signer != owner_of(1)
    ex.reject(E.NOT_ACCOUNT_OWNER, apply, ex.state, tx)


# -- deposits --------------------------------------------------------------------------------------
def test_deposits_follow_the_l1_queue(ex):
    r = ex.deposit(1, 500)
    assert r.ok and ex.state.l1_queue_pos == 1
    ev = r.events[0]
    assert isinstance(ev, CollateralMoved) and (ev.kind, ev.from_account, ev.to_account, ev.amount) == (
        "deposit", -1, 0, 500)
    ex.reject(E.QUEUE_OUT_OF_ORDER, ex.deposit, 1, 500, queue_index=0)  # already included
    ex.reject(E.QUEUE_OUT_OF_ORDER, ex.deposit, 1, 500, queue_index=2)  # skips one
    ex.ok(ex.deposit(1, 700, queue_index=1))
    ex.ok(ex.deposit(1, 1, subaccount=5))
    ex.ok(ex.deposit(2, 0))  # a zero deposit still advances the queue
    st = ex.state
    assert st.l1_queue_pos == 4 and st.total_deposits == 1_201
    assert [(a.owner, a.subaccount, a.collateral) for a in st.accounts] == [
        (owner_of(1), 0, 1_200), (owner_of(1), 5, 1), (owner_of(2), 0, 0)]
    ex.reject(E.MALFORMED, apply, st, Deposit(ex.time, 4, b"\x01" * 19, 0, 1))
    ex.reject(E.MALFORMED, apply, st, Deposit(ex.time, 4, owner_of(1), 1 << 32, 1))
    ex.reject(E.MALFORMED, apply, st, Deposit(ex.time, 4, owner_of(1), 0, -1))


# -- withdrawals --------------------------------------------------------------------------------------
def test_withdraw(ex):
    a = ex.account(1, FUND)
    ex.reject(E.ZERO_AMOUNT, ex.withdraw, a, 0)
    ex.reject(E.MALFORMED, ex.withdraw, a, -5)
    ex.reject(E.INSUFFICIENT_COLLATERAL, ex.withdraw, a, FUND + 1)
    r = ex.ok(ex.withdraw(a, 400))
    ev = r.events[0]
    assert (ev.kind, ev.from_account, ev.to_account, ev.amount) == ("withdraw", a, -1, 400)
    assert ex.coll(a) == FUND - 400 and ex.state.total_withdrawals == 400
    ex.ok(ex.withdraw(a, FUND - 400))  # everything, no positions
    assert ex.coll(a) == 0
    ex.reject(E.INSUFFICIENT_COLLATERAL, ex.withdraw, a, 1)


def test_withdraw_with_open_position_needs_margin(ex):
    a, m = ex.account(1, 10_000_000), ex.account(2, FUND)
    ex.ok(ex.sell(m, 100_000, 100))
    ex.ok(ex.buy(a, 100_000, 100))  # fee 50_000; IM 5_000_000
    assert ex.health(a)[:2] == (9_950_000, 5_000_000)
    ex.reject(E.INSUFFICIENT_MARGIN, ex.withdraw, a, 4_950_001)
    ex.ok(ex.withdraw(a, 4_950_000))


# -- transfers ----------------------------------------------------------------------------------------
def test_transfer_between_own_subaccounts_creates_the_destination(ex):
    a = ex.account(1, FUND)
    n_before = len(ex.state.accounts)
    r = ex.ok(ex.transfer(a, 7, 300_000_000))
    dest = ex.state.account_ids[(owner_of(1), 7)]
    assert dest == n_before and len(ex.state.accounts) == n_before + 1
    ev = r.events[0]
    assert (ev.kind, ev.from_account, ev.to_account, ev.amount) == ("transfer", a, dest, 300_000_000)
    assert ex.coll(a) == 700_000_000 and ex.coll(dest) == 300_000_000
    assert ex.state.accounts[dest].nonce == 0
    assert ex.state.total_deposits == FUND and ex.state.total_withdrawals == 0
    # the new subaccount is owned by the same key and trades on its own margin
    ex.keys[dest] = key_of(1)
    ex.ok(ex.buy(dest, 99_000, 10))
    ex.ok(ex.transfer(dest, 0, 100_000_000))  # and back to an existing one
    assert ex.coll(a) == 800_000_000 and len(ex.state.accounts) == n_before + 1


def test_transfer_rejections(ex):
    a, m = ex.account(1, 10_000_000), ex.account(2, FUND)
    ex.reject(E.SAME_ACCOUNT, ex.transfer, a, 0, 1)
    ex.reject(E.ZERO_AMOUNT, ex.transfer, a, 1, 0)
    ex.reject(E.MALFORMED, ex.transfer, a, 1 << 32, 1)
    ex.reject(E.INSUFFICIENT_COLLATERAL, ex.transfer, a, 1, 10_000_001)
    ex.ok(ex.sell(m, 100_000, 100))
    ex.ok(ex.buy(a, 100_000, 100))  # equity 9_950_000, IM 5_000_000
    ex.reject(E.INSUFFICIENT_MARGIN, ex.transfer, a, 1, 4_950_001)
    assert (owner_of(1), 1) not in ex.state.account_ids  # nothing created by the rejection
    ex.ok(ex.transfer(a, 1, 4_950_000))


# -- mark updates -------------------------------------------------------------------------------------
def test_mark_updates_only_from_the_operator(ex):
    ex.account(1, FUND)
    ex.reject(E.NOT_OPERATOR, ex.mark, {BTC: 101_000}, key=key_of(1))
    r = ex.ok(ex.mark({BTC: 101_000, ETH: 99_000}))
    m = ex.state.markets
    assert (m[BTC].mark_price, m[ETH].mark_price) == (101_000, 99_000)
    assert m[BTC].mark_time == ex.time and r.events == []


def test_stale_and_malformed_marks(ex):
    t = ex.time + 100
    ex.ok(ex.mark({BTC: 101_000}, timestamp=t - 50, time=t))
    ex.reject(E.STALE_MARK, ex.mark, {BTC: 102_000}, timestamp=t - 50, time=t + 1)  # same timestamp
    ex.reject(E.STALE_MARK, ex.mark, {BTC: 102_000}, timestamp=t - 60, time=t + 1)  # older
    ex.reject(E.STALE_MARK, ex.mark, {BTC: 102_000, ETH: 1}, timestamp=t - 60, time=t + 1)  # one stale: all out
    ex.ok(ex.mark({ETH: 99_000}, timestamp=t - 60, time=t + 1))  # per market: ETH had none that new
    ex.reject(E.MALFORMED, ex.mark, {BTC: 102_000}, timestamp=t + 10, time=t + 2)  # after tx time
    ex.reject(E.MALFORMED, ex.mark, {BTC: 102_000}, timestamp=0, time=t + 2)
    ex.reject(E.INVALID_PRICE, ex.mark, {BTC: 0}, time=t + 3)
    ex.reject(E.UNKNOWN_INSTRUMENT, ex.mark, {9: 1}, time=t + 3)
    ex.reject(E.MALFORMED, ex.mark, {}, time=t + 3)
    op = OPERATOR_KEY
    dup = MarkUpdate(t + 4, t + 4, [BTC, BTC], [1, 2])
    ex.reject(E.MALFORMED, ex.submit, dup, op)
    uneven = MarkUpdate(t + 4, t + 4, [BTC, ETH], [1])
    ex.reject(E.MALFORMED, ex.submit, uneven, op)
    ex.ok(ex.mark({BTC: 102_000}, timestamp=t - 49, time=t + 5))
    assert ex.state.markets[BTC].mark_time == t - 49


# -- time ---------------------------------------------------------------------------------------------
def test_time_never_goes_backwards(ex):
    a = ex.account(1, FUND)
    t = ex.state.time_ms
    ex.reject(E.TIME_WENT_BACKWARDS, ex.buy, a, 99_000, 1, time=t - 1)
    ex.reject(E.TIME_WENT_BACKWARDS, ex.deposit, 2, 1, time=t - 1)
    ex.reject(E.TIME_WENT_BACKWARDS, ex.mark, {BTC: 1}, timestamp=t - 2, time=t - 1)
    ex.ok(ex.buy(a, 99_000, 1, time=t))  # equal time is fine
    ex.ok(ex.buy(a, 99_000, 1, time=t + 1000))
    assert ex.state.time_ms == t + 1000
    ex.reject(E.TIME_WENT_BACKWARDS, ex.withdraw, a, 1, time=t + 999)


def test_rejected_tx_does_not_advance_time(ex):
    a = ex.account(1, FUND)
    t = ex.state.time_ms
    ex.reject(E.INSUFFICIENT_COLLATERAL, ex.withdraw, a, FUND + 1, time=t + 500)
    assert ex.state.time_ms == t
    ex.ok(ex.withdraw(a, 1, time=t + 1))


def test_unknown_tx_kind(ex):
    r = apply(ex.state, type("Bogus", (), {"time_ms": START_MS * 2})())
    assert not r.ok and r.code == E.UNKNOWN_TX_KIND


def test_snapshot_round_trip_after_activity(ex):
    from clearline.core.state import State
    a, b = ex.account(1, FUND), ex.account(2, FUND)
    ex.ok(ex.sell(a, 100_000, 5, client_id=3))
    ex.ok(ex.buy(b, 100_000, 2))
    ex.ok(ex.transfer(a, 4, 10))
    ex.ok(ex.mark({BTC: 100_500}))
    ex.ok(ex.buy(b, 99_000, 1, instrument=ETH))
    ex.ok(ex.cancel(b, scope=CancelScope.ALL))
    ex.ok(ex.buy(b, 98_000, 1))
    copy = State.from_blob(ex.state.to_blob())
    assert copy.root() == ex.state.root()
    assert copy.to_blob() == ex.state.to_blob()
    assert copy.operator == OPERATOR
