"""The oracle's public API stays deliberately small, its error codes never change, and importing
the pure part does not drag in the simulated (impure) feed."""

import subprocess
import sys

import clearline.oracle
from clearline.core.errors import ErrorCode
from clearline.oracle import DropReason, OracleErrorCode, OracleRejected, Outcome


def test_oracle_exports_exactly_this():
    assert sorted(clearline.oracle.__all__) == [
        "AggregateResult", "DropReason", "OracleConfig", "OracleErrorCode", "OracleRejected",
        "OracleState", "Outcome", "PriceReport", "aggregate", "decode_report", "encode_report",
        "median", "recover_reporter", "report_digest", "sign_report",
    ]
    for name in clearline.oracle.__all__:
        assert getattr(clearline.oracle, name) is not None


def test_error_codes_are_stable_and_do_not_collide_with_core():
    assert {c.name: int(c) for c in OracleErrorCode} == {
        "DUPLICATE_REPORTER": 80, "WRONG_ASSET": 81, "TIME_WENT_BACKWARDS": 82,
        "MALFORMED_INPUT": 83,
    }
    assert not {int(c) for c in OracleErrorCode} & {int(c) for c in ErrorCode}
    assert {c.name: int(c) for c in Outcome} == {
        "NO_UPDATE": 0, "ACCEPTED": 1, "UNCONFIRMED": 2, "CONFIRMED": 3}
    assert {c.name: int(c) for c in DropReason} == {
        "UNKNOWN_REPORTER": 1, "ZERO_PRICE": 2, "FUTURE": 3, "STALE": 4, "ALREADY_USED": 5}


def test_rejected_carries_code_and_message():
    e = OracleRejected(OracleErrorCode.WRONG_ASSET, "asset 1")
    assert (e.code, e.message, str(e)) == (OracleErrorCode.WRONG_ASSET, "asset 1",
                                           "WRONG_ASSET: asset 1")
    assert OracleRejected(OracleErrorCode.WRONG_ASSET).message == "WRONG_ASSET"


def test_pure_part_does_not_import_random_feed():
    code = ("import sys, clearline.oracle; "
            "print('clearline.oracle.feed' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"
