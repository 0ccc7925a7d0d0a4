"""Parallel signature verification, the most expensive step of intake.

Two modes, both keeping input order:
- ``thread`` (default): coincurve releases the GIL inside recovery, so threads scale
  (measured ~30k/s on one thread, ~51k/s on two), and they die with the node: a node
  killed with SIGKILL leaves no orphan workers holding its files or pipes.
- ``process``: worker processes decode, hash and recover, and send back only the
  20-byte signers, so the Python around secp256k1 runs truly in parallel with the
  sequencer's own thread (which then only re-decodes, a few microseconds). Measured no
  faster than threads end to end on 2 cores, and forked workers outlive a killed node.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from ..core import eip712
from ..core.encoding import decode_tx
from ..core.errors import ErrorCode, Rejected
from ..core.txs import Deposit, ForcedWithdrawal


def verify_one(domain: eip712.Domain, payload: bytes):
    """Decode one signed input and recover its signer. Returns the tx or a ``Rejected``."""
    try:
        tx = decode_tx(payload)
        if isinstance(tx, (Deposit, ForcedWithdrawal)):
            return Rejected(ErrorCode.UNKNOWN_TX_KIND, "deposits and forced withdrawals come only from the L1 queue")
        tx.signer = eip712.recover_signer(domain, tx)
        return tx
    except Rejected as e:
        return e


def verify_chunk(domain: eip712.Domain, payloads: list[bytes]) -> list:
    return [verify_one(domain, p) for p in payloads]


_worker_domain: eip712.Domain | None = None


def _init_worker(chain_id: int, contract: bytes) -> None:
    global _worker_domain
    _worker_domain = eip712.Domain(chain_id, contract)


def _signers_chunk(payloads: list[bytes]) -> list:
    """In a worker: the signer address of each payload, or (code, message) if invalid."""
    out = []
    for p in payloads:
        r = verify_one(_worker_domain, p)
        out.append((int(r.code), r.message) if isinstance(r, Rejected) else r.signer)
    return out


class Verifier:
    """Verifies lists of payloads on ``workers`` threads or processes, in chunks."""

    def __init__(self, domain: eip712.Domain, workers: int = 2, chunk: int = 256, mode: str = "thread"):
        self.domain = domain
        self.chunk = chunk
        self.mode = mode if workers > 1 else "inline"
        if self.mode == "process":
            self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"),
                                            initializer=_init_worker,
                                            initargs=(domain.chain_id, domain.verifying_contract))
        elif self.mode == "thread":
            self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
        else:
            self.pool = None

    def _submit(self, payloads: list[bytes]):
        if self.mode == "process":
            return self.pool.submit(_signers_chunk, payloads)
        return self.pool.submit(verify_chunk, self.domain, payloads)

    def _finish(self, payloads: list[bytes], result) -> list:
        if self.mode != "process":
            return result
        out = []
        for p, r in zip(payloads, result):
            if isinstance(r, tuple):
                out.append(Rejected(ErrorCode(r[0]), r[1]))
            else:
                tx = decode_tx(p)  # valid: the worker decoded the same bytes
                tx.signer = r
                out.append(tx)
        return out

    def verify(self, payloads: list[bytes]) -> list:
        if self.pool is None or len(payloads) <= 16:
            return verify_chunk(self.domain, payloads)
        n = max(16, min(self.chunk, -(-len(payloads) // 2)))
        parts = [payloads[i:i + n] for i in range(0, len(payloads), n)]
        futures = [self._submit(part) for part in parts]
        out: list = []
        for part, f in zip(parts, futures):
            out.extend(self._finish(part, f.result()))
        return out

    def verify_stream(self, batches):
        """Pipelined: yields verified batches in order while later ones are being verified."""
        if self.pool is None:
            for b in batches:
                yield verify_chunk(self.domain, b)
            return
        pending = []
        for b in batches:
            pending.append((b, self._submit(b)))
            if len(pending) >= 4:
                part, f = pending.pop(0)
                yield self._finish(part, f.result())
        for part, f in pending:
            yield self._finish(part, f.result())

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
            self.pool = None
