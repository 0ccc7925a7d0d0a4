"""Simulated price feed and reporters, for demos and tests. NOT part of the pure core.

This module may use floats and ``random.Random``, but never the global RNG or the clock: every
object is seeded, and time is the caller's ``time_ms``, so a seed reproduces a run exactly.
Only integers leave it (prices in usd6 per whole underlying unit, signed ``PriceReport``s),
which is what the pure ``aggregate`` consumes.

- ``SimulatedFeed``: per-asset geometric random walk with Poisson-style jumps and a shared
  two-state volatility regime (calm / stressed, Markov switching), plus ``shock`` for scripted
  moves (e.g. a -30% crash in one step).
- ``SimulatedReporters``: ``n`` reporters with private keys derived from a seed, each observing
  the true price with a little noise and latency and signing a report per asset per round.
  Knobs (sets of reporter indices, changeable between rounds): ``stale`` (a stuck reporter that
  re-sends its last signed report), ``liars`` (report the price moved by ``lie_ppm``) and
  ``dropped`` (send nothing).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping

from clearline.core.eip712 import SECP256K1_N, Domain, address_of
from clearline.core.hashing import keccak
from clearline.core.units import PPM, UINT64_MAX

from .report import PriceReport, signed

__all__ = ["CALM", "STRESSED", "SimulatedFeed", "SimulatedReporters", "reporter_key"]

MS_PER_YEAR = 365 * 24 * 3600 * 1000
CALM = 0
STRESSED = 1


class SimulatedFeed:
    """Per-asset prices (usd6 per whole unit) driven by a seeded random walk.

    Each ``step()`` advances ``step_ms`` of simulated time (times ``time_scale`` for the
    volatility, so demos can compress hours into seconds). Log-return per step:
    ``-vol^2 dt / 2 + vol sqrt(dt) Z`` plus, with probability ``jump_prob[regime]``, a jump
    ``N(0, jump_sigma)``. The regime is shared by all assets and switches
    calm -> stressed with ``p_stress`` and back with ``p_calm`` per step.
    """

    def __init__(self, initial: Mapping[int, int], *, seed: int = 0, time_ms: int = 0,
                 step_ms: int = 1_000, time_scale: float = 1.0,
                 vol: tuple[float, float] = (0.5, 1.5),
                 jump_prob: tuple[float, float] = (0.0005, 0.005),
                 jump_sigma: float = 0.04, p_stress: float = 0.005, p_calm: float = 0.02):
        if not initial:
            raise ValueError("at least one asset")
        for asset, price in initial.items():
            if type(price) is not int or not 0 < price <= UINT64_MAX:
                raise ValueError(f"initial price of asset {asset} must be a positive uint64")
        if step_ms <= 0 or time_scale <= 0:
            raise ValueError("step_ms and time_scale must be positive")
        self._rng = random.Random(f"clearline.oracle.feed.{seed}")
        self._level = {a: float(initial[a]) for a in sorted(initial)}
        self.time_ms = time_ms
        self.step_ms = step_ms
        self.time_scale = time_scale
        self.vol = vol
        self.jump_prob = jump_prob
        self.jump_sigma = jump_sigma
        self.p_stress = p_stress
        self.p_calm = p_calm
        self.regime = CALM
        self.steps = 0
        self.jumps = 0  # number of random jumps so far (all assets)

    @property
    def assets(self) -> tuple[int, ...]:
        return tuple(self._level)

    @property
    def prices(self) -> dict[int, int]:
        """Current integer prices, usd6 per whole unit, clamped to [1, UINT64_MAX]."""
        return {a: min(UINT64_MAX, max(1, round(p))) for a, p in self._level.items()}

    def price(self, asset: int) -> int:
        return self.prices[asset]

    def shock(self, asset: int, move_ppm: int) -> int:
        """Scripted instantaneous move by ``move_ppm`` (e.g. -300_000 = -30%); returns the new
        integer price."""
        if move_ppm <= -PPM:
            raise ValueError("a move of -100% or more is not a price")
        self._level[asset] *= (PPM + move_ppm) / PPM
        return self.price(asset)

    def step(self) -> dict[int, int]:
        """Advance one step; returns the new prices."""
        rng = self._rng
        if self.regime == CALM:
            if rng.random() < self.p_stress:
                self.regime = STRESSED
        elif rng.random() < self.p_calm:
            self.regime = CALM
        dt = self.step_ms * self.time_scale / MS_PER_YEAR
        vol = self.vol[self.regime]
        for asset in self._level:  # insertion order = sorted asset ids
            r = -0.5 * vol * vol * dt + vol * math.sqrt(dt) * rng.gauss(0.0, 1.0)
            if rng.random() < self.jump_prob[self.regime]:
                r += rng.gauss(0.0, self.jump_sigma)
                self.jumps += 1
            self._level[asset] *= math.exp(r)
        self.time_ms += self.step_ms
        self.steps += 1
        return self.prices

    def run(self, steps: int) -> list[tuple[int, dict[int, int]]]:
        """``steps`` steps; ``[(time_ms, prices), ...]``."""
        return [(self.time_ms, self.step()) for _ in range(steps)]


def reporter_key(seed: int, index: int) -> bytes:
    """Deterministic secp256k1 private key of simulated reporter ``index`` for ``seed``."""
    material = b"clearline.oracle.reporter" + seed.to_bytes(8, "big", signed=True) \
        + index.to_bytes(4, "big")
    return (int.from_bytes(keccak(material), "big") % (SECP256K1_N - 1) + 1).to_bytes(32, "big")


class SimulatedReporters:
    """``n`` (>= 3) reporters that sign one ``PriceReport`` per asset per call to ``reports``.

    An honest reporter observes the true price times ``1 + u`` with ``u`` uniform in
    ``[-noise_ppm, noise_ppm]`` ppm, timestamped ``now_ms - latency`` with latency uniform in
    ``[0, max_latency_ms]``. Knobs (sets of reporter indices): ``stale`` -- re-sends its last
    signed report for the asset unchanged (a stuck process; its first report is normal);
    ``liars`` -- the observed price moved by ``lie_ppm``; ``dropped`` -- sends nothing.
    """

    def __init__(self, domain: Domain, n: int = 3, *, seed: int = 0, noise_ppm: int = 200,
                 max_latency_ms: int = 200, lie_ppm: int = 200_000,
                 stale: Iterable[int] = (), liars: Iterable[int] = (),
                 dropped: Iterable[int] = ()):
        if n < 3:
            raise ValueError("at least 3 reporters")
        self.domain = domain
        self.keys = tuple(reporter_key(seed, i) for i in range(n))
        self.addresses = tuple(address_of(k) for k in self.keys)
        self.noise_ppm = noise_ppm
        self.max_latency_ms = max_latency_ms
        self.lie_ppm = lie_ppm
        self.stale = set(stale)
        self.liars = set(liars)
        self.dropped = set(dropped)
        self._rng = random.Random(f"clearline.oracle.reporters.{seed}")
        self._round = [0] * n
        self._last: dict[tuple[int, int], PriceReport] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def reports(self, prices: Mapping[int, int], now_ms: int) -> list[PriceReport]:
        """Signed reports for every asset in ``prices`` (sorted by asset, then reporter)."""
        out = []
        rng = self._rng
        for asset in sorted(prices):
            true = prices[asset]
            for i, key in enumerate(self.keys):
                # draw for everyone, always, so toggling a knob does not shift others' noise
                u = rng.randint(-self.noise_ppm, self.noise_ppm)
                latency = rng.randint(0, self.max_latency_ms)
                if i in self.dropped:
                    continue
                if i in self.stale and (asset, i) in self._last:
                    out.append(self._last[(asset, i)])
                    continue
                price = true * (PPM + u) // PPM
                if i in self.liars:
                    price = price * (PPM + self.lie_ppm) // PPM
                price = min(UINT64_MAX, max(1, price))
                self._round[i] += 1
                report = signed(self.domain, PriceReport(asset, price, max(0, now_ms - latency),
                                                         self._round[i]), key)
                self._last[(asset, i)] = report
                out.append(report)
        return out
