"""The trading API: FastAPI REST under /api/v1, WebSocket streams, the web UI (docs/API.md).

``create_app(node)`` builds the ASGI app for a ``clearline.node.NodeService``;
``ApiServer`` serves it with uvicorn on a loopback port in a background thread.
"""

__all__ = ["ApiServer", "create_app"]


def __getattr__(name: str):
    # lazy: clearline.node imports clearline.api.numbers, which must not drag FastAPI in
    if name == "create_app":
        from .app import create_app

        return create_app
    if name == "ApiServer":
        from .server import ApiServer

        return ApiServer
    raise AttributeError(name)
