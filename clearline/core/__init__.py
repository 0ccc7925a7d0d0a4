"""Pure state transition function. No I/O, no clock, no randomness, no floats.

Determinism assumptions (kept true by every module in this package):
- all amounts are ``int``; every division names its rounding (see ``units``);
- time arrives inside transactions (``Tx.time_ms``), never read from a clock;
- iteration is only over ordered containers (lists, insertion-ordered dicts whose
  insertion order is itself determined by the log, or explicitly sorted keys).
"""

# The public names are loaded on first use (PEP 562), so importing one core module (as the
# oracle does) never drags in the whole core and import cycles cannot form.
_EXPORTS = {
    "Receipt": "apply", "apply": "apply", "recover_signer": "apply",
    "ErrorCode": "errors", "InvariantBroken": "errors", "Rejected": "errors",
    "Genesis": "state", "State": "state",
    "Cancel": "txs", "Deposit": "txs", "MarkUpdate": "txs", "Order": "txs", "Replace": "txs",
    "Transfer": "txs", "Withdraw": "txs", "OperatorAction": "txs", "SetMarginMode": "txs",
    "SetAccountFlags": "txs",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'clearline.core' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = sorted(_EXPORTS)
