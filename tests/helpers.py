"""A small exchange fixture for core tests: a State from a known Genesis, funded accounts from
deterministic private keys, and one method per transaction kind that builds, *really* signs
(``eip712.sign``), recovers ``tx.signer`` (``eip712.recover_signer``) and applies the tx, with
auto-incrementing time and nonce.

Units used by the default fixture (see ``clearline.core.units``): both perpetuals have
``tick_value == 10`` usd6, and the default marks are 100_000 ticks, so one lot at 100_000 ticks
is exactly 1_000_000 usd6 (1 USD) of notional. That keeps hand-computed numbers readable:
``notional(p, q) = p * q * 10``.

Import from a test module with::

    _TESTS = Path(__file__).resolve().parents[1]
    if str(_TESTS) not in sys.path:
        sys.path.insert(0, str(_TESTS))
    from helpers import Exchange, ...
"""

from __future__ import annotations

from clearline.core import eip712
from clearline.core.apply import CollateralMoved, Fill, OrderClosed, OrderRested, Receipt, apply
from clearline.core.eip712 import Domain, address_of
from clearline.core.errors import ErrorCode, Rejected
from clearline.core.margin import account_health
from clearline.core.state import Genesis, State
from clearline.core.txs import (Cancel, CancelScope, Deposit, MarkUpdate, Order, OrderType, Replace, Side,
                                TimeInForce, Transfer, Withdraw)

__all__ = [
    "BTC", "ETH", "BUY", "SELL", "CHAIN_ID", "CONTRACT", "OPERATOR_KEY", "OPERATOR", "DOMAIN", "MARK",
    "key_of", "owner_of", "Exchange", "events", "fills", "closed", "rested", "E",
]

E = ErrorCode
BTC = 0
ETH = 1
BUY = Side.BUY
SELL = Side.SELL
CHAIN_ID = 31337
CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
OPERATOR_KEY = (0x0FE7A70B).to_bytes(32, "big")
OPERATOR = address_of(OPERATOR_KEY)
DOMAIN = Domain(CHAIN_ID, CONTRACT)
MARK = 100_000  # default mark of both instruments, in ticks: 1 lot = 1 USD of notional
START_MS = 1_700_000_000_000


def key_of(i: int) -> bytes:
    """Deterministic private key of test user ``i`` (i >= 0)."""
    return (0xC1EA7 * 1_000_003 + i).to_bytes(32, "big")


def owner_of(i: int) -> bytes:
    return address_of(key_of(i))


def events(receipt: Receipt, cls) -> list:
    return [e for e in receipt.events if isinstance(e, cls)]


def fills(receipt: Receipt) -> list[tuple[int, int, int, int]]:
    """[(price, qty, maker_order, maker_account)] of the receipt's fills, in order."""
    return [(f.price, f.qty, f.maker_order, f.maker_account) for f in events(receipt, Fill)]


def closed(receipt: Receipt) -> list[tuple[int, int, int]]:
    """[(order_id, reason, unfilled)] of the receipt's OrderClosed events, in order."""
    return [(c.order_id, int(c.reason), c.unfilled) for c in events(receipt, OrderClosed)]


def rested(receipt: Receipt) -> list[tuple[int, int, int, int]]:
    """[(order_id, side, price, remaining)] of the receipt's OrderRested events."""
    return [(r.order_id, int(r.side), r.price, r.remaining) for r in events(receipt, OrderRested)]


