"""``clearline demo``: a node with a simulated market that a person can watch.

Runs the real sequencer inside the node service (``clearline.node``: one sequencer thread,
intake queue with group commit) with the simulated market and its operator as tickers on that
thread, the L1 side (queue feeder, batcher, finality, withdrawals paid on L1) on the L1
worker's thread, and the API + web UI served on 127.0.0.1 (``UI: http://127.0.0.1:8700/``).
It shows a live summary, and at the end proves that the journal rebuilds the same state root
before printing ``state_root=0x…``. ``--watch [--challenge]`` attaches a watchtower (that
proves fraud itself); ``--inject-fault KIND`` makes the batcher post one invalid batch (see
``run_demo``).
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
from ..core.errors import ErrorCode, Rejected
from ..core.instruments import InstrumentKind, MarketStatus
from ..core.margin import account_health
from ..core.txs import MarkUpdate, OperatorAction
from ..journal import open_journal
from ..sequencer import Sequencer, recover_state
from .market import PRICING_TIME_SCALE, SimulatedMarket, demo_genesis

_OPERATOR_TXS = (MarkUpdate, OperatorAction)


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

    def observe_txs(self, state, txs, acks) -> None:
        """A node observer: operator transactions that are not due are not rejections to show."""
        for tx, ack in zip(txs, acks):
            self.observe(state, [ack], operator=isinstance(tx, _OPERATOR_TXS) or isinstance(tx, Rejected))

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
                elif isinstance(ev, L.ExpirySettled):  # one per option (SETTLE_OPTION): count each expiry once
                    if (ev.underlying, ev.expiry, ev.settlement_price) not in self.expiries[-8:]:
                        self.expiries.append((ev.underlying, ev.expiry, ev.settlement_price))


def _usd(v6: int) -> str:
    return f"${v6 / 1e6:,.2f}"


def render(state, stats: DemoStats, sim: SimulatedMarket, seq: Sequencer, elapsed: float, root: bytes,
           l1_state: dict | None = None, ui_url: str | None = None) -> Table:
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
        if l1_state.get("fault") is not None:
            t.caption += "\n" + l1_state["fault"]
        w = l1_state.get("watch")
        if w is not None:
            t.caption += (f"\nwatchtower: batches checked {w['watch_checked_batches']}, challenges "
                          f"{w['watch_challenges']}, lag {w.get('watch_lag_s', '-')} s (max {w.get('watch_lag_max_s', '-')} s)")
            if w.get("watch_proven"):
                t.caption += "\nwatchtower " + proven_line(w["watch_proven"])
            elif w.get("watch_proof_error"):
                t.caption += f"\nwatchtower could not prove it: {w['watch_proof_error']}"
        if l1_state.get("frozen"):
            t.caption += "\nL1 FROZEN: no more batches; accounts exit with `clearline escape`"
    if ui_url:
        t.caption += f"\nUI: {ui_url}"
    return t


def fault_line(kind: str, fault_batch: int | None, injected: dict | None) -> str:
    """The summary's line about ``--inject-fault``."""
    if injected is None:
        where = f"batch {fault_batch}" if fault_batch is not None else "the first batch that can carry it"
        return f"fault armed (--inject-fault): {kind} in {where}, not injected yet"
    extra = ", ".join(f"{k} {v}" for k, v in injected.items() if k not in ("fault", "batch"))
    return f"FAULT INJECTED (--inject-fault): batch {injected['batch']} carries {injected['fault']}" + (
        f" ({extra})" if extra else "")


def proven_line(p: dict) -> str:
    """One line of what the watchtower proved (``watch.prove``'s dict)."""
    where = f"batch {p['batch']}, chunk {p['chunk']}" + (
        f", transaction {p['tx_index']}" if p.get("tx_index") is not None else "")
    return (f"PROVEN fraud at {where}: {p['kind']} / {p['reason']}; {p['batches_reverted']} batch(es) reverted, "
            f"bond paid to the challenger {p['reward_wei']} wei (burnt {p['burnt_wei']} wei), frozen: {p['frozen']}")


L1_CHALLENGE_S = 10  # the demo's challenge period (days in production)
# ... with `--watch --challenge`: the watchtower shares the CPU with the node and the market (a
# verdict can lag a batch by several seconds, more at --speed > 1), so it gets a longer window
L1_CHALLENGE_WATCH_S = 120
WITHDRAW_AFTER_S = 8  # market seconds before the demo's taker asks to withdraw to L1


