"""The FraudVerifier's chunk decoder against batch_v3 / batch_v2 (differential, on the in-process
EVM): a chunk of batch data v3 is 1..k transactions parsing to its end, an operator-signed one
alone, each under batch_v2's strict rules.

On real chunks (orders, cancels, mark updates with risk arrays and reports, operator actions,
deposits), generated chunks of every kind (packed and ABI fallbacks, field values at and past
their bounds, every flag, both nonce forms, risk-array modes) and thousands of corruptions of
them (bit flips, byte insertions and deletions, truncations, non-minimal varints, field values
swapped for out-of-range ones, packed transactions swapped for their fallback, edited ABI
words), for every case:

    contract reason == mirror reason (``fraud.decode_chunk_reason``)
    contract reason != 0  <=>  the strict ``batch_v3.decode_chunk_v3`` raises

i.e. KIND_CHUNK_DECODE proves a chunk malformed exactly when the strict decoder rejects it. No strict
rule is left out: there is no allowed difference (``ALLOWED_DIFFERENCES`` is empty)."""

from __future__ import annotations

import ast
import os
import random
import sys

import pytest
from eth_tester.exceptions import TransactionFailed

sys.path.insert(0, os.path.dirname(__file__))

from fraud_env import scenario  # noqa: E402

from clearline.core.encoding import encode_tx  # noqa: E402
from clearline.core.hashing import keccak  # noqa: E402
from clearline.core.txs import (Cancel, Deposit, ForcedWithdrawal, MarkUpdate, OperatorAction, Order,  # noqa: E402
                                Replace, SetAccountFlags, SetMarginMode, Transfer, Withdraw)
from clearline.l1.batch_v2 import BatchFormatError, encode_chunk  # noqa: E402
from clearline.l1.batch_v3 import decode_chunk_v3  # noqa: E402
from clearline.l1.chain import InProcessChain  # noqa: E402
from clearline.l1.deploy import contract_abi  # noqa: E402
from clearline.oracle.report import PriceReport  # noqa: E402
from clearline.watchtower import fraud  # noqa: E402
from clearline.watchtower.l1data import RollupReader  # noqa: E402

U32, U64 = (1 << 32) - 1, (1 << 64) - 1
ALLOWED_DIFFERENCES: tuple[str, ...] = ()  # strict rules the contract does not check: none
CHUNK_REASONS = {10, 11, 12, 13}


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


MALFORMED = keccak(b"ChunkMalformed(uint256)")[:4]


def _revert_data(exc: Exception) -> bytes:
    """The revert data of a failed eth_call on the in-process chain (eth_tester puts it in
    the message as a bytes literal)."""
    msg = exc.args[0]
    if isinstance(msg, (bytes, bytearray)):
        return bytes(msg)
    prefix = "execution reverted: "
    assert isinstance(msg, str) and msg.startswith(prefix), msg
    return ast.literal_eval(msg[len(prefix):])


def _sol_decode(verifier, chunk: bytes, k: int) -> int:
    """``decodeChunk`` itself (what ``verify`` catches): 0, or its ChunkMalformed reason."""
    try:
        verifier.functions.decodeChunk(chunk, k, 2**256 - 1).call()
    except TransactionFailed as exc:
        data = _revert_data(exc)
        assert len(data) == 36 and data[:4] == MALFORMED, data.hex()
        return int.from_bytes(data[4:], "big")
    return 0


def _sol_reason(verifier, chunk: bytes, k: int) -> int:
    """Through ``verify`` (KIND_CHUNK_DECODE) with a one-chunk v3 framing."""
    assert 0 < k < 128
    head = bytes((3, k, 1)) + (7 + len(chunk)).to_bytes(4, "big")
    ctx = (fraud.KIND_CHUNK_DECODE, 0, 1, 1, k, 0, 0, bytes(32), bytes(32),
           "0x0000000000000000000000000000000000000000", bytes(32), bytes(32), bytes(32))
    return verifier.functions.verify(ctx, head, chunk, b"").call()


def _strict_ok(chunk: bytes, k: int) -> bool:
    try:
        decode_chunk_v3(chunk, 0, len(chunk), k)
    except BatchFormatError:
        return False
    return True


