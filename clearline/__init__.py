"""clearline: an off-chain clearing and settlement layer for crypto derivatives."""

__version__ = "0.1.0"
