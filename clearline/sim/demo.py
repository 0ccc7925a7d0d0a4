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

from ..core import ledger as L
from ..core.errors import ErrorCode
from ..core.instruments import InstrumentKind, MarketStatus
from ..core.margin import account_health
from ..journal import open_journal
from ..sequencer import Sequencer, recover_state
from .market import SimulatedMarket, demo_genesis


class DemoStats:
    def __init__(self):
        self.accepted = 0
        self.rejected: Counter = Counter()
        self.trades = 0
        self.option_trades = 0
        self.volume_usd6 = 0
        self.last_trade: dict[int, int] = {}
        self.listed = 0
        self.funding_paid = 0
        self.last_rates: dict[int, int] = {}
        self.liquidations = 0
        self.liquidation_fills = 0
        self.insurance_covered = 0
        self.adl = 0
        self.expiries: list[tuple[int, int, int]] = []  # (underlying, expiry, price usd6)

    def observe(self, state, acks, operator: bool = False) -> None:
        for ack in acks:
            r = ack.receipt
            if not r.ok:
                if not operator:
                    self.rejected[ErrorCode(r.code).name] += 1
                continue
            self.accepted += 1
            for ev in r.events:
                if isinstance(ev, L.Fill):
                    self.trades += 1
                    spec = state.markets[ev.instrument].spec
                    self.option_trades += spec.kind == InstrumentKind.OPTION
                    self.volume_usd6 += ev.price * ev.qty * spec.tick_value
                    self.last_trade[ev.instrument] = ev.price
                elif isinstance(ev, L.InstrumentListed):
                    self.listed += 1
                elif isinstance(ev, L.FundingSettled):
                    self.funding_paid += ev.paid
                    self.last_rates[ev.instrument] = ev.rate_ppm
                elif isinstance(ev, L.LiquidationStarted):
                    self.liquidations += 1
                elif isinstance(ev, L.LiquidationFill):
                    self.liquidation_fills += 1
                elif isinstance(ev, L.InsuranceCovered):
                    self.insurance_covered += ev.amount
                elif isinstance(ev, L.Deleveraged) and ev.qty:
                    self.adl += 1
                elif isinstance(ev, L.ExpirySettled):
                    self.expiries.append((ev.underlying, ev.expiry, ev.settlement_price))


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
        if spec.kind != InstrumentKind.PERPETUAL:
            continue
        book = state.books[mid]
        px = lambda ticks: "-" if ticks is None else f"{ticks * spec.tick_size / 1e6:,.2f}"  # noqa: E731
        oi = m.open_interest * spec.lot_size / 1e8
        t.add_row(spec.symbol, px(m.mark_price), px(book.best_bid()), px(book.best_ask()),
                  px(stats.last_trade.get(mid)), f"{oi:,.4f} {spec.underlying}")
    below_mm = sum(1 for a in state.accounts if a.positions and (lambda h: h[0] < h[2])(account_health(state, a)))
    below_im = sum(1 for a in state.accounts if a.positions and (lambda h: h[0] < h[1])(account_health(state, a)))
    rej = ", ".join(f"{k}={v}" for k, v in stats.rejected.most_common(4)) or "none"
    index = " ".join(f"{u.config.symbol} {_usd(u.oracle.index_price)}{' (unconfirmed)' if u.liquidations_paused else ''}"
                     for u in state.underlyings.values())
    options = [m for m in state.markets.values() if m.spec.kind == InstrumentKind.OPTION]
    active = sum(1 for m in options if m.status == MarketStatus.ACTIVE)
    rates = " ".join(f"{state.markets[i].spec.symbol} {r / 1e4:+.4f}%" for i, r in sorted(stats.last_rates.items()))
    expiries = ", ".join(f"{state.underlyings[u].config.symbol}@{_usd(p)}" for u, _, p in stats.expiries[-3:]) or "none yet"
    writer = next((tr for tr in sim.traders if tr.role == "covered_call" and tr.account >= 0), None)
    pm = ""
    if writer is not None:
        from ..core.explain import explain

        rep = explain(state, writer.account)
        pm = (f"\ncovered-call writer ({rep.mode}): equity {_usd(rep.equity)}, initial {_usd(rep.initial)}, "
              f"maintenance {_usd(rep.maintenance)}"
              + (f", binding scenario {rep.binding_scenario}" if rep.binding_scenario is not None else ""))
    t.caption = (f"index {index}\n"
                 f"options listed {len(options)} (active {active}), option trades {stats.option_trades:,} | "
                 f"expiries settled {len(stats.expiries)}: {expiries}\n"
                 f"funding paid {_usd(stats.funding_paid)}; last rates {rates or 'none yet'}\n"
                 f"liquidations {stats.liquidations} ({stats.liquidation_fills} book fills, {stats.adl} ADL) | "
                 f"insurance fund {_usd(state.insurance_fund)} (covered {_usd(stats.insurance_covered)})"
                 f"{pm}\n"
                 f"tx accepted {stats.accepted:,} ({stats.accepted / max(elapsed, 1e-9):,.0f}/s) | trades "
                 f"{stats.trades:,} | volume {_usd(stats.volume_usd6)} | fee pool {_usd(state.fee_pool)}\n"
                 f"rejected: {rej}\naccounts below initial margin {below_im}, below maintenance {below_mm} | "
                 f"journal seq {seq.seq:,}\nstate_root 0x{root.hex()}")
    return t


def run_demo(seconds: float | None, seed: int = 1, data_dir: str | None = None, steps_per_s: float = 20.0,
             console: Console | None = None, speed: float = 1.0) -> bytes:
    """Run the demo for ``seconds`` of wall time (None: until Ctrl-C). ``speed`` > 1 runs the
    simulated clock faster than the wall clock (the node's clock is passed into the core, so
    the core cannot tell): at speed 4, 30 s of wall time cover 2 minutes of market time."""
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
    t0 = int(time.time() * 1000)
    # the shell's clock, passed into the core (optionally accelerated for demos and tests)
    now_ms = lambda: t0 + int((time.monotonic() - start) * speed * 1000)  # noqa: E731
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
                if step % 4 == 0:  # marks, oracle reports and risk arrays 5 times a second
                    mark = sim.mark_update(t, seq.state)
                    if mark is not None:
                        stats.observe(seq.state, seq.submit_txs([mark], t), operator=True)
                    ops = sim.operator_txs(seq.state, t)
                    if ops:
                        stats.observe(seq.state, seq.submit_txs(ops, t), operator=True)
                stats.observe(seq.state, seq.submit(sim.step(t, seq.state), t))
                step += 1
                if elapsed - last_render >= 0.25:
                    root = seq.root()
                    live.update(render(seq.state, stats, sim, seq, elapsed, root))
                    last_render = elapsed
                sleep = start + step / (steps_per_s * speed) - time.monotonic()
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
    print(f"journal replay of {last:,} transactions from genesis reproduces the state root: "
          f"{'yes' if same else 'NO'}", flush=True)
    seq.close()
    if not same:
        raise SystemExit("state root mismatch after replay")
    print(f"trades={stats.trades} option_trades={stats.option_trades} liquidations={stats.liquidations} "
          f"expiries={len(stats.expiries)} funding_paid_usd={stats.funding_paid / 1e6:.2f} "
          f"volume_usd={stats.volume_usd6 / 1e6:.2f} state_root=0x{root.hex()}", flush=True)
    return root
