"""Request bodies of the signed writes, and their exact conversion to core transactions.

The body carries decimal strings and enum names; ``to_tx`` derives the integer transaction
(ticks, lots, usd6, enum numbers) that the user's EIP-712 signature must cover. The same
conversion serves ``POST /typed-data/{kind}``, so what a wallet is asked to sign is exactly
what the node will verify.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ..core import eip712
from ..core.errors import ErrorCode
from ..core.txs import Cancel, Order, Replace, SetAccountFlags, SetMarginMode, Transfer, Withdraw
from .errors import ApiCode, ApiError
from .numbers import amount_to_usd6, parse_uint, price_to_ticks, size_to_lots

__all__ = ["OrderBody", "OrderBatchBody", "MAX_BATCH_ORDERS", "CancelBody", "ReplaceBody", "WithdrawBody", "TransferBody", "AccountFlagsBody",
           "MarginModeBody", "LoginBody", "BODIES", "to_tx", "parse_signature", "ENUMS"]

UInt = Union[int, str]

ENUMS = {
    "side": {"buy": 0, "sell": 1},
    "type": {"limit": 0, "market": 1},
    "tif": {"GTC": 0, "GTT": 1, "IOC": 2, "FOK": 3},
    "flags": {"post_only": 1, "reduce_only": 2},
    "stp": {"cancel_resting": 0, "cancel_incoming": 1, "cancel_both": 2},
    "scope": {"order_id": 0, "client_id": 1, "instrument": 2, "all": 3},
    "margin_mode": {"standard": 0, "portfolio": 1},
    "account_flags": {"operator_may_cancel": 1},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Signed(_Body):
    account: UInt = Field(description="account id (uint32)")
    nonce: UInt = Field(description="uint64, above the account's last nonce; an int or a decimal string")
    signature: Optional[str] = Field(None, description="0x + 65 bytes r||s||v (required when submitting)")
    signer: Optional[str] = Field(None, description="optional 0x address: a mismatch is reported as BAD_SIGNATURE")


class OrderBody(_Signed):
    symbol: str
    side: Literal["buy", "sell"]
    type: Literal["limit", "market"] = "limit"
    tif: Literal["GTC", "GTT", "IOC", "FOK"] = "GTC"
    price: str = Field(description="decimal string, USD per underlying unit, on the tick grid")
    size: str = Field(description="decimal string, underlying units, on the lot grid")
    post_only: bool = False
    reduce_only: bool = False
    stp: Literal["cancel_resting", "cancel_incoming", "cancel_both"] = "cancel_resting"
    expiry_ms: UInt = 0
    client_id: UInt = 0


MAX_BATCH_ORDERS = 50


class OrderBatchBody(_Body):
    orders: list[OrderBody] = Field(min_length=1, max_length=MAX_BATCH_ORDERS,
                                    description=f"1 to {MAX_BATCH_ORDERS} signed orders, applied in this order")


class CancelBody(_Signed):
    scope: Literal["order_id", "client_id", "instrument", "all"]
    order_id: UInt = 0
    client_id: UInt = 0
    symbol: Optional[str] = None


class ReplaceBody(_Signed):
    order_id: UInt
    price: str
    size: str


class WithdrawBody(_Signed):
    amount: str


class TransferBody(_Signed):
    to_subaccount: UInt
    amount: str


class AccountFlagsBody(_Signed):
    flags: int = Field(description="bit 0: the operator may cancel this account's resting orders")


class MarginModeBody(_Signed):
    mode: Literal["standard", "portfolio"]


class LoginBody(_Body):
    account: UInt
    timestamp_ms: UInt
    signature: Optional[str] = None


BODIES = {"order": OrderBody, "cancel": CancelBody, "replace": ReplaceBody, "withdraw": WithdrawBody,
          "transfer": TransferBody, "account-flags": AccountFlagsBody, "margin-mode": MarginModeBody,
          "login": LoginBody}


def parse_signature(sig: str | None) -> bytes:
    if sig is None:
        raise ApiError(ApiCode.BAD_REQUEST, "signature is required: 0x followed by 130 hex digits (r||s||v)")
    text = sig[2:] if sig.startswith(("0x", "0X")) else sig
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 65:
        raise ApiError(ErrorCode.BAD_SIGNATURE, "signature must be 0x followed by 130 hex digits (65 bytes r||s||v)")
    return raw


def parse_address(text: str | None, field: str = "address") -> bytes:
    raw = b""
    if isinstance(text, str) and text.startswith(("0x", "0X")) and len(text) == 42:
        try:
            raw = bytes.fromhex(text[2:])
        except ValueError:
            raw = b""
    if len(raw) != 20:
        raise ApiError(ApiCode.BAD_REQUEST, f"{field} must be 0x followed by 40 hex digits")
    return raw


def _spec(node, symbol: str | None):
    inst = node.symbols.get(symbol or "")
    if inst is None:
        raise ApiError(ErrorCode.UNKNOWN_INSTRUMENT, f"unknown symbol {symbol!r}: see GET /api/v1/instruments")
    return node.specs[inst]


def _order_spec(node, order_id: int):
    """The instrument of an open order (for a Replace's price and size grid)."""
    o = node.state.orders.get(order_id)  # a dict read; the spec of a live order never changes
    if o is None:
        raise ApiError(ErrorCode.UNKNOWN_ORDER, f"order {order_id} is not open")
    return node.specs[o.instrument]


def to_tx(kind: str, body, node):
    """The core transaction a body describes (``time_ms`` 0: the sequencer stamps it)."""
    account = parse_uint(body.account, "account", 32)
    nonce = parse_uint(body.nonce, "nonce")
    if kind == "order":
        spec = _spec(node, body.symbol)
        flags = (1 if body.post_only else 0) | (2 if body.reduce_only else 0)
        return Order(0, account, spec.id, ENUMS["side"][body.side], ENUMS["type"][body.type], ENUMS["tif"][body.tif],
                     flags, ENUMS["stp"][body.stp], price_to_ticks(body.price, spec.tick_size),
                     size_to_lots(body.size, spec.lot_size), parse_uint(body.expiry_ms, "expiry_ms"),
                     parse_uint(body.client_id, "client_id"), nonce)
    if kind == "cancel":
        scope = ENUMS["scope"][body.scope]
        instrument = _spec(node, body.symbol).id if body.scope == "instrument" else 0
        order_id = parse_uint(body.order_id, "order_id") if body.scope == "order_id" else 0
        client_id = parse_uint(body.client_id, "client_id") if body.scope == "client_id" else 0
        return Cancel(0, account, scope, instrument, order_id, client_id, nonce)
    if kind == "replace":
        order_id = parse_uint(body.order_id, "order_id")
        spec = _order_spec(node, order_id)
        return Replace(0, account, order_id, price_to_ticks(body.price, spec.tick_size),
                       size_to_lots(body.size, spec.lot_size), nonce)
    if kind == "withdraw":
        return Withdraw(0, account, amount_to_usd6(body.amount), nonce)
    if kind == "transfer":
        return Transfer(0, account, parse_uint(body.to_subaccount, "to_subaccount", 32), amount_to_usd6(body.amount),
                        nonce)
    if kind == "account-flags":
        if not (0 <= body.flags <= 255):
            raise ApiError(ApiCode.OUT_OF_RANGE, "flags must be a uint8")
        return SetAccountFlags(0, account, body.flags, nonce)
    if kind == "margin-mode":
        return SetMarginMode(0, account, ENUMS["margin_mode"][body.mode], nonce)
    raise ApiError(ApiCode.NOT_FOUND, f"unknown kind {kind}")


def typed_data(node, tx) -> dict:
    return eip712.typed_data(node.state.domain, tx)
