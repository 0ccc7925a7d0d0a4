"""Typed results and errors of the SDK (amounts stay exact decimal strings, as the API sends them)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["ClearlineError", "RateLimitedError", "error_from_json", "Fill", "OrderResult", "CancelResult", "WithdrawResult"]


class ClearlineError(Exception):
    """An error answer of the node: ``code`` is stable (core ``ErrorCode`` below 1000, API codes above)."""

    def __init__(self, code: int, name: str, message: str, status: int = 0, retry_after_ms: int | None = None):
        super().__init__(f"{name} ({code}): {message}")
        self.code = code
        self.name = name
        self.message = message
        self.status = status
        self.retry_after_ms = retry_after_ms


class RateLimitedError(ClearlineError):
    """RATE_LIMITED: wait ``retry_after_ms`` before the next signed write of this account."""


def error_from_json(err: dict, status: int = 0) -> ClearlineError:
    """The typed exception of an ``{"error": {...}}`` answer (or of one batch entry)."""
    cls = RateLimitedError if err["name"] == "RATE_LIMITED" else ClearlineError
    return cls(err["code"], err["name"], err["message"], status, err.get("retry_after_ms"))


@dataclass(frozen=True)
class Fill:
    price: str
    size: str
    fee: str
    maker_order: int


@dataclass(frozen=True)
class OrderResult:
    seq: int  # journal sequence number of the accepted order (durable)
    order_id: int
    status: str  # resting | partially_filled | filled | cancelled
    filled: str
    remaining: str
    avg_price: str | None
    closed_reason: str | None
    time_ms: int
    fills: list[Fill] = field(default_factory=list)

    @classmethod
    def from_json(cls, d: dict) -> "OrderResult":
        return cls(d["seq"], d["order_id"], d["status"], d["filled"], d["remaining"], d["avg_price"],
                   d["closed_reason"], d["time_ms"], [Fill(f["price"], f["size"], f["fee"], f["maker_order"])
                                                      for f in d["fills"]])


@dataclass(frozen=True)
class CancelResult:
    seq: int
    cancelled: list[int]


@dataclass(frozen=True)
class WithdrawResult:
    seq: int
    amount: str
    status: str
