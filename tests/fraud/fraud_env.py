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
