"""clearline command line: ``clearline demo | node | bench | replay | margin | verify | escape | watch``."""

from __future__ import annotations

import argparse
import json
import sys


# --inject-fault KIND: one line each (the kinds of clearline.sequencer.faults.FaultKind)
FAULT_HELP = {
    "skipped_queue_item": "a batch leaves out one L1 deposit and serves the next queue item in its place",
    "minted_collateral": "a deposit credits more than its L1 queue item holds",
    "wrong_root": "one committed state root is not the root of the batch's data",
    "malformed_chunk": "a chunk of the batch data carries a trailing byte",
    "bad_framing": "the header's txsPerRoot is not the data's chunk size",
    "wrong_queue_end": "the header's queueEnd claims one L1 queue item fewer than the batch consumed",
    "forged_signature": "a withdrawal pays more than its owner signed",
    "replayed_signature": "a signed withdrawal is posted twice and paid twice",
    "stolen_withdrawal": "the batch's withdrawal records gain one paying the sequencer from a rich account",
    "omitted_withdrawal": "a withdrawal's record is left out (the account is debited, nothing pays it on L1)",
    "unrecorded_forced_withdrawal": "a served forced withdrawal's record is left out (debited, nothing pays it)",
    "recorded_denied_withdrawal": "a forced withdrawal the rules deny gets a record paying it anyway",
    "wrongful_liquidation": "an operator liquidation of a healthy account",
    "unauthorized_cancel": "an operator cancels the orders of an account that did not opt in",
    "forged_account_flags": "an account is opted in to operator cancels by a flags change its owner never signed",
    "wrong_median": "a mark update sets an underlying's index above the oracle reports' lower median",
    "wrong_expiry_price": "an option is settled one tick above its expiry's settlement price (a demo run must reach "
                          "an option expiry: 10 to 70 market seconds)",
    "wrong_funding": "a funding settlement moves the funding index twice, so its payments pay double (a demo run "
                     "must reach a funding interval's end, every 20 market seconds)",
    "forged_order": "an order is posted one lot larger than its owner signed (its signature kept)",
    "replayed_old_order": "an order of an earlier batch is posted again with its signature (its nonce reused)",
    "expired_option_order": "an owner-signed order on an option past its expiry is accepted (not carried by the "
                            "demo's short runs: no expiry comes due; tests only)",
    "over_fill": "an order fills a resting order one lot beyond its size (at that matching step)",
    "price_outside_limit": "an order's first fill is settled one tick beyond its limit price (at that matching step)",
    "under_margined_fill": "an order cut by the margin gate is filled further, below initial margin (the demo's "
                           "traffic has no such order: tests only)",
}


def _fault_kinds() -> list[str]:
    from .sequencer.faults import FaultKind

    return [k.value for k in FaultKind]


def _fault_epilog() -> str:
    kinds = _fault_kinds()
    width = max(map(len, kinds))
    return ("fault kinds (--inject-fault KIND; a faulty sequencer for testing the dispute game, off by default):\n"
            + "\n".join(f"  {k:{width}}  {FAULT_HELP.get(k, '')}".rstrip() for k in kinds))


def _add_fault_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inject-fault", metavar="KIND", choices=_fault_kinds(), default=None,
                   help="post one doctored batch carrying this invalid transition (a faulty sequencer, to test "
                        "the dispute game; needs the embedded L1; kinds below)")
    p.add_argument("--fault-batch", metavar="N", type=int, default=None,
                   help="with --inject-fault: the batch number to doctor (default: the first batch that can carry "
                        "the fault)")


def _check_fault_arguments(args, no_l1: bool) -> None:
    if args.inject_fault is None:
        if args.fault_batch is not None:
            raise SystemExit(f"clearline {args.command}: --fault-batch needs --inject-fault")
        return
    if no_l1:
        raise SystemExit(f"clearline {args.command}: --inject-fault needs the embedded L1 chain (drop --no-l1)")
    if args.fault_batch is not None and args.fault_batch < 1:
        raise SystemExit(f"clearline {args.command}: --fault-batch must be a batch number (1 or more)")