def _check(verifier, chunk: bytes, k: int, via_verify: bool = True) -> int:
    """Contract == mirror, and (reason != 0) == (strict rejects); returns the reason.
    ``via_verify``: through ``verify`` (KIND_CHUNK_DECODE), else ``decodeChunk`` directly (2x
    faster on the in-process EVM; ``verify`` returns what it reverts with, checked here on a
    share of the cases)."""
    sol = _sol_reason(verifier, chunk, k) if via_verify else _sol_decode(verifier, chunk, k)
    mirror = fraud.decode_chunk_reason(chunk, k)[0]
    assert sol == mirror, (sol, mirror, k, chunk.hex())
    assert sol == 0 or sol in CHUNK_REASONS
    assert (sol == 0) == _strict_ok(chunk, k), (sol, k, chunk.hex())
    return sol


# ------------------------------------------------------------------ a packed-format writer
# Writes transactions field by field (batch_v2's layout) with values drawn at random, mostly
# valid, sometimes at or past a bound or in a non-canonical form; batch_v2 is the judge. It
# records every varint's span so that corruptions can target them.
def _zz(v: int) -> int:
    return v << 1 if v >= 0 else ((-v) << 1) - 1


class _W:
    def __init__(self, rng: random.Random, clean: bool):
        self.rng = rng
        self.clean = clean  # only valid values and forms (a fault comes from a mutation, if any)
        self.b = bytearray()
        self.spans: list[tuple[int, int]] = []
        self.tx_starts: list[int] = []
        self.no_ops = False  # no operator-signed transaction (v3: one would have to be alone)

    def u(self, v: int) -> None:
        start = len(self.b)
        while v > 0x7F:
            self.b.append((v & 0x7F) | 0x80)
            v >>= 7
        self.b.append(v)
        self.spans.append((start, len(self.b)))

    def z(self, v: int) -> None:
        self.u(_zz(v))

    def raw(self, data: bytes) -> None:
        self.b += data

    def val(self, limit: int) -> int:
        """A field value: mostly small, sometimes at / just past ``limit`` or huge."""
        r = self.rng.random() * (0.9 if self.clean else 1.0)
        if r < 0.75:
            return self.rng.choice((0, 1, 5, 127, 128, 300, 70_000, self.rng.randrange(1 << 20)))
        if r < 0.9:
            return limit
        if r < 0.97:
            return limit + 1
        return self.rng.choice(((1 << 70) - 1, U64, U32 + 1, 1 << 63))

    def sig(self) -> None:
        self.raw(bytes(self.rng.randrange(256) for _ in range(64)))

    def nonce(self, t: int) -> int:
        """Writes a nonce; returns the F3 flag used (right or wrong form, sometimes out of range)."""
        rng = self.rng
        nonce = max(0, rng.choice((t, t + 1, t + 1000, t - 5, 1, 0, 200, 1 << 40, U64, U64 + 1, t + (1 << 50))))
        rel = _zz(nonce - t)
        short = (len(_ulen_bytes(rel)) < len(_ulen_bytes(nonce)))
        if self.clean:
            nonce = min(nonce, U64)
            rel = _zz(nonce - t)
            short = (len(_ulen_bytes(rel)) < len(_ulen_bytes(nonce)))
        f3 = short if self.clean or rng.random() < 0.8 else not short
        if f3:
            self.u(rel)
            return 0x40
        self.u(nonce)
        return 0


