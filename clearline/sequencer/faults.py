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
- ``forged_account_flags``: a SetAccountFlags that lets the operator cancel an account's orders
  (OPERATOR_MAY_CANCEL), which its owner never signed (the operator's key signed it; the
  cheating state takes it as the owner's), for an account with resting orders that has not
  opted in, added where ``wrongful_liquidation`` adds its LIQUIDATE (a chunk of its own).
  Needs ``operator_key``;
- ``stolen_withdrawal``: the batch's withdrawal records gain one that pays the sequencer's own
  address ``STOLEN_AMOUNT`` from the account with the most collateral, naming as its payer the
  batch's first transaction that pays no record (the state and the data stay honest: only the
  records, hence the header's ``withdrawalsRoot``, are doctored; once final, the Vault would pay
  it);
- ``omitted_withdrawal``: the record of the batch's first Withdraw is left out (the account is
  debited in the state as the rules say, and nothing pays it on L1);
- ``unrecorded_forced_withdrawal``: the record of the batch's first served ForcedWithdrawal is
  left out (the state debits the account as the rules say; nothing pays it on L1);
- ``recorded_denied_withdrawal``: the batch's first ForcedWithdrawal that the rules deny (the
  state denies it too) gets a record paying its requester the amount asked for, once final
  the Vault would pay out collateral the account still holds;
- ``malformed_chunk``: a chunk carries a trailing byte (the chunk table still walks);
- ``bad_framing``: the header's txsPerRoot is not the data's chunk size;
- ``wrong_queue_end``: the header's queueEnd claims one queue item fewer than the batch
  consumed;
- ``wrong_median``: at the batch's first MarkUpdate whose oracle round sets an underlying's
  index (outcome ACCEPTED or CONFIRMED, found with ``clearline.oracle.aggregate`` on the
  state before it), the cheating state's index of that underlying is not the round's lower
  median but the highest fresh report's price (the honest index + 1 if that is the median);
  everything else is applied as the rules say;
- ``wrong_expiry_price``: at the batch's first SETTLE_OPTION, the cheating state settles that
  option at one option tick (``spec.tick_size``, usd6) above the rules' settlement price (the
  window's TWAP, or the index if the window saw no time): its market leaf records that price
  and the intrinsic value at it as its mark, so the SETTLE_POSITIONs that follow pay that;
  proven by KIND_OPERATOR_ACTION (the ExpiryVerifier re-executes the SETTLE_OPTION: 30);
- ``wrong_funding``: at the batch's first FUNDING_SETTLE, the cheating state settles the
  market's funding twice: its funding_index moves by 2 x rate x mark x tick_value
  (``last_funding_rate_ppm`` still records the rules' rate), so each FUNDING_PAY that follows
  pays (or receives) twice the payment (positions take the market's index; the rounding
  remainder goes to the insurance fund with the last payment). Where the recorded rate is 0
  (doubling would change nothing) the second settlement is at 1 ppm instead, so the index moves
  by 1 ppm worth (and no FUNDING_PAY follows). Proven by KIND_OPERATOR_ACTION (the
  FundingVerifier re-executes the settlement: reason 30).

- ``forged_order``: the batch's first Order whose one-lot-larger copy the cheating state
  accepts is posted one lot larger with its signature kept (so the signature no longer
  recovers to its account's owner), and the cheating state applies it as the owner's; carried
  by ``order_fault_rollup`` (batch 3 trades), proven by KIND_SIGNATURE wherever it sits.

- ``replayed_old_order``: an Order of an earlier batch (the latest of the last ten that the
  cheating state accepts again) is posted first in the batch with its signature, and the
  cheating state applies it as if its nonce were unused; carried by ``order_fault_rollup``,
  proven by KIND_SIGNATURE (its nonce is not above its account's before the chunk: nonces of one
  batch only, KIND_NONCES's, would not show it).

- ``expired_option_order``: right before the batch's first SETTLE_OPTION (at a time at or after
  the expiry), a good-till-cancelled bid of one lot at one tick on one of that expiry's
  still-active options, signed by a trader whose key the batcher was given (``keys``); it rests.
  The core refuses an order on an expired instrument (trading one that awaits settlement would
  be a free option); the cheating state applies it as if the option had not expired. Carried by
  ``operator_fault_rollup``, proven by KIND_ORDER.

- ``over_fill``: at the batch's first Order or Replace that fills a resting order completely
  (its first such fill), the cheating state trades one lot more between that maker's account
  and the taker's at that fill's price, as if the maker order had been a lot bigger: both
  positions, quotes, fees (and the fee pool) and the open interest move as
  ``clearline.core.ledger`` books a fill (``trade``, ``fill_fee``); the book is the honest one;
- ``price_outside_limit``: at the batch's first Order that fills (its first fill; both
  accounts still holding a position in the instrument after the order), the cheating state
  settles that fill one tick beyond the taker's limit (limit + 1 for a buy, limit - 1 for a
  sell, which must stay above 0) instead of at the maker's price: the taker's and the maker's
  position quotes move by qty x (that price - the maker's) x tick_value (the taker pays it,
  the maker gets it) and both fees are those ``fill_fee`` charges at that price;
