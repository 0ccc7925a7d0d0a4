"""``fraud_proof_gas_max``: the gas of proveFraud for every implemented proof kind, each
against the fault it proves (the deposit re-execution over a full chunk of 16 deposits, the
re-execution of a 58-instrument MarkUpdate with its oracle rounds), under
the 3,000,000 target of issue 6."""

from __future__ import annotations

from clearline.batcher.harness import measure_fraud_gas
from clearline.sequencer.faults import PROVABLE_FAULTS

FRAUD_PROOF_GAS_TARGET = 3_000_000


def test_fraud_proof_gas_per_kind_under_target():
    g = measure_fraud_gas()
    print("\n" + "\n".join(f"{k}: {v:,}" for k, v in g["fraud_proof_gas_by_fault"].items()))
    assert {k.split("/")[0] for k in g["fraud_proof_gas_by_fault"]} == {f.value for f in PROVABLE_FAULTS}
    assert {k.split("/")[1] for k in g["fraud_proof_gas_by_fault"]} == {
        "framing", "chunk_decode", "queue_item", "queue_end", "collateral_root", "mark_update", "operator_action",
        "withdrawals", "nonces", "signature", "order"}
    assert g["fraud_proof_gas_max"] == max(g["fraud_proof_gas_by_fault"].values())
    assert 0 < g["fraud_proof_gas_max"] <= FRAUD_PROOF_GAS_TARGET, g
    assert g["fraud_commit_gas"] < 60_000
