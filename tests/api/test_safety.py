"""Market-maker safety enforced by the node: cancel-on-disconnect, the dead-man switch (both as
journaled operator transactions that replay), and per-account rate limits."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from websockets.sync.client import connect

from clearline.client import ClearlineError, Heartbeat, RateLimitedError
from clearline.core.encoding import decode_tx
from clearline.core.txs import OperatorAction, OperatorActionKind
from clearline.journal import open_journal
from clearline.sequencer import recover_state
from live_node import wait_for


def open_orders(live, aid: int) -> list:
    return httpx.get(f"{live.url}/api/v1/accounts/{aid}").json()["open_orders"]


def operator_cancels(live, aid: int) -> list[int]:
    """Triggers of the CANCEL_ALL_ORDERS transactions for ``aid`` in the journal, and a check
    that the journal replays to the live root."""
    seq, root = live.node.call(lambda n: (n.seq.seq, n.seq.root())).result(10)
    with open_journal(live.journal_path) as j:
        triggers = []
        for e in j.entries(1, seq):
            tx = decode_tx(e.payload)
            if isinstance(tx, OperatorAction) and tx.action == OperatorActionKind.CANCEL_ALL_ORDERS \
                    and tx.target == aid:
                triggers.append(tx.arg)
        state, last = recover_state(j, use_snapshot=False)
    if last == seq:
        assert state.root() == root
    return triggers


def quote(c, n: int = 3) -> list[int]:
    return [c.place_order("BTC-PERP", "sell", f"{101000 + i}", "0.01").order_id for i in range(n)]


def test_cancel_on_disconnect(live):
    c, aid = live.trader()
    c.allow_operator_cancel()
    with connect(live.url.replace("http", "ws", 1) + "/api/v1/ws") as sock:
        sock.send(json.dumps({"op": "login", **c.login_message(), "cancel_on_disconnect": True}))
        reply = json.loads(sock.recv(timeout=5))
        assert reply["type"] == "login" and reply["account"] == aid and reply["cancel_on_disconnect"] is True
        quote(c)
        assert len(open_orders(live, aid)) == 3
    wait_for(lambda: open_orders(live, aid) == [])
    assert operator_cancels(live, aid) == [1]


def test_cancel_on_disconnect_needs_the_opt_in(live):
    c, aid = live.trader()
    with connect(live.url.replace("http", "ws", 1) + "/api/v1/ws") as sock:
        sock.send(json.dumps({"op": "login", **c.login_message(), "cancel_on_disconnect": True}))
        reply = json.loads(sock.recv(timeout=5))
        assert reply["type"] == "error" and reply["error"]["name"] == "NOT_OPTED_IN"
        quote(c, 1)
    time.sleep(0.3)
    assert len(open_orders(live, aid)) == 1
    # and the core itself refuses the operator's cancel-all without the flag
    ack = live.node.call(lambda n: n.operator_cancel_all(aid, 1)).result(10)
    assert not ack.receipt.ok and ack.receipt.code == 90
    with pytest.raises(ClearlineError) as e:
        c.login()
        c.arm_deadman(1)
    assert e.value.name == "NOT_OPTED_IN"


def test_dead_man_switch_fires_without_heartbeats_and_not_with_them(live):
    c, aid = live.trader()
    c.allow_operator_cancel()
    c.login()
    status = c.arm_deadman(0.6)
    assert status["armed"] and status["timeout_s"] == 0.6
    quote(c)
    hb = Heartbeat(c, 0.15)
    time.sleep(1.2)  # twice the timeout, kept alive by heartbeats
    assert len(open_orders(live, aid)) == 3
    hb.stop()
    wait_for(lambda: open_orders(live, aid) == [], timeout=5)
    st = c.heartbeat()
    assert st["armed"] is False and st["fired"] == 1  # fires once, then disarms
    assert operator_cancels(live, aid) == [2]


def test_dead_man_over_the_websocket(live):
    c, aid = live.trader()
    c.allow_operator_cancel()
    with c.stream([], login=True, deadman_s=0.5) as s:
        msg = s.get()
        assert msg["type"] == "login" and msg["deadman"]["armed"]
        quote(c, 2)
        for _ in range(6):
            s.heartbeat()
            time.sleep(0.15)
        assert len(open_orders(live, aid)) == 2
        wait_for(lambda: open_orders(live, aid) == [], timeout=5)


def test_session_errors(live):
    c, aid = live.trader()
    r = httpx.post(f"{live.url}/api/v1/heartbeat")
    assert r.status_code == 401 and r.json()["error"]["name"] == "UNAUTHORIZED"
    stale = c.login_message()
    stale["timestamp_ms"] -= 120_000
    r = httpx.post(f"{live.url}/api/v1/session", json=stale)
    assert r.status_code == 401 and "within" in r.json()["error"]["message"]


def test_rate_limit_per_account_with_retry_after(tight):
    c, aid = tight.trader()
    other, _ = tight.trader()
    for i in range(3):  # the burst
        c.place_order("BTC-PERP", "buy", f"{90000 + i}", "0.01")
    body = c.order_body("BTC-PERP", "buy", "90100", "0.01")
    r = httpx.post(f"{tight.url}/api/v1/orders", json=body)
    assert r.status_code == 429 and r.json()["error"]["name"] == "RATE_LIMITED"
    assert int(r.headers["Retry-After"]) >= 1 and 0 < r.json()["error"]["retry_after_ms"] <= 1000
    with pytest.raises(RateLimitedError):
        c.place_order("BTC-PERP", "buy", "90200", "0.01")
    other.place_order("BTC-PERP", "buy", "90300", "0.01")  # another account has its own bucket
    # a request forged for the account (wrong signer) is not charged to it
    time.sleep(1.05)
    forged = other.order_body("BTC-PERP", "buy", "90400", "0.01", account=aid)
    assert httpx.post(f"{tight.url}/api/v1/orders", json=forged).json()["error"]["name"] == "NOT_ACCOUNT_OWNER"
    c.place_order("BTC-PERP", "buy", "90500", "0.01")  # the refilled token is still there
