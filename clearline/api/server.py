"""Serve the API with uvicorn on a loopback port, in a background thread.

The port is bound here (``bind_loopback``): the requested one if it is free, else (with
``fallback``) any free port, so two demos or parallel tests never collide. Only 127.0.0.1.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from .app import create_app

__all__ = ["ApiServer", "bind_loopback", "HOST", "DEFAULT_PORT"]

HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def bind_loopback(port: int, fallback: bool = True) -> socket.socket:
    """A listening-ready socket on 127.0.0.1:``port`` (0 = any free port)."""
    for candidate in ((port, 0) if fallback and port else (port,)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # inherited by accepted connections: without it, a response written in two parts waits for
        # the client's delayed ACK (~40 ms per request)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            s.bind((HOST, candidate))
        except OSError:
            s.close()
            continue
        return s
    raise OSError(f"cannot bind {HOST}:{port}")


class ApiServer:
    """``ApiServer(node).start()`` -> serving at ``.url`` until ``.stop()``."""

    def __init__(self, node, port: int = 0, *, fallback: bool = True, log_level: str = "warning", **app_kw):
        self.node = node
        self.app = create_app(node, **app_kw)
        self.sock = bind_loopback(port, fallback)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{HOST}:{self.port}"
        config = uvicorn.Config(self.app, log_level=log_level, access_log=False, lifespan="on",
                                ws_max_size=1 << 20, timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def api(self):
        return self.app.state.api

    def start(self, timeout: float = 10.0) -> "ApiServer":
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                       name="clearline-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout)
            self.thread = None
        self.sock.close()
