"""A fresh anvil node per test module, shared by the modules that run a flow on a real
JSON-RPC node (import the fixture: ``from anvil_env import anvil``)."""

from __future__ import annotations

import pytest

from clearline.l1.chain import anvil_executable, start_anvil


@pytest.fixture(scope="module")
def anvil():
    if anvil_executable() is None:
        pytest.skip("anvil unavailable: node_modules/.bin/anvil missing (run `npm ci` at the repo root; Linux x64)")
    node = start_anvil()
    yield node
    node.stop()
