"""One meeting of an incoming order with the book, as ``MatchVerifier.meet`` re-executes it.

``meeting(state, instrument, taker, time_ms)`` is the mirror: the core's own
``plan_match(..., max_makers=1)`` and ``settle_plan`` on a copy of ``state`` (left untouched),
so the contract is compared with the code that runs the exchange, not with a second model.
``match_inputs(state, instrument, taker)`` gives the contract's arguments: the ``MatchCall``
(the pre-state's root preimage, the instrument, the taker, the time) and the ``MatchWitness``
(the market leaf, the head order of the side the taker meets, both account leaves, one margin
witness for both accounts -- the market leaves of their positions and the instrument, each once,
and their underlyings, only when a gate computes a health -- and an option's underlying leaf),
each with its compressed proof. The taker's leaf is proven in the accounts tree after the maker's leaf is
written: its siblings are those of the state after the meeting, since only the two leaves change.

One MatchStep (``clearline.core.order_steps``), as ``MatchVerifier.step`` re-executes it:
``match_step_mirror(state)`` is the core's own ``match_step`` on a copy of a state with an order
pending (and the meeting's outcome from ``meeting``); ``step_inputs(state)`` gives the
``StepCall`` (the pre-state's root preimage, the time) and the ``StepWitness``: the pending
leaf, the meeting's ``MatchWitness`` with the pending order as the taker, and what the end reads
-- the opposite side's head after the meeting and, for a remainder that rests, the order it goes
before and the one it goes after -- with the orders-tree proofs taken in the contract's order.

Not wired into a proof kind yet (docs/fraud-proofs.md, "One meeting on L1"): the order steps that
give every meeting its own committed root come first.
"""

from __future__ import annotations

from dataclasses import dataclass

from clearline.core.book import BUY, SELL
from clearline.core.instruments import InstrumentKind
from clearline.core.ledger import OrderClosed, OrderRested, settle_plan
from clearline.core.margin import MarginGate, is_reducing
from clearline.core.matching import CloseReason, plan_match
from clearline.core.order_steps import match_step
from clearline.core.state import MAX_POSITIONS, UNDERLYING_BASE, State
from clearline.l1.formats import STATE_ABI, compress_proof

from .margin_witness import markets_witness

__all__ = ["END_CLOSED", "END_FILLED", "END_MATCHING", "END_RESTED", "MATCH_CALL_TYPE", "MATCH_RESULT_TYPE",
           "MATCH_WITNESS_TYPE", "NONE", "STEP_CALL_TYPE", "STEP_RESULT_TYPE", "STEP_WITNESS_TYPE", "Meeting", "Step",
           "Taker", "match_inputs", "match_step_mirror", "meeting", "pending_taker", "step_inputs"]

_MARKET = ("(uint32,bytes32,uint8,bytes32,uint64,uint64,uint32,uint32,int32,int32,uint64,uint64,uint8,uint8,uint64,"
           "uint64,int256,uint64,int64,uint32,uint64,int64,uint64,uint64,int64[16],uint64,int64,uint64,uint64)")
_MARGIN_WITNESS = f"(({_MARKET},uint256,bytes32[])[],(uint32,bytes,uint256,bytes32[])[])"
MATCH_CALL_TYPE = f"({STATE_ABI},uint32,(uint32,uint8,uint64,uint64,uint8,bool),uint64)"
MATCH_WITNESS_TYPE = (f"(bytes,uint256,bytes32[],bytes,uint256,bytes32[],bytes,uint256,bytes32[],bytes,uint256,"
                      f"bytes32[],{_MARGIN_WITNESS},bytes,uint256,bytes32[])")
MATCH_RESULT_TYPE = f"(bool,uint64,uint8,uint8,{STATE_ABI})"
NONE = 255  # MatchResult.makerReason: the resting order stays in the book
STEP_CALL_TYPE = f"({STATE_ABI},uint64)"
STEP_WITNESS_TYPE = (f"(bytes,uint256,bytes32[],{MATCH_WITNESS_TYPE},bytes,uint256,bytes32[],bytes,uint256,bytes32[],"
                     f"bytes,uint256,bytes32[])")
STEP_RESULT_TYPE = f"(bool,uint64,uint8,uint8,uint8,uint8,uint64,{STATE_ABI})"
END_MATCHING, END_FILLED, END_RESTED, END_CLOSED = 0, 1, 2, 3  # StepResult.end