class Exchange:
    """A State plus the keys that own its accounts.

    Every method that sends a signed tx accepts ``nonce=`` (default: the account's last nonce
    + 1, so a rejected tx does not advance it), ``time=`` (default: one ms after the previous
    tx sent through this fixture), ``key=`` (default: the key that owns the account),
    ``sign_domain=`` (default: the state's domain) and ``signed=False`` (leave ``signer``
    None). They return the Receipt.
    """

    def __init__(self, marks: tuple[int, ...] = (MARK, MARK), genesis: Genesis | None = None):
        self.genesis = genesis or Genesis(CHAIN_ID, CONTRACT, OPERATOR, initial_marks=tuple(marks))
        self.state = State(self.genesis)
        self.time = START_MS
        self.keys: dict[int, bytes] = {}  # account id -> private key of its owner
        self.mark_ts = 0

    # -- plumbing ----------------------------------------------------------------------
    def next_time(self, time: int | None = None) -> int:
        if time is None:
            self.time += 1
        else:
            self.time = max(self.time, time)
            return time
        return self.time

    def submit(self, tx, key: bytes | None, *, sign_domain: Domain | None = None, signed: bool = True) -> Receipt:
        if signed and key is not None:
            try:
                tx.signature = eip712.sign(sign_domain or self.state.domain, tx, key)
                tx.signer = eip712.recover_signer(self.state.domain, tx)
            except Rejected:
                # a field out of its uintN range cannot be signed; the core must still reject
                # it on its own, so stamp the key's address as if a verifier had passed it
                tx.signature = b""
                tx.signer = address_of(key)
        else:
            tx.signer = None
        return apply(self.state, tx)

    def _nonce(self, account: int, nonce: int | None) -> int:
        if nonce is not None:
            return nonce
        if 0 <= account < len(self.state.accounts):
            return self.state.accounts[account].nonce + 1
        return 1

    def _key(self, account: int, key: bytes | None) -> bytes | None:
        return key if key is not None else self.keys.get(account, key_of(0))

    # -- L1 deposits -----------------------------------------------------------------------
    def deposit(self, user: int, amount: int, subaccount: int = 0, *, queue_index: int | None = None,
                time: int | None = None) -> Receipt:
        owner = owner_of(user)
        qi = self.state.l1_queue_pos if queue_index is None else queue_index
        r = apply(self.state, Deposit(self.next_time(time), qi, owner, subaccount, amount))
        if r.ok:
            aid = self.state.account_ids[(owner, subaccount)]
            self.keys[aid] = key_of(user)
        return r

    def account(self, user: int, amount: int, subaccount: int = 0) -> int:
        """Deposit ``amount`` for (user, subaccount) and return the account id."""
        r = self.deposit(user, amount, subaccount)
        assert r.ok, r
        return self.state.account_ids[(owner_of(user), subaccount)]

    # -- user-signed -------------------------------------------------------------------------
    def order(self, account: int, side: int, price: int, size: int, *, instrument: int = BTC,
              order_type: int = OrderType.LIMIT, tif: int = TimeInForce.GTC, flags: int = 0, stp: int = 0,
              expiry: int = 0, client_id: int = 0, nonce: int | None = None, time: int | None = None,
              key: bytes | None = None, sign_domain: Domain | None = None, signed: bool = True) -> Receipt:
        tx = Order(self.next_time(time), account, instrument, side, order_type, tif, flags, stp, price, size,
                   expiry, client_id, self._nonce(account, nonce))
        return self.submit(tx, self._key(account, key), sign_domain=sign_domain, signed=signed)

    def buy(self, account: int, price: int, size: int, **kw) -> Receipt:
        return self.order(account, BUY, price, size, **kw)

    def sell(self, account: int, price: int, size: int, **kw) -> Receipt:
        return self.order(account, SELL, price, size, **kw)

    def cancel(self, account: int, *, order_id: int = 0, client_id: int = 0, instrument: int = 0,
               scope: int | None = None, nonce: int | None = None, time: int | None = None,
               key: bytes | None = None, sign_domain: Domain | None = None, signed: bool = True) -> Receipt:
        if scope is None:
            scope = CancelScope.BY_CLIENT_ID if client_id and not order_id else CancelScope.BY_ORDER_ID
        tx = Cancel(self.next_time(time), account, scope, instrument, order_id, client_id,
                    self._nonce(account, nonce))
        return self.submit(tx, self._key(account, key), sign_domain=sign_domain, signed=signed)

    def replace(self, account: int, order_id: int, price: int, size: int, *, nonce: int | None = None,
                time: int | None = None, key: bytes | None = None, sign_domain: Domain | None = None,
                signed: bool = True) -> Receipt:
        tx = Replace(self.next_time(time), account, order_id, price, size, self._nonce(account, nonce))
        return self.submit(tx, self._key(account, key), sign_domain=sign_domain, signed=signed)

    def withdraw(self, account: int, amount: int, *, nonce: int | None = None, time: int | None = None,
                 key: bytes | None = None, sign_domain: Domain | None = None, signed: bool = True) -> Receipt:
        tx = Withdraw(self.next_time(time), account, amount, self._nonce(account, nonce))
        return self.submit(tx, self._key(account, key), sign_domain=sign_domain, signed=signed)

    def transfer(self, account: int, to_subaccount: int, amount: int, *, nonce: int | None = None,
                 time: int | None = None, key: bytes | None = None, sign_domain: Domain | None = None,
                 signed: bool = True) -> Receipt:
        tx = Transfer(self.next_time(time), account, to_subaccount, amount, self._nonce(account, nonce))
        return self.submit(tx, self._key(account, key), sign_domain=sign_domain, signed=signed)

    # -- operator ------------------------------------------------------------------------------
    def mark(self, prices: dict[int, int], *, timestamp: int | None = None, time: int | None = None,
             key: bytes | None = None, signed: bool = True) -> Receipt:
        """Signed MarkUpdate {instrument: ticks}; timestamp defaults to the tx time."""
        t = self.next_time(time)
        insts = sorted(prices)
        tx = MarkUpdate(t, t if timestamp is None else timestamp, insts, [prices[i] for i in insts])
        return self.submit(tx, OPERATOR_KEY if key is None else key, signed=signed)

    # -- assertions and views ------------------------------------------------------------------
    def reject(self, code: ErrorCode, fn, *args, **kw) -> Receipt:
        """Call ``fn(*args, **kw)``; assert it is rejected with ``code`` and changed nothing:
        same state root, same snapshot bytes, no nonce consumed."""
        st = self.state
        root = st.root()
        blob = st.to_blob()
        nonces = [a.nonce for a in st.accounts]
        r = fn(*args, **kw)
        assert not r.ok, f"expected {code.name}, got {r!r}"
        assert r.code == code, f"expected {code.name}, got {ErrorCode(r.code).name}: {r.message}"
        assert st.root() == root, "a rejected tx changed the state root"
        assert st.to_blob() == blob, "a rejected tx changed the state"
        assert [a.nonce for a in st.accounts] == nonces
        return r

    def ok(self, r: Receipt) -> Receipt:
        assert r.ok, r
        self.state.check_invariants()
        return r

    def coll(self, account: int) -> int:
        return self.state.accounts[account].collateral

    def pos(self, account: int, instrument: int = BTC) -> tuple[int, int]:
        """(size, quote) of a position; (0, 0) when there is none."""
        p = self.state.accounts[account].positions.get(instrument)
        return (0, 0) if p is None else (p.size, p.quote)

    def health(self, account: int) -> tuple[int, int, int]:
        return account_health(self.state, self.state.accounts[account])

    def depth(self, instrument: int = BTC, side: int = BUY, levels: int = 10) -> list[tuple[int, int, int]]:
        return self.state.books[instrument].depth(side, levels)

    def book_ids(self, instrument: int = BTC, side: int = BUY) -> list[int]:
        """Order ids resting on ``side`` in priority order."""
        return [o.order_id for o in self.state.books[instrument].orders(side)]

    def open_ids(self, account: int) -> list[int]:
        return list(self.state.accounts[account].open_orders)


__all__ += ["CollateralMoved", "Fill", "OrderClosed", "OrderRested", "START_MS"]
