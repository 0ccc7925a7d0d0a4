"""A faulty sequencer for tests of the dispute game: one chosen invalid transition, injected
into what the batcher posts. Off unless a test asks for it; outside ``clearline.core`` (the
core never sees a fault: the honest journal and the batcher's replica stay honest, only the
posted batch is doctored, with roots that follow the doctored data as a cheating sequencer's
own state would).

``FaultyBatcher(journal, client, genesis, fault=FaultKind.X, fault_batch=None, **kw)`` is a
``Batcher`` whose next batch (or batch number ``fault_batch``) that can carry the fault
carries it, once; ``injected`` then describes it. Kinds:

- ``skipped_queue_item``: the batch leaves out the Deposit of one L1 queue item and serves the
  next item in its place (the cheating state jumps its queue position);
- ``minted_collateral``: a Deposit credits more than its L1 queue item holds;
- ``wrong_root``: one committed state root is not the root of the data (the first chunk made
  only of deposits, withdrawals and transfers, else the first chunk);
- ``forged_signature``: a Withdraw pays more than its owner signed (the signature no longer
  recovers to the owner; the cheating state debits the larger amount);
- ``replayed_signature``: a Withdraw the owner signed once is posted twice (same signature,
  same nonce: the cheating state pays it again, as if the nonce were unused);
- ``wrongful_liquidation``: an operator-signed LIQUIDATE of a healthy account (equity at or
  above its maintenance requirement) is added after the batch's first withdrawal or transfer,
  else at its end (a chunk of its own in batch data v3); the cheating state liquidates it
  anyway (as if its markets were marked against it). Needs ``operator_key``;
- ``unauthorized_cancel``: an operator-signed CANCEL_ALL_ORDERS (trigger 1, disconnect) of an
  account that has resting orders but has not opted in (its flags lack OPERATOR_MAY_CANCEL) is
  added where ``wrongful_liquidation`` adds its LIQUIDATE (a chunk of its own); the cheating
  state closes the account's orders anyway (CloseReason.OPERATOR_CANCEL, as the core's
  ``cancel_all`` does for an opted-in account). Needs ``operator_key``;
- ``malformed_chunk``: a chunk carries a trailing byte (the chunk table still walks);
- ``bad_framing``: the header's txsPerRoot is not the data's chunk size;
- ``wrong_queue_end``: the header's queueEnd claims one queue item fewer than the batch
  consumed;
- ``wrong_median``: at the batch's first MarkUpdate whose oracle round sets an underlying's
  index (outcome ACCEPTED or CONFIRMED, found with ``clearline.oracle.aggregate`` on the
  state before it), the cheating state's index of that underlying is not the round's lower
  median but the highest fresh report's price (the honest index + 1 if that is the median);
  everything else is applied as the rules say;
- ``wrong_expiry_price``: at the batch's first SETTLE_EXPIRY of an expiry with at least one
  ACTIVE option market, the cheating state settles those options at one option tick
  (``spec.tick_size``, usd6) above the rules' settlement price (the window's TWAP, or the
  index if the window saw no time): the market leaves record that price, and positions,
  payoffs, fees and marks are those of a settlement at it;
- ``wrong_funding``: at the batch's first FUNDING_TICK that settles funding for at least one
  perpetual, the cheating state settles each settled market's funding twice: its
  funding_index moves by 2 x rate x mark x tick_value (``last_funding_rate_ppm`` still
  records the rules' rate) and each holder pays (or receives) the payment a second time
  (positions' funding_index follow the market's; the rounding remainder goes to the insurance
  fund as in the honest settlement). Where the recorded rate is 0 (doubling would change
  nothing) the second settlement is at 1 ppm instead, so the index moves by 1 ppm worth.

The last three are operator transactions, each alone in its chunk (batch data v3); the
doctored chunk's root and every later root of the batch differ from the honest ones (a
transaction whose cheat the rest of the batch would undo, e.g. a wrong index that a later
round replaces before any settlement window saw it, is passed over for the next one).
``doctored_state`` keeps a copy of the cheating state right after the doctored transaction
(the state its chunk's root commits to).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Callable

from clearline.batcher.batcher import Batcher, BatchPlan
from clearline.batcher.records import withdrawal_records
from clearline.core import eip712
from clearline.core.apply import apply
from clearline.core.encoding import decode_tx
from clearline.core.hashing import keccak
from clearline.core.state import State
from clearline.core.margin import health
from clearline.core.instruments import InstrumentKind, MarketStatus
from clearline.core.txs import (AccountFlag, CancelTrigger, Deposit, ForcedWithdrawal, MarkUpdate, OperatorAction,
                                OperatorActionKind, Transfer, Withdraw)
from clearline.l1.batch_v3 import chunk_sizes, chunk_table_v3
from clearline.l1.formats import encode_batch, withdrawals_tree

__all__ = ["FaultKind", "FaultyBatcher", "FaultyRollup", "MINTED_EXTRA", "OPERATOR_FAULTS", "PROVABLE_FAULTS",
           "ROLLUP_FAULTS", "WRONG_ROOT", "fault_scenario", "faulty_rollup", "operator_fault_rollup"]

MINTED_EXTRA = 1_000_000 * 10**6  # usd6 a minted deposit adds
WRONG_ROOT = keccak(b"clearline.fault.wrong_root")


class FaultKind(str, Enum):
    SKIPPED_QUEUE_ITEM = "skipped_queue_item"
    MINTED_COLLATERAL = "minted_collateral"
    WRONG_ROOT = "wrong_root"
    MALFORMED_CHUNK = "malformed_chunk"
    BAD_FRAMING = "bad_framing"
    WRONG_QUEUE_END = "wrong_queue_end"
    FORGED_SIGNATURE = "forged_signature"
    REPLAYED_SIGNATURE = "replayed_signature"
    WRONGFUL_LIQUIDATION = "wrongful_liquidation"
    UNAUTHORIZED_CANCEL = "unauthorized_cancel"
    WRONG_MEDIAN = "wrong_median"
    WRONG_EXPIRY_PRICE = "wrong_expiry_price"
    WRONG_FUNDING = "wrong_funding"


# the faults in an operator transaction's outcome (``operator_fault_rollup`` carries them)
OPERATOR_FAULTS = (FaultKind.WRONG_MEDIAN, FaultKind.WRONG_EXPIRY_PRICE, FaultKind.WRONG_FUNDING)
# the faults ``faulty_rollup``'s batch 3 carries (all the others)
ROLLUP_FAULTS = tuple(k for k in FaultKind if k not in OPERATOR_FAULTS)
# the faults an implemented L1 proof kind proves (wrong_expiry_price and wrong_funding are
# injected and found by the watchtower, not proven on L1 yet: docs/fraud-proofs.md)
PROVABLE_FAULTS = (*ROLLUP_FAULTS, FaultKind.WRONG_MEDIAN)


_L1 = (Deposit, ForcedWithdrawal)


class FaultyBatcher(Batcher):
    """A ``Batcher`` that posts one doctored batch (see the module docstring)."""

    def __init__(self, *args, fault: FaultKind | str, fault_batch: int | None = None,
                 operator_key: bytes | None = None, **kw):
        super().__init__(*args, **kw)
        self.fault = FaultKind(fault)
        self.operator_key = operator_key
        self.fault_batch = fault_batch
        self.injected: dict | None = None  # what was doctored, once it was
        self.doctored_state: State | None = None  # the cheating state after the doctored tx (operator faults)

    def build(self, entries=None) -> BatchPlan | None:
        if entries is None:
            self.sync()
            entries = self.pending_entries()
        armed = self.injected is None and entries and (self.fault_batch is None
                                                        or self.fault_batch == self.batch + 1)
        pre = State.from_blob(self.state.to_blob()) if armed else None
        plan = super().build(entries)
        if not armed or plan is None:
            return plan
        txs = []
        for e in entries:
            tx = decode_tx(e.payload)
            if e.signer:
                tx.signer = e.signer
            txs.append(tx)
        doctored = self._doctor(plan, pre, txs)
        if doctored is None:
            return plan
        return doctored

    # -- the faults ----------------------------------------------------------------------
    def _doctor(self, plan: BatchPlan, pre: State, txs: list) -> BatchPlan | None:
        k = plan.txs_per_root
        f = self.fault
        if f is FaultKind.SKIPPED_QUEUE_ITEM:
            j = _skippable(txs, k)
            if j is None:
                return None
            q = txs[j].queue_index
            out = self._replan(plan, pre, txs[:j] + txs[j + 1:], skip=True)
            self.injected = {"fault": f.value, "batch": plan.number, "tx_index": j, "queue_index": q}
            return out
        if f is FaultKind.MINTED_COLLATERAL:
            j = next((i for i, tx in enumerate(txs) if type(tx) is Deposit and tx.owner != bytes(20)), None)
            if j is None:
                return None
            txs = list(txs)
            txs[j] = replace(txs[j], amount=txs[j].amount + MINTED_EXTRA)
            out = self._replan(plan, pre, txs)
            self.injected = {"fault": f.value, "batch": plan.number, "tx_index": j, "extra": MINTED_EXTRA}
            return out
        if f is FaultKind.WRONG_ROOT:
            chunks = _chunks(txs, k)
            c = next((i for i, ch in enumerate(chunks)
                      if all(type(tx) in (Deposit, ForcedWithdrawal, Withdraw, Transfer) for tx in ch)), 0)
            roots = list(plan.state_roots)
            roots[c] = WRONG_ROOT
            self.injected = {"fault": f.value, "batch": plan.number, "chunk": c}
            return replace(plan, state_roots=roots)
        if f is FaultKind.FORGED_SIGNATURE:
            j = next((i for i, tx in enumerate(txs) if type(tx) is Withdraw), None)
            if j is None:
                return None
            txs = list(txs)
            forged = replace(txs[j], amount=txs[j].amount + 1)
            forged.signer = txs[j].signer  # the cheating sequencer "accepts" it as signed
            txs[j] = forged
            out = self._replan(plan, pre, txs)
            self.injected = {"fault": f.value, "batch": plan.number, "tx_index": j}
            return out
        if f is FaultKind.REPLAYED_SIGNATURE:
            j = next((i for i, tx in enumerate(txs) if type(tx) is Withdraw), None)
            if j is None:
                return None
            replay = replace(txs[j])
            replay.signer = txs[j].signer
            txs = txs[:j + 1] + [replay] + txs[j + 1:]
            out = self._replan(plan, pre, txs, replayed=j + 1)
            self.injected = {"fault": f.value, "batch": plan.number, "tx_index": j + 1, "replay_of": j}
            return out
        if f is FaultKind.WRONGFUL_LIQUIDATION:
            return self._wrongful_liquidation(plan, pre, txs)
        if f is FaultKind.UNAUTHORIZED_CANCEL:
            return self._unauthorized_cancel(plan, pre, txs)
        if f in OPERATOR_FAULTS:
            return self._operator_fault(plan, pre, txs)
        if f is FaultKind.MALFORMED_CHUNK:
            if not txs:
                return None
            data = _trailing_byte(plan.data, 0)
            self.injected = {"fault": f.value, "batch": plan.number, "chunk": 0}
            return replace(plan, data=data)
        if f is FaultKind.BAD_FRAMING:
            self.injected = {"fault": f.value, "batch": plan.number}
            return replace(plan, txs_per_root=k + 1)
        if f is FaultKind.WRONG_QUEUE_END:
            if plan.queue_end == plan.queue_start:
                return None
            self.injected = {"fault": f.value, "batch": plan.number, "queue_end": plan.queue_end - 1}
            return replace(plan, queue_end=plan.queue_end - 1)
        raise ValueError(f"unknown fault {f}")

    def _wrongful_liquidation(self, plan: BatchPlan, pre: State, txs: list) -> BatchPlan | None:
        """A LIQUIDATE of an account that is healthy where it is inserted: after the batch's first
        Withdraw or Transfer, else at its end. In batch data v3 it is a chunk of its own."""
        if self.operator_key is None:
            raise ValueError("wrongful_liquidation needs the operator's key (operator_key=)")
        if not txs:
            return None
        j = next((i + 1 for i, tx in enumerate(txs) if type(tx) in (Withdraw, Transfer)), len(txs))
        at = State.from_blob(pre.to_blob())
        for tx in txs[:j]:
            if not apply(at, tx).ok:
                return None
        victim = next((a.id for a in at.accounts if a.positions and (lambda h: h[0] >= h[2])(health(at, a))), None)
        if victim is None:
            return None
        t = txs[j - 1].time_ms
        liq = OperatorAction(t, int(OperatorActionKind.LIQUIDATE), victim, 0, t)
        liq.signature = eip712.sign(pre.domain, liq, self.operator_key)
        liq.signer = pre.operator
        txs = txs[:j] + [liq] + txs[j:]
        out = self._replan(plan, pre, txs, liquidated=j)
        self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": j, "account": victim}
        return out

    def _unauthorized_cancel(self, plan: BatchPlan, pre: State, txs: list) -> BatchPlan | None:
        """A CANCEL_ALL_ORDERS of an account with resting orders that has not opted in, where
        ``_wrongful_liquidation`` puts its LIQUIDATE: after the batch's first Withdraw or
        Transfer, else at its end (the first account in id order that qualifies there; else
        the first point of the batch, from its end backwards, where one does)."""
        if self.operator_key is None:
            raise ValueError("unauthorized_cancel needs the operator's key (operator_key=)")
        if not txs:
            return None
        first = next((i + 1 for i, tx in enumerate(txs) if type(tx) in (Withdraw, Transfer)), len(txs))
        for j in dict.fromkeys([first, *range(len(txs), 0, -1)]):
            st = State.from_blob(pre.to_blob())
            for tx in txs[:j]:
                if not apply(st, tx).ok:
                    return None
            victim = next((a.id for a in st.accounts
                           if a.open_orders and not a.flags & AccountFlag.OPERATOR_MAY_CANCEL), None)
            if victim is not None:
                break
        else:
            return None
        t = txs[j - 1].time_ms
        cancel = OperatorAction(t, int(OperatorActionKind.CANCEL_ALL_ORDERS), victim, int(CancelTrigger.DISCONNECT), t)
        cancel.signature = eip712.sign(pre.domain, cancel, self.operator_key)
        cancel.signer = pre.operator
        orders = sorted(st.accounts[victim].open_orders)
        txs = txs[:j] + [cancel] + txs[j:]
        out = self._replan(plan, pre, txs, cheat=(j, _cancel_anyway))
        self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": j, "account": victim,
                         "orders": orders}
        return out

    def _operator_fault(self, plan: BatchPlan, pre: State, txs: list) -> BatchPlan | None:
        """``wrong_median``, ``wrong_expiry_price``, ``wrong_funding``: the batch's first
        transaction that can carry the fault (judged on a copy of the state before it) is
        applied by a cheating hook (see the module docstring). A transaction whose cheat would
        be undone within the batch (some root from its chunk on equal to the honest one, e.g.
        a wrong index that a later round of the batch replaces while no settlement window
        saw it) does not carry it: the next one that can is tried."""
        find = {FaultKind.WRONG_MEDIAN: _wrong_median, FaultKind.WRONG_EXPIRY_PRICE: _wrong_expiry_price,
                FaultKind.WRONG_FUNDING: _wrong_funding}[self.fault]
        blob = pre.to_blob()
        at = State.from_blob(blob)
        for j, tx in enumerate(txs):
            found = find(at, tx)
            if found is not None:
                hook, info = found
                out = self._replan(plan, State.from_blob(blob), txs, cheat=(j, hook))
                c = len(chunk_sizes(txs[:j], plan.txs_per_root))  # the doctored transaction's chunk (alone in it)
                if all(a != b for a, b in zip(out.state_roots[c:], plan.state_roots[c:])):
                    self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": j, **info}
                    return out
                self.doctored_state = None
            if not apply(at, tx).ok:
                return None
        return None

    def _replan(self, plan: BatchPlan, pre: State, txs: list, *, skip: bool = False,
                replayed: int | None = None, liquidated: int | None = None,
                cheat: tuple[int, Callable] | None = None) -> BatchPlan:
        """The plan of ``txs`` as a cheating sequencer's state would commit it: applied to the
        pre-batch state (an L1 transaction may jump the queue when ``skip``; transaction
        ``replayed`` is applied as if its nonce were still unused; with ``cheat = (i, hook)``
        transaction ``i`` is applied by ``hook(state, tx) -> Receipt`` instead of ``apply``,
        and ``doctored_state`` keeps a copy of the state right after it)."""
        k = plan.txs_per_root
        roots, records = [], []
        st = pre
        ends, total = set(), 0
        for size in chunk_sizes(txs, k):
            total += size
            ends.add(total - 1)
        for i, tx in enumerate(txs):
            if skip and type(tx) in _L1 and tx.queue_index > st.l1_queue_pos:
                st.l1_queue_pos = tx.queue_index  # the skip: item(s) before it are never served
            if i == replayed:
                st.accounts[tx.account].nonce = tx.nonce - 1  # the replay: the nonce "forgotten"
            if i == liquidated:
                r = _liquidate_anyway(st, tx)
            elif cheat is not None and i == cheat[0]:
                r = cheat[1](st, tx)
            else:
                r = apply(st, tx)
            if not r.ok:
                raise RuntimeError(f"fault {self.fault.value}: doctored transaction {i} rejected: {r}")
            if cheat is not None and i == cheat[0]:
                self.doctored_state = State.from_blob(st.to_blob())
            if r.events:
                records.extend(withdrawal_records(st, r))
            if i in ends:
                roots.append(st.root())
        if not roots:
            roots.append(st.root())
        return replace(plan, data=encode_batch(txs, k), state_roots=roots, queue_end=st.l1_queue_pos,
                       withdrawals=records, withdrawals_root=withdrawals_tree(records).root())


def _liquidate_anyway(st: State, tx: OperatorAction):
    """Apply a LIQUIDATE of a healthy account as a cheating sequencer would: with the
    account's markets marked against it for the check, and the marks restored afterwards."""
    acct = st.accounts[tx.target]
    saved = {}
    for inst, pos in acct.positions.items():
        m = st.markets[inst]
        saved[inst] = m.mark_price
        m.mark_price = 1 if pos.size > 0 else m.mark_price * 1_000
        st.dirty_markets.add(inst)
    r = apply(st, tx)
    for inst, mark in saved.items():
        st.markets[inst].mark_price = mark
        st.dirty_markets.add(inst)
    return r


