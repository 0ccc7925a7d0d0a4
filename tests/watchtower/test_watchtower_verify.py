"""The watchtower rebuilds from L1 data alone (in-process EVM, no mocks) and names the first
commitment that the data does not reproduce: batch, transaction, expected and committed."""

from __future__ import annotations

import dataclasses

import pytest

from clearline.core.encoding import encode_tx
from clearline.core.hashing import keccak
from clearline.core.state import State
from clearline.core.txs import Deposit
from clearline.core.units import USD6
from clearline.l1.chain import InProcessChain
from clearline.l1.deploy import deploy
from clearline.l1.formats import decode_batch, deposit_item_hash, encode_batch_txs, withdrawals_tree
from clearline.sim.market import demo_genesis
from clearline.watchtower import verify
from rollup_env import make_rollup

BAD = keccak(b"not the state root")


@pytest.fixture
def rollup():
    r = make_rollup(InProcessChain(n_accounts=12))
    r.step(8)
    r.withdraw("taker0", 100 * USD6)
    r.batcher.flush()
    return r


def _post_tampered(r, k: int, tamper, min_txs: int = 1):
    """Build the next batch honestly with ``k`` txs per root, let ``tamper`` change it, and
    post it with the sequencer's key straight through the client."""
    while r.sequencer.seq - r.batcher.last_seq < min_txs:
        r.step(1)
    plan = r.new_batcher(txs_per_root=k).build()
    honest = list(plan.state_roots)
    tamper(plan)
    r.client.append_batch(plan.data, plan.state_roots, **plan.append_args())
    return plan, honest


def test_honest_chain_verifies_with_progress(rollup, capsys):
    r = rollup
    calls = []
    rep = verify(r.chain, r.deployment.rollup, progress=lambda *a: calls.append(a))
    assert rep.ok and rep.mismatch is None, rep.line()
    n = r.client.last_batch()
    assert (rep.last_batch, rep.verified_batch, rep.batches_checked) == (n, n, n)
    assert rep.txs == r.sequencer.seq and rep.state_root == r.sequencer.root()
    assert rep.withdrawals == 1 and rep.queue_consumed == len(r.sim.traders) and rep.rejected_txs == 0
    assert calls[-1] == (n, n, rep.txs) and len(calls) == n
    assert rep.line().startswith(f"OK: verified {n} batches, {rep.txs:,} transactions")
    assert rep.tx_per_s > 0 and rep.to_dict()["ok"] is True
    verify(r.chain, r.deployment.rollup, progress="plain")
    assert "verify: batch" in capsys.readouterr().err
    assert verify(r.chain, r.deployment.rollup, progress="rich").ok  # a terminal's bar (on stderr)
    # worker processes recover the same signers
    assert verify(r.chain, r.deployment.rollup, progress=None, mode="process").state_root == rep.state_root


@pytest.mark.parametrize("k, root_index", [(1, 5), (4, 2)])
def test_tampered_state_root_is_reported_at_its_batch_and_transaction(rollup, k, root_index):
    r = rollup
    honest_last = r.client.last_batch()

    def tamper(plan):
        plan.state_roots[root_index] = BAD

    plan, honest = _post_tampered(r, k, tamper, min_txs=16)
    sizes = decode_batch(plan.data).chunk_sizes  # v3: chunks of up to k, operator transactions alone
    first, tx_index = sum(sizes[:root_index]), sum(sizes[:root_index + 1]) - 1
    r.step(3)
    r.new_batcher().flush()  # later batches built on it (their roots are honest again)
    rep = verify(r.chain, r.deployment.rollup, progress=None)
    m = rep.mismatch
    assert not rep.ok and m is not None
    assert (m.kind, m.batch, m.tx_index, m.root_index) == ("state_root", plan.number, tx_index, root_index)
    assert (m.expected, m.committed) == (honest[root_index], BAD)
    assert m.chunk_first_tx == first
    assert rep.verified_batch == honest_last and rep.last_batch > plan.number
    line = rep.line()
    assert line.startswith("FAIL") and f"batch {plan.number}, transaction {tx_index}" in line
    assert "0x" + BAD.hex() in line and "0x" + honest[root_index].hex() in line
    if first != tx_index:
        assert f"after transactions {first}..{tx_index}" in line


