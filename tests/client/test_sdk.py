"""The SDK against a live node: its public API, typed results and errors, streams that resume."""

from __future__ import annotations

import time

import pytest

import clearline.client
from clearline.client import CancelResult, ClearlineError, OrderResult, WithdrawResult
from live_node import wait_for


def test_public_api_is_exactly_this():
    assert sorted(clearline.client.__all__) == ["CancelResult", "ClearlineError", "Client", "Fill", "Heartbeat",
                                                "OrderResult", "RateLimitedError", "Stream", "WithdrawResult"]


def test_trading_round_trip_with_typed_results(live):
    maker, maker_id = live.trader()
    taker, _ = live.trader()
    assert maker.account == maker_id and maker.address.startswith("0x")
    r = maker.place_order("BTC-PERP", "sell", "100200.3", "0.0105", post_only=True, client_id=77)
    assert isinstance(r, OrderResult) and r.status == "resting" and r.remaining == "0.0105" and r.seq > 0
    t = taker.place_order("BTC-PERP", "buy", "100200.3", "0.005", tif="IOC")
    assert (t.status, t.filled, t.avg_price, len(t.fills)) == ("filled", "0.005", "100200.3", 1)
    assert t.fills[0].maker_order == r.order_id
    rep = maker.replace(r.order_id, "100200.3", "0.004", symbol="BTC-PERP")
    assert rep.order_id == r.order_id and rep.remaining == "0.004"
    c = maker.cancel_all()
    assert isinstance(c, CancelResult) and c.cancelled == [r.order_id]
    w = maker.withdraw("10")
    assert isinstance(w, WithdrawResult) and w.amount == "10"
    acct = maker.account_state()
    assert acct["open_orders"] == [] and acct["positions"][0]["side"] == "short"


def test_errors_are_typed_with_stable_codes(live):
    c, _ = live.trader(100)
    with pytest.raises(ClearlineError) as e:
        c.place_order("BTC-PERP", "buy", "100000", "5")
    assert (e.value.code, e.value.name, e.value.status) == (23, "INSUFFICIENT_MARGIN", 422)
    with pytest.raises(ClearlineError) as e:
        c.place_order("BTC-PERP", "buy", "100000.05", "0.01")
    assert e.value.name == "NOT_A_MULTIPLE"  # exact conversion happens before anything is signed
    with pytest.raises(ClearlineError) as e:
        c.place_order("NOPE", "buy", "1", "1")
    assert e.value.name == "UNKNOWN_INSTRUMENT"


def test_stream_reconnects_and_resumes_without_gaps(live):
    maker, _ = live.trader(1_000_000)
    taker, _ = live.trader(1_000_000)
    channel = "trades:BTC-PERP"
    with live.trader()[0].stream([channel, "marks"]) as s:
        wait_for(lambda: channel in s.last)
        start = s.last[channel]

        def burst(n):
            for _ in range(n):
                maker.place_order("BTC-PERP", "sell", "100300", "0.001")
                taker.place_order("BTC-PERP", "buy", "100300", "0.001", tif="IOC")
        burst(3)
        wait_for(lambda: s.last[channel] >= start + 3)
        s.drop_connection()
        burst(3)  # while it reconnects
        wait_for(lambda: s.last[channel] >= start + 6 and s.connected.is_set(), timeout=10)
        seqs = []
        while not s.messages.empty():
            m = s.messages.get()
            if m.get("channel") == channel and m["type"] == "update":
                seqs.append(m["seq"])
        assert seqs == list(range(start + 1, start + 7))
        assert s.gaps == 0 and s.reconnects >= 1


def test_heartbeat_helper_keeps_the_switch_alive(live):
    from clearline.client import Heartbeat

    c, aid = live.trader()
    c.allow_operator_cancel()
    c.arm_deadman(0.5)
    c.place_order("ETH-PERP", "buy", "2000", "0.1")
    hb = Heartbeat(c, 0.1)
    time.sleep(0.9)
    assert len(c.account_state()["open_orders"]) == 1 and hb.errors == 0
    c.arm_deadman(0)
    hb.stop()
