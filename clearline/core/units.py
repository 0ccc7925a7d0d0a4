"""Fixed-point units and rounding rules shared by the whole core.

Units (all plain ``int``):

- collateral (``usd6``): 1e-6 USD of the settlement stablecoin.
- price: integer *ticks*; one tick is ``Instrument.tick_size`` usd6 per whole unit of
  the underlying (e.g. BTC tick 100_000 = 10 US cents).
- size: integer *lots*; one lot is ``Instrument.lot_size`` atoms of 1e-8 underlying
  (e.g. BTC lot 10_000 = 1e-4 BTC). Signed for positions (+long, -short).
- value of one tick on one lot, ``Instrument.tick_value`` = tick_size*lot_size/1e8 usd6,
  required to be a whole number so every notional is exact: notional = ticks*lots*tick_value.
- fractions (margin, fees): parts per million (``PPM`` = 1_000_000).
- time: milliseconds since the Unix epoch, carried by every transaction.

Rounding: requirements, fees and losses round against the account (up); credits round
down. Helpers below make that explicit at every call site.
"""

PPM = 1_000_000
UNDERLYING_ATOMS = 100_000_000  # 1e-8 of one underlying unit
USD6 = 1_000_000  # usd6 per 1 USD

UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1
INT64_MAX = (1 << 63) - 1


def ceil_div(a: int, b: int) -> int:
    """Division rounded toward +infinity (b > 0). Used for requirements and charges."""
    return -((-a) // b)


def floor_div(a: int, b: int) -> int:
    """Division rounded toward -infinity (b > 0). Used for credits."""
    return a // b


def ppm_of_up(amount: int, ppm: int) -> int:
    """``amount * ppm / 1e6`` rounded up: a requirement or a fee the account pays."""
    return -((-amount * ppm) // PPM)
