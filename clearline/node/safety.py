"""Dead-man switches: per account, a deadline that heartbeats push back.

Owned by the node thread (armed, refreshed and checked there), so it needs no lock. When a
deadline passes the node sends an operator ``CANCEL_ALL_ORDERS`` for the account (the core
accepts it only if the account opted in) and the switch disarms: it fires once.
Deadlines are wall-clock milliseconds -- they are about the client's liveness, not market time.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DeadMan", "Switch"]

MAX_TIMEOUT_S = 3_600


@dataclass
class Switch:
    timeout_ms: int
    deadline_ms: int
    fired: int = 0


class DeadMan:
    def __init__(self):
        self.switches: dict[int, Switch] = {}
        self.fired: dict[int, int] = {}  # account -> times fired since node start

    def arm(self, account: int, timeout_s: float, now_ms: int) -> dict:
        if timeout_s <= 0:
            self.switches.pop(account, None)
        else:
            ms = int(min(timeout_s, MAX_TIMEOUT_S) * 1000)
            self.switches[account] = Switch(ms, now_ms + ms)
        return self.status(account)

    def heartbeat(self, account: int, now_ms: int) -> dict:
        sw = self.switches.get(account)
        if sw is not None:
            sw.deadline_ms = now_ms + sw.timeout_ms
        return self.status(account)

    def status(self, account: int) -> dict:
        sw = self.switches.get(account)
        return {"account": account, "armed": sw is not None,
                "timeout_s": sw.timeout_ms / 1000 if sw else 0, "deadline_ms": sw.deadline_ms if sw else None,
                "fired": self.fired.get(account, 0)}

    def due(self, now_ms: int) -> list[int]:
        """Accounts whose deadline has passed; their switches are disarmed."""
        out = sorted(a for a, sw in self.switches.items() if sw.deadline_ms <= now_ms)
        for a in out:
            del self.switches[a]
            self.fired[a] = self.fired.get(a, 0) + 1
        return out
