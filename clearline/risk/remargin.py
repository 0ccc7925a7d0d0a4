"""Vectorised re-margin of every account at once: the core's integer rules, columnar.

After a mark update (new marks, index prices and risk arrays) every account must be
re-margined. :func:`remargin` does that for a whole :class:`PortfolioBook` with numpy, and
reproduces :func:`clearline.core.requirements.standard_requirements` (summed per account, for
standard-mode accounts) and :func:`clearline.core.requirements.portfolio_requirements` (for
portfolio-mode accounts) **exactly, integer for integer**, including the binding scenario
(lowest index on ties, -1 when no position has a risk array; always -1 for standard accounts).
An instrument whose array is all zeros counts as having none (``has_array`` is and-ed with
"some entry non-zero"), as in :func:`clearline.core.requirements.has_risk_array`.

Layout
------
Positions are sparse columns of ``nnz`` entries (``account_idx``, ``instrument_idx``, ``size``),
sorted by (account, instrument) at construction; each (account, instrument) pair appears at most
once (an entry is one core position). They are kept as an int64 CSR matrix ``Q`` (accounts x
instruments). Instruments are columns of per-instrument arrays (``kind``, ``option_type``,
``strike``, ``tick_size``, ``lot_size``, ``tick_value``, ``im_ppm``, ``mm_ppm``, ``mark``,
``index_usd6``, ``risk`` (n x 16), ``has_array``); accounts have ``collateral``, ``quote_sum``
(the sum of their positions' ``quote`` cash balances) and ``mode`` (0 standard, 1 portfolio).

One re-margin is one int64 sparse product ``Q @ [R_eff | mark*tick_value]`` (R_eff: the risk
arrays, zeroed for instruments without one), which gives every account's 16 scenario sums and
its position value; plus per-entry integer formulas on the few entries that need them
(positions of standard accounts, positions without an array, short options of portfolio
accounts), summed per account with ``np.add.reduceat``. No float touches a result: floats are
used only to *screen* for overflow (with a 4x safety factor, see below).

Integer identities used (``x >= 0``, ``0 <= ppm <= 1e6``, ``L >= 0`` lots):

- ``ceil(x * ppm / 1e6) = (x // 1e6) * ppm + ceil((x % 1e6) * ppm / 1e6)``: no ``x * ppm``
  product, so a requirement only needs ``x`` itself to fit;
- ``index * lot_size = A * 1e8 + B`` per instrument (``0 <= B < 1e8``), hence the core's
  ``ceil(L * index * lot_size / 1e8) = L * A + ceil(L * B / 1e8)``; likewise the OTM amount
  ``floor(L * per_unit * lot_size / 1e8) = L * P + floor(L * Q / 1e8)``.

Overflow bounds (all checked; a violation raises :class:`RemarginOverflowError`, never wraps)
---------------------------------------------------------------------------------------------
- every input integer fits int64; ``mark``, ``index_usd6``, ``strike``, ``tick_size``,
  ``lot_size`` are ``>= 0`` (``tick_size``, ``lot_size`` > 0), ``0 <= im_ppm, mm_ppm <= 1e6``;
- ``|size| <= LOTS_MAX`` (1e10 lots) per position;
- ``|collateral|, |quote_sum| <= ACCOUNT_MAX`` (2**61) per account;
- ``index_usd6 <= ACCOUNT_MAX``, ``strike * tick_size <= ACCOUNT_MAX``, ``|R_i[s]| <= ACCOUNT_MAX``;
- per instrument, ``C_i = mark*tick_value + index*lot_size/1e8 + otm_per_unit*lot_size/1e8
  + max_s |R_i[s]| + 3 <= ACCOUNT_MAX`` (usd6 per lot; the OTM term only for options, the
  array term only with an array): an upper bound of every per-lot quantity (position value,
  underlying value, OTM amount, scenario P&L, contingency, rounding);
- per account, ``sum_i |q_i| * C_i <= ACCOUNT_MAX``. Every intermediate and every output of the
  account (equity, scenario sums, requirements) is then bounded by ``3 * 2**61 < 2**63``.

The per-account check is first done globally (largest account lot total x largest ``C_i``);
only if that crude bound fails is it done per account (a float64 sparse product). The screens
are float64 (relative error ~1e-16 per term), so a book within ~1e-12 *below* a bound may be
refused; nothing above a bound can pass, and the 4x headroom between ``3 * ACCOUNT_MAX`` and
int64 absorbs the float error.

Updates
-------
``update_marks``, ``update_index``, ``update_risk``, ``clear_risk``, ``apply_mark_update``,
``update_collateral`` and ``update_quote_sum`` change the book in place (validated, and the
ranges are checked again by every :func:`remargin`, so direct writes to ``mark``, ``index_usd6``,
``risk``, ``has_array``, ``collateral`` or ``quote_sum`` are safe too). Positions, account modes
and contract terms are read-only arrays: changing them needs a new book
(``PortfolioBook.from_python`` or the constructor). Nothing is cached between calls to
:func:`remargin` except what depends only on those, so results always reflect the current marks.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np
import scipy.sparse as sp

from ..core.requirements import (N_SCENARIOS, OPTION, PERPETUAL, PM_MAINTENANCE_PPM, SHORT_OPTION_FLOOR_PPM,
                                 SHORT_OPTION_MIN_PPM, CALL, PUT)
from ..core.units import PPM, UNDERLYING_ATOMS
from .errors import RiskError

__all__ = [
    "ACCOUNT_MAX", "LOTS_MAX", "PortfolioBook", "RemarginError", "RemarginOverflowError", "RemarginResult",
    "STANDARD", "PORTFOLIO", "below_maintenance", "remargin",
]

STANDARD = 0
PORTFOLIO = 1

LOTS_MAX = 10**10
"""Largest ``|size|`` of one position (lots)."""

ACCOUNT_MAX = 1 << 61
"""Bound (usd6) on ``|collateral|``, ``|quote_sum|``, each instrument's per-lot bound ``C_i`` and
each account's ``sum |q_i| C_i`` (module doc). Three such terms still fit int64."""

