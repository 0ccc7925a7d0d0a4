"""``apply(state, tx) -> Receipt``: the state transition function.

Every handler validates completely before it mutates anything, so a ``Rejected`` leaves the
state (and its root) exactly as it was. Signed transactions must carry ``signer`` (recovered
by the sequencer's verifier, or by ``recover_signer`` when replaying from L1 data); the core
checks that it owns the account and that the nonce increases.
"""

from __future__ import annotations

from . import eip712
from .book import BUY, RestingOrder
from .errors import ErrorCode, Rejected
from .instruments import MarketStatus
from .ledger import (AccountFlagsSet, CollateralMoved, Fill, ForcedWithdrawalDenied, IndexUpdated, MarginModeSet,
                     OrderClosed, OrderRested, close_order, settle_plan)
from .margin import MarginGate, health
from .matching import CloseReason, Plan, plan_match
from .operator import handle_operator
from .order_steps import PendingTaker, match_step, open_pending
from .state import MAX_ACCOUNTS, MAX_OPEN_ORDERS, MAX_ORDER_ID, MAX_POSITIONS, Account, State
from .txs import (ALL_ACCOUNT_FLAGS, ALL_FLAGS, MAX_MARK_INSTRUMENTS, MAX_MARK_REPORTS, Cancel, CancelScope, Deposit,
                  ForcedWithdrawal, MarginMode, MarkUpdate, MatchStep,
                  OperatorAction, OperatorActionKind, Order, OrderFlag, OrderType, Replace, SetAccountFlags, SetMarginMode, TimeInForce,
                  Transfer, Withdraw)
from .units import INT64_MAX, UINT32_MAX, UINT64_MAX

E = ErrorCode

# Plain ints on the hot path: IntEnum attribute access and comparison cost ~10x more.
_GTC, _GTT, _IOC, _FOK = (int(TimeInForce.GTC), int(TimeInForce.GTT), int(TimeInForce.IOC), int(TimeInForce.FOK))
_LIMIT, _MARKET = int(OrderType.LIMIT), int(OrderType.MARKET)
_POST_ONLY, _REDUCE_ONLY = int(OrderFlag.POST_ONLY), int(OrderFlag.REDUCE_ONLY)
_ALL_FLAGS = int(ALL_FLAGS)
_ACTIVE = int(MarketStatus.ACTIVE)
_N_SCENARIOS = 16


class Receipt:
    __slots__ = ("ok", "code", "message", "order_id", "events")

    def __init__(self, ok: bool, code: int = 0, message: str = "", order_id: int = 0, events=None):
        self.ok = ok
        self.code = code
        self.message = message
        self.order_id = order_id
        self.events = events if events is not None else []

    def __repr__(self) -> str:
        if self.ok:
            return f"Receipt(ok, order_id={self.order_id}, events={len(self.events)})"
        return f"Receipt(rejected {ErrorCode(self.code).name}: {self.message})"


# -- entry points ------------------------------------------------------------------------
_PAY_STEPS = (OperatorActionKind.FUNDING_PAY, OperatorActionKind.SETTLE_POSITION)  # accepted while paying


