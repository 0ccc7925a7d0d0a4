"""Margin requirements, in integers (usd6). Pure functions shared by the engine, the
``margin explain`` report and the vectorised re-margin sweep (``clearline.risk.remargin``),
which must reproduce them exactly.

Standard margin (per position, summed):
- perpetual: ``ceil(|q| * mark * tick_value * fraction)`` with the instrument's initial /
  maintenance fraction;
- long option: its premium value at mark, ``q * mark * tick_value`` (an option has no loan
  value: it can pay for itself, not for anything else);
- short option, per lot: ``premium + max(im_frac * U - OTM, FLOOR * U)`` initial and
  ``premium + mm_frac * U`` maintenance, where ``U`` is the underlying value of one lot at the
  index and ``OTM`` how far out of the money one lot is (the usual exchange formula).

Portfolio margin: ``IM = max(0, max_s loss_s) + short-option minimum + contingency`` where
``loss_s = -sum_i q_i * R_i[s]`` over the risk arrays ``R_i`` (usd6 P&L per long lot in
scenario s), the short-option minimum is ``SHORT_OPTION_MIN`` of ``U`` per short option lot,
and the contingency is 1 usd6 per lot held (it covers the rounding of the arrays, see
``clearline.risk.arrays``). Positions whose market has no risk array are charged their
standard requirement instead. Maintenance is ``PM_MAINTENANCE`` of initial.

"No risk array" means ``None`` (never published) **or all 16 entries zero**
(:func:`has_risk_array`): the market leaf encodes ``None`` as 16 zero words, so a committed
state cannot tell the two apart, and the L1 margin check (``MarginVerifier.sol``) must reach
the same requirement from the leaf alone. An all-zero array carries no risk information
anyway (every scenario P&L is 0), so it falls back to the standard requirement like a
missing one. Every portfolio computation (``margin.health``, ``explain``, the vectorised
``clearline.risk.remargin``) uses this rule.

Rounding: every requirement rounds up, every reduction (OTM amount) rounds down.
"""

from __future__ import annotations

from .units import PPM, UNDERLYING_ATOMS

SHORT_OPTION_FLOOR_PPM = 100_000  # 10% of the underlying per short option lot, at least
SHORT_OPTION_MIN_PPM = 10_000  # portfolio margin: 1% of the underlying per short option lot
PM_MAINTENANCE_PPM = 750_000  # portfolio maintenance = 75% of portfolio initial
N_SCENARIOS = 16

PERPETUAL = 0
OPTION = 1
CALL = 1
PUT = 2


def _ceil(a: int, b: int) -> int:
    return -((-a) // b)


def underlying_value(spec, lots: int, index_usd6: int) -> int:
    """usd6 value of ``lots`` lots' worth of underlying at the index, rounded up."""
    return _ceil(lots * index_usd6 * spec.lot_size, UNDERLYING_ATOMS)


def otm_value(spec, lots: int, index_usd6: int) -> int:
    """How far ``lots`` lots of an option are out of the money, usd6, rounded down."""
    strike_usd6 = spec.strike * spec.tick_size
    per_unit = strike_usd6 - index_usd6 if spec.option_type == CALL else index_usd6 - strike_usd6
    if per_unit <= 0:
        return 0
    return lots * per_unit * spec.lot_size // UNDERLYING_ATOMS


def standard_requirements(spec, size: int, mark: int, index_usd6: int) -> tuple[int, int]:
    """(initial, maintenance) usd6 of one position under standard margin."""
    if size == 0:
        return 0, 0
    lots = size if size > 0 else -size
    premium = lots * mark * spec.tick_value
    if spec.kind == PERPETUAL:
        return _ceil(premium * spec.im_ppm, PPM), _ceil(premium * spec.mm_ppm, PPM)
    if size > 0:
        return premium, premium
    u = underlying_value(spec, lots, index_usd6)
    scan = _ceil(u * spec.im_ppm, PPM) - otm_value(spec, lots, index_usd6)
    floor = _ceil(u * SHORT_OPTION_FLOOR_PPM, PPM)
    return premium + (scan if scan > floor else floor), premium + _ceil(u * spec.mm_ppm, PPM)


class PortfolioResult:
    __slots__ = ("initial", "maintenance", "binding", "losses", "short_option_min", "contingency", "fallback")

    def __init__(self, initial, maintenance, binding, losses, short_option_min, contingency, fallback):
        self.initial = initial
        self.maintenance = maintenance
        self.binding = binding  # index of the worst scenario, -1 if no position has an array
        self.losses = losses  # loss per scenario (usd6, positive = loss)
        self.short_option_min = short_option_min
        self.contingency = contingency
        self.fallback = fallback  # standard initial requirement of positions without arrays


def has_risk_array(arr) -> bool:
    """Whether a market's ``risk_array`` margins its positions in portfolio mode: published
    (not ``None``) and not all zeros (an all-zero array and ``None`` have the same leaf)."""
    return arr is not None and any(arr)


def portfolio_requirements(positions) -> PortfolioResult:
    """``positions``: iterable of (spec, size, mark, risk_array or None, index_usd6); an
    all-zero array counts as none (:func:`has_risk_array`)."""
    losses = [0] * N_SCENARIOS
    som = contingency = fallback = fallback_mm = 0
    any_array = False
    for spec, size, mark, arr, index_usd6 in positions:
        if size == 0:
            continue
        lots = size if size > 0 else -size
        if arr is None or not any(arr):  # has_risk_array, inlined (hot path)
            im, mm = standard_requirements(spec, size, mark, index_usd6)
            fallback += im
            fallback_mm += mm
            continue
        any_array = True
        for s in range(N_SCENARIOS):
            losses[s] -= size * arr[s]
        contingency += lots
        if spec.kind == OPTION and size < 0:
            som += _ceil(underlying_value(spec, lots, index_usd6) * SHORT_OPTION_MIN_PPM, PPM)
    binding = -1
    worst = 0
    if any_array:
        binding = 0
        for s in range(1, N_SCENARIOS):
            if losses[s] > losses[binding]:
                binding = s
        worst = losses[binding] if losses[binding] > 0 else 0
    core = worst + som + contingency
    initial = core + fallback
    maintenance = _ceil(core * PM_MAINTENANCE_PPM, PPM) + fallback_mm
    return PortfolioResult(initial, maintenance, binding, losses, som, contingency, fallback)
