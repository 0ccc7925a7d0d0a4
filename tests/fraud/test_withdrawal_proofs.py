"""KIND_WITHDRAWALS: the posted withdrawal records against the batch data, on the in-process EVM.

Differential: generated batches (chunks of Withdraws signed by several keys, ForcedWithdrawals,
Deposits, Transfers and Orders) with their honest records (one per Withdraw, one per served
ForcedWithdrawal), then mutated (amount, owner, account, position moved to another transaction
or past the batch, a record dropped, duplicated, swapped or added, a Withdraw signed by another
key). For each, the watchtower's mirror (``record_witness.records_judgement``) and the contract
(``FraudVerifier.verify``, called as the Rollup) must agree: the mirror's reason is the
contract's for the proof it builds; honest records are never provable (every record opened in
mode 1 gives 0, every adjacent pair in mode 2 gives 0). ``CLEARLINE_DIFF_RECORD_CASES`` sets the
number of generated batches (default 300).

Mode 4 (reason 43, the records naming a chunk against the state's withdrawals over it): the
same generated batches, with committed states around every chunk whose totalWithdrawals moves
by the honest records' sum; a denied ForcedWithdrawal given a record, a served one's record
dropped, or any other mutation: the contract's verdict on every chunk equals the mirror's
(``records_sum_judgement``), honest records give 0 on every chunk, and witnesses that leave a
record of the chunk out or open other states revert.

End to end (a real Rollup): an empty batch that posts a record is proven by KIND_FRAMING (40);
a record that pays the sequencer is proven through ``proveFraud`` and the watchtower's own
``build_proof``; the forced-withdrawal faults by mode 4 in tests/fraud/test_dispute.py.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace

import pytest
from eth_utils import to_checksum_address

from clearline.core import eip712
from clearline.core.txs import Deposit, ForcedWithdrawal, Order, Transfer, Withdraw
from clearline.l1.chain import InProcessChain
from clearline.l1.deploy import contract_abi, deploy
from clearline.batcher.records import tx_positions
from clearline.l1.batch_v3 import chunk_sizes
from clearline.l1.formats import WithdrawalRecord, batch_data_parts, encode_batch, withdrawals_tree
from clearline.watchtower import fraud
from clearline.watchtower.record_witness import (records_judgement, records_sum_judgement, records_sum_witness,
                                                 records_witness)

CASES = int(os.environ.get("CLEARLINE_DIFF_RECORD_CASES", "300"))
K = 4


@pytest.fixture(scope="module")
def env():
    chain = InProcessChain(n_accounts=3)
    dep = deploy(chain)
    verifier = chain.w3.eth.contract(address=dep.verifier, abi=contract_abi("FraudVerifier"))
    domain = eip712.Domain(chain.chain_id, bytes.fromhex(dep.rollup[2:]))
    yield chain, dep, verifier, domain
    chain.close()


KEYS = [bytes([i + 1]) * 32 for i in range(4)]
OWNERS = [eip712.address_of(k) for k in KEYS]


def _batch(rng: random.Random, domain) -> tuple[list, list[WithdrawalRecord]]:
    """Random transactions and their honest records (positions as batch data v3 cuts them)."""
    txs, t = [], 1_000
    for _ in range(rng.randrange(1, 14)):
        t += rng.randrange(1, 50)
        roll = rng.random()
        who = rng.randrange(len(KEYS))
        if roll < 0.35:
            tx = Withdraw(t, rng.randrange(8), rng.randrange(1, 10**9), rng.randrange(1, 10**6))
            tx.signature = eip712.sign(domain, tx, KEYS[who])
        elif roll < 0.5:
            tx = ForcedWithdrawal(t, rng.randrange(100), OWNERS[who], rng.randrange(8), rng.randrange(1, 10**9))
        elif roll < 0.65:
            tx = Deposit(t, rng.randrange(100), OWNERS[who], rng.randrange(3), rng.randrange(1, 10**9))
        elif roll < 0.8:
            tx = Transfer(t, rng.randrange(8), 1, rng.randrange(1, 10**6), rng.randrange(1, 10**6))
            tx.signature = eip712.sign(domain, tx, KEYS[who])
        else:
            tx = Order(t, rng.randrange(8), 0, rng.randrange(2), 0, 0, 0, 0, rng.randrange(1, 10**4),
                       rng.randrange(1, 100), 0, 0, rng.randrange(1, 10**6))
            tx.signature = eip712.sign(domain, tx, KEYS[who])
        txs.append(tx)
    records = []
    positions = tx_positions(chunk_sizes(txs, K))  # withdrawals, transfers, forced withdrawals alone
    for i, tx in enumerate(txs):
        c, j = positions[i]
        if type(tx) is Withdraw:
            records.append(WithdrawalRecord(tx.account, eip712.recover_signer(domain, tx), tx.amount, c, j))
        elif type(tx) is ForcedWithdrawal and rng.random() < 0.7:  # served (else denied: no record)
            records.append(WithdrawalRecord(tx.account, tx.owner, tx.amount, c, j))
    return txs, records


def _mutate(rng: random.Random, txs: list, records: list[WithdrawalRecord], domain):
    """A doctored copy of ``(txs, records)`` and what was done."""
    records = list(records)
    positions = tx_positions(chunk_sizes(txs, K))
    n_chunks = positions[-1][0] + 1
    kinds = ["amount", "owner", "account", "moved", "past_end", "beyond_chunk", "dropped", "duplicated", "swapped",
             "added", "other_signer", "none"]
    what = rng.choice(kinds)
    i = rng.randrange(len(records)) if records else None
    if what in ("amount", "owner", "account", "moved", "past_end", "beyond_chunk", "dropped", "duplicated") and i is None:
        what = "added"
    if what == "amount":
        records[i] = replace(records[i], amount=records[i].amount + rng.choice((1, -1 if records[i].amount > 1 else 2)))
    elif what == "owner":
        records[i] = replace(records[i], owner=rng.choice([o for o in OWNERS if o != records[i].owner]))
    elif what == "account":
        records[i] = replace(records[i], account_id=records[i].account_id ^ 1)
    elif what == "moved":  # the same payment, said to be paid by another transaction
        c, j = positions[rng.randrange(len(txs))]
        records[i] = replace(records[i], chunk=c, tx_index=j)
    elif what == "past_end":
        records[i] = replace(records[i], chunk=n_chunks + rng.randrange(3))
    elif what == "beyond_chunk":
        c, j = positions[-1]
        records[i] = replace(records[i], chunk=c, tx_index=j + 1 + rng.randrange(3))
    elif what == "dropped":
        del records[i]
    elif what == "duplicated":
        records.insert(i, records[i])
    elif what == "swapped" and len(records) > 1:
        j = rng.randrange(len(records) - 1)
        records[j], records[j + 1] = records[j + 1], records[j]
    elif what == "added":  # a record paying the first owner, at a random transaction
        c, j = positions[rng.randrange(len(txs))]
        records.append(WithdrawalRecord(rng.randrange(8), OWNERS[0], rng.randrange(1, 10**12), c, j))
        records.sort(key=lambda r: (r.chunk, r.tx_index))
    elif what == "other_signer":  # a Withdraw re-signed by another key (its record unchanged)
        ws = [j for j, tx in enumerate(txs) if type(tx) is Withdraw]
        if ws:
            txs = list(txs)
            j = rng.choice(ws)
            tx = replace(txs[j])
            tx.signature = eip712.sign(domain, tx, rng.choice([k for k in KEYS if eip712.address_of(k) !=
                                                              eip712.recover_signer(domain, txs[j])]))
            txs[j] = tx
    return txs, records, what


def _verify(env, txs, records, chunk_index: int, witness: bytes, roots: tuple[bytes, bytes] = (bytes(32),) * 2) -> int:
    chain, dep, verifier, _ = env
    data = encode_batch(txs, K)
    head, parts = batch_data_parts(data)
    a, e = parts[chunk_index]
    n = len(parts)
    ctx = (fraud.KIND_WITHDRAWALS, chunk_index, n, n, K, 0, 0, *roots,
           to_checksum_address(dep.vault), bytes(32), withdrawals_tree(records).root(), bytes(32))
    return verifier.functions.verify(ctx, head, data[a:e], witness).call({"from": dep.rollup})


def _states(rng: random.Random, honest: list[WithdrawalRecord], chunk: int) -> tuple[tuple, tuple]:
    """Committed EscapeStates around ``chunk`` (random fields) whose totalWithdrawals moves by
    what the honest records of the chunk pay, as the core's does."""
    def state(total: int) -> tuple:
        return (rng.randbytes(32), rng.randbytes(32), rng.randbytes(32), rng.randrange(2**64), rng.randrange(2**80),
                rng.randrange(2**80), rng.randrange(2**64), rng.randrange(2**32), rng.randrange(2**64),
                rng.randrange(2**100), total)

    before = rng.randrange(2**100)
    return state(before), state(before + sum(r.amount for r in honest if r.chunk == chunk))


