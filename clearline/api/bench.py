"""API benchmarks (figures, never assertions): ``api_orders_per_s``, the order round trip over
the API (``api_order_rtt_p50_ms`` / ``p99``) and ``ws_fanout_msgs_per_s``.

The node and its API server run in this process exactly as in the demo (node thread, uvicorn
thread); the load runs in a separate Python process (``python -m clearline.api.bench load|fanout``)
so client work does not compete for this process's GIL. Orders are signed beforehand, so signing
is not measured; the node still recovers every signature.

- orders: ``CONNECTIONS`` keep-alive HTTP/1.1 connections post pre-signed resting orders of
  ``ACCOUNTS`` funded accounts (rate limits set out of the way), as fast as answers come back;
- batched orders: the same load through ``POST /orders/batch``, ``BATCH`` orders of one account
  per request (``api_batch_orders_per_s`` counts orders, not requests);
- round trip: one connection, one order at a time, each timed from send to full response;
- fan-out: 100 WebSocket subscribers of ``book:BTC-PERP`` while orders change the book (in-memory
  journal, so the update rate is not bounded by fsync); the figure is messages delivered to all
  subscribers per second (first to last update received, after production stops and the queues
  drain).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

__all__ = ["bench_api_orders", "bench_ws_fanout", "run_api_benchmarks"]

ACCOUNTS = 32
CONNECTIONS = 32
BATCH = 20  # orders per POST /orders/batch in the batch figure
SUBSCRIBERS = 100


# -- node side (this process) ---------------------------------------------------------------------
class _BenchNode:
    def __init__(self, workdir: str, durable: bool = True):
        from ..core.txs import Deposit
        from ..journal import open_journal
        from ..node import NodeService
        from ..sequencer import Sequencer
        from ..sim.market import demo_genesis, demo_key
        from .server import ApiServer

        self.genesis = demo_genesis(1)
        path = os.path.join(workdir, f"bench-{time.time_ns()}.sqlite") if durable else "sqlite://"
        self.seq = Sequencer(open_journal(path), self.genesis, workers=2)
        self.node = NodeService(self.seq, operator_key=demo_key(1, "operator")).start()
        self.server = ApiServer(self.node, 0, rate=1e9, burst=10**9).start()
        self.keys = [demo_key(99, f"bench-{i}") for i in range(ACCOUNTS)]
        from ..core.eip712 import address_of

        def fund(n):
            return [n.commit([Deposit(0, n.state.l1_queue_pos, address_of(k), 0, 10**12 * 1_000_000)])[0]
                    .receipt.events[0].to_account for k in self.keys]
        self.accounts = self.node.call(fund).result(30)

    def order_bodies(self, per_account: int, symbol: str = "BTC-PERP", nonce0: int = 1) -> list[str]:
        """Pre-signed JSON bodies of resting orders (bids below, asks above the mark)."""
        from ..core import eip712
        from ..core.txs import Order
        from .numbers import fmt_lots, fmt_ticks

        spec = next(m.spec for m in self.seq.state.markets.values() if m.spec.symbol == symbol)
        mark = self.seq.state.markets[spec.id].mark_price
        domain = self.seq.state.domain
        out = []
        for k in range(per_account):
            for key, aid in zip(self.keys, self.accounts):
                side = k % 2
                price = mark - 10 - (k % 40) if side == 0 else mark + 10 + (k % 40)
                size = 1 + k % 5
                tx = Order(0, aid, spec.id, side, 0, 0, 0, 0, price, size, 0, 0, nonce0 + k)
                sig = eip712.sign(domain, tx, key)
                out.append(json.dumps({"account": aid, "symbol": symbol, "side": ("buy", "sell")[side],
                                       "price": fmt_ticks(price, spec.tick_size), "size": fmt_lots(size, spec.lot_size),
                                       "nonce": nonce0 + k, "signature": "0x" + sig.hex()}, separators=(",", ":")))
        return out

    def payloads(self, per_account: int, nonce0: int) -> list[bytes]:
        """Pre-signed ABI payloads that keep changing the top of the book without growing it:
        each account alternately places an order (client id k) and cancels it by client id."""
        from ..core import eip712
        from ..core.encoding import encode_tx
        from ..core.txs import Cancel, CancelScope, Order

        st = self.seq.state
        mark = st.markets[0].mark_price
        out = []
        for k in range(per_account):
            for j, (key, aid) in enumerate(zip(self.keys, self.accounts)):
                if k % 2 == 0:
                    side = j % 2
                    price = mark - 1 - (j + k) % 20 if side == 0 else mark + 1 + (j + k) % 20
                    tx = Order(0, aid, 0, side, 0, 0, 0, 0, price, 1 + k % 3, 0, k + 1, nonce0 + k)
                else:
                    tx = Cancel(0, aid, CancelScope.BY_CLIENT_ID, 0, 0, k, nonce0 + k)
                tx.signature = eip712.sign(st.domain, tx, key)
                out.append(encode_tx(tx))
        return out

    def close(self) -> None:
        self.server.stop()
        self.node.stop()
        self.seq.close()


def _run_child(mode: str, port: int, data_path: str, timeout: float = 300) -> dict:
    proc = subprocess.run([sys.executable, "-m", "clearline.api.bench", mode, str(port), data_path],
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"bench {mode} client failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_api_orders(workdir: str, per_account: int = 150, rtt_orders: int = 400) -> dict:
    """One run: throughput of concurrent signed orders, then sequential round trips."""
    bn = _BenchNode(workdir)
    try:
        bodies = bn.order_bodies(per_account)
        rtt = bn.order_bodies(max(1, rtt_orders // ACCOUNTS), symbol="ETH-PERP", nonce0=per_account + 1)
        path = os.path.join(workdir, "orders.json")
        with open(path, "w") as f:
            json.dump({"bodies": bodies, "rtt": rtt, "connections": CONNECTIONS}, f)
        res = _run_child("load", bn.server.port, path)
        accepted = bn.node.call(lambda n: len(n.state.orders)).result(30)
        if accepted < len(bodies):
            raise RuntimeError(f"only {accepted} of {len(bodies)} orders rest on the book: {res.get('errors')}")
        # the same load through POST /orders/batch: BATCH orders of one account per request
        more = bn.order_bodies(per_account, nonce0=per_account + rtt_orders + 1)
        per = [more[j::ACCOUNTS] for j in range(ACCOUNTS)]  # each account's orders, nonces increasing
        batches = ['{"orders":[' + ",".join(per[j][b:b + BATCH]) + "]}"
                   for b in range(0, per_account, BATCH) for j in range(ACCOUNTS)]
        with open(path, "w") as f:
            json.dump({"bodies": batches, "rtt": [], "connections": CONNECTIONS, "path": "/api/v1/orders/batch"}, f)
        batch = _run_child("load", bn.server.port, path)
        accepted2 = bn.node.call(lambda n: len(n.state.orders)).result(30) - accepted
        if accepted2 < len(more):
            raise RuntimeError(f"only {accepted2} of {len(more)} batched orders rest: {batch.get('errors')}")
        res["batch_orders_per_s"] = len(more) / batch["seconds"]
        return res
    finally:
        bn.close()


def bench_ws_fanout(workdir: str, seconds: float = 3.0, subscribers: int = SUBSCRIBERS) -> dict:
    """The book changes as fast as the node applies small groups of orders (in-memory journal:
    the figure is about the hub's fan-out, not fsync); every change is one update message."""
    bn = _BenchNode(workdir, durable=False)
    try:
        payloads = bn.payloads(400, 1)
        path = os.path.join(workdir, "fanout.json")
        with open(path, "w") as f:
            json.dump({"subscribers": subscribers, "symbol": "BTC-PERP"}, f)
        proc = subprocess.Popen([sys.executable, "-m", "clearline.api.bench", "fanout", str(bn.server.port), path],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = proc.stdout.readline()
        if not ready.startswith("ready"):
            raise RuntimeError(f"fan-out clients did not start: {proc.stderr.read()[-2000:]}")
        produced = 0
        t_end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < t_end and i < len(payloads):
            chunk = payloads[i:i + 8]
            i += 8
            bn.node.submit_payloads(chunk).result(30)
            produced += 1
        out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"fan-out clients failed: {err[-2000:]}")
        res = json.loads(out.strip().splitlines()[-1])
        res["updates_published"] = bn.node.bus.seqs.get("book:BTC-PERP", 0)
        return res
    finally:
        bn.close()


def run_api_benchmarks(repeats: int = 3) -> dict:
    """Medians of ``repeats`` runs of each benchmark."""
    runs, fan = [], []
    with tempfile.TemporaryDirectory(prefix="clearline-apibench-") as wd:
        for _ in range(repeats):
            runs.append(bench_api_orders(wd))
        for _ in range(repeats):
            fan.append(bench_ws_fanout(wd))
    return {
        "api_orders_per_s": round(statistics.median(r["orders_per_s"] for r in runs)),
        "api_batch_orders_per_s": round(statistics.median(r["batch_orders_per_s"] for r in runs)),
        "api_order_rtt_p50_ms": round(statistics.median(r["rtt_p50_ms"] for r in runs), 3),
        "api_order_rtt_p99_ms": round(statistics.median(r["rtt_p99_ms"] for r in runs), 3),
        "ws_fanout_msgs_per_s": round(statistics.median(f["msgs_per_s"] for f in fan)),
        "ws_fanout_subscribers": SUBSCRIBERS,
    }


# -- client side (child process) ---------------------------------------------------------------------
async def _http_conn(port: int):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return reader, writer


async def _post(reader, writer, body: bytes, path: bytes = b"/api/v1/orders") -> int:
    writer.write(b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _load(port: int, data: dict) -> dict:
    bodies = [b.encode() for b in data["bodies"]]
    path = data.get("path", "/api/v1/orders").encode()
    n_conn = data["connections"]
    errors: dict[int, int] = {}

    async def worker(part):
        reader, writer = await _http_conn(port)
        for b in part:
            status = await _post(reader, writer, b, path)
            if status != 200:
                errors[status] = errors.get(status, 0) + 1
        writer.close()

    parts = [bodies[i::n_conn] for i in range(n_conn)]
    t = time.perf_counter()
    await asyncio.gather(*(worker(p) for p in parts))
    dt = time.perf_counter() - t
    reader, writer = await _http_conn(port)
    lat = []
    for b in data["rtt"]:
        t0 = time.perf_counter()
        status = await _post(reader, writer, b.encode())
        lat.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            errors[status] = errors.get(status, 0) + 1
    writer.close()
    out = {"requests": len(bodies), "seconds": round(dt, 3), "orders_per_s": len(bodies) / dt, "errors": errors}
    if lat:
        lat.sort()
        out.update(rtt_p50_ms=lat[len(lat) // 2], rtt_p99_ms=lat[min(len(lat) - 1, int(len(lat) * 0.99))])
    return out


async def _fanout(port: int, data: dict) -> dict:
    import websockets

    channel = f"book:{data['symbol']}"
    counts = [0] * data["subscribers"]
    first: list[float] = []
    last = [0.0]
    ready = asyncio.Event()
    subscribed = [0]

    async def sub(i):
        async with websockets.connect(f"ws://127.0.0.1:{port}/api/v1/ws", max_size=1 << 24) as ws:
            await ws.send(json.dumps({"op": "subscribe", "channel": channel}))
            while True:
                raw = await ws.recv()
                if '"snapshot"' in raw[:40]:
                    subscribed[0] += 1
                    if subscribed[0] == len(counts):
                        ready.set()
                    continue
                if '"update"' in raw[:20]:
                    now = time.perf_counter()
                    if not first:
                        first.append(now)
                    last[0] = now
                    counts[i] += 1

    tasks = [asyncio.create_task(sub(i)) for i in range(len(counts))]
    await asyncio.wait_for(ready.wait(), 60)
    print("ready", flush=True)
    total = -1
    while True:  # until the stream has been quiet for a second
        await asyncio.sleep(1.0)
        if sum(counts) == total and total > 0:
            break
        total = sum(counts)
    for t in tasks:
        t.cancel()
    span = last[0] - first[0] if first else 0.0
    return {"messages": total, "seconds": round(span, 3), "msgs_per_s": total / span if span else 0.0,
            "per_subscriber_min": min(counts), "per_subscriber_max": max(counts)}


def _child(argv: list[str]) -> int:
    mode, port, path = argv[0], int(argv[1]), argv[2]
    with open(path) as f:
        data = json.load(f)
    res = asyncio.run(_load(port, data) if mode == "load" else _fanout(port, data))
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
