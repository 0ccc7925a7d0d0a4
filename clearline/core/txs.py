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
    OPERATOR = 8
    SET_MARGIN_MODE = 9
    FORCED_WITHDRAWAL = 10
    SET_ACCOUNT_FLAGS = 11
    MATCH_STEP = 12


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
class ForcedWithdrawal:
    """L1-originated: a withdrawal the owner requested on L1 (the Vault's forced queue).

    It always consumes its queue item: it is served if ``owner`` owns ``account`` and the
    amount is within free collateral, and otherwise denied by that same rule (anyone can
    check it), with the reason in the receipt. Only an out-of-order item is rejected."""

    time_ms: int
    queue_index: int  # uint64, must equal state.l1_queue_pos
    owner: bytes  # address (20 bytes) that filed it on L1
    account: int  # uint32
    amount: int  # uint64 usd6
    KIND = TxKind.FORCED_WITHDRAWAL


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
    """Operator-signed marks, risk arrays and the oracle reports behind the index.

    At most ``MAX_MARK_INSTRUMENTS`` instruments and ``MAX_MARK_REPORTS`` reports: the work of
    one transaction is bounded so that L1 can always re-execute it within one fraud proof (the
    operator marks more instruments with several MarkUpdates).

    ``timestamp`` (ms) is signed and must be <= time_ms and newer than each listed market's
    previous mark. ``reports`` are ``clearline.oracle.PriceReport`` objects, each signed by
    its reporter; the core recovers them and recomputes the median index itself, so anyone
    can check it. ``risk_arrays`` is empty (marks only) or holds one array of
    ``N_SCENARIOS`` (16) int64 values per entry of ``instruments``: usd6 P&L per long lot.
    """

    time_ms: int
    timestamp: int  # uint64 ms
    instruments: list[int] = field(default_factory=list)  # uint32[]
    prices: list[int] = field(default_factory=list)  # uint64[] ticks
    risk_arrays: list[list[int]] = field(default_factory=list)  # int64[16] per instrument, or empty
    reports: list = field(default_factory=list)  # PriceReport[]
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.MARK_UPDATE


MAX_MARK_INSTRUMENTS = 48  # per MarkUpdate: its worst-case proof stays under 3M gas (docs/fraud-proofs.md)
MAX_MARK_REPORTS = 16  # per MarkUpdate


class OperatorActionKind(IntEnum):
    FUNDING_TICK = 1  # target, arg unused (0): start funding intervals, sample premiums
    LIQUIDATE = 2  # target = account id
    SETTLE_OPTION = 3  # target = option id (expired): fix its settlement price, delist it, its holders to pay
    LIST_OPTIONS = 4  # target = underlying id: list/delist options by the listing rule
    CANCEL_ALL_ORDERS = 5  # target = account id, arg = CancelTrigger: needs the account's opt-in flag
    EXPIRE_ORDERS = 6  # retired (unbounded; rejected UNKNOWN_ACTION): CLOSE_ORDER closes each expired order
    FUNDING_SETTLE = 7  # target = perpetual id: end its funding interval (rate, funding index)
    FUNDING_PAY = 8  # target = perpetual id, arg = account id: pay that holder's funding of the settlement
    SETTLE_POSITION = 9  # target = settled option id, arg = account id: close that holder's position at its value
    CLOSE_ORDER = 10  # target = order id: close a resting order of a delisted market or past its own expiry


class CancelTrigger(IntEnum):
    """Why the node cancelled an opted-in account's orders (``OperatorAction.arg`` of
    CANCEL_ALL_ORDERS): recorded in the log, not interpreted by the core."""

    DISCONNECT = 1  # cancel-on-disconnect: the account's session closed
    DEAD_MAN = 2  # dead-man switch: no heartbeat within the account's timeout


@dataclass(slots=True)
class OperatorAction:
    """Operator-signed housekeeping whose effects are fully determined by the rules and the
    state: the core re-checks every precondition (e.g. the account really is below
    maintenance margin) and rejects the action otherwise."""

    time_ms: int
    action: int  # uint8 OperatorActionKind
    target: int  # uint32
    arg: int  # uint64
    timestamp: int  # uint64 ms, signed; must be <= time_ms
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.OPERATOR


class MarginMode(IntEnum):
    STANDARD = 0  # per position: perps by fraction, options by the exchange formula
    PORTFOLIO = 1  # worst scenario of the risk arrays plus add-ons


@dataclass(slots=True)
class SetMarginMode:
    time_ms: int
    account: int  # uint32
    mode: int  # uint8 MarginMode
    nonce: int  # uint64
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.SET_MARGIN_MODE


class AccountFlag(IntEnum):
    """Bits of an account's ``flags`` (committed in the account leaf)."""

    OPERATOR_MAY_CANCEL = 1  # the operator may cancel all resting orders (cancel-on-disconnect, dead-man)


ALL_ACCOUNT_FLAGS = AccountFlag.OPERATOR_MAY_CANCEL


@dataclass(slots=True)
class SetAccountFlags:
    """Replace the account's flags (``AccountFlag`` bits). Setting OPERATOR_MAY_CANCEL is the
    owner's signed opt-in to node-enforced cancels: the node cannot sign a Cancel for the
    user, so it sends an ``OperatorAction`` CANCEL_ALL_ORDERS that the core accepts only then."""

    time_ms: int
    account: int  # uint32
    flags: int  # uint8 AccountFlag bits
    nonce: int  # uint64
    signature: bytes = b""
    signer: bytes | None = None
    KIND = TxKind.SET_ACCOUNT_FLAGS


Tx = (Deposit | Order | Cancel | Replace | Withdraw | Transfer | MarkUpdate | OperatorAction | SetMarginMode
      | ForcedWithdrawal | SetAccountFlags)
SIGNED_KINDS = (Order, Cancel, Replace, Withdraw, Transfer, MarkUpdate, OperatorAction, SetMarginMode,
                SetAccountFlags)
TX_CLASSES = {cls.KIND: cls for cls in (Deposit, Order, Cancel, Replace, Withdraw, Transfer, MarkUpdate,
                                        OperatorAction, SetMarginMode, ForcedWithdrawal, SetAccountFlags)}


@dataclass(slots=True)
class MatchStep:
    """One meeting of the order being matched step by step with the book (``clearline.core.order_steps``):
    unsigned, since what it does follows from the state alone. Only an L1 replay in step mode
    (``apply(..., stepwise=True)``) sees these; ``time_ms`` is the order's own time."""

    time_ms: int
    KIND = TxKind.MATCH_STEP

