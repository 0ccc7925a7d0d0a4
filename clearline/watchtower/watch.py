"""``clearline watch``: a watchtower that acts.

Follows L1 (every ``--interval`` seconds, or once with ``--once``): rebuilds the whole state from
L1 data alone (``verify``), and on the first commitment the data does not reproduce builds a
fraud proof (``fraud.build_proof``) and, with ``--challenge``, submits it from ``--key``'s
account: ``Rollup.commitChallenge``, then ``proveFraud`` in a later block. It then prints what
it proved (batch, chunk, transaction, kind, reason, gas, bond paid to it and burnt) and that the
system is frozen: accounts can now escape with ``clearline escape``.

Exit status: 0 the chain is honest (``--once``) or already frozen; 1 a mismatch was found
(proven on chain with ``--challenge``: the output says ``PROVEN``); 2 an error (L1 unreadable,
no implemented proof kind proves the mismatch, or the proof transaction reverted).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
from typing import Any

__all__ = ["Follower", "add_arguments", "build_parser", "main", "prove", "run", "watch_once"]


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--rpc", required=True, help="Ethereum JSON-RPC URL")
    p.add_argument("--rollup", required=True, help="Rollup contract address (0x...)")
    p.add_argument("--challenge", action="store_true",
                   help="submit the fraud proof (commit, then reveal); without it, only report")
    p.add_argument("--key", default=None,
                   help="hex private key of the challenger (default: anvil's first dev key); "
                        "it receives half the sequencer's bond")
    p.add_argument("--once", action="store_true", help="check once and exit instead of following L1")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between checks (default 5)")
    p.add_argument("--from-block", type=int, default=None, help="first block to scan for events")
    p.add_argument("--json", action="store_true", help="print results as JSON lines")
    return p


def build_parser(prog: str = "clearline watch") -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(
        prog=prog, description="Follow L1, rebuild the state from its data, and prove fraud on the first "
                               "wrong commitment (--challenge)."))


def watch_once(chain: Any, rollup: str, *, challenge: bool, from_block: int | None = None) -> dict:
    """One check. ``{"status": "ok" | "frozen" | "mismatch" | "proven", ...}``."""
    from clearline.l1.client import L1Client

    from .verify import verify

    client = L1Client.for_rollup(chain, rollup, chain.accounts[0])
    out: dict = {"rollup": client.deployment.rollup}
    if client.frozen():
        out.update(status="frozen", last_batch=client.last_batch(), finalized=client.last_finalized_batch())
        return out
    report = verify(chain, rollup, progress=None, workers=1, mode="thread", from_block=from_block)
    out.update(last_batch=report.last_batch, finalized=report.last_finalized_batch)
    if report.ok:
        out.update(status="ok", state_root="0x" + report.state_root.hex())
        return out
    m = report.mismatch
    out.update(status="mismatch", mismatch=m.line())
    if m.batch <= report.last_finalized_batch:
        out["error"] = f"batch {m.batch} is already finalized: too late to prove"
        return out
    out.update(prove(chain, rollup, m.batch, challenger=client if challenge else None, from_block=from_block))
    return out


def prove(source: Any, rollup: str, number: int, *, challenger: Any = None, from_block: int | None = None) -> dict:
    """Build the fraud proof against batch ``number`` from L1 data alone
    (``fraud.build_proof``) and, with ``challenger`` (an ``L1Client`` sending from the
    challenger's account), submit it (``fraud.submit_proof``: commit, then reveal in a later
    block). Returns what was proven: ``batch``, ``chunk``, ``tx_index``, ``kind``, ``reason``,
    ``detail``, ``proof_bytes``, and once submitted ``status="proven"``, ``commit_gas``,
    ``prove_gas``, ``gas``, ``reward_wei``, ``burnt_wei``, ``batches_reverted``, ``frozen``.
    Raises ``FraudError`` when no implemented proof kind proves the batch, ``L1Revert`` when
    the proof reverts. Shared by ``watch_once`` and ``Follower``."""
    from .fraud import build_proof, submit_proof
    from .l1data import RollupReader

    proof = build_proof(RollupReader(source, rollup, from_block=from_block), number)
    out = {"batch": proof.batch, "chunk": proof.chunk_index, "tx_index": proof.tx_index, "kind": proof.kind_name,
           "reason": proof.reason_name, "detail": proof.detail, "proof_bytes": proof.calldata_bytes()}
    if challenger is None:
        return out
    sub = submit_proof(challenger, proof)
    out.update(status="proven", **{k: v for k, v in sub.to_dict().items() if k not in out or k == "reason"})
    out["gas"] = sub.commit_gas + sub.prove_gas
    return out


class Follower:
    """An incremental watchtower: keeps the state rebuilt from L1 data and, at each ``poll``,
    checks only the batches appended since (``verify``'s checks, batch by batch), and stops
    at the first batch whose commitment the data does not reproduce (``challenges`` counts
    it). Without ``challenger`` it only reports; with ``challenger`` (an ``L1Client`` sending
    from the challenger's account) it then proves that batch itself (``prove``: commit, then
    reveal) and keeps the result in ``proven`` (``prove``'s dict), or why it could not in
    ``proof_error`` (no implemented proof kind proves it, the batch is already finalized, or
    the proof reverted).

    ``lock``: held around every read of the chain (an in-process chain shared with the
    thread that posts batches) and around the whole proof (built and sent under it, so no
    batch is posted or finalized meanwhile); the re-execution runs outside it. ``verdicts``:
    one dict per checked batch (``batch``, ``ok``, ``mismatch``, ``t`` = ``time.monotonic()``
    of the verdict). ``start(interval)`` follows in a daemon thread until ``stop()``."""

    def __init__(self, source: Any, rollup: str, *, from_block: int | None = None, lock=None,
                 challenger: Any = None):
        from .l1data import RollupReader
        from .verify import _genesis_check, _Verifier

        self.source, self.rollup, self.from_block = source, rollup, from_block
        self.challenger = challenger
        self.proven: dict | None = None
        self.proof_error: str | None = None
        self.reader = RollupReader(source, rollup, from_block=from_block)
        self.lock = lock if lock is not None else contextlib.nullcontext()
        with self.lock:
            state, mismatch = _genesis_check(self.reader)
            self.prev_hash = self.reader.genesis_header().hash()
        if mismatch is not None:
            raise ValueError(f"watch: genesis: {mismatch.line()}")
        self.v = _Verifier(self.reader, {}, state)
        self.next = 1
        self._queue_block: int | None = None  # block of the last queue item read
        self.checked = 0
        self.challenges = 0
        self.mismatches: list[str] = []
        self.errors = 0
        self.last_error: str | None = None
        self.verdicts: list[dict] = []
        self._pool = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> list[dict]:
        """Check the batches appended since the last poll; their verdicts."""
        from concurrent.futures import ThreadPoolExecutor

        from .verify import Mismatch, _prepare

        if self.challenges:  # stop at the first wrong commitment (later ones build on it)
            return []
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="watch-sig")
        with self.lock:
            last = self.reader.last_batch()
            if last < self.next:
                return []
            refs = self.reader.batch_refs(self.next)
            known = len(self.v.queue)
            for item, h in self.reader.queue_items(known, from_block=self._queue_block):
                self.v.queue[item.index] = (item, h)
                self._queue_block = max(self._queue_block or 0, item.block_number)
            preps = [_prepare(self.reader, ref, self.v.state.domain, self._pool, 256, False) for ref in refs]
        out = []
        for prep in preps:
            h = prep.ref.header
            if h.prev_header_hash != self.prev_hash:
                m = Mismatch("header_link", h.number, None, self.prev_hash, h.prev_header_hash)
            else:
                m = self.v.batch(prep)
            self.checked += 1
            verdict = {"batch": h.number, "ok": m is None, "mismatch": m.line() if m else None,
                       "t": time.monotonic()}
            out.append(verdict)
            self.verdicts.append(verdict)
            if m is not None:
                self.challenges += 1
                self.mismatches.append(m.line())
                if self.challenger is not None:
                    self._prove(m.batch)
                break
            self.prev_hash = prep.ref.header_hash
            self.next = h.number + 1
            # later batches are appended in this block or after: scan the events from there
            self.reader._from_block = prep.ref.block_number
        return out

    def _prove(self, number: int) -> None:
        """Prove fraud in batch ``number`` from the challenger's account (``proven`` /
        ``proof_error``)."""
        from .fraud import FraudError

        try:
            with self.lock:
                finalized = self.challenger.last_finalized_batch()
                if number <= finalized:
                    raise FraudError(f"batch {number} is already finalized (finalized {finalized}): too late to prove")
                self.proven = prove(self.source, self.rollup, number, challenger=self.challenger,
                                    from_block=self.from_block)
        except Exception as exc:  # noqa: BLE001 - FraudError (no implemented kind proves it, too late),
            # L1Revert (the proof reverted) or an unreadable chain: reported, never retried
            self.proof_error = f"{exc.__class__.__name__}: {exc}"

    def _loop(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - an unreadable L1 is not a verdict: retry
                self.errors += 1
                self.last_error = f"{exc.__class__.__name__}: {exc}"
            self._stop.wait(interval)

    def start(self, interval: float = 0.1) -> "Follower":
        self._thread = threading.Thread(target=self._loop, args=(interval,), name="clearline-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, drain: bool = True) -> None:
        """Stop following (with ``drain``: one last poll so every posted batch is checked)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        if drain:
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001
                self.errors += 1
                self.last_error = f"{exc.__class__.__name__}: {exc}"
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def lags(self, appended: dict[int, float]) -> list[float]:
        """Seconds from each batch's append (``appended``: number -> ``time.monotonic()``) to
        its verdict."""
        return [v["t"] - appended[v["batch"]] for v in self.verdicts if v["batch"] in appended]

    def summary(self, appended: dict[int, float] | None = None) -> dict:
        lags = self.lags(appended or {})
        out = {"watch_checked_batches": self.checked, "watch_challenges": self.challenges,
               "watch_errors": self.errors}
        if self.proven is not None:
            out["watch_proven"] = self.proven
        if self.proof_error is not None:
            out["watch_proof_error"] = self.proof_error
        if lags:
            out["watch_lag_s"] = round(statistics.median(lags), 3)
            out["watch_lag_max_s"] = round(max(lags), 3)
        return out


def _print(out: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(out, sort_keys=True), flush=True)
        return
    s = out["status"]
    if s == "ok":
        print(f"OK: batches 1..{out['last_batch']} reproduce from L1 data (finalized {out['finalized']}); "
              f"state root {out['state_root']}", flush=True)
    elif s == "frozen":
        print(f"FROZEN: the system is frozen (last batch {out['last_batch']}, finalized {out['finalized']}); "
              "accounts exit with `clearline escape`", flush=True)
    else:
        print(out["mismatch"], flush=True)
        if "error" in out:
            print(f"cannot prove: {out['error']}", flush=True)
            return
        where = f"batch {out['batch']}, chunk {out['chunk']}"
        if out.get("tx_index") is not None:
            where += f", transaction {out['tx_index']}"
        print(f"FRAUD at {where}: {out['kind']} / {out['reason']} -- {out['detail']}", flush=True)
        if s == "proven":
            print(f"PROVEN: proveFraud succeeded (gas {out['commit_gas']:,} commit + {out['prove_gas']:,} prove); "
                  f"bond paid to the challenger {out['reward_wei']} wei, burnt {out['burnt_wei']} wei; "
                  f"{out['batches_reverted']} batch(es) reverted from batch {out['batch']}; "
                  f"system frozen: {out['frozen']} (accounts exit with `clearline escape`)", flush=True)
        else:
            print("not challenged (run with --challenge to submit the proof)", flush=True)


def run(args: argparse.Namespace) -> int:
    from clearline.l1.chain import RpcChain
    from clearline.l1.client import L1Revert

    from .fraud import FraudError
    from .l1data import L1DataError

    try:
        chain = RpcChain(args.rpc, [args.key] if args.key else None)
    except Exception as exc:
        print(f"watch: error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    last_ok = None
    while True:
        try:
            out = watch_once(chain, args.rollup, challenge=args.challenge, from_block=args.from_block)
        except (FraudError, L1Revert) as exc:
            print(f"watch: cannot prove: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            return 2
        except (L1DataError, OSError, ValueError) as exc:
            print(f"watch: error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
            return 2
        status = out["status"]
        if status == "ok":
            if args.once or (out["last_batch"], out["finalized"]) != last_ok:
                _print(out, args.json)
            last_ok = (out["last_batch"], out["finalized"])
            if args.once:
                return 0
            time.sleep(args.interval)
            continue
        _print(out, args.json)
        if status == "frozen":
            return 0
        return 2 if "error" in out else 1


def main(argv: list[str] | None = None) -> int:
    """``clearline watch --rpc URL --rollup ADDRESS [--challenge] [--key HEX] [--once]``."""
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":  # python -m clearline.watchtower.watch --rpc ... --rollup ...
    raise SystemExit(main())
