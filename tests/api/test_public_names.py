"""The API and node packages export deliberately few names (adding one is a decision)."""

import clearline.api
import clearline.node
from clearline.api.errors import ApiCode


def test_exports():
    assert sorted(clearline.api.__all__) == ["ApiServer", "create_app"]
    assert callable(clearline.api.create_app) and clearline.api.ApiServer
    assert sorted(clearline.node.__all__) == ["NodeHalted", "NodeOverloaded", "NodeService"]


def test_api_error_codes_are_stable_and_above_the_core_range():
    assert {c.name: int(c) for c in ApiCode} == {
        "BAD_REQUEST": 1000, "MALFORMED_NUMBER": 1001, "NOT_A_MULTIPLE": 1002, "OUT_OF_RANGE": 1003,
        "NOT_FOUND": 1004, "RATE_LIMITED": 1010, "OVERLOADED": 1011, "NODE_HALTED": 1012, "UNAUTHORIZED": 1013,
        "DEMO_ONLY": 1020, "L1_UNAVAILABLE": 1021, "UNKNOWN_CHANNEL": 1030, "BAD_OP": 1031}
