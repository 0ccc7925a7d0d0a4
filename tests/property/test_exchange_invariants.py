"""Random sequences of every transaction kind against the exchange core.

After every step: ``State.check_invariants()`` (book never crossed, sum of positions 0 per
instrument, cash conservation, open interest), extra bookkeeping checks below, a rejected tx
leaves the root (and the snapshot bytes) unchanged and consumes no nonce, an accepted signed
tx consumes exactly its nonce. A shadow replica restored from a snapshot at a random step
receives the same transactions and must produce the same receipts and roots; at the end a
snapshot round trip reproduces the root.
"""

from __future__ import annotations

import sys
from pathlib import Path

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import BTC, ETH, MARK, OPERATOR_KEY, Exchange, key_of, owner_of  # noqa: E402

from clearline.core import eip712  # noqa: E402
from clearline.core.apply import Fill, OrderClosed, apply  # noqa: E402
from clearline.core.errors import ErrorCode  # noqa: E402
from clearline.core.hashing import keccak  # noqa: E402
from clearline.core.margin import account_health, is_reducing  # noqa: E402
from clearline.core.matching import CloseReason  # noqa: E402
from clearline.core.state import State  # noqa: E402
from clearline.core.txs import (Cancel, Deposit, MarkUpdate, Order, Replace, Transfer,  # noqa: E402
                                Withdraw)

# (user, subaccount) pairs: user 1 has two subaccounts (self-trade prevention between them)
SLOTS = [(1, 0), (1, 1), (2, 0), (3, 0), (4, 0)]
INSTRUMENTS = [BTC, ETH]


def weighted(*pairs):
    """One of several strategies, chosen with the given integer weights."""
    choices = [i for i, (w, _) in enumerate(pairs) for _ in range(w)]
    return st.sampled_from(choices).flatmap(lambda i: pairs[i][1])


amounts = weighted((6, st.integers(1, 5_000_000)), (6, st.integers(5_000_000, 200_000_000)), (1, st.just(0)))
price_offsets = weighted((20, st.integers(-12, 12)), (1, st.integers(-2_000, 2_000)))  # x10 ticks
sizes = weighted((12, st.integers(1, 20)), (6, st.integers(20, 400)), (1, st.just(10**6)))
signer_mode = st.sampled_from(["owner"] * 30 + ["other", "none"])
nonce_mode = st.sampled_from(["next"] * 30 + ["gap", "stale"])
expiries = st.sampled_from([1, 5, 30, 100, 400])
# (order type, time in force, flags, expiry from now): mostly valid shapes, some invalid ones
order_shapes = weighted(
    (12, st.just((0, 0, 0, 0))),  # limit GTC
    (4, st.tuples(st.just(0), st.just(1), st.just(0), expiries)),  # limit GTT
    (1, st.tuples(st.just(0), st.just(0), st.just(0), expiries)),  # limit GTC with an expiry
    (4, st.just((0, 2, 0, 0))),  # limit IOC
    (2, st.just((0, 3, 0, 0))),  # limit FOK
    (3, st.just((1, 2, 0, 0))),  # market IOC
    (1, st.just((1, 3, 0, 0))),  # market FOK
    (3, st.tuples(st.just(0), st.sampled_from([0, 1]), st.just(1), st.sampled_from([0, 50]))),  # post-only
    (1, st.tuples(st.integers(0, 2), st.integers(0, 4), st.integers(0, 4), st.sampled_from([0, 0, -1, 1]))),
)
time_steps = weighted((30, st.integers(0, 20)), (1, st.just(-1)))

ORDER_ARGS = dict(slot=st.integers(0, len(SLOTS) - 1), inst=st.sampled_from(INSTRUMENTS), side=st.integers(0, 1),
                  shape=order_shapes, reduce_only=st.sampled_from([0] * 5 + [2]), stp=st.integers(0, 2),
                  off=price_offsets, size=sizes, client_id=st.sampled_from([0, 0, 0, 1, 2, 3]),
                  nonce=nonce_mode, signer=signer_mode, dt=time_steps)

