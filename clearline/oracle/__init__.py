"""Oracle: signed price reports from several reporters, medianised with staleness, quorum and
deviation rules (``aggregate``); pure, integer-only, deterministic -- the core calls it to
validate mark updates. The simulated feed (``clearline.oracle.feed``) is *not* pure and is not
re-exported here: import it explicitly for demos and tests.
"""

from .aggregate import (
    AggregateResult,
    DropReason,
    OracleConfig,
    OracleErrorCode,
    OracleRejected,
    OracleState,
    Outcome,
    aggregate,
    median,
)
from .report import PriceReport, decode_report, encode_report, recover_reporter
from .report import digest as report_digest
from .report import sign as sign_report

__all__ = [
    "AggregateResult",
    "DropReason",
    "OracleConfig",
    "OracleErrorCode",
    "OracleRejected",
    "OracleState",
    "Outcome",
    "PriceReport",
    "aggregate",
    "decode_report",
    "encode_report",
    "median",
    "recover_reporter",
    "report_digest",
    "sign_report",
]