def apply(state: State, tx, reporters=None, stepwise: bool = False) -> Receipt:
    """Apply one transaction. Rejections return a receipt with ``ok=False`` and change nothing.

    ``reporters``: for a ``MarkUpdate``, optionally the signers of its oracle reports already
    recovered by a verifier (``clearline.oracle.report.recover_reporters_ahead``); each is used
    only for the very report it was recovered from (``RecoveredReporters.signer_of``), every
    other report is recovered here. The result never depends on it, only the time taken.

    ``stepwise``: an Order or Replace that crosses the book only opens, and ``MatchStep``s match
    it one resting order at a time (``clearline.core.order_steps``; how L1 batch data carries
    orders). The state after the last step is the one matching at once leaves."""
    if tx.time_ms < state.time_ms:
        return Receipt(False, E.TIME_WENT_BACKWARDS, f"time {tx.time_ms} < state time {state.time_ms}")
    handler = _HANDLERS.get(type(tx))
    if handler is None:
        return Receipt(False, E.UNKNOWN_TX_KIND, type(tx).__name__)
    if state.pending is not None and handler is not _match_step:
        return Receipt(False, E.ORDER_MATCHING, f"order {state.pending.order_id} is matching: only its match steps now")
    if state.paying and (handler is not _operator_action or tx.action not in _PAY_STEPS):
        return Receipt(False, E.FUNDING_IN_PROGRESS,
                       f"instrument {min(state.paying)}'s holders are being paid: only FUNDING_PAY / SETTLE_POSITION now")
    try:
        if reporters is not None and handler is _mark_update:
            receipt = _mark_update(state, tx, reporters)
        elif stepwise and (handler is _order or handler is _replace):
            receipt = handler(state, tx, True)
        else:
            receipt = handler(state, tx)
    except Rejected as e:
        return Receipt(False, e.code, e.message)
    state.time_ms = tx.time_ms
    return receipt


def recover_signer(state: State, tx) -> None:
    """Fill ``tx.signer`` from its signature (for replay from L1 data). Raises Rejected."""
    if not isinstance(tx, (Deposit, ForcedWithdrawal)):
        tx.signer = eip712.recover_signer(state.domain, tx)


# -- helpers -------------------------------------------------------------------------------
def _signed_account(st: State, tx) -> Account:
    if not (0 <= tx.account < len(st.accounts)):
        raise Rejected(E.UNKNOWN_ACCOUNT, f"account {tx.account} does not exist")
    acct = st.accounts[tx.account]
    if tx.signer is None:
        raise Rejected(E.BAD_SIGNATURE, "signature not verified")
    if tx.signer != acct.owner:
        raise Rejected(E.NOT_ACCOUNT_OWNER, f"signer 0x{tx.signer.hex()} does not own account {acct.id}")
    if not (acct.nonce < tx.nonce <= UINT64_MAX):
        raise Rejected(E.BAD_NONCE, f"nonce {tx.nonce} must exceed the last used nonce {acct.nonce}")
    return acct


def _operator_signed(st: State, tx) -> None:
    if tx.signer is None:
        raise Rejected(E.BAD_SIGNATURE, "signature not verified")
    if tx.signer != st.operator:
        raise Rejected(E.NOT_OPERATOR, f"0x{tx.signer.hex()} is not the operator")
    if not (0 < tx.timestamp <= tx.time_ms):
        raise Rejected(E.MALFORMED, f"signed timestamp {tx.timestamp} is after the transaction time {tx.time_ms}")


def _market(st: State, instrument: int):
    m = st.markets.get(instrument)
    if m is None:
        raise Rejected(E.UNKNOWN_INSTRUMENT, f"instrument {instrument} is not listed")
    return m


def _check_room(st: State, owner: bytes, subaccount: int) -> None:
    """Before any mutation: an account to be created needs room in the account space."""
    if len(st.accounts) >= MAX_ACCOUNTS and not st.account_exists(owner, subaccount):
        raise Rejected(E.TOO_MANY_ACCOUNTS, f"at most {MAX_ACCOUNTS} accounts")


def _check_amount(amount: int) -> None:
    if not (0 < amount <= UINT64_MAX):
        raise Rejected(E.ZERO_AMOUNT if amount == 0 else E.MALFORMED, f"amount {amount} out of range")


def _free_collateral_check(st: State, acct: Account, amount: int) -> None:
    if amount > acct.collateral:
        raise Rejected(E.INSUFFICIENT_COLLATERAL, f"amount {amount} exceeds collateral {acct.collateral}")
    equity, im, _ = health(st, acct)
    if equity - amount < im:
        raise Rejected(E.INSUFFICIENT_MARGIN,
                       f"free collateral is {max(0, min(acct.collateral, equity - im))}, asked {amount}")