@dataclass(frozen=True)
class Taker:
    """The incoming order while it matches (``MatchTaker``)."""

    account: int
    side: int
    limit: int
    remaining: int
    stp: int = 0
    reduce_only: bool = False

    def as_tuple(self) -> tuple:
        return (self.account, self.side, self.limit, self.remaining, self.stp, self.reduce_only)


@dataclass
class Meeting:
    """The core's result of one meeting: what ``MatchResult`` must hold; ``healths`` the
    accounts whose gate computed a health (the only margin witnesses the contract reads)."""

    met: bool
    filled: int
    stop: int
    maker_reason: int
    after: State
    healths: frozenset = frozenset()

    def result(self) -> tuple:
        """The ``MatchResult`` tuple (the post-state preimage included)."""
        from .fraud import state_tuple

        return (self.met, self.filled, self.stop, self.maker_reason, state_tuple(self.after))


class _RecordingGate(MarginGate):
    """The core's gate, noting which accounts it computes a health for: the contract reads a
    margin witness only then (the same tests as ``MarginGate.check`` before its health)."""

    __slots__ = ("healths",)

    def __init__(self, st, instrument: int):
        super().__init__(st, instrument)
        self.healths: set[int] = set()

    def check(self, account, is_buy, price, qty, reduce_only, is_maker):
        pos = self.st.accounts[account].positions.get(self.inst)
        size = pos.size if pos is not None else 0
        limited = pos is None and len(self.st.accounts[account].positions) >= MAX_POSITIONS
        new_size = size + qty if is_buy else size - qty
        mark = self.market.mark_price
        cheap = is_reducing(size, new_size) and ((price <= mark) if is_buy else (price >= mark))
        if not (limited or reduce_only or account == self.exempt or cheap):
            self.healths.add(account)
        return super().check(account, is_buy, price, qty, reduce_only, is_maker)


def meeting(state: State, instrument: int, taker: Taker, time_ms: int) -> Meeting:
    """The core's one meeting of ``taker`` with the head of the side it meets, on a copy."""
    after = State.from_blob(state.to_blob())
    acct = after.accounts[taker.account]
    gate = _RecordingGate(after, instrument)
    plan = plan_match(after.books[instrument], taker.side, taker.limit, taker.remaining, acct.id, acct.owner,
                      taker.stp, taker.reduce_only, time_ms, gate, max_makers=1)
    stop = 0 if plan.stop == CloseReason.MAKER_LIMIT else int(plan.stop)
    met = bool(plan.fills or plan.cancels or stop)
    events: list = []
    if plan.fills or plan.cancels:
        settle_plan(after, after.markets[instrument], acct, taker.side, plan, after.next_order_id, events)
    closed = [e.reason for e in events if isinstance(e, OrderClosed)]
    after.root()
    return Meeting(met, plan.filled, stop, int(closed[0]) if closed else NONE, after, frozenset(gate.healths))


def match_inputs(state: State, instrument: int, taker: Taker, time_ms: int,
                 done: Meeting | None = None) -> tuple[tuple, tuple]:
    """``(MatchCall, MatchWitness)`` tuples for ``MatchVerifier.meet``; ``done`` is the
    meeting's mirror result (``meeting(...)``; computed when not given). The margin witness
    covers the accounts whose gate computes a health (empty when none does)."""
    from .fraud import state_tuple

    state.root()
    if done is None:
        done = meeting(state, instrument, taker, time_ms)
    after = done.after
    m = state.markets[instrument]
    market = State.market_leaf(m)
    mp, ms = compress_proof(state.markets_tree.proof(instrument))
    head = state.books[instrument].head(SELL if taker.side == BUY else BUY)
    maker, kp, ks = b"", 0, []
    maker_acct, ap, as_ = b"", 0, []
    if head is not None:
        maker = State.order_leaf(head)
        kp, ks = compress_proof(state.orders_tree.proof(head.order_id))
        maker_acct = state.account_leaf(state.accounts[head.account])
        ap, as_ = compress_proof(state.accounts_tree.proof(head.account))
    taker_acct = state.account_leaf(state.accounts[taker.account])
    tp, ts = compress_proof(after.accounts_tree.proof(taker.account))
    margin: tuple = ([], [])
    if done.healths:  # the positions of the accounts whose gate computes a health, and the instrument
        held = set().union(*(state.accounts[a].positions for a in done.healths))
        margin = markets_witness(state, held | {instrument})
    under, up, us = b"", 0, []
    if m.spec.kind == InstrumentKind.OPTION:
        u = state.underlying_by_symbol[m.spec.underlying]
        under = State.underlying_leaf(u)
        up, us = compress_proof(state.markets_tree.proof(UNDERLYING_BASE + u.config.id))
    call = (state_tuple(state), instrument, taker.as_tuple(), time_ms)
    witness = (market, mp, ms, maker, kp, ks, maker_acct, ap, as_, taker_acct, tp, ts, margin, under, up, us)
    return call, witness


