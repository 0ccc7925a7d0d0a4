"""Option listing: a pure integer calendar and the rule that decides which options exist.

Everything here is a pure function of its arguments: no clock (``now_ms`` is passed in),
no ``datetime``/``time`` module, no floats. Dates are computed with Howard Hinnant's
``days_from_civil`` / ``civil_from_days`` algorithms (proleptic Gregorian calendar, UTC,
valid for every integer year), written with Python floor division.

Units: times are ms since 1970-01-01T00:00:00Z; strikes and the index are usd6 per whole
underlying unit; an option spec's ``strike`` is in ticks (``strike_usd6 // tick_size``,
exact by construction).

The listing rule (``ListingRule``):

- *daily* expiries: every day at ``expiry_hour_utc``;
- *weekly* expiries: Fridays at ``expiry_hour_utc``;
- *monthly* expiries: the last Friday of each month at ``expiry_hour_utc``.

``scheduled_expiries`` returns the next ``daily`` daily, ``weekly`` weekly and ``monthly``
monthly expiries that are strictly later than ``now_ms + min_lead_ms``, merged, sorted and
de-duplicated (a day can be daily, weekly and monthly at once; it is listed once).
In compressed mode (``compressed_period_ms > 0``, for demos and tests) the calendar is
ignored: the expiries are the next ``daily`` multiples of the period strictly after
``now_ms + min_lead_ms``.

``listings_due`` turns the schedule and a strike grid around the index into the new
``InstrumentSpec`` rows (calls and puts) that are not listed yet, with consecutive ids in a
deterministic order. ``expired`` returns the options to settle and delist.

Determinism notes: results are lists in an explicit sort order; nothing iterates over an
unordered container whose order could leak into the output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import Rejected
from .instruments import InstrumentKind, InstrumentSpec, OptionType
from .units import PPM, UINT64_MAX, USD6

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "MAX_EXPIRIES_PER_KIND",
    "MAX_STRIKES_EACH_SIDE",
    "ListingError",
    "ListingRule",
    "OptionTemplate",
    "civil_from_days",
    "days_from_civil",
    "days_in_month",
    "expired",
    "is_leap_year",
    "last_friday",
    "listings_due",
    "ms_of",
    "option_symbol",
    "scheduled_expiries",
    "strike_grid",
    "weekday",
    "ymd",
]

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY = range(7)

MAX_EXPIRIES_PER_KIND = 366  # caps daily / weekly / monthly counts (keeps listings bounded)
MAX_STRIKES_EACH_SIDE = 500

_MAX_SYMBOL_BYTES = 32


class ListingError(ValueError):
    """A listing rule, template or argument is invalid (configuration error, not a tx)."""


def _check_int(name: str, value: object, lo: int, hi: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ListingError(f"{name} must be an int, got {type(value).__name__}")
    if not (lo <= value <= hi):
        raise ListingError(f"{name} must be in [{lo}, {hi}], got {value}")
    return value


# ------------------------------------------------------------------ civil calendar
def is_leap_year(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


def days_in_month(y: int, m: int) -> int:
    _check_int("month", m, 1, 12)
    if m == 2:
        return 29 if is_leap_year(y) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of the proleptic Gregorian date y-m-d (Hinnant)."""
    _check_int("year", y, -(1 << 62), 1 << 62)
    _check_int("month", m, 1, 12)
    _check_int("day", d, 1, days_in_month(y, m))
    y -= 1 if m <= 2 else 0
    era = y // 400  # floor division: correct for negative years too
    yoe = y - era * 400  # [0, 399]
    mp = (m + 9) % 12  # March = 0 ... February = 11
    doy = (153 * mp + 2) // 5 + d - 1  # [0, 365]
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy  # [0, 146096]
    return era * 146_097 + doe - 719_468


def civil_from_days(z: int) -> tuple[int, int, int]:
    """(year, month, day) of the day ``z`` days after 1970-01-01 (Hinnant)."""
    _check_int("days", z, -(1 << 62), 1 << 62)
    z += 719_468
    era = z // 146_097
    doe = z - era * 146_097  # [0, 146096]
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365  # [0, 399]
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # [0, 365]
    mp = (5 * doy + 2) // 153  # [0, 11]
    d = doy - (153 * mp + 2) // 5 + 1  # [1, 31]
    m = mp + 3 if mp < 10 else mp - 9  # [1, 12]
    y = yoe + era * 400 + (1 if m <= 2 else 0)
    return y, m, d