# -- orders ----------------------------------------------------------------------------------
def _validate_order_shape(tx_side, order_type, tif, flags, stp, price, size, expiry, time_ms) -> None:
    if tx_side != 0 and tx_side != 1:
        raise Rejected(E.MALFORMED, f"side {tx_side} must be 0 (buy) or 1 (sell)")
    if order_type != _LIMIT and order_type != _MARKET:
        raise Rejected(E.INVALID_ORDER_TYPE, f"order type {order_type}")
    if not (0 <= tif <= 3):
        raise Rejected(E.INVALID_TIME_IN_FORCE, f"time in force {tif}")
    if flags & ~_ALL_FLAGS or flags < 0:
        raise Rejected(E.INVALID_FLAGS, f"unknown flag bits {flags}")
    if not (0 <= stp <= 2):
        raise Rejected(E.INVALID_STP_MODE, f"self-trade prevention mode {stp}")
    if not (0 < price <= UINT64_MAX):
        raise Rejected(E.INVALID_PRICE, f"price {price} ticks must be positive")
    if not (0 < size <= UINT64_MAX):
        raise Rejected(E.INVALID_SIZE, f"size {size} lots must be positive")
    if order_type == _MARKET and tif < _IOC:
        raise Rejected(E.INVALID_TIME_IN_FORCE, "market orders must be IOC or FOK")
    if flags & _POST_ONLY and (tif >= _IOC or order_type == _MARKET):
        raise Rejected(E.INVALID_FLAGS, "post-only orders must rest (GTC or GTT limit)")
    if tif == _GTT and expiry == 0:
        raise Rejected(E.INVALID_TIME_IN_FORCE, "GTT orders need an expiry")
    if not (0 <= expiry <= UINT64_MAX):
        raise Rejected(E.MALFORMED, "expiry out of range")
    if expiry and time_ms >= expiry:
        raise Rejected(E.ORDER_EXPIRED, f"expiry {expiry} is not after time {time_ms}")


_NO_MATCH = Plan()  # shared, never mutated: the plan of an order that cannot cross


