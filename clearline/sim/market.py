"""A simulated market: market makers quoting around a moving price, takers crossing the
spread, and a few over-leveraged traders who run out of margin as the price moves.

Everything it sends is a real signed input that goes through the sequencer's verifier.
Randomness and floats live here, outside the core; the RNG is seeded, so a run is
reproducible for a given seed and step schedule.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from ..core import eip712
from ..core.apply import CollateralMoved
from ..core.encoding import encode_tx
from ..core.hashing import keccak
from ..core.instruments import InstrumentSpec, default_perpetuals
from ..core.state import Genesis
from ..core.txs import (Cancel, CancelScope, Deposit, MarkUpdate, Order, OrderFlag, OrderType, Side,
                        TimeInForce)
from ..core.units import USD6

DEMO_CHAIN_ID = 31337
DEMO_ROLLUP = bytes.fromhex("c1ea71ae00000000000000000000000000000001")
START_PRICES_USD = {"BTC": 100_000.0, "ETH": 3_000.0}


def demo_key(seed: int, label: str) -> bytes:
    """Deterministic demo private key (never use for real funds)."""
    return keccak(f"clearline-demo/{seed}/{label}".encode())


def demo_genesis(seed: int = 1) -> Genesis:
    specs = tuple(default_perpetuals())
    marks = tuple(int(START_PRICES_USD[s.underlying] * USD6) // s.tick_size for s in specs)
    return Genesis(DEMO_CHAIN_ID, DEMO_ROLLUP, eip712.address_of(demo_key(seed, "operator")), specs, marks)


@dataclass
class Trader:
    name: str
    role: str  # "maker" | "taker" | "leveraged"
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
                 operator_key: bytes | None = None):
        self.genesis = genesis
        self.domain = eip712.Domain(genesis.chain_id, genesis.verifying_contract)
        self.rng = random.Random(seed)
        self.operator_key = operator_key or demo_key(seed, "operator")
        self.specs: list[InstrumentSpec] = list(genesis.instruments)
        self.price = {s.id: genesis.initial_marks[i] * s.tick_size / USD6 for i, s in enumerate(self.specs)}
        self.vol = {s.id: 0.0004 for s in self.specs}  # per-step log-return sd, regime-switched
        self.traders: list[Trader] = []
        for i in range(makers):
            self._add(f"mm{i}", "maker", seed, 2_000_000 * USD6, spread_bps=2 + i, levels=3, step_bps=2 + i)
        for i in range(takers):
            self._add(f"taker{i}", "taker", seed, 200_000 * USD6, rate=0.5)
        for i in range(leveraged):
            self._add(f"degen{i}", "leveraged", seed, 5_000 * USD6, leverage=18, direction=1 if i % 2 == 0 else -1)
        self.queue_pos = 0
        self.last_mark_ms = 0

    def _add(self, name, role, seed, deposit, **params):
        key = demo_key(seed, name)
        self.traders.append(Trader(name, role, key, eip712.address_of(key), deposit, params=params))

    # -- L1 side ---------------------------------------------------------------------
    def initial_deposits(self, now_ms: int) -> list[Deposit]:
        out = []
        for t in self.traders:
            out.append(Deposit(now_ms, self.queue_pos, t.address, 0, t.deposit))
            self.queue_pos += 1
        return out

    def observe(self, txs: list, acks: list) -> None:
        """Learn account ids from deposit receipts."""
        by_addr = {t.address: t for t in self.traders}
        for tx, ack in zip(txs, acks):
            if isinstance(tx, Deposit) and ack.receipt.ok:
                for ev in ack.receipt.events:
                    if isinstance(ev, CollateralMoved):
                        by_addr[tx.owner].account = ev.to_account

    # -- operator ------------------------------------------------------------------------
    def mark_update(self, now_ms: int) -> MarkUpdate | None:
        if now_ms <= self.last_mark_ms:
            return None
        self.last_mark_ms = now_ms
        tx = MarkUpdate(now_ms, now_ms, [s.id for s in self.specs], [self.ticks(s) for s in self.specs])
        tx.signature = eip712.sign(self.domain, tx, self.operator_key)
        tx.signer = eip712.address_of(self.operator_key)
        return tx

    def ticks(self, spec: InstrumentSpec, price: float | None = None) -> int:
        p = self.price[spec.id] if price is None else price
        return max(1, int(round(p * USD6 / spec.tick_size)))

    def lots(self, spec: InstrumentSpec, usd: float) -> int:
        return max(1, int(usd / (self.price[spec.id] * spec.lot_size / 1e8)))

    # -- participants -----------------------------------------------------------------------
    def move_prices(self) -> None:
        rng = self.rng
        for s in self.specs:
            if rng.random() < 0.01:  # volatility regime switch
                self.vol[s.id] = rng.choice([0.0002, 0.0004, 0.0010, 0.0020])
            r = rng.gauss(0.0, self.vol[s.id])
            if rng.random() < 0.002:  # occasional jump
                r += rng.choice([-1, 1]) * rng.uniform(0.005, 0.02)
            self.price[s.id] *= math.exp(r)

    def step(self, now_ms: int) -> list[bytes]:
        """One tick of the market: returns signed, encoded user inputs."""
        self.move_prices()
        out: list[bytes] = []
        for t in self.traders:
            if t.account < 0:
                continue
            if t.role == "maker":
                out.extend(self._quote(t, now_ms))
            elif t.role == "taker" and self.rng.random() < t.params["rate"]:
                out.append(self._take(t, now_ms))
            elif t.role == "leveraged" and self.rng.random() < 0.2:
                out.append(self._lever_up(t, now_ms))
        return out

    def _sign(self, t: Trader, tx) -> bytes:
        tx.signature = eip712.sign(self.domain, tx, t.key)
        return encode_tx(tx)

    def _quote(self, t: Trader, now_ms: int) -> list[bytes]:
        out = []
        p = t.params
        for s in self.specs:
            out.append(self._sign(t, Cancel(now_ms, t.account, CancelScope.ALL_IN_INSTRUMENT, s.id, 0, 0,
                                            t.next_nonce())))
            mid = self.price[s.id]
            for lvl in range(p["levels"]):
                off = (p["spread_bps"] + lvl * p["step_bps"]) / 1e4
                size = self.lots(s, self.rng.uniform(5_000, 40_000))
                for side, px in ((Side.BUY, mid * (1 - off)), (Side.SELL, mid * (1 + off))):
                    out.append(self._sign(t, Order(now_ms, t.account, s.id, side, OrderType.LIMIT, TimeInForce.GTT,
                                                   OrderFlag.POST_ONLY, 0, self.ticks(s, px), size,
                                                   now_ms + 60_000, 0, t.next_nonce())))
        return out

    def _take(self, t: Trader, now_ms: int) -> bytes:
        s = self.rng.choice(self.specs)
        side = self.rng.choice((Side.BUY, Side.SELL))
        bound = self.price[s.id] * (1.01 if side == Side.BUY else 0.99)
        size = self.lots(s, self.rng.uniform(1_000, 60_000))
        if self.rng.random() < 0.2:  # sometimes a cancel/replace-free limit IOC instead of market
            return self._sign(t, Order(now_ms, t.account, s.id, side, OrderType.LIMIT, TimeInForce.IOC, 0, 0,
                                       self.ticks(s, bound), size, 0, 0, t.next_nonce()))
        return self._sign(t, Order(now_ms, t.account, s.id, side, OrderType.MARKET, TimeInForce.IOC, 0, 0,
                                   self.ticks(s, bound), size, 0, 0, t.next_nonce()))

    def _lever_up(self, t: Trader, now_ms: int) -> bytes:
        """Keep adding to a one-directional position at ~18x until margin runs out."""
        s = self.specs[0]
        side = Side.BUY if t.params["direction"] > 0 else Side.SELL
        bound = self.price[s.id] * (1.01 if side == Side.BUY else 0.99)
        size = self.lots(s, t.deposit / USD6 * t.params["leverage"] / 6)
        return self._sign(t, Order(now_ms, t.account, s.id, side, OrderType.MARKET, TimeInForce.IOC, 0, 0,
                                   self.ticks(s, bound), size, 0, 0, t.next_nonce()))


__all__ = ["SimulatedMarket", "demo_genesis", "demo_key"]
