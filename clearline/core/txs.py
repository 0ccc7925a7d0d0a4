"""Transaction types: the only way state changes (DESIGN.md rule 4).

Every transaction carries ``time_ms``, stamped by the sequencer when it orders the input;
the core only requires it never to go backwards. User-signed transactions also carry the
65-byte signature (r, s, v) over their EIP-712 struct (see ``eip712``) and ``signer``, the
address recovered from it by the sequencer's parallel verifier. ``signer`` is derived data:
it is stored in the journal to make local replay fast, but it is not part of the canonical
encoding, and anyone replaying from L1 data recovers it again.

Field widths are the Solidity types used in the ABI encoding and the EIP-712 structs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class TxKind(IntEnum):
    DEPOSIT = 1
    ORDER = 2
    CANCEL = 3
    REPLACE = 4
    WITHDRAW = 5
    TRANSFER = 6
    MARK_UPDATE = 7


class Side(IntEnum):
    BUY = 0
    SELL = 1


class OrderType(IntEnum):
    LIMIT = 0
    MARKET = 1  # ``price`` is the protective bound; must be IOC or FOK


class TimeInForce(IntEnum):
    GTC = 0  # good till cancelled
    GTT = 1  # good till ``expiry`` (ms); required non-zero
    IOC = 2  # immediate or cancel
    FOK = 3  # fill completely at once, or reject


class OrderFlag(IntEnum):
    POST_ONLY = 1  # reject if it would cross
    REDUCE_ONLY = 2  # may only reduce the account's position


ALL_FLAGS = OrderFlag.POST_ONLY | OrderFlag.REDUCE_ONLY


class SelfTradePrevention(IntEnum):
    """What happens when an order would trade against an order of the same owner."""

    CANCEL_RESTING = 0
    CANCEL_INCOMING = 1
    CANCEL_BOTH = 2


class CancelScope(IntEnum):
    BY_ORDER_ID = 0
    BY_CLIENT_ID = 1
    ALL_IN_INSTRUMENT = 2
    ALL = 3


@dataclass(slots=True)
class Deposit:
    """L1-originated: the next item of the Vault's deposit queue."""

    time_ms: int
    queue_index: int  # uint64, must equal state.l1_queue_pos
    owner: bytes  # address (20 bytes)
    subaccount: int  # uint32
    amount: int  # uint64 usd6
    KIND = TxKind.DEPOSIT


@dataclass(slots=True)
class Order:
    time_ms: int
    account: int  # uint32
    instrument: int  # uint32
    side: int  # uint8 Side
    order_type: int  # uint8 OrderType
    tif: int  # uint8 TimeInForce
    flags: int  # uint8 OrderFlag bits
    stp: int  # uint8 SelfTradePrevention
    price: int  # uint64 ticks (limit, or protective bound for market orders)
    size: int  # uint64 lots
    expiry: int  # uint64 ms; 0 = none. Required for GTT; always enforced when set
    client_id: int  # uint64; 0 = none
    nonce: int  # uint64, strictly greater than the account's last nonce
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.ORDER


@dataclass(slots=True)
class Cancel:
    time_ms: int
    account: int  # uint32
    scope: int  # uint8 CancelScope
    instrument: int  # uint32 (scope ALL_IN_INSTRUMENT)
    order_id: int  # uint64 (scope BY_ORDER_ID)
    client_id: int  # uint64 (scope BY_CLIENT_ID)
    nonce: int  # uint64
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.CANCEL


@dataclass(slots=True)
class Replace:
    """Cancel/replace. Keeps time priority only if the price is unchanged and the
    remaining size decreases; otherwise the order loses priority (new order id)."""

    time_ms: int
    account: int  # uint32
    order_id: int  # uint64
    price: int  # uint64 ticks
    size: int  # uint64 lots: the new remaining size
    nonce: int  # uint64
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.REPLACE


@dataclass(slots=True)
class Withdraw:
    """Request to pay ``amount`` to the account owner on L1 (from free collateral)."""

    time_ms: int
    account: int  # uint32
    amount: int  # uint64 usd6
    nonce: int  # uint64
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.WITHDRAW


@dataclass(slots=True)
class Transfer:
    """Move collateral to another subaccount of the same owner (created if new)."""

    time_ms: int
    account: int  # uint32
    to_subaccount: int  # uint32
    amount: int  # uint64 usd6
    nonce: int  # uint64
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.TRANSFER


@dataclass(slots=True)
class MarkUpdate:
    """Operator-signed mark prices. ``timestamp`` (ms) is signed and must be <= time_ms and
    newer than each market's previous mark."""

    time_ms: int
    timestamp: int  # uint64 ms
    instruments: list[int] = field(default_factory=list)  # uint32[]
    prices: list[int] = field(default_factory=list)  # uint64[] ticks
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.MARK_UPDATE


Tx = Deposit | Order | Cancel | Replace | Withdraw | Transfer | MarkUpdate
SIGNED_KINDS = (Order, Cancel, Replace, Withdraw, Transfer, MarkUpdate)
TX_CLASSES = {cls.KIND: cls for cls in (Deposit, Order, Cancel, Replace, Withdraw, Transfer, MarkUpdate)}