STEP_ARGS = {
    "order": ORDER_ARGS,
    "deposit": dict(slot=st.integers(0, len(SLOTS) + 1), amount=amounts, skew=st.sampled_from([0] * 8 + [-1, 1]),
                    dt=time_steps),
    "cancel": dict(slot=st.integers(0, len(SLOTS) - 1), scope=st.sampled_from([0, 0, 0, 1, 2, 3, 4]),
                   pick=st.integers(0, 50), inst=st.sampled_from(INSTRUMENTS + [5]), client_id=st.integers(0, 3),
                   nonce=nonce_mode, signer=signer_mode, dt=time_steps),
    "replace": dict(pick=st.integers(0, 50), other=st.integers(0, 10),
                    doff=st.sampled_from([0, 0, 0, -20, -10, 10, 30]), dsize=st.integers(-5, 5), nonce=nonce_mode,
                    signer=signer_mode, dt=time_steps),
    "withdraw": dict(slot=st.integers(0, len(SLOTS) - 1), amount=amounts, nonce=nonce_mode, signer=signer_mode,
                     dt=time_steps),
    "transfer": dict(slot=st.integers(0, len(SLOTS) - 1), to_sub=st.integers(0, 2), amount=amounts,
                     nonce=nonce_mode, signer=signer_mode, dt=time_steps),
    "mark": dict(moves=st.lists(st.tuples(st.sampled_from(INSTRUMENTS), st.integers(-600, 600)), min_size=1,
                                max_size=2, unique_by=lambda m: m[0]),
                 stale=st.sampled_from([False] * 6 + [True]),
                 signer=st.sampled_from(["owner"] * 8 + ["other", "none"]), dt=st.integers(0, 20)),
    "start_shadow": {},
}
STEP_KINDS = st.sampled_from(["order"] * 12 + ["cancel"] * 2 + ["replace"] * 3 + ["deposit", "withdraw", "transfer"]
                             + ["mark"] * 2 + ["start_shadow"])


