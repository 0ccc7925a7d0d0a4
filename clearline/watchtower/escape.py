"""Escape proofs: after a freeze, pay an account its equity at the last finalized state.

``rebuild_finalized(source, rollup)`` rebuilds the state from L1 data alone (the watchtower's
reader and replay: genesis event, batch calldata, queue items; no sequencer, no journal),
stopping at the last finalized batch, and checks every committed root on the way and that
the result is ``Rollup.finalizedStateRoot``. ``escape_call(state, account_id)`` turns that
state into the arguments of ``Vault.escape``: the state-root preimage, the account leaf with
its compressed proof (accounts tree, depth 32, index = account id) and, per position, the
market leaf with its compressed proof (markets tree, depth 24, index = instrument id). The
leaves are the committed encodings decoded back to ABI tuples, so they cannot drift from
``clearline.core.encoding``.

``build_escape(source, rollup, account_id)`` does both. ``escape_main(argv)`` is
``clearline escape --rpc URL --rollup ADDRESS --account ID [--key HEX]`` (``add_arguments`` /
``run`` for the CLI): builds the call, checks it with ``eth_call``, submits it and prints the
amount paid and the gas used. Anyone may send an escape; the Vault always pays the account's
owner. Exit status: 0 paid (or nothing owed), 1 the contract refused it, 2 an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from clearline.core import encoding
from clearline.core.funding import index_payment
from clearline.core.instruments import InstrumentKind
from clearline.core.margin import health
from clearline.core.operator import settlement_fee
from clearline.core.state import State
from clearline.l1.formats import compress_proof
from clearline.l1.params import CONSENSUS_PARAMS_ABI, consensus_params

from .l1data import RollupReader
from .verify import Mismatch, _genesis_check, _prepare, _Verifier, _wait_signers

__all__ = ["EscapeCall", "EscapeError", "Finalized", "add_arguments", "build_escape", "escape_call", "escape_main", "pending_funding",
           "pending_settlement_fee",
           "measure_escape_gas", "rebuild_finalized", "run"]

_ACCOUNT_TYPES = ["bytes32", "uint32", "address", "uint32", "int256", "uint64", "uint8", "uint8",
                  "(uint32,int64,int256,int256)[]"]
_MARKET_TYPES = ["bytes32", "(uint32,bytes32,uint8,bytes32,uint64,uint64,uint32,uint32,int32,int32,uint64,uint64,"
                 "uint8,uint8,uint64,uint64,int256,uint64,int64,uint32,uint64,int64,uint64,uint64,int64[16],uint64,int64,"
                 "uint64,uint64)"]


class EscapeError(RuntimeError):
    """The finalized state cannot be rebuilt from L1 data, or the account does not exist."""


@dataclass(frozen=True)
class EscapeCall:
    """The arguments of ``Vault.escape`` for one account, and what it should pay."""

    account_id: int
    owner: bytes
    state: tuple  # EscapeState
    account: tuple  # EscapeAccount (leaf fields, present, siblings)
    markets: list  # EscapeMarket[] (leaf tuple, present, siblings), one per position
    equity: int  # usd6, clearline.core.margin.health at the finalized state less funding and settlement fees still to pay
    finalized_batch: int
    state_root: bytes
    params: bytes = b""  # abi.encode(ConsensusParams) when a settlement fee is due, else b""

    @property
    def amount(self) -> int:
        """What the Vault pays: max(0, equity)."""
        return max(0, self.equity)

    def args(self) -> tuple[tuple, tuple, list, bytes]:
        return self.state, self.account, self.markets, self.params


@dataclass
class Finalized:
    state: State
    batch: int
    root: bytes
    reader: RollupReader


def rebuild_finalized(source: Any, rollup_address: str | bytes, *, from_block: int | None = None,
                      workers: int = 1) -> Finalized:
    """Replay batches ``1..lastFinalizedBatch`` from L1 data; every committed root is checked.
    Raises ``EscapeError`` on a mismatch (the finalized chain disagrees with its data)."""
    reader = RollupReader(source, rollup_address, from_block=from_block)
    finalized = reader.last_finalized_batch()
    committed = bytes(reader.rollup.functions.finalizedStateRoot().call())
    state, mismatch = _genesis_check(reader)
    if mismatch is not None:
        raise EscapeError(mismatch.line())
    refs = [r for r in reader.batch_refs(1) if r.number <= finalized] if finalized else []
    queue = {item.index: (item, h) for item, h in reader.queue_items()}
    v = _Verifier(reader, queue, state)
    prev_hash = reader.genesis_header().hash()
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="escape-sig") as pool:
        for ref in refs:
            prep = _prepare(reader, ref, state.domain, pool, 256, False)
            if prep.txs is not None:
                _wait_signers(prep)
            h = ref.header
            if h.prev_header_hash != prev_hash:
                raise EscapeError(Mismatch("header_link", h.number, None, prev_hash, h.prev_header_hash).line())
            mismatch = v.batch(prep)
            if mismatch is not None:
                raise EscapeError(mismatch.line())
            prev_hash = ref.header_hash
    root = state.root()
    if root != committed:
        raise EscapeError(f"rebuilt state root 0x{root.hex()} after batch {finalized} is not the finalized "
                          f"root 0x{committed.hex()}")
    return Finalized(state, finalized, root, reader)


def escape_call(state: State, account_id: int, *, finalized_batch: int = -1) -> EscapeCall:
    """The ``Vault.escape`` arguments of ``account_id`` in ``state`` (the finalized state)."""
    if not 0 <= account_id < len(state.accounts):
        raise EscapeError(f"no account {account_id} in the finalized state ({len(state.accounts)} accounts)")
    root = state.root()  # flushes the trees
    acct = state.accounts[account_id]
    preimage = abi_decode(["bytes32", "bytes32", "bytes32", "bytes32", "uint64", "uint256", "uint256", "uint64",
                           "uint32", "uint64", "uint256", "uint256"], _state_preimage(state))[1:]
    leaf = state.account_leaf(acct)
    fields = list(abi_decode(_ACCOUNT_TYPES, leaf)[1:])
    fields[1] = to_checksum_address(fields[1])  # web3 wants checksummed addresses
    proof = state.accounts_tree.proof(account_id)  # ACCOUNTS_DEPTH siblings
    present, kept = compress_proof(proof)
    account = (*fields, present, kept)
    markets = []
    for inst in sorted(acct.positions):
        mleaf = State.market_leaf(state.markets[inst])
        (mfields,) = abi_decode(_MARKET_TYPES, mleaf)[1:]
        mp, mk = compress_proof(state.markets_tree.proof(inst))  # MARKETS_DEPTH siblings
        markets.append((mfields, mp, mk))
    fee = pending_settlement_fee(state, acct)
    equity = health(state, acct)[0] - pending_funding(state, acct) - (fee or 0)
    params = b""
    if fee is not None:  # the Vault reads the fee rate from the consensus parameters
        params = abi_encode([CONSENSUS_PARAMS_ABI], [consensus_params(state.genesis)])
    return EscapeCall(account_id, acct.owner, tuple(preimage), account, markets, equity, finalized_batch, root, params)


def pending_funding(state: State, acct) -> int:
    """usd6 the account's FUNDING_PAYs still due would take from it (<0: pay it): non-zero
    only between a FUNDING_SETTLE and the account's FUNDING_PAY (EscapeLib.equity counts it)."""
    return sum(index_payment(p.size, state.markets[i].funding_index - p.funding_index)
               for i, p in acct.positions.items())


