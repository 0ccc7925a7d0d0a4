"""L1 forced withdrawals: always consume their queue item; served or denied by the rule."""

from clearline.core.apply import apply
from clearline.core.encoding import decode_tx, encode_tx
from clearline.core.errors import ErrorCode as E
from clearline.core.ledger import CollateralMoved, ForcedWithdrawalDenied
from clearline.core.txs import ForcedWithdrawal
from helpers import BTC, Exchange, owner_of

FUND = 1_000_000_000


def _forced(ex, owner, account, amount, queue_index=None):
    q = ex.state.l1_queue_pos if queue_index is None else queue_index
    return apply(ex.state, ForcedWithdrawal(ex.next_time(), q, owner, account, amount))


def test_served_from_free_collateral_and_queue_consumed():
    ex = Exchange()
    a = ex.account(1, FUND)
    q = ex.state.l1_queue_pos
    r = _forced(ex, owner_of(1), a, 400_000_000)
    assert r.ok and [type(e) for e in r.events] == [CollateralMoved]
    assert ex.coll(a) == FUND - 400_000_000
    assert ex.state.l1_queue_pos == q + 1
    assert ex.state.total_withdrawals == 400_000_000
    ex.state.check_invariants()


def test_denied_by_rule_still_consumes_the_queue_item_and_changes_no_balance():
    ex = Exchange()
    a = ex.account(1, FUND)
    mkr = ex.account(2, 100 * FUND)
    mark = ex.state.markets[BTC].mark_price
    ex.ok(ex.sell(mkr, mark, 10_000))
    ex.ok(ex.buy(a, mark, 10_000))  # $10k notional: $500 initial margin locked
    cases = [
        (owner_of(2), a, 1, E.NOT_ACCOUNT_OWNER),
        (owner_of(1), 99, 1, E.UNKNOWN_ACCOUNT),
        (owner_of(1), a, 0, E.ZERO_AMOUNT),
        (owner_of(1), a, 600_000_000, E.INSUFFICIENT_MARGIN),  # free is ~$499
        (owner_of(1), a, 2 * FUND, E.INSUFFICIENT_COLLATERAL),
    ]
    for owner, account, amount, code in cases:
        before = ex.coll(a)
        q = ex.state.l1_queue_pos
        r = _forced(ex, owner, account, amount)
        assert r.ok
        (ev,) = r.events
        assert isinstance(ev, ForcedWithdrawalDenied) and ev.reason == code and ev.queue_index == q
        assert ex.state.l1_queue_pos == q + 1 and ex.coll(a) == before
    ex.state.check_invariants()


def test_out_of_order_item_is_rejected_and_changes_nothing():
    ex = Exchange()
    a = ex.account(1, FUND)
    root = ex.state.root()
    r = _forced(ex, owner_of(1), a, 1, queue_index=ex.state.l1_queue_pos + 1)
    assert not r.ok and r.code == E.QUEUE_OUT_OF_ORDER
    assert ex.state.root() == root


def test_encoding_roundtrip():
    tx = ForcedWithdrawal(123, 7, owner_of(3), 42, 5_000_000)
    assert decode_tx(encode_tx(tx)) == tx