def _cancel_anyway(st: State, tx: OperatorAction):
    """Apply a CANCEL_ALL_ORDERS of an account that has not opted in as a cheating sequencer
    would: every resting order of the account closed (CloseReason.OPERATOR_CANCEL, the core's
    ``cancel_all``), the state's time moved to the transaction's."""
    from clearline.core.apply import Receipt
    from clearline.core.ledger import cancel_all
    from clearline.core.matching import CloseReason

    events: list = []
    cancel_all(st, st.accounts[tx.target], CloseReason.OPERATOR_CANCEL, events)
    st.time_ms = tx.time_ms
    return Receipt(True, events=events)


def _wrong_median(st: State, tx) -> tuple[Callable, dict] | None:
    """A MarkUpdate whose oracle round sets some underlying's index (ACCEPTED or CONFIRMED,
    the lowest such underlying id): the cheating index is the highest fresh report's price,
    or the honest index + 1 if that is the lower median itself."""
    from clearline.oracle.aggregate import OracleRejected, Outcome, aggregate
    from clearline.oracle.report import recover_reporter

    if type(tx) is not MarkUpdate or not tx.reports:
        return None
    by_asset: dict[int, list] = {}
    for rep in tx.reports:
        if rep.asset not in st.underlyings:
            return None
        by_asset.setdefault(rep.asset, []).append((rep, recover_reporter(st.domain, rep)))
    for uid in sorted(by_asset):
        u = st.underlyings[uid]
        try:
            res = aggregate(u.config.oracle, u.oracle, by_asset[uid], tx.time_ms)
        except OracleRejected:
            return None
        if res.outcome not in (Outcome.ACCEPTED, Outcome.CONFIRMED):
            continue
        honest = res.state.index_price
        highest = max(price for _, price in res.used)
        cheat = highest if highest != honest else honest + 1

        def hook(s: State, t, uid=uid, honest=honest, cheat=cheat):
            r = apply(s, t)
            if r.ok:
                u = s.underlyings[uid]
                if u.oracle.index_price != honest:
                    raise RuntimeError(f"wrong_median: the honest index is {u.oracle.index_price}, not {honest}")
                u.oracle = replace(u.oracle, index_price=cheat)
                s.dirty_underlyings.add(uid)
            return r

        return hook, {"underlying": uid, "index": cheat, "honest_index": honest}
    return None


