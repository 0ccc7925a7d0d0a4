"""Off-chain pricing and risk: Black-76, SVI surfaces, Greeks and scenario risk arrays.

Floats live here and only here. Their output enters the core as integers (option marks in
ticks, risk arrays in usd6 per lot) inside a signed ``MarkUpdate``; anyone can recompute them
from the published inputs (see :mod:`clearline.risk.arrays` for the rounding rules and the
reproducibility caveat on floating point).

Modules: :mod:`.black76` (``price``, ``greeks``, ``implied_vol``), :mod:`.svi` (``SviSlice``,
``VolSurface``, ``calibrate``), :mod:`.scenarios` (the fixed 16-scenario set and its
constants), :mod:`.arrays` (``risk_array``, ``option_mark_ticks``).
"""

from . import black76
from .arrays import option_mark_ticks, risk_array, year_fraction
from .errors import RiskError
from .scenarios import N_SCENARIOS, SCENARIOS
from .svi import SviSlice, VolSurface, calibrate

__all__ = [
    "N_SCENARIOS",
    "RiskError",
    "SCENARIOS",
    "SviSlice",
    "VolSurface",
    "black76",
    "calibrate",
    "option_mark_ticks",
    "risk_array",
    "year_fraction",
]
