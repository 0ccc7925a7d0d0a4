"""Typed errors with stable codes.

``Rejected`` is the *only* way the core says "this transaction is invalid": it carries a
stable numeric code and name, and the state is left untouched. ``InvariantBroken`` means
the core itself is wrong: the node must halt (rule 7 of DESIGN.md: rejected != crashed).
Codes are part of the public API and of the L1 fraud-proof rules: never renumber.
"""

from enum import IntEnum


class ErrorCode(IntEnum):
    # encoding / envelope
    MALFORMED = 1
    UNKNOWN_TX_KIND = 2
    TIME_WENT_BACKWARDS = 3
    # signatures
    BAD_SIGNATURE = 10
    HIGH_S_SIGNATURE = 11
    WRONG_SIGNER = 12
    # accounts
    UNKNOWN_ACCOUNT = 20
    BAD_NONCE = 21
    INSUFFICIENT_COLLATERAL = 22
    INSUFFICIENT_MARGIN = 23
    NOT_ACCOUNT_OWNER = 24
    SAME_ACCOUNT = 25
    ZERO_AMOUNT = 26
    TOO_MANY_POSITIONS = 27
    INVALID_MARGIN_MODE = 28
    INVALID_ACCOUNT_FLAGS = 29
    # instruments
    UNKNOWN_INSTRUMENT = 30
    INSTRUMENT_NOT_ACTIVE = 31
    NO_MARK_PRICE = 32
    INVALID_INSTRUMENT = 33
    UNKNOWN_UNDERLYING = 34
    UNKNOWN_EXPIRY = 35
    # orders
    INVALID_PRICE = 40
    INVALID_SIZE = 41
    INVALID_ORDER_TYPE = 42
    INVALID_TIME_IN_FORCE = 43
    ORDER_EXPIRED = 44
    POST_ONLY_WOULD_CROSS = 45
    FOK_NOT_FILLABLE = 46
    REDUCE_ONLY_WOULD_INCREASE = 47
    UNKNOWN_ORDER = 48
    DUPLICATE_CLIENT_ID = 49
    INVALID_STP_MODE = 50
    INVALID_FLAGS = 51
    NOT_ORDER_OWNER = 52
    INVALID_CANCEL_SCOPE = 53
    TOO_MANY_OPEN_ORDERS = 54
    # L1 queue
    QUEUE_OUT_OF_ORDER = 60
    # operator
    NOT_OPERATOR = 70
    STALE_MARK = 71
    ORACLE_REJECTED = 72
    NOT_DUE = 73
    NOT_LIQUIDATABLE = 74
    LIQUIDATIONS_PAUSED = 75
    NOT_EXPIRED = 76
    UNKNOWN_ACTION = 77
    NO_INDEX = 78
    NOT_CONFIGURED = 79
    # 80-89 belong to clearline.oracle.aggregate.OracleErrorCode
    # account permissions
    NOT_OPTED_IN = 90  # the account has not allowed the operator to cancel its orders
    # capacity
    TOO_MANY_ACCOUNTS = 91  # the account space (MAX_ACCOUNTS) is full: no new account
    # funding
    FUNDING_IN_PROGRESS = 92  # holders are being paid (funding or an option's settlement): only those steps until done
    ORDER_IDS_EXHAUSTED = 93  # every order id below 2**48 (the orders tree's width) has been used
    # orders matched step by step (an L1 replay; the node matches an order at once)
    ORDER_MATCHING = 94  # an order is matching: only its MatchSteps until it rests or closes
    NO_ORDER_MATCHING = 95  # a MatchStep with no order matching, or at another time than the order's


class Rejected(Exception):
    """A transaction is invalid. State is unchanged. ``code`` is stable."""

    def __init__(self, code: ErrorCode, message: str = ""):
        super().__init__(f"{code.name}: {message}" if message else code.name)
        self.code = code
        self.message = message or code.name


class InvariantBroken(Exception):
    """The core reached a state its rules forbid. Halt the node; never catch-and-continue."""