def _place(st: State, acct: Account, instrument: int, side: int, order_type: int, tif: int, flags: int, stp: int,
           price: int, size: int, expiry: int, client_id: int, nonce: int, time_ms: int,
           replacing: RestingOrder | None = None, stepwise: bool = False) -> Receipt:
    m = _market(st, instrument)
    if m.status != _ACTIVE:
        raise Rejected(E.INSTRUMENT_NOT_ACTIVE, f"{m.spec.symbol} is not open for new orders")
    if m.spec.expiry and time_ms >= m.spec.expiry:
        # an expired option awaits SETTLE_OPTION: its payoff is (nearly) known, so trading it
        # against stale resting orders would be a free option
        raise Rejected(E.INSTRUMENT_NOT_ACTIVE, f"{m.spec.symbol} has expired")
    if m.mark_price == 0:
        raise Rejected(E.NO_MARK_PRICE, f"{m.spec.symbol} has no mark price yet")
    _validate_order_shape(side, order_type, tif, flags, stp, price, size, expiry, time_ms)
    if not (0 <= client_id <= UINT64_MAX):
        raise Rejected(E.MALFORMED, "client id out of range")
    if st.next_order_id > MAX_ORDER_ID:
        raise Rejected(E.ORDER_IDS_EXHAUSTED, f"every order id up to {MAX_ORDER_ID} is used")
    if client_id and client_id in acct.client_ids and (replacing is None or replacing.client_id != client_id):
        raise Rejected(E.DUPLICATE_CLIENT_ID, f"client id {client_id} is used by open order {acct.client_ids[client_id]}")
    rests = tif <= _GTT
    if rests and replacing is None and len(acct.open_orders) >= MAX_OPEN_ORDERS:
        raise Rejected(E.TOO_MANY_OPEN_ORDERS, f"at most {MAX_OPEN_ORDERS} open orders per account")
    if instrument not in acct.positions and len(acct.positions) >= MAX_POSITIONS:
        raise Rejected(E.TOO_MANY_POSITIONS, f"at most {MAX_POSITIONS} positions per account")
    book = st.books[instrument]
    crosses = book.crosses(side, price)
    if crosses and flags & _POST_ONLY:
        raise Rejected(E.POST_ONLY_WOULD_CROSS, f"post-only order at {price} would cross the book")
    is_buy = side == BUY
    reduce_only = bool(flags & _REDUCE_ONLY)
    if reduce_only:
        pos = acct.positions.get(instrument)
        held = pos.size if pos is not None else 0
        if (held >= 0) if is_buy else (held <= 0):
            raise Rejected(E.REDUCE_ONLY_WOULD_INCREASE, f"reduce-only {'buy' if is_buy else 'sell'} with position {held}")
    elif MarginGate(st, instrument).check(acct.id, is_buy, m.mark_price, size, False, False) == 0:
        raise Rejected(E.INSUFFICIENT_MARGIN, f"initial margin for {size} lots of {m.spec.symbol} exceeds equity")
    plan = plan_match(book, side, price, size, acct.id, acct.owner, stp, reduce_only, time_ms,
                      MarginGate(st, instrument)) if crosses and (tif == _FOK or not stepwise) else _NO_MATCH
    if tif == _FOK and plan.filled < size:
        raise Rejected(E.FOK_NOT_FILLABLE, f"only {plan.filled} of {size} lots fillable now")

    # ---- validated: mutate from here on ----
    acct.nonce = nonce
    st.dirty_accounts.add(acct.id)
    events: list = []
    if replacing is not None:
        close_order(st, replacing, CloseReason.REPLACED, events)
    oid = st.next_order_id
    st.next_order_id = oid + 1
    if crosses and stepwise:
        open_pending(st, PendingTaker(oid, acct.id, acct.owner, instrument, side, tif, flags, stp, price, size, expiry,
                                      client_id))
        return Receipt(True, order_id=oid, events=events)
    if crosses:
        settle_plan(st, m, acct, side, plan, oid, events)
    left = size - plan.filled
    if left:
        if rests and not plan.stop:
            o = RestingOrder(oid, acct.id, acct.owner, instrument, side, price, size, left, tif, flags, stp,
                             expiry, client_id)
            st.open_order(o)
            events.append(OrderRested(oid, acct.id, instrument, side, price, left))
        else:
            reason = plan.stop or (CloseReason.IOC_REMAINDER if plan.filled else CloseReason.NO_LIQUIDITY)
            events.append(OrderClosed(oid, acct.id, instrument, reason, left))
    return Receipt(True, order_id=oid, events=events)


def _order(st: State, tx: Order, stepwise: bool = False) -> Receipt:
    acct = _signed_account(st, tx)
    return _place(st, acct, tx.instrument, tx.side, tx.order_type, tx.tif, tx.flags, tx.stp, tx.price, tx.size,
                  tx.expiry, tx.client_id, tx.nonce, tx.time_ms, stepwise=stepwise)


def _match_step(st: State, tx: MatchStep) -> Receipt:
    return Receipt(True, events=match_step(st, tx.time_ms))


def _replace(st: State, tx: Replace, stepwise: bool = False) -> Receipt:
    acct = _signed_account(st, tx)
    o = acct.open_orders.get(tx.order_id)
    if o is None:
        raise Rejected(E.UNKNOWN_ORDER, f"order {tx.order_id} is not open in account {acct.id}")
    if not (0 < tx.price <= UINT64_MAX):
        raise Rejected(E.INVALID_PRICE, f"price {tx.price} ticks must be positive")
    if not (0 < tx.size <= UINT64_MAX):
        raise Rejected(E.INVALID_SIZE, f"size {tx.size} lots must be positive")
    if tx.price == o.price and tx.size < o.remaining:
        if o.expiry and tx.time_ms >= o.expiry:
            raise Rejected(E.ORDER_EXPIRED, f"order {o.order_id} has expired")
        acct.nonce = tx.nonce
        st.dirty_accounts.add(acct.id)
        o.size -= o.remaining - tx.size
        o.remaining = tx.size
        st.dirty_orders[o.order_id] = o
        return Receipt(True, order_id=o.order_id,
                       events=[OrderRested(o.order_id, acct.id, o.instrument, o.side, o.price, o.remaining)])
    return _place(st, acct, o.instrument, o.side, _LIMIT, o.tif, o.flags, o.stp, tx.price, tx.size,
                  o.expiry, o.client_id, tx.nonce, tx.time_ms, replacing=o, stepwise=stepwise)


