"""A stand-in for the node's API inside the browser (Playwright routes), shaped as docs/API.md.

It lets the UI be tested on its own, quickly and deterministically: REST answers are canned
market data, the WebSocket is routed too (snapshots, then updates pushed by the test), and
every signed write is checked the way the node checks it — the decimal body is converted to
the integer message (ticks, lots, usd6, enum numbers) and the signature must recover to the
account owner with ``clearline.core.eip712``. The real node is exercised by test_ui_node.py.
"""

from __future__ import annotations

import json
import math
import time
from decimal import Decimal

from clearline.core.eip712 import TYPES, Domain, recover_signer, type_string
from clearline.core.txs import Cancel, Order, Withdraw

CHAIN_ID = 31337
ROLLUP = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
DOMAIN = Domain(CHAIN_ID, bytes.fromhex(ROLLUP[2:]))
ENUMS = {"side": {"buy": 0, "sell": 1}, "type": {"limit": 0, "market": 1},
         "tif": {"GTC": 0, "GTT": 1, "IOC": 2, "FOK": 3}, "flags": {"post_only": 1, "reduce_only": 2},
         "stp": {"cancel_resting": 0, "cancel_incoming": 1, "cancel_both": 2},
         "scope": {"order_id": 0, "client_id": 1, "instrument": 2, "all": 3},
         "margin_mode": {"standard": 0, "portfolio": 1}, "account_flags": {"operator_may_cancel": 1}}
SCENARIOS = ["F unch., vol up", "F unch., vol dn", "F +5%, vol up", "F +5%, vol dn", "F -5%, vol up",
             "F -5%, vol dn", "F +10%, vol up", "F +10%, vol dn", "F -10%, vol up", "F -10%, vol dn",
             "F +15%, vol up", "F +15%, vol dn", "F -15%, vol up", "F -15%, vol dn", "F +30% (35%)",
             "F -30% (35%)"]
ACCOUNT = 5


def d(x) -> str:
    """Decimal string without exponent or trailing zeros."""
    s = format(Decimal(x).normalize(), "f")
    return s


