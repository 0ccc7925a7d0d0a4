"""Underlyings (BTC, ETH): oracle index, liquidation pause, and the settlement averages.

Each underlying keeps the oracle's aggregation state (median index, pending unconfirmed
jump) and, for every listed option expiry, a time-weighted accumulator of the index over
the settlement window ``[expiry - window, expiry]``: ``acc += index * overlap_ms`` each
time the index may change, so the settlement price is exactly ``acc // dt`` (rounded down)
with no history kept. If the window saw no time at all (no mark update inside it), the
settlement price falls back to the index at settlement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..oracle.aggregate import OracleConfig, OracleState


@dataclass(frozen=True, slots=True)
class RiskParams:
    """Exchange-wide risk parameters (part of the genesis, so every replica agrees)."""

    funding_interval_ms: int = 3_600_000  # funding is settled hourly
    funding_sample_ms: int = 60_000  # premium index sampled every minute
    interest_ppm: int = 12  # interest component per funding interval (~0.01% per 8 h)
    premium_clamp_ppm: int = 50  # clamp(I - P, -0.005%, +0.005%)
    funding_cap_ppm: int = 1_000  # |rate| <= 0.1% per interval
    impact_notional_usd6: int = 10_000_000_000  # $10k: impact bid/ask depth
    liquidation_fee_ppm: int = 5_000  # 0.5% of the liquidated notional, to the insurance fund
    liquidation_step_ppm: int = 250_000  # close 25% of the riskiest position per step
    liquidation_max_steps: int = 32
    settlement_window_ms: int = 1_800_000  # TWAP of the index over the last 30 minutes
    settlement_fee_ppm: int = 150  # of the underlying notional, capped at 1/8 of the payoff

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in RiskParams.__slots__}


@dataclass(frozen=True, slots=True)
class UnderlyingConfig:
    id: int
    symbol: str
    oracle: OracleConfig
    option_template: object | None = None  # clearline.core.listing.OptionTemplate

    def to_dict(self) -> dict:
        o = self.oracle
        d = {"id": self.id, "symbol": self.symbol,
             "oracle": {"reporters": [r.hex() for r in o.reporters], "quorum": o.quorum,
                        "staleness_ms": o.staleness_ms, "max_deviation_ppm": o.max_deviation_ppm,
                        "confirmations": o.confirmations}}
        if self.option_template is not None:
            t = self.option_template
            d["option_template"] = {k: getattr(t, k) for k in t.__slots__}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UnderlyingConfig":
        o = d["oracle"]
        oracle = OracleConfig(tuple(bytes.fromhex(r) for r in o["reporters"]), o["quorum"], o["staleness_ms"],
                              o["max_deviation_ppm"], o["confirmations"])
        template = None
        if "option_template" in d:
            from .listing import OptionTemplate

            template = OptionTemplate(**d["option_template"])
        return cls(d["id"], d["symbol"], oracle, template)


@dataclass(slots=True)
class Underlying:
    config: UnderlyingConfig
    oracle: OracleState
    acc_time: int = 0  # ms up to which the settlement accumulators have been advanced
    windows: dict[int, list[int]] = field(default_factory=dict)  # expiry -> [acc, dt], ascending expiry

    @property
    def liquidations_paused(self) -> bool:
        """True while the oracle holds an unconfirmed jump."""
        return self.oracle.liquidations_paused

    @property
    def index(self) -> int:
        """Index price, usd6 per whole underlying unit (0 until the oracle's first update)."""
        return self.oracle.index_price

    def advance(self, now_ms: int, window_ms: int) -> None:
        """Accumulate the current index over [acc_time, now] into every open window."""
        start = self.acc_time
        if now_ms <= start:
            return
        price = self.oracle.index_price
        if price:
            for expiry, w in self.windows.items():
                lo = max(start, expiry - window_ms)
                hi = min(now_ms, expiry)
                if hi > lo:
                    w[0] += price * (hi - lo)
                    w[1] += hi - lo
        self.acc_time = now_ms

    def settlement_price(self, expiry: int) -> int:
        acc, dt = self.windows[expiry]
        return acc // dt if dt else self.oracle.index_price