def _cmd_demo(args) -> int:
    from .sim.demo import run_demo

    _check_fault_arguments(args, args.no_l1)
    if args.challenge and not args.watch:
        raise SystemExit("clearline demo: --challenge needs --watch")
    run_demo(args.seconds, seed=args.seed, data_dir=args.data_dir, steps_per_s=args.steps_per_s, speed=args.speed,
             with_l1=not args.no_l1, api=not args.no_api, port=args.port, watch=args.watch,
             challenge=args.challenge, fault=args.inject_fault, fault_batch=args.fault_batch)
    return 0


def _cmd_node(args) -> int:
    from .node.run import run_node

    _check_fault_arguments(args, args.no_l1)
    return run_node(data_dir=args.data_dir, port=args.port, sim=args.sim, seed=args.seed, seconds=args.seconds,
                    with_l1=not args.no_l1, rate=args.rate, burst=args.burst, fault=args.inject_fault,
                    fault_batch=args.fault_batch)


def _cmd_bench(args) -> int:
    from .benchmarks import run_all

    figures = run_all(quick=not args.full, progress=not args.json)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    else:
        for k, v in sorted(figures.items()):
            print(f"{k:32s} {v}")
    return 0


def _cmd_replay(args) -> int:
    from .journal import open_journal
    from .sequencer import recover_state

    with open_journal(args.journal) as journal:
        journal.verify_chain()
        state, seq = recover_state(journal, use_snapshot=not args.from_genesis)
        state.check_invariants()
        print(f"seq={seq} accounts={len(state.accounts)} open_orders={len(state.orders)} "
              f"state_root=0x{state.root().hex()}")
    return 0


