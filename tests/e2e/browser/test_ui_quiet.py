"""The trading screen against a quiet real node (tests/live_node.Live: the node service and
the API on 127.0.0.1, no simulated market, no L1), for the exact figures a moving market
cannot give: the ticket's notional, a market order's protective price, the refusal of an
off-tick price, and a resting order at a known level of the book. Every signed write is
verified by the node itself; test_ui_node.py runs the whole flow against the full demo node."""

from __future__ import annotations

import pytest
from browser_env import VIEWPORT
from live_node import Live

from clearline.core.encoding import decode_tx
from clearline.core.txs import Order

ASKS = ["100000.5", "100001.0", "100001.5"]  # a maker's BTC-PERP asks, 0.5 BTC each
BIDS = ["99999.5", "99999.0", "99998.5"]


@pytest.fixture(scope="module")
def quiet(tmp_path_factory):
    node = Live(tmp_path_factory.mktemp("quiet"))
    maker, _ = node.trader(5_000_000)
    for price in ASKS:
        maker.place_order("BTC-PERP", "sell", price, "0.5")
    for price in BIDS:
        maker.place_order("BTC-PERP", "buy", price, "0.5")
    yield node
    node.stop()


@pytest.fixture
def ui(browser, quiet):
    """A fresh browser wallet, funded with 10,000 USD by a deposit for its address."""
    ctx = browser.new_context(viewport=VIEWPORT)
    pg = ctx.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(quiet.url + "/")
    pg.wait_for_selector("#app[data-ready='1']")
    address = pg.get_attribute("#app", "data-address")
    account = quiet.fund_owner(bytes.fromhex(address[2:]), 10_000)
    pg.reload()
    pg.wait_for_selector(f"#app[data-account='{account}']")
    pg.wait_for_function("document.querySelector('#a-collateral').textContent.includes('10,000')")
    try:
        yield pg, account, errors
    finally:
        ctx.close()


def test_resting_order_market_fill_and_cancel_all(ui, quiet, shot):
    pg, account, errors = ui
    for price in ASKS + BIDS:
        pg.wait_for_selector(f"#book .lvl[data-price='{price}']")

    # a limit buy below the best bid rests: the ticket shows the exact notional, the node
    # accepts the browser's signature, and the order shows in open orders and on the book
    pg.fill("#t-price", "99987.3")
    pg.fill("#t-size", "0.0123")
    assert pg.inner_text("#t-notional") == "1,229.84 USD"  # 999873 ticks * 123 lots * 10 usd6
    pg.click("#t-submit")
    pg.wait_for_function("document.querySelector('#t-msg').textContent.includes('resting')")
    pg.wait_for_selector("#orders tbody tr[data-order-id]", state="attached")
    pg.wait_for_selector("#book-bids .lvl.mine[data-price='99987.3']")

    # a market buy crosses: its protective price is 5% through the best ask, rounded up to the
    # tick; it fills at the maker's ask and the position and margin update
    pg.click("#t-market")
    pg.fill("#t-size", "0.05")
    pg.click("#t-submit")
    pg.wait_for_function("document.querySelector('#t-msg').textContent.includes('filled')")
    pg.wait_for_selector("#positions tbody tr[data-symbol='BTC-PERP']")
    assert "+0.05" in pg.inner_text("#positions tbody tr[data-symbol='BTC-PERP']")
    pg.wait_for_function("document.querySelector('#a-initial').textContent !== '0.00'")
    positions = quiet.node.call(lambda n: {i: p.size for i, p in n.state.accounts[account].positions.items()})
    assert positions.result(5) == {0: 500}  # 0.05 BTC in 0.0001 BTC lots
    journaled = quiet.node.call(lambda n: [decode_tx(e.payload) for e in n.seq.journal.entries()]).result(5)
    market = [tx for tx in journaled if isinstance(tx, Order) and tx.account == account and tx.order_type == 1]
    assert [(tx.price, tx.size, tx.tif) for tx in market] == [(1_050_006, 500, 2)]  # 100000.5 * 1.05 -> 105000.6, IOC
    pg.wait_for_selector("#tape .tick")

    # cancel all empties the open orders and the book level
    pg.click("#tabs button[data-tab='orders']")
    pg.click("#btn-cancel-all")
    pg.wait_for_selector("#orders tbody tr", state="detached")
    pg.wait_for_selector("#book-bids .lvl.mine", state="detached")

    # the risk view charts 16 scenarios for the position
    pg.click("#tabs button[data-tab='risk']")
    pg.wait_for_function("document.querySelector('#risk-summary').textContent.includes('Worst')")
    assert not errors, errors
    shot(pg, "quiet-trading")


def test_ticket_refuses_prices_off_the_tick(ui, quiet):
    pg, account, errors = ui
    pg.fill("#t-price", "99987.35")
    pg.fill("#t-size", "0.01")
    pg.click("#t-submit")
    assert "multiple of the tick 0.1" in pg.inner_text("#t-msg")
    orders = pg.evaluate(f"fetch('/api/v1/accounts/{account}').then(r => r.json()).then(a => a.open_orders.length)")
    assert orders == 0
    assert not errors, errors
