"""A simulated market for the demo, tests and benchmarks (not part of the core).

Participants: perpetual market makers quoting around the index, takers crossing the spread,
over-leveraged traders who run out of margin, an option market maker quoting the listed
chain around its marks, option takers, and a covered-call writer on portfolio margin. An
operator publishes signed oracle reports, marks (options from an SVI surface), risk arrays,
lists and settles options, ticks funding and liquidates accounts below maintenance.

Everything sent is a real signed input that goes through the sequencer. Randomness and
floats live here, outside the core; the RNGs are seeded, so a run is reproducible for a
given seed and step schedule. Time is compressed by the demo genesis: options list every
minute, funding settles every 20 s, and option prices treat a minute as a day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..core import eip712
from ..core.encoding import encode_tx
from ..core.hashing import keccak
from ..core.instruments import InstrumentKind, MarketStatus, default_perpetuals
from ..core.ledger import CollateralMoved
from ..core.listing import ListingRule, OptionTemplate
from ..core.margin import health
from ..core.operator import funding_payments_due, funding_sample_due, funding_settlements_due, settlement_steps
from ..core.state import Genesis
from ..core.txs import (MAX_MARK_INSTRUMENTS, Cancel, CancelScope, Deposit, MarginMode, MarkUpdate, OperatorAction,
                        OperatorActionKind, Order, OrderFlag, OrderType, SetMarginMode, Side, TimeInForce)
from ..core.underlying import RiskParams, UnderlyingConfig
from ..core.units import USD6
from ..oracle.aggregate import OracleConfig
from ..oracle.feed import SimulatedFeed, SimulatedReporters

DEMO_CHAIN_ID = 31337
DEMO_ROLLUP = bytes.fromhex("c1ea71ae00000000000000000000000000000001")
START_PRICES_USD = {"BTC": 100_000, "ETH": 3_000}
ASSET_IDS = {"BTC": 0, "ETH": 1}
PRICING_TIME_SCALE = 1_440  # option pricing treats one demo minute as one day
N_REPORTERS = 3


def demo_key(seed: int, label: str) -> bytes:
    """Deterministic demo private key (never use for real funds)."""
    return keccak(f"clearline-demo/{seed}/{label}".encode())


def demo_domain() -> eip712.Domain:
    return eip712.Domain(DEMO_CHAIN_ID, DEMO_ROLLUP)


def demo_surface(atm_vol: float):
    """An SVI surface with a put skew: slices at 1, 7 and 30 days whose at-the-money total
    variance is ``atm_vol^2 * t`` (raw SVI with m = 0, rho = -0.3, sigma = 0.1)."""
    from ..risk import SviSlice, VolSurface

    slices = []
    for days in (1, 7, 30):
        t = days / 365
        w_atm = atm_vol * atm_vol * t
        b = 0.4 * w_atm
        slices.append(SviSlice(a=w_atm - b * 0.1, b=b, rho=-0.3, m=0.0, sigma=0.1, t_years=t))
    return VolSurface(slices)


def demo_genesis(seed: int = 1) -> Genesis:
    specs = tuple(default_perpetuals())
    marks = tuple(START_PRICES_USD[s.underlying] * USD6 // s.tick_size for s in specs)
    reporters = SimulatedReporters(demo_domain(), N_REPORTERS, seed=seed).addresses
    oracle = OracleConfig(reporters, quorum=2, staleness_ms=5_000, max_deviation_ppm=100_000, confirmations=2)
    templates = {
        "BTC": OptionTemplate("BTC", tick_size=1_000_000, lot_size=1_000_000, im_ppm=150_000, mm_ppm=75_000,
                              maker_fee_ppm=100, taker_fee_ppm=300, strike_step_usd6=2_000 * USD6),
        "ETH": OptionTemplate("ETH", tick_size=100_000, lot_size=10_000_000, im_ppm=150_000, mm_ppm=75_000,
                              maker_fee_ppm=100, taker_fee_ppm=300, strike_step_usd6=100 * USD6),
    }
    underlyings = tuple(UnderlyingConfig(ASSET_IDS[sym], sym, oracle, templates[sym]) for sym in ("BTC", "ETH"))
    params = RiskParams(funding_interval_ms=20_000, funding_sample_ms=2_000, settlement_window_ms=15_000)
    listing = ListingRule(daily=2, weekly=0, monthly=0, min_lead_ms=10_000, strikes_each_side=3,
                          compressed_period_ms=60_000)
    return Genesis(DEMO_CHAIN_ID, DEMO_ROLLUP, eip712.address_of(demo_key(seed, "operator")), specs, marks,
                   underlyings, params, listing)


@dataclass
class Trader:
    name: str
    role: str  # maker | taker | leveraged | option_maker | option_taker | covered_call
    key: bytes
    address: bytes
    deposit: int  # usd6
    account: int = -1
    nonce: int = 0
    params: dict = field(default_factory=dict)

    def next_nonce(self) -> int:
        self.nonce += 1
        return self.nonce


class SimulatedMarket:
    def __init__(self, genesis: Genesis, seed: int = 1, makers: int = 4, takers: int = 6, leveraged: int = 3,
                 operator_key: bytes | None = None, shock_every_ms: int = 45_000):
        self.genesis = genesis
        self.domain = eip712.Domain(genesis.chain_id, genesis.verifying_contract)
        self.rng = random.Random(seed)
        self.operator_key = operator_key or demo_key(seed, "operator")
        self.operator = eip712.address_of(self.operator_key)
        self.perps = list(genesis.instruments)
        self.feed = SimulatedFeed({ASSET_IDS[u]: p * USD6 for u, p in START_PRICES_USD.items()}, seed=seed,
                                  step_ms=50, time_scale=PRICING_TIME_SCALE // 8, vol=(0.6, 1.2),
                                  jump_prob=(0.0, 0.0))
        self.reporters = SimulatedReporters(self.domain, N_REPORTERS, seed=seed, noise_ppm=100)
        self.shock_every_ms = shock_every_ms
        self.next_shock_ms = 0
        self.shock_sign = -1
        self.surfaces = {"BTC": demo_surface(0.55), "ETH": demo_surface(0.70)}
        self.traders: list[Trader] = []
        for i in range(makers):
            self._add(f"mm{i}", "maker", seed, 2_000_000 * USD6, spread_bps=2 + i, levels=3, step_bps=2 + i)
        for i in range(takers):
            self._add(f"taker{i}", "taker", seed, 200_000 * USD6, rate=0.5)
        for i in range(leveraged):
            self._add(f"degen{i}", "leveraged", seed, 5_000 * USD6, leverage=18, direction=1 if i % 2 == 0 else -1)
        self._add("optmm", "option_maker", seed, 5_000_000 * USD6)
        self._add("opttaker", "option_taker", seed, 300_000 * USD6)
        self._add("writer", "covered_call", seed, 400_000 * USD6)
        self.queue_pos = 0
        self.steps = 0
        self.last_mark_ms = 0
        self.last_option_quote_ms = 0

    def _add(self, name, role, seed, deposit, **params):
        key = demo_key(seed, name)
        self.traders.append(Trader(name, role, key, eip712.address_of(key), deposit, params=params))

    # -- prices -----------------------------------------------------------------------
    def index_usd6(self, underlying: str) -> int:
        return self.feed.price(ASSET_IDS[underlying])

    @property
    def price(self) -> dict[int, float]:
        """USD price per perpetual instrument id (for display and order placement)."""
        return {s.id: self.index_usd6(s.underlying) / USD6 for s in self.perps}

    def ticks(self, spec, price_usd: float) -> int:
        return max(1, int(round(price_usd * USD6 / spec.tick_size)))

    def lots(self, spec, usd: float) -> int:
        return max(1, int(usd / (self.index_usd6(spec.underlying) / USD6 * spec.lot_size / 1e8)))

    def move_prices(self, now_ms: int) -> None:
        self.feed.step()
        if self.shock_every_ms and now_ms >= self.next_shock_ms:
            if self.next_shock_ms:  # alternate 4% drops and rises so leveraged traders get hit both ways
                for asset in self.feed.assets:
                    self.feed.shock(asset, self.shock_sign * 40_000)
                self.shock_sign = -self.shock_sign
            self.next_shock_ms = now_ms + self.shock_every_ms

    # -- L1 side ----------------------------------------------------------------------
    def initial_deposits(self, now_ms: int) -> list[Deposit]:
        out = [Deposit(now_ms, self.queue_pos, bytes(20), 0, 1_000_000 * USD6)]  # seeds the insurance fund
        self.queue_pos += 1
        for t in self.traders:
            out.append(Deposit(now_ms, self.queue_pos, t.address, 0, t.deposit))
            self.queue_pos += 1
        return out

    def observe(self, txs: list, acks: list) -> None:
        """Learn account ids from deposit receipts."""
        by_addr = {t.address: t for t in self.traders}
        for tx, ack in zip(txs, acks):
            if isinstance(tx, Deposit) and ack.receipt.ok and tx.owner in by_addr:
                for ev in ack.receipt.events:
                    if isinstance(ev, CollateralMoved):
                        by_addr[tx.owner].account = ev.to_account

    # -- operator ---------------------------------------------------------------------
    def _op_sign(self, tx):
        tx.signature = eip712.sign(self.domain, tx, self.operator_key)
        tx.signer = self.operator
        return tx

    def mark_update(self, now_ms: int, state=None) -> MarkUpdate | None:
        """The first of ``mark_updates`` (all of them while at most MAX_MARK_INSTRUMENTS
        instruments are active), or None when marks were already sent at ``now_ms``."""
        marks = self.mark_updates(now_ms, state)
        return marks[0] if marks else None

    def mark_updates(self, now_ms: int, state=None) -> list[MarkUpdate]:
        """Signed oracle reports, perp marks at the index, option marks from the surface,
        and risk arrays for every active instrument: one MarkUpdate per MAX_MARK_INSTRUMENTS
        instruments (the core's bound), the reports in the first."""
        if now_ms <= self.last_mark_ms:
            return []
        self.last_mark_ms = now_ms
        from ..risk import option_mark_ticks, risk_array, year_fraction

        prices = {a: self.feed.price(a) for a in self.feed.assets}
        reports = self.reporters.reports(prices, now_ms)
        instruments, marks, arrays = [], [], []
        specs = [m.spec for m in state.markets.values() if m.status == MarketStatus.ACTIVE] if state else self.perps
        for spec in specs:
            index = self.index_usd6(spec.underlying)
            fwd = max(1, index // spec.tick_size)
            if spec.kind == InstrumentKind.PERPETUAL:
                mark = fwd
                arr = risk_array(spec, fwd)
            else:
                t = year_fraction(now_ms, spec.expiry) * PRICING_TIME_SCALE
                if t <= 0:
                    continue  # expired: settled by the operator, not marked
                surface = self.surfaces[spec.underlying]
                mark = option_mark_ticks(spec, fwd, surface, t, 0.0)
                arr = risk_array(spec, fwd, surface, t, 0.0)
            instruments.append(spec.id)
            marks.append(mark)
            arrays.append(arr)
        out = []
        for i in range(0, max(1, len(instruments)), MAX_MARK_INSTRUMENTS):
            part = slice(i, i + MAX_MARK_INSTRUMENTS)
            out.append(self._op_sign(MarkUpdate(now_ms, now_ms, instruments[part], marks[part], arrays[part],
                                                reports if i == 0 else [])))
        return out

    def operator_txs(self, state, now_ms: int) -> list:
        """Housekeeping that is due now: listings, funding, expiries, liquidations."""
        # a funding payout left unfinished (the node stopped between its steps) goes first:
        # nothing else is accepted until it is done (an option's: settlement_steps, below)
        out = [OperatorAction(now_ms, OperatorActionKind.FUNDING_PAY, mid, aid, now_ms)
               for mid, aid in funding_payments_due(state)]
        # expired options: each settled, its holders paid and its orders closed, in one run; and
        # every good-till-time order past its expiry closed (a CLOSE_ORDER each)
        out.extend(OperatorAction(now_ms, action, target, arg, now_ms)
                   for action, target, arg in settlement_steps(state, now_ms))
        for uid, u in state.underlyings.items():
            if u.config.option_template is not None and u.oracle.index_price and state.listing is not None:
                from ..core.listing import listings_due

                due = listings_due(state.listing, u.config.option_template, now_ms, u.oracle.index_price,
                                   (m.spec for m in state.markets.values()), state.next_instrument_id())
                if due:
                    out.append(OperatorAction(now_ms, OperatorActionKind.LIST_OPTIONS, uid, 0, now_ms))
        p = state.params
        for m in state.markets.values():
            if m.spec.kind == InstrumentKind.PERPETUAL and m.status == MarketStatus.ACTIVE:
                start = m.last_funding_time
                if start == 0 or funding_sample_due(m, now_ms, p):
                    out.append(OperatorAction(now_ms, OperatorActionKind.FUNDING_TICK, 0, 0, now_ms))
                    break
        for acct in state.accounts:
            if acct.positions:
                equity, _, mm = health(state, acct)
                if equity < mm:
                    out.append(OperatorAction(now_ms, OperatorActionKind.LIQUIDATE, acct.id, 0, now_ms))
        # last: a settlement leaves its payments due, and nothing else is accepted until they
        # are made (``funding_payments``, committed right after these)
        out.extend(OperatorAction(now_ms, OperatorActionKind.FUNDING_SETTLE, mid, 0, now_ms)
                   for mid in funding_settlements_due(state, now_ms))
        return [self._op_sign(tx) for tx in out]

    def funding_payments(self, state, now_ms: int) -> list:
        """The FUNDING_PAYs due after the settlements ``operator_txs`` sent (none otherwise)."""
        return [self._op_sign(OperatorAction(now_ms, OperatorActionKind.FUNDING_PAY, mid, aid, now_ms))
                for mid, aid in funding_payments_due(state)]

    # -- participants -------------------------------------------------------------------
    def step(self, now_ms: int, state=None) -> list[bytes]:
        """One tick of the market: returns signed, encoded user inputs."""
        self.move_prices(now_ms)
        out: list[bytes] = []
        quote_options = state is not None and now_ms - self.last_option_quote_ms >= 2_000
        if quote_options:
            self.last_option_quote_ms = now_ms
        self.steps += 1
        requote = self.steps % 4 == 1  # perp makers requote every 4th tick (keeps L1 data in bounds)
        for t in self.traders:
            if t.account < 0:
                continue
            if t.role == "maker":
                if requote:
                    out.extend(self._quote(t, now_ms))
            elif t.role == "taker" and self.rng.random() < t.params["rate"]:
                out.append(self._take(t, now_ms))
            elif t.role == "leveraged" and self.rng.random() < 0.2:
                out.append(self._lever_up(t, now_ms))
            elif t.role == "option_maker" and quote_options:
                out.extend(self._quote_options(t, state, now_ms))
            elif t.role == "option_taker" and state is not None and self.rng.random() < 0.1:
                out.extend(self._take_option(t, state, now_ms))
            elif t.role == "covered_call" and state is not None:
                out.extend(self._write_calls(t, state, now_ms))
        return out

    def _sign(self, t: Trader, tx) -> bytes:
        tx.signature = eip712.sign(self.domain, tx, t.key)
        return encode_tx(tx)

    def _quote(self, t: Trader, now_ms: int) -> list[bytes]:
        out = []
        p = t.params
        for s in self.perps:
            out.append(self._sign(t, Cancel(now_ms, t.account, CancelScope.ALL_IN_INSTRUMENT, s.id, 0, 0,
                                            t.next_nonce())))
            mid = self.index_usd6(s.underlying) / USD6
            for lvl in range(p["levels"]):
                off = (p["spread_bps"] + lvl * p["step_bps"]) / 1e4
                size = self.lots(s, self.rng.uniform(5_000, 40_000))
                for side, px in ((Side.BUY, mid * (1 - off)), (Side.SELL, mid * (1 + off))):
                    out.append(self._sign(t, Order(now_ms, t.account, s.id, side, OrderType.LIMIT, TimeInForce.GTT,
                                                   OrderFlag.POST_ONLY, 0, self.ticks(s, px), size,
                                                   now_ms + 60_000, 0, t.next_nonce())))
        return out

    def _take(self, t: Trader, now_ms: int) -> bytes:
        s = self.rng.choice(self.perps)
        side = self.rng.choice((Side.BUY, Side.SELL))
        bound = self.index_usd6(s.underlying) / USD6 * (1.01 if side == Side.BUY else 0.99)
        size = self.lots(s, self.rng.uniform(1_000, 60_000))
        kind, tif = (OrderType.LIMIT, TimeInForce.IOC) if self.rng.random() < 0.2 else (OrderType.MARKET,
                                                                                        TimeInForce.IOC)
        return self._sign(t, Order(now_ms, t.account, s.id, side, kind, tif, 0, 0, self.ticks(s, bound), size, 0, 0,
                                   t.next_nonce()))

    def _lever_up(self, t: Trader, now_ms: int) -> bytes:
        """Keep adding to a one-directional position at ~18x until margin runs out."""
        s = self.perps[0]
        side = Side.BUY if t.params["direction"] > 0 else Side.SELL
        bound = self.index_usd6(s.underlying) / USD6 * (1.01 if side == Side.BUY else 0.99)
        size = self.lots(s, t.deposit / USD6 * t.params["leverage"] / 6)
        return self._sign(t, Order(now_ms, t.account, s.id, side, OrderType.MARKET, TimeInForce.IOC, 0, 0,
                                   self.ticks(s, bound), size, 0, 0, t.next_nonce()))

    def _active_options(self, state, underlying: str | None = None):
        """Marked options of the nearest expiry per underlying (keeps accounts under the
        per-account position limit while the chain keeps listing)."""
        live = [m for m in state.markets.values() if m.spec.kind == InstrumentKind.OPTION
                and m.status == MarketStatus.ACTIVE and m.mark_price
                and (underlying is None or m.spec.underlying == underlying)]
        nearest: dict[str, int] = {}
        for m in live:
            e = nearest.get(m.spec.underlying)
            if e is None or m.spec.expiry < e:
                nearest[m.spec.underlying] = m.spec.expiry
        return [m for m in live if m.spec.expiry == nearest[m.spec.underlying]]

    def _quote_options(self, t: Trader, state, now_ms: int) -> list[bytes]:
        out = []
        for m in self._active_options(state):
            s = m.spec
            if s.expiry - now_ms < 5_000:
                continue  # stop quoting just before expiry
            out.append(self._sign(t, Cancel(now_ms, t.account, CancelScope.ALL_IN_INSTRUMENT, s.id, 0, 0,
                                            t.next_nonce())))
            half = max(1, m.mark_price // 20)
            for side, px in ((Side.BUY, m.mark_price - half), (Side.SELL, m.mark_price + half)):
                if px <= 0:
                    continue
                out.append(self._sign(t, Order(now_ms, t.account, s.id, side, OrderType.LIMIT, TimeInForce.GTT,
                                               OrderFlag.POST_ONLY, 0, px, 5, now_ms + 10_000, 0, t.next_nonce())))
        return out

    def _take_option(self, t: Trader, state, now_ms: int) -> list[bytes]:
        opts = self._active_options(state)
        if not opts:
            return []
        m = self.rng.choice(opts)
        side = self.rng.choice((Side.BUY, Side.SELL))
        bound = m.mark_price * 2 if side == Side.BUY else max(1, m.mark_price // 2)
        return [self._sign(t, Order(now_ms, t.account, m.spec.id, side, OrderType.LIMIT, TimeInForce.IOC, 0, 0,
                                    bound, self.rng.randint(1, 3), 0, 0, t.next_nonce()))]

    def _write_calls(self, t: Trader, state, now_ms: int) -> list[bytes]:
        """Portfolio margin: hold 1 BTC long on the perp and sell out-of-the-money calls on it."""
        acct = state.accounts[t.account]
        out = []
        if acct.margin_mode != MarginMode.PORTFOLIO:
            return [self._sign(t, SetMarginMode(now_ms, t.account, MarginMode.PORTFOLIO, t.next_nonce()))]
        perp = self.perps[0]
        held = acct.positions.get(perp.id)
        target = self.lots(perp, self.index_usd6("BTC") / USD6)  # 1 BTC
        if held is None or held.size < target // 2:
            bound = self.index_usd6("BTC") / USD6 * 1.01
            out.append(self._sign(t, Order(now_ms, t.account, perp.id, Side.BUY, OrderType.MARKET, TimeInForce.IOC,
                                           0, 0, self.ticks(perp, bound), target, 0, 0, t.next_nonce())))
            return out
        short_calls = sum(-p.size for i, p in acct.positions.items()
                          if state.markets[i].spec.kind == InstrumentKind.OPTION and p.size < 0)
        if short_calls >= 100 or self.rng.random() > 0.05:
            return out
        index = self.index_usd6("BTC")
        calls = [m for m in self._active_options(state, "BTC")
                 if m.spec.option_type == 1 and m.spec.strike * m.spec.tick_size > index
                 and m.spec.expiry - now_ms > 15_000]
        if calls:
            m = min(calls, key=lambda m: (m.spec.expiry, m.spec.strike))
            out.append(self._sign(t, Order(now_ms, t.account, m.spec.id, Side.SELL, OrderType.LIMIT, TimeInForce.IOC,
                                           0, 0, max(1, m.mark_price * 9 // 10), 20, 0, 0, t.next_nonce())))
        return out


__all__ = ["SimulatedMarket", "demo_genesis", "demo_key", "demo_domain", "demo_surface"]
