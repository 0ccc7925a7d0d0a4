"""Smoke-run the API benchmarks at tiny sizes: the figures exist (no timing is asserted)."""

from clearline.api.bench import bench_api_orders, bench_ws_fanout


def test_api_benchmarks_produce_figures(tmp_path):
    res = bench_api_orders(str(tmp_path), per_account=2, rtt_orders=32)
    assert res["requests"] == 64 and res["orders_per_s"] > 0 and 0 < res["rtt_p50_ms"] <= res["rtt_p99_ms"]
    assert res["batch_orders_per_s"] > 0
    assert res["errors"] == {}
    fan = bench_ws_fanout(str(tmp_path), seconds=0.3, subscribers=5)
    assert fan["messages"] > 0 and fan["per_subscriber_min"] == fan["per_subscriber_max"]
