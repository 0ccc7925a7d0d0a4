"""``MarkDecoder.sol`` (the lenient reader of a batch data v3 singleton chunk's packed MarkUpdate
or OperatorAction) against ``batch_v2.decode_chunk``, on the in-process EVM through the
``MarkDecoderProbe`` wrapper.

Every chunk is a v3 singleton chunk written by ``batch_v3.encode_batch_v3`` and is first decoded
by the strict Python decoder (``decode_chunk_v3``): the contract's struct must equal that
transaction field by field (over the core's bounds, 48 instruments or 16 reports, the decoder
stops and returns MAX + 1 empty entries). Cases: seeded random MarkUpdates (0..60 instruments,
runs and scattered ids, with and without risk arrays whose arrays hit every residual mode 0..3
and int64's extremes, 0..6 or 15..20 reports with real signatures, times, timestamps and deltas
of both signs up to uint64), real MarkUpdates of the demo simulator (up to 48 instruments with
risk arrays, and 6 reports), OperatorActions of every action kind and random fields, and the NotPacked*
reverts (other kinds, the ABI fallback). The gas of decoding the biggest demo MarkUpdate is
printed and bounded.

``CLEARLINE_MARK_DECODER_CASES`` sets the number of random MarkUpdates (default 400),
``CLEARLINE_MARK_DECODER_SEED`` the seed."""

from __future__ import annotations

import os
import random

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode

from clearline.core import eip712
from clearline.core.hashing import keccak
from clearline.core.txs import (MAX_MARK_INSTRUMENTS, MAX_MARK_REPORTS, MarkUpdate, OperatorAction, OperatorActionKind,
                                 Withdraw)
from clearline.l1 import batch_v2
from clearline.l1.batch_v3 import chunk_table_v3, decode_chunk_v3, encode_batch_v3
from clearline.l1.chain import InProcessChain, revert_data
from clearline.l1.deploy import load_artifact
from clearline.oracle.report import PriceReport, signed

N_CASES = int(os.environ.get("CLEARLINE_MARK_DECODER_CASES", "400"))
SEED = int(os.environ.get("CLEARLINE_MARK_DECODER_SEED", "11"))
U32, U64 = (1 << 32) - 1, (1 << 64) - 1
I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
GAS_BOUND = 2_000_000
T0_MS = 1_760_000_000_000

DOMAIN = eip712.Domain(31337, keccak(b"mark decoder rollup")[12:])
OPERATOR_KEY = keccak(b"mark decoder operator")
REPORTER_KEYS = [keccak(f"mark decoder reporter {i}".encode()) for i in range(6)]

_REPORT_T = "(uint32,uint64,uint64,uint64,bytes)"
_MARK_OUT = [f"(uint64,uint64,uint32[],uint64[],int64[16][],{_REPORT_T}[],bytes)"]
_OP_OUT = ["(uint64,uint8,uint32,uint64,uint64,bytes)"]
_SEL_MARK = keccak(b"decodeMark(bytes)")[:4]
_SEL_OP = keccak(b"decodeOperator(bytes)")[:4]


@pytest.fixture(scope="module")
def probe():
    chain = InProcessChain(n_accounts=1)
    art = load_artifact("MarkDecoderProbe")
    factory = chain.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
    address = chain.transact(factory.constructor(), chain.accounts[0])["contractAddress"]
    yield chain, address
    chain.close()


def _call_data(selector: bytes, chunk: bytes) -> str:
    return "0x" + (selector + abi_encode(["bytes"], [chunk])).hex()


def _call(probe, selector: bytes, chunk: bytes) -> bytes:
    chain, address = probe
    out = chain.tester.call({"from": chain.accounts[0].address, "to": address, "data": _call_data(selector, chunk)},
                            "latest")
    return bytes.fromhex(out[2:])


def singleton_chunk(tx) -> tuple[bytes, object]:
    """(v3 chunk bytes, the strict decoder's transaction) of ``tx`` alone in a v3 batch."""
    data = encode_batch_v3([tx], 1)
    k, table = chunk_table_v3(data)
    (start, end), = table
    (ref,) = decode_chunk_v3(data, start, end, k)
    chunk = data[start:end]
    assert chunk == batch_v2.encode_chunk([tx])
    return chunk, ref


def contract_mark(probe, chunk: bytes) -> tuple:
    (t,) = abi_decode(_MARK_OUT, _call(probe, _SEL_MARK, chunk))
    return t


