"""A whole rollup (``clearline.batcher.harness``: real contracts, real signatures, Vault
deposits) whose batcher can be swapped for ``clearline.sequencer.faults.FaultyBatcher``."""

from __future__ import annotations

from dataclasses import dataclass

from clearline.batcher.harness import SimRollup, make_sim_rollup
from clearline.core.units import USD6
from clearline.l1.chain import Chain
from clearline.l1.client import L1Client
from clearline.sequencer.faults import FaultyBatcher

CHALLENGE = 100
DEADLINE = 1_000


@dataclass
class Scenario:
    r: SimRollup
    challenger: L1Client
    finalized: int  # batch finalized before the fault


def scenario(chain: Chain, fault: str | None, *, later_batch: bool = True) -> Scenario:
    """Batch 1 (the traders' first deposits, new accounts) is posted and finalized; then
    some trading and a second deposit of every trader; batch 2 carries ``fault`` (honest if
    None) and, with ``later_batch``, a batch 3 follows."""
    r = make_sim_rollup(chain, makers=1, takers=1, leveraged=1, challenge_period=CHALLENGE,
                        forced_deadline=DEADLINE, max_delay_ms=10**9)
    r.batcher.flush()
    chain.advance_time(CHALLENGE)
    r.client.finalize_ready()
    r.step(6)
    r.batcher.flush()  # batch 2: trading (honest)
    for name, u in list(r.users.items())[:3]:
        u.mint(u.address, 100 * USD6)
        u.deposit(0, (7 + len(name)) * USD6)
    r.feed()
    if fault is not None:
        r.batcher = FaultyBatcher(r.journal, r.client, r.genesis, fault=fault, **r.batcher_kw)
    r.batcher.flush()  # batch 3: the deposits (doctored when fault)
    if later_batch:
        r.step(4)
        r.batcher.flush()
    challenger = r.client.with_sender(chain.accounts[-1])
    return Scenario(r, challenger, 1)