def _forced_mutation(rng: random.Random, txs: list, records: list[WithdrawalRecord]):
    """A record for a denied ForcedWithdrawal, or a served one's record dropped (data-only
    modes cannot tell either from the honest records)."""
    positions = tx_positions(chunk_sizes(txs, K))
    paid = {r.position() for r in records}
    forced = [i for i, tx in enumerate(txs) if type(tx) is ForcedWithdrawal]
    denied = [i for i in forced if positions[i] not in paid]
    served = [i for i in forced if positions[i] in paid]
    if denied and (not served or rng.random() < 0.5):
        tx = txs[rng.choice(denied)]
        pos = positions[txs.index(tx)]
        extra = WithdrawalRecord(tx.account, tx.owner, tx.amount, *pos)
        return sorted([*records, extra], key=WithdrawalRecord.position), "denied_recorded"
    if served:
        pos = positions[rng.choice(served)]
        return [r for r in records if r.position() != pos], "served_unrecorded"
    return records, "none"


def test_contract_equals_mirror_on_generated_records(env):
    domain = env[3]
    rng = random.Random(11)
    seen: dict[str, int] = {}
    reasons: dict[int, int] = {}
    for _ in range(CASES):
        txs, honest = _batch(rng, domain)
        data = encode_batch(txs, K)
        _, parts = batch_data_parts(data)
        assert records_judgement(data, parts, K, honest, domain) is None
        if honest and rng.random() < 0.3:  # honest records prove nothing in any mode
            i = rng.randrange(len(honest))
            assert _verify(env, txs, honest, honest[i].chunk, records_witness(honest, 1, 0, [i])) == 0
            if i + 1 < len(honest):
                assert _verify(env, txs, honest, 0, records_witness(honest, 2, 0, [i, i + 1])) == 0
        txs, records, what = _mutate(rng, txs, honest, domain)
        data = encode_batch(txs, K)
        _, parts = batch_data_parts(data)
        judged = records_judgement(data, parts, K, records, domain)
        seen[what] = seen.get(what, 0) + 1
        if judged is None:
            # what the records cannot show: a served ForcedWithdrawal dropped (it may have been denied),
            # or a mutation that changed nothing
            assert what in ("dropped", "none", "swapped", "other_signer", "moved") or records == honest, what
            continue
        reasons[judged.reason] = reasons.get(judged.reason, 0) + 1
        assert _verify(env, txs, records, judged.chunk, judged.witness) == judged.reason, (what, judged.detail)
    assert set(reasons) == {40, 41, 42}, reasons
    assert all(seen.get(k, 0) > 5 for k in ("amount", "owner", "dropped", "duplicated", "added")), seen


