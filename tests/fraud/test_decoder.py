"""The FraudVerifier's chunk decoder against batch_v2 / batch_v3 (differential, on the
in-process EVM): on real chunks (orders, cancels, mark updates with risk arrays and reports,
operator actions, deposits) and thousands of corruptions of them, the contract, its Python
mirror (``fraud.chunk_count`` then ``fraud.walk_chunk``) and the count of L1 transactions
agree exactly, and every chunk that the strict decoder (``batch_v3.decode_chunk_v3``) accepts
is accepted (the contract checks a subset of its rules, so an honest chunk is never provably
malformed)."""

from __future__ import annotations

import os
import random
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from fraud_env import scenario  # noqa: E402

from clearline.core.txs import Deposit, ForcedWithdrawal  # noqa: E402
from clearline.l1.batch_v2 import BatchFormatError  # noqa: E402
from clearline.l1.batch_v3 import decode_chunk_v3  # noqa: E402
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
        sizes = fraud.decode_batch(b.data).chunk_sizes
        for c, (a, e) in enumerate(b.parts):
            chunks.append((b.data[a:e], k, sizes[c]))
    verifier = chain.w3.eth.contract(address=s.r.deployment.verifier, abi=contract_abi("FraudVerifier"))
    return chunks, verifier


def _sol_decodes(verifier, chunk: bytes, k: int) -> bool:
    head = bytes((3, k, 1)) + (7 + len(chunk)).to_bytes(4, "big") if k < 128 else None
    assert head is not None
    ctx = (fraud.KIND_CHUNK_DECODE, 0, 1, 1, k, 0, 0, bytes(32), bytes(32),
           "0x0000000000000000000000000000000000000000")
    reason = verifier.functions.verify(ctx, head, chunk, b"").call()
    assert reason in (0, 10)
    return reason == 0


def _mirror_decodes(chunk: bytes, k: int) -> bool:
    counted, count = fraud.chunk_count(chunk, k)
    return counted and fraud.walk_chunk(chunk, count)[0]


def _strict_ok(chunk: bytes, k: int) -> bool:
    try:
        decode_chunk_v3(chunk, 0, len(chunk), k)
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
    for chunk, k, count in chunks:
        txs = decode_chunk_v3(chunk, 0, len(chunk), k)
        assert len(txs) == count and fraud.chunk_count(chunk, k) == (True, count)
        kinds.update(type(t).__name__ for t in txs)
        ok, _, _, l1 = fraud.walk_chunk(chunk, count)
        assert ok and l1 == sum(type(t) in (Deposit, ForcedWithdrawal) for t in txs)
        assert _sol_decodes(verifier, chunk, k)
        for j in range(count):  # the walk finds every transaction where batch_v2 does
            ok, before, at, _ = fraud.walk_chunk(chunk, count, j)
            assert ok and before == sum(type(t) in (Deposit, ForcedWithdrawal) for t in txs[:j])
    assert {"Order", "MarkUpdate", "Deposit"} <= kinds


def test_corrupted_chunks_contract_equals_mirror_and_strict_implies_accepted(setup):
    chunks, verifier = setup
    rng = random.Random(11)
    rejected = 0
    for i in range(600):
        chunk, k, _ = chunks[i % len(chunks)]
        bad = _corrupt(rng, chunk)
        if not bad:
            continue
        mirror = _mirror_decodes(bad, k)
        assert _sol_decodes(verifier, bad, k) == mirror, bad.hex()
        if _strict_ok(bad, k):
            assert mirror, bad.hex()
        rejected += not mirror
    assert rejected > 200  # most corruptions are caught at this level already


def test_v3_chunk_rules_contract_equals_mirror_and_strict(setup):
    """batch_v3's chunk rules: 1..k transactions, an operator-signed one (packed, or as a
    fallback) alone; the contract, its mirror and the strict decoder agree on each."""
    from clearline.core.txs import MarkUpdate, OperatorAction
    from clearline.l1.batch_v2 import encode_chunk

    chunks, verifier = setup
    k = chunks[0][1]
    multi = next(c for c, _, n in chunks if n > 1 and not any(
        isinstance(t, (MarkUpdate, OperatorAction)) for t in decode_chunk_v3(c, 0, len(c), k)))
    single_op = next(c for c, _, n in chunks if n == 1 and isinstance(decode_chunk_v3(c, 0, len(c), k)[0],
                                                                     MarkUpdate))
    n = len(decode_chunk_v3(multi, 0, len(multi), k))
    unpackable = MarkUpdate(1, 1, [3], [1, 2], [], [], signature=b"")  # two prices for one instrument
    fallback_op = encode_chunk([unpackable])
    assert fallback_op[0] == 0xFF
    cases = [
        (multi, k, True),
        (multi, n - 1, False),  # more than k transactions
        (single_op, k, True),
        (fallback_op, k, True),
        (multi + single_op, k, False),  # an operator transaction shares its chunk
        (single_op + multi, k, False),
        (multi + fallback_op, k, False),
        (single_op + single_op, k, False),
    ]
    for chunk, kk, want in cases:
        assert _strict_ok(chunk, kk) == want
        assert _mirror_decodes(chunk, kk) == want
        assert _sol_decodes(verifier, chunk, kk) == want
