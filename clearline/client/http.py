"""``Client``: read the node, and sign and send orders, cancels, replaces and withdrawals.

Amounts go in as decimal strings and are converted exactly (the API's own conversion,
``clearline.api.numbers``) to the integers that are signed locally with EIP-712 in the node's
domain (read from ``/info``); the key never leaves the process. Nonces are millisecond
timestamps, strictly increasing per client.
"""

from __future__ import annotations

import functools
import threading
import time

import httpx

from ..api.auth import sign_login
from ..api.errors import ApiError
from ..api.numbers import amount_to_usd6, price_to_ticks, size_to_lots
from ..core import eip712
from ..core.txs import Cancel, Order, Replace, SetAccountFlags, Withdraw
from .types import CancelResult, ClearlineError, OrderResult, WithdrawResult, error_from_json

__all__ = ["Client", "Heartbeat"]

_SIDE = {"buy": 0, "sell": 1}
_TYPE = {"limit": 0, "market": 1}
_TIF = {"GTC": 0, "GTT": 1, "IOC": 2, "FOK": 3}
_STP = {"cancel_resting": 0, "cancel_incoming": 1, "cancel_both": 2}
_SCOPE = {"order_id": 0, "client_id": 1, "instrument": 2, "all": 3}


def _local_errors(fn):
    """Conversion errors found before signing (a price off the tick grid...) raise the same
    ``ClearlineError`` the node would have answered."""
    @functools.wraps(fn)
    def wrapper(*args, **kw):
        try:
            return fn(*args, **kw)
        except ApiError as e:
            raise ClearlineError(e.code, e.name, e.message, e.status) from None
    return wrapper


def _key_bytes(key) -> bytes:
    if isinstance(key, str):
        key = bytes.fromhex(key[2:] if key.startswith("0x") else key)
    if not isinstance(key, (bytes, bytearray)) or len(key) != 32:
        raise ValueError("key must be a 32-byte secp256k1 private key (bytes or hex)")
    return bytes(key)


