"""The FraudVerifier's chunk decoder against batch_v2 (differential, on the in-process EVM):
on real chunks (orders, cancels, mark updates with risk arrays and reports, operator actions,
deposits) and thousands of corruptions of them, the contract, its Python mirror
(``fraud.walk_chunk``) and the count of L1 transactions agree exactly, and every chunk that
batch_v2's strict decoder accepts is accepted (the contract checks a subset of its rules, so
an honest chunk is never provably malformed)."""

from __future__ import annotations

import os
import random
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fraud_env import scenario  # noqa: E402

from clearline.core.txs import Deposit, ForcedWithdrawal  # noqa: E402
from clearline.l1.batch_v2 import BatchFormatError, decode_chunk  # noqa: E402
from clearline.l1.chain import InProcessChain  # noqa: E402
from clearline.l1.deploy import contract_abi  # noqa: E402
from clearline.watchtower import fraud  # noqa: E402
from clearline.watchtower.l1data import RollupReader  # noqa: E402


@pytest.fixture(scope="module")
def setup():
    chain = InProcessChain(n_accounts=10)
    s = scenario(chain, None)
    reader = RollupReader(chain, s.r.deployment.rollup)
    chunks = []
    for ref in reader.batch_refs(1):
        b = fraud._load(reader, ref.number)
        k = ref.header.txs_per_root
        n = len(fraud.decode_batch(b.data).txs)
        for c, (a, e) in enumerate(b.parts):
            chunks.append((b.data[a:e], min(k, n - c * k)))
    verifier = chain.w3.eth.contract(address=s.r.deployment.verifier, abi=contract_abi("FraudVerifier"))
    return chunks, verifier


def _sol_decodes(verifier, chunk: bytes, count: int) -> bool:
    head = bytes((2, count, count)) + (8 + len(chunk)).to_bytes(4, "big") if count < 128 else None
    assert head is not None
    ctx = (fraud.KIND_CHUNK_DECODE, 0, 1, 1, count, 0, 0, bytes(32), bytes(32),
           "0x0000000000000000000000000000000000000000")
    reason = verifier.functions.verify(ctx, head, chunk, b"").call()
    assert reason in (0, 10)
    return reason == 0


def _strict_ok(chunk: bytes, count: int) -> bool:
    try:
        decode_chunk(chunk, 0, len(chunk), count)
    except BatchFormatError:
        return False
    return True


def _corrupt(rng: random.Random, chunk: bytes) -> bytes:
    b = bytearray(chunk)
    op = rng.randrange(5)
    i = rng.randrange(len(b))
    if op == 0:
        b[i] ^= 1 << rng.randrange(8)
    elif op == 1:
        b[i] = rng.choice((0x00, 0x7F, 0x80, 0xFF, 0x0B, 0x8B, 0x81))
    elif op == 2:
        del b[i:i + rng.randrange(1, 4)]
    elif op == 3:
        b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3)))
    else:
        b = b[:i]
    return bytes(b)


def test_real_chunks_decode_everywhere(setup):
    chunks, verifier = setup
    kinds = set()
    for chunk, count in chunks:
        txs = decode_chunk(chunk, 0, len(chunk), count)
        kinds.update(type(t).__name__ for t in txs)
        ok, _, _, l1 = fraud.walk_chunk(chunk, count)
        assert ok and l1 == sum(type(t) in (Deposit, ForcedWithdrawal) for t in txs)
        assert _sol_decodes(verifier, chunk, count)
        for j in range(count):  # the walk finds every transaction where batch_v2 does
            ok, before, at, _ = fraud.walk_chunk(chunk, count, j)
            assert ok and before == sum(type(t) in (Deposit, ForcedWithdrawal) for t in txs[:j])
    assert {"Order", "MarkUpdate", "Deposit"} <= kinds


def test_corrupted_chunks_contract_equals_mirror_and_strict_implies_accepted(setup):
    chunks, verifier = setup
    rng = random.Random(11)
    rejected = 0
    for i in range(600):
        chunk, count = chunks[i % len(chunks)]
        bad = _corrupt(rng, chunk)
        if not bad:
            continue
        mirror = fraud.walk_chunk(bad, count)[0]
        assert _sol_decodes(verifier, bad, count) == mirror, bad.hex()
        if _strict_ok(bad, count):
            assert mirror, bad.hex()
        rejected += not mirror
    assert rejected > 200  # most corruptions are caught at this level already