TOPUP_EVERY_S = 3  # with --inject-fault: market seconds between the traders' top-ups through the Vault
TOPUP_USD6 = 10 * 1_000_000
# with --inject-fault: market seconds before the taker's withdrawal and a maker's two forced withdrawals
# through L1 (earlier than WITHDRAW_AFTER_S, so that a short run still posts the batches carrying them)
FAULT_WITHDRAW_AFTER_S = 4
FORCED_USD6 = 1_000_000  # the one its free collateral serves
DENIED_USD6 = 10**9 * 1_000_000  # the one the rules deny (more than it holds)


class DemoMarket:
    """The simulated market and its operator as a ticker on the node thread: marks and
    housekeeping every 4th step, the traders' signed orders every step, and one withdrawal to
    L1 by a taker after ``WITHDRAW_AFTER_S`` market seconds. With ``topups`` (trader name ->
    its ``L1Client``; the demo passes them with ``--inject-fault``), three traders also top up
    their account through the Vault every ``TOPUP_EVERY_S`` market seconds (three adjacent L1
    deposits into existing accounts, made on the L1 worker's thread), so faults about L1
    deposits can land in batches after the first one; and after ``FAULT_WITHDRAW_AFTER_S`` (the
    taker's withdrawal comes then too) a maker asks the Vault for two forced withdrawals, one its
    free collateral serves and one the rules deny, for the faults about withdrawal records."""

    def __init__(self, sim: SimulatedMarket, market_seconds, withdraw: bool, topups: dict | None = None):
        self.sim = sim
        self.market_seconds = market_seconds
        self.withdraw = withdraw
        self.step = 0
        self.running = True
        self.withdrawal_seq = 0
        self.topups = topups
        self.topup_rounds = 0
        self.forced_requested = False

    def __call__(self, node, t: int) -> None:
        if not self.running:
            return
        sim, st = self.sim, node.state
        for tr in sim.traders:  # deposits arrive from the L1 queue through the node's intake
            if tr.account < 0:
                tr.account = st.account_ids.get((tr.address, 0), -1)
        if self.step % 4 == 0:  # marks, oracle reports and risk arrays 5 times a second
            marks = sim.mark_updates(t, st)
            if marks:
                node.commit(marks)
            ops = sim.operator_txs(st, t)
            if ops:
                node.commit(ops)
                pays = sim.funding_payments(st, t)
                if pays:
                    node.commit(pays)
        node.commit_payloads(sim.step(t, st))
        withdraw_after = FAULT_WITHDRAW_AFTER_S if self.topups else WITHDRAW_AFTER_S
        if self.withdraw and not self.withdrawal_seq and self.market_seconds() >= withdraw_after:
            self._withdraw(node, t)
        if self.topups and getattr(node, "l1", None) is not None \
                and self.market_seconds() >= TOPUP_EVERY_S * (self.topup_rounds + 1):
            self._topup(node)
        if self.topups and not self.forced_requested and getattr(node, "l1", None) is not None \
                and self.market_seconds() >= FAULT_WITHDRAW_AFTER_S:
            self._forced_withdrawals(node)
        self.step += 1

    def _forced_withdrawals(self, node) -> None:
        tr = next((tr for tr in self.sim.traders if tr.role == "maker" and tr.account >= 0 and tr.name in self.topups),
                  None)
        if tr is None:
            return
        self.forced_requested = True
        user, account = self.topups[tr.name], tr.account

        def request():
            user.request_forced_withdrawal(account, FORCED_USD6)
            user.request_forced_withdrawal(account, DENIED_USD6)

        node.l1.on_l1(request)  # not awaited, as the top-ups

    def _topup(self, node) -> None:
        funded = [tr for tr in self.sim.traders if tr.account >= 0 and tr.name in self.topups]
        if not funded:
            return
        users = [self.topups[funded[(3 * self.topup_rounds + i) % len(funded)].name] for i in range(3)]
        self.topup_rounds += 1

        def deposit():
            for u in users:
                u.mint(u.address, TOPUP_USD6)
                u.deposit(0, TOPUP_USD6)

        node.l1.on_l1(deposit)  # not awaited: the L1 worker feeds the deposits back to this thread

    def _withdraw(self, node, t: int) -> None:
        from ..core import eip712
        from ..core.txs import Withdraw

        tr = next(tr for tr in self.sim.traders if tr.role == "taker" and tr.account >= 0)
        tx = Withdraw(t, tr.account, 1_000 * 1_000_000, tr.next_nonce())
        tx.signature = eip712.sign(node.state.domain, tx, tr.key)
        tx.signer = tr.address
        (ack,) = node.commit([tx])
        self.withdrawal_seq = ack.seq or -1


