"""ABI values for ``OracleVerifier`` (``clearline/l1/contracts/OracleVerifier.sol``) from the
oracle's Python types, and back.

The contract's structs are the Python dataclasses field for field:

- ``OracleConfigIn(address[] reporters, uint32 quorum, uint64 stalenessMs,
  uint32 maxDeviationPpm, uint32 confirmations)`` <- ``OracleConfig``;
- ``OracleStateIn(uint32 asset, uint64 indexPrice, uint64 indexTimeMs, uint64 lastRoundMs,
  uint64 pendingPrice, uint64 pendingCount)`` <-> ``OracleState``;
- ``ReportIn(uint32 asset, uint64 price, uint64 timestamp, uint64 round, bytes signature)``
  <- ``PriceReport`` (the signature as the object holds it, any length).

The tuples are what web3 takes for those struct arguments (addresses EIP-55 checksummed) and
what it returns for ``OracleStateIn``. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from eth_utils import to_checksum_address

from clearline.core.eip712 import Domain
from clearline.oracle.aggregate import OracleConfig, OracleState
from clearline.oracle.report import PriceReport

__all__ = [
    "config_tuple",
    "domain_args",
    "report_tuple",
    "reports_tuple",
    "state_from_tuple",
    "state_tuple",
]


def config_tuple(config: OracleConfig) -> tuple:
    """``OracleConfigIn`` of ``config`` (reporters in the config's order)."""
    if not isinstance(config, OracleConfig):
        raise TypeError("config must be an OracleConfig")
    return ([to_checksum_address(a) for a in config.reporters], config.quorum, config.staleness_ms,
            config.max_deviation_ppm, config.confirmations)


def state_tuple(state: OracleState) -> tuple:
    """``OracleStateIn`` of ``state``."""
    if not isinstance(state, OracleState):
        raise TypeError("state must be an OracleState")
    return (state.asset, state.index_price, state.index_time_ms, state.last_round_ms,
            state.pending_price, state.pending_count)


def state_from_tuple(value: Sequence[int]) -> OracleState:
    """The ``OracleState`` of an ``OracleStateIn`` returned by the contract (its invariants are
    checked again by the constructor: a ``ValueError`` means the contract returned a state
    Python could not hold)."""
    asset, index_price, index_time_ms, last_round_ms, pending_price, pending_count = (int(x) for x in value)
    return OracleState(asset, index_price, index_time_ms, last_round_ms, pending_price, pending_count)


def report_tuple(report: PriceReport) -> tuple:
    """``ReportIn`` of ``report``."""
    if not isinstance(report, PriceReport):
        raise TypeError(f"{type(report).__name__} is not a PriceReport")
    return (report.asset, report.price, report.timestamp, report.round, bytes(report.signature))


def reports_tuple(reports: Iterable[PriceReport]) -> list[tuple]:
    """``ReportIn[]`` of ``reports``, in their order (the order decides which bad signature's
    code a rejection carries, as in ``recover_reporters``)."""
    return [report_tuple(r) for r in reports]


def domain_args(domain: Domain) -> tuple[int, str]:
    """``(chainId, verifyingContract)``, the first two arguments of ``aggregateSigned``,
    ``reporterOf`` and ``reportDigest``."""
    return domain.chain_id, to_checksum_address(domain.verifying_contract)
