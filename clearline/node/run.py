"""``clearline node``: a node with the API on 127.0.0.1, an embedded L1, and optionally the
simulated market (``--sim``), without the demo's live summary."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time

__all__ = ["run_node", "require_fresh_journal"]


def require_fresh_journal(path: str) -> None:
    """Refuse to resume a journal with the simulated market or the embedded L1: both start
    from scratch (the in-process chain lives in memory), so they would feed the old state
    deposits of a chain it never saw and nonces it already used. The journal itself resumes
    exactly, by a node without them (``clearline node --no-l1``)."""
    if not os.path.exists(path):
        return
    from ..journal import open_journal

    journal = open_journal(path)
    try:
        head, _ = journal.head()
    finally:
        journal.close()
    if head:
        raise SystemExit(f"{path} already holds {head:,} transactions: the simulated market and the embedded L1 "
                         f"chain start from scratch and cannot resume it. Use a new --data-dir, or serve this "
                         f"journal with `clearline node --no-l1 --data-dir {os.path.dirname(path) or '.'}` "
                         f"(without --sim).")


def run_node(*, data_dir: str | None = None, port: int = 8700, sim: bool = False, seed: int = 1,
             seconds: float | None = None, with_l1: bool = True, rate: float = 100.0, burst: int = 200,
             fault: str | None = None, fault_batch: int | None = None) -> int:
    """Serve the node until ``seconds`` pass or Ctrl-C. ``fault`` (a ``FaultKind`` value; embedded
    L1 only): the batcher is a ``FaultyBatcher`` that doctors one posted batch (``fault_batch``,
    or the first that can carry it); the L1 worker logs the injection (``clearline.node.l1``,
    on stderr) and, once a fraud proof freezes the system, stops posting."""
    from ..api.server import ApiServer
    from ..journal import open_journal
    from ..core.state import Genesis
    from ..sequencer import Sequencer, recover_state
    from ..sequencer.recovery import GENESIS_KEY
    from ..sim.demo import L1_CHALLENGE_S, DemoMarket
    from ..sim.market import PRICING_TIME_SCALE, SimulatedMarket, demo_genesis
    from .l1 import L1Worker
    from .service import NodeService

    if fault is not None:
        from ..sequencer.faults import FaultKind

        fault = FaultKind(fault).value  # ValueError on an unknown kind
        if not with_l1:
            raise SystemExit("--inject-fault needs the embedded L1 chain (not --no-l1)")
    elif fault_batch is not None:
        raise SystemExit("--fault-batch needs --inject-fault")
    data_dir = data_dir or tempfile.mkdtemp(prefix="clearline-node-")
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "journal.sqlite")
    if with_l1 or sim:
        require_fresh_journal(path)
    start = time.monotonic()
    market_s = lambda: time.monotonic() - start  # noqa: E731
    rollup = None
    if with_l1:
        from ..batcher.harness import make_sim_rollup
        from ..l1.chain import InProcessChain

        chain = InProcessChain(n_accounts=20)
        rollup = make_sim_rollup(chain, makers=4, takers=6, leveraged=3, seed=seed, journal_url=path,
                                 challenge_period=L1_CHALLENGE_S, forced_deadline=3_600, max_delay_ms=2_000,
                                 fault=fault, fault_batch=fault_batch)
        seq, market = rollup.sequencer, rollup.sim
        chain_t0 = chain.now()
    else:
        journal = open_journal(path)
        stored = journal.get_meta(GENESIS_KEY)  # a resumed journal keeps the genesis it started from
        genesis = Genesis.from_json(stored) if stored is not None else demo_genesis(seed)
        seq = Sequencer(journal, genesis)
        market = SimulatedMarket(genesis, seed=seed)
        if sim:
            t = int(time.time() * 1000)
            deposits = market.initial_deposits(t)
            market.observe(deposits, seq.submit_txs(deposits, t))
    node = NodeService(seq, operator_key=market.operator_key, demo=True, pricing_time_scale=PRICING_TIME_SCALE)
    ticker = None
    if sim:
        ticker = DemoMarket(market, market_s, withdraw=False,
                            topups=rollup.users if rollup is not None and fault is not None else None)
        node.add_ticker(ticker, 0.05, "simulated market")
    worker = None
    if rollup is not None:
        worker = L1Worker(node, rollup, period_s=0.5, chain_time=lambda: chain_t0 + market_s(), auto_claim=True,
                          faucet_account=chain.accounts[-1])
    node.start()
    if worker is not None:
        worker.start()
    server = ApiServer(node, port, rate=rate, burst=burst).start()
    print(f"clearline node: journal {path}; API: {server.url}/api/v1 (OpenAPI {server.url}/openapi.json); "
          f"UI: {server.url}/", flush=True)
    if fault is not None:
        from ..sim.demo import fault_line

        print(fault_line(fault, fault_batch, None) + "; the L1 worker logs the injection", flush=True)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stop.wait(seconds)
    finally:
        signal.signal(signal.SIGINT, previous)
        if ticker is not None:
            ticker.running = False
        if worker is not None:
            worker.stop()
        server.stop()
        node.stop()
    root = seq.root()
    seq.snapshot()
    rebuilt, last = recover_state(seq.journal, use_snapshot=False)
    seq.close()
    ok = rebuilt.root() == root
    if worker is not None and fault is not None:
        inj = worker.injected
        print(f"fault_injected={inj['fault']} fault_batch={inj['batch']}" if inj is not None
              else f"fault_injected=none fault_kind={fault}: no posted batch carried it", flush=True)
    print(f"journal seq={last} state_root=0x{root.hex()} replay={'ok' if ok else 'MISMATCH'}", flush=True)
    return 0 if ok else 1