def _ulen_bytes(v: int) -> bytes:
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def _packed_tx(w: _W, t_prev: int) -> int:
    """Appends one packed transaction; returns its time."""
    rng = w.rng
    clean = w.clean
    # no_ops: several transactions of the kinds that may share a chunk (deposits and cancels; the
    # others, 2 and 4..11, must be alone: a chunk of one, or the chunks without no_ops, which they
    # mostly make invalid)
    kinds = (1, 3, 3) if w.no_ops else (1, 2, 2, 3, 4, 5, 6, 7, 7, 7, 8, 9, 10, 11)
    kind = rng.choice(kinds) if clean or rng.random() > 0.01 else rng.choice((0, 12, 15))
    at = len(w.b)
    w.tx_starts.append(at)
    w.raw(b"\x00")  # head, set below
    t = t_prev
    head = kind
    if rng.random() < 0.6:
        delta = rng.choice((1, 5, 1000, -1, -3, 0, 1 << 20)) if rng.random() < 0.95 else -(t_prev + 1)
        if clean:
            delta = rng.choice((1, 5, 1000, 1 << 20, -t_prev)) or 1
        head |= 0x80
        w.z(delta)
        t = t_prev + delta
    flags = 0
    if kind in (1, 10):
        w.u(w.val(U64))
        w.raw(bytes(rng.randrange(256) for _ in range(20)))
        w.u(w.val(U32))
        w.u(w.val(U64))
        if not clean and rng.random() < 0.05:
            flags |= rng.choice((0x10, 0x20, 0x40))
    elif kind == 2:
        w.u(w.val(U32))
        w.u(w.val(U32))
        w.raw(bytes((rng.randrange(256),)))
        w.u(w.val(U64))
        w.u(w.val(U64))
        if rng.random() < 0.4:
            flags |= 0x10
            w.z(rng.choice((1000, U64 - t) if clean else (1000, 1, 0, -t, -t - 1, U64 - t, U64 - t + 1)))
        if rng.random() < 0.4:
            flags |= 0x20
            w.u(rng.choice((1, 7, U64) if clean else (1, 7, 0, U64, U64 + 1)))
        flags |= w.nonce(t)
        w.sig()
    elif kind in (3, 4, 5, 6, 9, 11):
        w.u(w.val(U32))
        if kind == 3:
            w.u(w.val(U32))
            w.u(w.val(U64))
            w.u(w.val(U64))
            flags |= rng.choice((0, 0x10, 0x20, 0x30))
        elif kind == 4:
            for _ in range(3):
                w.u(w.val(U64))
        elif kind == 5:
            w.u(w.val(U64))
        elif kind == 6:
            w.u(w.val(U32))
            w.u(w.val(U64))
        else:
            w.raw(bytes((rng.randrange(256),)))
        flags |= w.nonce(t)
        if kind != 3 and not clean and rng.random() < 0.05:
            flags |= rng.choice((0x10, 0x20))
        w.sig()
    elif kind == 8:
        w.raw(bytes((rng.randrange(256),)))
        w.u(w.val(U32))
        w.u(w.val(U64))
        w.z(rng.choice((0, -t, U64 - t) if clean else (0, -1, -t, -t - 1, U64 - t, U64 - t + 1)))
        if not clean and rng.random() < 0.05:
            flags |= rng.choice((0x10, 0x20, 0x40))
        w.sig()
    elif kind == 7:
        flags |= _packed_mark(w, t)
    head |= flags
    w.b[at] = head
    return t


def _packed_mark(w: _W, t: int) -> int:
    rng = w.rng
    flags = 0
    clean = w.clean
    ts_delta = rng.choice((0, -t, 5) if clean else (0, -1, -1000, -t, -t - 1, 5))
    w.z(ts_delta)
    ts = t + ts_delta
    n = rng.choice((0, 1, 2, 3, 4, 6))
    w.u(n)
    if rng.random() < 0.5 or (clean and n == 1):
        if n or not clean:
            flags |= 0x10
            bad = not clean and rng.random() < 0.3
            w.u(rng.choice((0, 5, U32 - n + 1, U32 - n + 2, U32 + 1)) if bad else rng.randrange(100))
    elif clean:
        prev = 0
        for j in range(n):
            w.z(3 + (j > 0) * 2 - prev if j < 2 else 3)
            prev = 3 + (j > 0) * 2 if j < 2 else prev + 3
    else:
        prev = 0
        consecutive = rng.random() < 0.15
        base = rng.randrange(50)
        for j in range(n):
            i = base + j if consecutive else (rng.choice((prev + rng.randrange(1, 9), max(0, prev - 3), U32, U32 + 1))
                                              if rng.random() < 0.1 else base + 3 * j + rng.randrange(3))
            w.z(i - prev)
            prev = i
    for _ in range(n):
        w.u(w.val(U64))
    if rng.random() < 0.6 and (n or (not clean and rng.random() < 0.1)):
        flags |= 0x20
        for j in range(n):
            mode = rng.choice((0, 0, 1, 2, 3)) if rng.random() < 0.95 else rng.choice((4, 255, j + 1))
            if clean:
                mode = rng.randrange(min(j, 3) + 1)
            w.raw(bytes((mode,)))
            for _ in range(16):
                r = rng.random()
                v = (rng.randrange(-2000, 2000) if r < 0.9 or clean else rng.choice(
                    ((1 << 63) - 1, -(1 << 63), 1 << 62, -(1 << 62), (1 << 63), (1 << 69) - 1, -(1 << 69))))
                w.z(v)
    m = rng.choice((0, 1, 2))
    w.u(m)
    for _ in range(m):
        w.u(w.val(U32))
        w.u(w.val(U64))
        w.z(rng.choice((0, 7, -ts) if clean else (0, -5, 7, -ts, -ts - 1, U64 - ts + 1)))
        w.u(w.val(U64))
        w.sig()
    w.sig()
    if not clean and rng.random() < 0.03:
        flags |= 0x40
    return flags


