"""The faulty batcher's operator faults (``wrong_median``, ``wrong_expiry_price``,
``wrong_funding``) in ``operator_fault_rollup`` on the in-process EVM: the fault is in the
faulty batch, its chunk's committed root (and every later one of the batch) differs from an
honest replica's (the journal replayed with ``clearline.core.apply``), the roots before it
match, and the cheating state behind that root holds the described wrong value. The honest
run of the scenario commits the honest roots. (The on-chain proofs are tested elsewhere.)"""

from __future__ import annotations

import time

import pytest

from clearline.core.apply import apply
from clearline.core.encoding import decode_tx
from clearline.core.instruments import InstrumentKind, MarketStatus, OptionType
from clearline.core.state import State
from clearline.core.txs import MatchStep
from clearline.l1.batch_v3 import chunk_sizes
from clearline.l1.chain import InProcessChain
from clearline.l1.formats import decode_batch, decode_batch_txs
from clearline.sequencer.faults import FaultKind, OPERATOR_FAULTS, operator_fault_rollup
from clearline.watchtower.l1data import RollupReader

BUILD_BUDGET_S = 10.0


@pytest.fixture(scope="module")
def chain():
    c = InProcessChain(n_accounts=10)
    yield c
    c.close()


@pytest.fixture
def fresh(chain):
    snap = chain.snapshot()
    yield chain
    chain.revert_to(snap)


def _build(chain, fault):
    t = time.perf_counter()
    fr = operator_fault_rollup(chain, fault)
    took = time.perf_counter() - t
    assert took < BUILD_BUDGET_S, f"the {fault} scenario took {took:.1f} s"
    return fr


def _committed(fr) -> dict[int, tuple[list[bytes], list[bytes]]]:
    """batch number -> (payloads, committed state roots), from L1 calldata."""
    r = fr.rollup
    reader = RollupReader(r.chain, r.deployment.rollup, from_block=r.deployment.block_number)
    out = {}
    for ref in reader.batch_refs(1):
        cd = reader.batch_calldata(ref)
        out[ref.number] = (decode_batch_txs(cd.txs), cd.state_roots)
    return out


class Honest:
    """The journal replayed honestly with ``apply``, cut into the committed batches: roots
    per batch, and copies of the state just before and after one chosen transaction."""

    def __init__(self, fr, committed, at: tuple[int, int] | None = None):
        r = fr.rollup
        entries = list(r.journal.entries())
        st = State(r.genesis)
        self.roots: dict[int, list[bytes]] = {}
        self.txs: dict[int, list] = {}
        self.chunks: dict[int, list[int]] = {}
        self.before = self.after = None
        seq = 0
        for number in sorted(committed):
            payloads, _ = committed[number]
            batch = entries[seq:seq + len(payloads)]
            seq += len(payloads)
            assert [e.payload for e in batch] == payloads  # the data is the journal's, doctored or not
            txs = []
            for e in batch:
                tx = decode_tx(e.payload)
                if e.signer:
                    tx.signer = e.signer
                txs.append(tx)
            ends, total = set(), 0
            for size in chunk_sizes(txs, r.batcher.txs_per_root):
                total += size
                ends.add(total - 1)
            roots, chunks = [], []
            for i, tx in enumerate(txs):
                if at == (number, i):
                    self.before = State.from_blob(st.to_blob())
                chunks.append(len(roots))
                assert apply(st, tx, None, True).ok  # orders in steps, as batch data v3 carries them
                if i in ends:
                    roots.append(st.root())
                while st.pending is not None:  # each matching step: an empty chunk of its own
                    assert apply(st, MatchStep(st.time_ms)).ok
                    roots.append(st.root())
                if at == (number, i):
                    self.after = State.from_blob(st.to_blob())
            self.roots[number] = roots
            self.txs[number] = txs
            self.chunks[number] = chunks  # the chunk of each transaction (matching steps counted)


def committed_data(fr, number: int) -> bytes:
    r = fr.rollup
    reader = RollupReader(r.chain, r.deployment.rollup, from_block=r.deployment.block_number)
    return reader.batch_calldata(reader.batch_refs(number=number)[0]).txs


def _doctored_batch(fr, fault: FaultKind):
    """The faulty batch 3 as committed and as an honest replica builds it: (batcher, injected,
    committed, doctored tx index, Honest, batch 3's txs, the doctored chunk)."""
    b = fr.rollup.batcher
    inj = b.injected
    assert inj is not None and inj["fault"] == fault.value
    assert inj["batch"] == fr.faulty_batch == 3
    committed = _committed(fr)
    assert sorted(committed) == [1, 2, 3, 4]
    j = inj["tx_index"]
    honest = Honest(fr, committed, at=(fr.faulty_batch, j))
    txs = honest.txs[fr.faulty_batch]
    return b, inj, committed, j, honest, txs, b.doctored_chunk


def _check_doctored(fr, fault: FaultKind):
    b, inj, committed, j, honest, txs, c = _doctored_batch(fr, fault)
    assert c == honest.chunks[fr.faulty_batch][j]  # the doctored operator transaction's own chunk
    assert decode_batch(committed_data(fr, fr.faulty_batch)).chunk_sizes[c] == 1  # ... alone in it
    for number in (1, 2):
        assert committed[number][1] == honest.roots[number]
    roots = committed[fr.faulty_batch][1]
    want = honest.roots[fr.faulty_batch]
    assert len(roots) == len(want)
    assert roots[:c] == want[:c]
    assert all(x != y for x, y in zip(roots[c:], want[c:])), "a cheating root equals the honest one"
    cheat = b.doctored_state
    assert cheat.root() == roots[c]
    assert honest.after.root() == want[c]
    return inj, txs[j], honest.before, honest.after, cheat


