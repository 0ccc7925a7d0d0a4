"""The one error type of :mod:`clearline.risk`.

Pricing runs off-chain, outside the core, so it does not use the core's ``Rejected`` codes.
Every invalid input (negative time, a price outside no-arbitrage bounds, an SVI slice with
``|rho| >= 1`` ...) raises :class:`RiskError` with a message naming the offending input.
Validation never uses ``assert`` (it disappears under ``python -O``).
"""


class RiskError(ValueError):
    """Invalid input to, or impossible request of, the off-chain pricing and risk code."""