def expected_mark(tx: MarkUpdate) -> tuple:
    """What the decoder returns: the transaction, or, over the core's bounds (which the core
    rejects), MAX + 1 empty instruments or reports and nothing after them."""
    if len(tx.instruments) > MAX_MARK_INSTRUMENTS:
        return (tx.time_ms, tx.timestamp, (0,) * (MAX_MARK_INSTRUMENTS + 1), (), (), (), b"")
    head = (tx.time_ms, tx.timestamp, tuple(tx.instruments), tuple(tx.prices), tuple(tuple(a) for a in tx.risk_arrays))
    if len(tx.reports) > MAX_MARK_REPORTS:
        return (*head, ((0, 0, 0, 0, b""),) * (MAX_MARK_REPORTS + 1), b"")
    return (*head, tuple((r.asset, r.price, r.timestamp, r.round, r.signature) for r in tx.reports), tx.signature)


def check_mark(probe, tx: MarkUpdate) -> None:
    chunk, ref = singleton_chunk(tx)
    assert type(ref) is MarkUpdate and chunk[0] != batch_v2.FALLBACK
    got = contract_mark(probe, chunk)
    want = expected_mark(ref)
    assert got == want
    assert expected_mark(tx) == want  # the strict decoder gives the input back (sanity)


def check_operator(probe, tx: OperatorAction) -> None:
    chunk, ref = singleton_chunk(tx)
    assert type(ref) is OperatorAction and chunk[0] != batch_v2.FALLBACK
    (got,) = abi_decode(_OP_OUT, _call(probe, _SEL_OP, chunk))
    assert got == (ref.time_ms, ref.action, ref.target, ref.arg, ref.timestamp, ref.signature)
    assert len(got[5]) == 65


# ---------------------------------------------------------------------------- generators
def _u64(rng: random.Random, bits: int = 64) -> int:
    """A uint of a random bit length (short varints as often as long ones)."""
    return rng.getrandbits(rng.randint(0, bits))


def _int64(rng: random.Random) -> int:
    pick = rng.random()
    if pick < 0.1:
        return rng.choice((I64_MIN, I64_MAX, I64_MIN + 1, I64_MAX - 1, 0, -1))
    if pick < 0.3:
        return rng.randint(I64_MIN, I64_MAX)
    v = rng.getrandbits(rng.randint(0, 40))
    return -v if rng.random() < 0.5 else v


def _array(rng: random.Random, arrays: list[list[int]]) -> list[int]:
    """Array j: often one that a reference mode (1: previous, 2: the one before, 3: put-call
    parity step) writes shortest, else a smooth or random one."""
    j = len(arrays)
    pick = rng.random()
    if j >= 1 and pick < 0.15:
        return list(arrays[-1])
    if j >= 2 and pick < 0.3:
        return list(arrays[-2])
    if j >= 3 and pick < 0.5:
        par = [a + b - c for a, b, c in zip(arrays[-1], arrays[-2], arrays[-3])]
        if all(I64_MIN <= v <= I64_MAX for v in par):
            bump = rng.choice((0, 0, 1, -3))
            par = [v + bump if I64_MIN <= v + bump <= I64_MAX else v for v in par]
            return par
    if pick < 0.75:  # scenario-shaped: linear in the move, small noise (mode 0's predictor)
        base, slope = rng.randint(-10**9, 10**9), rng.randint(-10**8, 10**8)
        moves = (0, 0, 1, 1, -1, -1, 2, 2, -2, -2, 3, 3, -3, -3, 6, -6)
        return [base + slope * m + rng.randint(-50, 50) for m in moves]
    return [_int64(rng) for _ in range(batch_v2.N_SCENARIOS)]


def _instruments(rng: random.Random, n: int) -> list[int]:
    if n and rng.random() < 0.4:  # a run
        first = rng.choice((0, rng.randint(0, 1000), U32 - n + 1, rng.randint(0, U32 - n + 1)))
        return list(range(first, first + n))
    while True:
        ins = [rng.choice((rng.randint(0, 200), rng.randint(0, U32), U32, 0)) for _ in range(n)]
        if n < 2 or any(ins[j] != ins[0] + j for j in range(1, n)):
            return ins  # not consecutive (the encoder would write a run)


def _time(rng: random.Random) -> int:
    return rng.choice((0, T0_MS, rng.randint(0, U64), U64, _u64(rng)))


