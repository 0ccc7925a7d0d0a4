"""API errors: one JSON shape, stable codes, an HTTP status per code.

Codes below 1000 are the core's ``ErrorCode`` (a rejected transaction keeps its code all the
way to the client); 1000 and up are API-level (``ApiCode``). Both tables are part of the public
API and documented in docs/API.md: never renumber.
"""

from __future__ import annotations

from enum import IntEnum

from ..core.errors import ErrorCode

__all__ = ["ApiCode", "ApiError", "error_body", "http_status", "from_core", "HINTS"]


class ApiCode(IntEnum):
    BAD_REQUEST = 1000
    MALFORMED_NUMBER = 1001
    NOT_A_MULTIPLE = 1002
    OUT_OF_RANGE = 1003
    NOT_FOUND = 1004
    RATE_LIMITED = 1010
    OVERLOADED = 1011
    NODE_HALTED = 1012
    UNAUTHORIZED = 1013
    DEMO_ONLY = 1020
    L1_UNAVAILABLE = 1021
    UNKNOWN_CHANNEL = 1030
    BAD_OP = 1031


E = ErrorCode
_STATUS = {
    ApiCode.BAD_REQUEST: 400, ApiCode.MALFORMED_NUMBER: 400, ApiCode.NOT_A_MULTIPLE: 400,
    ApiCode.OUT_OF_RANGE: 400, ApiCode.NOT_FOUND: 404, ApiCode.RATE_LIMITED: 429, ApiCode.OVERLOADED: 503,
    ApiCode.NODE_HALTED: 503, ApiCode.UNAUTHORIZED: 401, ApiCode.DEMO_ONLY: 403, ApiCode.L1_UNAVAILABLE: 503,
    ApiCode.UNKNOWN_CHANNEL: 400, ApiCode.BAD_OP: 400,
    E.MALFORMED: 400, E.UNKNOWN_TX_KIND: 400, E.BAD_SIGNATURE: 401, E.HIGH_S_SIGNATURE: 401,
    E.WRONG_SIGNER: 401, E.UNKNOWN_ACCOUNT: 404, E.BAD_NONCE: 409, E.NOT_ACCOUNT_OWNER: 403,
    E.SAME_ACCOUNT: 400, E.ZERO_AMOUNT: 400, E.INVALID_MARGIN_MODE: 400, E.INVALID_ACCOUNT_FLAGS: 400,
    E.UNKNOWN_INSTRUMENT: 404, E.INVALID_PRICE: 400, E.INVALID_SIZE: 400, E.INVALID_ORDER_TYPE: 400,
    E.INVALID_TIME_IN_FORCE: 400, E.INVALID_STP_MODE: 400, E.INVALID_FLAGS: 400, E.INVALID_CANCEL_SCOPE: 400,
    E.UNKNOWN_ORDER: 404, E.DUPLICATE_CLIENT_ID: 409, E.NOT_ORDER_OWNER: 403, E.NOT_OPTED_IN: 403,
    E.NOT_OPERATOR: 403, E.FUNDING_IN_PROGRESS: 503, E.ORDER_IDS_EXHAUSTED: 503,
}

# What a person should do about the most common rejections (appended to the core's message).
HINTS = {
    E.BAD_SIGNATURE: "sign the exact message returned by POST /api/v1/typed-data/{kind}",
    E.BAD_NONCE: "use a nonce above the account's last one (GET /api/v1/accounts/{id}: nonce)",
    E.INSUFFICIENT_MARGIN: "reduce the size or add collateral",
    E.INSUFFICIENT_COLLATERAL: "ask for at most the account's free collateral",
    E.NOT_ACCOUNT_OWNER: "sign with the key of the account's owner (or the derived message differs: send 'signer')",
    E.POST_ONLY_WOULD_CROSS: "move the price away from the other side or drop post_only",
    E.FOK_NOT_FILLABLE: "not enough liquidity right now: use a smaller size or IOC",
    E.UNKNOWN_INSTRUMENT: "see GET /api/v1/instruments",
    E.UNKNOWN_ACCOUNT: "deposit first (the demo faucet: POST /api/v1/demo/faucet)",
    E.NOT_OPTED_IN: "sign a SetAccountFlags with flags=1 first (POST /api/v1/account-flags)",
    E.NO_MARK_PRICE: "wait for the first mark price of this instrument",
    E.DUPLICATE_CLIENT_ID: "use a client id that no open order of the account uses",
    E.FUNDING_IN_PROGRESS: "holders are being paid (funding or an option expiry): send it again",
}


def http_status(code: int) -> int:
    """HTTP status of an error code; other core rejections are business rules (422)."""
    return _STATUS.get(code, 422)


def _name(code: int) -> str:
    for enum in (ApiCode, ErrorCode):
        try:
            return enum(code).name
        except ValueError:
            continue
    return "UNKNOWN"


class ApiError(Exception):
    """An error to return to the client: a stable code, its name, an actionable message."""

    def __init__(self, code: int, message: str, *, retry_after_ms: int | None = None, status: int | None = None):
        super().__init__(message)
        self.code = int(code)
        self.name = _name(code)
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.status = status or http_status(self.code)

    def body(self) -> dict:
        return error_body(self.code, self.message, self.retry_after_ms)


def from_core(code: int, message: str) -> ApiError:
    """A core rejection as an API error, with a hint of what to do."""
    hint = HINTS.get(code)
    return ApiError(code, f"{message}: {hint}" if hint and hint not in message else message)


def error_body(code: int, message: str, retry_after_ms: int | None = None) -> dict:
    err = {"code": int(code), "name": _name(code), "message": message}
    if retry_after_ms is not None:
        err["retry_after_ms"] = retry_after_ms
    return {"error": err}
