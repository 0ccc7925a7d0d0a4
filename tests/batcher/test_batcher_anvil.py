"""The whole flow on a real JSON-RPC node (the npm-pinned anvil on 127.0.0.1): Vault
deposits fed to the sequencer, signed trading, batches, a dropped append posted again once,
a forced withdrawal served within its deadline, finalization, claims paid once, and the
watchtower command on the node's URL (honest chain, then one tampered root)."""

from __future__ import annotations

import json

import pytest

from clearline.core.hashing import keccak
from clearline.core.units import USD6
from clearline.l1.client import L1Revert
from clearline.watchtower.verify import main as verify_main
from anvil_env import anvil  # noqa: F401  (pytest finds fixtures by name)
from rollup_env import make_rollup

CHALLENGE = 100
DEADLINE = 1_000


def test_rollup_end_to_end_on_anvil(anvil, capsys):
    chain = anvil.chain()
    r = make_rollup(chain, makers=1, takers=1, leveraged=0, challenge_period=CHALLENGE, forced_deadline=DEADLINE,
                    max_delay_ms=10**9)
    r.step(10)
    assert r.withdraw("taker0", 500 * USD6).receipt.ok
    posted = r.batcher.flush()
    # an append that the node drops is posted again: same number, same entries, once
    snap = chain.snapshot()
    r.step(4)
    lost = r.batcher.flush()
    chain.revert_to(snap)
    r.step(2)
    again = r.batcher.flush()
    assert (again[0].number, again[0].first_seq) == (lost[0].number, lost[0].first_seq) == (
        posted[-1].number + 1, posted[-1].last_seq + 1)
    assert r.batch_payloads() == r.journal_payloads()

    # a forced withdrawal filed on L1, fed to the sequencer, committed before its deadline
    t, u = r.trader("opttaker"), r.user("opttaker")
    on_l1 = u.token_balance()
    u.request_forced_withdrawal(t.account, 1_000 * USD6)
    (ack,) = r.feed()
    assert [e.kind for e in ack.receipt.events] == ["forced_withdraw"]
    chain.advance_time(DEADLINE // 2 + 10)
    forced = r.batcher.post_pending(r.now_ms)
    assert forced.reason == "deadline" and forced.n_withdrawals == 1

    chain.advance_time(CHALLENGE)
    assert r.batcher.finalize_ready() == list(range(1, forced.number + 1))
    (c,) = r.batcher.claims(forced.number, owner=t.address)
    u.claim_withdrawal(c.header, c.index, c.record, c.siblings)
    assert u.token_balance() == on_l1 + 1_000 * USD6
    taker, tu = r.trader("taker0"), r.user("taker0")
    (wb,) = [p for p in posted + again if p.n_withdrawals]
    (c,) = r.batcher.claims(wb.number, owner=taker.address)
    before = tu.token_balance()
    tu.claim_withdrawal(c.header, c.index, c.record, c.siblings)
    with pytest.raises(L1Revert) as e:
        tu.claim_withdrawal(c.header, c.index, c.record, c.siblings)
    assert e.value.error == "AlreadyClaimed" and tu.token_balance() == before + 500 * USD6

    # the watchtower, from the node's URL alone
    capsys.readouterr()
    assert verify_main(["--rpc", anvil.url, "--rollup", r.deployment.rollup, "--progress", "none"]) == 0
    assert capsys.readouterr().out.startswith(f"OK: verified {forced.number} batches")
    r.step(3)
    plan = r.new_batcher(txs_per_root=1).build()
    honest = plan.state_roots[2]
    plan.state_roots[2] = keccak(b"tampered")
    r.client.append_batch(plan.data, plan.state_roots, **plan.append_args())
    assert verify_main(["--rpc", anvil.url, "--rollup", r.deployment.rollup, "--progress", "none", "--json"]) == 1
    m = json.loads(capsys.readouterr().out)["mismatch"]
    assert (m["kind"], m["batch"], m["tx_index"]) == ("state_root", plan.number, 2)
    assert (m["expected"], m["committed"]) == ("0x" + honest.hex(), "0x" + keccak(b"tampered").hex())
    assert verify_main(["--rpc", anvil.url, "--rollup", "0x" + "00" * 20, "--progress", "none"]) == 2