def random_mark(rng: random.Random) -> MarkUpdate:
    n = rng.choice((0, 1, 2, 3, rng.randint(0, 60), rng.randint(40, 60)))
    ins = _instruments(rng, n)
    prices = [_u64(rng) for _ in range(n)]
    arrays: list[list[int]] = []
    if n and rng.random() < 0.7:
        for _ in range(n):
            arrays.append(_array(rng, arrays))
    time_ms = _time(rng)
    ts = rng.choice((time_ms, max(0, time_ms - rng.randint(0, 10_000)), _time(rng)))
    reports = []
    for i in range(rng.choice((rng.randint(0, 6), rng.randint(0, 6), rng.randint(15, 20)))):
        rts = rng.choice((ts, min(U64, ts + rng.randint(0, 5_000)), max(0, ts - rng.randint(0, 5_000)), _time(rng)))
        rep = PriceReport(_u64(rng, 32), _u64(rng), rts, _u64(rng))
        reports.append(signed(DOMAIN, rep, REPORTER_KEYS[i % len(REPORTER_KEYS)]))
    tx = MarkUpdate(time_ms, ts, ins, prices, arrays, reports)
    tx.signature = eip712.sign(DOMAIN, tx, OPERATOR_KEY)
    return tx


def random_operator(rng: random.Random, action: int) -> OperatorAction:
    time_ms = _time(rng)
    ts = rng.choice((time_ms, max(0, time_ms - rng.randint(0, 10_000)), _time(rng)))
    tx = OperatorAction(time_ms, action, _u64(rng, 32), _u64(rng), ts)
    tx.signature = eip712.sign(DOMAIN, tx, OPERATOR_KEY)
    return tx


def _modes(tx: MarkUpdate) -> set[int]:
    """The residual modes the encoder chose for ``tx``'s risk arrays (walks the packed bytes
    as batch_v2._dec_mark does)."""
    if not tx.risk_arrays:
        return set()
    body = batch_v2.encode_chunk([tx])
    pos = 1
    if body[0] & 0x80:
        _, pos = batch_v2._read_u(body, pos)
    _, pos = batch_v2._read_u(body, pos)  # timestamp
    n, pos = batch_v2._read_u(body, pos)
    for _ in range(1 if body[0] & 0x10 else n):
        _, pos = batch_v2._read_u(body, pos)
    for _ in range(n):
        _, pos = batch_v2._read_u(body, pos)
    modes = set()
    for _ in range(n):
        modes.add(body[pos])
        pos += 1
        for _ in range(batch_v2.N_SCENARIOS):
            _, pos = batch_v2._read_u(body, pos)
    return modes


# ------------------------------------------------------------------------------- tests
def test_random_mark_updates(probe):
    rng = random.Random(SEED)
    seen_modes: set[int] = set()
    runs = scattered = with_arrays = extremes = 0
    for _ in range(N_CASES):
        tx = random_mark(rng)
        check_mark(probe, tx)
        seen_modes |= _modes(tx)
        head = batch_v2.encode_chunk([tx])[0]
        runs += bool(head & 0x10)
        scattered += bool(tx.instruments) and not head & 0x10
        with_arrays += bool(tx.risk_arrays)
        extremes += any(v in (I64_MIN, I64_MAX) for a in tx.risk_arrays for v in a)
    assert seen_modes == {0, 1, 2, 3}
    assert min(runs, scattered, with_arrays, extremes) >= 10, (runs, scattered, with_arrays, extremes)


def test_edge_mark_updates(probe):
    sig = lambda tx: eip712.sign(DOMAIN, tx, OPERATOR_KEY)  # noqa: E731
    rep = signed(DOMAIN, PriceReport(U32, U64, U64, U64), REPORTER_KEYS[0])
    rep0 = signed(DOMAIN, PriceReport(0, 0, 0, 0), REPORTER_KEYS[1])
    cases = [
        MarkUpdate(0, 0),  # no T bit, nothing at all
        MarkUpdate(U64, 0, [U32], [U64], [[I64_MIN] * 16], [rep, rep0]),  # deltas of -2^64 + 1
        MarkUpdate(0, U64, [0, U32, 0], [0, 1, U64], [[I64_MAX] * 16, [I64_MIN] * 16, [I64_MAX] * 16], [rep]),
        MarkUpdate(U64, U64, list(range(U32 - 59, U32 + 1)), [U64] * 60,
                   [[I64_MAX, I64_MIN] * 8 if j % 2 else [I64_MIN, I64_MAX] * 8 for j in range(60)], [rep0] * 6),
    ]
    for tx in cases:
        tx.signature = sig(tx)
        check_mark(probe, tx)