_I64 = np.int64
_INT64_MAX = (1 << 63) - 1
_INT64_MIN = -(1 << 63)
_SCREEN = float(ACCOUNT_MAX)  # float screens compare against this: int64 headroom is 4x


class RemarginError(RiskError):
    """Invalid book contents (shape, range, duplicate position, unknown kind or mode...)."""


class RemarginOverflowError(RemarginError):
    """Inputs that could overflow int64 somewhere in the re-margin (see the module bounds)."""


class RemarginResult(NamedTuple):
    """Per account, int64: equity, initial and maintenance requirement (usd6), and the binding
    scenario (portfolio accounts: worst scenario, lowest index on ties, -1 without arrays;
    standard accounts: -1)."""

    equity: np.ndarray
    initial: np.ndarray
    maintenance: np.ndarray
    binding: np.ndarray


# -- input coercion --------------------------------------------------------------------------------
def _int64(name: str, x, shape: tuple | None = None) -> np.ndarray:
    """``x`` as a fresh int64 array, refusing floats and values outside int64."""
    a = np.asarray(x)
    if a.size == 0 and a.dtype.kind == "f":
        a = a.astype(_I64)
    if a.dtype == object:
        flat = a.ravel().tolist()
        for v in flat:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise RemarginError(f"{name}: integers only (got {v!r})")
            if not _INT64_MIN <= int(v) <= _INT64_MAX:
                raise RemarginOverflowError(f"{name}: {v} does not fit in int64")
        a = np.array([int(v) for v in flat], dtype=_I64).reshape(a.shape)
    elif a.dtype.kind == "b":
        a = a.astype(_I64)
    elif a.dtype.kind == "u":
        if a.size and int(a.max()) > _INT64_MAX:
            raise RemarginOverflowError(f"{name}: {int(a.max())} does not fit in int64")
        a = a.astype(_I64)
    elif a.dtype.kind != "i":
        raise RemarginError(f"{name}: integers only (got dtype {a.dtype})")
    a = np.array(a, dtype=_I64, copy=True)
    if shape is not None and a.shape != shape:
        raise RemarginError(f"{name}: shape {a.shape}, expected {shape}")
    return a


def _check_range(name: str, a: np.ndarray, lo: int | None, hi: int | None, err=RemarginError) -> None:
    if a.size == 0:
        return
    if lo is not None and int(a.min()) < lo:
        raise err(f"{name}: {int(a.min())} is below {lo}")
    if hi is not None and int(a.max()) > hi:
        raise err(f"{name}: {int(a.max())} is above {hi}")


