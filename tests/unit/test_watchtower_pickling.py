"""The watchtower's workers pickle transactions as ``(class, field values)``
(``clearline.watchtower.verify._reduce_tx``): every transaction kind comes back equal, field
for field, ``signer`` included. (tests/watchtower runs verification in process mode.)"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
from multiprocessing.reduction import ForkingPickler

import pytest

from clearline.core import txs as txs_mod
from clearline.oracle.report import PriceReport

vmod = importlib.import_module("clearline.watchtower.verify")  # the module (the package exports a function)


class _Pickler(ForkingPickler):
    _extra_reducers: dict = {}  # its own table: this process's ForkingPickler stays as it is


vmod._register_tx_reducers(_Pickler)


def _sample(cls, k: int):
    values = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        if f.name == "signature":
            values[f.name] = bytes([k + 1]) * 64 + b"\x1b"
        elif f.name == "signer":
            values[f.name] = bytes([k + 2]) * 20
        elif f.name == "owner":
            values[f.name] = bytes([k + 3]) * 20
        elif f.name == "reports":
            values[f.name] = [PriceReport(0, 10 ** 9, 1_700_000_000_000, 1, b"\x05" * 64 + b"\x1c")]
        elif f.name == "risk_arrays":
            values[f.name] = [[-(1 << 63)] + [s - 7 for s in range(15)]]
        elif f.default_factory is not dataclasses.MISSING:
            values[f.name] = [i, k, (1 << 64) - 1]
        else:
            values[f.name] = (1 << (8 * (i % 8) + 7)) + k
    return cls(**values)


@pytest.mark.parametrize("cls", vmod._TX_CLASSES, ids=lambda c: c.__name__)
def test_transactions_come_back_equal(cls):
    txs = [_sample(cls, k) for k in range(3)]
    if "signer" in {f.name for f in dataclasses.fields(cls)}:
        txs[1].signer = None  # a signature that did not recover
    blob = bytes(_Pickler.dumps(txs))
    back = pickle.loads(blob)
    assert back == txs
    assert [type(t) for t in back] == [cls] * 3
    for a, b in zip(back, txs):
        assert all(getattr(a, f.name) == getattr(b, f.name) for f in dataclasses.fields(cls))
    assert blob != bytes(ForkingPickler.dumps(txs))  # the reducer was used, not the default


def test_every_transaction_kind_is_covered():
    kinds = {v for v in vars(txs_mod).values() if isinstance(v, type) and dataclasses.is_dataclass(v)
             and hasattr(v, "KIND")}
    assert kinds and kinds <= set(vmod._TX_CLASSES)
    assert all(c in _Pickler._extra_reducers for c in kinds)
