"""WebSocket streams over a real socket: snapshot + deltas, gap-free numbering, resume after a
disconnect (replay identical to what a connected subscriber saw), snapshots when a resume is
impossible, account channels, protocol errors."""

from __future__ import annotations

import json

import pytest
from websockets.sync.client import connect

from live_node import wait_for


def ws(live):
    return connect(live.url.replace("http://", "ws://") + "/api/v1/ws", open_timeout=5)


def recv(sock, timeout: float = 5.0) -> dict:
    return json.loads(sock.recv(timeout=timeout))


def until(sock, pred, timeout: float = 5.0) -> dict:
    while True:
        msg = recv(sock, timeout)
        if pred(msg):
            return msg


def subscribe(sock, channel: str, **kw) -> tuple[dict, dict | None]:
    sock.send(json.dumps({"op": "subscribe", "channel": channel, **kw}))
    sub = until(sock, lambda m: m.get("type") in ("subscribed", "error"))
    if sub["type"] == "error":
        return sub, None
    if "since" in kw:
        return sub, None
    return sub, until(sock, lambda m: m.get("type") == "snapshot" and m["channel"] == channel)


def trade_burst(live, n: int, symbol: str = "ETH-PERP") -> None:
    """``n`` trades (one stream update each); fresh traders, so no rate limit is hit."""
    for i in range(n):
        maker, _ = live.trader(1_000_000)
        taker, _ = live.trader(1_000_000)
        maker.place_order(symbol, "sell", "3100", "0.01")
        taker.place_order(symbol, "buy", "3100", "0.01", tif="IOC")


def apply_delta(side: dict, levels: list) -> None:
    for price, size, count in levels:
        if size == "0":
            side.pop(price, None)
        else:
            side[price] = (size, count)


def test_book_snapshot_then_gap_free_deltas_match_rest(live):
    import httpx

    with ws(live) as sock:
        sub, snap = subscribe(sock, "book:ETH-PERP")
        assert sub["epoch"] == live.node.epoch and snap["reason"] == "subscribe"
        bids = {p: (q, n) for p, q, n in snap["data"]["bids"]}
        asks = {p: (q, n) for p, q, n in snap["data"]["asks"]}
        seq = snap["seq"]
        c, _ = live.trader()
        for i in range(5):
            c.place_order("ETH-PERP", "buy", f"{2500 + i}.5", "0.5")
        c.cancel_all("ETH-PERP")
        c.place_order("ETH-PERP", "buy", "2600", "0.25")
        last_rest = None
        for _ in range(50):
            msg = until(sock, lambda m: m.get("channel") == "book:ETH-PERP")
            assert msg["type"] == "update" and msg["seq"] == seq + 1, msg
            seq = msg["seq"]
            apply_delta(bids, msg["data"]["bids"])
            apply_delta(asks, msg["data"]["asks"])
            rest = httpx.get(live.url + "/api/v1/book/ETH-PERP", params={"depth": 50}).json()
            last_rest = rest
            if rest["seq"] == seq:
                break
        assert last_rest["seq"] == seq
        assert bids == {p: (q, n) for p, q, n in last_rest["bids"]}
        assert asks == {p: (q, n) for p, q, n in last_rest["asks"]}
        assert bids.get("2600") == ("0.25", 1)


def test_resume_after_disconnect_replays_exactly_what_was_missed(live):
    channel = "trades:ETH-PERP"
    from clearline.client import Stream

    with Stream(live.url, [channel]) as witness:  # stays connected the whole time
        first = witness.get()
        while first.get("type") != "snapshot":
            first = witness.get()
        with ws(live) as sock:
            sub, snap = subscribe(sock, channel)
            epoch = sub["epoch"]
            trade_burst(live, 3)
            seen = [until(sock, lambda m: m.get("channel") == channel) for _ in range(3)]  # one per trade
            last = seen[-1]["seq"]
            assert [m["seq"] for m in seen] == list(range(snap["seq"] + 1, last + 1))
        trade_burst(live, 4)  # disconnected mid-stream: more trades happen while we are away
        with ws(live) as sock:
            sock.send(json.dumps({"op": "subscribe", "channel": channel, "since": last, "epoch": epoch}))
            assert until(sock, lambda m: m.get("type") in ("subscribed", "snapshot"))["type"] == "subscribed"
            missed = [until(sock, lambda m: m.get("channel") == channel) for _ in range(4)]
        assert all(m["type"] == "update" for m in missed)
        assert [m["seq"] for m in missed] == list(range(last + 1, last + 5))
        # the witness got the same messages, byte for byte after parsing
        got = {}
        wait_for(lambda: _drain(witness, channel, got) and max(got) >= last + 4)
        assert [got[m["seq"]] for m in missed] == missed
        assert witness.gaps == 0


def _drain(stream, channel, into: dict) -> bool:
    import queue

    try:
        while True:
            m = stream.messages.get_nowait()
            if m.get("channel") == channel and m.get("type") == "update":
                into[m["seq"]] = m
    except queue.Empty:
        return bool(into)