class ExchangeMachine(RuleBasedStateMachine):
    @initialize(deposits=st.lists(st.integers(10_000_000, 300_000_000), min_size=5, max_size=5))
    def setup(self, deposits):
        self.ex = Exchange()
        for (user, sub), amt in zip(SLOTS, deposits):
            self.ex.account(user, amt, sub)
        self.shadow: State | None = None
        self.check_all()

    # -- plumbing --------------------------------------------------------------------------
    def _time(self, dt: int) -> int:
        return self.ex.state.time_ms + dt

    def _account(self, slot: int) -> int | None:
        user, sub = SLOTS[slot]
        return self.ex.state.account_ids.get((owner_of(user), sub))

    def _nonce(self, account: int, mode: str) -> int:
        n = self.ex.state.accounts[account].nonce
        return {"next": n + 1, "gap": n + 3, "stale": n}[mode]

    def _sign(self, tx, account: int | None, mode: str) -> None:
        st_ = self.ex.state
        if mode == "none":
            tx.signer = None
            return
        if isinstance(tx, MarkUpdate):
            key = OPERATOR_KEY if mode == "owner" else key_of(9)
        else:
            user = next(u for (u, s), aid in ((k, st_.account_ids.get((owner_of(k[0]), k[1]))) for k in SLOTS)
                        if aid == account)
            key = key_of(user) if mode == "owner" else key_of(user % 4 + 1 if user != 1 else 2)
        try:
            tx.signature = eip712.sign(st_.domain, tx, key)
            tx.signer = eip712.recover_signer(st_.domain, tx)
        except Exception:  # out-of-range field: let the core reject it itself
            tx.signer = eip712.address_of(key)

    def _apply(self, tx):
        st_ = self.ex.state
        root = st_.root()
        blob = st_.to_blob()
        nonces = [a.nonce for a in st_.accounts]
        open_before = {oid: o.remaining for oid, o in st_.orders.items()}
        fee_pool = st_.fee_pool
        sizes_before = {(a.id, i): p.size for a in st_.accounts for i, p in a.positions.items()}
        r = apply(st_, tx)
        event(f"{type(tx).__name__}: " + ("ok" if r.ok else ErrorCode(r.code).name))
        if r.ok:
            if hasattr(tx, "nonce"):
                assert st_.accounts[tx.account].nonce == tx.nonce
            self._check_events(tx, r, open_before, fee_pool)
            self._check_margin(r, sizes_before)
        else:
            assert st_.root() == root, f"rejected {r!r} changed the root"
            assert st_.to_blob() == blob, f"rejected {r!r} changed the state"
            assert [a.nonce for a in st_.accounts] == nonces
        if self.shadow is not None:
            r2 = apply(self.shadow, tx)
            assert (r2.ok, r2.code, r2.order_id) == (r.ok, r.code, r.order_id)
            assert self.shadow.root() == st_.root()
        self.check_all()
        return r

    def _check_events(self, tx, r, open_before: dict[int, int], fee_pool: int) -> None:
        """Fills, closes and rests add up: for every order touched, lots before = filled +
        unfilled-at-close (+ still resting); the fee pool grew by exactly the fills' fees."""
        st_ = self.ex.state
        filled: dict[int, int] = {}
        fees = 0
        for e in r.events:
            if isinstance(e, Fill):
                assert e.qty > 0 and e.taker_account != e.maker_account
                assert st_.accounts[e.taker_account].owner != st_.accounts[e.maker_account].owner
                assert e.taker_order == r.order_id and e.maker_order in open_before
                filled[e.maker_order] = filled.get(e.maker_order, 0) + e.qty
                filled[e.taker_order] = filled.get(e.taker_order, 0) + e.qty
                fees += e.taker_fee + e.maker_fee
                event("fill")
            elif isinstance(e, OrderClosed):
                event(f"closed {CloseReason(e.reason).name}")
                assert e.order_id not in st_.orders
                if e.reason == CloseReason.FILLED:
                    assert e.unfilled == 0
                else:
                    assert e.unfilled > 0
                if e.order_id in open_before:  # a resting order left the book
                    assert open_before[e.order_id] == filled.get(e.order_id, 0) + e.unfilled
        assert st_.fee_pool - fee_pool == fees
        for oid, rem in open_before.items():  # resting orders that stayed: lost exactly their fills
            if oid in st_.orders and not (isinstance(tx, Replace) and oid == tx.order_id):
                assert st_.orders[oid].remaining == rem - filled.get(oid, 0)
        if isinstance(tx, Order) or (isinstance(tx, Replace) and r.order_id != tx.order_id):
            oid = r.order_id
            size = tx.size
            rest = st_.orders[oid].remaining if oid in st_.orders else 0
            unfilled = sum(e.unfilled for e in r.events if isinstance(e, OrderClosed) and e.order_id == oid)
            assert filled.get(oid, 0) + rest + unfilled == size, "the new order's lots do not add up"
            assert (rest > 0) + (unfilled > 0) + (filled.get(oid, 0) == size) == 1

    def _check_margin(self, r, sizes_before: dict) -> None:
        """Whoever traded either only reduced a position or is at or above initial margin."""
        st_ = self.ex.state
        traded = {(e.instrument, a) for e in r.events if isinstance(e, Fill) for a in (e.taker_account, e.maker_account)}
        for inst, aid in sorted(traded):
            acct = st_.accounts[aid]
            old = sizes_before.get((aid, inst), 0)
            new = acct.positions[inst].size if inst in acct.positions else 0
            assert new != old
            if not is_reducing(old, new):
                equity, im, _ = account_health(st_, acct)
                assert equity >= im, f"account {aid} increased {old} -> {new} with equity {equity} < IM {im}"

    def check_all(self) -> None:
        st_ = self.ex.state
        st_.check_invariants()
        n_open = 0
        for a in st_.accounts:
            assert a.nonce >= 0
            for oid, o in a.open_orders.items():
                assert st_.orders[oid] is o and o.account == a.id and o.owner == a.owner
                assert 0 < o.remaining <= o.size
                n_open += 1
            assert list(a.open_orders) == sorted(a.open_orders)
            assert {cid: oid for cid, oid in a.client_ids.items()} == {
                o.client_id: oid for oid, o in a.open_orders.items() if o.client_id}
            for p in a.positions.values():
                assert p.size != 0 or p.quote != 0
        assert n_open == len(st_.orders)
        st_.root()  # the orders tree holds exactly the open orders, each at its id
        assert st_.orders_tree.items() == [(oid, keccak(State.order_leaf(o))) for oid, o in sorted(st_.orders.items())]
        assert all(oid < st_.next_order_id for oid in st_.orders)
        assert st_.fee_pool >= 0

    # -- rules -------------------------------------------------------------------------------
    def deposit(self, slot, amount, skew, dt):
        user, sub = SLOTS[slot] if slot < len(SLOTS) else (slot, 0)  # two brand-new owners too
        st_ = self.ex.state
        self._apply(Deposit(self._time(dt), st_.l1_queue_pos + skew, owner_of(user), sub, amount))

    def order(self, slot, inst, side, shape, reduce_only, stp, off, size, client_id, nonce, signer, dt):
        acct = self._account(slot)
        if acct is None:
            return
        otype, tif, flags, expiry_in = shape
        t = self._time(dt)
        mark = self.ex.state.markets[inst].mark_price or MARK
        price = max(1, mark + off * 10)
        expiry = 0 if expiry_in == 0 else max(0, t + expiry_in)
        if tif == 1 and expiry == 0:
            expiry = t + 50
        tx = Order(t, acct, inst, side, otype, tif, flags | reduce_only, stp, price, size, expiry, client_id,
                   self._nonce(acct, nonce))
        self._sign(tx, acct, signer)
        self._apply(tx)

    def _some_order_id(self, pick: int) -> int:
        ids = sorted(self.ex.state.orders)
        if not ids or pick % 7 == 6:
            return self.ex.state.next_order_id + pick % 3  # unknown
        return ids[pick % len(ids)]

    def cancel(self, slot, scope, pick, inst, client_id, nonce, signer, dt):
        acct = self._account(slot)
        tx = Cancel(self._time(dt), acct, scope, inst, self._some_order_id(pick), client_id,
                    self._nonce(acct, nonce))
        self._sign(tx, acct, signer)
        self._apply(tx)

    def replace(self, pick, other, doff, dsize, nonce, signer, dt):
        oid = self._some_order_id(pick)
        o = self.ex.state.orders.get(oid)
        if o is not None and other:
            acct, price, size = o.account, o.price + doff, o.remaining + dsize
        else:  # unknown order, or someone else's
            acct = self._account(other % len(SLOTS))
            price, size = MARK, 1
        tx = Replace(self._time(dt), acct, oid, max(0, price), max(0, size), self._nonce(acct, nonce))
        self._sign(tx, acct, signer)
        self._apply(tx)

    def withdraw(self, slot, amount, nonce, signer, dt):
        acct = self._account(slot)
        tx = Withdraw(self._time(dt), acct, amount, self._nonce(acct, nonce))
        self._sign(tx, acct, signer)
        self._apply(tx)

    def transfer(self, slot, to_sub, amount, nonce, signer, dt):
        acct = self._account(slot)
        tx = Transfer(self._time(dt), acct, to_sub, amount, self._nonce(acct, nonce))
        self._sign(tx, acct, signer)
        self._apply(tx)  # to_sub 2 creates an account that only receives collateral here

    def mark(self, moves, stale, signer, dt):
        st_ = self.ex.state
        t = self._time(dt)
        ts = max(1, max(st_.markets[i].mark_time for i, _ in moves) if stale else t)
        prices = [max(1, st_.markets[i].mark_price + d * 10) for i, d in moves]
        tx = MarkUpdate(t, ts, [i for i, _ in moves], prices)
        self._sign(tx, None, signer)
        self._apply(tx)

    def start_shadow(self):
        """A replica restored from a snapshot here must follow the live state exactly."""
        if self.shadow is not None:
            return
        self.shadow = State.from_blob(self.ex.state.to_blob())
        assert self.shadow.root() == self.ex.state.root()

    @rule(kind=STEP_KINDS, data=st.data())
    def step(self, kind, data):
        """One transaction (or a replica start), its kind chosen with STEP_KINDS' weights."""
        if kind == "replace" and not self.ex.state.orders and data.draw(st.integers(0, 4)):
            kind = "order"  # mostly replace something that exists
        args = {name: data.draw(strategy, label=name) for name, strategy in STEP_ARGS[kind].items()}
        getattr(self, kind)(**args)

    @invariant()
    def snapshot_is_stable(self):
        st_ = self.ex.state if hasattr(self, "ex") else None
        if st_ is not None and len(st_.orders) % 5 == 0:  # now and then: full round trip
            assert State.from_blob(st_.to_blob()).root() == st_.root()

    def teardown(self):
        if hasattr(self, "ex"):
            st_ = self.ex.state
            copy = State.from_blob(st_.to_blob())
            assert copy.root() == st_.root()
            assert copy.to_blob() == st_.to_blob()


ExchangeMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow])
TestExchange = ExchangeMachine.TestCase
