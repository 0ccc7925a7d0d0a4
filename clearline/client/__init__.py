"""clearline Python SDK: sign and place orders, cancel, replace, withdraw, and stream.

    from clearline.client import Client
    c = Client("http://127.0.0.1:8700", key="0x…")          # the key never leaves this process
    r = c.place_order("BTC-PERP", "buy", "65000.5", "0.01")  # decimal strings in, exact ints signed
    c.cancel(r.order_id)
    with c.stream(["book:BTC-PERP", f"fills:{c.account}"]) as s:  # reconnects and resumes by seq
        msg = s.get()

Errors raise ``ClearlineError`` (``code``, ``name``, ``message``); ``RateLimitedError`` carries
``retry_after_ms``.
"""

from .http import Client, Heartbeat
from .stream import Stream
from .types import CancelResult, ClearlineError, Fill, OrderResult, RateLimitedError, WithdrawResult

__all__ = ["CancelResult", "ClearlineError", "Client", "Fill", "Heartbeat", "OrderResult", "RateLimitedError",
           "Stream", "WithdrawResult"]