def test_records_sum_contract_equals_mirror_on_generated_batches(env):
    domain = env[3]
    rng = random.Random(23)
    seen: dict[str, int] = {}
    proven = 0
    for case in range(CASES):
        txs, honest = _batch(rng, domain)
        if case % 2:
            records, what = _forced_mutation(rng, txs, honest)
        else:
            txs, records, what = _mutate(rng, txs, honest, domain)
        positions = [r.position() for r in records]
        if positions != sorted(positions):
            continue  # out of order: mode 2's, mode 4 reads ordered records
        seen[what] = seen.get(what, 0) + 1
        data = encode_batch(txs, K)
        _, parts = batch_data_parts(data)
        if what in ("denied_recorded", "served_unrecorded"):
            assert records_judgement(data, parts, K, records, domain) is None  # the data alone cannot show it
        for c in range(len(parts)):
            pre, post = _states(rng, honest, c)
            roots = (fraud._state_root_of(pre), fraud._state_root_of(post))
            judged = records_sum_judgement(records, c, pre, post)
            if records == honest:
                assert judged is None
            witness = records_sum_witness(records, c, pre, post)
            got = _verify(env, txs, records, c, witness, roots)
            assert got == (judged.reason if judged else 0), (what, c)
            proven += got == 43
            if what in ("denied_recorded", "served_unrecorded") and got:
                assert judged.chunk == c
    assert seen.get("denied_recorded", 0) > 20 and seen.get("served_unrecorded", 0) > 20, seen
    assert proven > 40, proven