def _wrong_expiry_price(st: State, tx) -> tuple[Callable, dict] | None:
    """A SETTLE_EXPIRY of an expiry with ACTIVE option markets: settled one option tick above
    the rules' price (the window's accumulator raised by tick x dt before the settlement, or
    the index raised by a tick for it, and restored after, if the window saw no time)."""
    if type(tx) is not OperatorAction or tx.action != OperatorActionKind.SETTLE_EXPIRY:
        return None
    uid, expiry = tx.target, tx.arg
    u = st.underlyings.get(uid)
    if u is None or expiry not in u.windows or tx.time_ms < expiry:
        return None
    markets = sorted((m for m in st.markets.values() if m.spec.kind == InstrumentKind.OPTION
                      and m.spec.underlying == u.config.symbol and m.spec.expiry == expiry
                      and m.status == MarketStatus.ACTIVE), key=lambda m: m.spec.id)
    if not markets:
        return None
    window = st.params.settlement_window_ms
    probe = replace(u, windows={e: list(w) for e, w in u.windows.items()})  # the core's own TWAP, on a copy
    probe.advance(tx.time_ms, window)
    honest = probe.settlement_price(expiry)
    delta = markets[0].spec.tick_size

    def hook(s: State, t):
        v = s.underlyings[uid]
        v.advance(t.time_ms, window)  # what settle_expiry does first (then a no-op there)
        w = v.windows[expiry]
        saved = v.oracle
        if w[1]:
            w[0] += delta * w[1]  # (acc + delta * dt) // dt == acc // dt + delta; the window goes with it
        else:
            v.oracle = replace(saved, index_price=saved.index_price + delta)
        r = apply(s, t)
        v.oracle = saved
        s.dirty_underlyings.add(uid)
        return r

    return hook, {"underlying": uid, "expiry": expiry, "instruments": [m.spec.id for m in markets],
                  "settlement_price": honest + delta, "honest_settlement_price": honest}


