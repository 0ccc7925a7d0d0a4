"""The batcher and the queue feeder end to end on the in-process EVM (py-evm), no mocks:
deposits through the Vault, signed trading through the Sequencer, batches posted by the
Batcher, finalization, withdrawal claims paid by the Vault, crash and retry safety, and a
forced withdrawal served within its deadline."""

from __future__ import annotations

import dataclasses

import pytest

from clearline.batcher import Batcher, BatcherError, root_count
from clearline.core import ledger as L
from clearline.core.errors import ErrorCode
from clearline.core.hashing import keccak
from clearline.core.units import USD6
from clearline.journal import open_journal
from clearline.l1.chain import InProcessChain
from clearline.l1.client import L1Revert
from clearline.l1.formats import batch_data_hash, decode_batch
from clearline.watchtower import verify
from rollup_env import make_rollup

CHALLENGE = 100
DEADLINE = 1_000


@pytest.fixture
def chain():
    return InProcessChain(n_accounts=12)


def _contiguous(posted, first_number: int, first_seq: int) -> None:
    for p in posted:
        assert (p.number, p.first_seq) == (first_number, first_seq)
        first_number, first_seq = p.number + 1, p.last_seq + 1


def test_deposit_trade_withdraw_batches_finalize_claim(chain):
    r = make_rollup(chain, challenge_period=CHALLENGE, forced_deadline=DEADLINE)
    st = r.sequencer.state
    # every deposit went through the Vault and became collateral, in queue order
    assert st.l1_queue_pos == r.client.queue_length() == len(r.sim.traders)
    for t in r.sim.traders:
        assert st.accounts[t.account].owner == t.address and st.accounts[t.account].collateral == t.deposit
    r.step(30)
    assert r.fills > 0
    taker = r.trader("taker0")
    user = r.user("taker0")
    amount = 1_000 * USD6
    on_l1 = user.token_balance()
    ack = r.withdraw("taker0", amount)
    assert ack.receipt.ok and any(e.kind == "withdraw" for e in ack.receipt.events if type(e) is L.CollateralMoved)
    r.step(10)

    posted = r.batcher.flush()
    assert posted and all(p.reason == "flush" for p in posted)
    _contiguous(posted, 1, 1)
    assert posted[-1].last_seq == r.sequencer.seq
    assert r.client.last_batch() == posted[-1].number
    assert posted[-1].header.post_state_root == r.sequencer.root()  # the replica agrees with the sequencer
    assert r.batch_payloads() == r.journal_payloads()  # every journal entry once, in order
    assert r.batcher.flush() == [] and r.batcher.pending() == 0

    (wb,) = [p for p in posted if p.n_withdrawals]
    (claim,) = r.batcher.claims(wb.number, owner=taker.address)
    assert (claim.record.account_id, claim.record.amount) == (taker.account, amount)
    with pytest.raises(L1Revert) as e:  # not final yet
        user.claim_withdrawal(claim.header, claim.index, claim.record, claim.siblings)
    assert e.value.error == "NotFinalized"
    assert r.batcher.finalize_ready() == []
    chain.advance_time(CHALLENGE)
    assert r.batcher.finalize_ready() == [p.number for p in posted]
    assert r.client.finalized_state_root() == r.sequencer.root()

    user.claim_withdrawal(claim.header, claim.index, claim.record, claim.siblings)
    assert user.token_balance() == on_l1 + amount
    with pytest.raises(L1Revert) as e:  # paid once
        user.claim_withdrawal(claim.header, claim.index, claim.record, claim.siblings)
    assert e.value.error == "AlreadyClaimed"
    assert user.token_balance() == on_l1 + amount

    rep = verify(chain, r.deployment.rollup, progress=None)
    assert rep.ok, rep.line()
    assert (rep.txs, rep.withdrawals, rep.rejected_txs) == (r.sequencer.seq, 1, 0)
    assert rep.state_root == r.sequencer.root() and rep.last_finalized_batch == posted[-1].number
    gas = sum(p.gas_used for p in posted)
    print(f"\n{len(posted)} batches, {rep.txs} txs, {r.fills} fills: {gas / rep.txs:,.0f} gas/tx, "
          f"{gas / r.fills:,.0f} gas/fill, {sum(p.data_bytes for p in posted) / rep.txs:,.0f} B/tx")