- ``under_margined_fill``: at the batch's first Order the margin gate cut (an OrderClosed
  INSUFFICIENT_MARGIN for the order itself), the cheating state fills it further against the
  next resting order in priority it still crosses (not expired, another owner's) at that
  order's price: the fewest lots that leave the taker's equity below its initial
  requirement (``clearline.core.margin.health``), settled by ``ledger.settle_plan`` (book,
  positions, fees). ``order_fault_rollup`` makes such an order (a thin-collateral trader's).

Three of them are operator transactions (``wrong_median``, ``wrong_expiry_price``,
``wrong_funding``), each alone in its chunk (batch data v3), and the last three are orders (in
a chunk with other user transactions); for these six the doctored chunk's root and every
later root of the batch differ from the honest ones (a transaction whose cheat the rest of
the batch would undo, e.g. a wrong index that a later round replaces before any settlement
window saw it, or after which the cheating state would reject a later transaction of the
batch, is passed over for the next one). ``doctored_state`` keeps a copy of the cheating
state right after the doctored transaction (the state at that point of its chunk; the chunk's
root is the state after the chunk's last transaction).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, Callable

from clearline.batcher.batcher import Batcher, BatchPlan
from clearline.batcher.records import tx_positions, withdrawal_records
from clearline.core import eip712
from clearline.core.apply import apply
from clearline.core.encoding import decode_tx
from clearline.core.hashing import keccak
from clearline.core.state import State
from clearline.core.margin import health
from clearline.core.instruments import InstrumentKind, MarketStatus
from clearline.core.book import BUY, SELL
from clearline.core.txs import (AccountFlag, CancelTrigger, Cancel, Deposit, ForcedWithdrawal, MarkUpdate,
                                MatchStep, OperatorAction, OperatorActionKind, Order, Replace, SetAccountFlags, Transfer,
                                Withdraw)
from clearline.l1.batch_v3 import chunk_sizes, chunk_table_v3, decode_chunks_v3
from clearline.l1.formats import WithdrawalRecord, decode_batch, encode_batch, withdrawals_tree

__all__ = ["FaultKind", "FaultyBatcher", "FaultyRollup", "MINTED_EXTRA", "STOLEN_AMOUNT", "OPERATOR_FAULTS", "OPERATOR_SCENARIO_FAULTS", "ORDER_FAULTS",
           "ORDER_SCENARIO_FAULTS", "PROVABLE_FAULTS", "SIGNED_ORDER_FAULTS", "ROLLUP_FAULTS", "WRONG_ROOT", "fault_scenario", "faulty_rollup",
           "operator_fault_rollup", "order_fault_rollup"]

MINTED_EXTRA = 1_000_000 * 10**6  # usd6 a minted deposit adds
STOLEN_AMOUNT = 250_000 * 10**6  # usd6 the stolen withdrawal record pays the sequencer
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
    FORGED_ACCOUNT_FLAGS = "forged_account_flags"
    STOLEN_WITHDRAWAL = "stolen_withdrawal"
    OMITTED_WITHDRAWAL = "omitted_withdrawal"
    UNRECORDED_FORCED_WITHDRAWAL = "unrecorded_forced_withdrawal"
    RECORDED_DENIED_WITHDRAWAL = "recorded_denied_withdrawal"
    WRONG_MEDIAN = "wrong_median"
    WRONG_EXPIRY_PRICE = "wrong_expiry_price"
    WRONG_FUNDING = "wrong_funding"
    OVER_FILL = "over_fill"
    PRICE_OUTSIDE_LIMIT = "price_outside_limit"
    UNDER_MARGINED_FILL = "under_margined_fill"
    FORGED_ORDER = "forged_order"
    REPLAYED_OLD_ORDER = "replayed_old_order"
    EXPIRED_OPTION_ORDER = "expired_option_order"


# the faults in an operator transaction's outcome (``operator_fault_rollup`` carries them)
OPERATOR_FAULTS = (FaultKind.WRONG_MEDIAN, FaultKind.WRONG_EXPIRY_PRICE, FaultKind.WRONG_FUNDING)
# the faults ``operator_fault_rollup`` carries: those, and an order on an option past its expiry
OPERATOR_SCENARIO_FAULTS = (*OPERATOR_FAULTS, FaultKind.EXPIRED_OPTION_ORDER)
# the faults in an order's outcome (``order_fault_rollup`` carries them)
ORDER_FAULTS = (FaultKind.OVER_FILL, FaultKind.PRICE_OUTSIDE_LIMIT, FaultKind.UNDER_MARGINED_FILL)
# the faults ``order_fault_rollup`` carries: those, a forged signature on an order and an order replayed
SIGNED_ORDER_FAULTS = (FaultKind.FORGED_ORDER, FaultKind.REPLAYED_OLD_ORDER)
ORDER_SCENARIO_FAULTS = (*ORDER_FAULTS, *SIGNED_ORDER_FAULTS)
# the faults ``faulty_rollup``'s batch 3 carries (all the others)
ROLLUP_FAULTS = tuple(k for k in FaultKind if k not in OPERATOR_SCENARIO_FAULTS and k not in ORDER_SCENARIO_FAULTS)
# the faults an implemented L1 proof kind proves (the order-outcome faults are injected and
# found by the watchtower, not proven on L1 yet: no proof kind re-executes orders;
# docs/fraud-proofs.md)
PROVABLE_FAULTS = (*ROLLUP_FAULTS, *OPERATOR_FAULTS, *SIGNED_ORDER_FAULTS, FaultKind.EXPIRED_OPTION_ORDER, *ORDER_FAULTS)


_L1 = (Deposit, ForcedWithdrawal)


class _DoctoredRejected(RuntimeError):
    """The cheating state rejects a transaction of the doctored batch."""


class FaultyBatcher(Batcher):
    """A ``Batcher`` that posts one doctored batch (see the module docstring)."""

    def __init__(self, *args, fault: FaultKind | str, fault_batch: int | None = None,
                 operator_key: bytes | None = None, keys: dict[bytes, bytes] | None = None, **kw):
        super().__init__(*args, **kw)
        self.fault = FaultKind(fault)
        self.operator_key = operator_key
        self.keys = keys or {}  # owner address -> private key: traders whose orders the fault may sign
        self.fault_batch = fault_batch
        self.injected: dict | None = None  # what was doctored, once it was
        self.doctored_state: State | None = None  # the cheating state after the doctored tx (operator, order faults)
        self.doctored_chunk: int | None = None  # the chunk whose root is the first doctored one

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
        entries = [e for e in entries if e.seq <= plan.last_seq]  # the batch may stop short (max_roots)
        txs = []
        for e in entries:
            tx = decode_tx(e.payload)
            if e.signer:
                tx.signer = e.signer
            txs.append(tx)
        self._first_seq = entries[0].seq  # where the batch starts in the journal (replayed_old_order)
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
        if f is FaultKind.STOLEN_WITHDRAWAL:
            return self._stolen_withdrawal(plan, txs)
        if f is FaultKind.OMITTED_WITHDRAWAL:
            j = next((i for i, tx in enumerate(txs) if type(tx) is Withdraw), None)
            if j is None:
                return None
            pos = _positions(plan)[j]
            records = [w for w in plan.withdrawals if w.position() != pos]
            self.injected = {"fault": f.value, "batch": plan.number, "tx_index": j, "account": txs[j].account,
                             "amount": txs[j].amount}
            return replace(plan, withdrawals=records, withdrawals_root=withdrawals_tree(records).root())
        if f is FaultKind.FORGED_ORDER:
            return self._forged_order(plan, pre, txs)
        if f is FaultKind.EXPIRED_OPTION_ORDER:
            return self._expired_option_order(plan, pre, txs)
        if f is FaultKind.REPLAYED_OLD_ORDER:
            return self._replayed_old_order(plan, pre, txs)
        if f in (FaultKind.UNRECORDED_FORCED_WITHDRAWAL, FaultKind.RECORDED_DENIED_WITHDRAWAL):
            return self._forced_withdrawal_record(plan, txs)
        if f is FaultKind.WRONG_ROOT:
            chunks = decode_chunks_v3(plan.data)[1]  # a matching step's chunk is empty
            c = next((i for i, ch in enumerate(chunks)
                      if ch and all(type(tx) in (Deposit, ForcedWithdrawal, Withdraw, Transfer) for tx in ch)), 0)
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
        if f in (FaultKind.UNAUTHORIZED_CANCEL, FaultKind.FORGED_ACCOUNT_FLAGS):
            return self._unauthorized_cancel(plan, pre, txs)
        if f in _TRANSITION_FAULTS:
            return self._transition_fault(plan, pre, txs)
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

    def _stolen_withdrawal(self, plan: BatchPlan, txs: list) -> BatchPlan | None:
        """One more withdrawal record: ``STOLEN_AMOUNT`` from the account with the most collateral
        (after the batch) paid to the sequencer's own address, said to be paid by the batch's
        first transaction that pays no record (a Deposit, an order, ...). The state is honest."""
        if not txs:
            return None
        positions = _positions(plan)
        paid = {w.position() for w in plan.withdrawals}
        j = next((i for i, pos in enumerate(positions) if pos not in paid), None)
        if j is None:
            return None
        victim = max(self.state.accounts, key=lambda a: (a.collateral, -a.id), default=None)
        if victim is None:
            return None
        thief = bytes.fromhex(self.client.address[2:])
        stolen = WithdrawalRecord(victim.id, thief, STOLEN_AMOUNT, *positions[j])
        records = sorted([*plan.withdrawals, stolen], key=WithdrawalRecord.position)
        self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": j, "account": victim.id,
                         "to": "0x" + thief.hex(), "amount": STOLEN_AMOUNT}
        return replace(plan, withdrawals=records, withdrawals_root=withdrawals_tree(records).root())

    def _expired_option_order(self, plan: BatchPlan, pre: State, txs: list) -> BatchPlan | None:
        """An owner-signed IOC buy of an option past its expiry, inserted before the batch's first
        SETTLE_OPTION, applied by the cheating state as if the option were still open."""
        i = next((j for j, tx in enumerate(txs) if type(tx) is OperatorAction
                  and tx.action == OperatorActionKind.SETTLE_OPTION), None)
        if i is None:
            return None
        st = State.from_blob(pre.to_blob())
        for tx in txs[:i]:
            if not apply(st, tx).ok:
                return None
        settle = txs[i]
        first = st.markets.get(settle.target)
        if first is None or settle.time_ms < first.spec.expiry:
            return None
        options = sorted((m for m in st.markets.values() if m.spec.kind == InstrumentKind.OPTION
                          and m.spec.underlying == first.spec.underlying and m.spec.expiry == first.spec.expiry
                          and m.status == MarketStatus.ACTIVE and m.mark_price), key=lambda m: m.spec.id)
        later = {tx.account for tx in txs[i:] if type(tx) in (Order, Replace, Cancel, Withdraw, Transfer)}
        buyers = [a for a in st.accounts if a.owner in self.keys and a.collateral > 0 and a.id not in later]
        if not options or not buyers:
            return None
        m, buyer = options[0], max(buyers, key=lambda a: (a.collateral, -a.id))
        t = settle.time_ms
        # a good-till-cancelled bid of one lot at one tick: it rests (no new holder the batch's
        # SETTLE_POSITIONs would leave unpaid)
        order = Order(t, buyer.id, m.spec.id, BUY, 0, 0, 0, 0, 1, 1, 0, 0, buyer.nonce + 1)
        order.signature = eip712.sign(pre.domain, order, self.keys[buyer.owner])
        order.signer = buyer.owner
        inst = m.spec.id

        def as_if_open(s: State, tx):
            market = s.markets[inst]
            spec = market.spec
            market.spec = replace(spec, expiry=0)  # the cheat: the option has not expired
            try:
                return apply(s, tx)
            finally:
                market.spec = spec

        try:
            out = self._replan(plan, pre, txs[:i] + [order] + txs[i:], cheat=(i, as_if_open))
        except _DoctoredRejected:
            return None
        self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": i, "account": buyer.id,
                         "instrument": inst, "expiry": m.spec.expiry}
        return out

    def _forged_order(self, plan: BatchPlan, pre: State, txs: list) -> BatchPlan | None:
        """The first Order (of the first eight) whose copy one lot larger, signature kept, the
        cheating state accepts along with the rest of the batch."""
        for j in [i for i, tx in enumerate(txs) if type(tx) is Order][:8]:
            forged = replace(txs[j], size=txs[j].size + 1)
            forged.signer = txs[j].signer  # the cheating sequencer "accepts" it as the owner's
            try:
                out = self._replan(plan, pre, txs[:j] + [forged] + txs[j + 1:])
            except _DoctoredRejected:
                continue
            self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": j,
                             "account": forged.account, "size": forged.size}
            return out
        return None

    def _replayed_old_order(self, plan: BatchPlan, pre: State, txs: list) -> BatchPlan | None:
        """The latest Order of an earlier batch (of the last ten) that the cheating state accepts
        again, as if its nonce were unused, posted first in this batch with its signature."""
        old = []
        for e in self.journal.entries(1, self._first_seq - 1):
            if e.payload[31] == 2:  # an Order (the ABI kind byte)
                old.append(e)
        for e in reversed(old[-10:]):
            tx = decode_tx(e.payload)
            tx.signer = e.signer
            if tx.signer != pre.accounts[tx.account].owner or tx.nonce > pre.accounts[tx.account].nonce:
                continue
            try:
                out = self._replan(plan, pre, [tx] + txs, replayed=0)
            except _DoctoredRejected:
                continue
            self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": 0, "account": tx.account,
                             "nonce": tx.nonce, "journal_seq": e.seq}
            return out
        return None

    def _forced_withdrawal_record(self, plan: BatchPlan, txs: list) -> BatchPlan | None:
        """The first served ForcedWithdrawal's record dropped, or a record added for the first
        denied one (served iff the honest plan has a record at its position). State and data
        stay honest: only the records, hence the header's ``withdrawalsRoot``, are doctored."""
        served = self.fault is FaultKind.UNRECORDED_FORCED_WITHDRAWAL
        positions = _positions(plan)
        paid = {w.position() for w in plan.withdrawals}
        j = next((i for i, tx in enumerate(txs) if type(tx) is ForcedWithdrawal and (positions[i] in paid) == served),
                 None)
        if j is None:
            return None
        tx = txs[j]
        if served:
            records = [w for w in plan.withdrawals if w.position() != positions[j]]
        else:
            extra = WithdrawalRecord(tx.account, bytes(tx.owner), tx.amount, *positions[j])
            records = sorted([*plan.withdrawals, extra], key=WithdrawalRecord.position)
        self.injected = {"fault": self.fault.value, "batch": plan.number, "chunk": positions[j][0],
                         "account": tx.account, "amount": tx.amount}
        return replace(plan, withdrawals=records, withdrawals_root=withdrawals_tree(records).root())

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
        """A CANCEL_ALL_ORDERS (``unauthorized_cancel``), or a forged SetAccountFlags opting in
        (``forged_account_flags``), of an account with resting orders that has not opted in,
        where ``_wrongful_liquidation`` puts its LIQUIDATE: after the batch's first Withdraw or
        Transfer, else at its end (the first account in id order that qualifies there; else
        the first point of the batch, from its end backwards, where one does)."""
        if self.operator_key is None:
            raise ValueError(f"{self.fault.value} needs the operator's key (operator_key=)")
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
        if self.fault is FaultKind.FORGED_ACCOUNT_FLAGS:
            a = st.accounts[victim]
            forged = SetAccountFlags(t, victim, int(AccountFlag.OPERATOR_MAY_CANCEL), a.nonce + 1)
            forged.signature = eip712.sign(pre.domain, forged, self.operator_key)  # not the owner's key
            forged.signer = a.owner  # the cheating sequencer "accepts" it as the owner's
            out = self._replan(plan, pre, txs[:j] + [forged] + txs[j:])
            self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": j, "account": victim}
            return out
        cancel = OperatorAction(t, int(OperatorActionKind.CANCEL_ALL_ORDERS), victim, int(CancelTrigger.DISCONNECT), t)
        cancel.signature = eip712.sign(pre.domain, cancel, self.operator_key)
        cancel.signer = pre.operator
        orders = sorted(st.accounts[victim].open_orders)
        txs = txs[:j] + [cancel] + txs[j:]
        out = self._replan(plan, pre, txs, cheat=(j, _cancel_anyway))
        self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": j, "account": victim,
                         "orders": orders}
        return out

    def _transition_fault(self, plan: BatchPlan, pre: State, txs: list) -> BatchPlan | None:
        """The operator faults (``wrong_median``, ``wrong_expiry_price``, ``wrong_funding``) and
        the order faults (``over_fill``, ``price_outside_limit``, ``under_margined_fill``): the
        batch's first transaction that can carry the fault is applied by a cheating hook (see
        the module docstring). An operator fault's candidate is judged on a copy of the state
        before it, an order fault's on the state after its honest apply and its receipt. A
        candidate does not carry the fault when its cheat would be undone within the batch
        (some root from its chunk on equal to the honest one, e.g. a wrong index that a later
        round of the batch replaces while no settlement window saw it) or when the cheating
        state would reject a later transaction of the batch: the next one that can is tried."""
        find, after = _FINDERS[self.fault]
        blob = pre.to_blob()
        at = State.from_blob(blob)
        for j, tx in enumerate(txs):
            found = None if after else find(at, tx)
            r = apply(at, tx)
            if not r.ok:
                return None
            if after:
                found = find(at, tx, r)
            if found is None:
                continue
            hook, info = found
            try:
                out = self._replan(plan, State.from_blob(blob), txs, cheat=(j, hook))
            except _DoctoredRejected:
                self.doctored_state = None
                continue
            c = self.doctored_chunk  # the doctored transaction's chunk, or its doctored matching step's
            if all(a != b for a, b in zip(out.state_roots[c:], plan.state_roots[c:])):
                self.injected = {"fault": self.fault.value, "batch": plan.number, "tx_index": j, **info}
                return out
            self.doctored_state = None
        return None

    def _replan(self, plan: BatchPlan, pre: State, txs: list, *, skip: bool = False,
                replayed: int | None = None, liquidated: int | None = None,
                cheat: tuple[int, Callable] | None = None) -> BatchPlan:
        """The plan of ``txs`` as a cheating sequencer's state would commit it: applied to the
        pre-batch state (an L1 transaction may jump the queue when ``skip``; transaction
        ``replayed`` is applied as if its nonce were still unused; with ``cheat = (i, hook)``
        transaction ``i`` is applied by ``hook(state, tx) -> Receipt`` instead of ``apply``,
        and ``doctored_state`` keeps a copy of the state right after it; a ``_StepCheat`` hook
        instead doctors the state after the matching step of transaction ``i`` it is due at).
        Orders are matched in steps, as batch data v3 carries them; ``doctored_chunk`` is the
        chunk whose root is the first doctored one."""
        k = plan.txs_per_root
        roots, records, steps = [], [], []
        st = pre
        ends, total = set(), 0
        for size in chunk_sizes(txs, k):
            total += size
            ends.add(total - 1)
        at = [0, 0]  # the chunk (matching steps counted) and the index in it of the next transaction
        for i, tx in enumerate(txs):
            if skip and type(tx) in _L1 and tx.queue_index > st.l1_queue_pos:
                st.l1_queue_pos = tx.queue_index  # the skip: item(s) before it are never served
            if i == replayed:
                st.accounts[tx.account].nonce = tx.nonce - 1  # the replay: the nonce "forgotten"
            hook = cheat[1] if cheat is not None and i == cheat[0] else None
            stepped = hook if isinstance(hook, _StepCheat) else None
            if i == liquidated:
                r = _liquidate_anyway(st, tx)
            elif hook is not None and stepped is None:
                r = hook(st, tx)
            else:
                r = apply(st, tx, None, True)
            if not r.ok:
                raise _DoctoredRejected(f"fault {self.fault.value}: doctored transaction {i} rejected: {r}")
            if hook is not None and stepped is None:
                self.doctored_state = State.from_blob(st.to_blob())
                self.doctored_chunk = at[0]
            if r.events:
                records.extend(withdrawal_records(st, r, (at[0], at[1])))
            at[1] += 1
            steps.append(0)
            if i in ends:
                roots.append(st.root())
                at[0] += 1
                at[1] = 0
            events = list(r.events)
            while st.pending is not None:
                sr = apply(st, MatchStep(st.time_ms))
                if not sr.ok:
                    raise _DoctoredRejected(f"fault {self.fault.value}: a matching step of transaction {i}: {sr}")
                events += sr.events
                steps[-1] += 1
                if stepped is not None and self.doctored_state is None and stepped.due(st, tx, r, sr, events):
                    stepped.doctor(st)
                    self.doctored_state = State.from_blob(st.to_blob())
                    self.doctored_chunk = at[0]
                roots.append(st.root())
                at[0] += 1
            if stepped is not None and self.doctored_state is None:
                raise _DoctoredRejected(f"fault {self.fault.value}: transaction {i} met no step to doctor")
        if not roots:
            roots.append(st.root())
        return replace(plan, data=encode_batch(txs, k, steps), state_roots=roots, queue_end=st.l1_queue_pos,
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
    """A SETTLE_OPTION the rules accept: settled one option tick above the rules' price (the
    window's accumulator raised by tick x dt before it, or the index raised by a tick for it
    if the window saw no time; both restored after, so later options of the expiry settle at
    the rules' price again)."""
    if type(tx) is not OperatorAction or tx.action != OperatorActionKind.SETTLE_OPTION:
        return None
    m = st.markets.get(tx.target)
    if (m is None or m.spec.kind != InstrumentKind.OPTION or m.status != MarketStatus.ACTIVE
            or tx.time_ms < m.spec.expiry):
        return None
    u = st.underlying_by_symbol[m.spec.underlying]
    expiry, uid = m.spec.expiry, u.config.id
    window = st.params.settlement_window_ms
    probe = replace(u, windows={e: list(w) for e, w in u.windows.items()})  # the core's own TWAP, on a copy
    probe.advance(tx.time_ms, window)
    w0 = probe.windows[expiry]
    honest = w0[0] // w0[1] if w0[1] else probe.oracle.index_price
    delta = m.spec.tick_size

    def hook(s: State, t):
        v = s.underlyings[uid]
        v.advance(t.time_ms, window)  # what settle_option does first (then a no-op there)
        w = v.windows[expiry]
        saved_w, saved_oracle = list(w), v.oracle
        if w[1]:
            w[0] += delta * w[1]  # (acc + delta * dt) // dt == acc // dt + delta
        else:
            v.oracle = replace(saved_oracle, index_price=saved_oracle.index_price + delta)
        r = apply(s, t)
        v.oracle = saved_oracle
        if expiry in v.windows:  # the window as the rules leave it (its count moved; a frozen index stays honest)
            v.windows[expiry][0] = saved_w[0] if saved_w[1] else v.windows[expiry][0] - delta
        s.dirty_underlyings.add(uid)
        return r

    return hook, {"underlying": uid, "expiry": expiry, "instruments": [tx.target],
                  "settlement_price": honest + delta, "honest_settlement_price": honest}


def _wrong_funding(st: State, tx) -> tuple[Callable, dict] | None:
    """A FUNDING_SETTLE the rules accept: its funding index moves twice the rules' step (one
    more interval at the rate it records; 1 ppm where that rate is 0), so each FUNDING_PAY of
    it pays twice."""
    if type(tx) is not OperatorAction or tx.action != OperatorActionKind.FUNDING_SETTLE:
        return None
    mid = tx.target
    m = st.markets.get(mid)
    interval = st.params.funding_interval_ms
    if (m is None or m.spec.kind != InstrumentKind.PERPETUAL or m.status != MarketStatus.ACTIVE or not m.mark_price
            or not m.last_funding_time or tx.time_ms < m.last_funding_time + interval):
        return None

    def hook(s: State, t, mid=mid):
        r = apply(s, t)
        if not r.ok:
            return r
        m = s.markets[mid]
        extra = (m.last_funding_rate_ppm or 1) * m.mark_price * m.spec.tick_value
        m.funding_index += extra  # the interval settled a second time (its payments follow the index)
        s.dirty_markets.add(mid)
        return r

    return hook, {"instruments": [mid]}


def _one_fill(st: State, m, taker, maker, is_buy: bool, price: int, qty: int) -> None:
    """One fill of ``qty`` lots at ``price`` between ``taker`` and ``maker`` (accounts), booked
    as ``clearline.core.ledger.settle_plan`` books each fill of a plan (positions, open
    interest, fees, fee pool), without a resting order behind it."""
    from clearline.core.ledger import fill_fee, trade

    spec = m.spec
    taker_fee = fill_fee(st, m, price, qty, spec.taker_fee_ppm)
    maker_fee = fill_fee(st, m, price, qty, spec.maker_fee_ppm)
    trade(st, m, maker, -qty if is_buy else qty, price)
    trade(st, m, taker, qty if is_buy else -qty, price)
    maker.collateral -= maker_fee
    taker.collateral -= taker_fee
    st.fee_pool += taker_fee + maker_fee
    st.dirty_markets.add(spec.id)


class _StepCheat:
    """A cheating hook for an order fault, in step mode: the order is applied and matched
    honestly, step by step, and ``doctor(state, info)`` cheats right after the matching step
    the fault belongs to -- with ``at_fill``, the step that fills ``info["maker_order"]``
    (``over_fill``, ``price_outside_limit``: when both accounts still hold a position there),
    else the step that ends the order, where ``detect`` (the finder's own check) must find on
    the order's events what the finder found (``under_margined_fill``) -- so the first doctored
    root is that step's."""

    def __init__(self, detect: Callable, doctor: Callable, info: dict, at_fill: bool):
        self.detect, self._doctor, self.info, self.at_fill = detect, doctor, info, at_fill

    def due(self, st: State, tx, opened, step, events: list) -> bool:
        from clearline.core.apply import Receipt
        from clearline.core.ledger import Fill

        info = self.info
        if self.at_fill:
            return (any(type(e) is Fill and e.maker_order == info["maker_order"] for e in step.events)
                    and all(info["instrument"] in st.accounts[a].positions
                            for a in (info["taker_account"], info["maker_account"])))
        if st.pending is not None:
            return False
        again = self.detect(st, tx, Receipt(True, order_id=opened.order_id, events=events))
        if again != info:
            raise RuntimeError(f"order fault: the replay found {again}, the finder {info}")
        return True

    def doctor(self, st: State) -> None:
        self._doctor(st, self.info)


def _detect_over_fill(st: State, tx, r) -> dict | None:
    """The first fill of an Order or Replace that filled its maker order completely."""
    from clearline.core.ledger import Fill, OrderClosed
    from clearline.core.matching import CloseReason

    if type(tx) not in (Order, Replace) or not r.ok:
        return None
    filled = {e.order_id for e in r.events if type(e) is OrderClosed and e.reason == CloseReason.FILLED
              and e.order_id != r.order_id}
    ev = next((e for e in r.events if type(e) is Fill and e.maker_order in filled), None)
    if ev is None:
        return None
    return {"instrument": ev.instrument, "taker_account": ev.taker_account, "maker_account": ev.maker_account,
            "maker_order": ev.maker_order, "taker_side": int(ev.taker_side), "price": ev.price, "qty": ev.qty,
            "extra": 1}


def _doctor_over_fill(st: State, info: dict) -> None:
    m = st.markets[info["instrument"]]
    _one_fill(st, m, st.accounts[info["taker_account"]], st.accounts[info["maker_account"]],
              info["taker_side"] == BUY, info["price"], info["extra"])


def _over_fill(st: State, tx, r) -> tuple[Callable, dict] | None:
    """An Order or Replace that fills a resting order completely: one more lot traded between
    the two accounts at that fill's price (as if the maker order were a lot bigger)."""
    info = _detect_over_fill(st, tx, r)
    if info is None:
        return None
    return _StepCheat(_detect_over_fill, _doctor_over_fill, info, True), info


def _detect_price_outside_limit(st: State, tx, r) -> dict | None:
    """The first fill of an Order, with the price one tick beyond the order's limit (both
    accounts still holding a position in the instrument after it, so the quotes carry it)."""
    from clearline.core.ledger import Fill

    if type(tx) is not Order or not r.ok:
        return None
    ev = next((e for e in r.events if type(e) is Fill), None)
    if ev is None:
        return None
    is_buy = tx.side == BUY
    price = tx.price + 1 if is_buy else tx.price - 1
    if price <= 0:
        return None
    if any(ev.instrument not in st.accounts[a].positions for a in (ev.taker_account, ev.maker_account)):
        return None
    return {"instrument": ev.instrument, "taker_account": ev.taker_account, "maker_account": ev.maker_account,
            "maker_order": ev.maker_order, "taker_side": int(tx.side), "limit": tx.price, "qty": ev.qty,
            "maker_price": ev.price, "price": price}


def _doctor_price_outside_limit(st: State, info: dict) -> None:
    from clearline.core.ledger import fill_fee

    m = st.markets[info["instrument"]]
    spec = m.spec
    q, p, c = info["qty"], info["maker_price"], info["price"]
    d = q if info["taker_side"] == BUY else -q
    delta = -d * (c - p) * spec.tick_value  # the cash ``ledger.trade`` books for d lots at c, minus that at p
    for aid, cash, ppm in ((info["taker_account"], delta, spec.taker_fee_ppm),
                           (info["maker_account"], -delta, spec.maker_fee_ppm)):
        acct = st.accounts[aid]
        acct.positions[spec.id].quote += cash
        more = fill_fee(st, m, c, q, ppm) - fill_fee(st, m, p, q, ppm)
        acct.collateral -= more
        st.fee_pool += more
        st.dirty_accounts.add(aid)
    st.dirty_markets.add(spec.id)


def _price_outside_limit(st: State, tx, r) -> tuple[Callable, dict] | None:
    """An Order that fills: its first fill settled one tick beyond its limit."""
    info = _detect_price_outside_limit(st, tx, r)
    if info is None:
        return None
    return _StepCheat(_detect_price_outside_limit, _doctor_price_outside_limit, info, True), info


def _detect_under_margined_fill(st: State, tx, r) -> dict | None:
    """An Order the margin gate cut (OrderClosed INSUFFICIENT_MARGIN for the order itself),
    the next resting order in priority it could still cross (not expired, not its own
    owner's), and the fewest lots against it that leave the taker below its initial
    requirement (the core's ``MarginGate`` refusing them)."""
    from clearline.core.ledger import OrderClosed
    from clearline.core.margin import MarginGate
    from clearline.core.matching import CloseReason

    if type(tx) is not Order or not r.ok:
        return None
    cut = next((e for e in r.events if type(e) is OrderClosed and e.order_id == r.order_id
                and e.reason == CloseReason.INSUFFICIENT_MARGIN), None)
    if cut is None or not cut.unfilled:
        return None
    acct = st.accounts[tx.account]
    is_buy = tx.side == BUY
    maker = None
    for price, level in st.books[tx.instrument].opposite_levels(tx.side):
        if (price > tx.price) if is_buy else (price < tx.price):
            break
        maker = next((o for o in level.values() if o.owner != acct.owner
                      and not (o.expiry and st.time_ms >= o.expiry)), None)
        if maker is not None:
            break
    if maker is None:
        return None
    most = min(maker.remaining, cut.unfilled)

    def refused(q: int) -> bool:
        return MarginGate(st, tx.instrument).check(acct.id, is_buy, maker.price, q, False, False) == 0

    if not refused(most):
        return None
    lo, hi = 1, most  # the fewest refused lots (hi is refused)
    while lo < hi:
        mid = (lo + hi) // 2
        if refused(mid):
            hi = mid
        else:
            lo = mid + 1
    return {"instrument": tx.instrument, "taker_account": acct.id, "taker_order": r.order_id,
            "taker_side": int(tx.side), "maker_account": maker.account, "maker_order": maker.order_id,
            "price": maker.price, "qty": hi, "unfilled": cut.unfilled}


def _doctor_under_margined_fill(st: State, info: dict) -> None:
    from clearline.core.ledger import settle_plan
    from clearline.core.matching import Plan

    m = st.markets[info["instrument"]]
    maker = st.orders[info["maker_order"]]
    plan = Plan()
    plan.fills.append((maker, info["qty"]))
    plan.filled = info["qty"]
    taker = st.accounts[info["taker_account"]]
    settle_plan(st, m, taker, info["taker_side"], plan, info["taker_order"], [])
    equity, initial, _ = health(st, taker)
    if equity >= initial:
        raise RuntimeError(f"under_margined_fill: the taker's equity {equity} is not below its initial "
                           f"requirement {initial}")


def _under_margined_fill(st: State, tx, r) -> tuple[Callable, dict] | None:
    """An Order cut by the margin gate: filled further against the next maker (see the
    module docstring)."""
    info = _detect_under_margined_fill(st, tx, r)
    if info is None:
        return None
    return _StepCheat(_detect_under_margined_fill, _doctor_under_margined_fill, info, False), info


# fault -> (finder, judged after the honest apply): see FaultyBatcher._transition_fault
_FINDERS = {FaultKind.WRONG_MEDIAN: (_wrong_median, False), FaultKind.WRONG_EXPIRY_PRICE: (_wrong_expiry_price, False),
            FaultKind.WRONG_FUNDING: (_wrong_funding, False), FaultKind.OVER_FILL: (_over_fill, True),
            FaultKind.PRICE_OUTSIDE_LIMIT: (_price_outside_limit, True),
            FaultKind.UNDER_MARGINED_FILL: (_under_margined_fill, True)}
_TRANSITION_FAULTS = (*OPERATOR_FAULTS, *ORDER_FAULTS)


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
    traders', subaccounts 0 and 1); batch 2 some trading; batch 3 the saver's two forced
    withdrawals (one served, one denied: more than it holds), ``deposits`` new deposits into
    existing accounts, then the saver's signed withdrawal and transfer (subaccount 0 to 1; the forced withdrawals, the withdrawal and the
    transfer each alone in their chunk, the deposits in one when ``deposits`` <= 16), carrying
    ``fault`` (honest if None); with ``later_batch`` a batch 4 of trading follows. The
    challenger is the chain's last account."""
    from clearline.batcher.harness import make_sim_rollup

    from clearline.core.encoding import encode_tx

    r = make_sim_rollup(chain, makers=1, takers=1, leveraged=1, challenge_period=challenge_period,
                        forced_deadline=forced_deadline, max_delay_ms=10**9, max_roots=None)  # a flush: one batch
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
    saver.request_forced_withdrawal(saver_id, 5_000 * 10**6)  # denied: more than the account holds
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
    the SETTLE_OPTIONs of the held options' expiry (with their SETTLE_POSITIONs and
    CLOSE_ORDERs), the FUNDING_SETTLEs that end the
    perpetuals' funding intervals with their FUNDING_PAYs (and whatever else is due), and one
    tick of trading (the held option
    is on the first underlying, whose expiries are settled first); batch 4 is a few
    more ticks. The challenger is the chain's last account."""
    from clearline.batcher.harness import STEP_MS, make_sim_rollup

    if fault is not None and FaultKind(fault) not in OPERATOR_SCENARIO_FAULTS:
        raise ValueError(f"operator_fault_rollup carries {[f.value for f in OPERATOR_SCENARIO_FAULTS]}, not {fault}")
    r = make_sim_rollup(chain, makers=1, takers=1, leveraged=1, challenge_period=challenge_period,
                        forced_deadline=forced_deadline, max_delay_ms=10**9, max_roots=None)  # a flush: one batch
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
                                  keys={t.address: t.key for t in r.sim.traders}, **r.batcher_kw)
    r.step(2)
    r.batcher.flush()
    r.step(4)
    r.batcher.flush()
    return FaultyRollup(r, r.client.with_sender(chain.accounts[-1]), 1, 3)