def _wrong_funding(st: State, tx) -> tuple[Callable, dict] | None:
    """A FUNDING_TICK that settles funding for at least one perpetual: each settled market
    is settled a second time at the rate it records (1 ppm where that rate is 0)."""
    if type(tx) is not OperatorAction or tx.action != OperatorActionKind.FUNDING_TICK:
        return None
    interval = st.params.funding_interval_ms
    due = sorted(m.spec.id for m in st.markets.values()
                 if m.spec.kind == InstrumentKind.PERPETUAL and m.status == MarketStatus.ACTIVE and m.mark_price
                 and m.last_funding_time and tx.time_ms >= m.last_funding_time + interval)
    if not due:
        return None

    def hook(s: State, t):
        from clearline.core.operator import pay_funding
        from clearline.core.ledger import FundingSettled

        r = apply(s, t)
        if not r.ok:
            return r
        settled = sorted(ev.instrument for ev in r.events if type(ev) is FundingSettled)
        if settled != due:
            raise RuntimeError(f"wrong_funding: the tick settled {settled}, expected {due}")
        for mid in settled:
            m = s.markets[mid]
            # the interval settled a second time; a zero rate doubled is no change: 1 ppm instead
            pay_funding(s, m, m.last_funding_rate_ppm or 1)
            s.dirty_markets.add(mid)
        return r

    return hook, {"instruments": due}


