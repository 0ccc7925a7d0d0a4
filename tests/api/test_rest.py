"""REST over real HTTP against a live node: happy paths and every error class."""

from __future__ import annotations

import httpx
import pytest

from clearline.core import eip712
from clearline.core.txs import Order


@pytest.fixture
def http(live):
    with httpx.Client(base_url=live.url + "/api/v1", timeout=10) as c:
        yield c


def err(r: httpx.Response, status: int, name: str) -> dict:
    assert r.status_code == status, r.text
    e = r.json()["error"]
    assert e["name"] == name, e
    assert isinstance(e["code"], int) and e["message"]
    return e


def test_info_gives_domain_type_strings_and_enums(http, live):
    info = http.get("/info").json()
    assert info["chain_id"] == live.genesis.chain_id
    d = info["eip712"]["domain"]
    assert eip712.Domain(d["chainId"], bytes.fromhex(d["verifyingContract"][2:])).separator.hex() == \
        info["eip712"]["domain_separator"][2:]
    assert info["eip712"]["type_strings"]["Order"] == eip712.type_string("Order")
    assert info["eip712"]["type_strings"]["Login"] == "Login(uint32 account,uint64 timestamp)"
    assert info["enums"]["tif"] == {"GTC": 0, "GTT": 1, "IOC": 2, "FOK": 3}
    assert info["demo"] is True and info["l1"] is False and info["node_time_ms"] > 0


def test_instruments_marks_book_trades_candles_funding(http, live):
    inst = {i["symbol"]: i for i in http.get("/instruments").json()["instruments"]}
    btc = inst["BTC-PERP"]
    assert (btc["tick_size"], btc["lot_size"], btc["tick_size_usd6"], btc["lot_size_atoms"]) == \
        ("0.1", "0.0001", 100_000, 10_000)
    marks = http.get("/marks").json()
    assert marks["marks"]["BTC-PERP"]["mark"] == "100000"
    maker, _ = live.trader()
    taker, _ = live.trader()
    maker.place_order("BTC-PERP", "sell", "100100.5", "0.05")
    book = http.get("/book/BTC-PERP", params={"depth": 50}).json()
    assert ["100100.5", "0.05", 1] in book["asks"] or any(a[0] == "100100.5" for a in book["asks"])
    r = taker.place_order("BTC-PERP", "buy", "100100.5", "0.02", tif="IOC")
    assert r.status == "filled" and r.filled == "0.02" and r.avg_price == "100100.5"
    trades = http.get("/trades/BTC-PERP", params={"limit": 5}).json()["trades"]
    assert trades[0]["price"] == "100100.5" and trades[0]["size"] == "0.02" and trades[0]["side"] == "buy"
    candles = http.get("/candles/BTC-PERP", params={"interval_s": 60, "limit": 10}).json()["candles"]
    assert candles and candles[-1]["close"] == "100100.5"
    assert http.get("/funding/BTC-PERP").json()["interval_ms"] > 0
    chain = http.get("/options/chain", params={"underlying": "BTC"}).json()
    assert chain["underlying"] == "BTC" and chain["expiries"] == []


def test_account_views(http, live):
    client, aid = live.trader(50_000)
    assert http.get("/accounts", params={"owner": client.address}).json()["accounts"] == [{"id": aid, "subaccount": 0}]
    other, _ = live.trader()
    other.place_order("BTC-PERP", "sell", "100000", "0.1")
    client.place_order("BTC-PERP", "buy", "100000", "0.1", tif="IOC")
    client.place_order("BTC-PERP", "buy", "90000", "0.01", client_id=7)
    a = http.get(f"/accounts/{aid}").json()
    assert a["collateral"] == "49995" and a["margin_mode"] == "standard" and a["flags"] == 0
    (p,) = a["positions"]
    assert (p["symbol"], p["side"], p["size"], p["entry_price"], p["mark"]) == \
        ("BTC-PERP", "long", "0.1", "100000", "100000")
    assert p["liquidation_price"] is None and p["initial_margin"] == "500"  # 10k notional on 50k: no liquidation
    (o,) = a["open_orders"]
    assert (o["price"], o["size"], o["client_id"], o["tif"]) == ("90000", "0.01", "7", "GTC")
    m = http.get(f"/accounts/{aid}/margin").json()
    assert m["mode"] == "standard" and m["positions"][0]["symbol"] == "BTC-PERP"
    risk = http.get(f"/accounts/{aid}/risk").json()
    assert len(risk["scenarios"]) == 16 and risk["without_risk_array"] == ["BTC-PERP"]
    fills = http.get(f"/accounts/{aid}/fills").json()["fills"]
    assert fills[0]["liquidity"] == "taker" and fills[0]["side"] == "buy" and fills[0]["size"] == "0.1"
    err(http.get("/accounts/999999"), 404, "UNKNOWN_ACCOUNT")


