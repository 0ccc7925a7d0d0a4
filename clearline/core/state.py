"""The exchange state and its commitment (the state root).

State = accounts (owner, subaccount, collateral, nonce, positions, open orders), markets
(the instrument registry plus mark, funding index, open interest), the order books, and a
few global scalars. The root commits to all of it through three positional sparse Merkle
trees (accounts by id, open orders by order id, markets by instrument id) and a final hash of
their roots with the scalars (``encoding.state_root``).

Roots are incremental: every mutation marks what it touched dirty, and ``root()`` re-hashes
only those leaves and their paths, so a root per transaction or per small chunk is cheap.
An open order's leaf sits at its order id (a closed order's becomes empty again), so the tree
holds only open orders and where an order goes needs no rule: a fraud proof opens an order id
and shows the order there, or shows that it is not open.

The accounts tree also holds a sorted index of the accounts' (owner, subaccount) keys
(``encoding.account_key``): account ``i``'s entry ``(key, next larger key)`` at
``ACCOUNT_INDEX_BASE + i`` and a sentinel ``(0, smallest key)`` at ``ACCOUNT_INDEX_SENTINEL``.
A fraud proof shows that an account does not exist yet with the entry whose key is the next
smaller one (its next key is larger), and inserts the new account after it: so deposits and
transfers that create accounts can be re-executed on L1.
"""

from __future__ import annotations

import heapq
import json
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field

from . import encoding
from .book import Book, RestingOrder
from .eip712 import Domain
from .errors import InvariantBroken
from .instruments import InstrumentKind, InstrumentSpec, Market, MarketStatus, default_perpetuals
from .merkle import EMPTY_LEAF, SparseMerkleTree
from .underlying import RiskParams, Underlying, UnderlyingConfig
from ..oracle.aggregate import OracleState

ACCOUNTS_DEPTH = 32
ORDERS_DEPTH = 48  # order ids below 2**48: ~600 years at the 15k orders/s measured here, 9 years at 1M/s
MAX_ORDER_ID = (1 << ORDERS_DEPTH) - 1
MARKETS_DEPTH = 24
UNDERLYING_BASE = 1 << 23  # underlying leaves live in the markets tree from this index up
MAX_POSITIONS = 32
MAX_OPEN_ORDERS = 1000
MAX_ACCOUNTS = (1 << 31) - 1  # account ids 0 .. MAX_ACCOUNTS - 1: the tree's upper half is the index
ACCOUNT_INDEX_BASE = 1 << 31  # account i's index entry is at ACCOUNT_INDEX_BASE + i
ACCOUNT_INDEX_SENTINEL = ACCOUNT_INDEX_BASE + MAX_ACCOUNTS  # the entry of key 0 (2**32 - 1)


