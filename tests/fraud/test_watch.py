"""``clearline watch``: on the in-process EVM (every fault through ``watch_once``) and the whole
flow once on a real anvil node through the command line: an honest chain is OK; a faulty
batch is found, proven with --challenge (commit, then reveal), the batch and the later one
are gone, the bond is split, the system is frozen, a second run sees the freeze, and
``clearline escape`` pays an account its equity at the last finalized state."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fraud_env import scenario  # noqa: E402

from clearline.cli import main as cli_main  # noqa: E402
from anvil_env import anvil  # noqa: E402, F401  (pytest finds fixtures by name)
from clearline.l1.chain import InProcessChain  # noqa: E402
from clearline.watchtower.escape import rebuild_finalized  # noqa: E402
from clearline.watchtower.watch import watch_once  # noqa: E402

EXPECTED = {
    "minted_collateral": "queue_item",
    "skipped_queue_item": "queue_item",
    "wrong_root": "collateral_root",
    "malformed_chunk": "chunk_decode",
    "forged_signature": "withdrawals",
    "replayed_signature": "nonces",
    "wrongful_liquidation": "collateral_root",
    "wrong_median": "mark_update",
    "unauthorized_cancel": "operator_action",
    "stolen_withdrawal": "withdrawals",
    "omitted_withdrawal": "withdrawals",
}


@pytest.fixture(scope="module")
def chain():
    return InProcessChain(n_accounts=10)


@pytest.mark.parametrize("fault", [None, *sorted(EXPECTED)])
def test_watch_once_in_process(chain, fault):
    snap = chain.snapshot()
    try:
        s = scenario(chain, fault)
        ch = s.challenger
        out = watch_once(_as_challenger(chain), s.r.deployment.rollup, challenge=True)
        if fault is None:
            assert out["status"] == "ok" and out["last_batch"] == 4
            assert not ch.frozen()
            return
        assert out["status"] == "proven" and out["batch"] == 3 and out["kind"] == EXPECTED[fault]
        assert out["frozen"] and ch.frozen() and ch.last_batch() == 2 and out["batches_reverted"] == 2
        assert watch_once(chain, s.r.deployment.rollup, challenge=True)["status"] == "frozen"
    finally:
        chain.revert_to(snap)


def _as_challenger(chain):
    """The same chain whose first account (the one watch_once sends from) is the challenger."""

    class _View:
        def __getattr__(self, name):
            return getattr(chain, name)

    v = _View()
    v.accounts = [chain.accounts[-1]]
    return v


def test_watch_command_proves_fraud_on_anvil(anvil, capsys):
    chain = anvil.chain()
    honest = chain.snapshot()
    s = scenario(chain, None)
    rollup = s.r.deployment.rollup
    assert cli_main(["watch", "--rpc", anvil.url, "--rollup", rollup, "--once"]) == 0
    assert "OK: batches 1..4" in capsys.readouterr().out
    chain.revert_to(honest)

    s = scenario(chain, "minted_collateral")
    rollup, seq = s.r.deployment.rollup, s.r.client
    key = "0x" + bytes(chain.accounts[-1].key).hex()
    challenger = chain.accounts[-1].address
    bond = seq.bond()
    # without --challenge: reported, nothing sent
    assert cli_main(["watch", "--rpc", anvil.url, "--rollup", rollup, "--once"]) == 1
    out = capsys.readouterr().out
    # transactions 0 and 1 are the forced withdrawals, each alone in its chunk; the minted deposit opens chunk 2
    assert "FRAUD at batch 3, chunk 2, transaction 2: queue_item / QUEUE_ITEM_MISMATCH" in out
    assert "not challenged" in out and not seq.frozen()
    before = seq.balance(challenger)
    assert cli_main(["watch", "--rpc", anvil.url, "--rollup", rollup, "--challenge", "--key", key, "--json"]) == 1
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["status"] == "proven" and res["batch"] == 3 and res["kind"] == "queue_item"
    assert res["reward_wei"] == bond // 2 and res["burnt_wei"] == bond - bond // 2 and res["frozen"]
    assert seq.frozen() and seq.last_batch() == 2 and seq.bond() == 0 and seq.balance(challenger) > before
    assert cli_main(["watch", "--rpc", anvil.url, "--rollup", rollup]) == 0
    assert "FROZEN" in capsys.readouterr().out
    # escape with the equity of the last finalized state (batch 1)
    fin = rebuild_finalized(chain, rollup)
    assert fin.batch == 1
    t = s.r.sim.traders[0]
    user = s.r.user(t.name)
    on_l1 = user.token_balance()
    assert cli_main(["escape", "--rpc", anvil.url, "--rollup", rollup, "--account", str(t.account),
                     "--key", key, "--json"]) == 0
    paid = json.loads(capsys.readouterr().out)
    assert paid["finalized_batch"] == 1 and paid["amount"] > 0
    assert user.token_balance() == on_l1 + paid["amount"]


def test_every_fault_is_proven_on_anvil(anvil):
    """Every fault kind of the faulty batcher, on a real node: found at the right batch, proven
    (commit, then reveal in a later block), batches 3..4 reverted, the bond split, frozen."""
    from clearline.sequencer.faults import PROVABLE_FAULTS
    from clearline.watchtower import fraud

    chain = anvil.chain()
    for fault in PROVABLE_FAULTS:  # every fault an implemented proof kind proves
        snap = chain.snapshot()
        try:
            s = scenario(chain, fault.value)
            seq = s.r.client
            bond = seq.bond()
            rep, proof = fraud.find_fraud(chain, s.r.deployment.rollup)
            assert not rep.ok and proof is not None and proof.batch == 3, fault
            sub = fraud.submit_proof(s.challenger, proof, wait_s=30)
            assert sub.batches_reverted == 2 and sub.reward == bond // 2 and sub.frozen, fault
            assert seq.frozen() and seq.last_batch() == 2 and seq.bond() == 0
        finally:
            chain.revert_to(snap)