def test_cancel_scopes_replace_withdraw_transfer_flags(http, live):
    c, aid = live.trader()
    ids = [c.place_order("BTC-PERP", "buy", f"{90000 + i}", "0.01", client_id=100 + i).order_id for i in range(4)]
    e1 = c.place_order("ETH-PERP", "buy", "2000", "1").order_id
    assert c.cancel(ids[0]).cancelled == [ids[0]]
    assert c.cancel_by_client_id(101).cancelled == [ids[1]]
    assert c.cancel_all("ETH-PERP").cancelled == [e1]
    r = c.replace(ids[2], "90002", "0.005", symbol="BTC-PERP")  # same price, smaller: keeps id and priority
    assert r.order_id == ids[2] and r.status == "resting" and r.remaining == "0.005"
    r = c.replace(ids[2], "90010", "0.005", symbol="BTC-PERP")
    assert r.order_id != ids[2]
    assert sorted(c.cancel_all().cancelled) == sorted([ids[3], r.order_id])
    assert c.cancel_all().cancelled == []
    w = c.withdraw("100.5")
    assert (w.amount, w.status) == ("100.5", "requested")
    body = {"account": aid, "to_subaccount": 1, "amount": "50", "nonce": str(c.next_nonce())}
    tx = __import__("clearline.core.txs", fromlist=["Transfer"]).Transfer(0, aid, 1, 50_000_000, int(body["nonce"]))
    body["signature"] = "0x" + eip712.sign(c.domain, tx, c._key).hex()
    t = http.post("/transfers", json=body).json()
    assert t["amount"] == "50" and t["to_account"] > aid
    assert c.allow_operator_cancel() > 0
    assert http.get(f"/accounts/{aid}").json()["operator_may_cancel"] is True


def _signed(c, **over) -> dict:
    body = c.order_body("BTC-PERP", "buy", "90000", "0.01")
    body.update(over)
    return body


def test_number_errors(http, live):
    c, _ = live.trader()
    for junk in ("1e5", "0x10", "12,5", " 1", "-1", "NaN", "", "1.", ".5", "01"):
        err(http.post("/orders", json=_signed(c, price=junk)), 400, "MALFORMED_NUMBER")
    err(http.post("/orders", json=_signed(c, price=90000.5)), 400, "MALFORMED_NUMBER")
    e = err(http.post("/orders", json=_signed(c, price="90000.05")), 400, "NOT_A_MULTIPLE")
    assert "tick size 0.1" in e["message"]
    e = err(http.post("/orders", json=_signed(c, size="0.00015")), 400, "NOT_A_MULTIPLE")
    assert "lot size 0.0001" in e["message"]
    err(http.post("/withdrawals", json={"account": 1, "amount": "0.0000001", "nonce": 5, "signature": "0x00"}),
        400, "NOT_A_MULTIPLE")
    err(http.post("/orders", json=_signed(c, nonce=str(1 << 64))), 400, "OUT_OF_RANGE")


def test_request_and_signature_errors(http, live):
    c, aid = live.trader()
    err(http.post("/orders", json=_signed(c, symbol="DOGE-PERP")), 404, "UNKNOWN_INSTRUMENT")
    body = _signed(c)
    del body["side"]
    err(http.post("/orders", json=body), 400, "BAD_REQUEST")
    err(http.post("/orders", json=_signed(c, extra=1)), 400, "BAD_REQUEST")
    err(http.post("/orders", content=b"{not json", headers={"content-type": "application/json"}), 400, "BAD_REQUEST")
    err(http.post("/orders", json=_signed(c, signature="0x1234")), 401, "BAD_SIGNATURE")
    # signed for another price: the derived message differs; with 'signer' the API says so
    e = err(http.post("/orders", json=_signed(c, price="90000.1")), 401, "BAD_SIGNATURE")
    assert '"price":900001' in e["message"]
    body = _signed(c, price="90000.1")
    del body["signer"]
    err(http.post("/orders", json=body), 403, "NOT_ACCOUNT_OWNER")
    other, other_id = live.trader()
    err(http.post("/orders", json=other.order_body("BTC-PERP", "buy", "90000", "0.01", account=aid)), 403,
        "NOT_ACCOUNT_OWNER")
    err(http.get("/nope"), 404, "NOT_FOUND")


