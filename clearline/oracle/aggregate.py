"""Oracle aggregation: from signed price reports to a confirmed index price, per asset.

``aggregate(config, state, reports_with_signers, now_ms) -> AggregateResult`` is a pure
function (integers only, no I/O, no clock, no randomness; input order does not matter). It will
be called from the core to validate a ``MarkUpdate`` that carries the signed reports, so anyone
can recompute the index from the transaction alone. Signatures are recovered beforehand
(``report.recover_reporters``; it is the expensive step and runs in parallel in the sequencer);
this module receives ``(PriceReport, signer_address)`` pairs.

One call is one *aggregation round* at time ``now_ms`` (ms, from the transaction). The rules,
in the order they are applied:

1. **Whole-update rejections** (``OracleRejected``, nothing changes):
   ``now_ms`` not a uint64 or an item that is not ``(PriceReport with uint fields, 20-byte
   signer)`` -> MALFORMED_INPUT; ``now_ms < state.last_round_ms`` -> TIME_WENT_BACKWARDS; any
   report whose ``asset`` differs from ``state.asset`` -> WRONG_ASSET; the same signer twice
   in the input (known or not, fresh or not) -> DUPLICATE_REPORTER. These are the operator's
   mistakes: the update is ambiguous, so it is refused rather than guessed at.
2. **Dropped reports** (listed in ``AggregateResult.dropped``, sorted by signer, with the
   first reason that applies, in this order): signer not in ``config.reporters`` ->
   UNKNOWN_REPORTER; ``price == 0`` -> ZERO_PRICE; ``timestamp > now_ms`` -> FUTURE;
   ``now_ms - timestamp > staleness_ms`` -> STALE (so age == staleness_ms is still fresh);
   ``timestamp <= state.last_round_ms`` -> ALREADY_USED. The last rule is the replay guard:
   every report a round uses has ``last_round_ms < timestamp <= now_ms``, so no signed report
   can count in two rounds, and the consecutive-round confirmation below cannot be faked by
   re-submitting the same reports.
   Net freshness window: ``max(last_round_ms + 1, now_ms - staleness_ms) <= timestamp <= now_ms``.
3. **Quorum**: fewer than ``config.quorum`` fresh reports -> ``Outcome.NO_UPDATE``; the state
   is returned unchanged (a NO_UPDATE round neither advances nor resets a pending jump, and its
   reports stay usable later).
4. **Median**: the *lower* median of the fresh prices, ``sorted(prices)[(n - 1) // 2]``. For an
   even count that is the lower of the two middle values. Chosen because it is always one of the
   signed prices (no division, no rounding rule, trivially checkable in Solidity) and it is as
   robust as the textbook median: if the fresh set holds ``k`` arbitrary (lying) prices and
   ``2k < n``, the median lies within ``[min honest, max honest]``. Hence with ``2k < quorum``
   liars, every index update is bounded by honest prices. (With ``2k == n`` the lower median can
   be a liar's price below every honest one: the bound is tight.)
5. **Deviation guard** against the last *confirmed* index ``last`` (``state.index_price``):
   - no index yet (``last == 0``): the median is accepted (``ACCEPTED``);
   - ``|median - last| * 1_000_000 <= max_deviation_ppm * last``: ``ACCEPTED``, the index becomes
     the median, and any pending jump is cleared (a jump that reverts resets the count);
   - otherwise the round is *beyond the bound* in direction ``sign(median - last)``. If a jump is
     pending in the same direction its count grows by one, else the count restarts at 1 (a
     reversal to the other side is a new candidate). When the count reaches
     ``config.confirmations`` the jump is ``CONFIRMED`` and the index becomes *this round's*
     median; before that the round is ``UNCONFIRMED``: the index is unchanged, the candidate
     (latest beyond-bound median) and count are stored, and ``liquidations_paused`` is True.
     ``confirmations == 1`` therefore accepts every jump at once (the guard only reports it).
   A round that meets quorum sets ``last_round_ms = now_ms``; ``index_time_ms`` is the
   ``now_ms`` of the round that last set ``index_price``.

Error codes are stable and part of the API (values 80-89 are reserved for the oracle, next to
``clearline.core.errors.ErrorCode``; never renumber). ``OracleRejected`` mirrors the core's
``Rejected`` (``.code``, ``.message``) but is a separate class because ``Rejected`` takes an
``ErrorCode``. Invalid *configuration* (``OracleConfig``, ``OracleState`` construction) is a
``ValueError``, as for ``clearline.core.eip712.Domain``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from clearline.core.units import PPM, UINT32_MAX

from .report import PriceReport

__all__ = [
    "AggregateResult",
    "DropReason",
    "OracleConfig",
    "OracleErrorCode",
    "OracleRejected",
    "OracleState",
    "Outcome",
    "aggregate",
    "median",
]


class OracleErrorCode(IntEnum):
    """Stable codes of a refused oracle update (reserved range 80-89; never renumber)."""

    DUPLICATE_REPORTER = 80
    WRONG_ASSET = 81
    TIME_WENT_BACKWARDS = 82
    MALFORMED_INPUT = 83


class OracleRejected(Exception):
    """The whole oracle update is invalid; the state is unchanged. ``code`` is stable."""

    def __init__(self, code: OracleErrorCode, message: str = ""):
        super().__init__(f"{code.name}: {message}" if message else code.name)
        self.code = code
        self.message = message or code.name


class Outcome(IntEnum):
    NO_UPDATE = 0  # quorum not met; state unchanged
    ACCEPTED = 1  # first index, or median within the deviation bound
    UNCONFIRMED = 2  # beyond the bound, not yet confirmed; liquidations paused
    CONFIRMED = 3  # beyond the bound for `confirmations` consecutive rounds; accepted


class DropReason(IntEnum):
    UNKNOWN_REPORTER = 1
    ZERO_PRICE = 2
    FUTURE = 3
    STALE = 4
    ALREADY_USED = 5


def _is_uint(value: object, bits: int) -> bool:
    return type(value) is int and 0 <= value < 1 << bits


def _is_address(value: object) -> bool:
    return type(value) is bytes and len(value) == 20


@dataclass(frozen=True, slots=True)
class OracleConfig:
    """Oracle parameters (shared by all assets).

    ``reporters``: the allowed reporter addresses (20 bytes each, distinct);
    ``quorum``: minimum number of fresh reports for an update (1 <= quorum <= len(reporters));
    ``staleness_ms``: maximum report age (inclusive);
    ``max_deviation_ppm``: largest move from the confirmed index accepted without confirmation;
    ``confirmations``: consecutive beyond-bound rounds (same direction) that confirm a jump (>= 1).
    """

    reporters: tuple[bytes, ...]
    quorum: int
    staleness_ms: int
    max_deviation_ppm: int
    confirmations: int
    _known: frozenset = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.reporters, tuple) or not self.reporters:
            raise ValueError("reporters must be a non-empty tuple of addresses")
        for addr in self.reporters:
            if not _is_address(addr):
                raise ValueError("every reporter must be a 20-byte address")
        known = frozenset(self.reporters)  # membership only; never iterated
        if len(known) != len(self.reporters):
            raise ValueError("reporters must be distinct")
        if type(self.quorum) is not int or not 1 <= self.quorum <= len(self.reporters):
            raise ValueError(f"quorum must be in [1, {len(self.reporters)}], got {self.quorum!r}")
        if not _is_uint(self.staleness_ms, 64):
            raise ValueError(f"staleness_ms must be a uint64, got {self.staleness_ms!r}")
        if not _is_uint(self.max_deviation_ppm, 32):
            raise ValueError(f"max_deviation_ppm must be a uint32, got {self.max_deviation_ppm!r}")
        if type(self.confirmations) is not int or not 1 <= self.confirmations <= UINT32_MAX:
            raise ValueError(f"confirmations must be >= 1, got {self.confirmations!r}")
        object.__setattr__(self, "_known", known)

    def is_reporter(self, address: bytes) -> bool:
        return address in self._known


@dataclass(frozen=True, slots=True)
class OracleState:
    """Per-asset oracle state (all ``int``; ``0`` means "none").

    ``index_price``: last confirmed index, usd6 per whole underlying unit (0 = no index yet);
    ``index_time_ms``: ``now_ms`` of the round that set it;
    ``last_round_ms``: ``now_ms`` of the last round that met quorum (reports must be newer);
    ``pending_price``: latest beyond-bound median of an unconfirmed jump (0 = none);
    ``pending_count``: consecutive beyond-bound rounds in that jump's direction so far.
    """

    asset: int
    index_price: int = 0
    index_time_ms: int = 0
    last_round_ms: int = 0
    pending_price: int = 0
    pending_count: int = 0

    def __post_init__(self) -> None:
        if not _is_uint(self.asset, 32):
            raise ValueError(f"asset must be a uint32, got {self.asset!r}")
        for name in ("index_price", "index_time_ms", "last_round_ms", "pending_price",
                     "pending_count"):
            if not _is_uint(getattr(self, name), 64):
                raise ValueError(f"{name} must be a uint64, got {getattr(self, name)!r}")
        if (self.pending_count == 0) != (self.pending_price == 0):
            raise ValueError("pending_price and pending_count must be both zero or both set")
        if self.pending_count and self.index_price == 0:
            raise ValueError("a pending jump needs a confirmed index")

    @property
    def liquidations_paused(self) -> bool:
        """True while a jump is pending (the index is unconfirmed)."""
        return self.pending_count > 0


@dataclass(frozen=True, slots=True)
class AggregateResult:
    """What one round did. ``median`` is 0 for NO_UPDATE. ``used`` is the fresh reports as
    ``(signer, price)`` sorted by ``(price, signer)`` -- the median is
    ``used[(len(used) - 1) // 2][1]`` whenever quorum was met. ``dropped`` lists
    ``(signer, reason)`` sorted by signer. Neither depends on the order of the input."""

    state: OracleState
    outcome: Outcome
    median: int
    used: tuple[tuple[bytes, int], ...]
    dropped: tuple[tuple[bytes, DropReason], ...]

    @property
    def index_price(self) -> int:
        return self.state.index_price

    @property
    def liquidations_paused(self) -> bool:
        return self.state.liquidations_paused


def median(values: Sequence[int]) -> int:
    """Lower median: ``sorted(values)[(len(values) - 1) // 2]``; always one of the values."""
    if not values:
        raise ValueError("median of no values")
    return sorted(values)[(len(values) - 1) // 2]


def _validate(state: OracleState, items: Sequence, now_ms: int) -> None:
    if not isinstance(state, OracleState):
        raise TypeError("state must be an OracleState")
    if not _is_uint(now_ms, 64):
        raise OracleRejected(OracleErrorCode.MALFORMED_INPUT, f"now_ms {now_ms!r} is not a uint64")
    if now_ms < state.last_round_ms:
        raise OracleRejected(OracleErrorCode.TIME_WENT_BACKWARDS,
                             f"now {now_ms} is before the last round {state.last_round_ms}")
    for i, item in enumerate(items):
        if not isinstance(item, tuple) or len(item) != 2:
            raise OracleRejected(OracleErrorCode.MALFORMED_INPUT,
                                 f"item {i} is not a (report, signer) pair")
        report, signer = item
        if not isinstance(report, PriceReport) or not _is_address(signer):
            raise OracleRejected(OracleErrorCode.MALFORMED_INPUT,
                                 f"item {i}: expected (PriceReport, 20-byte signer)")
        if not (_is_uint(report.asset, 32) and _is_uint(report.price, 64)
                and _is_uint(report.timestamp, 64) and _is_uint(report.round, 64)):
            raise OracleRejected(OracleErrorCode.MALFORMED_INPUT,
                                 f"item {i}: report field out of range")
    for i, (report, _) in enumerate(items):
        if report.asset != state.asset:
            raise OracleRejected(OracleErrorCode.WRONG_ASSET,
                                 f"item {i} reports asset {report.asset}, expected {state.asset}")
    seen: set[bytes] = set()  # membership only; never iterated
    for _, signer in items:
        if signer in seen:
            raise OracleRejected(OracleErrorCode.DUPLICATE_REPORTER,
                                 f"0x{signer.hex()} appears more than once")
        seen.add(signer)


def _drop_reason(config: OracleConfig, state: OracleState, report: PriceReport, signer: bytes,
                 now_ms: int) -> DropReason | None:
    if not config.is_reporter(signer):
        return DropReason.UNKNOWN_REPORTER
    if report.price == 0:
        return DropReason.ZERO_PRICE
    if report.timestamp > now_ms:
        return DropReason.FUTURE
    if now_ms - report.timestamp > config.staleness_ms:
        return DropReason.STALE
    if report.timestamp <= state.last_round_ms:
        return DropReason.ALREADY_USED
    return None


def aggregate(config: OracleConfig, state: OracleState,
              reports_with_signers: Iterable[tuple[PriceReport, bytes]],
              now_ms: int) -> AggregateResult:
    """One aggregation round for ``state.asset`` at ``now_ms``; rules in the module docstring.

    Raises ``OracleRejected`` (state unchanged) for a malformed or ambiguous update; never
    mutates its inputs; the result depends only on the *set* of inputs, not their order.
    """
    if not isinstance(config, OracleConfig):
        raise TypeError("config must be an OracleConfig")
    items = tuple(reports_with_signers)
    _validate(state, items, now_ms)

    fresh: list[tuple[int, bytes]] = []
    dropped: list[tuple[bytes, DropReason]] = []
    for report, signer in items:
        reason = _drop_reason(config, state, report, signer, now_ms)
        if reason is None:
            fresh.append((report.price, signer))
        else:
            dropped.append((signer, reason))
    fresh.sort()  # by (price, signer): a total order (signers are distinct)
    used = tuple((signer, price) for price, signer in fresh)
    dropped.sort()  # by signer (distinct): independent of the input order

    if len(fresh) < config.quorum:
        return AggregateResult(state, Outcome.NO_UPDATE, 0, used, tuple(dropped))

    med = fresh[(len(fresh) - 1) // 2][0]
    last = state.index_price

    if last == 0 or abs(med - last) * PPM <= config.max_deviation_ppm * last:
        new = OracleState(state.asset, med, now_ms, now_ms, 0, 0)
        return AggregateResult(new, Outcome.ACCEPTED, med, used, tuple(dropped))

    up = med > last
    if state.pending_count > 0 and (state.pending_price > last) == up:
        count = state.pending_count + 1
    else:
        count = 1
    if count >= config.confirmations:
        new = OracleState(state.asset, med, now_ms, now_ms, 0, 0)
        outcome = Outcome.CONFIRMED
    else:
        new = OracleState(state.asset, last, state.index_time_ms, now_ms, med, count)
        outcome = Outcome.UNCONFIRMED
    return AggregateResult(new, outcome, med, used, tuple(dropped))