def test_post_pending_rules(chain):
    r = make_rollup(chain, max_txs=120, max_bytes=1_000_000, max_delay_ms=1_000)
    b = r.batcher
    assert b.post_pending(r.now_ms) is None  # 8 young deposits: nothing due
    res = b.post_pending(r.now_ms + 1_000)
    assert (res.number, res.reason, res.n_txs, res.first_seq) == (1, "age", len(r.sim.traders), 1)
    assert res.header.queue_end == len(r.sim.traders)
    assert b.post_pending(r.now_ms + 10_000) is None  # nothing pending
    r.step(3)
    while b.journal.head()[0] - b.last_seq < 240:  # leaves > 10 kB after one batch of 120
        r.step(1)
    res = b.post_pending(0)
    sizes = decode_batch(b.reader.batch_calldata(b.reader.batch_refs(number=2)[0]).txs).chunk_sizes
    assert (res.number, res.reason, res.n_txs, res.n_roots) == (2, "count", 120, len(sizes))
    assert len(sizes) >= root_count(120, 16) and sum(sizes) == 120  # v3: operator transactions alone
    small = r.new_batcher(max_bytes=10_000)  # a restarted batcher with a smaller size cap
    res = small.post_pending(0)
    assert (res.number, res.reason, res.first_seq) == (3, "bytes", b.last_seq + 1)
    steps = decode_batch(small.reader.batch_calldata(small.reader.batch_refs(number=3)[0]).txs).chunk_sizes.count(0)
    assert res.data_bytes <= 10_000 + 4 * steps  # the cap leaves out the orders' matching steps (4 table bytes each)
    b.flush()  # the first batcher resyncs from the chain: no duplicate, no gap
    assert r.batch_payloads() == r.journal_payloads()


def test_crash_between_build_and_post_and_after_the_append(chain):
    r = make_rollup(chain, snapshot_every=1)  # restarts resume from the batcher's snapshot
    r.step(15)
    plan = r.batcher.build()  # built (replica advanced) ... and the process dies before posting
    assert plan.number == 1
    b2 = r.new_batcher()
    res = b2.post_pending(r.now_ms + 60_000)
    assert (res.number, res.first_seq, res.last_seq) == (1, 1, plan.last_seq)
    assert res.header.txs_hash == batch_data_hash(plan.data)

    r.step(15)
    plan2 = b2.build()
    # the process dies right after the L1 append is mined, before it records anything
    r.client.append_batch(plan2.data, plan2.state_roots, **plan2.append_args())
    assert r.journal.get_meta(f"batcher.batch.{plan2.number}") is None
    r.step(5)
    b3 = r.new_batcher()
    posted = b3.flush()
    _contiguous(posted, plan2.number + 1, plan2.last_seq + 1)  # derived from the L1 calldata
    assert r.journal.get_meta(f"batcher.batch.{plan2.number}") is not None
    # the stale batcher (its replica still holds plan2, never confirmed) resyncs too
    r.step(5)
    late = b2.flush()
    _contiguous(late, posted[-1].number + 1, posted[-1].last_seq + 1)
    assert r.batch_payloads() == r.journal_payloads()
    assert verify(chain, r.deployment.rollup, progress=None).ok


