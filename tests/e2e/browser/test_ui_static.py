"""The UI's browser modules on their own (no node): the demo wallet's EIP-712 signatures are
the node's byte for byte, and decimal strings convert to ticks and lots exactly."""

from __future__ import annotations

from clearline.core.eip712 import TYPES, Domain, sign, type_string
from clearline.core.txs import Cancel, Order

KEY = bytes([1]) * 32
CONTRACT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
DOMAIN = Domain(31337, CONTRACT)
INFO = {"eip712": {
    "domain": {"name": "clearline", "version": "1", "chainId": 31337,
               "verifyingContract": "0x" + CONTRACT.hex()},
    "types": {name: type_string(name) for name in ["EIP712Domain", *TYPES]},
}}

SIGN_JS = """async ([info, key, primary, message]) => {
  const { DemoWallet } = await import('/js/wallet.js');
  const store = new Map([['clearline.demo.key', key]]);
  const w = new DemoWallet({ getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v),
                             removeItem: (k) => store.delete(k) });
  w.configure(info);
  return { address: w.address, sig: await w.sign(primary, message), digest: w.digest(primary, message) };
}"""


def _browser_sign(page, static_server, primary, message):
    page.goto(static_server + "/__blank__")
    return page.evaluate(SIGN_JS, [INFO, "0x" + KEY.hex(), primary, message])


def test_wallet_signs_orders_exactly_as_the_node(page, static_server):
    big = (1 << 64) - 1
    tx = Order(0, 7, 3, 1, 0, 2, 3, 2, 650_001, 123, big, 42, 1_700_000_000_123)
    msg = {"account": 7, "instrument": 3, "side": 1, "orderType": 0, "timeInForce": 2, "flags": 3,
           "stp": 2, "price": "650001", "size": "123", "expiry": str(big), "clientId": "42",
           "nonce": "1700000000123"}
    out = _browser_sign(page, static_server, "Order", msg)
    assert out["sig"] == "0x" + sign(DOMAIN, tx, KEY).hex()  # RFC 6979 on both sides: same bytes
    assert out["address"].lower() == "0x1a642f0e3c3af545e7acbd38b07251b3990914f1"
    assert not page.errors


def test_wallet_signs_cancels_exactly_as_the_node(page, static_server):
    tx = Cancel(0, 7, 3, 0, 0, 0, 99)
    msg = {"account": 7, "scope": 3, "instrument": 0, "orderId": 0, "clientId": 0, "nonce": 99}
    out = _browser_sign(page, static_server, "Cancel", msg)
    assert out["sig"] == "0x" + sign(DOMAIN, tx, KEY).hex()


def test_decimal_strings_convert_exactly(page, static_server):
    page.goto(static_server + "/__blank__")
    out = page.evaluate("""async () => {
      const d = await import('/js/decimal.js');
      const btc = d.unitsFor({ tick_size: 100000, lot_size: 10000 });
      const err = (f) => { try { f(); return null; } catch (e) { return e.message; } };
      return {
        ticks: btc.priceToTicks('65000.1').toString(), lots: btc.sizeToLots('0.0123').toString(),
        price: btc.ticksToPrice(650001n), size: btc.lotsToSize(123n),
        notional: btc.notional(650001n, 123n).toString(),
        offTick: err(() => btc.priceToTicks('65000.15')), offLot: err(() => btc.sizeToLots('0.00001')),
        junk: err(() => btc.priceToTicks('1e5')), neg: err(() => btc.sizeToLots('-1')),
        big: d.parseUnits('123456789012345678.123456', 6).toString(),
      };
    }""")
    assert out["ticks"] == "650001" and out["lots"] == "123"
    assert out["price"] == "65,000.1" and out["size"] == "0.0123"
    assert out["notional"] == str(650001 * 123 * 10)  # tick_value = 1e5 * 1e4 / 1e8 = 10 usd6
    assert "multiple of the tick 0.1" in out["offTick"]
    assert "multiple of the lot 0.0001" in out["offLot"]
    assert out["junk"] and out["neg"]
    assert out["big"] == "123456789012345678123456"