def _sig65(rng: random.Random, packable: bool = True) -> bytes:
    s = bytearray(rng.randrange(256) for _ in range(32))
    v = rng.choice((27, 28))
    if packable:
        s[0] &= 0x7F
    else:
        choice = rng.randrange(3)
        if choice == 0:
            s[0] |= 0x80
        elif choice == 1:
            v = rng.choice((0, 1, 29, 255))
        else:
            return b""
    return bytes(rng.randrange(256) for _ in range(32)) + bytes(s) + bytes((v,))


def _abi_tx(rng: random.Random, t: int, clean: bool, no_ops: bool = False):
    """A transaction object for an ABI fallback: packable (so the fallback is wrong) or not;
    ``no_ops``: not an operator-signed one."""
    packable = not clean and rng.random() < 0.35
    sig = _sig65(rng, packable)
    owner = bytes(rng.randrange(256) for _ in range(20))
    k = rng.randrange(11)
    if no_ops and k not in (0, 2):  # all but deposits and cancels must be alone in a chunk
        k = 2
    if k == 0 and not clean:
        return rng.choice((Deposit, ForcedWithdrawal))(t, 3, owner, 2, 1000)
    if k <= 1:
        side = rng.choice((0, 1)) if packable or rng.random() < 0.5 else rng.choice((2, 7, 255))
        stp = rng.choice((0, 3)) if packable or rng.random() < 0.5 else 4
        if clean and side <= 1 and stp <= 3:
            side = 2
        return Order(t, 1, 2, side, 1, 3, 3, stp, 100, 5, 0, 0, 9, sig)
    if k == 2:
        return Cancel(t, 1, rng.choice((0, 3)) if packable or (rng.random() < 0.5 and not clean) else 4, 2, 3, 4, 5,
                      sig)
    if k == 3:
        return Replace(t, 1, 2, 3, 4, 5, sig)
    if k == 4:
        return Withdraw(t, 1, 2, 3, sig)
    if k == 5:
        return Transfer(t, 1, 2, 3, 4, sig)
    if k == 6:
        return OperatorAction(t, 200, 1, 2, t, sig)
    if k == 7:
        return SetMarginMode(t, 1, 7, 3, sig)
    if k == 8:
        return SetAccountFlags(t, 1, 3, 4, sig)
    n = rng.randrange(3)
    reports = [PriceReport(1, 2, 3, 4, _sig65(rng, packable or rng.random() < 0.5)) for _ in range(rng.randrange(3))]
    prices = [7] * (n if packable or rng.random() < 0.5 else n + 1)
    if clean and not prices:  # the signature is unpackable already (not packable above)
        prices = [7]
    risk = [[rng.randrange(-9, 9) for _ in range(16)] for _ in range(n)] if rng.random() < 0.5 else []
    return MarkUpdate(t, t, list(range(n)), prices, risk, reports, signature=sig)


