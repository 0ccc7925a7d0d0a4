"""Signed writes (orders, cancels, replace, withdrawals, transfers, account settings), the
typed-data helper, sessions and the dead-man switch.

A write is verified here, before it is queued: the signature is recovered over the integer
message derived from the body, and only a request whose signer owns the account is charged to
that account's rate limit (a forged request cannot drain someone else's bucket). The core
re-checks ownership and everything else when it applies the transaction.
"""

from __future__ import annotations

import asyncio
import json
import time
from fractions import Fraction

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse

from ..core import eip712
from ..core import ledger as L
from ..core.errors import ErrorCode, Rejected
from ..node import views
from .auth import LOGIN_WINDOW_MS, login_digest, login_typed_data, recover_login
from .bodies import (MAX_BATCH_ORDERS, AccountFlagsBody, CancelBody, LoginBody, MarginModeBody, OrderBatchBody,
                     OrderBody, ReplaceBody, TransferBody, WithdrawBody, parse_address, parse_signature, to_tx)
from .errors import ApiCode, ApiError, from_core
from .numbers import fmt_lots, fmt_ticks, fmt_usd6, parse_uint

__all__ = ["router", "login_account"]


async def _verified(api, kind: str, body):
    tx = _recovered(api, kind, body)
    _charge(api, tx)
    return tx


def _recovered(api, kind: str, body):
    """The body's transaction with its signer recovered (pure CPU; coincurve releases the GIL,
    so a batch can do this on a worker thread while the event loop serves other requests)."""
    node = api.node
    tx = to_tx(kind, body, node)
    tx.signature = parse_signature(body.signature)
    try:
        tx.signer = eip712.recover_signer(node.state.domain, tx)
    except Rejected as e:
        raise from_core(e.code, e.message) from None
    if body.signer is not None:
        claimed = parse_address(body.signer, "signer")
        if claimed != tx.signer:
            message = eip712.typed_data(node.state.domain, tx)["message"]
            raise ApiError(ErrorCode.BAD_SIGNATURE,
                           f"the signature recovers to {views.hex_addr(tx.signer)}, not the signer {body.signer}: "
                           f"sign exactly this message: {json.dumps(message, separators=(',', ':'))}")
    return tx


def _charge(api, tx) -> None:
    """Charge a write to its account's rate limit, only once the signature proves the owner."""
    if api.node.owner_of(tx.account) == tx.signer:
        retry = api.limiter.take(tx.account, time.monotonic())
        if retry is not None:
            raise ApiError(ApiCode.RATE_LIMITED, f"account {tx.account} is over {api.limiter.rate:g} signed "
                                                  f"writes per second: retry in {retry} ms", retry_after_ms=retry)


async def _apply(api, kind: str, body):
    tx = await _verified(api, kind, body)
    (ack,) = await api.submit([tx])
    if not ack.receipt.ok:
        raise from_core(ack.receipt.code, ack.receipt.message)
    return tx, ack


def order_result(spec, tx, ack) -> dict:
    """What happened to an order (or a replace) on arrival."""
    r = ack.receipt
    oid = r.order_id
    fills = [ev for ev in r.events if type(ev) is L.Fill and ev.taker_order == oid]
    filled = sum(ev.qty for ev in fills)
    rested = next((ev for ev in r.events if type(ev) is L.OrderRested and ev.order_id == oid), None)
    closed = next((ev for ev in r.events if type(ev) is L.OrderClosed and ev.order_id == oid), None)
    if rested is not None:
        status, remaining = ("partially_filled" if filled else "resting"), rested.remaining
    elif closed is not None:
        status, remaining = "cancelled", 0
    else:
        status, remaining = "filled", 0
    avg = None
    if filled:
        avg = fmt_usd6(round(Fraction(sum(ev.price * ev.qty for ev in fills) * spec.tick_size, filled)))
    return {
        "seq": ack.seq, "order_id": oid, "status": status, "filled": fmt_lots(filled, spec.lot_size),
        "remaining": fmt_lots(remaining, spec.lot_size), "avg_price": avg,
        "fills": [{"price": fmt_ticks(ev.price, spec.tick_size), "size": fmt_lots(ev.qty, spec.lot_size),
                   "fee": fmt_usd6(ev.taker_fee), "maker_order": ev.maker_order} for ev in fills],
        "closed_reason": views.CLOSE_REASONS.get(int(closed.reason)) if closed is not None else None,
        "time_ms": tx.time_ms,
    }