@pytest.mark.parametrize("fault", [f.value for f in OPERATOR_FAULTS])
def test_the_cli_accepts_the_operator_faults(fault):
    from clearline.cli import FAULT_HELP, _fault_kinds

    assert fault in _fault_kinds() and FAULT_HELP.get(fault)


def test_honest_run_commits_the_honest_roots(fresh):
    fr = _build(fresh, None)
    committed = _committed(fr)
    assert sorted(committed) == [1, 2, 3, 4]
    honest = Honest(fr, committed)
    for number, (_, roots) in committed.items():
        assert roots == honest.roots[number]


def test_wrong_median(fresh):
    from clearline.core.txs import MarkUpdate

    fr = _build(fresh, FaultKind.WRONG_MEDIAN)
    inj, tx, before, after, cheat = _check_doctored(fr, FaultKind.WRONG_MEDIAN)
    assert set(inj) == {"fault", "batch", "tx_index", "underlying", "index", "honest_index"}
    assert type(tx) is MarkUpdate
    uid = inj["underlying"]
    assert after.underlyings[uid].oracle.index_price == inj["honest_index"]
    assert cheat.underlyings[uid].oracle.index_price == inj["index"] != inj["honest_index"]
    prices = sorted(rep.price for rep in tx.reports if rep.asset == uid)
    assert inj["index"] in (prices[-1], inj["honest_index"] + 1)
    # everything but that index is the honest apply's
    cheat.underlyings[uid].oracle = after.underlyings[uid].oracle
    cheat.dirty_underlyings.add(uid)
    assert cheat.root() == after.root()


def test_wrong_expiry_price(fresh):
    from clearline.core.txs import OperatorAction, OperatorActionKind

    fr = _build(fresh, FaultKind.WRONG_EXPIRY_PRICE)
    inj, tx, before, after, cheat = _check_doctored(fr, FaultKind.WRONG_EXPIRY_PRICE)
    assert set(inj) == {"fault", "batch", "tx_index", "underlying", "expiry", "instruments", "settlement_price",
                        "honest_settlement_price"}
    assert type(tx) is OperatorAction and tx.action == OperatorActionKind.SETTLE_OPTION
    assert inj["instruments"] == [tx.target]
    i = tx.target
    s, s_honest = inj["settlement_price"], inj["honest_settlement_price"]
    spec = before.markets[i].spec
    assert spec.kind == InstrumentKind.OPTION and before.markets[i].status == MarketStatus.ACTIVE
    assert spec.expiry == inj["expiry"] and s == s_honest + spec.tick_size
    assert after.markets[i].settlement_price == s_honest
    m = cheat.markets[i]
    assert m.status == MarketStatus.DELISTED and m.settlement_price == s
    strike = spec.strike * spec.tick_size
    intrinsic = s - strike if spec.option_type == OptionType.CALL else strike - s
    assert m.mark_price == max(0, intrinsic // spec.tick_size)
    assert m.unpaid_lots == after.markets[i].unpaid_lots  # its holders are paid by the steps that follow
    # settling at the cheating price honestly gives the same market leaf; the window is the rules'
    u = before.underlyings[inj["underlying"]]
    u.advance(tx.time_ms, before.params.settlement_window_ms)
    w = u.windows[inj["expiry"]]
    if w[1]:
        w[0] += (s - s_honest) * w[1]
    redo = before
    assert apply(redo, tx).ok
    assert State.market_leaf(redo.markets[i]) == State.market_leaf(cheat.markets[i])
    assert cheat.underlyings[inj["underlying"]].windows == after.underlyings[inj["underlying"]].windows


def test_wrong_funding(fresh):
    from clearline.core.txs import OperatorAction, OperatorActionKind

    fr = _build(fresh, FaultKind.WRONG_FUNDING)
    inj, tx, before, after, cheat = _check_doctored(fr, FaultKind.WRONG_FUNDING)
    assert set(inj) == {"fault", "batch", "tx_index", "instruments"}
    assert type(tx) is OperatorAction and tx.action == OperatorActionKind.FUNDING_SETTLE
    assert inj["instruments"] == [tx.target]
    i = tx.target
    assert before.markets[i].spec.kind == InstrumentKind.PERPETUAL
    b, h, m = before.markets[i], after.markets[i], cheat.markets[i]
    rate = h.last_funding_rate_ppm
    assert m.last_funding_rate_ppm == rate
    step = h.funding_index - b.funding_index
    assert step == rate * h.mark_price * h.spec.tick_value
    extra = rate if rate else 1
    assert m.funding_index == h.funding_index + extra * h.mark_price * h.spec.tick_value != h.funding_index
    assert m.unpaid_lots == h.unpaid_lots  # the same holders are left to pay, each twice as much
    assert cheat.holders[i] == after.holders[i] and after.holders[i]
    for aid in after.holders[i]:  # paid by the FUNDING_PAYs that follow, not yet
        assert cheat.accounts[aid].positions[i].funding_index == b.funding_index
    cheat.check_invariants()
