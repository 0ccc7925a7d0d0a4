"""``fraud_proof_gas_max``: the gas of proveFraud for every implemented proof kind, each
against the fault of that kind whose proof is the largest (``FRAUD_GAS_FAULTS_PER_KIND``, as
``clearline bench`` measures it: the deposit re-execution over a full chunk of 16 deposits, the
re-execution of a 58-instrument MarkUpdate with its oracle rounds), under the 3,000,000 target
of issue 6. Every other provable fault's proof is held to the same target where it is proven
(``test_dispute.py``)."""

from __future__ import annotations

from clearline.batcher.harness import FRAUD_GAS_FAULTS_PER_KIND, measure_fraud_gas
from clearline.sequencer.faults import PROVABLE_FAULTS

FRAUD_PROOF_GAS_TARGET = 3_000_000


def test_fraud_proof_gas_per_kind_under_target():
    assert set(FRAUD_GAS_FAULTS_PER_KIND) <= {f.value for f in PROVABLE_FAULTS}
    g = measure_fraud_gas(faults=FRAUD_GAS_FAULTS_PER_KIND)
    print("\n" + "\n".join(f"{k}: {v:,}" for k, v in g["fraud_proof_gas_by_fault"].items()))
    assert {k.split("/")[0] for k in g["fraud_proof_gas_by_fault"]} == set(FRAUD_GAS_FAULTS_PER_KIND)
    assert {k.split("/")[1] for k in g["fraud_proof_gas_by_fault"]} == {
        "framing", "chunk_decode", "queue_item", "queue_end", "collateral_root", "mark_update", "operator_action",
        "withdrawals", "nonces", "signature", "order", "match_step"}
    assert g["fraud_proof_gas_max"] == max(g["fraud_proof_gas_by_fault"].values())
    assert 0 < g["fraud_proof_gas_max"] <= FRAUD_PROOF_GAS_TARGET, g
    assert g["fraud_commit_gas"] < 60_000