def pending_settlement_fee(state: State, acct) -> int | None:
    """usd6 of settlement fees the account's SETTLE_POSITIONs still due would charge (longs of
    a settled option being paid, with a payoff), or None when there are none (then the escape
    needs no consensus parameters; EscapeLib.equity deducts the same)."""
    due = [(state.markets[i], p.size) for i, p in acct.positions.items()
           if state.markets[i].spec.kind == InstrumentKind.OPTION and state.markets[i].unpaid_lots
           and p.size * state.markets[i].mark_price > 0]
    if not due:
        return None
    return sum(settlement_fee(m, size, state.params.settlement_fee_ppm) for m, size in due)


def _state_preimage(st: State) -> bytes:
    return encoding.encode_state(
        accounts_root=st.accounts_tree.root(), orders_root=st.orders_tree.root(),
        markets_root=st.markets_tree.root(), l1_queue_pos=st.l1_queue_pos, fee_pool=st.fee_pool,
        insurance_fund=st.insurance_fund, next_order_id=st.next_order_id, next_account_id=len(st.accounts),
        time_ms=st.time_ms, total_deposits=st.total_deposits, total_withdrawals=st.total_withdrawals)


def build_escape(source: Any, rollup_address: str | bytes, account_id: int, *,
                 from_block: int | None = None) -> EscapeCall:
    """Rebuild the last finalized state from L1 data alone and build ``account_id``'s escape."""
    fin = rebuild_finalized(source, rollup_address, from_block=from_block)
    return escape_call(fin.state, account_id, finalized_batch=fin.batch)


