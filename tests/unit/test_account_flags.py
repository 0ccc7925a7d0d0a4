"""Account flags and the operator's cancel-all: the core side of cancel-on-disconnect and the
dead-man switch. The node cannot sign a Cancel for a user, so the user opts in once with a
signed SetAccountFlags (bit 0), and the node then sends OperatorAction CANCEL_ALL_ORDERS,
which the core accepts only for accounts that opted in."""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import BTC, ETH, MARK, OPERATOR_KEY, E, Exchange, closed, key_of  # noqa: E402

from clearline.core import eip712  # noqa: E402
from clearline.core.apply import apply  # noqa: E402
from clearline.core.encoding import decode_tx, encode_tx  # noqa: E402
from clearline.core.matching import CloseReason  # noqa: E402
from clearline.core.state import State  # noqa: E402
from clearline.core.txs import (AccountFlag, CancelTrigger, OperatorAction, OperatorActionKind,  # noqa: E402
                                SetAccountFlags)

USD = 1_000_000


class FlagsExchange(Exchange):
    def set_flags(self, account: int, flags: int, *, key: bytes | None = None, nonce: int | None = None):
        tx = SetAccountFlags(self.next_time(), account, flags, self._nonce(account, nonce))
        return self.submit(tx, self._key(account, key))

    def operator_cancel_all(self, account: int, trigger: int = CancelTrigger.DISCONNECT, *, key: bytes = OPERATOR_KEY):
        t = self.next_time()
        tx = OperatorAction(t, OperatorActionKind.CANCEL_ALL_ORDERS, account, int(trigger), t)
        return self.submit(tx, key)


def _with_orders() -> tuple[FlagsExchange, int, int]:
    ex = FlagsExchange()
    a = ex.account(1, 100_000 * USD)
    b = ex.account(2, 100_000 * USD)
    for i in range(3):
        ex.ok(ex.buy(a, MARK - 10 - i, 5))
    ex.ok(ex.sell(a, MARK + 10, 5, instrument=ETH))
    ex.ok(ex.buy(b, MARK - 50, 5))
    return ex, a, b


def test_opted_in_account_orders_are_cancelled_by_the_operator():
    ex, a, b = _with_orders()
    r = ex.ok(ex.set_flags(a, AccountFlag.OPERATOR_MAY_CANCEL))
    assert ex.state.accounts[a].flags == 1
    assert [(e.account, e.flags) for e in r.events] == [(a, 1)]
    ids = ex.open_ids(a)
    r = ex.ok(ex.operator_cancel_all(a, CancelTrigger.DEAD_MAN))
    assert closed(r) == [(oid, int(CloseReason.OPERATOR_CANCEL), 5) for oid in ids]
    assert ex.open_ids(a) == []
    assert len(ex.open_ids(b)) == 1  # only that account
    assert ex.depth(BTC)[0][0] == MARK - 50


def test_not_opted_in_is_rejected_and_changes_nothing():
    ex, a, _ = _with_orders()
    ex.reject(E.NOT_OPTED_IN, ex.operator_cancel_all, a)
    ex.ok(ex.set_flags(a, 1))
    ex.ok(ex.set_flags(a, 0))  # opting out withdraws the permission
    ex.reject(E.NOT_OPTED_IN, ex.operator_cancel_all, a)
    assert len(ex.open_ids(a)) == 4


def test_operator_cancel_all_preconditions():
    ex, a, b = _with_orders()
    ex.ok(ex.set_flags(a, 1))
    ex.reject(E.NOT_OPERATOR, ex.operator_cancel_all, a, key=key_of(1))
    ex.reject(E.UNKNOWN_ACCOUNT, ex.operator_cancel_all, 99)
    ex.reject(E.MALFORMED, ex.operator_cancel_all, a, 0)
    ex.reject(E.MALFORMED, ex.operator_cancel_all, a, 3)
    ex.ok(ex.operator_cancel_all(a))
    ex.reject(E.NOT_DUE, ex.operator_cancel_all, a)  # nothing left: no empty housekeeping in the log


def test_set_flags_rules():
    ex, a, b = _with_orders()
    ex.reject(E.INVALID_ACCOUNT_FLAGS, ex.set_flags, a, 2)
    ex.reject(E.INVALID_ACCOUNT_FLAGS, ex.set_flags, a, 255)
    ex.reject(E.NOT_ACCOUNT_OWNER, ex.set_flags, a, 1, key=key_of(2))
    ex.reject(E.BAD_NONCE, ex.set_flags, a, 1, nonce=ex.state.accounts[a].nonce)
    ex.reject(E.UNKNOWN_ACCOUNT, ex.set_flags, 99, 1)


def test_flags_are_committed_in_the_leaf_and_survive_snapshots_and_replay():
    ex, a, _ = _with_orders()
    before = ex.state.root()
    log = []
    for tx in (SetAccountFlags(ex.next_time(), a, 1, ex.state.accounts[a].nonce + 1),):
        tx.signature = eip712.sign(ex.state.domain, tx, key_of(1))
        tx.signer = eip712.recover_signer(ex.state.domain, tx)
        assert apply(ex.state, tx).ok
        log.append(tx)
    t = ex.next_time()
    op = OperatorAction(t, OperatorActionKind.CANCEL_ALL_ORDERS, a, CancelTrigger.DISCONNECT, t)
    op.signature = eip712.sign(ex.state.domain, op, OPERATOR_KEY)
    op.signer = eip712.recover_signer(ex.state.domain, op)
    assert apply(ex.state, op).ok
    log.append(op)
    assert ex.state.root() != before
    # snapshot round trip keeps the flag
    copy = State.from_blob(ex.state.to_blob())
    assert copy.accounts[a].flags == 1 and copy.root() == ex.state.root()
    # the leaf changes with the flag alone
    leaf = ex.state.account_leaf(ex.state.accounts[a])
    ex.state.accounts[a].flags = 0
    assert ex.state.account_leaf(ex.state.accounts[a]) != leaf
    ex.state.accounts[a].flags = 1
    # the two transactions replay from their canonical bytes (signer recovered again)
    replica, _, _ = _with_orders()
    assert replica.state.root() == before
    for tx in log:
        again = decode_tx(encode_tx(tx))
        again.signer = eip712.recover_signer(replica.state.domain, again)
        assert apply(replica.state, again).ok
    assert replica.state.root() == ex.state.root()


def test_old_snapshots_without_flags_still_load():
    import json

    ex, a, _ = _with_orders()
    d = json.loads(ex.state.to_blob())
    d["accounts"] = [row[:6] for row in d["accounts"]]
    st_ = State.from_blob(json.dumps(d).encode())
    assert all(acct.flags == 0 for acct in st_.accounts)


@settings(max_examples=60, deadline=None)
@given(flags=st.integers(0, 255))
def test_only_known_flag_bits_are_accepted(flags):
    ex = FlagsExchange()
    a = ex.account(1, 1_000 * USD)
    if flags & ~int(AccountFlag.OPERATOR_MAY_CANCEL):
        ex.reject(E.INVALID_ACCOUNT_FLAGS, ex.set_flags, a, flags)
    else:
        ex.ok(ex.set_flags(a, flags))
        assert ex.state.accounts[a].flags == flags
