"""clearline command line: ``clearline demo | bench | replay``."""

from __future__ import annotations

import argparse
import json
import sys


def _cmd_demo(args) -> int:
    from .sim.demo import run_demo

    run_demo(args.seconds, seed=args.seed, data_dir=args.data_dir, steps_per_s=args.steps_per_s)
    return 0


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="clearline", description="Off-chain clearing and settlement for crypto derivatives.")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="run a node with a simulated market and a live summary")
    d.add_argument("--seconds", type=float, default=None, help="stop after N seconds (default: until Ctrl-C)")
    d.add_argument("--seed", type=int, default=1, help="seed of the simulated market (default 1)")
    d.add_argument("--data-dir", default=None, help="where the journal goes (default: a new temp dir)")
    d.add_argument("--steps-per-s", type=float, default=20.0, help="simulated market ticks per second")
    d.set_defaults(func=_cmd_demo)

    b = sub.add_parser("bench", help="run the benchmarks and print figures")
    b.add_argument("--json", action="store_true", help="print one JSON object")
    b.add_argument("--full", action="store_true", help="more repeats (slower, steadier medians)")
    b.set_defaults(func=_cmd_bench)

    r = sub.add_parser("replay", help="rebuild state from a journal and print its state root")
    r.add_argument("--journal", required=True, help="journal path or sqlite:/// URL")
    r.add_argument("--from-genesis", action="store_true", help="ignore snapshots, replay everything")
    r.set_defaults(func=_cmd_replay)

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
