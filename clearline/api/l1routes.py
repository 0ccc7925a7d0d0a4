"""L1 routes: settlement status (batches, finality, withdrawals, queue, freeze) and the demo faucet."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from .bodies import parse_address
from .errors import ApiCode, ApiError
from .numbers import amount_to_usd6

__all__ = ["router"]

FAUCET_DEFAULT = "10000"
FAUCET_MAX_USD6 = 100_000 * 1_000_000


class FaucetBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str
    amount: str = FAUCET_DEFAULT


def router(api) -> APIRouter:
    r = APIRouter(tags=["L1"])
    node = api.node

    @r.get("/l1", summary="Batches with roots and tx counts, finality, withdrawals, queue, freeze and escape")
    async def l1_status():
        if node.l1 is None:
            return {"enabled": False}
        return node.l1.status()

    @r.post("/demo/faucet", summary="Demo only: mint mock USD on the embedded L1 and deposit it for an address")
    async def faucet(body: FaucetBody):
        if not node.demo:
            raise ApiError(ApiCode.DEMO_ONLY, "the faucet exists only in the demo")
        if node.l1 is None:
            raise ApiError(ApiCode.L1_UNAVAILABLE, "this node runs without an L1")
        address = parse_address(body.address)
        amount = amount_to_usd6(body.amount)
        if not (0 < amount <= FAUCET_MAX_USD6):
            raise ApiError(ApiCode.OUT_OF_RANGE, "amount must be above 0 and at most 100000")
        return await asyncio.wrap_future(node.l1.faucet(address, amount))

    return r
