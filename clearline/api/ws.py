"""WebSocket streams: the hub that fans node messages out, and one handler per connection.

The node thread numbers and encodes every message once (``node.bus``); ``Hub.publish`` hands
a batch of them to the event loop, which appends each to its channel's ring buffer (the last
``RING`` messages) and queues the same string to every subscriber. A subscriber that falls
more than ``MAX_QUEUE`` messages behind is disconnected (close code 4008) rather than silently
skipped: it resumes with ``since`` like after any disconnect.

Resume: ``subscribe`` with ``since`` (last seq seen) and ``epoch`` replays ``since+1 ..`` from
the ring when it still holds them; otherwise a fresh snapshot flagged with its ``reason``.
A snapshot with seq k is built on the node thread after update k; updates after k that reached
the hub before the snapshot did are replayed from the ring right after it, so the
subscriber's sequence has no gap.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque

from starlette.websockets import WebSocket, WebSocketDisconnect

from ..core.errors import ErrorCode
from ..core.txs import CancelTrigger
from .errors import ApiCode, ApiError, error_body

__all__ = ["Hub", "websocket_session", "RING", "MAX_QUEUE"]

RING = 1_000
MAX_QUEUE = 10_000
SLOW_CONSUMER = 4008
ACCOUNT_CHANNELS = ("orders", "fills", "positions", "margin")


class Conn:
    """One WebSocket: an outgoing queue drained by its own sender task."""

    def __init__(self, ws: WebSocket):
        self.ws = ws
        self.out: deque = deque()
        self.wake = asyncio.Event()
        self.channels: set[str] = set()
        self.closed = False
        self.account: int | None = None
        self.cancel_on_disconnect = False

    def send(self, text: str) -> None:
        if self.closed:
            return
        self.out.append(text)
        if len(self.out) > MAX_QUEUE:
            self.closed = True
            self.out.clear()
        self.wake.set()

    def send_json(self, obj: dict) -> None:
        self.send(json.dumps(obj, separators=(",", ":")))

    async def sender(self) -> None:
        ws = self.ws
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                if self.closed:
                    await ws.close(code=SLOW_CONSUMER, reason="slow consumer: resubscribe with since")
                    return
                out = self.out
                while out:
                    await ws.send_text(out.popleft())
        except Exception:  # the socket went away: the receive loop ends the session
            self.closed = True


class Hub:
    def __init__(self, node, ring: int = RING):
        self.node = node
        self.ring = ring
        self.epoch = node.epoch
        self.loop: asyncio.AbstractEventLoop | None = None
        self.rings: dict[str, deque] = {}
        self.last: dict[str, int] = {}
        self.subs: dict[str, set[Conn]] = {}
        self.delivered = 0

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start receiving the node's messages on ``loop``."""
        self.loop = loop
        self.node.bus.publish = self.publish

    def detach(self) -> None:
        if self.node.bus.publish == self.publish:
            self.node.bus.publish = lambda messages: None
        self.loop = None

    def publish(self, messages: list) -> None:
        """From the node thread: a batch of (channel, seq, json) in order."""
        loop = self.loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(self._dispatch, messages)
            except RuntimeError:  # the loop is closing
                pass

    def _dispatch(self, messages: list) -> None:
        rings, subs = self.rings, self.subs
        for channel, seq, text in messages:
            ring = rings.get(channel)
            if ring is None:
                ring = rings[channel] = deque(maxlen=self.ring)
            ring.append((seq, text))
            self.last[channel] = seq
            conns = subs.get(channel)
            if conns:
                for c in conns:
                    c.send(text)
                self.delivered += len(conns)

    # -- subscriptions ---------------------------------------------------------------------
    def check_channel(self, channel) -> None:
        if not isinstance(channel, str):
            raise ApiError(ApiCode.UNKNOWN_CHANNEL, "channel must be a string such as 'book:BTC-PERP'")
        name, sep, arg = channel.partition(":")
        if name == "marks" and not sep:
            return
        if name in ("book", "trades") and sep:
            if arg not in self.node.symbols:
                raise ApiError(ErrorCode.UNKNOWN_INSTRUMENT, f"unknown symbol {arg!r}: see GET /api/v1/instruments")
            return
        if name in ACCOUNT_CHANNELS and sep:
            if not arg.isdigit() or self.node.owner_of(int(arg)) is None:
                raise ApiError(ErrorCode.UNKNOWN_ACCOUNT, f"no account {arg}")
            return
        raise ApiError(ApiCode.UNKNOWN_CHANNEL,
                       f"unknown channel {channel!r}: book:{{symbol}}, trades:{{symbol}}, marks, "
                       f"orders:{{id}}, fills:{{id}}, positions:{{id}}, margin:{{id}}")

    async def subscribe(self, conn: Conn, channel: str, since, epoch, extra: dict | None = None) -> None:
        self.check_channel(channel)
        self.unsubscribe(conn, channel)
        conn.send_json({"type": "subscribed", "channel": channel, "epoch": self.epoch, **(extra or {})})
        reason = "subscribe"
        if since is not None:
            if not isinstance(since, int) or isinstance(since, bool) or since < 0:
                raise ApiError(ApiCode.BAD_OP, "since must be a non-negative integer")
            if epoch != self.epoch:
                reason = "new_epoch"
            else:
                last = self.last.get(channel, 0)
                ring = self.rings.get(channel)
                if since > last:
                    reason = "resume_ahead"
                elif since == last:
                    self._register(conn, channel)
                    return
                elif ring and ring[0][0] <= since + 1:
                    for seq, text in ring:
                        if seq > since:
                            conn.send(text)
                    self._register(conn, channel)
                    return
                else:
                    reason = "resume_too_old"
        bus = self.node.bus
        for _ in range(5):
            seq, data = await asyncio.wrap_future(self.node.call(lambda n: bus.snapshot(channel, n.state)))
            ring = self.rings.get(channel)
            last = self.last.get(channel, 0)
            if last > seq and not (ring and ring[0][0] <= seq + 1):
                continue  # the ring moved past the snapshot while it travelled: take another
            conn.send_json({"type": "snapshot", "channel": channel, "epoch": self.epoch, "seq": seq,
                            "reason": reason, "data": data})
            if last > seq:
                for s, text in ring:
                    if s > seq:
                        conn.send(text)
            self._register(conn, channel)
            return
        raise ApiError(ApiCode.OVERLOADED, f"{channel} moves too fast to snapshot; retry")

    def _register(self, conn: Conn, channel: str) -> None:
        self.subs.setdefault(channel, set()).add(conn)
        conn.channels.add(channel)

    def unsubscribe(self, conn: Conn, channel: str) -> None:
        conns = self.subs.get(channel)
        if conns is not None:
            conns.discard(conn)
        conn.channels.discard(channel)

    def drop(self, conn: Conn) -> None:
        for channel in list(conn.channels):
            self.unsubscribe(conn, channel)