def test_too_old_new_epoch_and_ahead_resumes_get_flagged_snapshots(tight):
    channel = "trades:ETH-PERP"
    with ws(tight) as sock:
        sub, snap = subscribe(sock, channel)
        epoch, last = sub["epoch"], snap["seq"]
    trade_burst(tight, 10)  # 10 updates > the ring of 8
    with ws(tight) as sock:
        sock.send(json.dumps({"op": "subscribe", "channel": channel, "since": last, "epoch": epoch}))
        snap = until(sock, lambda m: m.get("type") == "snapshot")
        assert snap["reason"] == "resume_too_old" and snap["seq"] >= last + 10
        current = snap["seq"]
        sock.send(json.dumps({"op": "subscribe", "channel": channel, "since": current, "epoch": "deadbeef"}))
        assert until(sock, lambda m: m.get("type") == "snapshot")["reason"] == "new_epoch"
        sock.send(json.dumps({"op": "subscribe", "channel": channel, "since": current + 5, "epoch": epoch}))
        assert until(sock, lambda m: m.get("type") == "snapshot")["reason"] == "resume_ahead"
        sock.send(json.dumps({"op": "subscribe", "channel": channel, "since": current, "epoch": epoch}))
        assert until(sock, lambda m: m.get("type") in ("subscribed",))["channel"] == channel


def test_account_channels(live):
    c, aid = live.trader()
    maker, _ = live.trader()
    with ws(live) as sock:
        snaps = {}
        for name in ("orders", "fills", "positions", "margin"):
            _, snaps[name] = subscribe(sock, f"{name}:{aid}")
        assert snaps["orders"]["data"] == {"orders": []} and snaps["positions"]["data"] == {"positions": []}
        assert snaps["margin"]["data"]["collateral"] == "100000"
        maker.place_order("ETH-PERP", "sell", "3050", "1")
        r = c.place_order("ETH-PERP", "buy", "3050", "0.4", tif="IOC")
        want = {f"orders:{aid}", f"fills:{aid}", f"positions:{aid}", f"margin:{aid}"}
        got = {}
        while want - set(got):
            m = until(sock, lambda m: m.get("type") == "update")
            got.setdefault(m["channel"], m)
        (ev,) = got[f"orders:{aid}"]["data"]["events"]
        assert (ev["order_id"], ev["status"], ev["size"]) == (r.order_id, "filled", "0.4")
        assert (ev["type"], ev["tif"], ev["post_only"], ev["reduce_only"]) == ("limit", "IOC", False, False)
        (fill,) = got[f"fills:{aid}"]["data"]["fills"]
        assert (fill["liquidity"], fill["price"], fill["size"]) == ("taker", "3050", "0.4")
        (pos,) = got[f"positions:{aid}"]["data"]["positions"]
        assert (pos["symbol"], pos["side"], pos["size"]) == ("ETH-PERP", "long", "0.4")
        assert got[f"margin:{aid}"]["data"]["initial_margin"] != "0"
        assert all(m["seq"] == 1 for m in got.values())


def test_order_events_carry_the_order_terms(live):
    """Open and closed events repeat type, tif and flags, so the stream alone keeps an
    open-orders table exact (the same fields as GET /accounts/{id})."""
    c, aid = live.trader()
    with ws(live) as sock:
        subscribe(sock, f"orders:{aid}")
        r = c.place_order("ETH-PERP", "buy", "2000", "0.2", post_only=True)
        opened = until(sock, lambda m: m.get("type") == "update")["data"]["events"][0]
        c.cancel(r.order_id)
        closed = until(sock, lambda m: m.get("type") == "update")["data"]["events"][0]
    for ev, status in ((opened, "open"), (closed, "cancelled")):
        assert (ev["order_id"], ev["status"]) == (r.order_id, status)
        assert (ev["type"], ev["tif"], ev["post_only"], ev["reduce_only"]) == ("limit", "GTC", True, False)


@pytest.mark.parametrize("frame, name", [
    ({"op": "subscribe", "channel": "weather"}, "UNKNOWN_CHANNEL"),
    ({"op": "subscribe", "channel": "book:DOGE-PERP"}, "UNKNOWN_INSTRUMENT"),
    ({"op": "subscribe", "channel": "orders:99999999"}, "UNKNOWN_ACCOUNT"),
    ({"op": "dance"}, "BAD_OP"),
    ({"op": "heartbeat"}, "UNAUTHORIZED"),
    ({"op": "login", "account": "TRADER", "timestamp_ms": 1, "signature": "0x" + "11" * 65}, "UNAUTHORIZED"),
])
def test_protocol_errors(live, frame, name):
    if frame.get("account") == "TRADER":
        frame = {**frame, "account": live.trader()[1]}
    with ws(live) as sock:
        sock.send(json.dumps({**frame, "id": 7}))
        msg = until(sock, lambda m: m.get("type") == "error")
        assert msg["error"]["name"] == name and msg["id"] == 7
        sock.send("not json")
        assert until(sock, lambda m: m.get("type") == "error")["error"]["name"] == "BAD_OP"