def _cmd_margin_explain(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from .core.explain import explain
    from .journal import open_journal
    from .sequencer import recover_state

    with open_journal(args.journal) as journal:
        state, seq = recover_state(journal)
    if not (0 <= args.account < len(state.accounts)):
        raise ValueError(f"account {args.account} does not exist (accounts 0..{len(state.accounts) - 1})")
    rep = explain(state, args.account)
    if args.json:
        print(json.dumps(rep.as_dict(), sort_keys=True))
        return 0
    usd = lambda v: f"${v / 1e6:,.2f}"  # noqa: E731
    con = Console()
    con.print(f"[bold]account {rep.account}[/bold] ({rep.mode} margin) at journal seq {seq}")
    con.print(f"collateral {usd(rep.collateral)}  equity {usd(rep.equity)}  initial {usd(rep.initial)}  "
              f"maintenance {usd(rep.maintenance)}  free {usd(rep.free_collateral)}"
              + (f"  margin ratio {rep.margin_ratio_ppm / 1e4:.2f}%" if rep.margin_ratio_ppm is not None else ""))
    if rep.binding_scenario is not None:
        from .risk.scenarios import SCENARIOS

        sc = SCENARIOS[rep.binding_scenario]
        con.print(f"binding scenario {rep.binding_scenario} ({sc.label}): loss {usd(rep.scenario_losses[rep.binding_scenario])}"
                  f"  + short-option minimum {usd(rep.short_option_minimum)} + contingency {usd(rep.contingency)}")
    t = Table()
    for col in ("instrument", "size (lots)", "mark", "value", "unrealised P&L", "initial", "maintenance",
                "scenario loss", "liquidation price"):
        t.add_column(col, justify="right" if col != "instrument" else "left")
    for p in rep.positions:
        spec = state.markets[p.instrument].spec
        px = lambda ticks: "-" if ticks is None else f"{ticks * spec.tick_size / 1e6:,.2f}"  # noqa: E731
        t.add_row(p.symbol, f"{p.size:,}", px(p.mark), usd(p.value), usd(p.unrealised_pnl), usd(p.initial),
                  usd(p.maintenance), "-" if p.scenario_loss is None else usd(p.scenario_loss),
                  px(p.liquidation_price))
    con.print(t)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="clearline", description="Off-chain clearing and settlement for crypto derivatives.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run a node with a simulated market and a live summary",
                       epilog=_fault_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: until Ctrl-C)")
    d.add_argument("--seed", type=int, default=1, help="seed of the simulated market (default 1)")
    d.add_argument("--data-dir", default=None, help="where the journal goes (default: a new temp dir)")
    d.add_argument("--steps-per-s", type=float, default=20.0, help="simulated market ticks per second")
    d.add_argument("--speed", type=float, default=1.0,
                   help="market clock speed relative to the wall clock (e.g. 4: a minute of market in 15 s)")
    d.add_argument("--no-l1", action="store_true",
                   help="run the node alone, without the embedded L1 chain, batches and withdrawals")
    d.add_argument("--port", type=int, default=8700, help="API and web UI port on 127.0.0.1 (default 8700; "
                                                           "a free port if taken)")
    d.add_argument("--no-api", action="store_true", help="do not serve the API and the web UI")
    d.add_argument("--watch", action="store_true",
                   help="attach a watchtower to the embedded chain: it checks every posted batch from L1 data "
                        "(watch_checked_batches, watch_challenges, watch_lag_s in the summary)")
    d.add_argument("--challenge", action="store_true",
                   help="with --watch: on the first wrong commitment the watchtower builds and submits the fraud "
                        "proof itself from a challenger account of the embedded chain; after a successful proof "
                        "the system is frozen and the demo stops")
    _add_fault_arguments(d)
    d.set_defaults(func=_cmd_demo)

    n = sub.add_parser("node", help="run a node with the API (embedded L1; --sim adds the simulated market)",
                       epilog=_fault_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    n.add_argument("--data-dir", default=None, help="where the journal goes (default: a new temp dir)")
    n.add_argument("--port", type=int, default=8700, help="API port on 127.0.0.1 (default 8700; a free port if taken)")
    n.add_argument("--sim", action="store_true", help="drive the node with the simulated market and its operator")
    n.add_argument("--seed", type=int, default=1, help="seed of the demo genesis and market (default 1)")
    n.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: until Ctrl-C)")
    n.add_argument("--no-l1", action="store_true", help="no embedded L1 chain (no deposits, batches or faucet)")
    n.add_argument("--rate", type=float, default=100.0, help="signed writes per second per account (default 100)")
    n.add_argument("--burst", type=int, default=200, help="rate-limit burst per account (default 200)")
    _add_fault_arguments(n)
    n.set_defaults(func=_cmd_node)

    b = sub.add_parser("bench", help="run the benchmarks and print figures")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--full", action="store_true", help="more repeats (slower, steadier medians)")
    b.set_defaults(func=_cmd_bench)

    r = sub.add_parser("replay", help="rebuild state from a journal and print its state root")
    r.add_argument("--journal", required=True, help="journal: a path, a sqlite:/// URL or a postgresql://… URL (?schema=…)")
    r.add_argument("--from-genesis", action="store_true", help="ignore snapshots, replay everything")
    r.set_defaults(func=_cmd_replay)

    mg = sub.add_parser("margin", help="margin tools")
    msub = mg.add_subparsers(dest="margin_command", required=True)
    me = msub.add_parser("explain", help="explain an account's margin: equity, requirements, binding scenario, "
                                         "per-position contributions, liquidation prices")
    me.add_argument("--journal", required=True, help="journal: a path, a sqlite:/// URL or a postgresql://… URL (?schema=…)")
    me.add_argument("--account", type=int, required=True, help="account id")
    me.add_argument("--json", action="store_true", help="print the report as one JSON object")
    me.set_defaults(func=_cmd_margin_explain)

    from .watchtower.verify import add_arguments as _verify_arguments
    from .watchtower.verify import run as _verify_run

    v = sub.add_parser("verify", help="rebuild the state from L1 data alone and check every committed root")
    _verify_arguments(v)
    v.set_defaults(func=_verify_run)

    from .watchtower.escape import add_arguments as _escape_arguments
    from .watchtower.escape import run as _escape_run

    e = sub.add_parser("escape", help="after a freeze: prove an account's equity at the last finalized state "
                                      "from L1 data alone and withdraw it")
    _escape_arguments(e)
    e.set_defaults(func=_escape_run)

    from .watchtower.watch import add_arguments as _watch_arguments
    from .watchtower.watch import run as _watch_run

    w = sub.add_parser("watch", help="follow L1, rebuild from its data and prove fraud on the first wrong "
                                     "commitment (--challenge)")
    _watch_arguments(w)
    w.set_defaults(func=_watch_run)

    args = p.parse_args(argv)
    from .core.errors import InvariantBroken
    from .journal import JournalError

    try:
        return args.func(args)
    except (JournalError, InvariantBroken, ValueError) as e:
        print(f"clearline {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