THIN_DEPOSIT = 500 * 10**6  # usd6: ``order_fault_rollup``'s thin-collateral trader


def order_fault_rollup(chain, fault: FaultKind | str | None, *, challenge_period: int = 100,
                       forced_deadline: int = 1_000) -> FaultyRollup:
    """The simulated market on ``chain`` (``make_sim_rollup``: a maker, a taker, a leveraged
    trader and the option traders) for the order faults (``over_fill``,
    ``price_outside_limit``, ``under_margined_fill``, ``forged_order``, ``replayed_old_order``), plus a thin-collateral trader (the
    chain account after the traders', ``THIN_DEPOSIT`` into subaccount 0): batch 1 (the first
    deposits) posted and finalized; batch 2 eight ticks of trading; batch 3 -- carrying
    ``fault`` (honest if None) -- five ticks of trading (the last one requotes the
    perpetuals), then the thin trader's market IOC order in the first perpetual, on the side
    whose best opposite price is worse than the mark, of the most lots its equity carries at
    the mark (so the core accepts it and its margin gate cuts it at the book's worse prices:
    OrderClosed INSUFFICIENT_MARGIN), then three more ticks; batch 4 four ticks. The
    challenger is the chain's last account."""
    from clearline.batcher.harness import make_sim_rollup
    from clearline.core.encoding import encode_tx
    from clearline.core.ledger import OrderClosed
    from clearline.core.margin import MarginGate
    from clearline.core.matching import CloseReason
    from clearline.core.txs import OrderType, TimeInForce

    if fault is not None and FaultKind(fault) not in ORDER_SCENARIO_FAULTS:
        raise ValueError(f"order_fault_rollup carries {[f.value for f in ORDER_SCENARIO_FAULTS]}, not {fault}")
    r = make_sim_rollup(chain, makers=1, takers=1, leveraged=1, challenge_period=challenge_period,
                        forced_deadline=forced_deadline, max_delay_ms=10**9, max_roots=None)  # a flush: one batch
    thin_key = chain.accounts[len(r.sim.traders) + 1]
    thin = r.client.with_sender(thin_key)
    thin.mint(thin.address, THIN_DEPOSIT)
    thin.deposit(0, THIN_DEPOSIT)
    r.feed()
    st = r.sequencer.state
    thin_id = st.account_ids[(bytes.fromhex(thin.address[2:]), 0)]
    r.batcher.flush()
    chain.advance_time(challenge_period)
    r.client.finalize_ready()
    r.step(8)
    r.batcher.flush()
    if fault is not None:
        r.batcher = FaultyBatcher(r.journal, r.client, r.genesis, fault=fault, operator_key=r.sim.operator_key,
                                  **r.batcher_kw)
    r.step(5)  # the last tick requotes the perpetual maker: a full book
    # the thin trader's order: the most lots its equity carries at the mark, against a worse book
    inst = r.sim.perps[0].id
    m, book = st.markets[inst], st.books[inst]
    ask, bid = book.best_ask(), book.best_bid()
    if ask is not None and ask > m.mark_price:
        side, bound = BUY, m.mark_price * 11 // 10
    elif bid is not None and bid < m.mark_price:
        side, bound = SELL, m.mark_price * 9 // 10
    else:
        raise RuntimeError(f"the book of {m.spec.symbol} ({bid}, {ask}) is not worse than the mark {m.mark_price}")

    def carried(q: int) -> bool:
        return MarginGate(st, inst).check(thin_id, side == BUY, m.mark_price, q, False, False) > 0

    lo, hi = 0, 1
    while carried(hi):
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # carried(lo) (or lo == 0), not carried(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if carried(mid) else (lo, mid)
    if lo == 0:
        raise RuntimeError("the thin trader's equity carries no lot")
    r.now_ms += 1
    o = Order(r.now_ms, thin_id, inst, side, int(OrderType.MARKET), int(TimeInForce.IOC), 0, 0, bound, lo, 0, 0, 1)
    o.signature = eip712.sign(st.domain, o, bytes(thin_key.key))
    (ack,) = r.sequencer.submit([encode_tx(o)], r.now_ms)
    if not (ack.receipt.ok and any(type(e) is OrderClosed and e.order_id == ack.receipt.order_id
                                   and e.reason == CloseReason.INSUFFICIENT_MARGIN for e in ack.receipt.events)):
        raise RuntimeError(f"the thin trader's order was not cut by its margin: {ack.receipt} {ack.receipt.events}")
    r.step(3)
    r.batcher.flush()
    r.step(4)
    r.batcher.flush()
    return FaultyRollup(r, r.client.with_sender(chain.accounts[-1]), 1, 3)


def fault_scenario(chain, fault: FaultKind | str, *, challenge_period: int = 100, forced_deadline: int = 1_000,
                   **kw) -> FaultyRollup:
    """``operator_fault_rollup`` for an operator fault, ``order_fault_rollup`` for an order
    fault, else ``faulty_rollup`` (with ``kw``): either way batch 3 carries ``fault``."""
    if FaultKind(fault) in OPERATOR_SCENARIO_FAULTS:
        return operator_fault_rollup(chain, fault, challenge_period=challenge_period, forced_deadline=forced_deadline)
    if FaultKind(fault) in ORDER_SCENARIO_FAULTS:
        return order_fault_rollup(chain, fault, challenge_period=challenge_period, forced_deadline=forced_deadline)
    return faulty_rollup(chain, fault, challenge_period=challenge_period, forced_deadline=forced_deadline, **kw)


def _positions(plan: BatchPlan) -> list[tuple[int, int]]:
    """(chunk, index in it) of each transaction of an honest plan, its matching steps counted."""
    return tx_positions(decode_batch(plan.data).chunk_sizes)