def _cancel(st: State, tx: Cancel) -> Receipt:
    acct = _signed_account(st, tx)
    scope = tx.scope
    if scope == CancelScope.BY_ORDER_ID:
        o = acct.open_orders.get(tx.order_id)
        if o is None:
            other = st.orders.get(tx.order_id)
            if other is not None:
                raise Rejected(E.NOT_ORDER_OWNER, f"order {tx.order_id} belongs to another account")
            raise Rejected(E.UNKNOWN_ORDER, f"order {tx.order_id} is not open")
        targets = [o]
    elif scope == CancelScope.BY_CLIENT_ID:
        oid = acct.client_ids.get(tx.client_id) if tx.client_id else None
        if oid is None:
            raise Rejected(E.UNKNOWN_ORDER, f"no open order with client id {tx.client_id}")
        targets = [acct.open_orders[oid]]
    elif scope == CancelScope.ALL_IN_INSTRUMENT:
        _market(st, tx.instrument)
        targets = [o for o in acct.open_orders.values() if o.instrument == tx.instrument]
    elif scope == CancelScope.ALL:
        targets = list(acct.open_orders.values())
    else:
        raise Rejected(E.INVALID_CANCEL_SCOPE, f"cancel scope {scope}")
    acct.nonce = tx.nonce
    st.dirty_accounts.add(acct.id)
    events: list = []
    for o in targets:
        close_order(st, o, CloseReason.USER_CANCEL, events)
    return Receipt(True, events=events)


# -- collateral and account settings ----------------------------------------------------------
def _deposit(st: State, tx: Deposit) -> Receipt:
    """An L1 deposit. A deposit for the zero address tops up the insurance fund."""
    if tx.queue_index != st.l1_queue_pos:
        raise Rejected(E.QUEUE_OUT_OF_ORDER, f"queue item {tx.queue_index}, expected {st.l1_queue_pos}")
    if len(tx.owner) != 20 or not (0 <= tx.subaccount <= UINT32_MAX) or not (0 <= tx.amount <= UINT64_MAX):
        raise Rejected(E.MALFORMED, "deposit fields out of range")
    if tx.owner != bytes(20):
        _check_room(st, tx.owner, tx.subaccount)
    st.total_deposits += tx.amount
    st.l1_queue_pos += 1
    if tx.owner == bytes(20):
        st.insurance_fund += tx.amount
        return Receipt(True, events=[CollateralMoved("insurance_deposit", -1, -1, tx.amount)])
    acct = st.account_for(tx.owner, tx.subaccount)
    acct.collateral += tx.amount
    st.dirty_accounts.add(acct.id)
    return Receipt(True, events=[CollateralMoved("deposit", -1, acct.id, tx.amount)])


def _forced_withdrawal(st: State, tx: ForcedWithdrawal) -> Receipt:
    """Serve or deny an L1 forced withdrawal; either way its queue item is consumed."""
    if tx.queue_index != st.l1_queue_pos:
        raise Rejected(E.QUEUE_OUT_OF_ORDER, f"queue item {tx.queue_index}, expected {st.l1_queue_pos}")
    if len(tx.owner) != 20 or not (0 <= tx.account <= UINT32_MAX) or not (0 <= tx.amount <= UINT64_MAX):
        raise Rejected(E.MALFORMED, "forced withdrawal fields out of range")
    reason = 0
    if not (0 <= tx.account < len(st.accounts)):
        reason = E.UNKNOWN_ACCOUNT
    elif st.accounts[tx.account].owner != tx.owner:
        reason = E.NOT_ACCOUNT_OWNER
    elif tx.amount == 0:
        reason = E.ZERO_AMOUNT
    else:
        try:
            _free_collateral_check(st, st.accounts[tx.account], tx.amount)
        except Rejected as e:
            reason = e.code
    st.l1_queue_pos += 1
    if reason:
        return Receipt(True, events=[ForcedWithdrawalDenied(tx.queue_index, tx.account, tx.owner, tx.amount,
                                                            int(reason))])
    acct = st.accounts[tx.account]
    acct.collateral -= tx.amount
    st.total_withdrawals += tx.amount
    st.dirty_accounts.add(acct.id)
    return Receipt(True, events=[CollateralMoved("forced_withdraw", acct.id, -1, tx.amount)])


