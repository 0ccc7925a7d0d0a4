"""The faulty rollup scenario of ``clearline.sequencer.faults.faulty_rollup``, shaped for the
fraud tests (``s.r`` the SimRollup, ``s.challenger`` the challenger's L1Client)."""

from __future__ import annotations

from dataclasses import dataclass

from clearline.batcher.harness import SimRollup
from clearline.l1.chain import Chain
from clearline.l1.client import L1Client
from clearline.sequencer.faults import fault_scenario, faulty_rollup

CHALLENGE = 100
DEADLINE = 1_000


@dataclass
class Scenario:
    r: SimRollup
    challenger: L1Client
    finalized: int  # batch finalized before the fault


def scenario(chain: Chain, fault: str | None, *, later_batch: bool = True, deposits: int = 3) -> Scenario:
    if fault is not None:
        f = fault_scenario(chain, fault, later_batch=later_batch, deposits=deposits, challenge_period=CHALLENGE,
                           forced_deadline=DEADLINE)
    else:
        f = faulty_rollup(chain, fault, later_batch=later_batch, deposits=deposits, challenge_period=CHALLENGE,
                          forced_deadline=DEADLINE)
    return Scenario(f.rollup, f.challenger, f.finalized)


# ------------------------------------------------------- operator-transaction proof tests
def operator_env(chain: Chain, steps: int = 40):
    """The simulated market after ``steps`` ticks on ``chain`` (12 funded accounts), with its
    Rollup and MarkVerifier contracts: ``(r, rollup, mark)``."""
    from clearline.batcher.harness import make_sim_rollup
    from clearline.l1.deploy import contract_abi

    r = make_sim_rollup(chain, makers=2, takers=2, leveraged=1)
    r.step(steps)
    rollup = chain.w3.eth.contract(address=r.deployment.rollup, abi=contract_abi("Rollup"))
    verifier = chain.w3.eth.contract(address=r.deployment.verifier, abi=contract_abi("FraudVerifier"))
    mark = chain.w3.eth.contract(address=verifier.functions.markVerifier().call(), abi=contract_abi("MarkVerifier"))
    return r, rollup, mark


def replay_journal(r):
    """``(state, tx)`` for every journal entry of ``r``, replayed honestly from genesis (the
    state is the live one just before ``tx``: copy it to keep it); signers recovered."""
    from clearline.core.apply import apply, recover_signer
    from clearline.core.encoding import decode_tx
    from clearline.core.errors import Rejected
    from clearline.core.state import State

    st = State(r.genesis)
    for e in r.journal.entries():
        tx = decode_tx(e.payload)
        try:
            recover_signer(st, tx)
        except Rejected:
            tx.signer = None
        yield st, tx
        apply(st, tx)


def singleton_chunk(tx) -> bytes:
    """The batch data v3 chunk holding ``tx`` alone."""
    from clearline.l1.batch_v3 import encode_batch_v3
    from clearline.l1.formats import batch_data_parts

    data = encode_batch_v3([tx], 16)
    _, parts = batch_data_parts(data)
    ((a, b),) = parts
    return data[a:b]
