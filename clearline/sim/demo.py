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


def render(state, stats: DemoStats, sim: SimulatedMarket, seq: Sequencer, elapsed: float, root: bytes,
           l1_state: dict | None = None) -> Table:
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
    if l1_state is not None:
        t.caption += (f"\nL1: batches posted {l1_state['batches']}, gas used {l1_state['gas']:,}, finalized height "
                      f"{l1_state['finalized']}, withdrawals paid on L1 {l1_state['paid']} "
                      f"({_usd(l1_state['paid_usd6'])})")
    return t


L1_CHALLENGE_S = 10  # the demo's challenge period (days in production)
WITHDRAW_AFTER_S = 8  # market seconds before the demo's taker asks to withdraw to L1


def _l1_tick(l1, st: dict, seq: Sequencer, now_ms: int, market_s: float, flush: bool = False) -> None:
    """L1 side of the demo: feed the Vault queue in, post due batches, keep the embedded
    chain's clock with the market's, finalize, and pay the demo withdrawal once final."""
    from ..core.txs import Withdraw
    from ..core import eip712
    from ..core.encoding import encode_tx

    chain = l1.chain
    l1.now_ms = now_ms
    l1.feed()
    target = st["chain_t0"] + int(market_s)
    if chain.now() < target:
        chain.advance_time(target - chain.now())
    if st["withdrawal"] is None and market_s >= WITHDRAW_AFTER_S:
        t = next(tr for tr in l1.sim.traders if tr.role == "taker")
        tx = Withdraw(now_ms, t.account, 1_000 * 1_000_000, t.next_nonce())
        tx.signature = eip712.sign(seq.state.domain, tx, t.key)
        (ack,) = seq.submit([encode_tx(tx)], now_ms)
        if ack.seq:
            st["withdrawal"] = {"trader": t, "seq": ack.seq, "batch": None, "paid": False}
    results = l1.batcher.flush() if flush else [r for r in [l1.batcher.post_pending(now_ms)] if r]
    for r in results:
        st["batches"] += 1
        st["gas"] += r.gas_used
        w = st["withdrawal"]
        if w is not None and w["batch"] is None and r.first_seq <= w["seq"] <= r.last_seq:
            w["batch"] = r.number
    if flush:
        chain.advance_time(L1_CHALLENGE_S + 1)
    st["finalized"] = max([st["finalized"], *l1.batcher.finalize_ready()])
    w = st["withdrawal"]
    if w is not None and w["batch"] is not None and not w["paid"] and st["finalized"] >= w["batch"]:
        user = l1.user(w["trader"].name)
        before = user.token_balance()
        for claim in l1.batcher.claims(w["batch"], owner=w["trader"].address):
            user.claim_withdrawal(claim.header, claim.index, claim.record, claim.siblings)
            st["paid"] += 1
            st["paid_usd6"] += claim.record.amount
        w["paid"] = user.token_balance() > before


def run_demo(seconds: float | None, seed: int = 1, data_dir: str | None = None, steps_per_s: float = 20.0,
             console: Console | None = None, speed: float = 1.0, with_l1: bool = True) -> bytes:
    """Run the demo for ``seconds`` of wall time (None: until Ctrl-C). ``speed`` > 1 runs the
    simulated clock faster than the wall clock (the node's clock is passed into the core, so
    the core cannot tell): at speed 4, 30 s of wall time cover 2 minutes of market time."""
    console = console or Console()
    data_dir = data_dir or tempfile.mkdtemp(prefix="clearline-demo-")
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "journal.sqlite")
    l1 = None
    if with_l1:
        from ..batcher.harness import make_sim_rollup
        from ..l1.chain import InProcessChain

        console.print("deploying the L1 contracts on the embedded chain and depositing through the Vault...")
        chain = InProcessChain(n_accounts=20)
        l1 = make_sim_rollup(chain, makers=4, takers=6, leveraged=3, seed=seed, journal_url=path,
                             challenge_period=L1_CHALLENGE_S, forced_deadline=3_600, max_delay_ms=2_000)
        journal, seq, sim = l1.journal, l1.sequencer, l1.sim
        l1_state = {"batches": 0, "gas": 0, "finalized": 0, "paid": 0, "paid_usd6": 0, "withdrawal": None,
                    "chain_t0": chain.now()}
    else:
        genesis = demo_genesis(seed)
        journal = open_journal(path)
        seq = Sequencer(journal, genesis, snapshot_every=20_000)
        sim = SimulatedMarket(genesis, seed=seed)
        l1_state = None
    stats = DemoStats()
    console.print(f"[bold]clearline demo[/bold]: journal {path}; {len(sim.traders)} simulated traders; "
                  f"{'Ctrl-C to stop' if seconds is None else f'{seconds:g} s'}")

    stop = {"flag": False}
    previous = signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True))
    start = time.monotonic()
    t0 = int(time.time() * 1000)
    # the shell's clock, passed into the core (optionally accelerated for demos and tests)
    now_ms = lambda: t0 + int((time.monotonic() - start) * speed * 1000)  # noqa: E731
    if l1 is None:
        deposits = sim.initial_deposits(now_ms())
        sim.observe(deposits, seq.submit_txs(deposits, now_ms()))
    root = seq.root()
    try:
        with Live(render(seq.state, stats, sim, seq, 0.0, root, l1_state), console=console, refresh_per_second=4,
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
                if l1 is not None and step % 10 == 0:
                    _l1_tick(l1, l1_state, seq, t, (time.monotonic() - start) * speed)
                step += 1
                if elapsed - last_render >= 0.25:
                    root = seq.root()
                    live.update(render(seq.state, stats, sim, seq, elapsed, root, l1_state))
                    last_render = elapsed
                sleep = start + step / (steps_per_s * speed) - time.monotonic()
                if sleep > 0:
                    time.sleep(sleep)
            if l1 is not None:  # post what is left and let the last batches finalize
                _l1_tick(l1, l1_state, seq, now_ms(), (time.monotonic() - start) * speed, flush=True)
            root = seq.root()
            live.update(render(seq.state, stats, sim, seq, time.monotonic() - start, root, l1_state))
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
    if l1_state is not None:
        print(f"l1_batches={l1_state['batches']} l1_gas={l1_state['gas']} l1_finalized={l1_state['finalized']} "
              f"l1_withdrawals_paid={l1_state['paid']}", flush=True)
    print(f"trades={stats.trades} option_trades={stats.option_trades} liquidations={stats.liquidations} "
          f"expiries={len(stats.expiries)} funding_paid_usd={stats.funding_paid / 1e6:.2f} "
          f"volume_usd={stats.volume_usd6 / 1e6:.2f} state_root=0x{root.hex()}", flush=True)
    return root
