"""Pure state transition function. No I/O, no clock, no randomness, no floats.

Determinism assumptions (kept true by every module in this package):
- all amounts are ``int``; every division names its rounding (see ``units``);
- time arrives inside transactions (``Tx.time_ms``), never read from a clock;
- iteration is only over ordered containers (lists, insertion-ordered dicts whose
  insertion order is itself determined by the log, or explicitly sorted keys).
"""

from .apply import Receipt, apply, recover_signer
from .errors import ErrorCode, InvariantBroken, Rejected
from .state import Genesis, State
from .txs import Cancel, Deposit, MarkUpdate, Order, Replace, Transfer, Withdraw

__all__ = [
    "Cancel",
    "Deposit",
    "ErrorCode",
    "Genesis",
    "InvariantBroken",
    "MarkUpdate",
    "Order",
    "Receipt",
    "Rejected",
    "Replace",
    "State",
    "Transfer",
    "Withdraw",
    "apply",
    "recover_signer",
]
