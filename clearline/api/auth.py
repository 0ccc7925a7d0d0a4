"""Who may use the market-maker safety features, and how often anyone may write.

- ``Login(uint32 account,uint64 timestamp)``: an EIP-712 message in the rollup's domain that
  the account owner signs to open a session (REST token or WebSocket login). It is not a
  transaction -- it changes no state -- so it lives here, not in the core; the timestamp must be
  within ``LOGIN_WINDOW_MS`` of the node's clock, which bounds replays.
- ``Sessions``: bearer tokens handed out for a verified login.
- ``RateLimiter``: a token bucket per account for signed writes.

Event-loop thread only (no locks).
"""

from __future__ import annotations

import secrets
import struct

from coincurve import PrivateKey

from ..core import eip712
from ..core.hashing import keccak

__all__ = ["LOGIN_TYPE", "LOGIN_FIELDS", "LOGIN_WINDOW_MS", "login_digest", "login_typed_data", "sign_login",
           "recover_login", "Sessions", "RateLimiter"]

LOGIN_TYPE = "Login(uint32 account,uint64 timestamp)"
LOGIN_FIELDS = [("account", "uint32"), ("timestamp", "uint64")]
LOGIN_WINDOW_MS = 60_000
SESSION_MS = 86_400_000
_LOGIN_TYPEHASH = keccak(LOGIN_TYPE.encode())
_LOGIN = struct.Struct(">32s28xI24xQ")


def login_digest(domain: eip712.Domain, account: int, timestamp_ms: int) -> bytes:
    struct_hash = keccak(_LOGIN.pack(_LOGIN_TYPEHASH, account, timestamp_ms))
    return keccak(b"\x19\x01" + domain.separator + struct_hash)


def login_typed_data(domain: eip712.Domain, account: int, timestamp_ms: int) -> dict:
    return {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"}, {"name": "version", "type": "string"},
                                   {"name": "chainId", "type": "uint256"},
                                   {"name": "verifyingContract", "type": "address"}],
                  "Login": [{"name": n, "type": t} for n, t in LOGIN_FIELDS]},
        "primaryType": "Login",
        "domain": {"name": eip712.DOMAIN_NAME, "version": eip712.DOMAIN_VERSION, "chainId": domain.chain_id,
                   "verifyingContract": eip712._checksum(domain.verifying_contract)},
        "message": {"account": account, "timestamp": timestamp_ms},
    }


def sign_login(domain: eip712.Domain, account: int, timestamp_ms: int, private_key: bytes) -> bytes:
    sig = PrivateKey(private_key).sign_recoverable(login_digest(domain, account, timestamp_ms), hasher=None)
    return sig[:64] + bytes((sig[64] + 27,))


def recover_login(domain: eip712.Domain, account: int, timestamp_ms: int, signature: bytes) -> bytes:
    """The signer's address (raises ``Rejected`` for a malformed signature)."""
    return eip712.recover(login_digest(domain, account, timestamp_ms), signature)


class Sessions:
    def __init__(self):
        self._tokens: dict[str, tuple[int, int]] = {}  # token -> (account, expires wall ms)

    def open(self, account: int, now_ms: int) -> dict:
        token = secrets.token_hex(16)
        expires = now_ms + SESSION_MS
        self._tokens[token] = (account, expires)
        return {"token": token, "account": account, "expires_ms": expires}

    def account(self, token: str | None, now_ms: int) -> int | None:
        entry = self._tokens.get(token or "")
        if entry is None or entry[1] <= now_ms:
            return None
        return entry[0]


class RateLimiter:
    """Token bucket per key: ``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int):
        self.rate = rate
        self.burst = burst
        self._buckets: dict[int, list[float]] = {}

    def take(self, key: int, now_s: float) -> int | None:
        """None if allowed; otherwise the milliseconds until one token is available."""
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = [float(self.burst), now_s]
        tokens = min(self.burst, b[0] + (now_s - b[1]) * self.rate)
        b[1] = now_s
        if tokens >= 1.0:
            b[0] = tokens - 1.0
            return None
        b[0] = tokens
        return max(1, int((1.0 - tokens) / self.rate * 1000 + 0.999))