def weekday(days: int) -> int:
    """Day of week of a day number: Monday = 0 ... Sunday = 6 (1970-01-01 was a Thursday)."""
    return (days + THURSDAY) % 7


def ymd(ms: int) -> tuple[int, int, int]:
    """(year, month, day) in UTC of a ms timestamp."""
    _check_int("ms", ms, -(1 << 62), 1 << 62)
    return civil_from_days(ms // DAY_MS)


def ms_of(y: int, m: int, d: int, hour: int = 0) -> int:
    """ms timestamp of y-m-d at ``hour``:00:00.000 UTC."""
    _check_int("hour", hour, 0, 23)
    return days_from_civil(y, m, d) * DAY_MS + hour * HOUR_MS


def last_friday(y: int, m: int) -> int:
    """Day of the month (1..31) of the last Friday of y-m."""
    last = days_in_month(y, m)
    back = (weekday(days_from_civil(y, m, last)) - FRIDAY) % 7
    return last - back


# ------------------------------------------------------------------ listing rule
@dataclass(frozen=True, slots=True)
class ListingRule:
    """Which expiries are listed. See the module docstring.

    ``daily``/``weekly``/``monthly``: how many of each kind to keep listed (0..366, not all
    zero). ``expiry_hour_utc``: 0..23. ``min_lead_ms``: an expiry must be strictly later than
    ``now + min_lead_ms`` to be newly listed. ``strikes_each_side``: strikes below and above
    the at-the-money strike (0..500). ``compressed_period_ms``: 0 for the calendar; else a
    positive multiple of 1000 ms, and only ``daily`` counts (it must then be > 0).
    """

    daily: int
    weekly: int
    monthly: int
    min_lead_ms: int
    strikes_each_side: int
    expiry_hour_utc: int = 8
    compressed_period_ms: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        _check_int("daily", self.daily, 0, MAX_EXPIRIES_PER_KIND)
        _check_int("weekly", self.weekly, 0, MAX_EXPIRIES_PER_KIND)
        _check_int("monthly", self.monthly, 0, MAX_EXPIRIES_PER_KIND)
        _check_int("expiry_hour_utc", self.expiry_hour_utc, 0, 23)
        _check_int("min_lead_ms", self.min_lead_ms, 0, UINT64_MAX)
        _check_int("strikes_each_side", self.strikes_each_side, 0, MAX_STRIKES_EACH_SIDE)
        _check_int("compressed_period_ms", self.compressed_period_ms, 0, UINT64_MAX)
        if self.compressed_period_ms:
            if self.compressed_period_ms % SECOND_MS:
                raise ListingError("compressed_period_ms must be a multiple of 1000 ms (symbols carry seconds)")
            if self.daily == 0:
                raise ListingError("compressed mode lists `daily` expiries: daily must be > 0")
        elif self.daily == self.weekly == self.monthly == 0:
            raise ListingError("rule lists no expiries: daily, weekly and monthly are all 0")


def _first_day_after(cutoff_ms: int, hour: int) -> int:
    """Smallest day number whose expiry (day start + hour) is strictly later than cutoff."""
    day = cutoff_ms // DAY_MS
    if day * DAY_MS + hour * HOUR_MS <= cutoff_ms:
        day += 1
    return day


def scheduled_expiries(rule: ListingRule, now_ms: int) -> list[int]:
    """Sorted, de-duplicated expiry timestamps (ms) that should be listed at ``now_ms``."""
    if not isinstance(rule, ListingRule):
        raise ListingError("rule must be a ListingRule")
    rule.validate()
    _check_int("now_ms", now_ms, 0, UINT64_MAX)
    cutoff = now_ms + rule.min_lead_ms

    if rule.compressed_period_ms:
        p = rule.compressed_period_ms
        k = cutoff // p + 1  # first multiple strictly after cutoff
        return [(k + i) * p for i in range(rule.daily)]

    hour_ms = rule.expiry_hour_utc * HOUR_MS
    first = _first_day_after(cutoff, rule.expiry_hour_utc)
    days: set[int] = set()

    days.update(first + i for i in range(rule.daily))

    friday = first + (FRIDAY - weekday(first)) % 7
    days.update(friday + 7 * i for i in range(rule.weekly))

    y, m, _ = civil_from_days(first)
    found = 0
    while found < rule.monthly:
        day = days_from_civil(y, m, last_friday(y, m))
        if day >= first:
            days.add(day)
            found += 1
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)

    return [d * DAY_MS + hour_ms for d in sorted(days)]