def _fallback(w: _W, t_prev: int) -> int:
    rng = w.rng
    t = max(0, t_prev + rng.randrange(-3, 10))
    abi = bytearray(encode_tx(_abi_tx(rng, t, w.clean, w.no_ops)))
    r = rng.random() + (1 if w.clean else 0)
    if r < 0.15:  # a padding / value bit of some word
        i = rng.randrange(len(abi))
        abi[i] ^= 1 << rng.randrange(8)
    elif r < 0.2:
        abi[31] = rng.choice((0, 11, 12, 7, 2))
    elif r < 0.25:
        del abi[rng.randrange(len(abi)):]
    elif r < 0.3:
        abi += bytes(32)
    w.tx_starts.append(len(w.b))
    w.raw(b"\xff")
    w.u(len(abi))
    w.raw(bytes(abi))
    return t


def _generated(rng: random.Random) -> tuple[bytes, int, _W]:
    w = _W(rng, rng.random() < 0.5)
    count = rng.choice((1, 2, 3, 4, 6, 8, 16))
    w.no_ops = count > 1 and rng.random() < 0.85  # else transactions that must be alone may share the chunk
    t = rng.choice((0, 5, 1_700_000_000_000))
    for _ in range(count):
        t = _fallback(w, t) if rng.random() < 0.15 else _packed_tx(w, t)
    if not w.clean and rng.random() < 0.05:
        count += rng.choice((-1, 1))
    return bytes(w.b), max(count, 1), w


# -------------------------------------------------------------------------------- mutations
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


def _targeted(rng: random.Random, chunk: bytes, w: _W) -> bytes:
    """A non-minimal form or another value for one varint, or a flag bit of one head."""
    b = bytearray(chunk)
    op = rng.randrange(4)
    if op == 3 or not w.spans:
        at = rng.choice(w.tx_starts)
        if b[at] != 0xFF:
            b[at] ^= rng.choice((0x10, 0x20, 0x40, 0x80))
        return bytes(b)
    s, e = rng.choice(w.spans)
    value = 0
    for k, x in enumerate(b[s:e]):
        value |= (x & 0x7F) << (7 * k)
    if op == 0:  # overlong: the same value with a trailing zero group (or more than 10 bytes)
        extra = rng.choice((1, 1, 2, 10))
        enc = bytearray(_ulen_bytes(value))
        enc[-1] |= 0x80
        enc += b"\x80" * (extra - 1) + b"\x00"
        b[s:e] = enc
    else:
        new = rng.choice((U32, U32 + 1, U64, U64 + 1, value + 1, max(0, value - 1), 0, (1 << 70) - 1,
                          (1 << 64) + 2, 1 << 65))
        b[s:e] = _ulen_bytes(new)
    return bytes(b)


# ------------------------------------------------------------------------------------ tests
def test_real_chunks_decode_everywhere(setup):
    chunks, verifier = setup
    kinds = set()
    for chunk, k, count in chunks:
        txs = decode_chunk_v3(chunk, 0, len(chunk), k)
        assert len(txs) == count
        kinds.update(type(t).__name__ for t in txs)
        reason, _, _, l1, n = fraud.decode_chunk_reason(chunk, k)
        assert reason == 0 and n == count and l1 == sum(type(t) in (Deposit, ForcedWithdrawal) for t in txs)
        assert _sol_reason(verifier, chunk, k) == 0
        for j in range(count):  # the walk finds every transaction where batch_v2 does
            ok, before, at, _ = fraud.walk_chunk(chunk, k, j)
            assert ok and before == sum(type(t) in (Deposit, ForcedWithdrawal) for t in txs[:j])
    assert {"Order", "MarkUpdate", "Deposit"} <= kinds
    assert any(not chunk for chunk, _, _ in chunks)  # matching steps: empty chunks, which decode (to none)


