"""The L1 side through the API, on an embedded EVM: the demo faucet deposits through the Vault
for a browser-style address (no key on the node), the node feeds the queue item in, and a
withdrawal signed by that address goes pending -> batched -> finalized -> paid in /l1."""

from __future__ import annotations

import time

import httpx
import pytest

from clearline.api.server import ApiServer
from clearline.batcher.harness import make_sim_rollup
from clearline.client import Client
from clearline.core.hashing import keccak
from clearline.l1.chain import InProcessChain
from clearline.node import NodeService
from clearline.node.l1 import L1Worker
from live_node import wait_for


@pytest.fixture(scope="module")
def l1node():
    chain = InProcessChain(n_accounts=8)
    r = make_sim_rollup(chain, makers=1, takers=1, leveraged=0, challenge_period=2, max_delay_ms=300)
    node = NodeService(r.sequencer, operator_key=r.sim.operator_key, demo=True)
    t0, start = chain.now(), time.monotonic()
    worker = L1Worker(node, r, period_s=0.2, chain_time=lambda: t0 + (time.monotonic() - start) * 4,
                      auto_claim=True, faucet_account=chain.accounts[-1])
    node.start()
    worker.start()
    server = ApiServer(node, 0).start()
    yield server.url, r
    server.stop()
    worker.stop()
    node.stop()


def test_faucet_deposit_then_withdrawal_is_paid_on_l1(l1node):
    url, r = l1node
    key = keccak(b"browser-wallet")
    c = Client(url, key)
    res = httpx.post(url + "/api/v1/demo/faucet", json={"address": c.address, "amount": "2500"}, timeout=30).json()
    assert res["amount"] == "2500" and res["queue_index"] >= 0 and res["l1_tx"].startswith("0x")
    rows = wait_for(lambda: httpx.get(url + "/api/v1/accounts", params={"owner": c.address}).json()["accounts"])
    assert c.account == rows[0]["id"] and c.account_state()["collateral"] == "2500"
    w = c.withdraw("100")

    def status():
        ws = [x for x in httpx.get(url + "/api/v1/l1").json()["withdrawals"] if x["seq"] == w.seq]
        return ws and ws[0]["status"] == "paid" and ws[0]
    paid = wait_for(status, timeout=30, interval=0.2)
    assert paid["amount"] == "100" and paid["batch"] >= 1
    assert r.client.with_sender(r.chain.accounts[0]).token_balance(c.address) == 100_000_000
    l1 = httpx.get(url + "/api/v1/l1").json()
    assert l1["enabled"] and l1["finalized_height"] >= paid["batch"] and l1["frozen"] is False
    b = l1["batches"][0]
    assert b["state_root"].startswith("0x") and len(b["state_root"]) == 66 and b["txs"] >= 1
    assert l1["queue"]["consumed_l2"] == l1["queue"]["length"]
    bad = httpx.post(url + "/api/v1/demo/faucet", json={"address": "0x12", "amount": "1"})
    assert bad.status_code == 400
