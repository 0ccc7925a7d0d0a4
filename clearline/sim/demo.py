"""``clearline demo``: a node with a simulated market that a person can watch.

Runs the real sequencer (parallel signature checks, journal before acknowledgement,
snapshots) against the simulated market, shows a live summary, and at the end proves that
the journal rebuilds the same state root before printing ``state_root=0x…``.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections import Counter

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ..core.apply import Fill
from ..core.errors import ErrorCode
from ..core.margin import account_health
from ..journal import open_journal
from ..sequencer import Sequencer, recover_state
from .market import SimulatedMarket, demo_genesis


class DemoStats:
    def __init__(self):
        self.accepted = 0
        self.rejected: Counter = Counter()
        self.trades = 0
        self.volume_usd6 = 0
        self.last_trade: dict[int, int] = {}

    def observe(self, state, acks) -> None:
        for ack in acks:
            r = ack.receipt
            if not r.ok:
                self.rejected[ErrorCode(r.code).name] += 1
                continue
            self.accepted += 1
            for ev in r.events:
                if isinstance(ev, Fill):
                    self.trades += 1
                    tv = state.markets[ev.instrument].spec.tick_value
                    self.volume_usd6 += ev.price * ev.qty * tv
                    self.last_trade[ev.instrument] = ev.price


def _usd(v6: int) -> str:
    return f"${v6 / 1e6:,.2f}"


def render(state, stats: DemoStats, sim: SimulatedMarket, seq: Sequencer, elapsed: float, root: bytes) -> Table:
    t = Table(title=f"clearline demo — {elapsed:5.1f}s", show_header=True, header_style="bold")
    t.add_column("market")
    t.add_column("mark", justify="right")
    t.add_column("bid", justify="right")
    t.add_column("ask", justify="right")
    t.add_column("last", justify="right")
    t.add_column("open interest", justify="right")
    for mid, m in state.markets.items():
        spec = m.spec
        book = state.books[mid]
        px = lambda ticks: "-" if ticks is None else f"{ticks * spec.tick_size / 1e6:,.2f}"  # noqa: E731
        oi = m.open_interest * spec.lot_size / 1e8
        t.add_row(spec.symbol, px(m.mark_price), px(book.best_bid()), px(book.best_ask()),
                  px(stats.last_trade.get(mid)), f"{oi:,.4f} {spec.underlying}")
    below_mm = sum(1 for a in state.accounts if a.positions and (lambda h: h[0] < h[2])(account_health(state, a)))
    below_im = sum(1 for a in state.accounts if a.positions and (lambda h: h[0] < h[1])(account_health(state, a)))
    rej = ", ".join(f"{k}={v}" for k, v in stats.rejected.most_common(4)) or "none"
    t.caption = (f"tx accepted {stats.accepted:,} ({stats.accepted / max(elapsed, 1e-9):,.0f}/s) | trades "
                 f"{stats.trades:,} | volume {_usd(stats.volume_usd6)} | fee pool {_usd(state.fee_pool)}\n"
                 f"rejected: {rej}\naccounts below initial margin {below_im}, below maintenance {below_mm} | "
                 f"journal seq {seq.seq:,}\nstate_root 0x{root.hex()}")
    return t


def run_demo(seconds: float | None, seed: int = 1, data_dir: str | None = None, steps_per_s: float = 20.0,
             console: Console | None = None) -> bytes:
    console = console or Console()
    data_dir = data_dir or tempfile.mkdtemp(prefix="clearline-demo-")
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "journal.sqlite")
    genesis = demo_genesis(seed)
    journal = open_journal(path)
    seq = Sequencer(journal, genesis, snapshot_every=20_000)
    sim = SimulatedMarket(genesis, seed=seed)
    stats = DemoStats()
    console.print(f"[bold]clearline demo[/bold]: journal {path}; {len(sim.traders)} simulated traders; "
                  f"{'Ctrl-C to stop' if seconds is None else f'{seconds:g} s'}")

    stop = {"flag": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True))
    start = time.monotonic()
    now_ms = lambda: int(time.time() * 1000)  # noqa: E731  (the shell's clock, passed into the core)
    deposits = sim.initial_deposits(now_ms())
    sim.observe(deposits, seq.submit_txs(deposits, now_ms()))
    root = seq.root()
    try:
        with Live(render(seq.state, stats, sim, seq, 0.0, root), console=console, refresh_per_second=4,
                  transient=False) as live:
            step = 0
            last_render = 0.0
            while not stop["flag"]:
                elapsed = time.monotonic() - start
                if seconds is not None and elapsed >= seconds:
                    break
                t = now_ms()
                mark = sim.mark_update(t)
                if mark is not None:
                    seq.submit_txs([mark], t)
                stats.observe(seq.state, seq.submit(sim.step(t), t))
                step += 1
                if elapsed - last_render >= 0.25:
                    root = seq.root()
                    live.update(render(seq.state, stats, sim, seq, elapsed, root))
                    last_render = elapsed
                sleep = start + step / steps_per_s - time.monotonic()
                if sleep > 0:
                    time.sleep(sleep)
            root = seq.root()
            live.update(render(seq.state, stats, sim, seq, time.monotonic() - start, root))
    finally:
        signal.signal(signal.SIGINT, previous)
    console.print()
    seq.state.check_invariants()
    seq.snapshot()
    rebuilt, last = recover_state(journal, use_snapshot=False)
    same = rebuilt.root() == root
    console.print(f"journal replay of {last:,} transactions from genesis reproduces the state root: "
                  f"{'yes' if same else 'NO'}")
    seq.close()
    if not same:
        raise SystemExit("state root mismatch after replay")
    print(f"trades={stats.trades} volume_usd={stats.volume_usd6 / 1e6:.2f} state_root=0x{root.hex()}", flush=True)
    return root
