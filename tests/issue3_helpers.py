"""Fixture for the issue-3 core tests: underlyings with an oracle, option listing, risk
parameters with short intervals, and builders for operator transactions.

Everything the default genesis fixes (see ``issue3_genesis``), in the units of
``clearline.core.units``:

- perpetuals: the default BTC-PERP (id 0) and ETH-PERP (id 1), both ``tick_value == 10``
  usd6, marked at 100_000 ticks, so one lot is 1_000_000 usd6 of notional (IM 5 %, MM 3 %,
  maker 100 ppm, taker 500 ppm);
- underlyings: BTC (id 0) and ETH (id 1). The index is usd6 per whole unit: BTC 10_000 USD is
  ``10_000_000_000`` = 100_000 BTC ticks of 100_000 usd6; ETH 1_000 USD = 100_000 ETH ticks of
  10_000 usd6. So "index in ticks == perp mark" keeps hand-computed numbers short;
- oracle: 3 reporters (``REPORTER_KEYS[:3]``), quorum 2, staleness 5 s, deviation guard 10 %,
  2 confirmations (override with ``oracle=``);
- options: BTC and ETH templates with the perpetuals' tick and lot sizes (``tick_value == 10``:
  one option lot is 1e-4 BTC / 1e-3 ETH), scan 15 %, maintenance 7.5 %, maker 200 / taker
  500 ppm, strike steps 500 USD / 50 USD;
- listing: compressed mode, period 600 s, two expiries, 2 strikes each side of the money
  (5 strikes x call/put = 10 options per expiry), lead 60 s;
- risk parameters (``TEST_PARAMS``): funding interval 60 s sampled every 20 s, settlement
  window 60 s, impact notional 5 USD; others as ``RiskParams`` defaults.

``Ex3`` extends ``helpers.Exchange``: it logs every transaction it applies (``ex.log``) so a
test can replay the exact list, and builds operator transactions (signer set to the state's
operator unless ``sign=True``, which really signs with ``OPERATOR_KEY``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_TESTS = Path(__file__).resolve().parent
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import (CHAIN_ID, CONTRACT, MARK, OPERATOR, OPERATOR_KEY, START_MS, E, Exchange,  # noqa: E402
                     key_of, owner_of)

from clearline.core import eip712  # noqa: E402
from clearline.core.apply import Receipt, apply  # noqa: E402
from clearline.core.eip712 import address_of  # noqa: E402
from clearline.core.errors import Rejected  # noqa: E402
from clearline.core.instruments import InstrumentKind, default_perpetuals  # noqa: E402
from clearline.core.listing import ListingRule, OptionTemplate  # noqa: E402
from clearline.core.state import Genesis, State  # noqa: E402
from clearline.core.txs import (MAX_MARK_INSTRUMENTS, Deposit, MarkUpdate, OperatorAction, OperatorActionKind,  # noqa: E402
                                 SetMarginMode)
from clearline.core.underlying import RiskParams, UnderlyingConfig  # noqa: E402
from clearline.oracle.aggregate import OracleConfig  # noqa: E402
from clearline.oracle.feed import reporter_key  # noqa: E402
from clearline.oracle.report import PriceReport, signed  # noqa: E402
from clearline.risk import option_mark_ticks, risk_array, year_fraction  # noqa: E402

USD = 1_000_000
BTC_U, ETH_U = 0, 1  # underlying ids (= PriceReport.asset)
BTC_PERP, ETH_PERP = 0, 1  # instrument ids
BTC_INDEX = 10_000 * USD  # usd6 per BTC: 100_000 ticks of 100_000 usd6
ETH_INDEX = 1_000 * USD  # usd6 per ETH: 100_000 ticks of 10_000 usd6
TICK = {BTC_U: 100_000, ETH_U: 10_000}  # usd6 per tick, per underlying (perps and options)

REPORTER_KEYS = tuple(reporter_key(3, i) for i in range(4))
REPORTERS = tuple(address_of(k) for k in REPORTER_KEYS)
OUTSIDER_KEY = reporter_key(3, 99)  # a well-formed key that is not a configured reporter

FUNDING_INTERVAL = 60_000
FUNDING_SAMPLE = 20_000
WINDOW = 60_000
PERIOD = 600_000

TEST_PARAMS = RiskParams(funding_interval_ms=FUNDING_INTERVAL, funding_sample_ms=FUNDING_SAMPLE,
                         interest_ppm=12, premium_clamp_ppm=50, funding_cap_ppm=1_000,
                         impact_notional_usd6=5 * USD, liquidation_fee_ppm=5_000,
                         liquidation_step_ppm=250_000, liquidation_max_steps=32,
                         settlement_window_ms=WINDOW, settlement_fee_ppm=150)

BTC_OPTIONS = OptionTemplate("BTC", tick_size=100_000, lot_size=10_000, im_ppm=150_000, mm_ppm=75_000,
                             maker_fee_ppm=200, taker_fee_ppm=500, strike_step_usd6=500 * USD)
ETH_OPTIONS = OptionTemplate("ETH", tick_size=10_000, lot_size=100_000, im_ppm=150_000, mm_ppm=75_000,
                             maker_fee_ppm=200, taker_fee_ppm=500, strike_step_usd6=50 * USD)
RULE = ListingRule(daily=2, weekly=0, monthly=0, min_lead_ms=60_000, strikes_each_side=2,
                   compressed_period_ms=PERIOD)

FUND = 10_000_000_000  # a generous deposit (10k USD)


def oracle_config(*, quorum: int = 2, staleness_ms: int = 5_000, max_deviation_ppm: int = 100_000,
                  confirmations: int = 2, reporters: int = 3) -> OracleConfig:
    return OracleConfig(REPORTERS[:reporters], quorum, staleness_ms, max_deviation_ppm, confirmations)


def issue3_genesis(*, params: RiskParams = TEST_PARAMS, rule: ListingRule | None = RULE,
                   oracle: OracleConfig | None = None, marks: tuple[int, ...] = (MARK, MARK),
                   templates: bool = True) -> Genesis:
    oracle = oracle or oracle_config()
    unders = (UnderlyingConfig(BTC_U, "BTC", oracle, BTC_OPTIONS if templates else None),
              UnderlyingConfig(ETH_U, "ETH", oracle, ETH_OPTIONS if templates else None))
    return Genesis(CHAIN_ID, CONTRACT, OPERATOR, tuple(default_perpetuals()), tuple(marks), unders, params, rule)


def cash_total(st: State) -> int:
    """Sigma collateral + Sigma position quote + insurance fund + fee pool + what holders being
    paid (funding, an option's settlement) have moved so far (Sigma pay_float)."""
    return (st.fee_pool + st.insurance_fund + sum(m.pay_float for m in st.markets.values())
            + sum(a.collateral + sum(p.quote for p in a.positions.values()) for a in st.accounts))


def assert_conserved(st: State) -> None:
    assert cash_total(st) == st.total_deposits - st.total_withdrawals
    st.check_invariants()


def replay_roots(genesis: Genesis, txs, state: State | None = None) -> list[bytes]:
    """Apply ``txs`` (with ``signer`` already set) to a fresh State (or ``state``) and
    return the root after every tx. Rejected txs are applied too (and must reject again)."""
    st = state if state is not None else State(genesis)
    roots = []
    for tx in txs:
        apply(st, tx)
        roots.append(st.root())
    return roots


class Ex3(Exchange):
    """``Exchange`` over the issue-3 genesis, logging every transaction it applies."""

    def __init__(self, genesis: Genesis | None = None, **kw):
        super().__init__(genesis=genesis or issue3_genesis(**kw))
        self.log: list = []
        self.receipts: list[Receipt] = []
        self.roots: list[bytes] = []  # root after every logged tx, when ``track_roots`` is set
        self.track_roots = False
        self.rounds = [0] * len(REPORTER_KEYS)

    # -- plumbing -------------------------------------------------------------------------
    def _apply(self, tx) -> Receipt:
        r = apply(self.state, tx)
        self.log.append(tx)
        self.receipts.append(r)
        if self.track_roots:
            self.roots.append(self.state.root())
        return r

    def submit(self, tx, key, *, sign_domain=None, signed=True) -> Receipt:
        if signed and key is not None:
            try:
                tx.signature = eip712.sign(sign_domain or self.state.domain, tx, key)
                tx.signer = eip712.recover_signer(self.state.domain, tx)
            except Rejected:  # a field out of range cannot be signed (as in helpers.Exchange)
                tx.signature = b""
                tx.signer = address_of(key)
        else:
            tx.signer = None
        return self._apply(tx)

    def operator_submit(self, tx, *, sign: bool = False) -> Receipt:
        if sign:
            tx.signature = eip712.sign(self.state.domain, tx, OPERATOR_KEY)
            tx.signer = eip712.recover_signer(self.state.domain, tx)
        else:
            tx.signer = self.state.operator
        return self._apply(tx)

    # -- L1 ------------------------------------------------------------------------------
    def deposit(self, user: int, amount: int, subaccount: int = 0, *, queue_index: int | None = None,
                time: int | None = None) -> Receipt:
        owner = owner_of(user)
        qi = self.state.l1_queue_pos if queue_index is None else queue_index
        r = self._apply(Deposit(self.next_time(time), qi, owner, subaccount, amount))
        if r.ok:
            self.keys[self.state.account_ids[(owner, subaccount)]] = key_of(user)
        return r

    def insurance_deposit(self, amount: int, *, time: int | None = None) -> Receipt:
        return self._apply(Deposit(self.next_time(time), self.state.l1_queue_pos, bytes(20), 0, amount))

    # -- oracle ----------------------------------------------------------------------------
    def report(self, asset: int, price: int, reporter: int = 0, *, ts: int, key: bytes | None = None,
               round: int | None = None) -> PriceReport:
        if round is None:
            self.rounds[reporter] += 1
            round = self.rounds[reporter]
        return signed(self.state.domain, PriceReport(asset, price, ts, round),
                      key if key is not None else REPORTER_KEYS[reporter])

    def reports(self, asset: int, prices, *, ts: int, reporters=None) -> list[PriceReport]:
        """One signed report per price, by reporters 0, 1, 2, ... (or ``reporters``)."""
        if isinstance(prices, int):
            prices = [prices] * 3
        reporters = range(len(prices)) if reporters is None else reporters
        return [self.report(asset, p, i, ts=ts) for p, i in zip(prices, reporters)]

    # -- operator ----------------------------------------------------------------------------
    def arrays_for(self, marks: dict[int, int], t: int, index: dict[int, int] | None = None,
                   vol: float = 0.8) -> list[list[int]]:
        """Risk arrays (``clearline.risk.risk_array``) for the instruments of ``marks`` in
        ascending id order: perps at their new mark, options at the forward = index (the new
        one from ``index`` if given, else the state's) with flat ``vol``."""
        out = []
        for inst in sorted(marks):
            spec = self.state.markets[inst].spec
            if spec.kind == InstrumentKind.PERPETUAL:
                out.append(risk_array(spec, marks[inst]))
            else:
                out.append(risk_array(spec, self.forward_ticks(spec, index), vol, year_fraction(t, spec.expiry)))
        return out

    def forward_ticks(self, spec, index: dict[int, int] | None = None):
        from fractions import Fraction

        u = self.state.underlying_by_symbol[spec.underlying]
        price = (index or {}).get(u.config.id, u.oracle.index_price)
        return Fraction(price, spec.tick_size)

    def option_mark(self, inst: int, t: int, index: dict[int, int] | None = None, vol: float = 0.8) -> int:
        spec = self.state.markets[inst].spec
        return option_mark_ticks(spec, self.forward_ticks(spec, index), vol, year_fraction(t, spec.expiry), 0.0)

    def mark_update(self, marks: dict[int, int] | None = None, *, index: dict | None = None, arrays=None,
                    reports: list | None = None, timestamp: int | None = None, time: int | None = None,
                    sign: bool = False) -> Receipt:
        """Operator MarkUpdate. ``index``: {asset: price or [prices]} -> reports signed by
        reporters 0.. at the tx time. ``arrays``: None (no risk arrays), "auto"
        (``arrays_for``) or {instrument: array}. ``reports`` are appended as given."""
        t = self.next_time(time)
        marks = marks or {}
        insts = sorted(marks)
        reps = []
        for asset, prices in sorted((index or {}).items()):
            reps += self.reports(asset, prices, ts=t)
        reps += list(reports or [])
        if arrays == "auto":
            new_index = {a: (p if isinstance(p, int) else sorted(p)[(len(p) - 1) // 2])
                         for a, p in (index or {}).items()}
            arr = self.arrays_for(marks, t, new_index)
        elif arrays is None:
            arr = []
        else:
            arr = [list(arrays[i]) for i in insts]
        ts = t if timestamp is None else timestamp
        if len(insts) <= MAX_MARK_INSTRUMENTS:
            return self.operator_submit(MarkUpdate(t, ts, insts, [marks[i] for i in insts], arr, reps), sign=sign)
        # more than the core's bound: several MarkUpdates at the same time, the reports in the
        # first (as the simulated operator does); one receipt with all their events
        events = []
        for k in range(0, len(insts), MAX_MARK_INSTRUMENTS):
            part = slice(k, k + MAX_MARK_INSTRUMENTS)
            r = self.operator_submit(MarkUpdate(t, ts, insts[part], [marks[i] for i in insts[part]], arr[part],
                                                reps if k == 0 else []), sign=sign)
            if not r.ok:
                return r
            events += r.events
        return Receipt(True, events=events)

    def op(self, action: int, target: int = 0, arg: int = 0, *, time: int | None = None,
           timestamp: int | None = None, sign: bool = False) -> Receipt:
        t = self.next_time(time)
        tx = OperatorAction(t, int(action), target, arg, t if timestamp is None else timestamp)
        return self.operator_submit(tx, sign=sign)

    def funding_tick(self, *, time: int | None = None, **kw) -> Receipt:
        """What the node sends for funding at one time: FUNDING_TICK (if something is due),
        then FUNDING_SETTLE of each perpetual whose interval ended and every FUNDING_PAY of
        it, as one receipt with all their events; the tick's rejection if nothing was due."""
        from clearline.core.operator import funding_payments_due, funding_settlements_due

        t = self.next_time(time)
        first = self.op(OperatorActionKind.FUNDING_TICK, time=t, **kw)
        events = list(first.events) if first.ok else []
        steps = [(OperatorActionKind.FUNDING_SETTLE, mid, 0) for mid in funding_settlements_due(self.state, t)]
        done = first.ok
        for action, target, arg in steps:
            r = self.op(action, target, arg, time=t, **kw)
            if not r.ok:
                return r
            done = True
            events += r.events
            for mid, aid in funding_payments_due(self.state):
                p = self.op(OperatorActionKind.FUNDING_PAY, mid, aid, time=t, **kw)
                if not p.ok:
                    return p
                events += p.events
        return Receipt(True, events=events) if done else first

    def liquidate(self, account: int, **kw) -> Receipt:
        return self.op(OperatorActionKind.LIQUIDATE, account, **kw)

    def settle_expiry(self, underlying: int, expiry: int, *, time: int | None = None, **kw) -> Receipt:
        """What the node sends to settle an expiry at one time: for each active option of
        (underlying, expiry), by id, SETTLE_OPTION, a SETTLE_POSITION per holder and a
        CLOSE_ORDER per resting order (``clearline.core.operator.settlement_steps``), as one
        receipt with all their events; the first rejection if one is rejected. NOT_DUE when the
        expiry has no active option (the core has no action naming a whole expiry)."""
        from clearline.core.operator import settlement_steps

        t = self.next_time(time)
        u = self.state.underlyings.get(underlying)
        ids = {m.spec.id for m in self.state.markets.values()
               if u is not None and m.spec.kind == InstrumentKind.OPTION and m.spec.underlying == u.config.symbol
               and m.spec.expiry == expiry and m.status == 0}
        if not ids:
            return Receipt(False, E.NOT_DUE, f"no active option of underlying {underlying} expiring at {expiry}")
        if t < expiry:  # the core's own refusal, from the first option's step
            return self.op(OperatorActionKind.SETTLE_OPTION, min(ids), time=t, **kw)

        def market_of(action, target):
            if action == OperatorActionKind.CLOSE_ORDER:
                return self.state.orders[target].instrument
            return target

        steps = [s for s in settlement_steps(self.state, t) if market_of(s[0], s[1]) in ids]
        events = []
        for action, target, arg in steps:
            r = self.op(action, target, arg, time=t, **kw)
            if not r.ok:
                return r
            events += r.events
        return Receipt(True, events=events)

    def list_options(self, underlying: int = BTC_U, **kw) -> Receipt:
        return self.op(OperatorActionKind.LIST_OPTIONS, underlying, **kw)

    # -- user ------------------------------------------------------------------------------
    def set_margin_mode(self, account: int, mode: int, *, nonce: int | None = None, time: int | None = None,
                        key: bytes | None = None) -> Receipt:
        tx = SetMarginMode(self.next_time(time), account, int(mode), self._nonce(account, nonce))
        return self.submit(tx, self._key(account, key))

    # -- views ----------------------------------------------------------------------------------
    def options(self, underlying: str = "BTC", expiry: int | None = None) -> list:
        """Option specs of an underlying (optionally one expiry), by id."""
        return [m.spec for _, m in sorted(self.state.markets.items())
                if m.spec.kind == InstrumentKind.OPTION and m.spec.underlying == underlying
                and (expiry is None or m.spec.expiry == expiry)]

    def option_id(self, strike_usd: int, option_type: int, expiry: int, underlying: str = "BTC") -> int:
        for s in self.options(underlying, expiry):
            if s.strike * s.tick_size == strike_usd * USD and s.option_type == option_type:
                return s.id
        raise KeyError((strike_usd, option_type, expiry))

    def equity(self, account: int) -> int:
        return self.health(account)[0]

    def index(self, underlying: int = BTC_U) -> int:
        return self.state.underlyings[underlying].oracle.index_price

    def cash(self) -> int:
        return cash_total(self.state)

    def conserved(self) -> None:
        assert_conserved(self.state)


__all__ = ["USD", "BTC_U", "ETH_U", "BTC_PERP", "ETH_PERP", "BTC_INDEX", "ETH_INDEX", "TICK", "REPORTER_KEYS",
           "REPORTERS", "OUTSIDER_KEY", "FUNDING_INTERVAL", "FUNDING_SAMPLE", "WINDOW", "PERIOD", "TEST_PARAMS",
           "BTC_OPTIONS", "ETH_OPTIONS", "RULE", "FUND", "oracle_config", "issue3_genesis", "cash_total",
           "assert_conserved", "replay_roots", "Ex3", "START_MS", "MARK"]