def run_demo(seconds: float | None, seed: int = 1, data_dir: str | None = None, steps_per_s: float = 20.0,
             console: Console | None = None, speed: float = 1.0, with_l1: bool = True, api: bool = True,
             port: int = 8700, watch: bool = False, watch_out: dict | None = None, challenge: bool = False,
             fault: str | None = None, fault_batch: int | None = None) -> bytes:
    """Run the demo for ``seconds`` of wall time (None: until Ctrl-C). ``speed`` > 1 runs the
    simulated clock faster than the wall clock (the node's clock is passed into the core, so
    the core cannot tell): at speed 4, 30 s of wall time cover 2 minutes of market time.
    ``api``: serve the API and the web UI on 127.0.0.1:``port`` (a free port if it is taken).
    ``watch``: attach a watchtower (``clearline.watchtower.watch.Follower``) to the embedded
    chain in a thread: it checks every posted batch from L1 data alone; the summary shows
    ``watch_checked_batches``, ``watch_challenges`` and ``watch_lag_s`` (median seconds from a
    batch's append to its verdict; ``watch_lag_max_s`` the largest). ``watch_out``: a dict
    filled with those figures and ``l1_batches`` / ``batch_interval_s``.

    ``challenge`` (with ``watch``): the watchtower proves the first wrong commitment itself,
    from a challenger account of the embedded chain (not the sequencer's): commit, then
    reveal (``watch.prove``). A successful proof reverts the batch and every later one and
    freezes the system; the demo then stops (the market, the L1 worker, which posts nothing
    more) and prints what was proven. ``fault`` (a ``FaultKind`` value, embedded L1 only):
    the batcher is a ``FaultyBatcher`` that doctors one posted batch (``fault_batch``, or
    the first that can carry the fault); off by default.

    Ends with ``SystemExit`` (non-zero) when the watchtower finds a wrong commitment that is
    not the injected fault, finds the injected fault but (with ``challenge``) cannot prove it,
    or misses it, and when no posted batch could carry the fault; a run whose injected fault
    was caught (and proven) ends normally."""
    from ..node import NodeService

    if fault is not None:
        from ..sequencer.faults import FaultKind

        fault = FaultKind(fault).value  # ValueError on an unknown kind
        if not with_l1:
            raise SystemExit("--inject-fault needs the embedded L1 chain (not --no-l1)")
    elif fault_batch is not None:
        raise SystemExit("--fault-batch needs --inject-fault")
    if fault_batch is not None and fault_batch < 1:
        raise SystemExit("--fault-batch must be a batch number (1 or more)")
    if challenge and not watch:
        raise SystemExit("--challenge needs --watch")

    console = console or Console()
    data_dir = data_dir or tempfile.mkdtemp(prefix="clearline-demo-")
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "journal.sqlite")
    from ..node.run import require_fresh_journal

    require_fresh_journal(path)  # the simulated market (and the embedded L1) start from scratch
    l1 = None
    if with_l1:
        from ..batcher.harness import make_sim_rollup
        from ..l1.chain import InProcessChain

        console.print("deploying the L1 contracts on the embedded chain and depositing through the Vault...")
        chain = InProcessChain(n_accounts=20)
        l1 = make_sim_rollup(chain, makers=4, takers=6, leveraged=3, seed=seed, journal_url=path,
                             challenge_period=L1_CHALLENGE_WATCH_S if challenge else L1_CHALLENGE_S,
                             forced_deadline=3_600, max_delay_ms=2_000,
                             fault=fault, fault_batch=fault_batch)
        journal, seq, sim = l1.journal, l1.sequencer, l1.sim
        chain_t0 = chain.now()
    else:
        genesis = demo_genesis(seed)
        journal = open_journal(path)
        seq = Sequencer(journal, genesis, snapshot_every=20_000)
        sim = SimulatedMarket(genesis, seed=seed)
    stats = DemoStats()
    start = time.monotonic()
    t0 = int(time.time() * 1000)
    market_s = lambda: (time.monotonic() - start) * speed  # noqa: E731
    # the shell's clock, passed into the core (optionally accelerated for demos and tests)
    now_ms = lambda: t0 + int(market_s() * 1000)  # noqa: E731
    if l1 is None:
        deposits = sim.initial_deposits(now_ms())
        sim.observe(deposits, seq.submit_txs(deposits, now_ms()))
    node = NodeService(seq, clock=now_ms, operator_key=sim.operator_key, demo=True,
                       pricing_time_scale=PRICING_TIME_SCALE)
    node.observers.append(lambda txs, acks: stats.observe_txs(node.state, txs, acks))
    market = DemoMarket(sim, market_s, withdraw=l1 is not None, topups=l1.users if fault is not None else None)
    node.add_ticker(market, 1.0 / (steps_per_s * speed), "simulated market")
    worker = None
    if l1 is not None:
        from ..node.l1 import L1Worker

        worker_cls = L1Worker
        if watch:
            import threading

            chain_lock = threading.RLock()  # the watchtower thread reads the chain the worker writes
            appended: dict[int, float] = {}

            class _WatchedWorker(L1Worker):
                def tick(self, flush: bool = False) -> None:
                    with chain_lock:
                        n0 = len(self.posted)
                        super().tick(flush)
                        for p in self.posted[n0:]:
                            appended[p.number] = time.monotonic()

                def _flush(self, finalize: bool = True) -> None:
                    with chain_lock:
                        super()._flush(finalize)

                def _faucet(self, owner: bytes, amount: int) -> dict:
                    with chain_lock:
                        return super()._faucet(owner, amount)

                def _l1_job(self, fn):
                    with chain_lock:
                        return super()._l1_job(fn)

            worker_cls = _WatchedWorker
        worker = worker_cls(node, l1, period_s=0.5, chain_time=lambda: chain_t0 + market_s(), auto_claim=True,
                            faucet_account=chain.accounts[-1])
    elif watch:
        raise SystemExit("--watch needs the embedded L1 chain (not --no-l1)")
    node.start()
    follower = None
    if worker is not None:
        worker.start()
        if watch:
            from ..watchtower.watch import Follower

            # the challenger: an account of the embedded chain that is neither the sequencer's
            # (accounts[0]), a trader's nor the faucet's (accounts[-1])
            challenger = l1.client.with_sender(chain.accounts[-2]) if challenge else None
            follower = Follower(chain, l1.deployment.rollup, lock=chain_lock, challenger=challenger).start(0.1)
    server = None
    if api:
        from ..api.server import ApiServer

        server = ApiServer(node, port).start()
        print(f"UI: {server.url}/", flush=True)
    console.print(f"[bold]clearline demo[/bold]: journal {path}; {len(sim.traders)} simulated traders; "
                  f"{'Ctrl-C to stop' if seconds is None else f'{seconds:g} s'}")
    if fault is not None:
        console.print(fault_line(fault, fault_batch, None))

    def l1_view():
        if worker is None:
            return None
        v = {"batches": len(worker.posted), "gas": worker.gas, "finalized": worker.finalized,
             "paid": len(worker.paid), "paid_usd6": worker.paid_usd6, "frozen": worker.frozen}
        if fault is not None:
            v["fault"] = fault_line(fault, fault_batch, worker.injected)
        if follower is not None:
            v["watch"] = follower.summary(dict(appended))
        return v

    def view(elapsed):
        return node.call(lambda n: render(n.state, stats, sim, seq, elapsed, n.seq.root(), l1_view(),
                                          server and f"{server.url}/")).result(30)

    stop = {"flag": False}
    frozen_stop = False
    previous = signal.signal(signal.SIGINT, lambda *_: stop.__setitem__("flag", True))
    try:
        with Live(view(0.0), console=console, refresh_per_second=4, transient=False) as live:
            while not stop["flag"] and node.halted is None:
                elapsed = time.monotonic() - start
                if seconds is not None and elapsed >= seconds:
                    break
                if worker is not None and (worker.frozen or (follower is not None and follower.proven)):
                    frozen_stop = True  # nothing more can be settled on L1: stop cleanly
                    break
                time.sleep(min(0.25, max(0.01, seconds - elapsed)) if seconds is not None else 0.25)
                live.update(view(time.monotonic() - start))
            market.running = False
            if worker is not None:  # post what is left (and let the last batches finalize)
                worker.stop(flush=True, finalize=follower is None or follower.challenger is None)
            if follower is not None:  # check (and with --challenge prove) what was posted last
                follower.stop(drain=True)
                if follower.challenger is not None:  # only now, so the last batches could still be proven
                    worker.finalize_all()
            live.update(view(time.monotonic() - start))
    finally:
        signal.signal(signal.SIGINT, previous)
        if server is not None:
            server.stop()
        node.stop()
    if node.halted:
        raise SystemExit(f"the node halted: {node.halted}")
    if worker is not None and (frozen_stop or worker.check_frozen()):
        print(f"the system is frozen after a successful fraud proof: the demo stopped "
              f"{'as soon as it landed' if frozen_stop else 'at its end'} (no batch can be posted any more; "
              "accounts exit with `clearline escape` against the last finalized state)", flush=True)
    root = seq.root()
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
    if worker is not None:
        l1_state = l1_view()
        on_chain = l1.client.last_batch()
        print(f"l1_batches={l1_state['batches']} l1_gas={l1_state['gas']} l1_finalized={l1_state['finalized']} "
              f"l1_withdrawals_paid={l1_state['paid']} l1_last_batch={on_chain} "
              f"l1_frozen={'yes' if l1.client.frozen() else 'no'}", flush=True)
        injected = worker.injected
        if fault is not None:
            if injected is None:
                why = getattr(l1.batcher, "not_injected", [])
                print(f"fault_injected=none fault_kind={fault}: no posted batch could carry it"
                      + (f" ({len(why)} tried; first: {why[0]})" if why else ""), flush=True)
            else:
                extra = " ".join(f"fault_{k}={v}" for k, v in injected.items() if k not in ("fault", "batch"))
                print(f"fault_injected={injected['fault']} fault_batch={injected['batch']} {extra}".rstrip(),
                      flush=True)
        if follower is not None:
            w = l1_state["watch"]
            times = sorted(appended.values())
            interval = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else None
            print(f"watch_checked_batches={w['watch_checked_batches']} watch_challenges={w['watch_challenges']} "
                  f"watch_lag_s={w.get('watch_lag_s', 'n/a')} watch_lag_max_s={w.get('watch_lag_max_s', 'n/a')} "
                  f"batch_interval_s={'n/a' if interval is None else round(interval, 3)}", flush=True)
            if follower.mismatches:
                print(f"watch: {follower.mismatches[0]}", flush=True)
            p = follower.proven
            if p is not None:
                print(f"watch_proven=yes watch_proof_batch={p['batch']} watch_proof_kind={p['kind']} "
                      f"watch_proof_reason={p['reason']} watch_proof_tx={p.get('tx_index')} "
                      f"watch_batches_reverted={p['batches_reverted']} watch_reward_wei={p['reward_wei']} "
                      f"watch_burnt_wei={p['burnt_wei']} watch_frozen={'yes' if p['frozen'] else 'no'} "
                      f"watch_prove_gas={p.get('prove_gas', 'n/a')}", flush=True)
                print(f"watch: {proven_line(p)}", flush=True)
            elif follower.proof_error is not None:
                print(f"watch_proven=no watch_proof_error={follower.proof_error}", flush=True)
            if watch_out is not None:
                watch_out.update(w, l1_batches=l1_state["batches"], batch_interval_s=interval,
                                 watch_lags=follower.lags(dict(appended)), watch_error=follower.last_error)
            if follower.challenges:
                wrong = next(v["batch"] for v in follower.verdicts if not v["ok"])
                if injected is None:
                    raise SystemExit("the watchtower found a commitment that L1 data does not reproduce")
                if wrong != injected["batch"]:
                    raise SystemExit(f"the watchtower found a wrong commitment in batch {wrong}, not in batch "
                                     f"{injected['batch']} that carries the injected fault")
                if challenge and p is None:
                    raise SystemExit(f"the watchtower found the injected fault in batch {wrong} but could not "
                                     f"prove it: {follower.proof_error}")
            elif injected is not None:
                raise SystemExit(f"the watchtower did not catch the fault injected in batch {injected['batch']}")
        if fault is not None and injected is None:
            raise SystemExit(f"--inject-fault {fault}: no posted batch could carry the fault (the demo's traffic "
                             "has no transaction it applies to)")
    print(f"trades={stats.trades} option_trades={stats.option_trades} liquidations={stats.liquidations} "
          f"expiries={len(stats.expiries)} funding_paid_usd={stats.funding_paid / 1e6:.2f} "
          f"volume_usd={stats.volume_usd6 / 1e6:.2f} state_root=0x{root.hex()}", flush=True)
    return root