# ---------------------------------------------------------------------------- benchmark
def measure_escape_gas(positions: int = 16) -> dict:
    """``escape_gas``: the gas of one ``Vault.escape`` of an account with ``positions``
    positions (one per market, every 4th market with a risk array, signed funding indices:
    realistic calldata), on a fresh in-process EVM. The finalized state is built by hand and
    committed as the genesis root (which is final from the start); a deposit left unserved
    past the deadline freezes the system. Returns ``{"escape_gas", "positions", "amount"}``."""
    from clearline.core.instruments import InstrumentSpec
    from clearline.core.state import Genesis, Position
    from clearline.l1.chain import InProcessChain
    from clearline.l1.client import L1Client
    from clearline.l1.deploy import deploy

    chain = InProcessChain(n_accounts=3)
    specs = tuple(InstrumentSpec(i, f"M{i}-PERP", 0, "BTC", 1_000_000, 100_000, 100_000, 50_000, 100, 300)
                  for i in range(positions))
    marks = tuple(60_000 + 13 * i for i in range(positions))
    st = State(Genesis(chain.chain_id, bytes(20), bytes(20), specs, marks))
    for i, m in st.markets.items():
        m.funding_index = -1_000_003 * (i + 1)
        if i % 4 == 0:
            m.risk_array = [(-1) ** k * (50_000 + 1_000 * k) for k in range(16)]
    acct = st.account_for(bytes.fromhex(chain.accounts[1].address[2:]), 0)
    acct.collateral = 100_000 * 10**6
    for i in range(positions):
        size = (i + 1) * (1 if i % 2 else -1)
        acct.positions[i] = Position(size, -size * (marks[i] - 7) * specs[i].tick_value, 77 * i - 500)
    st.dirty_accounts.add(acct.id)
    d = deploy(chain, deployer=chain.accounts[0], challenge_period=100, forced_deadline=1_000,
               genesis_state_root=st.root(), genesis_config=st.genesis.to_json())
    client = L1Client(chain, d, chain.accounts[2])
    client.mint(client.address, 10**12)
    client.deposit(0, 10**12)
    chain.advance_time(1_001)
    client.freeze()
    call = escape_call(st, acct.id)
    res = client.escape(*call.args())
    if res.value != call.amount:
        raise AssertionError(f"escape paid {res.value}, expected {call.amount}")
    return {"escape_gas": res.gas_used, "positions": positions, "amount": res.value}


# ---------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The ``escape`` options, for a subcommand parser (``clearline escape``)."""
    p.add_argument("--rpc", required=True, help="Ethereum JSON-RPC URL")
    p.add_argument("--rollup", required=True, help="Rollup contract address (0x...)")
    p.add_argument("--account", type=int, required=True, help="account id to escape")
    p.add_argument("--key", default=None,
                   help="hex private key that sends the transaction (default: anvil's first dev key; "
                        "the account's owner is paid whoever sends it)")
    p.add_argument("--from-block", type=int, default=None, help="first block to scan for events")
    p.add_argument("--dry-run", action="store_true", help="build and eth_call the escape, do not send it")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def build_parser(prog: str = "clearline escape") -> argparse.ArgumentParser:
    return add_arguments(argparse.ArgumentParser(
        prog=prog, description="After a freeze: prove an account's equity at the last finalized state "
                               "from L1 data alone and withdraw it from the Vault."))


def run(args: argparse.Namespace) -> int:
    from clearline.l1.chain import RpcChain
    from clearline.l1.client import L1Client, L1Revert

    try:
        chain = RpcChain(args.rpc, [args.key] if args.key else None)
        client = L1Client.for_rollup(chain, args.rollup, chain.accounts[0])
        call = build_escape(chain, args.rollup, args.account, from_block=args.from_block)
    except Exception as exc:  # EscapeError, L1DataError, connection refused, bad address
        print(f"escape: error: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 2
    out = {"account": call.account_id, "owner": "0x" + call.owner.hex(), "finalized_batch": call.finalized_batch,
           "state_root": "0x" + call.state_root.hex(), "equity": call.equity, "positions": len(call.markets)}
    try:
        expected = client.preview_escape(*call.args())
        out["amount"] = expected
        if not args.dry_run:
            res = client.escape(*call.args())
            out.update(amount=res.value, gas_used=res.gas_used, tx_hash="0x" + res.tx_hash.hex())
    except L1Revert as exc:
        out["error"] = str(exc)
        _print(out, args.json)
        return 1
    _print(out, args.json)
    return 0


def _print(out: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(out, indent=2, sort_keys=True))
        return
    head = (f"account {out['account']} (owner {out['owner']}) at finalized batch {out['finalized_batch']}: "
            f"equity {out['equity'] / 1e6:,.6f} USD, {out['positions']} positions")
    if "error" in out:
        print(f"REFUSED: {head}; the Vault reverted: {out['error']}")
    elif "gas_used" in out:
        print(f"PAID: {head}; paid {out['amount'] / 1e6:,.6f} USD to the owner, gas {out['gas_used']:,} "
              f"(tx {out['tx_hash']})")
    else:
        print(f"DRY RUN: {head}; the escape would pay {out['amount'] / 1e6:,.6f} USD")


def escape_main(argv: list[str] | None = None) -> int:
    """``clearline escape --rpc URL --rollup ADDRESS --account ID [--key HEX] [--dry-run] [--json]``."""
    return run(build_parser().parse_args(argv))


main = escape_main

if __name__ == "__main__":  # python -m clearline.watchtower.escape --rpc ... --rollup ... --account N
    raise SystemExit(escape_main())
