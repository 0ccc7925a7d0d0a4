"""The instrument registry: static contract specs plus per-market state.

The registry is itself state (it is hashed into the markets tree). The spec already has
the fields European options need (``expiry``, ``strike``, ``option_type``) so that
listing options later adds rows, not columns; perpetuals leave them zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import IntEnum

from .errors import ErrorCode, Rejected
from .units import PPM, UINT64_MAX, UNDERLYING_ATOMS


class InstrumentKind(IntEnum):
    PERPETUAL = 0
    OPTION = 1


class OptionType(IntEnum):
    NONE = 0
    CALL = 1
    PUT = 2


class MarketStatus(IntEnum):
    ACTIVE = 0
    HALTED = 1  # no new orders; cancels allowed
    DELISTED = 2


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """Contract terms. ``tick_size``: usd6 per whole underlying unit per tick;
    ``lot_size``: 1e-8 underlying units per lot; fractions in ppm."""

    id: int
    symbol: str
    kind: int
    underlying: str
    tick_size: int
    lot_size: int
    im_ppm: int
    mm_ppm: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    expiry: int = 0  # ms, options only
    strike: int = 0  # ticks, options only
    option_type: int = OptionType.NONE
    # usd6 value of a one-tick move on one lot (exact by validation); derived, cached
    tick_value: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "tick_value", self.tick_size * self.lot_size // UNDERLYING_ATOMS)

    def to_dict(self) -> dict:
        """The contract terms (derived fields excluded)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.init}

    def validate(self) -> None:
        def bad(why: str) -> Rejected:
            return Rejected(ErrorCode.INVALID_INSTRUMENT, f"{self.symbol}: {why}")

        if not (0 <= self.id < (1 << 24)):
            raise bad("id out of range")
        if not self.symbol or len(self.symbol.encode()) > 32 or len(self.underlying.encode()) > 32:
            raise bad("symbol and underlying must be 1..32 bytes")
        if self.kind not in (InstrumentKind.PERPETUAL, InstrumentKind.OPTION):
            raise bad("unknown kind")
        if not (0 < self.tick_size <= UINT64_MAX and 0 < self.lot_size <= UINT64_MAX):
            raise bad("tick and lot size must be positive")
        if (self.tick_size * self.lot_size) % UNDERLYING_ATOMS:
            raise bad("tick_size*lot_size must be a multiple of 1e8 so notionals are exact usd6")
        if not (0 < self.mm_ppm < self.im_ppm <= PPM):
            raise bad("need 0 < maintenance < initial <= 100%")
        if not (0 <= self.maker_fee_ppm <= self.taker_fee_ppm <= PPM // 10):
            raise bad("need 0 <= maker fee <= taker fee <= 10%")
        if self.kind == InstrumentKind.PERPETUAL and (self.expiry or self.strike or self.option_type):
            raise bad("perpetuals have no expiry, strike or option type")


@dataclass(slots=True)
class Market:
    """Mutable per-instrument state next to its spec."""

    spec: InstrumentSpec
    mark_price: int = 0  # ticks; 0 = no mark yet (trading needs a mark)
    mark_time: int = 0  # ms of the mark's signed timestamp
    funding_index: int = 0  # cumulative funding per lot, 1e-12 USD (sum of rate_ppm * mark * tick_value)
    open_interest: int = 0  # lots, long side
    status: int = MarketStatus.ACTIVE
    risk_array: list[int] | None = None  # 16 int64 usd6 P&L per long lot (None until published)
    premium_sum: int = 0  # ppm, premium samples of the current funding interval
    premium_samples: int = 0
    last_funding_time: int = 0  # ms, start of the current funding interval (0 = not started)
    last_funding_rate_ppm: int = 0
    settlement_price: int = 0  # options: usd6 index TWAP they settled at (0 = not settled)
    last_sample_time: int = 0  # ms of the last premium sample (at most one per sample interval)
    # holders being paid, one step each (a perpetual's funding after FUNDING_SETTLE, by FUNDING_PAY;
    # an option's payoff after SETTLE_OPTION, by SETTLE_POSITION):
    unpaid_lots: int = 0  # lots: the sum of |size| of the holders not paid yet (0 = nothing being paid)
    pay_float: int = 0  # usd6 moved so far (funding: paid less received, to the insurance fund at the end;
    #                     settlement: payoffs paid out, negated: back to 0 at the end)
    # ids of the best bid and the best ask (0: none), kept by the book (derived, committed in the leaf)
    bid_head: int = 0
    ask_head: int = 0


def default_perpetuals() -> list[InstrumentSpec]:
    """BTC-PERP and ETH-PERP: 5% initial / 3% maintenance, 1 bp maker / 5 bp taker."""
    return [
        InstrumentSpec(0, "BTC-PERP", InstrumentKind.PERPETUAL, "BTC", tick_size=100_000, lot_size=10_000,
                       im_ppm=50_000, mm_ppm=30_000, maker_fee_ppm=100, taker_fee_ppm=500),
        InstrumentSpec(1, "ETH-PERP", InstrumentKind.PERPETUAL, "ETH", tick_size=10_000, lot_size=100_000,
                       im_ppm=50_000, mm_ppm=30_000, maker_fee_ppm=100, taker_fee_ppm=500),
    ]
