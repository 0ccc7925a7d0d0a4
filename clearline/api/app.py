"""The FastAPI application: REST under /api/v1, the WebSocket, the web UI at /.

``create_app(node)`` wires the routers (``market``, ``accounts``, ``trading``, ``l1routes``)
to one ``Api`` context: the node service, the WebSocket hub, sessions and rate limits. Every
error leaves as ``{"error": {"code", "name", "message"}}`` (``errors``).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..node import NodeHalted, NodeOverloaded
from .auth import RateLimiter, Sessions
from .errors import ApiCode, ApiError, error_body
from .ws import RING, Hub, websocket_session

__all__ = ["Api", "create_app", "API_VERSION", "UI_DIR"]

API_VERSION = "1.0.0"
UI_DIR = Path(__file__).resolve().parents[1] / "ui" / "static"
_NUMBER_FIELDS = {"price", "size", "amount"}


class Api:
    """What every route needs: the node, the hub, sessions and the write rate limiter."""

    def __init__(self, node, *, rate: float = 100.0, burst: int = 200, ws_ring: int = RING):
        self.node = node
        self.hub = Hub(node, ws_ring)
        self.sessions = Sessions()
        self.limiter = RateLimiter(rate, burst)

    async def read(self, fn):
        """``fn(node)`` on the node thread (consistent with one journal position)."""
        try:
            return await asyncio.wrap_future(self.node.call(fn))
        except NodeOverloaded:
            raise ApiError(ApiCode.OVERLOADED, "the node's intake queue is full: retry shortly") from None

    async def submit(self, txs: list) -> list:
        try:
            return await asyncio.wrap_future(self.node.submit_txs(txs))
        except NodeOverloaded:
            raise ApiError(ApiCode.OVERLOADED, "the node's intake queue is full: retry shortly") from None
        except NodeHalted as e:
            raise ApiError(ApiCode.NODE_HALTED, f"the node has halted ({e}); nothing was applied") from None

    async def heartbeat(self, account: int) -> dict:
        return await self.read(lambda n: n.deadman.heartbeat(account, n.wall()))

    async def ws_login(self, conn, msg: dict) -> dict:
        from .trading import login_account

        account = await login_account(self, msg)
        cod = bool(msg.get("cancel_on_disconnect", False))
        deadman_s = msg.get("deadman_s")
        if deadman_s is not None and (isinstance(deadman_s, bool) or not isinstance(deadman_s, (int, float))):
            raise ApiError(ApiCode.BAD_OP, "deadman_s must be a number of seconds")
        if cod or deadman_s:
            await self.require_opt_in(account)
        conn.account = account
        conn.cancel_on_disconnect = cod
        if deadman_s is not None:
            status = await self.read(lambda n: n.deadman.arm(account, float(deadman_s), n.wall()))
        else:
            status = await self.read(lambda n: n.deadman.status(account))
        return {"account": account, "cancel_on_disconnect": cod, "deadman": status}

    async def require_opt_in(self, account: int) -> None:
        from ..core.errors import ErrorCode
        from .errors import from_core

        flags = await self.read(lambda n: n.state.accounts[account].flags)
        if not flags & 1:
            raise from_core(ErrorCode.NOT_OPTED_IN, f"account {account} has not allowed the operator to cancel "
                                                    f"its orders")
        if self.node.operator_key is None:
            raise ApiError(ApiCode.L1_UNAVAILABLE, "this node has no operator key: it cannot cancel for you")


def _error_response(e: ApiError) -> JSONResponse:
    headers = {}
    if e.retry_after_ms is not None:
        headers["Retry-After"] = str(max(1, -(-e.retry_after_ms // 1000)))
    return JSONResponse(e.body(), status_code=e.status, headers=headers)


def _validation_error(exc: RequestValidationError) -> ApiError:
    parts, code = [], ApiCode.BAD_REQUEST
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        if loc and loc[-1] in _NUMBER_FIELDS and err.get("type", "").startswith("string"):
            code = ApiCode.MALFORMED_NUMBER
            parts.append(f"{field} must be a decimal string like \"12.5\"")
        else:
            parts.append(f"{field}: {err.get('msg', 'invalid')}")
    return ApiError(code, "; ".join(parts))


def create_app(node, *, rate: float = 100.0, burst: int = 200, ws_ring: int = RING,
               ui_dir: Path | None = UI_DIR) -> FastAPI:
    """The ASGI app serving ``node`` (a started or not yet started ``NodeService``): ``rate`` and
    ``burst`` per account for signed writes, ``ws_ring`` messages kept per channel for resume."""
    from . import accounts, l1routes, market, trading

    api = Api(node, rate=rate, burst=burst, ws_ring=ws_ring)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        api.hub.attach(asyncio.get_running_loop())
        yield
        api.hub.detach()

    app = FastAPI(title="clearline API", version=API_VERSION, lifespan=lifespan,
                  description="Trading API of a clearline node: market data, accounts, EIP-712 signed orders, "
                              "L1 status. WebSocket streams at /api/v1/ws. See docs/API.md.")
    app.state.api = api

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError):
        return _error_response(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 404:
            return _error_response(ApiError(ApiCode.NOT_FOUND, f"no such path: {request.url.path}"))
        return JSONResponse(error_body(ApiCode.BAD_REQUEST, str(exc.detail)), status_code=exc.status_code)

    for module in (market, accounts, trading, l1routes):
        app.include_router(module.router(api), prefix="/api/v1")

    @app.websocket("/api/v1/ws")
    async def stream(ws: WebSocket):
        await websocket_session(ws, api.hub, api)

    if ui_dir is not None and (ui_dir / "index.html").exists():
        from fastapi.staticfiles import StaticFiles

        app.mount("/", StaticFiles(directory=str(ui_dir), html=True), name="ui")
    return app