async def websocket_session(ws: WebSocket, hub: Hub, api) -> None:
    """Serve one connection until it closes; then enforce cancel-on-disconnect."""
    await ws.accept()
    conn = Conn(ws)
    sender = asyncio.create_task(conn.sender())
    try:
        while not conn.closed:
            try:
                text = await ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                break
            await _handle(conn, text, hub, api)
    finally:
        conn.closed = True
        conn.wake.set()
        hub.drop(conn)
        sender.cancel()
        if conn.cancel_on_disconnect and conn.account is not None:
            account = conn.account
            api.node.call(lambda n: n.operator_cancel_all(account, CancelTrigger.DISCONNECT))


async def _handle(conn: Conn, text: str, hub: Hub, api) -> None:
    msg: dict = {}
    try:
        try:
            msg = json.loads(text)
        except ValueError:
            raise ApiError(ApiCode.BAD_OP, "frames must be JSON objects such as {\"op\": \"subscribe\", ...}")
        if not isinstance(msg, dict):
            raise ApiError(ApiCode.BAD_OP, "frames must be JSON objects")
        op = msg.get("op")
        if op == "subscribe":
            await hub.subscribe(conn, msg.get("channel"), msg.get("since"), msg.get("epoch"), _id(msg))
        elif op == "unsubscribe":
            hub.unsubscribe(conn, msg.get("channel"))
            conn.send_json({"type": "unsubscribed", "channel": msg.get("channel"), **_id(msg)})
        elif op == "login":
            reply = await api.ws_login(conn, msg)
            conn.send_json({"type": "login", **reply, **_id(msg)})
        elif op == "heartbeat":
            if conn.account is None:
                raise ApiError(ApiCode.UNAUTHORIZED, "log in first ({\"op\": \"login\", ...})")
            status = await api.heartbeat(conn.account)
            conn.send_json({"type": "heartbeat", "account": conn.account, "time_ms": api.node.wall(),
                            "deadline_ms": status["deadline_ms"], **_id(msg)})
        else:
            raise ApiError(ApiCode.BAD_OP, f"unknown op {op!r}: subscribe, unsubscribe, login, heartbeat")
    except ApiError as e:
        conn.send_json({"type": "error", "op": msg.get("op"), "channel": msg.get("channel"), **_id(msg),
                        **error_body(e.code, e.message)})


def _id(msg: dict) -> dict:
    return {"id": msg["id"]} if "id" in msg else {}