@dataclass(frozen=True, slots=True)
class Genesis:
    """Everything a replica needs to start from the same state."""

    chain_id: int
    verifying_contract: bytes  # the Rollup contract address (EIP-712 domain)
    operator: bytes  # address whose signature mark updates must carry
    instruments: tuple[InstrumentSpec, ...] = field(default_factory=lambda: tuple(default_perpetuals()))
    initial_marks: tuple[int, ...] = ()  # optional mark (ticks) per instrument, same order
    underlyings: tuple[UnderlyingConfig, ...] = ()  # oracle + option terms per underlying
    params: RiskParams = field(default_factory=RiskParams)
    listing: object | None = None  # clearline.core.listing.ListingRule; None = no options listed

    def to_json(self) -> bytes:
        d = {
            "chain_id": self.chain_id,
            "verifying_contract": self.verifying_contract.hex(),
            "operator": self.operator.hex(),
            "instruments": [_spec_to_dict(s) for s in self.instruments],
            "initial_marks": list(self.initial_marks),
        }
        if self.underlyings:
            d["underlyings"] = [u.to_dict() for u in self.underlyings]
        if self.params != RiskParams():
            d["params"] = self.params.to_dict()
        if self.listing is not None:
            d["listing"] = {k: getattr(self.listing, k) for k in self.listing.__slots__}
        return json.dumps(d, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> "Genesis":
        d = json.loads(data)
        listing = None
        if "listing" in d:
            from .listing import ListingRule

            listing = ListingRule(**d["listing"])
        return cls(d["chain_id"], bytes.fromhex(d["verifying_contract"]), bytes.fromhex(d["operator"]),
                   tuple(InstrumentSpec(**s) for s in d["instruments"]), tuple(d["initial_marks"]),
                   tuple(UnderlyingConfig.from_dict(u) for u in d.get("underlyings", ())),
                   RiskParams(**d["params"]) if "params" in d else RiskParams(), listing)


def _spec_to_dict(s: InstrumentSpec) -> dict:
    return s.to_dict()


class Position:
    __slots__ = ("size", "quote", "funding_index")

    def __init__(self, size: int = 0, quote: int = 0, funding_index: int = 0):
        self.size = size  # lots, signed
        self.quote = quote  # usd6, signed cash balance of the open position
        self.funding_index = funding_index  # market funding index at last settlement


class Account:
    __slots__ = ("id", "owner", "subaccount", "collateral", "nonce", "margin_mode", "flags", "positions",
                 "open_orders", "client_ids")

    def __init__(self, id: int, owner: bytes, subaccount: int):
        self.id = id
        self.owner = owner
        self.subaccount = subaccount
        self.collateral = 0  # usd6, signed (realised losses can exceed deposits)
        self.nonce = 0  # last accepted nonce of a signed action
        self.margin_mode = 0  # 0 standard, 1 portfolio
        self.flags = 0  # txs.AccountFlag bits, set by the owner (SetAccountFlags)
        self.positions: dict[int, Position] = {}
        self.open_orders: dict[int, RestingOrder] = {}  # order id -> order, ascending ids
        self.client_ids: dict[int, int] = {}  # client id -> order id (open orders only)


class State:
    def __init__(self, genesis: Genesis):
        self.genesis = genesis
        self.domain = Domain(genesis.chain_id, genesis.verifying_contract)
        self.operator = genesis.operator
        self.accounts: list[Account] = []
        self.account_ids: dict[tuple[bytes, int], int] = {}
        # the index of (owner, subaccount) keys (derived from the accounts, committed in the tree)
        self.index_keys: list[int] = []  # sorted
        self.account_keys: list[int] = []  # by account id
        self._key_ids: dict[int, int] = {}  # key -> account id
        self.dirty_index: set[int] = {MAX_ACCOUNTS}  # account ids whose entry changed; MAX_ACCOUNTS = the sentinel
        self.markets: dict[int, Market] = {}
        self.books: dict[int, Book] = {}
        self.holders: dict[int, set[int]] = {}  # instrument -> ids of accounts with a position (derived)
        self.paying: set[int] = set()  # perpetuals with unpaid_lots > 0 (derived)
        self.underlyings: dict[int, Underlying] = {}
        self.underlying_by_symbol: dict[str, Underlying] = {}
        self.params = genesis.params
        self.listing = genesis.listing
        self.orders: dict[int, RestingOrder] = {}  # open orders by id
        self.pending = None  # the order being matched step by step (order_steps.PendingTaker), if any
        self.expiries: list[tuple[int, int]] = []  # heap of (expiry ms, order id); derived, may hold stale ids
        self.l1_queue_pos = 0
        self.fee_pool = 0
        self.insurance_fund = 0
        self.next_order_id = 1
        self.time_ms = 0
        self.total_deposits = 0
        self.total_withdrawals = 0
        self.accounts_tree = SparseMerkleTree(ACCOUNTS_DEPTH)
        self.orders_tree = SparseMerkleTree(ORDERS_DEPTH)
        self.markets_tree = SparseMerkleTree(MARKETS_DEPTH)
        self.dirty_accounts: set[int] = set()
        self.dirty_orders: dict[int, RestingOrder | None] = {}  # order id -> order, None = closed
        self.dirty_markets: set[int] = set()
        self.dirty_underlyings: set[int] = set()
        # instrument id -> (spec, its encoded constant leaf words): a cache for ``root``, not state
        self._market_terms: dict[int, tuple[InstrumentSpec, bytes]] = {}
        for cfg in sorted(genesis.underlyings, key=lambda u: u.id):
            if cfg.symbol in self.underlying_by_symbol or cfg.id in self.underlyings:
                # markets find their underlying by symbol (margin, liquidation, and the L1
                # verifier, which matches the symbol in the proven leaf): it must be unique
                raise InvariantBroken(f"underlying {cfg.symbol!r} (id {cfg.id}) configured twice")
            u = Underlying(cfg, OracleState(cfg.id))
            self.underlyings[cfg.id] = u
            self.underlying_by_symbol[cfg.symbol] = u
            self.dirty_underlyings.add(cfg.id)
        marks = genesis.initial_marks
        for i, spec in enumerate(sorted(genesis.instruments, key=lambda s: s.id)):
            self.add_market(spec)
        for spec, mark in zip(genesis.instruments, marks):
            self.markets[spec.id].mark_price = mark

    # -- registry ----------------------------------------------------------------
    def add_market(self, spec: InstrumentSpec) -> Market:
        spec.validate()
        if spec.id >= UNDERLYING_BASE:
            # the markets tree holds underlying leaves from UNDERLYING_BASE up
            raise InvariantBroken(f"instrument id {spec.id} is in the underlyings' part of the markets tree")
        if spec.id in self.markets:
            raise InvariantBroken(f"instrument id {spec.id} listed twice")
        m = self.markets[spec.id] = Market(spec)
        self.books[spec.id] = Book(spec.id, self.dirty_orders, m, self.dirty_markets)
        self.holders[spec.id] = set()
        self.dirty_markets.add(spec.id)
        return m

    def next_instrument_id(self) -> int:
        return max(self.markets) + 1 if self.markets else 0

    def index_of(self, market) -> int:
        """Index price (usd6 per underlying unit) of a market's underlying, 0 if unknown."""
        u = self.underlying_by_symbol.get(market.spec.underlying)
        return u.oracle.index_price if u is not None else 0

    # -- accounts ----------------------------------------------------------------
    def account_for(self, owner: bytes, subaccount: int) -> Account:
        """The account of (owner, subaccount), created at the next id if new. Callers check
        for room first (``apply._check_room``, before any mutation): a full account space
        here is a core bug."""
        aid = self.account_ids.get((owner, subaccount))
        if aid is not None:
            return self.accounts[aid]
        if len(self.accounts) >= MAX_ACCOUNTS:
            raise InvariantBroken(f"account space full ({MAX_ACCOUNTS}): room is checked before the mutation")
        acct = Account(len(self.accounts), owner, subaccount)
        self.accounts.append(acct)
        self.account_ids[(owner, subaccount)] = acct.id
        self.dirty_accounts.add(acct.id)
        key = encoding.account_key(owner, subaccount)
        keys = self.index_keys
        pos = bisect_left(keys, key)
        if pos < len(keys) and keys[pos] == key:
            raise InvariantBroken(f"account key of (0x{owner.hex()}, {subaccount}) collides with another's")
        # the entry before it now points to it: the previous account's, or the sentinel's
        self.dirty_index.add(self._key_ids[keys[pos - 1]] if pos else MAX_ACCOUNTS)
        keys.insert(pos, key)
        self.account_keys.append(key)
        self._key_ids[key] = acct.id
        self.dirty_index.add(acct.id)
        return acct

    def account_exists(self, owner: bytes, subaccount: int) -> bool:
        return (owner, subaccount) in self.account_ids

    def index_entry(self, account_id: int) -> tuple[int, int]:
        """(key, next larger key or 0) of account ``account_id``'s index entry (MAX_ACCOUNTS:
        the sentinel's, key 0)."""
        keys = self.index_keys
        if account_id == MAX_ACCOUNTS:
            return 0, keys[0] if keys else 0
        key = self.account_keys[account_id]
        pos = bisect_right(keys, key)
        return key, keys[pos] if pos < len(keys) else 0

    def index_predecessor(self, key: int) -> int:
        """The account id whose entry precedes ``key`` in the index (MAX_ACCOUNTS: the sentinel)."""
        pos = bisect_left(self.index_keys, key)
        return self._key_ids[self.index_keys[pos - 1]] if pos else MAX_ACCOUNTS

    # -- open orders -----------------------------------------------------------------
    def open_order(self, o: RestingOrder) -> None:
        self.orders[o.order_id] = o
        acct = self.accounts[o.account]
        acct.open_orders[o.order_id] = o
        if o.client_id:
            acct.client_ids[o.client_id] = o.order_id
        self.books[o.instrument].add(o)
        self.dirty_orders[o.order_id] = o
        if o.expiry:
            heapq.heappush(self.expiries, (o.expiry, o.order_id))

    def expired_orders(self, time_ms: int) -> list[RestingOrder]:
        """Open orders whose good-till-time expiry is <= ``time_ms``, in (expiry, order id)
        order: what CLOSE_ORDER steps are due for (not popped: closing them makes their heap
        entries stale, which ``has_due_expiry`` drops)."""
        out = []
        for expiry, oid in sorted(e for e in self.expiries if e[0] <= time_ms):
            o = self.orders.get(oid)
            if o is not None and o.expiry == expiry:
                out.append(o)
        return out

    def has_due_expiry(self, time_ms: int) -> bool:
        """Whether an open order expires at or before ``time_ms`` (a CLOSE_ORDER is due).
        Pops the stale entries it meets at the top of the heap (derived, not committed), so
        it costs O(1) amortized however many expired GTT orders were filled or cancelled.
        Like every other use of the state, callers hold the node's sequencing thread."""
        heap = self.expiries
        while heap and heap[0][0] <= time_ms:
            expiry, oid = heap[0]
            o = self.orders.get(oid)
            if o is not None and o.expiry == expiry:
                return True
            heapq.heappop(heap)
        return False

    def forget_order(self, o: RestingOrder) -> None:
        """Drop an order that has already left the book (its leaf becomes empty)."""
        del self.orders[o.order_id]
        acct = self.accounts[o.account]
        del acct.open_orders[o.order_id]
        if o.client_id:
            acct.client_ids.pop(o.client_id, None)
        self.dirty_orders[o.order_id] = None

    # -- commitment -----------------------------------------------------------------
    def account_leaf(self, a: Account) -> bytes:
        positions = [(i, p.size, p.quote, p.funding_index) for i, p in sorted(a.positions.items())]
        return encoding.encode_account_leaf(a.id, a.owner, a.subaccount, a.collateral, a.nonce, positions,
                                            margin_mode=a.margin_mode, flags=a.flags)

    @staticmethod
    def order_leaf(o: RestingOrder) -> bytes:
        nxt = o.next
        return encoding.encode_order_leaf(o.order_id, o.account, o.instrument, o.side, o.tif, o.flags, o.stp,
                                          o.price, o.size, o.remaining, o.expiry, o.client_id,
                                          nxt.order_id if nxt is not None else 0)

    @staticmethod
    def market_leaf(m: Market) -> bytes:
        s = m.spec
        return encoding.encode_market_leaf(
            id=s.id, symbol=s.symbol, kind=s.kind, underlying=s.underlying, tick_size=s.tick_size,
            lot_size=s.lot_size, im_ppm=s.im_ppm, mm_ppm=s.mm_ppm, maker_fee_ppm=s.maker_fee_ppm,
            taker_fee_ppm=s.taker_fee_ppm, expiry=s.expiry, strike=s.strike, option_type=s.option_type,
            status=m.status, mark_price=m.mark_price, mark_time=m.mark_time, funding_index=m.funding_index,
            open_interest=m.open_interest, premium_sum=m.premium_sum, premium_samples=m.premium_samples,
            last_funding_time=m.last_funding_time, last_funding_rate_ppm=m.last_funding_rate_ppm,
            settlement_price=m.settlement_price, last_sample_time=m.last_sample_time, risk_array=m.risk_array,
            unpaid_lots=m.unpaid_lots, pay_float=m.pay_float, bid_head=m.bid_head, ask_head=m.ask_head)

    def _market_leaf_cached(self, m: Market) -> bytes:
        """``market_leaf(m)``, with the leaf's constant words (tag and contract terms) encoded
        once per spec: a mark update re-encodes every market it marks, and those 14 words never
        change. Pinned to ``market_leaf`` by tests/property/test_fast_leaves.py."""
        s = m.spec
        cached = self._market_terms.get(s.id)
        if cached is None or cached[0] is not s:
            cached = self._market_terms[s.id] = (s, encoding.market_leaf_terms(
                id=s.id, symbol=s.symbol, kind=s.kind, underlying=s.underlying, tick_size=s.tick_size,
                lot_size=s.lot_size, im_ppm=s.im_ppm, mm_ppm=s.mm_ppm, maker_fee_ppm=s.maker_fee_ppm,
                taker_fee_ppm=s.taker_fee_ppm, expiry=s.expiry, strike=s.strike, option_type=s.option_type))
        return cached[1] + encoding.market_leaf_state(
            m.status, m.mark_price, m.mark_time, m.funding_index, m.open_interest, m.premium_sum, m.premium_samples,
            m.last_funding_time, m.last_funding_rate_ppm, m.settlement_price, m.last_sample_time, m.risk_array,
            m.unpaid_lots, m.pay_float, m.bid_head, m.ask_head)

    @staticmethod
    def underlying_leaf(u: Underlying) -> bytes:
        o = u.oracle
        return encoding.encode_underlying_leaf(
            id=u.config.id, symbol=u.config.symbol, index_price=o.index_price, index_time=o.index_time_ms,
            last_round_ms=o.last_round_ms, pending_price=o.pending_price, pending_count=o.pending_count,
            liquidations_paused=o.liquidations_paused, acc_time=u.acc_time,
            windows=[(e, w[0], w[1], w[2]) for e, w in sorted(u.windows.items())])

    def root(self) -> bytes:
        """The state root; re-hashes only what changed since the last call."""
        keccak = encoding.leaf_hash
        if self.dirty_accounts:
            tree = self.accounts_tree
            for aid in sorted(self.dirty_accounts):
                tree.set(aid, keccak(self.account_leaf(self.accounts[aid])))
            self.dirty_accounts.clear()
        if self.dirty_index:
            tree = self.accounts_tree
            for aid in sorted(self.dirty_index):
                tree.set(ACCOUNT_INDEX_BASE + aid, keccak(encoding.encode_account_index_leaf(*self.index_entry(aid))))
            self.dirty_index.clear()
        if self.dirty_orders:
            tree = self.orders_tree
            for oid in sorted(self.dirty_orders):
                o = self.dirty_orders[oid]
                tree.set(oid, EMPTY_LEAF if o is None else keccak(
                    self.order_leaf(o) if type(o) is RestingOrder else o.leaf()))
            self.dirty_orders.clear()
        if self.dirty_markets:
            tree = self.markets_tree
            for mid in sorted(self.dirty_markets):
                tree.set(mid, keccak(self._market_leaf_cached(self.markets[mid])))
            self.dirty_markets.clear()
        if self.dirty_underlyings:
            tree = self.markets_tree
            for uid in sorted(self.dirty_underlyings):
                tree.set(UNDERLYING_BASE + uid, keccak(self.underlying_leaf(self.underlyings[uid])))
            self.dirty_underlyings.clear()
        return encoding.state_root(
            accounts_root=self.accounts_tree.root(), orders_root=self.orders_tree.root(),
            markets_root=self.markets_tree.root(), l1_queue_pos=self.l1_queue_pos, fee_pool=self.fee_pool,
            insurance_fund=self.insurance_fund, next_order_id=self.next_order_id,
            next_account_id=len(self.accounts), time_ms=self.time_ms, total_deposits=self.total_deposits,
            total_withdrawals=self.total_withdrawals)

    # -- invariants -------------------------------------------------------------------
    def check_invariants(self) -> None:
        """Zero-sum rules of DESIGN.md (rule 6) plus book sanity. Raises InvariantBroken."""
        net = {mid: 0 for mid in self.markets}
        longs = {mid: 0 for mid in self.markets}
        # plus what holders being paid have moved so far (funding, settlement: ``pay_float``)
        cash = self.fee_pool + self.insurance_fund + sum(m.pay_float for m in self.markets.values())
        for a in self.accounts:
            cash += a.collateral
            for inst, p in a.positions.items():
                net[inst] += p.size
                if p.size > 0:
                    longs[inst] += p.size
                cash += p.quote
        for mid, n in net.items():
            m = self.markets[mid]
            if m.unpaid_lots:  # being paid: the holders left to pay hold exactly the unpaid lots
                left = sum(abs(p.size) for p in (self.accounts[a].positions[mid] for a in self.holders[mid])
                           if m.spec.kind == InstrumentKind.OPTION or p.funding_index != m.funding_index)
                if left != m.unpaid_lots:
                    raise InvariantBroken(f"instrument {mid}: {left} lots left to pay, unpaid_lots {m.unpaid_lots}")
                if m.spec.kind == InstrumentKind.OPTION:  # settled positions leave one side at a time
                    continue
            if n:
                raise InvariantBroken(f"sum of positions in instrument {mid} is {n}, not 0")
            if longs[mid] != self.markets[mid].open_interest:
                raise InvariantBroken(f"open interest of {mid} is {self.markets[mid].open_interest}, longs {longs[mid]}")
        if cash != self.total_deposits - self.total_withdrawals:
            raise InvariantBroken(f"cash {cash} != deposits - withdrawals {self.total_deposits - self.total_withdrawals}")
        for mid, book in self.books.items():
            bb, ba = book.best_bid(), book.best_ask()
            if bb is not None and ba is not None and bb >= ba:
                raise InvariantBroken(f"book {mid} crossed: bid {bb} >= ask {ba}")
        if len(self.orders) != sum(len(b) for b in self.books.values()):
            raise InvariantBroken("open order index and books disagree")
        for mid, b in self.books.items():  # the committed links are the priority order
            m = self.markets[mid]
            for side, head_id in ((0, m.bid_head), (1, m.ask_head)):
                ranked = list(b.orders(side))
                linked, o = [], b.head(side)
                while o is not None and len(linked) <= len(ranked):
                    linked.append(o)
                    o = o.next
                if linked != ranked or head_id != (ranked[0].order_id if ranked else 0):
                    raise InvariantBroken(f"book {mid} side {side}: links or head differ from priority order")

    # -- snapshots ----------------------------------------------------------------------
    def to_blob(self) -> bytes:
        """Deterministic serialisation (canonical JSON, ints exact, bytes as hex)."""
        d = {
            "genesis": self.genesis.to_json().decode(),
            "scalars": [self.l1_queue_pos, self.fee_pool, self.insurance_fund, self.next_order_id, self.time_ms,
                        self.total_deposits, self.total_withdrawals],
            "accounts": [[a.owner.hex(), a.subaccount, a.collateral, a.nonce,
                          [[i, p.size, p.quote, p.funding_index] for i, p in a.positions.items()], a.margin_mode,
                          a.flags]
                         for a in self.accounts],
            "markets": [[mid, m.mark_price, m.mark_time, m.funding_index, m.open_interest, m.status, m.risk_array,
                         m.premium_sum, m.premium_samples, m.last_funding_time, m.last_funding_rate_ppm,
                         m.settlement_price, m.last_sample_time, m.unpaid_lots, m.pay_float]
                        for mid, m in self.markets.items()],
            "underlyings": [[uid, u.oracle.index_price, u.oracle.index_time_ms, u.oracle.last_round_ms,
                             u.oracle.pending_price, u.oracle.pending_count, u.acc_time,
                             [[e, *w] for e, w in u.windows.items()]]
                            for uid, u in self.underlyings.items()],
            "extra_markets": [_spec_to_dict(m.spec) for mid, m in self.markets.items()
                              if m.spec not in self.genesis.instruments],
            # orders in book priority order, per instrument, bids then asks
            "orders": [[o.order_id, o.account, o.instrument, o.side, o.price, o.size, o.remaining, o.tif,
                        o.flags, o.stp, o.expiry, o.client_id]
                       for b in self.books.values() for side in (0, 1) for o in b.orders(side)],
        }
        if self.pending is not None:  # only a replay in step mode, between an order's match steps
            d["pending"] = self.pending.to_list()
        return json.dumps(d, separators=(",", ":")).encode()

    @classmethod
    def from_blob(cls, blob: bytes) -> "State":
        d = json.loads(blob)
        s = cls(Genesis.from_json(d["genesis"].encode()))
        for spec in d["extra_markets"]:
            s.add_market(InstrumentSpec(**spec))
        # snapshots from before orders were keyed by id carry an eighth scalar (the next slot)
        (s.l1_queue_pos, s.fee_pool, s.insurance_fund, s.next_order_id, s.time_ms,
         s.total_deposits, s.total_withdrawals) = d["scalars"][:7]
        for owner_hex, sub, coll, nonce, positions, mode, *rest in d["accounts"]:
            a = s.account_for(bytes.fromhex(owner_hex), sub)
            a.collateral, a.nonce, a.margin_mode = coll, nonce, mode
            a.flags = rest[0] if rest else 0  # snapshots taken before account flags existed
            for i, size, quote, fidx in positions:
                a.positions[i] = Position(size, quote, fidx)
                s.holders[i].add(a.id)
        for (mid, mark, mtime, fidx, oi, status, arr, psum, pcount, ftime, frate, sprice, stime, *paying) in d["markets"]:
            m = s.markets[mid]
            if paying:  # snapshots taken before funding was paid holder by holder have none
                m.unpaid_lots, m.pay_float = paying
                if m.unpaid_lots:
                    s.paying.add(mid)
            m.mark_price, m.mark_time, m.funding_index, m.open_interest, m.status = mark, mtime, fidx, oi, status
            m.risk_array, m.premium_sum, m.premium_samples = arr, psum, pcount
            m.last_funding_time, m.last_funding_rate_ppm, m.settlement_price = ftime, frate, sprice
            m.last_sample_time = stime
            s.dirty_markets.add(mid)
        for uid, price, itime, last_round, pprice, pcount, acc_time, windows in d["underlyings"]:
            u = s.underlyings[uid]
            u.oracle = OracleState(uid, price, itime, last_round, pprice, pcount)
            u.acc_time = acc_time
            u.windows = {e: [acc, dt, *rest] for e, acc, dt, *rest in windows}
            for e, w in u.windows.items():
                if len(w) == 2:  # snapshots from before the count of the expiry's open options
                    w.append(sum(1 for m in s.markets.values() if m.spec.kind == InstrumentKind.OPTION
                                 and m.spec.underlying == u.config.symbol and m.spec.expiry == e
                                 and m.status == MarketStatus.ACTIVE))
        by_id = []
        for (oid, acct, inst, side, price, size, rem, tif, flags, stp, exp, cid, *_) in d["orders"]:  # *_: an old slot
            o = RestingOrder(oid, acct, s.accounts[acct].owner, inst, side, price, size, rem, tif, flags, stp,
                             exp, cid)
            s.books[inst].add(o)  # book priority order preserved
            s.orders[oid] = o
            s.dirty_orders[oid] = o
            by_id.append(o)
        for o in sorted(by_id, key=lambda o: o.order_id):
            a = s.accounts[o.account]
            a.open_orders[o.order_id] = o
            if o.client_id:
                a.client_ids[o.client_id] = o.order_id
        s.expiries = sorted((o.expiry, o.order_id) for o in by_id if o.expiry)  # sorted list is a heap
        if "pending" in d:
            from clearline.core.order_steps import PendingTaker, open_pending

            open_pending(s, PendingTaker.from_list(s, d["pending"]))
        return s
