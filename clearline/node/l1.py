"""The L1 worker: everything that talks to the chain, on its own thread.

The chain client is not thread-safe and its calls are slow (an embedded EVM takes milliseconds
per call), so they must not stall the sequencer. Each tick the worker: feeds new Vault queue
items to the node's intake queue (in order, from the node's own ``l1_queue_pos``); posts a
batch when one is due; keeps the embedded chain's clock with the market's (demo); finalizes
batches past their challenge period; in the demo, claims finalized withdrawals on L1 for their
owners (anyone may); runs faucet requests; and publishes an immutable status dict that the
API returns as is (``status()``). Once the system is frozen (a fraud proof succeeded) it logs
that once and stops posting, finalizing and claiming (each would revert ``IsFrozen``); with a
``FaultyBatcher`` (``--inject-fault``) it logs the injection once (``injected``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future

from ..api.numbers import fmt_usd6
from . import views

__all__ = ["L1Worker"]

log = logging.getLogger("clearline.node.l1")
BATCHES_SHOWN = 50
WITHDRAWALS_SHOWN = 100


class L1Worker:
    def __init__(self, node, rollup, *, period_s: float = 0.2, chain_time=None, auto_claim: bool = False,
                 faucet_account=None):
        """``rollup``: a ``batcher.harness.SimRollup``-like object (chain, deployment, client,
        batcher, feeder). ``chain_time()``: the L1 time (s) the embedded chain should have
        reached (demo), or None to leave the chain's clock alone."""
        self.node = node
        self.r = rollup
        self.period = period_s
        self.chain_time = chain_time
        self.auto_claim = auto_claim
        self.faucet_account = faucet_account
        self._jobs: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.posted: list = []  # PostResult, oldest first
        self.finalized = rollup.client.last_finalized_batch()
        self.gas = 0
        self.paid: dict[int, int] = {}  # withdrawal seq -> batch it was paid from
        self.paid_usd6 = 0
        self._claimed_batches: set[int] = set()
        self._status: dict = {"enabled": True}
        self.error: str | None = None
        # set once the system is frozen (a fraud proof succeeded): the worker stops posting,
        # finalizing and claiming (every such call would revert IsFrozen) and only refreshes
        # its status; accounts exit with `clearline escape`
        self.frozen = False
        self.injected: dict | None = None  # the fault a FaultyBatcher injected (--inject-fault), once it did
        node.l1 = self

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "L1Worker":
        self._refresh()
        self._thread = threading.Thread(target=self._run, name="clearline-l1", daemon=True)
        self._thread.start()
        return self

    def stop(self, flush: bool = False, timeout: float = 120.0, finalize: bool = True) -> None:
        """Stop ticking; with ``flush``, first post everything and (with ``finalize``) let it
        finalize (demo end; without ``finalize``, call ``finalize_all`` later)."""
        if self._thread is not None:
            done: Future = Future()
            self._jobs.put(("stop", (flush, finalize), done))
            done.result(timeout)
            self._thread.join(timeout)
            self._thread = None

    def status(self) -> dict:
        return self._status

    def faucet(self, owner: bytes, amount: int) -> Future:
        f: Future = Future()
        self._jobs.put(("faucet", (owner, amount), f))
        return f

    def on_l1(self, fn) -> Future:
        """Run ``fn()`` on the worker's thread (the chain client is not thread-safe), then hand
        the Vault queue items it made to the node; the future gets ``fn``'s result (demo
        top-ups: do not wait on it from the node's thread)."""
        f: Future = Future()
        self._jobs.put(("l1", fn, f))
        return f

    # -- the loop -----------------------------------------------------------------------------------
    def _run(self) -> None:
        next_tick = time.monotonic()
        while True:
            try:
                kind, arg, fut = self._jobs.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                kind = None
            if kind == "stop":
                try:
                    flush, finalize = arg
                    if flush:
                        self._flush(finalize)
                    fut.set_result(None)
                except Exception as e:  # noqa: BLE001
                    if self._frozen_by(e):  # frozen while flushing: nothing more can be posted
                        fut.set_result(None)
                    else:
                        fut.set_exception(e)
                return
            if kind in ("faucet", "l1"):
                try:
                    fut.set_result(self._faucet(*arg) if kind == "faucet" else self._l1_job(arg))
                except Exception as e:  # noqa: BLE001 - reported to the requester
                    fut.set_exception(e)
                continue
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self.period
                try:
                    self.tick()
                except Exception as e:  # keep serving status; a person must look
                    if self._frozen_by(e):
                        continue
                    self.error = f"{type(e).__name__}: {e}"
                    log.exception("L1 tick failed")

    def _node(self, fn):
        return self.node.call(fn).result(30)

    def check_frozen(self) -> bool:
        """Whether the system is frozen (asks L1 until it is; logs the freeze once)."""
        if not self.frozen and self.r.client.frozen():
            self.frozen = True
            c = self.r.client
            log.warning("L1 is frozen (a fraud proof succeeded): the L1 worker stops posting batches, finalizing "
                        "and claiming; batches on chain %d, finalized %d; accounts exit with `clearline escape`",
                        c.last_batch(), c.last_finalized_batch())
        return self.frozen

    def _frozen_by(self, exc: BaseException) -> bool:
        """``exc`` is a revert because the system froze meanwhile: stop posting, not an error."""
        from ..l1.client import L1Revert

        try:
            frozen = isinstance(exc, L1Revert) and exc.error == "IsFrozen" or self.check_frozen()
        except Exception:  # noqa: BLE001 - L1 unreadable: report the original error
            return False
        if frozen:
            if not self.frozen:
                self.frozen = True
                log.warning("L1 is frozen (IsFrozen): the L1 worker stops posting batches, finalizing and claiming")
            try:
                self._refresh()
            except Exception:  # noqa: BLE001 - the status is refreshed next tick
                pass
            return True
        return False

    def tick(self, flush: bool = False) -> None:
        r = self.r
        if self.check_frozen():
            self._refresh()
            return
        now_ms = self._node(lambda n: n.clock())
        self.feed(now_ms)
        if self.chain_time is not None:
            target = int(self.chain_time())
            if r.chain.now() < target:
                r.chain.advance_time(target - r.chain.now())
        results = r.batcher.flush() if flush else [p for p in [r.batcher.post_pending(now_ms)] if p]
        for p in results:
            self.posted.append(p)
            self.gas += p.gas_used
        injected = getattr(r.batcher, "injected", None)
        if injected is not None and self.injected is None:
            self.injected = dict(injected)
            log.warning("fault injected (--inject-fault): batch %s carries %s (%s)", injected.get("batch"),
                        injected.get("fault"), ", ".join(f"{k}={v}" for k, v in injected.items()
                                                        if k not in ("fault", "batch")) or "no detail")
        ready = r.batcher.finalize_ready()
        if ready:
            self.finalized = max(self.finalized, *ready)
        if self.auto_claim:
            self._claim()
        self._refresh()

    def feed(self, now_ms: int) -> int:
        """Hand the next Vault queue items to the node (through its intake queue)."""
        f = self.r.feeder
        f.poll()
        pos = self._node(lambda n: n.state.l1_queue_pos)
        txs = f.txs(pos, now_ms)
        if not txs:
            return 0
        acks = self.node.submit_txs(txs).result(30)
        for tx, ack in zip(txs, acks):
            if not ack.receipt.ok:
                raise RuntimeError(f"queue item {tx.queue_index} was rejected: {ack.receipt}")
        return len(txs)

    def _flush(self, finalize: bool = True) -> None:
        self.tick(flush=True)
        if finalize:
            self.finalize_all()

    def finalize_all(self) -> None:
        """Let every posted batch's challenge period pass, then finalize and claim (demo end;
        on the caller's thread once the worker is stopped). Nothing to do once frozen."""
        if self.check_frozen():
            return
        period = self.r.deployment.challenge_period
        self.r.chain.advance_time(period + 1)
        self.tick()

    def _batch_of(self, seq: int) -> int | None:
        for p in self.posted:
            if p.first_seq <= seq <= p.last_seq:
                return p.number
        return None

    def _claim(self) -> None:
        r = self.r
        for p in self.posted:
            if p.number > self.finalized or p.number in self._claimed_batches:
                continue
            self._claimed_batches.add(p.number)
            if not p.n_withdrawals:
                continue
            open_ = [w for w in self._withdrawals() if p.first_seq <= w["seq"] <= p.last_seq]
            for claim in r.batcher.claims(p.number):
                r.client.claim_withdrawal(claim.header, claim.index, claim.record, claim.siblings)
                self.paid_usd6 += claim.record.amount
                match = next((w for w in open_ if w["account"] == claim.record.account_id
                              and w["amount"] == claim.record.amount), None)
                if match is not None:  # (a served forced withdrawal has no off-chain request)
                    open_.remove(match)
                    self.paid[match["seq"]] = p.number

    def _withdrawals(self) -> list[dict]:
        return self._node(lambda n: list(n.bus.history.withdrawals))

    def _l1_job(self, fn):
        out = fn()
        self.feed(self._node(lambda n: n.clock()))
        return out

    def _faucet(self, owner: bytes, amount: int) -> dict:
        r = self.r
        sender = self.faucet_account or r.chain.accounts[0]
        user = r.client.with_sender(sender)
        user.mint(user.address, amount)
        user.approve(amount)
        receipt = r.chain.transact(r.client.vault.functions.depositFor(views.hex_addr(owner), 0, amount), sender)
        index = r.client.queue_length() - 1
        self.feed(self._node(lambda n: n.clock()))
        return {"address": views.hex_addr(owner), "amount": fmt_usd6(amount), "queue_index": index,
                "l1_tx": _hex(bytes(receipt["transactionHash"]))}

    def _refresh(self) -> None:
        r = self.r
        c = r.client
        withdrawals = []
        for w in self._withdrawals()[-WITHDRAWALS_SHOWN:]:
            batch = self._batch_of(w["seq"])
            status = ("paid" if w["seq"] in self.paid else "finalized" if batch is not None and batch <= self.finalized
                      else "batched" if batch is not None else "pending")
            withdrawals.append({"seq": w["seq"], "account": w["account"], "owner": w["owner"],
                                "amount": fmt_usd6(w["amount"]), "batch": batch, "status": status})
        consumed_l2 = self._node(lambda n: n.state.l1_queue_pos)
        forced = [{"index": it.index, "account": it.target, "owner": views.hex_addr(it.owner),
                   "amount": fmt_usd6(it.amount), "deadline_s": it.time + r.deployment.forced_deadline}
                  for it in r.feeder.items_from(consumed_l2) if it.kind == 2]
        frozen = c.frozen()
        self._status = {
            "enabled": True, "chain_id": r.chain.chain_id, "rollup": r.deployment.rollup,
            "vault": r.deployment.vault, "l1_block": r.chain.block_number(), "l1_time": r.chain.now(),
            "challenge_period_s": r.deployment.challenge_period, "last_batch": c.last_batch(),
            "finalized_height": c.last_finalized_batch(), "finalized_state_root": "0x" + c.finalized_state_root().hex(),
            "pending_txs": max(0, self._node(lambda n: n.seq.seq) - (self.posted[-1].last_seq if self.posted else 0)),
            "queue": {"length": c.queue_length(), "consumed_l1": c.queue_position(), "consumed_l2": consumed_l2,
                      "forced": forced},
            "batches": [{"number": p.number, "first_seq": p.first_seq, "last_seq": p.last_seq, "txs": p.n_txs,
                         "state_root": "0x" + p.header.post_state_root.hex(), "data_bytes": p.data_bytes,
                         "gas_used": p.gas_used, "l1_tx": _hex(p.tx_hash), "reason": p.reason,
                         "finalized": p.number <= self.finalized, "withdrawals": p.n_withdrawals,
                         "l1_timestamp": p.header.l1_timestamp}
                        for p in reversed(self.posted[-BATCHES_SHOWN:])],
            "gas_total": self.gas, "withdrawals": withdrawals, "withdrawals_paid_usd": fmt_usd6(self.paid_usd6),
            "frozen": frozen, "escape": {"available": frozen, "escaped": []},
            "vault_balance": fmt_usd6(c.vault_balance()), "bond": str(c.bond()), "error": self.error,
        }


def _hex(b) -> str:
    if isinstance(b, (bytes, bytearray)):
        return "0x" + bytes(b).hex()
    return str(b) if b else ""
