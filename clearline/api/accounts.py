"""Account routes: accounts of an owner, balances and positions, margin explain, scenario risk, fills."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ..core.errors import ErrorCode
from ..node import views
from .bodies import parse_address
from .errors import ApiError

__all__ = ["router"]


def _check(st, aid: int) -> None:
    if not (0 <= aid < len(st.accounts)):
        raise ApiError(ErrorCode.UNKNOWN_ACCOUNT, f"no account {aid}: deposit first (demo: POST /api/v1/demo/faucet)")


def router(api) -> APIRouter:
    r = APIRouter(tags=["accounts"])

    @r.get("/accounts", summary="Account ids of an owner address")
    async def by_owner(owner: str = Query(..., description="0x address")):
        addr = parse_address(owner, "owner")

        def read(n):
            rows = sorted((sub, aid) for (o, sub), aid in n.state.account_ids.items() if o == addr)
            return {"owner": views.hex_addr(addr), "accounts": [{"id": aid, "subaccount": sub} for sub, aid in rows]}
        return await api.read(read)

    @r.get("/accounts/{account_id}", summary="Collateral, equity, requirements, positions and open orders")
    async def account(account_id: int):
        def read(n):
            _check(n.state, account_id)
            return {**views.account(n.state, account_id), "journal_seq": n.seq.seq, "time_ms": n.state.time_ms}
        return await api.read(read)

    @r.get("/accounts/{account_id}/margin", summary="Margin explained (the engine's own numbers)")
    async def margin(account_id: int):
        def read(n):
            _check(n.state, account_id)
            return views.margin_explain(n.state, account_id)
        return await api.read(read)

    @r.get("/accounts/{account_id}/risk", summary="Scenario P&L of the account's positions (risk arrays)")
    async def risk(account_id: int):
        def read(n):
            _check(n.state, account_id)
            return {**views.risk(n.state, account_id), "journal_seq": n.seq.seq}
        return await api.read(read)

    @r.get("/accounts/{account_id}/fills", summary="The account's recent fills (kept across restarts), newest first")
    async def fills(account_id: int, limit: int = Query(100, ge=1, le=500)):
        def read(n):
            _check(n.state, account_id)
            rows = list(n.bus.history.fills.get(account_id, ()))[-limit:]
            rows.reverse()
            return {"account": account_id, "fills": rows}
        return await api.read(read)

    return r