def test_core_rejections_keep_their_codes(http, live):
    c, aid = live.trader(1_000)
    body = c.order_body("BTC-PERP", "buy", "90000", "0.01")
    assert http.post("/orders", json=body).status_code == 200
    err(http.post("/orders", json=body), 409, "BAD_NONCE")  # the same signed order again
    err(http.post("/orders", json=c.order_body("BTC-PERP", "buy", "90000", "10")), 422, "INSUFFICIENT_MARGIN")
    maker, _ = live.trader()
    maker.place_order("BTC-PERP", "sell", "100500", "0.01")
    e = err(http.post("/orders", json=c.order_body("BTC-PERP", "buy", "100600", "0.001", post_only=True)), 422,
            "POST_ONLY_WOULD_CROSS")
    assert "post_only" in e["message"]
    err(http.post("/orders", json=c.order_body("BTC-PERP", "buy", "90000", "0.01", type="market")), 400,
        "INVALID_TIME_IN_FORCE")
    from clearline.client import ClearlineError

    with pytest.raises(ClearlineError) as ei:
        c.cancel(424242)
    assert ei.value.name == "UNKNOWN_ORDER" and ei.value.status == 404
    with pytest.raises(ClearlineError) as ei:
        c.withdraw("5000")
    assert ei.value.name == "INSUFFICIENT_COLLATERAL"


def test_typed_data_matches_what_the_node_verifies(http, live):
    c, aid = live.trader()
    body = c.order_body("BTC-PERP", "sell", "100123.4", "0.0123", client_id=9)
    unsigned = {k: v for k, v in body.items() if k not in ("signature", "signer")}
    td = http.post("/typed-data/order", json=unsigned).json()
    assert td["typed_data"]["message"]["price"] == 1_001_234 and td["typed_data"]["message"]["size"] == 123
    tx = Order(0, aid, 0, 1, 0, 0, 0, 0, 1_001_234, 123, 0, 9, int(body["nonce"]))
    assert td["digest"] == "0x" + eip712.digest(c.domain, tx).hex()
    from eth_account.messages import _hash_eip191_message, encode_typed_data

    assert "0x" + bytes(_hash_eip191_message(encode_typed_data(full_message=td["typed_data"]))).hex() == td["digest"]
    login = http.post("/typed-data/login", json={"account": aid, "timestamp_ms": 1}).json()
    assert login["typed_data"]["primaryType"] == "Login"


def test_l1_is_reported_disabled_and_faucet_is_refused(http):
    assert http.get("/l1").json() == {"enabled": False}
    err(http.post("/demo/faucet", json={"address": "0x" + "11" * 20}), 503, "L1_UNAVAILABLE")


def test_order_batch_applies_each_valid_order_and_reports_each_error(http, live):
    c, aid = live.trader()
    maker, _ = live.trader()
    maker.place_order("ETH-PERP", "sell", "3100", "1")
    good = c.order_body("ETH-PERP", "buy", "2900", "0.5", post_only=True)
    forged = dict(c.order_body("ETH-PERP", "buy", "2901", "0.5"), signature="0x" + "11" * 65)
    crossing_post_only = c.order_body("ETH-PERP", "buy", "3100", "0.1", post_only=True)
    taker = c.order_body("ETH-PERP", "buy", "3100", "0.2", tif="IOC")
    r = http.post("/orders/batch", json={"orders": [good, forged, crossing_post_only, taker]})
    assert r.status_code == 200, r.text
    ok, bad_sig, would_cross, filled = r.json()["results"]
    assert ok["status"] == "resting" and ok["seq"] > 0
    assert bad_sig["error"]["name"] in ("BAD_SIGNATURE", "NOT_ACCOUNT_OWNER")
    assert would_cross["error"]["name"] == "POST_ONLY_WOULD_CROSS"
    assert (filled["status"], filled["filled"], filled["seq"]) == ("filled", "0.2", ok["seq"] + 1)  # one group
    opened = {o["order_id"] for o in http.get(f"/accounts/{aid}").json()["open_orders"]}
    assert opened == {ok["order_id"]}

    # the SDK: one result or one typed error per order, in order
    res = c.place_orders([{"symbol": "ETH-PERP", "side": "buy", "price": "2899", "size": "0.1"},
                          {"symbol": "ETH-PERP", "side": "buy", "price": "2899.001", "size": "0.1"},
                          {"symbol": "NOPE-PERP", "side": "buy", "price": "1", "size": "1"}])
    assert res[0].status == "resting"
    assert isinstance(res[1], Exception) and res[1].name == "NOT_A_MULTIPLE"
    assert isinstance(res[2], Exception) and res[2].name == "UNKNOWN_INSTRUMENT"


def test_order_batch_size_is_bounded(http, live):
    c, _ = live.trader()
    err(http.post("/orders/batch", json={"orders": []}), 400, "BAD_REQUEST")
    body = c.order_body("ETH-PERP", "buy", "2000", "0.1")
    err(http.post("/orders/batch", json={"orders": [body] * 51}), 400, "BAD_REQUEST")
