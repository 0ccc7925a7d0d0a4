"""A restarted node rebuilds its market history from the journal: the trade tape, candles
and an account's fills are the same after the restart (real node and API, real HTTP)."""

from __future__ import annotations

import httpx

from live_node import Live


def test_trades_candles_and_fills_survive_a_restart(tmp_path):
    node = Live(tmp_path)
    try:
        maker, _ = node.trader()
        taker, aid = node.trader()
        maker.place_order("ETH-PERP", "sell", "3050", "2")
        for size in ("0.1", "0.2", "0.3"):
            taker.place_order("ETH-PERP", "buy", "3050", size, tif="IOC")
        before = {path: httpx.get(node.url + "/api/v1" + path).json()
                  for path in ("/trades/ETH-PERP", f"/accounts/{aid}/fills", "/candles/ETH-PERP?interval_s=60")}
    finally:
        node.stop()
    assert [t["size"] for t in before["/trades/ETH-PERP"]["trades"]][:3] == ["0.3", "0.2", "0.1"]  # newest first

    again = Live(tmp_path)  # the same journal: the sequencer recovers, the bus replays history
    try:
        after = {path: httpx.get(again.url + "/api/v1" + path).json() for path in before}
    finally:
        again.stop()
    assert after == before