def test_records_sum_witness_must_be_the_whole_run_and_the_committed_states(env):
    from eth_tester.exceptions import TransactionFailed

    domain = env[3]
    rng = random.Random(29)
    while True:
        txs, honest = _batch(rng, domain)
        if len(honest) >= 3:
            break
    c = honest[1].chunk  # each record names a chunk of its own (withdrawals are alone in theirs)
    pre, post = _states(rng, honest, c)
    roots = (fraud._state_root_of(pre), fraud._state_root_of(post))
    assert records_sum_witness(honest, c, pre, post) == records_witness(honest, 4, 0, [0, 1, 2], (pre, post))
    assert _verify(env, txs, honest, c, records_sum_witness(honest, c, pre, post), roots) == 0
    # the run ends early: leaf 1 (naming chunk c) offered as the leaf after it
    with pytest.raises(TransactionFailed):
        _verify(env, txs, honest, c, records_witness(honest, 4, 0, [0, 1], (pre, post)), roots)
    # the run starts late: leaf 1 (naming chunk c) is neither before the chunk nor leaf 0
    with pytest.raises(TransactionFailed):
        _verify(env, txs, honest, c, records_witness(honest, 4, 0, [1, 2], (pre, post)), roots)
    # states that are not the committed ones
    other_pre, other_post = _states(rng, honest, c)
    with pytest.raises(TransactionFailed):
        _verify(env, txs, honest, c, records_sum_witness(honest, c, other_pre, post), roots)
    with pytest.raises(TransactionFailed):
        _verify(env, txs, honest, c, records_sum_witness(honest, c, pre, other_post), roots)
    # modes 1-3's witness shape (no states) is refused in mode 4
    with pytest.raises(TransactionFailed):
        _verify(env, txs, honest, c, records_witness(honest, 4, 0, [0, 1, 2]), roots)


def test_witness_that_does_not_open_the_root_reverts(env):
    from eth_tester.exceptions import TransactionFailed

    domain = env[3]
    rng = random.Random(5)
    while True:
        txs, honest = _batch(rng, domain)
        if len(honest) >= 2:
            break
    forged = list(honest)
    forged[0] = replace(forged[0], amount=forged[0].amount + 1)
    # the witness opens a tree the header does not commit (the honest one)
    with pytest.raises(TransactionFailed):
        _verify(env, txs, forged, honest[0].chunk, records_witness(honest, 1, 0, [0]))
    # mode 3 naming a transaction that has its record: not fraud
    c, j = honest[1].chunk, honest[1].tx_index
    assert _verify(env, txs, honest, c, records_witness(honest, 3, j, [0, 1])) == 0
    # mode 3 naming a transaction without a record that is not a Withdraw: reverts
    others = [i for i, tx in enumerate(txs) if type(tx) in (Deposit, Order, Transfer)]
    if others:
        c, j = tx_positions(chunk_sizes(txs, K))[others[0]]
        at = sum(1 for r in honest if (r.chunk, r.tx_index) < (c, j))
        with pytest.raises(TransactionFailed):
            _verify(env, txs, honest, c, records_witness(honest, 3, j, [at - 1, at] if at else [0]))


def test_empty_batch_with_a_record_is_proven_by_framing():
    """A batch without transactions that posts a record (nothing can name it): KIND_FRAMING 40,
    found and proven from L1 data by the watchtower's builder, then submitted."""
    from clearline.sequencer.faults import faulty_rollup
    from clearline.watchtower.l1data import RollupReader

    chain = InProcessChain(n_accounts=10)
    try:
        fr = faulty_rollup(chain, None, later_batch=False)
        r = fr.rollup
        seq = r.client
        root = seq.batch_headers(seq.last_batch())[-1].post_state_root
        thief = bytes.fromhex(seq.address[2:])
        header = seq.append_batch(encode_batch([], 16), [root], txs_per_root=16,
                                  withdrawals=[WithdrawalRecord(0, thief, 10**9, 0, 0)]).value
        reader = RollupReader(chain, r.deployment.rollup, from_block=r.deployment.block_number)
        p = fraud.build_proof(reader, header.number)
        assert (p.kind_name, p.reason) == ("framing", 40)
        sub = fraud.submit_proof(fr.challenger, p)
        assert sub.reason == 40 and sub.frozen and seq.last_batch() == header.number - 1
    finally:
        chain.close()
