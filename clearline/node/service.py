"""The node service: one thread owns the Sequencer; everything else talks to it by queue.

Why one thread: the core is not thread-safe, and a single writer makes the order of the log
the order of arrival. API requests, the simulated market, the L1 feeder and the node's own
safety actions (dead-man switch, cancel-on-disconnect) all enter through one intake queue.

- **Writes** (``submit_txs`` for verified transactions, ``submit_payloads`` for signed bytes
  still to verify) are drained from the queue in groups: one group is applied in arrival order
  and journaled with one commit (group commit), then each submitter's future gets its acks.
- **Reads** (``call(fn)``) run ``fn(node)`` on the same thread between two groups, so a read
  sees one consistent state and its ``journal_seq``.
- **Tickers** (``add_ticker``) run periodically on the same thread: the simulated market and
  the demo's operator produce their transactions there and commit them (``commit``).
- **Events**: the ``EventBus`` (``bus``) is a Sequencer listener; after each group it
  publishes the stream messages.

A broken invariant (``InvariantBroken``) halts intake for good (rule 7: rejected != crashed):
later writes fail with ``NodeHalted``; reads keep working so a person can look.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import Future

from ..core import eip712
from ..core.errors import InvariantBroken
from ..core.txs import CancelTrigger, OperatorAction, OperatorActionKind
from ..journal import JournalError
from .bus import EventBus, rebuild_history
from .safety import DeadMan

__all__ = ["NodeService", "NodeHalted", "NodeOverloaded"]

log = logging.getLogger("clearline.node")


class NodeHalted(RuntimeError):
    """The node stopped accepting writes (broken invariant or journal failure)."""


class NodeOverloaded(RuntimeError):
    """The intake queue is full."""


class _Work:
    __slots__ = ("kind", "payload", "future")

    def __init__(self, kind: str, payload, future: Future):
        self.kind = kind  # "txs" (verified), "raw" (signed bytes), "call"
        self.payload = payload
        self.future = future


class _Ticker:
    __slots__ = ("fn", "period", "next_due", "name")

    def __init__(self, fn, period: float, name: str):
        self.fn = fn
        self.period = period
        self.next_due = time.monotonic()
        self.name = name


def _wall_ms() -> int:
    return int(time.time() * 1000)


class NodeService:
    def __init__(self, sequencer, *, clock=None, wall_clock=None, operator_key: bytes | None = None,
                 demo: bool = False, queue_max: int = 100_000, group_max: int = 4_096,
                 pricing_time_scale: float = 1.0):
        self.seq = sequencer
        self.state = sequencer.state
        self.clock = clock or _wall_ms  # the time stamped into transactions (may run faster in the demo)
        self.wall = wall_clock or _wall_ms  # liveness: dead-man deadlines, login windows
        self.operator_key = operator_key
        self.operator = eip712.address_of(operator_key) if operator_key else None
        self.demo = demo
        self.pricing_time_scale = pricing_time_scale
        self.group_max = group_max
        self.epoch = os.urandom(4).hex()  # stream numbering restarts with every node start
        self.bus = EventBus(self.state)
        self.bus.bind(self.state)
        history = rebuild_history(sequencer.journal, self.state)  # a restart keeps its tape and charts
        if history is not None:
            self.bus.history = history
        sequencer.listeners.append(self.bus.on_tx)
        self.deadman = DeadMan()
        self.observers: list = []  # fn(txs, acks) on the node thread after each commit (demo stats)
        self.l1 = None  # an L1Worker when the node runs with an L1
        self.halted: str | None = None
        self._q: queue.Queue = queue.Queue(maxsize=queue_max)
        self._tickers: list[_Ticker] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.specs: dict = {}
        self.symbols: dict[str, int] = {}
        self._publish_specs()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "NodeService":
        self._thread = threading.Thread(target=self._run, name="clearline-node", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued work, then stop the thread (the Sequencer stays open)."""
        self._stopping = True
        if self._thread is not None:
            self._q.put(_Work("call", lambda node: None, Future()))
            self._thread.join(timeout)
            self._thread = None

    @property
    def on_node_thread(self) -> bool:
        return threading.current_thread() is self._thread

    # -- thread-safe entry points -------------------------------------------------------------
    def _put(self, kind: str, payload) -> Future:
        f: Future = Future()
        if self.halted and kind != "call":
            f.set_exception(NodeHalted(self.halted))
            return f
        try:
            self._q.put_nowait(_Work(kind, payload, f))
        except queue.Full:
            f.set_exception(NodeOverloaded("the intake queue is full"))
        return f

    def submit_txs(self, txs: list) -> Future:
        """Transactions whose ``signer`` is already set (API-verified, L1 queue items)."""
        return self._put("txs", txs)

    def submit_payloads(self, payloads: list[bytes]) -> Future:
        """ABI-encoded signed transactions; verified on the Sequencer's verifier pool."""
        return self._put("raw", payloads)

    def call(self, fn) -> Future:
        """Run ``fn(node)`` on the node thread between two groups; the future gets its result."""
        return self._put("call", fn)

    def owner_of(self, account: int) -> bytes | None:
        """Owner of an account, from any thread: accounts are append-only and their owner never
        changes, so this read needs no synchronisation."""
        accounts = self.state.accounts
        return accounts[account].owner if 0 <= account < len(accounts) else None

    def add_ticker(self, fn, period_s: float, name: str = "ticker") -> None:
        """Run ``fn(node, now_ms)`` on the node thread every ``period_s`` seconds."""
        self._tickers.append(_Ticker(fn, period_s, name))

    # -- node thread only -----------------------------------------------------------------------
    def commit(self, txs: list) -> list:
        """Apply and journal verified transactions now (tickers, safety actions). Node thread."""
        if not self.on_node_thread and self._thread is not None:
            raise RuntimeError("commit() runs on the node thread only; use submit_txs()")
        if self.halted:
            raise NodeHalted(self.halted)
        try:
            acks = self.seq.submit_verified(txs, self.clock())
            self.bus.end_batch(self.state)
        except (InvariantBroken, JournalError) as e:
            self.halted = f"{type(e).__name__}: {e}"
            log.error("node halted: %s", self.halted)
            raise NodeHalted(self.halted) from e
        if len(self.state.markets) != len(self.specs):
            self._publish_specs()
        for obs in self.observers:
            obs(txs, acks)
        return acks

    def commit_payloads(self, payloads: list[bytes]) -> list:
        return self.commit(self.seq.verifier.verify(payloads))

    def operator_cancel_all(self, account: int, trigger: int):
        """Cancel every order of ``account`` through an operator transaction (journaled like any
        other). The core refuses it unless the account opted in. Returns the ack, or None if the
        node has no operator key. Node thread."""
        if self.operator_key is None:
            return None
        now = self.clock()
        tx = OperatorAction(now, OperatorActionKind.CANCEL_ALL_ORDERS, account, int(trigger), now)
        tx.signature = eip712.sign(self.state.domain, tx, self.operator_key)
        tx.signer = self.operator
        (ack,) = self.commit([tx])
        return ack

    def _publish_specs(self) -> None:
        markets = self.state.markets
        self.specs = {i: m.spec for i, m in markets.items()}  # replaced whole: readers need no lock
        self.symbols = {m.spec.symbol: i for i, m in markets.items()}

    # -- the loop -----------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            timeout = 0.05
            if self._tickers:
                timeout = max(0.0, min(timeout, min(t.next_due for t in self._tickers) - time.monotonic()))
            try:
                first = self._q.get(timeout=timeout) if timeout > 0 else self._q.get_nowait()
            except queue.Empty:
                first = None
            if first is not None:
                work = [first]
                while len(work) < self.group_max:
                    try:
                        work.append(self._q.get_nowait())
                    except queue.Empty:
                        break
                self._process(work)
            if self._stopping and self._q.empty():
                return
            self._run_tickers()
            self._check_deadman()

    def _process(self, work: list[_Work]) -> None:
        group: list[_Work] = []
        for w in work:
            if w.kind == "call":
                self._flush(group)
                group = []
                try:
                    w.future.set_result(w.payload(self))
                except BaseException as e:  # noqa: BLE001 - the caller gets it
                    w.future.set_exception(e)
            else:
                group.append(w)
        self._flush(group)

    def _flush(self, group: list[_Work]) -> None:
        if not group:
            return
        txs: list = []
        spans = []
        for w in group:
            items = self.seq.verifier.verify(w.payload) if w.kind == "raw" else w.payload
            spans.append((w, len(txs), len(txs) + len(items)))
            txs.extend(items)
        try:
            acks = self.commit(txs)
        except NodeHalted as e:
            for w, _, _ in spans:
                w.future.set_exception(e)
            return
        for w, a, b in spans:
            w.future.set_result(acks[a:b])

    def _run_tickers(self) -> None:
        now = time.monotonic()
        for t in self._tickers:
            if now < t.next_due or self.halted:
                continue
            t.next_due = max(t.next_due + t.period, now)
            try:
                t.fn(self, self.clock())
            except NodeHalted:
                return
            except Exception:  # a broken ticker must not take the node down with it
                log.exception("ticker %s failed; disabled", t.name)
                t.next_due = float("inf")

    def _check_deadman(self) -> None:
        if not self.deadman.switches or self.halted:
            return
        for account in self.deadman.due(self.wall()):
            try:
                self.operator_cancel_all(account, CancelTrigger.DEAD_MAN)
            except NodeHalted:
                return
