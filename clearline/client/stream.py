"""``Stream``: WebSocket subscriptions that survive disconnects without losing a message.

A background thread runs the connection. Each channel's last sequence number is remembered;
after a disconnect the stream reconnects (with backoff) and subscribes again with ``since``
and the node's ``epoch``, so the node replays what was missed or sends a fresh snapshot
(``type == "snapshot"`` with a ``reason``: reset your copy). An update that skips a number is
never delivered out of order: the stream resubscribes from its last number instead
(``gaps`` counts these; it stays 0 against a correct node). Duplicates are dropped.

Messages arrive on ``messages`` (a ``queue.Queue``) and, if given, to ``on_message(msg)`` on
the stream's thread.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading

import websockets

__all__ = ["Stream"]


class Stream:
    def __init__(self, base_url: str, channels, *, on_message=None, login=None, cancel_on_disconnect: bool = False,
                 deadman_s: float | None = None, reconnect_delay: float = 0.1, max_delay: float = 5.0):
        url = base_url.rstrip("/")
        self.url = ("wss://" + url[8:] if url.startswith("https://") else "ws://" + url.split("://", 1)[-1]) + \
            "/api/v1/ws"
        self.channels = list(channels)
        self.on_message = on_message
        self.login = login  # callable -> signed login fields, called on every (re)connect
        self.cancel_on_disconnect = cancel_on_disconnect
        self.deadman_s = deadman_s
        self.reconnect_delay = reconnect_delay
        self.max_delay = max_delay
        self.messages: queue.Queue = queue.Queue()
        self.last: dict[str, int] = {}
        self.epoch: str | None = None
        self.gaps = 0
        self.reconnects = 0
        self.errors: list[dict] = []
        self.connected = threading.Event()
        self._stopped = False
        self._ws = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="clearline-stream",
                                        daemon=True)
        self._thread.start()

    # -- control (any thread) ------------------------------------------------------------------
    def get(self, timeout: float = 5.0) -> dict:
        return self.messages.get(timeout=timeout)

    def send(self, msg: dict) -> None:
        loop, ws = self._loop, self._ws
        if loop is not None and ws is not None:
            asyncio.run_coroutine_threadsafe(ws.send(json.dumps(msg)), loop)

    def heartbeat(self) -> None:
        self.send({"op": "heartbeat"})

    def drop_connection(self) -> None:
        """Close the current socket (the stream reconnects and resumes): for tests and drills."""
        loop, ws = self._loop, self._ws
        if loop is not None and ws is not None:
            asyncio.run_coroutine_threadsafe(ws.close(), loop)

    def close(self, timeout: float = 5.0) -> None:
        self._stopped = True
        self.drop_connection()
        self._thread.join(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the connection loop ----------------------------------------------------------------------
    def _subscribe_msg(self, channel: str) -> dict:
        msg = {"op": "subscribe", "channel": channel}
        if channel in self.last and self.epoch is not None:
            msg.update(since=self.last[channel], epoch=self.epoch)
        return msg

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        delay = self.reconnect_delay
        while not self._stopped:
            try:
                async with websockets.connect(self.url, max_size=1 << 24, open_timeout=5) as ws:
                    self._ws = ws
                    if self.login is not None:
                        msg = {"op": "login", **self.login(), "cancel_on_disconnect": self.cancel_on_disconnect}
                        if self.deadman_s is not None:
                            msg["deadman_s"] = self.deadman_s
                        await ws.send(json.dumps(msg))
                    for ch in self.channels:
                        await ws.send(json.dumps(self._subscribe_msg(ch)))
                    self.connected.set()
                    delay = self.reconnect_delay
                    async for raw in ws:
                        await self._handle(ws, json.loads(raw))
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException):
                pass
            self._ws = None
            self.connected.clear()
            if self._stopped:
                return
            self.reconnects += 1
            await asyncio.sleep(delay)
            delay = min(self.max_delay, delay * 2)

    async def _handle(self, ws, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "subscribed":
            self.epoch = msg.get("epoch", self.epoch)
        elif kind == "snapshot":
            self.epoch = msg.get("epoch", self.epoch)
            self.last[msg["channel"]] = msg["seq"]
        elif kind == "update":
            ch, seq = msg["channel"], msg["seq"]
            last = self.last.get(ch)
            if last is not None and seq <= last:
                return  # already delivered (a replay overlapping what arrived live)
            if last is not None and seq != last + 1:
                self.gaps += 1
                await ws.send(json.dumps(self._subscribe_msg(ch)))
                return
            self.last[ch] = seq
        elif kind == "error":
            self.errors.append(msg)
        self.messages.put(msg)
        if self.on_message is not None:
            self.on_message(msg)