def test_dropped_l1_transaction_is_reposted_once(chain):
    r = make_rollup(chain, snapshot_every=1, challenge_period=CHALLENGE)  # snapshots of dropped batches too
    r.step(10)
    kept = r.batcher.flush()
    snap = chain.snapshot()
    r.step(6)
    r.withdraw("taker1", 10 * USD6)
    r.step(4)
    lost = r.batcher.flush()
    assert lost and lost[0].number == kept[-1].number + 1 and sum(p.n_withdrawals for p in lost) == 1
    chain.revert_to(snap)  # those appends never made it into the chain
    assert r.client.last_batch() == kept[-1].number
    r.step(5)
    again = r.batcher.flush()
    _contiguous(again, kept[-1].number + 1, lost[0].first_seq)
    assert again[-1].last_seq == r.sequencer.seq
    assert r.batch_payloads() == r.journal_payloads()
    assert verify(chain, r.deployment.rollup, progress=None).ok
    # claims come from the chain's batches, not from rows left by the dropped ones
    chain.advance_time(CHALLENGE)
    r.batcher.finalize_ready()
    records = {p.number: r.batcher.withdrawals(p.number) for p in again}
    assert sum(map(len, records.values())) == 1
    (n,) = [n for n, recs in records.items() if recs]
    (c,) = r.batcher.claims(n)
    u = r.user("taker1")
    before = u.token_balance()
    u.claim_withdrawal(c.header, c.index, c.record, c.siblings)
    assert u.token_balance() == before + 10 * USD6


def test_batcher_refuses_a_journal_that_is_not_the_chain(chain):
    r = make_rollup(chain)
    r.step(5)
    r.batcher.flush()
    other = make_rollup(InProcessChain(n_accounts=12))  # same genesis, another chain's journal ...
    other.withdraw("taker0", USD6)  # ... whose history differs
    while other.sequencer.seq < r.batcher.posted[0].last_seq:
        other.step(1)
    with pytest.raises(BatcherError, match="disagree"):
        Batcher(other.journal, r.client, r.genesis).flush()
    with pytest.raises(BatcherError, match="different genesis"):
        Batcher(r.journal, r.client, dataclasses.replace(r.genesis, chain_id=1))
    with pytest.raises(BatcherError, match="beyond the journal head"):
        Batcher(open_journal("sqlite://"), r.client, r.genesis).flush()


def test_forced_withdrawal_served_within_deadline_via_feeder(chain):
    r = make_rollup(chain, challenge_period=CHALLENGE, forced_deadline=DEADLINE, max_delay_ms=10**9)
    r.step(5)
    r.batcher.flush()
    t, u = r.trader("taker1"), r.user("taker1")
    amount = 5_000 * USD6
    on_l1 = u.token_balance()
    item = u.request_forced_withdrawal(t.account, amount).value
    stranger = r.user("taker0").request_forced_withdrawal(t.account, 1).value  # not the owner
    acks = r.feed()
    assert len(acks) == 2 and r.sequencer.state.l1_queue_pos == stranger.index + 1
    assert [(e.kind, e.amount) for e in acks[0].receipt.events] == [("forced_withdraw", amount)]
    (denied,) = acks[1].receipt.events
    assert type(denied) is L.ForcedWithdrawalDenied and denied.reason == ErrorCode.NOT_ACCOUNT_OWNER
    assert r.batcher.post_pending(r.now_ms) is None  # young, small, deadline far
    chain.advance_time(DEADLINE // 2 + 10)  # within the batcher's margin of the deadline
    res = r.batcher.post_pending(r.now_ms)
    assert res.reason == "deadline" and res.n_withdrawals == 1
    assert r.client.queue_position() == stranger.index + 1
    chain.advance_time(DEADLINE)  # the deadline passes: nothing is overdue, no freeze
    with pytest.raises(L1Revert) as e:
        u.freeze()
    assert e.value.error == "NothingOverdue"
    assert res.number in r.batcher.finalize_ready()
    (claim,) = r.batcher.claims(res.number, owner=t.address)
    u.claim_withdrawal(claim.header, claim.index, claim.record, claim.siblings)
    assert u.token_balance() == on_l1 + amount
    rep = verify(chain, r.deployment.rollup, progress=None)
    assert rep.ok and rep.withdrawals == 1 and rep.queue_consumed == stranger.index + 1
