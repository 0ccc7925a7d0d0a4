"""A live node for the API and SDK tests (tests/api, tests/client): the real NodeService and
uvicorn on 127.0.0.1 (a free port), real HTTP and WebSocket, no mocks. Light: no L1, no
simulated market (the demo genesis's initial perpetual marks are enough to trade); fresh funded
accounts per test (``trader``)."""

from __future__ import annotations

import itertools
import os
import time

import pytest

from clearline.api.server import ApiServer
from clearline.core import eip712
from clearline.core.hashing import keccak
from clearline.core.txs import Deposit
from clearline.journal import open_journal
from clearline.node import NodeService
from clearline.sequencer import Sequencer
from clearline.sim.market import demo_genesis, demo_key

USD6 = 1_000_000
_keys = itertools.count(1)


class Live:
    """A running node + API server; ``journal_path`` for replay checks."""

    def __init__(self, tmp_path, **app_kw):
        self.journal_path = str(tmp_path / "journal.sqlite")
        self.genesis = demo_genesis(1)
        self.operator_key = demo_key(1, "operator")
        self.seq = Sequencer(open_journal(self.journal_path), self.genesis, workers=1)
        self.node = NodeService(self.seq, operator_key=self.operator_key, demo=True).start()
        self.server = ApiServer(self.node, 0, **app_kw).start()
        self.url = self.server.url
        self.api = self.server.api

    def new_key(self) -> bytes:
        return keccak(f"api-test/{os.getpid()}/{next(_keys)}/{time.time_ns()}".encode())

    def fund(self, key: bytes, amount_usd: int = 100_000, subaccount: int = 0) -> int:
        """Deposit for ``key``'s address through the node's intake (as the L1 feeder does)."""
        return self.fund_owner(eip712.address_of(key), amount_usd, subaccount)

    def fund_owner(self, owner: bytes, amount_usd: int = 100_000, subaccount: int = 0) -> int:
        """Deposit for an address whose key lives elsewhere (a browser wallet); the account id."""

        def deposit(n):
            (ack,) = n.commit([Deposit(0, n.state.l1_queue_pos, owner, subaccount, amount_usd * USD6)])
            assert ack.receipt.ok, ack.receipt
            return n.state.account_ids[(owner, subaccount)]
        return self.node.call(deposit).result(10)

    def trader(self, amount_usd: int = 100_000):
        from clearline.client import Client

        key = self.new_key()
        account = self.fund(key, amount_usd)
        return Client(self.url, key, account=account), account

    def stop(self) -> None:
        self.server.stop()
        self.node.stop()
        self.seq.close()



def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


# -- pytest fixtures shared by tests/api and tests/client (their conftest files import these)
@pytest.fixture(scope="session")
def live(tmp_path_factory):
    node = Live(tmp_path_factory.mktemp("live"))
    yield node
    node.stop()


@pytest.fixture(scope="session")
def tight(tmp_path_factory):
    """A node with a tiny rate limit (burst 3, 1/s) and a tiny stream ring (8 messages)."""
    node = Live(tmp_path_factory.mktemp("tight"), rate=1.0, burst=3, ws_ring=8)
    yield node
    node.stop()