class Client:
    """A trader's connection to one node. ``account``: the account id to trade (default: the
    first account of the key's address, looked up on first use)."""

    def __init__(self, base_url: str, key, *, account: int | None = None, timeout: float = 10.0,
                 http: httpx.Client | None = None):
        self.base_url = base_url.rstrip("/")
        self._key = _key_bytes(key)
        self.address = eip712._checksum(eip712.address_of(self._key))
        self.http = http or httpx.Client(base_url=self.base_url, timeout=timeout)
        self._account = account
        self._info: dict | None = None
        self._domain: eip712.Domain | None = None
        self._instruments: dict[str, dict] = {}
        self._nonce = 0
        self._lock = threading.Lock()
        self.token: str | None = None

    # -- plumbing ------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kw):
        r = self.http.request(method, "/api/v1" + path, **kw)
        if r.status_code >= 400:
            try:
                err = r.json()["error"]
            except Exception:  # noqa: BLE001 - not our error shape
                raise ClearlineError(0, "HTTP_ERROR", r.text[:200], r.status_code) from None
            raise error_from_json(err, r.status_code)
        return r.json()

    def get(self, path: str, **params) -> dict:
        """A GET under /api/v1 (``client.get("/book/BTC-PERP", depth=5)``)."""
        return self._request("GET", path, params=params or None)

    def post(self, path: str, body: dict, headers: dict | None = None) -> dict:
        return self._request("POST", path, json=body, headers=headers)

    def close(self) -> None:
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def info(self) -> dict:
        if self._info is None:
            self._info = self.get("/info")
            d = self._info["eip712"]["domain"]
            self._domain = eip712.Domain(d["chainId"], bytes.fromhex(d["verifyingContract"][2:]))
        return self._info

    @property
    def domain(self) -> eip712.Domain:
        self.info
        return self._domain

    @property
    def account(self) -> int:
        if self._account is None:
            rows = self.get("/accounts", owner=self.address)["accounts"]
            if not rows:
                raise ClearlineError(20, "UNKNOWN_ACCOUNT", f"{self.address} has no account yet: deposit first")
            self._account = rows[0]["id"]
        return self._account

    def instrument(self, symbol: str) -> dict:
        if symbol not in self._instruments:
            self._instruments = {i["symbol"]: i for i in self.get("/instruments")["instruments"]}
        if symbol not in self._instruments:
            raise ClearlineError(30, "UNKNOWN_INSTRUMENT", f"unknown symbol {symbol!r}")
        return self._instruments[symbol]

    def next_nonce(self) -> int:
        with self._lock:
            self._nonce = max(self._nonce + 1, int(time.time() * 1000))
            return self._nonce

    def _sign(self, tx) -> str:
        return "0x" + eip712.sign(self.domain, tx, self._key).hex()

    # -- trading ----------------------------------------------------------------------------------
    def place_order(self, symbol: str, side: str, price: str, size: str, *, type: str = "limit", tif: str = "GTC",
                    post_only: bool = False, reduce_only: bool = False, stp: str = "cancel_resting",
                    client_id: int = 0, expiry_ms: int = 0, account: int | None = None) -> OrderResult:
        return OrderResult.from_json(self.post("/orders", self.order_body(
            symbol, side, price, size, type=type, tif=tif, post_only=post_only, reduce_only=reduce_only, stp=stp,
            client_id=client_id, expiry_ms=expiry_ms, account=account)))

    def place_orders(self, orders: list[dict]) -> list[OrderResult | ClearlineError]:
        """Up to 50 orders in one request (``POST /orders/batch``), each a dict of
        ``place_order``'s arguments (``{"symbol", "side", "price", "size", ...}``). The node
        applies the valid ones in this order; the answer has one entry per order: its
        ``OrderResult``, or the ``ClearlineError`` that refused it (returned, not raised; an
        order that does not convert locally, e.g. off the tick grid, is never sent)."""
        out: list[OrderResult | ClearlineError | None] = []
        bodies = []
        for o in orders:
            try:
                bodies.append(self.order_body(**o))
                out.append(None)
            except ClearlineError as e:
                out.append(e)
        answers = iter(self.post("/orders/batch", {"orders": bodies})["results"] if bodies else [])
        for i, entry in enumerate(out):
            if entry is None:
                a = next(answers)
                out[i] = error_from_json(a["error"]) if "error" in a else OrderResult.from_json(a)
        return out

    @_local_errors
    def order_body(self, symbol: str, side: str, price: str, size: str, *, type: str = "limit", tif: str = "GTC",
                   post_only: bool = False, reduce_only: bool = False, stp: str = "cancel_resting",
                   client_id: int = 0, expiry_ms: int = 0, account: int | None = None, nonce: int | None = None) -> dict:
        """The signed JSON body of an order (for sending later, e.g. pre-signed load)."""
        spec = self.instrument(symbol)
        account = self.account if account is None else account
        nonce = self.next_nonce() if nonce is None else nonce
        tx = Order(0, account, spec["id"], _SIDE[side], _TYPE[type], _TIF[tif],
                   (1 if post_only else 0) | (2 if reduce_only else 0), _STP[stp],
                   price_to_ticks(price, spec["tick_size_usd6"]), size_to_lots(size, spec["lot_size_atoms"]),
                   expiry_ms, client_id, nonce)
        return {"account": account, "symbol": symbol, "side": side, "type": type, "tif": tif, "price": price,
                "size": size, "post_only": post_only, "reduce_only": reduce_only, "stp": stp,
                "expiry_ms": expiry_ms, "client_id": str(client_id), "nonce": str(nonce),
                "signature": self._sign(tx), "signer": self.address}

    @_local_errors
    def _cancel(self, scope: str, *, order_id: int = 0, client_id: int = 0, symbol: str | None = None,
                account: int | None = None) -> CancelResult:
        account = self.account if account is None else account
        nonce = self.next_nonce()
        inst = self.instrument(symbol)["id"] if scope == "instrument" else 0
        tx = Cancel(0, account, _SCOPE[scope], inst, order_id if scope == "order_id" else 0,
                    client_id if scope == "client_id" else 0, nonce)
        body = {"account": account, "scope": scope, "order_id": str(order_id), "client_id": str(client_id),
                "nonce": str(nonce), "signature": self._sign(tx), "signer": self.address}
        if symbol is not None:
            body["symbol"] = symbol
        d = self.post("/cancels", body)
        return CancelResult(d["seq"], d["cancelled"])

    def cancel(self, order_id: int, *, account: int | None = None) -> CancelResult:
        return self._cancel("order_id", order_id=order_id, account=account)

    def cancel_by_client_id(self, client_id: int, *, account: int | None = None) -> CancelResult:
        return self._cancel("client_id", client_id=client_id, account=account)

    def cancel_all(self, symbol: str | None = None, *, account: int | None = None) -> CancelResult:
        """Every open order of the account, or only those in ``symbol``."""
        if symbol is None:
            return self._cancel("all", account=account)
        return self._cancel("instrument", symbol=symbol, account=account)

    @_local_errors
    def replace(self, order_id: int, price: str, size: str, *, symbol: str, account: int | None = None) -> OrderResult:
        spec = self.instrument(symbol)
        account = self.account if account is None else account
        nonce = self.next_nonce()
        tx = Replace(0, account, order_id, price_to_ticks(price, spec["tick_size_usd6"]),
                     size_to_lots(size, spec["lot_size_atoms"]), nonce)
        return OrderResult.from_json(self.post("/replace", {
            "account": account, "order_id": order_id, "price": price, "size": size, "nonce": str(nonce),
            "signature": self._sign(tx), "signer": self.address}))

    @_local_errors
    def withdraw(self, amount: str, *, account: int | None = None) -> WithdrawResult:
        account = self.account if account is None else account
        nonce = self.next_nonce()
        tx = Withdraw(0, account, amount_to_usd6(amount), nonce)
        d = self.post("/withdrawals", {"account": account, "amount": amount, "nonce": str(nonce),
                                       "signature": self._sign(tx), "signer": self.address})
        return WithdrawResult(d["seq"], d["amount"], d["status"])

    def allow_operator_cancel(self, allow: bool = True, *, account: int | None = None) -> int:
        """Sign the account-flags opt-in that cancel-on-disconnect and the dead-man switch need."""
        account = self.account if account is None else account
        nonce = self.next_nonce()
        flags = 1 if allow else 0
        tx = SetAccountFlags(0, account, flags, nonce)
        return self.post("/account-flags", {"account": account, "flags": flags, "nonce": str(nonce),
                                            "signature": self._sign(tx), "signer": self.address})["seq"]

    # -- reads ----------------------------------------------------------------------------------------
    def account_state(self, account: int | None = None) -> dict:
        return self.get(f"/accounts/{self.account if account is None else account}")

    def book(self, symbol: str, depth: int = 20) -> dict:
        return self.get(f"/book/{symbol}", depth=depth)

    # -- sessions, dead-man switch ------------------------------------------------------------------
    def login_message(self, account: int | None = None) -> dict:
        """A fresh signed login (for ``POST /session`` or the WebSocket ``login`` op)."""
        account = self.account if account is None else account
        ts = int(time.time() * 1000)
        return {"account": account, "timestamp_ms": ts,
                "signature": "0x" + sign_login(self.domain, account, ts, self._key).hex()}

    def login(self) -> str:
        self.token = self.post("/session", self.login_message())["token"]
        return self.token

    def _auth(self) -> dict:
        if self.token is None:
            self.login()
        return {"Authorization": f"Bearer {self.token}"}

    def arm_deadman(self, timeout_s: float) -> dict:
        """Cancel all this account's orders if no heartbeat arrives for ``timeout_s`` (0 disarms)."""
        return self.post("/deadman", {"timeout_s": timeout_s}, headers=self._auth())

    def heartbeat(self) -> dict:
        return self.post("/heartbeat", {}, headers=self._auth())

    def stream(self, channels, **kw):
        """A ``Stream`` of ``channels`` with automatic reconnect and resume (see ``Stream``)."""
        from .stream import Stream

        return Stream(self.base_url, channels, login=self.login_message if kw.pop("login", False) else None, **kw)


class Heartbeat:
    """Sends ``client.heartbeat()`` every ``interval_s`` on a background thread until ``stop()``."""

    def __init__(self, client: Client, interval_s: float = 1.0):
        self.client = client
        self.interval = interval_s
        self._stop = threading.Event()
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="clearline-heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.client.heartbeat()
            except Exception:  # noqa: BLE001 - keep trying; the switch fires if the node stays unreachable
                self.errors += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