# ------------------------------------------------------------------ strikes
def strike_grid(index_usd6: int, step_usd6: int, each_side: int) -> list[int]:
    """Strikes (usd6, ascending) centred on ``index`` rounded half-up to a multiple of
    ``step``, with ``each_side`` strikes below and above; non-positive strikes are dropped."""
    _check_int("index_usd6", index_usd6, 1, UINT64_MAX)
    _check_int("step_usd6", step_usd6, 1, UINT64_MAX)
    _check_int("each_side", each_side, 0, MAX_STRIKES_EACH_SIDE)
    centre = (2 * index_usd6 + step_usd6) // (2 * step_usd6)  # floor(index/step + 1/2)
    return [k * step_usd6 for k in range(centre - each_side, centre + each_side + 1) if k > 0]


# ------------------------------------------------------------------ contract terms
@dataclass(frozen=True, slots=True)
class OptionTemplate:
    """Option contract terms for one underlying (units as in ``InstrumentSpec``).

    ``im_ppm``: short-option scan fraction (e.g. 150_000); ``mm_ppm``: maintenance fraction
    (e.g. 75_000); ``strike_step_usd6``: strike grid spacing in usd6 per whole underlying.
    """

    underlying: str
    tick_size: int
    lot_size: int
    im_ppm: int
    mm_ppm: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    strike_step_usd6: int

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        u = self.underlying
        if not isinstance(u, str) or not u or not u.isascii() or not u.isalnum() or len(u) > 8:
            raise ListingError(f"underlying must be 1..8 ASCII letters/digits, got {u!r}")
        _check_int("tick_size", self.tick_size, 1, UINT64_MAX)
        _check_int("lot_size", self.lot_size, 1, UINT64_MAX)
        _check_int("im_ppm", self.im_ppm, 0, PPM)
        _check_int("mm_ppm", self.mm_ppm, 0, PPM)
        _check_int("maker_fee_ppm", self.maker_fee_ppm, 0, PPM)
        _check_int("taker_fee_ppm", self.taker_fee_ppm, 0, PPM)
        _check_int("strike_step_usd6", self.strike_step_usd6, 1, UINT64_MAX)
        probe = InstrumentSpec(0, f"{u}-OPTION", InstrumentKind.OPTION, u, self.tick_size, self.lot_size,
                               self.im_ppm, self.mm_ppm, self.maker_fee_ppm, self.taker_fee_ppm,
                               expiry=1, strike=1, option_type=OptionType.CALL)
        try:
            probe.validate()
        except Rejected as e:
            raise ListingError(f"option template for {u}: {e}") from e


def _format_usd6(amount: int) -> str:
    whole, frac = divmod(amount, USD6)
    if not frac:
        return str(whole)
    return f"{whole}.{frac:06d}".rstrip("0")


def option_symbol(underlying: str, expiry_ms: int, strike_usd6: int, option_type: int,
                  *, expiry_hour_utc: int = 8) -> str:
    """E.g. ``BTC-20261127-100000-C``.

    The date is the UTC expiry date. If the expiry is not at ``expiry_hour_utc``:00 of its
    day (compressed mode), the time of day is appended, ``T`` + HHMM or HHMMSS
    (``BTC-20261127T0805-100000-C``), so symbols stay unique. Strike in whole USD when
    integral, else with up to 6 decimals (trailing zeros removed). At most 32 bytes.
    """
    if not isinstance(underlying, str) or not underlying:
        raise ListingError("underlying must be a non-empty string")
    _check_int("expiry_ms", expiry_ms, 1, UINT64_MAX)
    _check_int("strike_usd6", strike_usd6, 1, UINT64_MAX)
    _check_int("expiry_hour_utc", expiry_hour_utc, 0, 23)
    if isinstance(option_type, bool):
        raise ListingError("option_type must be CALL or PUT, got a bool")
    if option_type == OptionType.CALL:
        letter = "C"
    elif option_type == OptionType.PUT:
        letter = "P"
    else:
        raise ListingError(f"option_type must be CALL or PUT, got {option_type!r}")
    if expiry_ms % SECOND_MS:
        raise ListingError(f"expiry {expiry_ms} is not a whole second")
    y, m, d = ymd(expiry_ms)
    if not (0 <= y <= 9999):
        raise ListingError(f"expiry year {y} does not fit 4 digits")
    date = f"{y:04d}{m:02d}{d:02d}"
    tod = expiry_ms % DAY_MS
    if tod != expiry_hour_utc * HOUR_MS:
        hh, rest = divmod(tod, HOUR_MS)
        mm, rest = divmod(rest, MINUTE_MS)
        ss = rest // SECOND_MS
        date += f"T{hh:02d}{mm:02d}" + (f"{ss:02d}" if ss else "")
    symbol = f"{underlying}-{date}-{_format_usd6(strike_usd6)}-{letter}"
    if len(symbol.encode()) > _MAX_SYMBOL_BYTES:
        raise ListingError(f"symbol {symbol!r} is longer than {_MAX_SYMBOL_BYTES} bytes")
    return symbol