def _chunks(txs: list, k: int) -> list[list]:
    """``txs`` cut into the chunks batch data v3 gives them (``batch_v3.chunk_sizes``)."""
    out, i = [], 0
    for size in chunk_sizes(txs, k):
        out.append(txs[i:i + size])
        i += size
    return out


def _skippable(txs: list, k: int) -> int | None:
    """A Deposit followed by another L1 transaction in the same chunk (after the drop), else
    the first Deposit."""
    first = None
    for j, tx in enumerate(txs):
        if type(tx) is not Deposit:
            continue
        first = j if first is None else first
        rest = txs[:j] + txs[j + 1:]
        start = 0
        for chunk in _chunks(rest, k):  # the chunk of rest[j], the transaction after the drop
            if start + len(chunk) > j:
                break
            start += len(chunk)
        else:
            continue
        if any(type(t) in _L1 for t in rest[j:start + len(chunk)]):
            return j
    return first


def _trailing_byte(data: bytes, chunk: int) -> bytes:
    """``data`` with one zero byte appended to chunk ``chunk`` and the chunk table shifted."""
    _, bounds = chunk_table_v3(data)
    table = bounds[0][0] - 4 * len(bounds)
    out = bytearray(data[:table])
    for i, (_, end) in enumerate(bounds):
        out += struct.pack(">I", end + (1 if i >= chunk else 0))
    for i, (start, end) in enumerate(bounds):
        out += data[start:end]
        if i == chunk:
            out.append(0)
    return bytes(out)


