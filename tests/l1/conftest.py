"""Fixtures for the L1 tests: the same contracts on two real EVMs.

``env`` is parametrized over the backends: the in-process EVM (eth-tester + py-evm) and a real
anvil node started for the session (npm ``@foundry-rs/anvil-linux-amd64``, 127.0.0.1,
--prune-history).
Each backend deploys once per session; every test starts from a chain snapshot taken right
after deployment (the contracts, funded users, the genesis batch), so tests are independent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from clearline.core.state import Genesis, State
from clearline.l1.chain import Chain, InProcessChain, anvil_executable, start_anvil
from clearline.l1.client import L1Client
from clearline.l1.deploy import Deployment, deploy, predict_addresses

CHALLENGE_PERIOD = 100  # seconds
FORCED_DEADLINE = 1_000  # seconds
USER_FUNDS = 1_000_000_000  # 1,000 USD in usd6
N_USERS = 3


@dataclass
class L1Env:
    """One deployment on one backend: the sequencer's client and a few funded users."""

    backend: str
    chain: Chain
    deployment: Deployment
    genesis: Genesis
    genesis_root: bytes
    seq: L1Client
    users: list[L1Client]
    snapshot: object = field(default=None, repr=False)

    def client(self, account_index: int) -> L1Client:
        return self.seq.with_sender(self.chain.accounts[account_index])


def _make_env(backend: str, chain: Chain) -> L1Env:
    deployer = chain.accounts[0]
    predicted = predict_addresses(chain, deployer)
    genesis = Genesis(chain.chain_id, bytes.fromhex(predicted["rollup"][2:]), bytes.fromhex(deployer.address[2:]))
    root = State(genesis).root()
    deployment = deploy(
        chain,
        deployer=deployer,
        challenge_period=CHALLENGE_PERIOD,
        forced_deadline=FORCED_DEADLINE,
        genesis_state_root=root,
        genesis_config=genesis.to_json(),
    )
    assert deployment.rollup == predicted["rollup"] and deployment.vault == predicted["vault"]
    seq = L1Client(chain, deployment, deployer)
    users = [seq.with_sender(chain.accounts[i]) for i in range(1, N_USERS + 1)]
    for u in users:
        u.mint(u.address, USER_FUNDS)
        u.approve(2**256 - 1)
    return L1Env(backend, chain, deployment, genesis, root, seq, users)


@pytest.fixture(scope="session")
def anvil_node():
    if anvil_executable() is None:
        pytest.skip("anvil unavailable: node_modules/.bin/anvil missing (run `npm ci` at the repo root; Linux x64)")
    node = start_anvil()
    yield node
    node.stop()


@pytest.fixture(scope="session", params=["in-process", "anvil"])
def l1_session(request):
    if request.param == "anvil":
        node = request.getfixturevalue("anvil_node")
        chain = node.chain()
    else:
        chain = InProcessChain()
    env = _make_env(request.param, chain)
    env.snapshot = chain.snapshot()
    return env


@pytest.fixture
def env(l1_session: L1Env) -> L1Env:
    """A fresh deployment (the session's, rewound to its post-deployment snapshot)."""
    chain = l1_session.chain
    chain.revert_to(l1_session.snapshot)
    l1_session.snapshot = chain.snapshot()
    return l1_session