def _withdraw(st: State, tx: Withdraw) -> Receipt:
    acct = _signed_account(st, tx)
    _check_amount(tx.amount)
    _free_collateral_check(st, acct, tx.amount)
    acct.nonce = tx.nonce
    acct.collateral -= tx.amount
    st.total_withdrawals += tx.amount
    st.dirty_accounts.add(acct.id)
    return Receipt(True, events=[CollateralMoved("withdraw", acct.id, -1, tx.amount)])


def _transfer(st: State, tx: Transfer) -> Receipt:
    acct = _signed_account(st, tx)
    _check_amount(tx.amount)
    if not (0 <= tx.to_subaccount <= UINT32_MAX):
        raise Rejected(E.MALFORMED, "subaccount out of range")
    if tx.to_subaccount == acct.subaccount:
        raise Rejected(E.SAME_ACCOUNT, "source and destination are the same subaccount")
    _free_collateral_check(st, acct, tx.amount)
    _check_room(st, acct.owner, tx.to_subaccount)
    acct.nonce = tx.nonce
    dest = st.account_for(acct.owner, tx.to_subaccount)
    acct.collateral -= tx.amount
    dest.collateral += tx.amount
    st.dirty_accounts.add(acct.id)
    st.dirty_accounts.add(dest.id)
    return Receipt(True, events=[CollateralMoved("transfer", acct.id, dest.id, tx.amount)])


def _set_margin_mode(st: State, tx: SetMarginMode) -> Receipt:
    acct = _signed_account(st, tx)
    if tx.mode not in (MarginMode.STANDARD, MarginMode.PORTFOLIO):
        raise Rejected(E.INVALID_MARGIN_MODE, f"margin mode {tx.mode} (0 standard, 1 portfolio)")
    old = acct.margin_mode
    acct.margin_mode = tx.mode
    equity, im, _ = health(st, acct)
    if equity < im:
        acct.margin_mode = old
        raise Rejected(E.INSUFFICIENT_MARGIN, f"equity {equity} below the initial requirement {im} in that mode")
    acct.nonce = tx.nonce
    st.dirty_accounts.add(acct.id)
    return Receipt(True, events=[MarginModeSet(acct.id, tx.mode)])


def _set_account_flags(st: State, tx: SetAccountFlags) -> Receipt:
    acct = _signed_account(st, tx)
    if not (0 <= tx.flags <= 255) or tx.flags & ~int(ALL_ACCOUNT_FLAGS):
        raise Rejected(E.INVALID_ACCOUNT_FLAGS, f"account flags {tx.flags}: only bit 0 (operator may cancel) exists")
    acct.flags = tx.flags
    acct.nonce = tx.nonce
    st.dirty_accounts.add(acct.id)
    return Receipt(True, events=[AccountFlagsSet(acct.id, tx.flags)])


