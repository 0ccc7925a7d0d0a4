"""Oracle reporters recovered ahead of ``apply`` (``recover_reporters_ahead``, as the
watchtower's workers do): ``apply(state, tx, reporters)`` gives exactly the receipt and root of
``apply(state, tx)``, and a value recovered from other bytes, another position or another
domain is never used (the report is recovered again)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

_TESTS = Path(__file__).resolve().parents[1]
if str(_TESTS) not in sys.path:
    sys.path.insert(0, str(_TESTS))

from helpers import E  # noqa: E402
from issue3_helpers import BTC_INDEX, BTC_U, ETH_INDEX, ETH_U, USD, Ex3  # noqa: E402

from clearline.core.apply import apply  # noqa: E402
from clearline.core.eip712 import Domain  # noqa: E402
from clearline.core.txs import MarkUpdate  # noqa: E402
from clearline.oracle import report as report_mod  # noqa: E402
from clearline.oracle.report import PriceReport, RecoveredReporters, recover_reporters_ahead  # noqa: E402

T = 1_700_000_000_000


def _pair():
    """Two exchanges in the same state, and a MarkUpdate (signed reports) for the next step."""
    a, b = Ex3(), Ex3()
    for x in (a, b):
        x.ok(x.mark_update(index={BTC_U: BTC_INDEX, ETH_U: ETH_INDEX}, time=T))
    t = T + 1_000
    reps = a.reports(BTC_U, [10_100 * USD, 10_050 * USD, 10_000 * USD], ts=t) + a.reports(ETH_U, ETH_INDEX, ts=t)
    return a, b, t, reps


def _tx(st, t, reps) -> MarkUpdate:
    tx = MarkUpdate(t, t, [], [], [], list(reps))
    tx.signer = st.operator
    return tx


def _outcome(ex, r):
    return (r.ok, r.code, r.message, [repr(e) for e in r.events], ex.state.root())


def test_recovered_ahead_is_used_and_gives_the_same_result(monkeypatch):
    a, b, t, reps = _pair()
    rr = recover_reporters_ahead(a.state.domain, reps)
    assert all(s is not None for s in rr.signers)
    want = _outcome(a, apply(a.state, _tx(a.state, t, reps)))
    calls = []
    real = report_mod.recover_reporter
    monkeypatch.setattr(report_mod, "recover_reporter", lambda d, r: calls.append(r) or real(d, r))
    got = _outcome(b, apply(b.state, _tx(b.state, t, reps), rr))
    assert got == want and want[0]
    assert calls == []  # nothing recovered again


@pytest.mark.parametrize("spoil", ["other_domain", "other_report", "shifted", "short", "none"])
def test_values_not_recovered_from_the_same_bytes_are_not_used(spoil, monkeypatch):
    a, b, t, reps = _pair()
    dom = a.state.domain
    rr = recover_reporters_ahead(dom, reps)
    stranger = b"\x99" * 20
    if spoil == "other_domain":  # a forged signer list under another deployment's domain
        bad = RecoveredReporters(Domain(dom.chain_id + 1, dom.verifying_contract).separator, rr.reports,
                                 (stranger,) * len(reps))
    elif spoil == "other_report":  # same position, a report that differs only in price
        other = tuple(PriceReport(r.asset, r.price + 1, r.timestamp, r.round, r.signature) for r in reps)
        bad = RecoveredReporters(rr.separator, other, (stranger,) * len(reps))
    elif spoil == "shifted":  # the right values at the wrong positions
        bad = RecoveredReporters(rr.separator, rr.reports[1:] + rr.reports[:1], (stranger,) * len(reps))
    elif spoil == "short":
        bad = RecoveredReporters(rr.separator, (), ())
    else:
        bad = RecoveredReporters(rr.separator, rr.reports, (None,) * len(reps))
    want = _outcome(a, apply(a.state, _tx(a.state, t, reps)))
    got = _outcome(b, apply(b.state, _tx(b.state, t, reps), bad))
    assert got == want and want[0]


def test_a_bad_signature_still_rejects_with_the_exact_error():
    a, b, t, reps = _pair()
    reps[1] = PriceReport(reps[1].asset, reps[1].price, reps[1].timestamp, reps[1].round,
                          reps[1].signature[:64] + bytes([29]))
    rr = recover_reporters_ahead(a.state.domain, reps)
    assert rr.signers[1] is None and rr.signers[0] is not None
    root = b.state.root()
    want = apply(a.state, _tx(a.state, t, reps))
    got = apply(b.state, _tx(b.state, t, reps), rr)
    assert (got.ok, got.code, got.message) == (want.ok, want.code, want.message)
    assert got.code == E.BAD_SIGNATURE and b.state.root() == root == a.state.root()


def test_reporters_are_ignored_for_other_transactions():
    a, b, t, reps = _pair()
    rr = recover_reporters_ahead(a.state.domain, reps)
    tx = MarkUpdate(t, t, [], [], [], [])
    tx.signer = b.state.operator
    r = apply(b.state, tx, rr)  # nothing to update: rejected as without reporters
    assert (r.ok, r.code) == (False, E.MALFORMED)