# ------------------------------------------------------------------------- test scenario
@dataclass
class FaultyRollup:
    """A rollup whose third batch carries one fault (see ``faulty_rollup``)."""

    rollup: Any  # clearline.batcher.harness.SimRollup
    challenger: Any  # L1Client of the chain's last account
    finalized: int  # the batch finalized before the fault
    faulty_batch: int


def faulty_rollup(chain, fault: FaultKind | str | None, *, later_batch: bool = True, deposits: int = 3,
                  challenge_period: int = 100, forced_deadline: int = 1_000) -> FaultyRollup:
    """The simulated market on ``chain`` (``clearline.batcher.harness``: real contracts, real
    signatures, Vault deposits): batch 1 (the traders' first deposits: new accounts) posted and
    finalized (with a "saver" account that never trades: the chain account after the
    traders', subaccounts 0 and 1); batch 2 some trading; batch 3 the saver's forced
    withdrawal, ``deposits`` new deposits into existing accounts, then the saver's signed
    withdrawal and transfer (subaccount 0 to 1; one chunk when ``deposits`` <= 13), carrying
    ``fault`` (honest if None); with ``later_batch`` a batch 4 of trading follows. The
    challenger is the chain's last account."""
    from clearline.batcher.harness import make_sim_rollup

    from clearline.core.encoding import encode_tx

    r = make_sim_rollup(chain, makers=1, takers=1, leveraged=1, challenge_period=challenge_period,
                        forced_deadline=forced_deadline, max_delay_ms=10**9)
    # a saver: an account that only deposits and withdraws (no positions)
    saver_key = chain.accounts[len(r.sim.traders) + 1]
    saver = r.client.with_sender(saver_key)
    saver.mint(saver.address, 1_100 * 10**6)
    saver.deposit(0, 1_000 * 10**6)
    saver.deposit(1, 100 * 10**6)
    r.feed()
    saver_id = r.sequencer.state.account_ids[(bytes.fromhex(saver.address[2:]), 0)]
    r.batcher.flush()
    chain.advance_time(challenge_period)
    r.client.finalize_ready()
    r.step(6)
    r.batcher.flush()
    saver.request_forced_withdrawal(saver_id, 30 * 10**6)  # served from free collateral
    users = list(r.users.values())[:3]
    for i in range(deposits):
        u = users[i % len(users)]
        amount = (7 + i) * 10**6
        u.mint(u.address, amount)
        u.deposit(0, amount)
    r.feed()
    r.now_ms += 1
    w = Withdraw(r.now_ms, saver_id, 250 * 10**6, 1)
    w.signature = eip712.sign(r.sequencer.state.domain, w, bytes(saver_key.key))
    (ack,) = r.sequencer.submit([encode_tx(w)], r.now_ms)
    r.now_ms += 1
    t = Transfer(r.now_ms, saver_id, 1, 40 * 10**6, 2)
    t.signature = eip712.sign(r.sequencer.state.domain, t, bytes(saver_key.key))
    (ack2,) = r.sequencer.submit([encode_tx(t)], r.now_ms)
    if not (ack.receipt.ok and ack2.receipt.ok):
        raise RuntimeError(f"the saver's withdrawal or transfer was rejected: {ack.receipt} {ack2.receipt}")
    if fault is not None:
        r.batcher = FaultyBatcher(r.journal, r.client, r.genesis, fault=fault, operator_key=r.sim.operator_key,
                                  **r.batcher_kw)
    r.batcher.flush()
    if later_batch:
        r.step(4)
        r.batcher.flush()
    return FaultyRollup(r, r.client.with_sender(chain.accounts[-1]), 1, 3)