# ------------------------------------------------------------------------------ one MatchStep


@dataclass
class Step:
    """The core's result of one MatchStep: the meeting's (``meeting``, its ``after`` the state
    after the meeting alone), how the order ends (``END_*``; ``reason`` the CloseReason when
    closed, else ``NONE``), its lots left, and the state after the step (``after``)."""

    meeting: Meeting
    end: int
    reason: int
    remaining: int
    after: State

    def result(self) -> tuple:
        """The ``StepResult`` tuple (the post-state preimage included)."""
        from .fraud import state_tuple

        m = self.meeting
        return (m.met, m.filled, m.stop, m.maker_reason, self.end, self.reason, self.remaining,
                state_tuple(self.after))


def pending_taker(state: State) -> Taker:
    """The pending order as the meeting's taker."""
    p = state.pending
    return Taker(p.account, p.side, p.price, p.remaining, p.stp, bool(p.flags & 2))


def match_step_mirror(state: State) -> Step:
    """The core's ``match_step`` at the order's time on a copy of ``state`` (left untouched)."""
    p = state.pending
    done = meeting(state, p.instrument, pending_taker(state), state.time_ms)
    after = State.from_blob(state.to_blob())
    events = match_step(after, state.time_ms)
    after.root()
    ends = [e for e in events if isinstance(e, (OrderRested, OrderClosed)) and e.order_id == p.order_id]
    if after.pending is not None:
        return Step(done, END_MATCHING, NONE, after.pending.remaining, after)
    if not ends:
        return Step(done, END_FILLED, NONE, 0, after)
    e = ends[0]
    if isinstance(e, OrderRested):
        return Step(done, END_RESTED, NONE, e.remaining, after)
    return Step(done, END_CLOSED, int(e.reason), e.unfilled, after)


def _leaf(tree_state: State, o) -> tuple[bytes, int, list]:
    if o is None:
        return b"", 0, []
    present, siblings = compress_proof(tree_state.orders_tree.proof(o.order_id))
    return State.order_leaf(o), present, siblings


def step_inputs(state: State, done: Step | None = None) -> tuple[tuple, tuple]:
    """``(StepCall, StepWitness)`` tuples for ``MatchVerifier.step`` on a state with an order
    pending; ``done`` is the step's mirror result (``match_step_mirror``; computed when not
    given). Proofs in the contract's order: the maker in the pre-state (``match_inputs``); the
    pending leaf, the opposite head and the remainder's next in the state after the meeting; the
    remainder's prev in the state after the step (only its own leaf differs there)."""
    from .fraud import state_tuple

    state.root()
    p = state.pending
    if done is None:
        done = match_step_mirror(state)
    taker = pending_taker(state)
    _, mw = match_inputs(state, p.instrument, taker, state.time_ms, done.meeting)
    mid = done.meeting.after  # after the meeting: the pending leaf as before
    pp, ps = compress_proof(mid.orders_tree.proof(p.order_id))
    book = mid.books[p.instrument]
    head = _leaf(mid, book.head(SELL if p.side == BUY else BUY))
    nxt, prev = (b"", 0, []), (b"", 0, [])
    if done.end == END_RESTED:
        before, o = None, book.head(p.side)  # the last order at a price at least as good, and its next
        while o is not None and (o.price >= p.price if p.side == BUY else o.price <= p.price):
            before, o = o, o.next
        nxt = _leaf(mid, o)
        if before is not None:
            present, siblings = compress_proof(done.after.orders_tree.proof(before.order_id))
            prev = (State.order_leaf(before), present, siblings)
    call = (state_tuple(state), state.time_ms)
    witness = (p.leaf(), pp, ps, mw, *head, *nxt, *prev)
    return call, witness