# ------------------------------------------------------------------ listing / delisting
def listings_due(rule: ListingRule, template: OptionTemplate, now_ms: int, index_usd6: int,
                 existing: Iterable[InstrumentSpec], next_id: int) -> list[InstrumentSpec]:
    """New option specs (calls and puts) for every scheduled expiry x grid strike not yet
    listed for ``template.underlying``.

    A listed option is matched on (underlying, expiry, strike in usd6, option type) among the
    ``existing`` specs of kind OPTION (strike usd6 = ``strike * tick_size``, so a change of
    tick size does not re-list the same contract). Grid strikes not divisible by the tick size
    are skipped. Ids are consecutive from ``next_id`` in (expiry, strike, call, put) order; an
    id already used by an existing spec, or a symbol clash, is a ``ListingError``.
    """
    if not isinstance(template, OptionTemplate):
        raise ListingError("template must be an OptionTemplate")
    template.validate()
    _check_int("next_id", next_id, 0, UINT64_MAX)
    expiries = scheduled_expiries(rule, now_ms)
    strikes = strike_grid(index_usd6, template.strike_step_usd6, rule.strikes_each_side)

    existing_specs = list(existing)
    listed: set[tuple[int, int, int]] = set()
    used_ids: set[int] = set()
    used_symbols: set[str] = set()
    for s in existing_specs:
        used_ids.add(s.id)
        used_symbols.add(s.symbol)
        if s.kind == InstrumentKind.OPTION and s.underlying == template.underlying:
            listed.add((s.expiry, s.strike * s.tick_size, int(s.option_type)))

    u, tick = template.underlying, template.tick_size
    out: list[InstrumentSpec] = []
    next_free = next_id
    for expiry in expiries:  # ascending
        for strike_usd6 in strikes:  # ascending
            if strike_usd6 % tick:
                continue
            for opt in (OptionType.CALL, OptionType.PUT):
                if (expiry, strike_usd6, int(opt)) in listed:
                    continue
                symbol = option_symbol(u, expiry, strike_usd6, opt, expiry_hour_utc=rule.expiry_hour_utc)
                if next_free in used_ids:
                    raise ListingError(f"id {next_free} is already used by an existing instrument")
                if symbol in used_symbols:
                    raise ListingError(f"symbol {symbol} is already used by an existing instrument")
                spec = InstrumentSpec(next_free, symbol, InstrumentKind.OPTION, u, tick, template.lot_size,
                                      template.im_ppm, template.mm_ppm, template.maker_fee_ppm,
                                      template.taker_fee_ppm, expiry=expiry, strike=strike_usd6 // tick,
                                      option_type=opt)
                try:
                    spec.validate()
                except Rejected as e:
                    raise ListingError(str(e)) from e
                out.append(spec)
                used_symbols.add(symbol)
                next_free += 1
    return out


def expired(specs: Iterable[InstrumentSpec], now_ms: int) -> list[InstrumentSpec]:
    """Option specs whose expiry is at or before ``now_ms``, ordered by (expiry, id)."""
    _check_int("now_ms", now_ms, 0, UINT64_MAX)
    due = [s for s in specs if s.kind == InstrumentKind.OPTION and s.expiry <= now_ms]
    return sorted(due, key=lambda s: (s.expiry, s.id))