async def login_account(api, msg: dict) -> int:
    """The account a login (token, or signed Login message) proves ownership of."""
    node = api.node
    token = msg.get("token")
    if token is not None:
        account = api.sessions.account(token, node.wall())
        if account is None:
            raise ApiError(ApiCode.UNAUTHORIZED, "unknown or expired session token: POST /api/v1/session")
        return account
    try:
        account = parse_uint(msg.get("account"), "account", 32)
        ts = parse_uint(msg.get("timestamp_ms"), "timestamp_ms")
    except ApiError as e:
        raise ApiError(ApiCode.UNAUTHORIZED, f"login needs a token, or account + timestamp_ms + signature ({e.message})")
    owner = node.owner_of(account)
    if owner is None:
        raise ApiError(ErrorCode.UNKNOWN_ACCOUNT, f"no account {account}")
    if abs(ts - node.wall()) > LOGIN_WINDOW_MS:
        raise ApiError(ApiCode.UNAUTHORIZED, f"timestamp_ms must be within {LOGIN_WINDOW_MS // 1000} s of the node's "
                                             f"clock ({node.wall()})")
    try:
        signer = recover_login(node.state.domain, account, ts, parse_signature(msg.get("signature")))
    except Rejected as e:
        raise ApiError(ApiCode.UNAUTHORIZED, f"bad login signature: {e.message}") from None
    if signer != owner:
        raise ApiError(ApiCode.UNAUTHORIZED, f"the login is signed by {views.hex_addr(signer)}, not by the owner of "
                                             f"account {account}")
    return account


