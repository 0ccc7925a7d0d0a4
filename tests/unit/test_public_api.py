"""The public API stays deliberately small: adding a name is a decision, so this test
must be edited together with it."""

import clearline.core
import clearline.journal
import clearline.sequencer


def test_core_exports_exactly_this():
    assert sorted(clearline.core.__all__) == sorted([
        "Cancel", "Deposit", "ErrorCode", "Genesis", "InvariantBroken", "MarkUpdate", "Order", "Receipt",
        "OperatorAction", "Rejected", "Replace", "SetAccountFlags", "SetMarginMode", "State", "Transfer", "Withdraw",
        "apply", "recover_signer",
    ])
    for name in clearline.core.__all__:
        assert getattr(clearline.core, name) is not None


def test_sequencer_exports_exactly_this():
    assert sorted(clearline.sequencer.__all__) == ["Ack", "Sequencer", "Verifier", "recover_state", "replay"]


def test_error_codes_are_stable():
    # codes are part of the API and of the fraud-proof rules: never renumber
    E = clearline.core.ErrorCode
    assert (E.MALFORMED, E.BAD_SIGNATURE, E.HIGH_S_SIGNATURE, E.BAD_NONCE, E.INSUFFICIENT_MARGIN,
            E.POST_ONLY_WOULD_CROSS, E.FOK_NOT_FILLABLE, E.QUEUE_OUT_OF_ORDER) == (1, 10, 11, 21, 23, 45, 46, 60)
    assert len({int(c) for c in E}) == len(E)