def test_generated_and_corrupted_chunks_contract_equals_mirror_equals_strict(setup):
    """Both directions over 2,400 seeded cases (CLEARLINE_DECODER_CASES for a soak)."""
    chunks, verifier = setup
    chunks = [c for c in chunks if c[0]]  # a matching step's empty chunk has nothing to corrupt
    rng = random.Random(6)
    n_cases = int(os.environ.get("CLEARLINE_DECODER_CASES", "2400"))
    reasons: dict[int, int] = {}
    generated_ok = 0
    for i in range(n_cases):
        r = i % 6
        if r == 0 and i % 12 == 0:  # a real chunk, corrupted at random
            chunk, k, _ = chunks[(i // 12) % len(chunks)]
            case, n = _corrupt(rng, chunk), k
        else:
            chunk, count, w = _generated(rng)
            if r in (1, 2):
                case = chunk
                generated_ok += _strict_ok(chunk, count)
            elif r in (3, 4):
                case = _targeted(rng, chunk, w)
            else:
                case = _corrupt(rng, chunk)
            n = count
        if not case:
            continue
        reason = _check(verifier, case, n, via_verify=i % 8 == 7)
        reasons[reason] = reasons.get(reason, 0) + 1
    # every reason is reached, and plenty of generated chunks are valid (the test is not trivial)
    assert set(reasons) == {0} | CHUNK_REASONS, reasons
    assert min(reasons.values()) > 30 and generated_ok > 100, (reasons, generated_ok)


def _one(head: int, body: bytes) -> bytes:
    return bytes((head,)) + body


def _v(x: int) -> bytes:
    return _ulen_bytes(x)


SIG = bytes(range(64))


@pytest.mark.parametrize("name, chunk, reason", [
    # field ranges (uintN bounds)
    ("withdraw account = 2^32", _one(5, _v(U32 + 1) + _v(1) + _v(1) + SIG), 11),
    ("withdraw account = 2^32 - 1", _one(5, _v(U32) + _v(1) + _v(1) + SIG), 0),
    ("deposit amount = 2^64", _one(1, _v(0) + bytes(20) + _v(0) + _v(U64 + 1)), 11),
    ("time below 0", _one(0x85, _v(_zz(-1)) + _v(1) + _v(1) + _v(1) + SIG), 11),
    ("order expiry 0 with F1", _one(0x12, _v(1) * 2 + b"\x00" + _v(1) * 2 + _v(0) + _v(1) + SIG), 12),
    ("order clientId 0 with F2", _one(0x22, _v(1) * 2 + b"\x00" + _v(1) * 2 + _v(0) + _v(1) + SIG), 12),
    ("operator timestamp below 0", _one(8, b"\x01" + _v(1) + _v(1) + _v(_zz(-1)) + SIG), 11),
    ("packed SetAccountFlags", _one(0x0B, _v(1) + b"\x01" + _v(1) + SIG), 0),
    ("packed SetAccountFlags with any flags byte", _one(0x0B, _v(1) + b"\xff" + _v(1) + SIG), 0),
    ("SetAccountFlags with F1", _one(0x1B, _v(1) + b"\x01" + _v(1) + SIG), 12),
    ("head kind 12", _one(0x0C, _v(1) + b"\x01" + _v(1) + SIG), 10),
    # flags that must be 0
    ("deposit with F1", _one(0x11, _v(0) + bytes(20) + _v(0) + _v(1)), 12),
    ("withdraw with F2", _one(0x25, _v(1) + _v(1) + _v(1) + SIG), 12),
    ("operator with F3", _one(0x48, b"\x01" + _v(1) + _v(1) + _v(0) + SIG), 12),
    ("mark with F3", _one(0x47, _v(0) + _v(0) + _v(0) + SIG), 12),
    # shortest nonce forms (time 1000: nonce 1000 is z 0 relative, 1 byte vs 2 plain)
    ("plain nonce where relative is shorter", _one(0x85, _v(2000) + _v(1) + _v(1) + _v(1000) + SIG), 12),
    ("relative nonce where it is shorter", _one(0xC5, _v(2000) + _v(1) + _v(1) + _v(0) + SIG), 0),
    ("relative nonce on a tie", _one(0x45, _v(1) + _v(1) + _v(_zz(5)) + SIG), 12),
    ("plain nonce on a tie", _one(0x05, _v(1) + _v(1) + _v(5) + SIG), 0),
    ("non-minimal varint", _one(5, b"\x81\x00" + _v(1) + _v(1) + SIG), 10),
    # mark updates: runs, risk-array modes, int64 values
    ("one instrument not as a run", _one(7, _v(0) + _v(1) + _v(_zz(3)) + _v(1) + _v(0) + SIG), 12),
    ("one instrument as a run", _one(0x17, _v(0) + _v(1) + _v(3) + _v(1) + _v(0) + SIG), 0),
    ("run of length 0", _one(0x17, _v(0) + _v(0) + _v(3) + _v(0) + SIG), 12),
    ("run past uint32", _one(0x17, _v(0) + _v(2) + _v(U32) + _v(1) * 2 + _v(0) + SIG), 11),
    ("risk flag without instruments", _one(0x27, _v(0) + _v(0) + _v(0) + SIG), 12),
    ("risk mode 1 for array 0",
     _one(0x37, _v(0) + _v(1) + _v(3) + _v(1) + b"\x01" + _v(0) * 16 + _v(0) + SIG), 12),
    ("risk value past int64",
     _one(0x37, _v(0) + _v(1) + _v(3) + _v(1) + b"\x00" + _v(_zz(1 << 63)) + _v(0) * 15 + _v(0) + SIG), 11),
    ("risk value int64 min",
     _one(0x37, _v(0) + _v(1) + _v(3) + _v(1) + b"\x00" + _v(0) * 15 + _v(_zz(-(1 << 63))) + _v(0) + SIG), 0),
    # fallbacks
    ("fallback for a packable deposit", b"\xff" + _v(192) + encode_tx(Deposit(0, 0, bytes(20), 0, 1)), 13),
    ("fallback for an unsigned SetAccountFlags", b"\xff" + _v(256) + encode_tx(SetAccountFlags(0, 1, 1, 1, b"")), 0),
    ("fallback for a signed SetAccountFlags (it packs)",
     b"\xff" + _v(256) + encode_tx(SetAccountFlags(0, 1, 1, 1, SIG + b"\x1b")), 13),
    ("fallback for an unsigned withdraw", b"\xff" + _v(256) + encode_tx(Withdraw(0, 1, 1, 1, b"")), 0),
    ("fallback for a signed withdraw", b"\xff" + _v(256) + encode_tx(Withdraw(0, 1, 1, 1, SIG + b"\x1b")), 13),
    ("fallback for an order with side 2",
     b"\xff" + _v(544) + encode_tx(Order(0, 1, 1, 2, 0, 0, 0, 0, 1, 1, 0, 0, 1, SIG + b"\x1b")), 0),
    ("fallback with bad padding",
     b"\xff" + _v(256) + (lambda a: a[:40] + b"\x01" + a[41:])(encode_tx(Withdraw(0, 1, 1, 1, b""))), 13),
    ("fallback of 31 bytes", b"\xff" + _v(31) + bytes(31), 13),
])
def test_each_rule(setup, name, chunk, reason):
    _, verifier = setup
    assert _check(verifier, chunk, 1) == reason, name


def test_walk_to_a_transaction_contract_equals_mirror(setup):
    """``decodeChunk`` with a target (kinds 3-5 walk to a transaction) stops where the mirror
    does, with the same L1 transactions before it, or fails with the same reason."""
    _, verifier = setup
    rng = random.Random(9)
    stopped = 0
    for _ in range(150):
        chunk, count, _w = _generated(rng)
        target = rng.randrange(count)
        mirror = fraud.decode_chunk_reason(chunk, count, target)
        try:
            before, at, total, n = verifier.functions.decodeChunk(chunk, count, target).call()
            sol = (0, before, at, total, n)
        except TransactionFailed as exc:
            data = _revert_data(exc)
            assert data[:4] == MALFORMED
            sol = (int.from_bytes(data[4:], "big"), 0, 0, 0, mirror[4])
        assert sol == mirror, (sol, mirror, target, chunk.hex())
        stopped += sol[0] == 0
    assert stopped > 40


def test_v3_chunk_rules_contract_equals_mirror_and_strict(setup):
    """batch_v3's chunk rules: 1..k transactions, an operator-signed one (packed, or as a
    fallback) alone; the contract, its mirror and the strict decoder agree on each."""
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
        assert (_check(verifier, chunk, kk) == 0) == want