def _demo_marks(steps: int = 24) -> list[MarkUpdate]:
    """Mark updates of the demo simulator driven through a sequencer as the harness does
    (options listed by its operator actions, so later marks cover every active instrument)."""
    from clearline.journal import open_journal
    from clearline.sequencer import Sequencer
    from clearline.sim.market import SimulatedMarket, demo_genesis

    genesis = demo_genesis(1)
    seq = Sequencer(open_journal("sqlite://"), genesis, workers=1)
    sim = SimulatedMarket(genesis, seed=1, makers=1, takers=1, leveraged=0)
    marks, ops = [], []
    for step in range(steps):
        t = T0_MS + 50 * (step + 1)
        if step % 4 == 0:
            parts = sim.mark_updates(t, seq.state)
            if parts:
                seq.submit_txs(parts, t)
                marks.extend(parts)
            due = sim.operator_txs(seq.state, t)
            if due:
                seq.submit_txs(due, t)
                ops.extend(due)
                pays = sim.funding_payments(seq.state, t)
                if pays:
                    seq.submit_txs(pays, t)
                    ops.extend(pays)
    return marks, ops


@pytest.fixture(scope="module")
def demo():
    return _demo_marks()


def test_demo_mark_updates(probe, demo):
    marks, ops = demo
    assert max(len(m.instruments) for m in marks) == MAX_MARK_INSTRUMENTS  # the simulator splits beyond it
    for tx in marks:
        assert tx.risk_arrays and len(tx.reports) in (0, 6)
        check_mark(probe, tx)
    for tx in ops:
        check_operator(probe, tx)


def test_demo_mark_update_gas(probe, demo):
    chain, address = probe
    biggest = max(demo[0], key=lambda m: len(batch_v2.encode_chunk([m])))
    chunk, _ = singleton_chunk(biggest)
    gas = chain.w3.eth.estimate_gas({"from": chain.accounts[0].address, "to": address,
                                     "data": _call_data(_SEL_MARK, chunk)})
    print(f"\nMarkDecoder.decodeMark of the biggest demo MarkUpdate ({len(biggest.instruments)} instruments, "
          f"{len(biggest.reports)} reports, {len(chunk)} bytes): {gas:,} gas (estimate_gas of the probe call)")
    assert gas < GAS_BOUND


def test_operator_actions(probe):
    rng = random.Random(SEED + 1)
    actions = [int(k) for k in OperatorActionKind] + [0, 6, 127, 128, 255]
    for action in actions:
        for _ in range(12):
            check_operator(probe, random_operator(rng, action))
    for fields in ((0, 0, 0, 0, 0), (U64, 255, U32, U64, 0), (0, 1, 0, 0, U64), (U64, 2, U32, U64, U64)):
        tx = OperatorAction(*fields)
        tx.signature = eip712.sign(DOMAIN, tx, OPERATOR_KEY)
        check_operator(probe, tx)


def _reverts_with(probe, selector: bytes, chunk: bytes, error: str) -> None:
    with pytest.raises(Exception) as info:
        _call(probe, selector, chunk)
    assert revert_data(info.value)[:4] == keccak(error.encode())[:4], revert_data(info.value)


def test_not_packed_reverts(probe):
    rng = random.Random(SEED + 2)
    mark = random_mark(rng)
    op = random_operator(rng, int(OperatorActionKind.LIQUIDATE))
    w = Withdraw(T0_MS, 3, 10, 1)
    w.signature = eip712.sign(DOMAIN, w, OPERATOR_KEY)
    mark_chunk, op_chunk, w_chunk = (batch_v2.encode_chunk([tx]) for tx in (mark, op, w))
    # an ABI fallback chunk (0xFF || u len || encode_tx): a MarkUpdate with more prices than
    # instruments has no packed form
    odd = MarkUpdate(T0_MS, T0_MS, [1], [2, 3])
    odd.signature = eip712.sign(DOMAIN, odd, OPERATOR_KEY)
    fallback = batch_v2.encode_chunk([odd])
    assert fallback[0] == batch_v2.FALLBACK
    for chunk in (op_chunk, w_chunk, fallback, b""):
        _reverts_with(probe, _SEL_MARK, chunk, "NotPackedMark()")
    for chunk in (mark_chunk, w_chunk, fallback, b""):
        _reverts_with(probe, _SEL_OP, chunk, "NotPackedOperator()")
