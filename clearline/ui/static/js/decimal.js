// Exact decimal <-> integer conversions with BigInt (no floats anywhere an order is built).
//
// The node's integer units (README "Units"): a price is in ticks, one tick = tick_size usd6
// per whole underlying; a size is in lots, one lot = lot_size atoms of 1e-8 underlying.
// So ticks = price_usd6 / tick_size and lots = size_atoms / lot_size, both exact or an error
// (a price off the tick grid is refused here, not rounded).

export const USD_DECIMALS = 6;
export const ATOM_DECIMALS = 8;

const DEC_RE = /^(\d+)(?:\.(\d*))?$|^\.(\d+)$/;

export class DecimalError extends Error {}

/** Parse a non-negative decimal string into an integer number of 10^-decimals units. */
export function parseUnits(text, decimals) {
  const s = String(text ?? "").trim().replace(/_/g, "").replace(/,/g, "");
  const m = DEC_RE.exec(s);
  if (!m) throw new DecimalError(`"${text}" is not a decimal number`);
  const whole = m[1] ?? "0";
  let frac = m[2] ?? m[3] ?? "";
  frac = frac.replace(/0+$/, "");
  if (frac.length > decimals) throw new DecimalError(`"${text}" has more than ${decimals} decimals`);
  return BigInt(whole) * 10n ** BigInt(decimals) + BigInt((frac + "0".repeat(decimals)).slice(0, decimals) || "0");
}

/** Format an integer number of 10^-decimals units; `dp` fixes the shown decimals (rounded half away). */
export function formatUnits(value, decimals, dp = null, group = true) {
  let v = BigInt(value);
  const neg = v < 0n;
  if (neg) v = -v;
  if (dp !== null && dp < decimals) {
    const q = 10n ** BigInt(decimals - dp);
    v = (v + q / 2n) / q;
    decimals = dp;
  }
  const b = 10n ** BigInt(decimals);
  let whole = (v / b).toString();
  let frac = decimals > 0 ? (v % b).toString().padStart(decimals, "0") : "";
  if (dp === null) frac = frac.replace(/0+$/, "");
  else if (frac.length < dp) frac = frac.padEnd(dp, "0");
  if (group) whole = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (neg && (whole !== "0" || /[1-9]/.test(frac)) ? "-" : "") + whole + (frac ? "." + frac : "");
}

/** Decimals needed to show multiples of `step` units of 10^-decimals exactly. */
export function stepDecimals(step, decimals) {
  let s = BigInt(step);
  let d = decimals;
  while (d > 0 && s % 10n === 0n) { s /= 10n; d -= 1; }
  return d;
}

/** Instrument helpers built from its integer spec (tick_size usd6, lot_size atoms). */
export function unitsFor(spec) {
  const tick = BigInt(spec.tick_size);
  const lot = BigInt(spec.lot_size);
  const priceDp = stepDecimals(tick, USD_DECIMALS);
  const sizeDp = stepDecimals(lot, ATOM_DECIMALS);
  const tickValue = (tick * lot) / 10n ** BigInt(ATOM_DECIMALS); // usd6 per tick per lot
  return {
    tick, lot, priceDp, sizeDp, tickValue,
    priceToTicks(text) {
      const usd6 = parseUnits(text, USD_DECIMALS);
      if (usd6 % tick !== 0n)
        throw new DecimalError(`price must be a multiple of the tick ${formatUnits(tick, USD_DECIMALS)}`);
      return usd6 / tick;
    },
    sizeToLots(text) {
      const atoms = parseUnits(text, ATOM_DECIMALS);
      if (atoms % lot !== 0n)
        throw new DecimalError(`size must be a multiple of the lot ${formatUnits(lot, ATOM_DECIMALS)}`);
      return atoms / lot;
    },
    ticksToPrice(ticks, group = true) { return formatUnits(BigInt(ticks) * tick, USD_DECIMALS, priceDp, group); },
    lotsToSize(lots, group = true) { return formatUnits(BigInt(lots) * lot, ATOM_DECIMALS, sizeDp, group); },
    /** notional usd6 = ticks * lots * tick_value (exact) */
    notional(ticks, lots) { return BigInt(ticks) * BigInt(lots) * tickValue; },
  };
}

/** Ceil(a * ppm / 1e6) for non-negative a: requirements round against the account. */
export function ppmUp(amount, ppm) {
  const a = BigInt(amount) * BigInt(ppm);
  return (a + 999_999n) / 1_000_000n;
}

/** Best-effort Number from a decimal string or integer (display and charts only). */
export function num(x) {
  if (x === null || x === undefined || x === "") return NaN;
  return typeof x === "number" ? x : Number(String(x).replace(/,/g, ""));
}

/** Show a usd decimal string (or number) with grouping and fixed decimals. */
export function usd(x, dp = 2) {
  const n = num(x);
  if (!Number.isFinite(n)) return "—";
  return n.toLocaleString("en-US", { minimumFractionDigits: dp, maximumFractionDigits: dp });
}

export function signed(x, dp = 2) {
  const n = num(x);
  if (!Number.isFinite(n)) return "—";
  return (n > 0 ? "+" : "") + usd(n, dp);
}