def _ceil_ppm(x: np.ndarray, ppm) -> np.ndarray:
    """``ceil(x * ppm / 1e6)`` for ``x >= 0``, ``0 <= ppm <= 1e6``, without forming ``x * ppm``."""
    q, r = np.divmod(x, PPM)
    return q * ppm + (r * ppm + (PPM - 1)) // PPM


def _split_lot_product(x: np.ndarray, lot_size: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(A, B)`` with ``x * lot_size = A * 1e8 + B``, ``0 <= B < 1e8`` (``x, lot_size >= 0``)."""
    if x.size and float(np.max(x.astype(float) * lot_size.astype(float))) / UNDERLYING_ATOMS > _SCREEN:
        raise RemarginOverflowError(f"{what} per lot exceeds ACCOUNT_MAX usd6")
    xh, xl = np.divmod(x, UNDERLYING_ATOMS)
    lh, ll = np.divmod(lot_size, UNDERLYING_ATOMS)
    low = xl * ll  # < 1e16
    return x * lh + xh * ll + low // UNDERLYING_ATOMS, low % UNDERLYING_ATOMS


def _segment_sum(acct: np.ndarray, values: np.ndarray, n_accounts: int) -> np.ndarray:
    """Per-account int64 sums of ``values``; ``acct`` is sorted (non-decreasing)."""
    out = np.zeros(n_accounts, dtype=_I64)
    if acct.size:
        starts = np.flatnonzero(np.concatenate(([True], acct[1:] != acct[:-1])))
        out[acct[starts]] = np.add.reduceat(values, starts)
    return out


class _Derived(NamedTuple):
    mv: np.ndarray  # usd6 value of one lot at mark: mark * tick_value
    ua: np.ndarray  # index * lot_size = ua * 1e8 + ub
    ub: np.ndarray
    oa: np.ndarray  # max(OTM per unit, 0) * lot_size = oa * 1e8 + ob
    ob: np.ndarray
    per_lot: np.ndarray  # float64 C_i (module doc)


# -- the book --------------------------------------------------------------------------------------
class PortfolioBook:
    """Positions, instruments and accounts in columnar int64 form (see the module doc)."""

    def __init__(self, *, account_idx, instrument_idx, size, collateral, quote_sum, mode,
                 kind, option_type, strike, tick_size, lot_size, im_ppm, mm_ppm,
                 mark, index_usd6, risk=None, has_array=None):
        kind = _int64("kind", kind)
        if kind.ndim != 1:
            raise RemarginError("kind must be one-dimensional (one entry per instrument)")
        n_inst = kind.shape[0]
        ishape = (n_inst,)
        self.kind = kind
        self.option_type = _int64("option_type", option_type, ishape)
        self.strike = _int64("strike", strike, ishape)
        self.tick_size = _int64("tick_size", tick_size, ishape)
        self.lot_size = _int64("lot_size", lot_size, ishape)
        self.im_ppm = _int64("im_ppm", im_ppm, ishape)
        self.mm_ppm = _int64("mm_ppm", mm_ppm, ishape)
        if n_inst and not np.all((kind == PERPETUAL) | (kind == OPTION)):
            raise RemarginError("kind must be 0 (perpetual) or 1 (option)")
        opt = kind == OPTION
        if np.any(opt & (self.option_type != CALL) & (self.option_type != PUT)):
            raise RemarginError("an option's option_type must be 1 (call) or 2 (put)")
        _check_range("strike", self.strike, 0, None)
        _check_range("tick_size", self.tick_size, 1, None)
        _check_range("lot_size", self.lot_size, 1, None)
        _check_range("im_ppm", self.im_ppm, 0, PPM)
        _check_range("mm_ppm", self.mm_ppm, 0, PPM)
        tv, strike_usd6 = [], []
        for ts, ls, k in zip(self.tick_size.tolist(), self.lot_size.tolist(), self.strike.tolist()):
            if (ts * ls) % UNDERLYING_ATOMS:
                raise RemarginError("tick_size*lot_size must be a multiple of 1e8 (exact tick_value)")
            tv.append(ts * ls // UNDERLYING_ATOMS)
            strike_usd6.append(k * ts)
        self.tick_value = _int64("tick_value", tv, ishape)  # overflow error if it does not fit
        self._strike_usd6 = _int64("strike*tick_size", strike_usd6, ishape)
        _check_range("strike*tick_size", self._strike_usd6, None, ACCOUNT_MAX, RemarginOverflowError)

        self.mark = np.zeros(n_inst, dtype=_I64)
        self.index_usd6 = np.zeros(n_inst, dtype=_I64)
        self.risk = np.zeros((n_inst, N_SCENARIOS), dtype=_I64)
        self.has_array = np.zeros(n_inst, dtype=bool)
        self.update_marks(mark)
        self.update_index(index_usd6)
        if risk is not None:
            r = _int64("risk", risk, (n_inst, N_SCENARIOS))
            h = np.ones(n_inst, dtype=bool) if has_array is None else np.asarray(has_array, dtype=bool)
            if h.shape != ishape:
                raise RemarginError(f"has_array: shape {h.shape}, expected {ishape}")
            _check_range("risk", r, -ACCOUNT_MAX, ACCOUNT_MAX, RemarginOverflowError)
            self.risk[:] = np.where(h[:, None], r, 0)
            self.has_array[:] = h
        elif has_array is not None and np.any(has_array):
            raise RemarginError("has_array set without risk arrays")

        mode = _int64("mode", mode)
        if mode.ndim != 1:
            raise RemarginError("mode must be one-dimensional (one entry per account)")
        n_acc = mode.shape[0]
        if n_acc and not np.all((mode == STANDARD) | (mode == PORTFOLIO)):
            raise RemarginError("mode must be 0 (standard) or 1 (portfolio)")
        self.mode = mode
        self.collateral = np.zeros(n_acc, dtype=_I64)
        self.quote_sum = np.zeros(n_acc, dtype=_I64)
        self.update_collateral(collateral)
        self.update_quote_sum(quote_sum)

        acc = _int64("account_idx", account_idx)
        ins = _int64("instrument_idx", instrument_idx, acc.shape)
        q = _int64("size", size, acc.shape)
        if acc.ndim != 1:
            raise RemarginError("positions must be one-dimensional columns")
        _check_range("account_idx", acc, 0, n_acc - 1)
        _check_range("instrument_idx", ins, 0, n_inst - 1)
        _check_range("size", q, -LOTS_MAX, LOTS_MAX, RemarginOverflowError)
        order = np.lexsort((ins, acc))
        acc, ins, q = acc[order], ins[order], q[order]
        if acc.size > 1 and np.any((acc[1:] == acc[:-1]) & (ins[1:] == ins[:-1])):
            raise RemarginError("an (account, instrument) pair appears twice: one entry per position")
        self.account_idx, self.instrument_idx, self.size = acc, ins, q
        self._build_positions()
        # positions, modes and contract terms are fixed for the book's life (derived structures
        # depend on them): read-only. Marks, index, risk arrays and balances are updatable.
        for a in (self.account_idx, self.instrument_idx, self.size, self.mode, self.kind, self.option_type,
                  self.strike, self.tick_size, self.lot_size, self.tick_value, self.im_ppm, self.mm_ppm):
            a.flags.writeable = False

    # -- static, position-only structures ----------------------------------------------------------
    def _build_positions(self) -> None:
        n_acc, n_inst = self.n_accounts, self.n_instruments
        acc, ins, q = self.account_idx, self.instrument_idx, self.size
        indptr = np.zeros(n_acc + 1, dtype=_I64)
        np.cumsum(np.bincount(acc, minlength=n_acc), out=indptr[1:])
        idx_dtype = np.int32 if max(q.size, n_inst) < (1 << 31) else _I64
        self._Q = sp.csr_matrix((q, ins.astype(idx_dtype), indptr.astype(idx_dtype)), shape=(n_acc, n_inst))
        self._lots = np.abs(q)
        self._total_lots = _segment_sum(acc, self._lots, n_acc)  # <= nnz * LOTS_MAX: fits easily
        self._max_account_lots = int(self._total_lots.max()) if n_acc else 0
        self._abs_Q = None  # float64 |Q|, built on demand for the per-account overflow check
        emode = self.mode[acc]
        nz = q != 0
        self._e_std_mode = np.flatnonzero(nz & (emode == STANDARD))
        self._e_pm_short_opt = np.flatnonzero((emode == PORTFOLIO) & (q < 0) & (self.kind[ins] == OPTION))
        self._e_pm_nz = nz & (emode == PORTFOLIO)

    @property
    def n_accounts(self) -> int:
        return self.mode.shape[0]

    @property
    def n_instruments(self) -> int:
        return self.kind.shape[0]

    @property
    def nnz(self) -> int:
        return self.size.shape[0]

    # -- in-place updates ---------------------------------------------------------------------------
    def _select(self, instruments, n: int) -> np.ndarray | slice:
        if instruments is None:
            return slice(None)
        sel = _int64("instruments", instruments)
        _check_range("instruments", sel, 0, n - 1)
        return sel

    def _values(self, name, values, sel, n):
        count = n if isinstance(sel, slice) else sel.shape[0]
        return _int64(name, values, (count,))

    def update_marks(self, marks, instruments=None) -> None:
        """Set mark prices (ticks, ``>= 0``) of all instruments, or of ``instruments``."""
        sel = self._select(instruments, self.n_instruments)
        v = self._values("mark", marks, sel, self.n_instruments)
        _check_range("mark", v, 0, None)
        self.mark[sel] = v

    def update_index(self, index_usd6, instruments=None) -> None:
        """Set the underlying index (usd6 per whole unit, ``0..ACCOUNT_MAX``) per instrument."""
        sel = self._select(instruments, self.n_instruments)
        v = self._values("index_usd6", index_usd6, sel, self.n_instruments)
        _check_range("index_usd6", v, 0, ACCOUNT_MAX, RemarginOverflowError)
        self.index_usd6[sel] = v

    def update_risk(self, risk, instruments=None) -> None:
        """Set risk arrays (rows of 16 usd6 P&L per long lot, ``|R| <= ACCOUNT_MAX``); those
        instruments then have an array."""
        sel = self._select(instruments, self.n_instruments)
        count = self.n_instruments if isinstance(sel, slice) else sel.shape[0]
        r = _int64("risk", risk, (count, N_SCENARIOS))
        _check_range("risk", r, -ACCOUNT_MAX, ACCOUNT_MAX, RemarginOverflowError)
        self.risk[sel] = r
        self.has_array[sel] = True

    def clear_risk(self, instruments=None) -> None:
        """Forget the risk arrays of ``instruments`` (all if None): positions in them fall back
        to standard requirements in portfolio accounts."""
        sel = self._select(instruments, self.n_instruments)
        self.risk[sel] = 0
        self.has_array[sel] = False

    def apply_mark_update(self, instruments, marks, risk=None, index_usd6=None) -> None:
        """One mark update: marks (and optionally risk arrays and index) of ``instruments``."""
        self.update_marks(marks, instruments)
        if index_usd6 is not None:
            self.update_index(index_usd6, instruments)
        if risk is not None:
            self.update_risk(risk, instruments)

    def update_collateral(self, collateral, accounts=None) -> None:
        sel = self._select(accounts, self.n_accounts)
        v = self._values("collateral", collateral, sel, self.n_accounts)
        _check_range("collateral", v, -ACCOUNT_MAX, ACCOUNT_MAX, RemarginOverflowError)
        self.collateral[sel] = v

    def update_quote_sum(self, quote_sum, accounts=None) -> None:
        sel = self._select(accounts, self.n_accounts)
        v = self._values("quote_sum", quote_sum, sel, self.n_accounts)
        _check_range("quote_sum", v, -ACCOUNT_MAX, ACCOUNT_MAX, RemarginOverflowError)
        self.quote_sum[sel] = v

    # -- construction from Python objects ------------------------------------------------------------
    @classmethod
    def from_python(cls, specs: Sequence, marks: Sequence[int], index_usd6: Sequence[int],
                    risk_arrays: Sequence[Sequence[int] | None], collateral: Sequence[int],
                    quote_sum: Sequence[int], modes: Sequence[int],
                    positions: Sequence[tuple[int, int, int]]) -> "PortfolioBook":
        """Build from Python ints. ``specs``: objects with the :class:`InstrumentSpec` fields
        (``kind``, ``option_type``, ``strike``, ``tick_size``, ``lot_size``, ``im_ppm``,
        ``mm_ppm``); instrument *i* is ``specs[i]`` (its position in the list, not ``spec.id``).
        ``risk_arrays[i]`` is 16 ints or None; ``positions``: ``(account, instrument, size)``."""
        n = len(specs)
        if not (len(marks) == len(index_usd6) == len(risk_arrays) == n):
            raise RemarginError("specs, marks, index_usd6 and risk_arrays must have one entry per instrument")
        has = [a is not None for a in risk_arrays]
        risk = [list(a) if a is not None else [0] * N_SCENARIOS for a in risk_arrays]
        for a in risk:
            if len(a) != N_SCENARIOS:
                raise RemarginError(f"a risk array has {N_SCENARIOS} entries (got {len(a)})")
        pos = list(positions)
        return cls(
            account_idx=[p[0] for p in pos], instrument_idx=[p[1] for p in pos], size=[p[2] for p in pos],
            collateral=list(collateral), quote_sum=list(quote_sum), mode=list(modes),
            kind=[int(s.kind) for s in specs], option_type=[int(s.option_type) for s in specs],
            strike=[s.strike for s in specs], tick_size=[s.tick_size for s in specs],
            lot_size=[s.lot_size for s in specs], im_ppm=[s.im_ppm for s in specs],
            mm_ppm=[s.mm_ppm for s in specs], mark=list(marks), index_usd6=list(index_usd6),
            risk=np.array(risk, dtype=object).reshape(n, N_SCENARIOS) if n else np.zeros((0, N_SCENARIOS), _I64),
            has_array=np.array(has, dtype=bool),
        )

    # -- derived per-instrument quantities (recomputed on every re-margin: O(n_instruments)) -----------
    def _derive(self) -> _Derived:
        mark, tv, lot = self.mark, self.tick_value, self.lot_size
        # re-check what the setters check, in case the public arrays were written directly
        _check_range("mark", mark, 0, None)
        _check_range("index_usd6", self.index_usd6, 0, ACCOUNT_MAX, RemarginOverflowError)
        _check_range("risk", self.risk, -ACCOUNT_MAX, ACCOUNT_MAX, RemarginOverflowError)
        _check_range("collateral", self.collateral, -ACCOUNT_MAX, ACCOUNT_MAX, RemarginOverflowError)
        _check_range("quote_sum", self.quote_sum, -ACCOUNT_MAX, ACCOUNT_MAX, RemarginOverflowError)
        mv_f = mark.astype(float) * tv.astype(float)
        if mv_f.size and float(mv_f.max()) > _SCREEN:
            raise RemarginOverflowError("mark * tick_value (usd6 per lot) exceeds ACCOUNT_MAX")
        mv = mark * tv
        ua, ub = _split_lot_product(self.index_usd6, lot, "underlying value")
        per_unit = np.where(self.option_type == CALL, self._strike_usd6 - self.index_usd6,
                            self.index_usd6 - self._strike_usd6)
        per_unit = np.where(self.kind == OPTION, np.maximum(per_unit, 0), 0)
        oa, ob = _split_lot_product(per_unit, lot, "OTM amount")
        max_r = np.where(self.has_array, np.abs(self.risk).max(axis=1, initial=0), 0).astype(float)
        per_lot = mv_f + ua.astype(float) + oa.astype(float) + max_r + 3.0
        if per_lot.size and float(per_lot.max()) > _SCREEN:
            raise RemarginOverflowError("an instrument's per-lot bound C_i exceeds ACCOUNT_MAX")
        return _Derived(mv, ua, ub, oa, ob, per_lot)

    def _check_accounts(self, per_lot: np.ndarray) -> None:
        if not per_lot.size or self._max_account_lots * float(per_lot.max()) <= _SCREEN:
            return
        if self._abs_Q is None:
            Q = self._Q
            self._abs_Q = sp.csr_matrix((np.abs(Q.data).astype(float), Q.indices, Q.indptr), shape=Q.shape)
        bound = self._abs_Q @ per_lot
        if float(bound.max()) > _SCREEN:
            worst = int(np.argmax(bound))
            raise RemarginOverflowError(f"account {worst}: sum |q_i| C_i ~ {float(bound[worst]):.3e} usd6 "
                                        f"exceeds ACCOUNT_MAX = 2**61")


# -- the sweep -------------------------------------------------------------------------------------
def _standard_entries(book: PortfolioBook, d: _Derived, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(initial, maintenance) of entries ``e`` under standard margin (core formula, per entry)."""
    i = book.instrument_idx[e]
    q = book.size[e]
    L = np.abs(q)
    premium = L * d.mv[i]
    im_ppm, mm_ppm = book.im_ppm[i], book.mm_ppm[i]
    perp = book.kind[i] == PERPETUAL
    im = np.where(perp, _ceil_ppm(premium, im_ppm), premium)
    mm = np.where(perp, _ceil_ppm(premium, mm_ppm), premium)
    short_opt = np.flatnonzero(~perp & (q < 0))
    if short_opt.size:
        j = i[short_opt]
        Ls = L[short_opt]
        u = Ls * d.ua[j] - ((-(Ls * d.ub[j])) // UNDERLYING_ATOMS)
        otm = Ls * d.oa[j] + (Ls * d.ob[j]) // UNDERLYING_ATOMS
        scan = _ceil_ppm(u, im_ppm[short_opt]) - otm
        floor = _ceil_ppm(u, SHORT_OPTION_FLOOR_PPM)
        p = premium[short_opt]
        im[short_opt] = p + np.maximum(scan, floor)
        mm[short_opt] = p + _ceil_ppm(u, mm_ppm[short_opt])
    return im, mm


def remargin(book: PortfolioBook) -> RemarginResult:
    """Equity, initial and maintenance requirement and binding scenario of every account, exactly
    as the core computes them (module doc). int64 arrays of length ``book.n_accounts``."""
    d = book._derive()
    book._check_accounts(d.per_lot)
    n_acc = book.n_accounts
    acc = book.account_idx

    # an all-zero array margins like no array (core rule: requirements.has_risk_array)
    has = book.has_array & np.any(book.risk != 0, axis=1)

    # one sparse product: 16 scenario sums and the position value of every account
    M = np.empty((book.n_instruments, N_SCENARIOS + 1), dtype=_I64)
    M[:, :N_SCENARIOS] = book.risk
    M[~has, :N_SCENARIOS] = 0
    M[:, N_SCENARIOS] = d.mv
    Y = book._Q @ M
    equity = book.collateral + book.quote_sum + Y[:, N_SCENARIOS]
    sums = Y[:, :N_SCENARIOS]  # sum_i q_i R_i[s] = -loss_s

    # which entries are charged standard requirements, which pay the short-option minimum
    all_arrays = bool(has.all())
    if all_arrays:
        std_e = book._e_std_mode
        som_e = book._e_pm_short_opt
        no_arr_pm = None
    else:
        e_has = has[book.instrument_idx]
        no_arr_pm = np.flatnonzero(book._e_pm_nz & ~e_has)
        std_e = np.union1d(book._e_std_mode, no_arr_pm)
        som_e = book._e_pm_short_opt[e_has[book._e_pm_short_opt]]

    im_e, mm_e = _standard_entries(book, d, std_e)
    std_acc = acc[std_e]
    std_im = _segment_sum(std_acc, im_e, n_acc)
    std_mm = _segment_sum(std_acc, mm_e, n_acc)

    # portfolio add-ons: short-option minimum and contingency (1 usd6 per lot with an array)
    j = book.instrument_idx[som_e]
    L = book._lots[som_e]
    u = L * d.ua[j] - ((-(L * d.ub[j])) // UNDERLYING_ATOMS)
    som = _segment_sum(acc[som_e], _ceil_ppm(u, SHORT_OPTION_MIN_PPM), n_acc)
    contingency = book._total_lots.copy()
    if no_arr_pm is not None and no_arr_pm.size:
        contingency -= _segment_sum(acc[no_arr_pm], book._lots[no_arr_pm], n_acc)

    binding = np.argmin(sums, axis=1).astype(_I64)  # max loss = min sum; argmin keeps the lowest index
    worst = np.maximum(-sums[np.arange(n_acc), binding], 0)
    any_array = contingency > 0  # some non-zero position with an array
    worst = np.where(any_array, worst, 0)
    core = worst + som + contingency
    pm = book.mode == PORTFOLIO
    initial = np.where(pm, core + std_im, std_im)
    maintenance = np.where(pm, _ceil_ppm(core, PM_MAINTENANCE_PPM) + std_mm, std_mm)
    binding = np.where(pm & any_array, binding, -1)
    return RemarginResult(equity, initial, maintenance, binding)


def below_maintenance(book: PortfolioBook, result: RemarginResult | None = None) -> np.ndarray:
    """Indices (int64, ascending) of accounts whose equity is below their maintenance
    requirement. Pass ``result`` to reuse a :func:`remargin` already computed on ``book``."""
    r = remargin(book) if result is None else result
    return np.flatnonzero(r.equity < r.maintenance).astype(_I64)