class MockNode:
    def __init__(self, now_ms: int | None = None):
        self.now = now_ms or int(time.time() * 1000)
        self.owner: str | None = None
        self.funded = False
        self.writes: list[dict] = []  # accepted signed bodies
        self.rejects: list[dict] = []
        self.sockets = []
        self.subs: dict[str, int] = {}  # channel -> seq
        self.next_order = 100
        self.orders: list[dict] = []
        self.positions: list[dict] = []
        self.fills: list[dict] = []
        self.collateral = Decimal(0)
        self.instruments = self._instruments()
        self.by_symbol = {i["symbol"]: i for i in self.instruments}
        self.bids = [[d(Decimal("99990") - Decimal("0.5") * k), d(Decimal("0.05") + Decimal("0.0173") * (k % 7) * (k + 1)), 1 + k % 3] for k in range(25)]
        self.asks = [[d(Decimal("99990.5") + Decimal("0.5") * k), d(Decimal("0.04") + Decimal("0.0151") * (k % 5) * (k + 1)), 1 + k % 4] for k in range(25)]

    # ------------------------------------------------------------------ market data

    def _instruments(self):
        out = [
            {"id": 0, "symbol": "BTC-PERP", "kind": "perpetual", "underlying": "BTC", "status": "active",
             "tick_size": "0.1", "lot_size": "0.0001", "tick_size_usd6": 100000, "lot_size_atoms": 10000,
             "initial_margin": "0.05", "maintenance_margin": "0.03", "maker_fee": "0.0001", "taker_fee": "0.0005",
             "expiry_ms": None, "strike": None, "option_type": None},
            {"id": 1, "symbol": "ETH-PERP", "kind": "perpetual", "underlying": "ETH", "status": "active",
             "tick_size": "0.01", "lot_size": "0.001", "tick_size_usd6": 10000, "lot_size_atoms": 100000,
             "initial_margin": "0.05", "maintenance_margin": "0.03", "maker_fee": "0.0001", "taker_fee": "0.0005",
             "expiry_ms": None, "strike": None, "option_type": None},
        ]
        self.expiry = (self.now // 60000 + 5) * 60000
        iid = 10
        for k in range(96000, 104001, 2000):
            for t in ("call", "put"):
                out.append({"id": iid, "symbol": f"BTC-X-{k}-{t[0].upper()}", "kind": "option", "underlying": "BTC",
                            "status": "active", "tick_size": "1", "lot_size": "0.01", "tick_size_usd6": 1000000,
                            "lot_size_atoms": 1000000, "initial_margin": "0.15", "maintenance_margin": "0.075",
                            "maker_fee": "0.0001", "taker_fee": "0.0003", "expiry_ms": self.expiry,
                            "strike": str(k), "option_type": t})
                iid += 1
        return out

    def info(self):
        return {"chain_id": CHAIN_ID, "rollup": ROLLUP, "operator": "0x" + "11" * 20,
                "eip712": {"domain": {"name": "clearline", "version": "1", "chainId": CHAIN_ID,
                                      "verifyingContract": ROLLUP},
                           "types": {n: [{"name": a, "type": t} for a, t in f] for n, f in TYPES.items()},
                           "type_strings": {n: type_string(n) for n in ["EIP712Domain", *TYPES]}},
                "enums": ENUMS, "node_time_ms": self.now, "journal_seq": 1000, "epoch": "e1", "demo": True,
                "l1": True, "limits": {}}

    def trades(self, n=50):
        out = []
        for k in range(n):
            p = Decimal("99990") + Decimal(int(40 * math.sin(k / 5))) / 2
            out.append({"id": 1000 + k, "price": d(p), "size": d(Decimal("0.01") * (1 + k % 6)),
                        "side": "buy" if k % 3 else "sell", "time_ms": self.now - (n - k) * 1500, "seq": 500 + k})
        return out

    def candles(self, interval_s):
        out = []
        p = 99800.0
        for k in range(120):
            o = p
            p = o + 18 * math.sin(k / 7) + 9 * math.cos(k / 3)
            hi, lo = max(o, p) + 6, min(o, p) - 6
            t = (self.now // 1000 // interval_s - 120 + k) * interval_s * 1000
            out.append({"t": t, "open": f"{o:.1f}", "high": f"{hi:.1f}", "low": f"{lo:.1f}",
                        "close": f"{p:.1f}", "volume": f"{0.1 + (k % 9) * 0.07:.4f}", "trades": 3})
        return out

    def chain(self):
        strikes = []
        for k in range(96000, 104001, 2000):
            m = max(0, 100000 - k)
            strikes.append({"strike": str(k), **{t: {
                "symbol": f"BTC-X-{k}-{t[0].upper()}", "mark": str((m if t == "call" else max(0, k - 100000)) + 400),
                "bid": str((m if t == "call" else max(0, k - 100000)) + 380),
                "ask": str((m if t == "call" else max(0, k - 100000)) + 425), "open_interest": "0.3",
                "iv": 0.55 + abs(k - 100000) / 100000, "delta": (0.5 - (k - 100000) / 10000) * (1 if t == "call" else -1) if t == "call" else -(0.5 + (k - 100000) / 10000),
                "gamma": 0.00012, "vega": 38.2, "theta": -210.5} for t in ("call", "put")}})
        return {"underlying": "BTC", "index": "99990.123456", "forward": "99991.2", "time_ms": self.now,
                "time_scale": 1440, "expiries": [{"expiry_ms": self.expiry, "strikes": strikes}]}

    def marks(self):
        return {"time_ms": self.now, "marks": {"BTC-PERP": {"mark": "99991.2", "time_ms": self.now},
                                               "ETH-PERP": {"mark": "3500.12", "time_ms": self.now}},
                "index": {"BTC": {"price": "99990.123456", "time_ms": self.now, "unconfirmed": False},
                          "ETH": {"price": "3500.1", "time_ms": self.now, "unconfirmed": False}}}

    def l1(self):
        return {"enabled": True, "chain_id": CHAIN_ID, "rollup": ROLLUP, "vault": "0x" + "22" * 20,
                "l1_block": 812, "l1_time": self.now // 1000, "challenge_period_s": 10, "last_batch": 14,
                "finalized_height": 12, "finalized_state_root": "0x" + "ab" * 32, "pending_txs": 211,
                "queue": {"length": 25, "consumed_l1": 25, "consumed_l2": 25, "forced": []},
                "batches": [{"number": n, "first_seq": n * 100, "last_seq": n * 100 + 99, "txs": 100,
                             "state_root": "0x" + f"{n:02x}" * 32, "data_bytes": 51234 + n, "gas_used": 1234567,
                             "l1_tx": "0x" + "cd" * 32, "reason": "age", "finalized": n <= 12,
                             "time_ms": self.now - (14 - n) * 5000} for n in range(1, 15)],
                "withdrawals": [{"seq": 4321, "account": 7, "owner": "0x" + "33" * 20, "amount": "1000",
                                 "batch": 6, "status": "paid"}],
                "frozen": False, "escape": {"available": False, "escaped": []},
                "vault_balance": "1234567.5", "bond": "1"}

    # ------------------------------------------------------------------ account

    def margin(self):
        notional = sum(Decimal(p["notional"]) for p in self.positions)
        im = sum(Decimal(p["initial_margin"]) for p in self.positions)
        mm = sum(Decimal(p["maintenance_margin"]) for p in self.positions)
        eq = self.collateral + sum(Decimal(p["unrealised_pnl"]) for p in self.positions)
        del notional
        return {"collateral": d(self.collateral), "equity": d(eq), "initial_margin": d(im),
                "maintenance_margin": d(mm), "free_collateral": d(eq - im),
                "margin_ratio": d((mm / eq).quantize(Decimal("0.00001"))) if eq > 0 else None}

    def account(self):
        return {"id": ACCOUNT, "owner": self.owner, "subaccount": 0, "nonce": 0, "flags": 0,
                "operator_may_cancel": False, "margin_mode": "standard", "journal_seq": 1000, "time_ms": self.now,
                **self.margin(), "positions": self.positions, "open_orders": self.orders}

    def risk(self):
        size = sum(Decimal(p["size"]) * (1 if p["side"] == "long" else -1) for p in self.positions)
        moves = [0, 0, 5, 5, -5, -5, 10, 10, -10, -10, 15, 15, -15, -15, 30 * 0.35, -30 * 0.35]
        sc = [{"index": i, "label": SCENARIOS[i], "pnl": f"{float(size) * 100000 * m / 100:.2f}",
               "by_position": {}} for i, m in enumerate(moves)]
        worst = min(sc, key=lambda s: float(s["pnl"]))
        return {"account": ACCOUNT, "journal_seq": 1000, "equity": self.margin()["equity"], "scenarios": sc,
                "worst": worst, "without_risk_array": []}

    # ------------------------------------------------------------------ routing

    def install(self, context):
        context.route("**/api/v1/**", self._route)
        context.route_web_socket("**/api/v1/ws", self._ws)

    def _json(self, route, body, status=200):
        route.fulfill(status=status, content_type="application/json", body=json.dumps(body))

    def _error(self, route, status, code, name, message):
        self.rejects.append({"name": name, "message": message})
        self._json(route, {"error": {"code": code, "name": name, "message": message}}, status)

    def _route(self, route):
        req = route.request
        path = req.url.split("/api/v1", 1)[1]
        base, _, query = path.partition("?")
        if req.method == "GET":
            if base == "/info":
                return self._json(route, self.info())
            if base == "/instruments":
                return self._json(route, {"instruments": self.instruments})
            if base.startswith("/candles/"):
                iv = int(dict(q.split("=") for q in query.split("&") if q).get("interval_s", 60))
                return self._json(route, {"symbol": base[9:], "interval_s": iv, "candles": self.candles(iv)})
            if base.startswith("/funding/"):
                return self._json(route, {"symbol": base[9:], "interval_ms": 20000, "current": {
                    "last_rate": "0.000012", "premium_samples": 3, "interval_start_ms": self.now,
                    "next_funding_ms": self.now + 20000}, "history": []})
            if base == "/marks":
                return self._json(route, self.marks())
            if base == "/options/chain":
                return self._json(route, self.chain())
            if base == "/l1":
                return self._json(route, self.l1())
            if base == "/accounts":
                accts = [{"id": ACCOUNT, "subaccount": 0}] if self.funded else []
                return self._json(route, {"owner": self.owner, "accounts": accts})
            if base == f"/accounts/{ACCOUNT}" and self.funded:
                return self._json(route, self.account())
            if base == f"/accounts/{ACCOUNT}/risk":
                return self._json(route, self.risk())
            if base == f"/accounts/{ACCOUNT}/margin":
                m = self.margin()
                return self._json(route, {"account": ACCOUNT, "mode": "standard", "collateral": m["collateral"],
                                          "equity": m["equity"], "initial": m["initial_margin"],
                                          "maintenance": m["maintenance_margin"], "free_collateral": m["free_collateral"],
                                          "margin_ratio": m["margin_ratio"], "binding_scenario": None,
                                          "scenario_losses": [], "short_option_minimum": "0", "contingency": "0",
                                          "positions": []})
            return self._error(route, 404, 1004, "NOT_FOUND", f"unknown path {base}")
        body = json.loads(req.post_data or "{}")
        if base == "/demo/faucet":
            self.owner = body["address"]
            self.funded = True
            self.collateral = Decimal(10000)
            self.push(f"margin:{ACCOUNT}", self.margin())
            return self._json(route, {"address": body["address"], "amount": "10000", "queue_index": 31,
                                      "l1_tx": "0x" + "ee" * 32})
        if base == "/orders":
            return self._order(route, body)
        if base == "/cancels":
            return self._cancel(route, body)
        if base == "/withdrawals":
            tx = Withdraw(0, body["account"], int(Decimal(body["amount"]) * 10**6), int(body["nonce"]),
                          bytes.fromhex(body["signature"][2:]))
            if not self._check(route, tx):
                return None
            self.writes.append(body)
            return self._json(route, {"seq": 1003, "amount": body["amount"], "status": "requested"})
        return self._error(route, 404, 1004, "NOT_FOUND", f"unknown path {base}")

    def _check(self, route, tx) -> bool:
        signer = "0x" + recover_signer(DOMAIN, tx).hex()
        if signer.lower() != (self.owner or "").lower():
            self._error(route, 401, 10, "BAD_SIGNATURE", f"recovered {signer}, owner {self.owner}")
            return False
        return True

    def _order(self, route, body):
        ins = self.by_symbol[body["symbol"]]
        price, size = Decimal(body["price"]), Decimal(body["size"])
        ticks = price * 10**6 / ins["tick_size_usd6"]
        lots = size * 10**8 / ins["lot_size_atoms"]
        if ticks != int(ticks) or lots != int(lots):
            return self._error(route, 400, 1002, "NOT_A_MULTIPLE", "price/size not on the grid")
        flags = (1 if body.get("post_only") else 0) | (2 if body.get("reduce_only") else 0)
        tx = Order(0, body["account"], ins["id"], ENUMS["side"][body["side"]], ENUMS["type"][body.get("type", "limit")],
                   ENUMS["tif"][body.get("tif", "GTC")], flags, ENUMS["stp"][body.get("stp", "cancel_resting")],
                   int(ticks), int(lots), int(body.get("expiry_ms", 0)), int(body.get("client_id", 0)),
                   int(body["nonce"]), bytes.fromhex(body["signature"][2:]))
        if not self._check(route, tx):
            return None
        self.writes.append(body)
        oid = self.next_order
        self.next_order += 1
        best_ask, best_bid = Decimal(self.asks[0][0]), Decimal(self.bids[0][0])
        crosses = price >= best_ask if body["side"] == "buy" else price <= best_bid
        if not crosses:
            o = {"order_id": oid, "client_id": "0", "symbol": ins["symbol"], "side": body["side"], "type": "limit",
                 "tif": body.get("tif", "GTC"), "price": body["price"], "size": body["size"], "remaining": body["size"],
                 "filled": "0", "post_only": bool(flags & 1), "reduce_only": bool(flags & 2), "expiry_ms": 0}
            self.orders.append(o)
            side = "bids" if body["side"] == "buy" else "asks"
            self.push(f"book:{ins['symbol']}", {"bids": [], "asks": [], side: [[body["price"], body["size"], 1]]})
            self.push(f"orders:{ACCOUNT}", {"events": [{**o, "status": "open", "reason": None, "seq": 1001}]})
            return self._json(route, {"seq": 1001, "order_id": oid, "status": "resting", "filled": "0",
                                      "remaining": body["size"], "avg_price": None, "fills": [],
                                      "closed_reason": None, "time_ms": self.now})
        fill_px = best_ask if body["side"] == "buy" else best_bid
        notional = fill_px * size
        pos = {"instrument": ins["id"], "symbol": ins["symbol"], "side": "long" if body["side"] == "buy" else "short",
               "size": d(size), "entry_price": d(fill_px), "mark": "99991.2", "notional": d(notional),
               "unrealised_pnl": d((Decimal("99991.2") - fill_px) * size * (1 if body["side"] == "buy" else -1)),
               "liquidation_price": d((fill_px * Decimal("0.9")).quantize(Decimal("0.1"))),
               "initial_margin": d((notional * Decimal("0.05")).quantize(Decimal("0.01"))),
               "maintenance_margin": d((notional * Decimal("0.03")).quantize(Decimal("0.01")))}
        self.positions = [pos]
        fill = {"trade_id": 9000, "seq": 1002, "time_ms": self.now, "symbol": ins["symbol"], "order_id": oid,
                "side": body["side"], "price": d(fill_px), "size": d(size), "fee": d(notional * Decimal("0.0005")),
                "liquidity": "taker"}
        self.fills.append(fill)
        self.push(f"fills:{ACCOUNT}", {"fills": [fill]})
        self.push(f"positions:{ACCOUNT}", {"positions": self.positions})
        self.push(f"margin:{ACCOUNT}", self.margin())
        self.push(f"trades:{ins['symbol']}", {"trades": [{"id": 2000, "price": d(fill_px), "size": d(size),
                                                          "side": body["side"], "time_ms": self.now, "seq": 1002}]})
        return self._json(route, {"seq": 1002, "order_id": oid, "status": "filled", "filled": d(size),
                                  "remaining": "0", "avg_price": d(fill_px), "fills": [fill],
                                  "closed_reason": None, "time_ms": self.now})

    def _cancel(self, route, body):
        scope = ENUMS["scope"][body["scope"]]
        tx = Cancel(0, body["account"], scope, 0, int(body.get("order_id", 0)), 0, int(body["nonce"]),
                    bytes.fromhex(body["signature"][2:]))
        if not self._check(route, tx):
            return None
        self.writes.append(body)
        gone = [o for o in self.orders if scope == 3 or o["order_id"] == body.get("order_id")]
        self.orders = [o for o in self.orders if o not in gone]
        if gone:
            self.push(f"orders:{ACCOUNT}", {"events": [{**o, "status": "cancelled", "reason": "user_cancel",
                                                         "seq": 1004} for o in gone]})
        return self._json(route, {"seq": 1004, "cancelled": [o["order_id"] for o in gone]})

    # ------------------------------------------------------------------ websocket

    def _ws(self, ws):
        self.sockets.append(ws)
        ws.on_message(lambda m: self._ws_msg(ws, m))

    def _snapshot(self, ch):
        if ch.startswith("book:"):
            return {"bids": self.bids, "asks": self.asks}
        if ch.startswith("trades:"):
            return {"trades": self.trades() if ch == "trades:BTC-PERP" else []}
        if ch == "marks":
            m = self.marks()
            return {"marks": m["marks"], "index": m["index"]}
        if ch.startswith("orders:"):
            return {"orders": self.orders}
        if ch.startswith("fills:"):
            return {"fills": self.fills}
        if ch.startswith("positions:"):
            return {"positions": self.positions}
        if ch.startswith("margin:"):
            return self.margin()
        return {}

    def _ws_msg(self, ws, raw):
        msg = json.loads(raw)
        if msg.get("op") == "subscribe":
            ch = msg["channel"]
            self.subs.setdefault(ch, 0)
            ws.send(json.dumps({"type": "subscribed", "channel": ch, "epoch": "e1", "id": msg.get("id")}))
            ws.send(json.dumps({"type": "snapshot", "channel": ch, "epoch": "e1", "seq": self.subs[ch],
                                "reason": "subscribe", "data": self._snapshot(ch)}))
        elif msg.get("op") == "unsubscribe":
            ws.send(json.dumps({"type": "unsubscribed", "channel": msg["channel"]}))

    def push(self, ch, data):
        if ch not in self.subs:
            return
        self.subs[ch] += 1
        for ws in self.sockets:
            try:
                ws.send(json.dumps({"type": "update", "channel": ch, "seq": self.subs[ch], "data": data}))
            except Exception:  # a closed socket
                pass