def operator_fault_rollup(chain, fault: FaultKind | str | None, *, challenge_period: int = 100,
                          forced_deadline: int = 1_000) -> FaultyRollup:
    """The simulated market on ``chain`` (``make_sim_rollup``: a maker, a taker, a leveraged
    trader and the option traders) for the operator faults (``wrong_median``,
    ``wrong_expiry_price``, ``wrong_funding``): batch 1 (the first deposits) posted and
    finalized; batch 2 trading until an option is held (options listed, marked, quoted and
    taken; funding started), ending on a housekeeping tick; then the simulated clock jumps to
    that option's expiry, which is also past the end of the funding interval, and batch 3 --
    carrying ``fault`` (honest if None) -- holds that tick's mark update (an index update),
    the SETTLE_EXPIRY of the held options' expiry, the FUNDING_TICK that settles the
    perpetuals' funding (and whatever else is due), and one tick of trading (the held option
    is on the first underlying, whose expiries are settled first, so the first SETTLE_EXPIRY
    settles options with holders); batch 4 is a few
    more ticks. The challenger is the chain's last account."""
    from clearline.batcher.harness import STEP_MS, make_sim_rollup

    if fault is not None and FaultKind(fault) not in OPERATOR_FAULTS:
        raise ValueError(f"operator_fault_rollup carries {[f.value for f in OPERATOR_FAULTS]}, not {fault}")
    r = make_sim_rollup(chain, makers=1, takers=1, leveraged=1, challenge_period=challenge_period,
                        forced_deadline=forced_deadline, max_delay_ms=10**9)
    r.batcher.flush()
    chain.advance_time(challenge_period)
    r.client.finalize_ready()
    st = r.sequencer.state
    first = st.underlyings[min(st.underlyings)].config.symbol  # its expiries are settled first
    held = []
    for _ in range(200):  # ticks of 4 (one housekeeping tick each) until an option on it is held
        r.step(4)
        held = [m for m in st.markets.values() if m.spec.kind == InstrumentKind.OPTION and m.spec.underlying == first
                and m.status == MarketStatus.ACTIVE and st.holders[m.spec.id]]
        if held:
            break
    if not held:
        raise RuntimeError(f"no {first} option was traded in the simulated market")
    expiry = min(m.spec.expiry for m in held)
    funding_due = max(m.last_funding_time for m in st.markets.values()
                      if m.spec.kind == InstrumentKind.PERPETUAL) + st.params.funding_interval_ms
    r.batcher.flush()
    # the next tick (a housekeeping one: step_no % 4 == 0) at the expiry and past the funding interval
    r.now_ms = max(expiry, funding_due) - STEP_MS
    if fault is not None:
        r.batcher = FaultyBatcher(r.journal, r.client, r.genesis, fault=fault, operator_key=r.sim.operator_key,
                                  **r.batcher_kw)
    r.step(2)
    r.batcher.flush()
    r.step(4)
    r.batcher.flush()
    return FaultyRollup(r, r.client.with_sender(chain.accounts[-1]), 1, 3)


def fault_scenario(chain, fault: FaultKind | str, *, challenge_period: int = 100, forced_deadline: int = 1_000,
                   **kw) -> FaultyRollup:
    """``operator_fault_rollup`` for an operator fault, else ``faulty_rollup`` (with ``kw``):
    either way batch 3 carries ``fault``."""
    if FaultKind(fault) in OPERATOR_FAULTS:
        return operator_fault_rollup(chain, fault, challenge_period=challenge_period, forced_deadline=forced_deadline)
    return faulty_rollup(chain, fault, challenge_period=challenge_period, forced_deadline=forced_deadline, **kw)