def router(api) -> APIRouter:
    r = APIRouter(tags=["trading"])
    node = api.node

    @r.post("/orders", summary="Place an EIP-712 signed order (decimal strings in, exact integers signed)")
    async def place(body: OrderBody):
        tx, ack = await _apply(api, "order", body)
        # the hot path: plain JSON, without FastAPI's generic re-encoding of the returned dict
        return JSONResponse(order_result(node.specs[tx.instrument], tx, ack))

    @r.post("/orders/batch", summary=f"Place 1 to {MAX_BATCH_ORDERS} signed orders in one request (one result each)")
    async def place_batch(body: OrderBatchBody):
        """Every order is verified on its own and the valid ones are applied in the given order,
        in one group commit; the answer has one entry per order, in the same order: the order's
        result, or its error (a bad order does not stop the others)."""
        results: list = [None] * len(body.orders)

        def recover_all():
            out = []
            for item in body.orders:
                try:
                    out.append(_recovered(api, "order", item))
                except ApiError as e:
                    out.append(e)
            return out

        txs = []
        for i, tx in enumerate(await asyncio.to_thread(recover_all)):
            if not isinstance(tx, ApiError):
                try:
                    _charge(api, tx)
                    txs.append((i, tx))
                    continue
                except ApiError as e:
                    tx = e
            results[i] = tx.body()
        if txs:
            acks = await api.submit([tx for _, tx in txs])
            for (i, tx), ack in zip(txs, acks):
                r = ack.receipt
                results[i] = (order_result(node.specs[tx.instrument], tx, ack) if r.ok
                              else from_core(r.code, r.message).body())
        return JSONResponse({"results": results})

    @r.post("/cancels", summary="Cancel by order id, by client id, all in an instrument, or all")
    async def cancel(body: CancelBody):
        tx, ack = await _apply(api, "cancel", body)
        return {"seq": ack.seq, "cancelled": [ev.order_id for ev in ack.receipt.events if type(ev) is L.OrderClosed]}

    @r.post("/replace", summary="Cancel/replace an open order")
    async def replace(body: ReplaceBody):
        order_id = parse_uint(body.order_id, "order_id")
        inst = await api.read(lambda n: n.state.orders[order_id].instrument if order_id in n.state.orders else -1)
        tx, ack = await _apply(api, "replace", body)
        return order_result(node.specs[inst], tx, ack)

    @r.post("/withdrawals", summary="Withdraw free collateral to L1 (paid once its batch is final)")
    async def withdraw(body: WithdrawBody):
        tx, ack = await _apply(api, "withdraw", body)
        return {"seq": ack.seq, "amount": fmt_usd6(tx.amount), "status": "requested"}

    @r.post("/transfers", summary="Move collateral to another subaccount of the same owner")
    async def transfer(body: TransferBody):
        tx, ack = await _apply(api, "transfer", body)
        to = next((ev.to_account for ev in ack.receipt.events if type(ev) is L.CollateralMoved), None)
        return {"seq": ack.seq, "to_account": to, "amount": fmt_usd6(tx.amount)}

    @r.post("/account-flags", summary="Set the account's flags (bit 0: the operator may cancel its orders)")
    async def account_flags(body: AccountFlagsBody):
        tx, ack = await _apply(api, "account-flags", body)
        return {"seq": ack.seq, "flags": tx.flags}

    @r.post("/margin-mode", summary="Switch between standard and portfolio margin")
    async def margin_mode(body: MarginModeBody):
        tx, ack = await _apply(api, "margin-mode", body)
        return {"seq": ack.seq, "mode": body.mode}

    async def _typed(kind: str, body) -> dict:
        domain = node.state.domain
        if kind == "login":
            account = parse_uint(body.account, "account", 32)
            ts = parse_uint(body.timestamp_ms, "timestamp_ms")
            return {"typed_data": login_typed_data(domain, account, ts),
                    "digest": "0x" + login_digest(domain, account, ts).hex()}
        tx = to_tx(kind, body, node)
        try:
            return {"typed_data": eip712.typed_data(domain, tx), "digest": "0x" + eip712.digest(domain, tx).hex()}
        except Rejected as e:
            raise from_core(e.code, e.message) from None

    def _typed_route(kind: str, model):
        async def handler(body):
            return await _typed(kind, body)
        handler.__annotations__ = {"body": model}  # a real class: this module's annotations are strings
        handler.__name__ = f"typed_data_{kind.replace('-', '_')}"
        r.add_api_route(f"/typed-data/{kind}", handler, methods=["POST"],
                        summary=f"The exact EIP-712 message ({kind}) to sign for a body, and its digest")

    for kind, model in (("order", OrderBody), ("cancel", CancelBody), ("replace", ReplaceBody),
                        ("withdraw", WithdrawBody), ("transfer", TransferBody), ("account-flags", AccountFlagsBody),
                        ("margin-mode", MarginModeBody), ("login", LoginBody)):
        _typed_route(kind, model)

    @r.post("/session", summary="Open a session with a signed Login(account, timestamp): returns a bearer token",
            tags=["safety"])
    async def session(body: LoginBody):
        account = await login_account(api, body.model_dump())
        return api.sessions.open(account, node.wall())

    def _bearer(authorization: str | None) -> int:
        token = authorization[7:].strip() if authorization and authorization.lower().startswith("bearer ") else None
        account = api.sessions.account(token, node.wall())
        if account is None:
            raise ApiError(ApiCode.UNAUTHORIZED, "send Authorization: Bearer <token> from POST /api/v1/session")
        return account

    @r.post("/deadman", summary="Arm (timeout_s > 0) or disarm (0) the dead-man switch", tags=["safety"])
    async def arm(body: dict, authorization: str | None = Header(None)):
        account = _bearer(authorization)
        timeout = body.get("timeout_s") if isinstance(body, dict) else None
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ApiError(ApiCode.BAD_REQUEST, "timeout_s must be a number of seconds (0 disarms)")
        if timeout > 0:
            await api.require_opt_in(account)
        return await api.read(lambda n: n.deadman.arm(account, float(timeout), n.wall()))

    @r.get("/deadman", summary="The dead-man switch of the session's account", tags=["safety"])
    async def deadman_status(authorization: str | None = Header(None)):
        account = _bearer(authorization)
        return await api.read(lambda n: n.deadman.status(account))

    @r.post("/heartbeat", summary="Push the dead-man deadline back by its timeout", tags=["safety"])
    async def heartbeat(authorization: str | None = Header(None)):
        return await api.heartbeat(_bearer(authorization))

    return r