# -- operator ---------------------------------------------------------------------------------
def _mark_update(st: State, tx: MarkUpdate, reporters=None) -> Receipt:
    from ..oracle.aggregate import OracleRejected, aggregate
    from ..oracle.report import recover_reporter

    _operator_signed(st, tx)
    if len(tx.instruments) > MAX_MARK_INSTRUMENTS or len(tx.reports) > MAX_MARK_REPORTS:
        raise Rejected(E.MALFORMED, f"a MarkUpdate marks at most {MAX_MARK_INSTRUMENTS} instruments with at most "
                                    f"{MAX_MARK_REPORTS} reports (bounded work for its fraud proof)")
    if len(tx.instruments) != len(tx.prices) or not (tx.instruments or tx.reports):
        raise Rejected(E.MALFORMED, "instruments and prices must be of equal length, and something must be updated")
    if len(set(tx.instruments)) != len(tx.instruments):
        raise Rejected(E.MALFORMED, "an instrument appears twice")
    if tx.risk_arrays and len(tx.risk_arrays) != len(tx.instruments):
        raise Rejected(E.MALFORMED, "risk arrays must be absent or one per instrument")
    for arr in tx.risk_arrays:
        if len(arr) != _N_SCENARIOS or any(not (-INT64_MAX - 1 <= v <= INT64_MAX) for v in arr):
            raise Rejected(E.MALFORMED, f"a risk array needs {_N_SCENARIOS} int64 values")
    for inst, price in zip(tx.instruments, tx.prices):
        m = _market(st, inst)
        if m.status != _ACTIVE:
            raise Rejected(E.INSTRUMENT_NOT_ACTIVE, f"{m.spec.symbol} is not active")
        if not (0 < price <= UINT64_MAX):
            raise Rejected(E.INVALID_PRICE, f"mark {price} for {m.spec.symbol}")
        if tx.timestamp <= m.mark_time:
            raise Rejected(E.STALE_MARK, f"{m.spec.symbol} already has a mark at {m.mark_time}")
    # oracle: recover every report, aggregate per underlying (pure), apply after validation
    by_asset: dict[int, list] = {}
    for i, rep in enumerate(tx.reports):
        if rep.asset not in st.underlyings:
            raise Rejected(E.UNKNOWN_UNDERLYING, f"report for unknown underlying {rep.asset}")
        signer = reporters.signer_of(st.domain, i, rep) if reporters is not None else None
        if signer is None:
            signer = recover_reporter(st.domain, rep)
        by_asset.setdefault(rep.asset, []).append((rep, signer))
    results = {}
    for asset in sorted(by_asset):
        u = st.underlyings[asset]
        try:
            results[asset] = aggregate(u.config.oracle, u.oracle, by_asset[asset], tx.time_ms)
        except OracleRejected as e:
            raise Rejected(E.ORACLE_REJECTED, f"{u.config.symbol}: {e.message}") from None

    # ---- validated: mutate ----
    events: list = []
    window = st.params.settlement_window_ms
    for uid, u in st.underlyings.items():
        u.advance(tx.time_ms, window)  # the previous index held until now
        r = results.get(uid)
        if r is not None:
            u.oracle = r.state
            events.append(IndexUpdated(uid, int(r.outcome), r.state.index_price, r.median, len(r.used),
                                       r.state.liquidations_paused))
        st.dirty_underlyings.add(uid)  # acc_time moved
    for k, (inst, price) in enumerate(zip(tx.instruments, tx.prices)):
        m = st.markets[inst]
        m.mark_price = price
        m.mark_time = tx.timestamp
        if tx.risk_arrays:
            m.risk_array = list(tx.risk_arrays[k])
        st.dirty_markets.add(inst)
    # Expired good-till-time orders are not swept here but by OperatorAction CLOSE_ORDER:
    # a mark update then touches only market and underlying leaves, all of them named by the
    # transaction or the genesis, so L1 can re-execute it (docs/fraud-proofs.md).
    return Receipt(True, events=events)


def _operator_action(st: State, tx: OperatorAction) -> Receipt:
    _operator_signed(st, tx)
    return Receipt(True, events=handle_operator(st, tx))


_HANDLERS = {
    Deposit: _deposit,
    ForcedWithdrawal: _forced_withdrawal,
    Order: _order,
    Cancel: _cancel,
    Replace: _replace,
    Withdraw: _withdraw,
    Transfer: _transfer,
    MarkUpdate: _mark_update,
    OperatorAction: _operator_action,
    SetMarginMode: _set_margin_mode,
    SetAccountFlags: _set_account_flags,
    MatchStep: _match_step,
}

# the receipt and the events it carries (defined in ledger) are part of this module's API
__all__ = ["apply", "recover_signer", "Receipt", "Fill", "OrderClosed", "OrderRested", "CollateralMoved"]