def test_tampered_withdrawals_root_and_root_count(rollup):
    r = rollup
    r.withdraw("taker1", 50 * USD6)

    def tamper(plan):  # one more record, paying someone from the first withdrawal's account
        w = plan.withdrawals[0]
        plan.withdrawals = plan.withdrawals + [dataclasses.replace(w, owner=b"\x66" * 20, tx_index=w.tx_index + 1)]

    plan, _ = _post_tampered(r, 16, tamper)
    m = verify(r.chain, r.deployment.rollup, progress=None).mismatch
    assert (m.kind, m.batch, m.tx_index) == ("withdrawals_root", plan.number, None)
    assert m.committed == withdrawals_tree(plan.withdrawals).root() != m.expected

    r2 = make_rollup(InProcessChain(n_accounts=12))
    r2.step(4)
    plan, _ = _post_tampered(r2, 4, lambda p: p.state_roots.pop(), min_txs=9)
    m = verify(r2.chain, r2.deployment.rollup, progress=None).mismatch
    n_chunks = len(decode_batch(plan.data).chunk_sizes)
    assert n_chunks >= -(-plan.n_txs // 4)
    assert (m.kind, m.batch, m.expected, m.committed) == ("root_count", plan.number, n_chunks, n_chunks - 1)


def test_queue_item_that_does_not_match_l1_is_reported(rollup):
    r = rollup
    user = r.user("taker1")
    user.mint(user.address, 7 * USD6)
    item = user.deposit(3, 7 * USD6).value  # on L1: 7 USD for subaccount 3 ...
    forged = Deposit(r.now_ms, item.index, item.owner, 3, 7_000 * USD6)  # ... in the batch: 7,000 USD
    n = r.client.last_batch() + 1
    r.client.append_batch(encode_batch_txs([encode_tx(forged)]), [BAD], queue_end=item.index + 1)
    m = verify(r.chain, r.deployment.rollup, progress=None).mismatch
    assert (m.kind, m.batch, m.tx_index) == ("queue_item", n, 0)
    assert (m.expected, m.committed) == (item.item_hash, deposit_item_hash(forged))


def test_undecodable_batches_are_reported(rollup):
    r = rollup
    n = r.client.last_batch() + 1
    r.client.append_batch(b"\x01\x00\x00\x00\x03abc", [BAD])
    m = verify(r.chain, r.deployment.rollup, progress=None).mismatch
    assert (m.kind, m.batch, m.tx_index) == ("undecodable", n, 0)

    r2 = make_rollup(InProcessChain(n_accounts=12))
    r2.client.append_batch(b"\x02whatever", [BAD])
    m = verify(r2.chain, r2.deployment.rollup, progress=None).mismatch
    assert (m.kind, m.batch, m.tx_index) == ("undecodable", 1, None)


def test_a_rejected_transaction_is_counted_not_a_mismatch(rollup):
    r = rollup
    b = r.new_batcher()
    b.sync()
    replayed = r.journal.entry(r.sequencer.seq).payload  # an order already applied: stale nonce
    root = b.state.root()  # a rejection changes nothing
    r.client.append_batch(encode_batch_txs([replayed]), [root], queue_end=b.header.queue_end)
    rep = verify(r.chain, r.deployment.rollup, progress=None)
    assert rep.ok and rep.rejected_txs == 1
    assert rep.first_rejected.startswith(f"batch {r.client.last_batch()} transaction 0")


def test_genesis_that_does_not_bind_the_rollup_is_reported():
    chain = InProcessChain(n_accounts=2)
    g = demo_genesis(1)  # domain: the demo chain id and the demo Rollup address
    d = deploy(chain, genesis_state_root=State(g).root(), genesis_config=g.to_json())
    rep = verify(chain, d.rollup, progress=None)
    assert not rep.ok and (rep.mismatch.kind, rep.mismatch.batch) == ("genesis", 0)
    bad_root = deploy(chain, genesis_state_root=BAD, genesis_config=dataclasses.replace(g).to_json())
    m = verify(chain, bad_root.rollup, progress=None).mismatch
    assert (m.kind, m.committed) == ("genesis", BAD)


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_a_v3_chunk_that_does_not_decode_is_reported_at_its_transaction(rollup, mode):
    """Batch data v3 whose framing is sound but whose second chunk holds an unknown head:
    the same mismatch whether the chunks are decoded here or in worker processes."""
    r = rollup
    while r.sequencer.seq - r.batcher.last_seq < 10:
        r.step(1)
    plan = r.new_batcher(txs_per_root=4).build()
    data = bytearray(plan.data)
    from clearline.l1.batch_v3 import chunk_bounds_v3

    _, bounds = chunk_bounds_v3(bytes(data))
    data[bounds[1][0]] = 0x0C  # kind 12: no such packed kind
    r.client.append_batch(bytes(data), plan.state_roots, **plan.append_args())
    m = verify(r.chain, r.deployment.rollup, progress=None, mode=mode).mismatch
    assert (m.kind, m.batch, m.tx_index) == ("undecodable", plan.number, bounds[1][3])
    assert "unknown head 0x0c" in m.detail


def test_v1_batches_still_verify(rollup):
    """A chain whose batches an older batcher posted in format v1 is read as before, and the
    batcher resumes after it in v3."""
    r = rollup
    r.step(3)
    plan = r.new_batcher(txs_per_root=1_000).build()  # v1: one root (every 1,000 transactions)
    payloads = [e.payload for e in r.journal.entries(plan.first_seq, plan.last_seq)]
    r.client.append_batch(encode_batch_txs(payloads), plan.state_roots[-1:], **plan.append_args())
    rep = verify(r.chain, r.deployment.rollup, progress=None)
    assert rep.ok and rep.verified_batch == plan.number
    r.step(3)
    b = r.new_batcher()
    b.sync()  # derives the v1 batch's journal range from L1 and checks its hash
    assert b.last_seq == plan.last_seq
    (posted,) = b.flush()
    assert b.reader.batch_calldata(b.reader.batch_refs(number=posted.number)[0]).txs[0] == 3
    assert verify(r.chain, r.deployment.rollup, progress=None).ok
