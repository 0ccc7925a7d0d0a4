"""The OpenAPI schema a running node serves is exactly the committed docs/openapi.json
(regenerate with ``python -m clearline.api.schema --write``)."""

import json

import httpx

from clearline.api.schema import SCHEMA_PATH


def test_served_schema_equals_the_committed_one(live):
    served = httpx.get(live.url + "/openapi.json").json()
    assert served == json.loads(SCHEMA_PATH.read_text()), \
        "docs/openapi.json is stale: python -m clearline.api.schema --write"
    paths = set(served["paths"])
    for p in ("/api/v1/info", "/api/v1/instruments", "/api/v1/book/{symbol}", "/api/v1/trades/{symbol}",
              "/api/v1/candles/{symbol}", "/api/v1/marks", "/api/v1/options/chain", "/api/v1/funding/{symbol}",
              "/api/v1/accounts", "/api/v1/accounts/{account_id}", "/api/v1/accounts/{account_id}/margin",
              "/api/v1/accounts/{account_id}/risk", "/api/v1/accounts/{account_id}/fills", "/api/v1/orders",
              "/api/v1/cancels", "/api/v1/replace", "/api/v1/withdrawals", "/api/v1/transfers", "/api/v1/l1",
              "/api/v1/demo/faucet", "/api/v1/session", "/api/v1/deadman", "/api/v1/heartbeat"):
        assert p in paths, p
