"""The trading screen against a stand-in API (mock_api.py): every view renders from the
documented shapes, and every signed write the page sends converts and verifies exactly as the
node would (the mock recovers each signature with clearline.core.eip712)."""

from __future__ import annotations

import pytest
from conftest import VIEWPORT
from mock_api import ACCOUNT, MockNode


@pytest.fixture
def ui(browser, static_server):
    ctx = browser.new_context(viewport=VIEWPORT)
    node = MockNode()
    node.install(ctx)
    pg = ctx.new_page()
    errors = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(static_server + "/")
    pg.wait_for_selector("#app[data-ready='1']", timeout=15000)
    try:
        yield pg, node, errors
    finally:
        ctx.close()


def test_market_views_render(ui, shot):
    pg, node, errors = ui
    pg.wait_for_selector("#book-asks .lvl")
    assert pg.locator("#book-bids .lvl").count() >= 5
    assert pg.locator("#book-asks .lvl").last.get_attribute("data-price") == "99990.5"  # best ask next to the mid
    pg.wait_for_selector("#tape .tick")
    assert pg.inner_text("#st-mark") == "99,991.2"
    assert pg.locator("#price-chart canvas").count() >= 1
    assert "live" in pg.inner_text("#conn")
    pg.click("#tabs button[data-tab='options']")
    pg.wait_for_selector("#chain tbody tr")
    assert pg.locator("#chain tbody tr").count() == 5
    assert "%" in pg.locator("#chain tbody tr").first.inner_text()  # IV column
    pg.click("#tabs button[data-tab='l1']")
    pg.wait_for_selector("#l1-batches tbody tr")
    assert pg.locator("#l1-batches tbody tr").count() == 14
    assert "finalized" in pg.inner_text("#l1-batches")
    assert not errors, errors


def test_wallet_funds_orders_fill_and_cancel(ui, shot):
    pg, node, errors = ui
    addr = pg.get_attribute("#app", "data-address")
    pg.click("#btn-faucet")
    pg.wait_for_selector(f"#app[data-account='{ACCOUNT}']")
    assert node.owner == addr
    pg.wait_for_function("document.querySelector('#a-collateral').textContent.includes('10,000')")

    # a resting limit order: signed, verified by the mock, on the book and in open orders
    pg.fill("#t-price", "99987.3")
    pg.fill("#t-size", "0.0123")
    assert pg.inner_text("#t-notional") == "1,229.84 USD"  # 999873 ticks * 123 lots * 10 usd6
    pg.click("#t-submit")
    pg.wait_for_selector("#orders tbody tr[data-order-id='100']", state="attached")
    assert "resting" in pg.inner_text("#t-msg")
    assert node.writes[-1]["price"] == "99987.3" and node.writes[-1]["size"] == "0.0123"
    pg.wait_for_selector("#book-bids .lvl.mine[data-price='99987.3']")

    # a crossing market order fills: position and margin update
    pg.click("#t-market")
    pg.fill("#t-size", "0.05")
    pg.click("#t-submit")
    pg.wait_for_selector("#positions tbody tr[data-symbol='BTC-PERP']")
    assert "filled" in pg.inner_text("#t-msg")
    assert node.writes[-1]["tif"] == "IOC" and node.writes[-1]["type"] == "market"
    assert node.writes[-1]["price"] == "104990.1"  # 5% through the best ask 99990.5, rounded up to the tick
    pg.wait_for_function("document.querySelector('#a-initial').textContent !== '0.00'")

    # cancel all
    pg.click("#tabs button[data-tab='orders']")
    pg.click("#btn-cancel-all")
    pg.wait_for_selector("#orders tbody tr", state="detached")
    assert node.writes[-1]["scope"] == "all"

    # risk view
    pg.click("#tabs button[data-tab='risk']")
    pg.wait_for_function("document.querySelector('#risk-summary').textContent.includes('Worst')")
    assert not node.rejects, node.rejects
    assert not errors, errors
    shot(pg, "mock-trading")


def test_ticket_refuses_prices_off_the_tick(ui):
    pg, node, errors = ui
    pg.click("#btn-faucet")
    pg.wait_for_selector(f"#app[data-account='{ACCOUNT}']")
    pg.fill("#t-price", "99987.35")
    pg.fill("#t-size", "0.01")
    pg.click("#t-submit")
    assert "multiple of the tick 0.1" in pg.inner_text("#t-msg")
    assert not node.writes
