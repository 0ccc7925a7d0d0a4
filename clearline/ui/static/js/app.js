// clearline trading screen: wires the REST API, the WebSocket stream, the demo wallet and
// the views. Shapes are those of docs/API.md. All order arithmetic is exact (BigInt, see
// decimal.js); floats are used only to draw.
import { Api, ApiError, Stream } from "./api.js";
import { DemoWallet } from "./wallet.js";
import { PriceChart, DepthChart, RiskChart } from "./charts.js";
import { unitsFor, parseUnits, formatUnits, num, usd, signed, USD_DECIMALS, DecimalError } from "./decimal.js";
import { $, $$, el, setText, hms, short, toast, fillBody } from "./dom.js";
import { OptionsView, RiskView, L1View } from "./panels.js";

const api = new Api();
const S = {
  info: null,
  instruments: [], bySymbol: new Map(), byId: new Map(),
  sym: null,
  book: { bids: new Map(), asks: new Map() }, // ticks(string) -> [priceStr, sizeStr, count]
  marks: {}, index: {},
  trades: [],
  funding: null,
  accountId: null, account: null, positions: [], orders: [], fills: [], margin: null,
  side: 0, type: "limit", tab: "positions", res: 5, group: 1n,
  lastNonce: 0n,
};
let wallet;
let stream;
let priceChart, depthChart;
let views;

// ---------------------------------------------------------------- instruments

function addInstrument(ins) {
  const spec = { ...ins, u: unitsFor({ tick_size: ins.tick_size_usd6, lot_size: ins.lot_size_atoms }) };
  S.bySymbol.set(ins.symbol, spec);
  S.byId.set(ins.id, spec);
  return spec;
}

async function loadInstruments() {
  const { instruments } = await api.get("/instruments");
  S.instruments = instruments;
  for (const ins of instruments) addInstrument(ins);
  renderInstrumentSelect();
}

function renderInstrumentSelect() {
  const sel = $("#instrument");
  const perps = S.instruments.filter((i) => i.kind === "perpetual");
  const opts = S.instruments.filter((i) => i.kind === "option");
  const groups = [el("optgroup", { label: "Perpetuals" }, perps.map((i) => el("option", { value: i.symbol, text: i.symbol })))];
  const byU = new Map();
  for (const o of opts) {
    const k = `${o.underlying} options · ${new Date(o.expiry_ms).toISOString().slice(5, 16).replace("T", " ")}`;
    if (!byU.has(k)) byU.set(k, []);
    byU.get(k).push(o);
  }
  for (const [label, list] of byU) {
    list.sort((a, b) => num(a.strike) - num(b.strike) || (a.option_type < b.option_type ? -1 : 1));
    groups.push(el("optgroup", { label }, list.map((i) => el("option", { value: i.symbol, text: i.symbol }))));
  }
  if (S.sym && !S.bySymbol.has(S.sym)) groups.push(el("option", { value: S.sym, text: S.sym + " (settled)" }));
  sel.replaceChildren(...groups);
  if (S.sym) sel.value = S.sym;
}

// ---------------------------------------------------------------- market data

function spec() { return S.bySymbol.get(S.sym); }

function levelKey(u, price) {
  try { return u.priceToTicks(price).toString(); } catch { return price; }
}

function applyLevels(side, levels, replace) {
  const u = spec().u;
  const m = S.book[side];
  if (replace) m.clear();
  for (const [price, size, count] of levels) {
    const k = levelKey(u, price);
    if (num(size) === 0) m.delete(k);
    else m.set(k, [price, size, count]);
  }
}

function sortedLevels(side) {
  const arr = [...S.book[side].entries()].map(([k, v]) => [BigInt(k), v]);
  arr.sort((a, b) => (side === "bids" ? (b[0] > a[0] ? 1 : -1) : (a[0] > b[0] ? 1 : -1)));
  return arr;
}

async function selectSymbol(sym) {
  if (!S.bySymbol.has(sym)) return;
  const old = S.sym;
  if (old) {
    stream.unsubscribe(`book:${old}`);
    stream.unsubscribe(`trades:${old}`);
  }
  S.sym = sym;
  $("#instrument").value = sym;
  const sp = spec();
  S.book = { bids: new Map(), asks: new Map() };
  S.trades = [];
  S.funding = null;
  for (const id of ["#book-sym", "#chart-sym", "#ticket-sym", "#tape-sym"]) setText(id, sym);
  setText("#t-size-unit", sp.underlying);
  $("#t-price").value = "";
  $("#t-price").placeholder = `tick ${formatUnits(sp.u.tick, USD_DECIMALS)}`;
  $("#t-size").placeholder = `lot ${sp.lot_size}`;
  priceChart.setPrecision(sp.u.priceDp);
  renderGroupSelect();
  stream.subscribe(`book:${sym}`, {
    snapshot: (d) => { if (S.sym !== sym) return; applyLevels("bids", d.bids, true); applyLevels("asks", d.asks, true); dirty.book = true; },
    update: (d) => { if (S.sym !== sym) return; applyLevels("bids", d.bids || [], false); applyLevels("asks", d.asks || [], false); dirty.book = true; },
  });
  stream.subscribe(`trades:${sym}`, {
    snapshot: (d) => { if (S.sym !== sym) return; S.trades = [...d.trades].reverse().slice(0, 80); dirty.tape = true; },
    update: (d) => {
      if (S.sym !== sym) return;
      for (const t of d.trades) {
        S.trades.unshift({ ...t, fresh: true });
        priceChart.trade({ t: t.time_ms, price: num(t.price), size: num(t.size) });
      }
      S.trades.length = Math.min(S.trades.length, 80);
      dirty.tape = true;
    },
  });
  await loadChart();
  refreshFunding();
  renderTicketEstimates();
  dirty.account = true;
}

async function loadChart() {
  const sym = S.sym;
  try {
    const r = await api.get(`/candles/${encodeURIComponent(sym)}?interval_s=${S.res}&limit=400`);
    if (S.sym !== sym) return;
    priceChart.setResolution(S.res);
    priceChart.loadBars(r.candles.map((c) => ({ t: c.t, open: num(c.open), high: num(c.high), low: num(c.low),
      close: num(c.close), volume: num(c.volume) })));
    const m = S.marks[sym];
    if (m) priceChart.markPrice(m.time_ms, num(m.mark));
    priceChart.fit(r.candles.length);
  } catch (exc) {
    console.warn("candles", exc);
  }
}

async function refreshFunding() {
  const sp = spec();
  if (!sp || sp.kind !== "perpetual") { S.funding = null; renderStats(); return; }
  try {
    S.funding = await api.get(`/funding/${encodeURIComponent(sp.symbol)}?limit=1`);
  } catch { S.funding = null; }
  renderStats();
}

function onMarks(d) {
  Object.assign(S.marks, d.marks || {});
  Object.assign(S.index, d.index || {});
  const m = S.sym && d.marks?.[S.sym];
  if (m) priceChart.markPrice(m.time_ms, num(m.mark));
  dirty.stats = true;
  renderTicketEstimates();
}

// ---------------------------------------------------------------- rendering (batched per frame)

const dirty = { book: false, tape: false, stats: false, account: false };
function frame() {
  if (dirty.book) { dirty.book = false; renderBook(); dirty.stats = true; }
  if (dirty.tape) { dirty.tape = false; renderTape(); dirty.stats = true; }
  if (dirty.stats) { dirty.stats = false; renderStats(); }
  if (dirty.account) { dirty.account = false; renderAccount(); }
  requestAnimationFrame(frame);
}

function rowsThatFit(container) {
  return Math.max(3, Math.floor(container.clientHeight / 17));
}

/** Levels of one side aggregated into price buckets of `group` ticks (bids floor, asks ceil),
 * best first: [{k: bucket ticks (BigInt), lots (BigInt), orders, prices: Set of exact ticks}]. */
function groupedLevels(side, u, group) {
  const out = [];
  for (const [t, [, s, c]] of sortedLevels(side)) {
    const k = side === "bids" ? (t / group) * group : ((t + group - 1n) / group) * group;
    let lots;
    try { lots = u.sizeToLots(s); } catch { continue; }
    const last = out.at(-1);
    if (last && last.k === k) { last.lots += lots; last.orders += c ?? 0; last.prices.add(t.toString()); }
    else out.push({ k, lots, orders: c ?? 0, prices: new Set([t.toString()]) });
  }
  return out;
}

function renderGroupSelect() {
  const sp = spec();
  const sel = $("#book-group");
  const steps = [1n, 10n, 100n, 1000n].filter((g) => g * sp.u.tick <= 1_000_000_000n);
  sel.replaceChildren(...steps.map((g) => el("option", { value: g.toString(), text: formatUnits(g * sp.u.tick, USD_DECIMALS) })));
  if (!steps.includes(S.group)) S.group = 1n;
  sel.value = S.group.toString();
}

function renderBook() {
  const sp = spec();
  if (!sp) return;
  const u = sp.u;
  const asksEl = $("#book-asks");
  const bidsEl = $("#book-bids");
  const n = Math.min(rowsThatFit(asksEl), rowsThatFit(bidsEl));
  const g = S.group;
  const asks = groupedLevels("asks", u, g).slice(0, n);
  const bids = groupedLevels("bids", u, g).slice(0, n);
  const mine = new Set(S.orders.filter((o) => o.symbol === S.sym).map((o) => levelKey(u, o.price)));
  const withCum = (rows) => { let c = 0n; return rows.map((r) => ({ ...r, cum: (c += r.lots) })); };
  const askRows = withCum(asks);
  const bidRows = withCum(bids);
  const max = Number(askRows.at(-1)?.cum ?? 0n) > Number(bidRows.at(-1)?.cum ?? 0n) ? askRows.at(-1).cum : bidRows.at(-1)?.cum ?? 1n;
  const row = (side) => (r) => el("div", {
    class: `lvl ${side}${[...r.prices].some((t) => mine.has(t)) ? " mine" : ""}`,
    dataset: { ticks: r.k.toString(), price: u.ticksToPrice(r.k, false) },
    title: `${r.orders} order${r.orders === 1 ? "" : "s"}`,
    onclick: () => { $("#t-price").value = u.ticksToPrice(r.k, false); setType("limit"); renderTicketEstimates(); },
  }, [
    el("div", { class: "bar", style: `width:${(100 * Number(r.cum) / Number(max || 1n)).toFixed(1)}%` }),
    el("span", { class: "px", text: u.ticksToPrice(r.k) }),
    el("span", { text: u.lotsToSize(r.lots) }),
    el("span", { text: u.lotsToSize(r.cum) }),
  ]);
  asksEl.replaceChildren(...askRows.slice().reverse().map(row("ask")));
  bidsEl.replaceChildren(...bidRows.map(row("bid")));
  const allBids = sortedLevels("bids");
  const allAsks = sortedLevels("asks");
  const bestBid = allBids[0]?.[0];
  const bestAsk = allAsks[0]?.[0];
  const mark = S.marks[S.sym]?.mark;
  const spread = bestBid !== undefined && bestAsk !== undefined ? u.ticksToPrice(bestAsk - bestBid) : "—";
  $("#book-mid").replaceChildren(
    el("span", { text: mark ? fmtPrice(sp, mark) : "—", title: "mark price" }),
    el("span", { class: "muted small", text: `spread ${spread}` }),
  );
  setText("#st-spread", spread);
  // depth: the 50 best levels a side, within 2% of the mid so a far order does not flatten it
  const mid = bestBid !== undefined && bestAsk !== undefined ? Number(bestBid + bestAsk) / 2
    : Number(bestBid ?? bestAsk ?? 0n);
  const spreadTicks = bestBid !== undefined && bestAsk !== undefined ? Number(bestAsk - bestBid) : 0;
  const half = Math.max(mid * 0.02, spreadTicks * 3);
  const near = ([t]) => Math.abs(Number(t) - mid) <= half;
  const px = (t) => Number(t * u.tick) / 1e6;
  const sz = (s) => num(s);
  const db = allBids.slice(0, 50).filter(near).map(([t, [, s]]) => [px(t), sz(s)]);
  const da = allAsks.slice(0, 50).filter(near).map(([t, [, s]]) => [px(t), sz(s)]);
  depthChart.set(db, da);
  setText("#depth-note", `${allBids.length} bids · ${allAsks.length} asks · ±${(100 * half / (mid || 1)).toFixed(1)}%`);
}

function fmtSize(u, s) {
  try { return u.lotsToSize(u.sizeToLots(s)); } catch { return s; }
}
function fmtPrice(sp, p) {
  if (p === null || p === undefined) return "—";
  try { return sp.u.ticksToPrice(sp.u.priceToTicks(p)); } catch { return usd(p, sp.u.priceDp); }
}

function renderTape() {
  const sp = spec();
  if (!sp) return;
  const n = rowsThatFit($("#tape"));
  const rows = S.trades.slice(0, n).map((t) => {
    const r = el("div", { class: `tick ${t.side === "buy" ? "b" : "s"}${t.fresh ? " fresh" : ""}` }, [
      el("span", { class: "px", text: fmtPrice(sp, t.price) }),
      el("span", { text: fmtSize(sp.u, t.size) }),
      el("span", { text: hms(t.time_ms) }),
    ]);
    t.fresh = false;
    return r;
  });
  $("#tape").replaceChildren(...rows);
}

function renderStats() {
  const sp = spec();
  if (!sp) return;
  const m = S.marks[sp.symbol];
  setText("#st-mark", m ? fmtPrice(sp, m.mark) : "—");
  const ix = S.index[sp.underlying];
  setText("#st-index", ix ? `${usd(ix.price, 2)}${ix.unconfirmed ? " ⚠" : ""}` : "—");
  setText("#st-last", S.trades[0] ? fmtPrice(sp, S.trades[0].price) : "—");
  if (S.funding?.current) {
    const r = num(S.funding.current.last_rate) * 100;
    const next = S.funding.current.next_funding_ms;
    const secs = next ? Math.max(0, Math.round((next - Date.now()) / 1000)) : null;
    setText("#st-funding", `${r >= 0 ? "+" : ""}${r.toFixed(4)}%${secs !== null ? ` · ${secs}s` : ""}`);
  } else if (sp.kind === "option") {
    setText("#st-funding", `${sp.option_type} ${sp.strike} · exp ${hms(sp.expiry_ms)}`);
  } else setText("#st-funding", "—");
}

// ---------------------------------------------------------------- ticket

function setSide(side) {
  S.side = side;
  $("#t-buy").classList.toggle("on", side === 0);
  $("#t-sell").classList.toggle("on", side === 1);
  const b = $("#t-submit");
  b.className = `btn btn-wide ${side === 0 ? "btn-buy" : "btn-sell"}`;
  renderTicketEstimates();
}

function setType(type) {
  S.type = type;
  $("#t-limit").classList.toggle("on", type === "limit");
  $("#t-market").classList.toggle("on", type === "market");
  $("#t-price").disabled = type === "market";
  $("#t-price").closest(".field").classList.toggle("disabled", type === "market");
  $("#t-post").disabled = type === "market";
  $("#t-ioc").disabled = type === "market";
  renderTicketEstimates();
}

/** Worst acceptable price of a market order: 5% through the touch (or the mark), on the tick grid. */
function protectiveTicks(sp, side) {
  const levels = sortedLevels(side === 0 ? "asks" : "bids");
  let ref = levels[0]?.[0];
  if (ref === undefined) {
    const m = S.marks[sp.symbol]?.mark;
    if (!m) return null;
    ref = sp.u.priceToTicks(m);
  }
  return side === 0 ? (ref * 105n + 99n) / 100n : (ref * 95n) / 100n || 1n;
}

function ticketOrder() {
  const sp = spec();
  const u = sp.u;
  const sizeText = $("#t-size").value.trim();
  if (!sizeText) throw new DecimalError("enter a size");
  const lots = u.sizeToLots(sizeText);
  if (lots <= 0n) throw new DecimalError("size must be positive");
  let ticks;
  if (S.type === "market") {
    ticks = protectiveTicks(sp, S.side);
    if (ticks === null) throw new DecimalError("no price to bound a market order");
  } else {
    const priceText = $("#t-price").value.trim();
    if (!priceText) throw new DecimalError("enter a price");
    ticks = u.priceToTicks(priceText);
    if (ticks <= 0n) throw new DecimalError("price must be positive");
  }
  const post = S.type === "limit" && $("#t-post").checked;
  const reduce = $("#t-reduce").checked;
  const tif = S.type === "market" || $("#t-ioc").checked ? "IOC" : "GTC";
  return { sp, u, lots, ticks, post, reduce, tif };
}

function renderTicketEstimates() {
  const sp = spec();
  const b = $("#t-submit");
  b.textContent = `${S.side === 0 ? "Buy" : "Sell"} ${S.type === "market" ? "market" : "limit"} ${sp ? sp.symbol : ""}`;
  setText("#t-free", S.margin ? usd(S.margin.free_collateral) + " USD" : "—");
  if (!sp) return;
  let o;
  try { o = ticketOrder(); } catch {
    for (const id of ["#t-notional", "#t-margin", "#t-fee"]) setText(id, "—");
    return;
  }
  const notional = o.u.notional(o.ticks, o.lots); // usd6, exact
  const fee = (notional * parseUnits(sp.taker_fee, 6) + 999_999n) / 1_000_000n;
  let im;
  if (sp.kind === "perpetual") {
    // at the mark, as the node checks a new order (README "Margin")
    const m = S.marks[sp.symbol]?.mark;
    const mt = m ? o.u.priceToTicks(m) : o.ticks;
    im = (o.u.notional(mt, o.lots) * parseUnits(sp.initial_margin, 6) + 999_999n) / 1_000_000n;
  } else if (S.side === 0) {
    im = notional; // a long option's requirement is its premium
  } else {
    // a short option (README "Margin", standard mode): premium + max(15% U - OTM, 10% U),
    // U = underlying value at the index, OTM = out-of-the-money amount (an estimate: "≈")
    const ix = S.index[sp.underlying]?.price;
    const atoms = o.lots * o.u.lot;
    const ixUsd6 = ix ? parseUnits(ix, 6) : 0n;
    const underlying = (ixUsd6 * atoms) / 100_000_000n;
    const strike = sp.strike ? parseUnits(sp.strike, 6) : 0n;
    const diff = sp.option_type === "call" ? strike - ixUsd6 : ixUsd6 - strike;
    const otm = diff > 0n ? (diff * atoms) / 100_000_000n : 0n;
    const a = (underlying * parseUnits(sp.initial_margin, 6)) / 1_000_000n - otm;
    const b = underlying / 10n;
    im = notional + (a > b ? a : b);
  }
  setText("#t-notional", formatUnits(notional, 6, 2) + " USD");
  setText("#t-margin", (sp.kind === "option" && S.side === 1 ? "≈ " : "") + formatUnits(im, 6, 2) + " USD");
  setText("#t-fee", formatUnits(fee, 6, 4) + " USD");
}

function nextNonce() {
  const fromAccount = S.account ? BigInt(S.account.nonce) + 1n : 0n;
  let n = BigInt(Date.now());
  if (n <= S.lastNonce) n = S.lastNonce + 1n;
  if (n < fromAccount) n = fromAccount;
  S.lastNonce = n;
  return n;
}

function ticketMsg(text, kind) {
  const m = $("#t-msg");
  m.textContent = text;
  m.className = `ticket-msg ${kind}`;
}

async function submitOrder(ev) {
  ev.preventDefault();
  if (S.accountId === null) { ticketMsg("No account yet: click “Get demo funds” first.", "err"); return; }
  let o;
  try { o = ticketOrder(); } catch (exc) { ticketMsg(exc.message, "err"); return; }
  const e = S.info.enums;
  const nonce = nextNonce();
  const side = S.side === 0 ? "buy" : "sell";
  const message = {
    account: S.accountId, instrument: o.sp.id, side: e.side[side], orderType: e.type[S.type],
    timeInForce: e.tif[o.tif], flags: (o.post ? e.flags.post_only : 0) | (o.reduce ? e.flags.reduce_only : 0),
    stp: e.stp.cancel_resting, price: o.ticks, size: o.lots, expiry: 0n, clientId: 0n, nonce,
  };
  const btn = $("#t-submit");
  btn.disabled = true;
  try {
    const signature = await wallet.sign("Order", message);
    const body = {
      account: S.accountId, symbol: o.sp.symbol, side, type: S.type, tif: o.tif,
      price: o.u.ticksToPrice(o.ticks, false), size: o.u.lotsToSize(o.lots, false),
      post_only: o.post, reduce_only: o.reduce, stp: "cancel_resting", expiry_ms: 0, client_id: "0",
      nonce: nonce.toString(), signature, signer: wallet.address,
    };
    const r = await api.post("/orders", body);
    const what = S.type === "market" ? `#${r.order_id} market ${side} ${body.size}` : `#${r.order_id} ${side} ${body.size} @ ${body.price}`;
    if (r.status === "resting") ticketMsg(`Order ${what} resting on the book (seq ${r.seq}).`, "ok");
    else if (r.status === "filled") ticketMsg(`Order ${what} filled ${r.filled} @ ${r.avg_price} (seq ${r.seq}).`, "ok");
    else if (r.status === "partially_filled") ticketMsg(`Order ${what} filled ${r.filled} @ ${r.avg_price}, ${r.remaining} resting.`, "ok");
    else ticketMsg(`Order ${what} ${r.status}${r.filled && num(r.filled) > 0 ? ` after filling ${r.filled}` : ""}${r.closed_reason ? `: ${r.closed_reason}` : ""}.`, num(r.filled) > 0 ? "ok" : "err");
    $("#app").dataset.lastOrder = JSON.stringify({ id: r.order_id, status: r.status });
    refreshAccount();
  } catch (exc) {
    ticketMsg(exc instanceof ApiError ? `${exc.name_}: ${exc.message}` : String(exc.message || exc), "err");
  } finally {
    btn.disabled = false;
  }
}

async function signedCancel(scope, orderId = 0) {
  const e = S.info.enums;
  const nonce = nextNonce();
  const message = { account: S.accountId, scope: e.scope[scope], instrument: 0, orderId: BigInt(orderId), clientId: 0n, nonce };
  const signature = await wallet.sign("Cancel", message);
  const body = { account: S.accountId, scope, nonce: nonce.toString(), signature, signer: wallet.address };
  if (scope === "order_id") body.order_id = orderId;
  try {
    const r = await api.post("/cancels", body);
    toast(r.cancelled.length ? `Cancelled ${r.cancelled.map((i) => "#" + i).join(", ")}` : "Nothing to cancel", "ok");
    refreshAccount();
  } catch (exc) {
    toast(String(exc), "err");
  }
}

async function withdraw() {
  if (S.accountId === null) return toast("No account yet", "err");
  const text = $("#wd-amount").value.trim();
  let amount;
  try { amount = parseUnits(text, 6); } catch (exc) { return toast(exc.message, "err"); }
  const nonce = nextNonce();
  const signature = await wallet.sign("Withdraw", { account: S.accountId, amount, nonce });
  try {
    const r = await api.post("/withdrawals", { account: S.accountId, amount: formatUnits(amount, 6, null, false),
      nonce: nonce.toString(), signature, signer: wallet.address });
    toast(`Withdrawal of ${r.amount} USD ${r.status}; paid on L1 once its batch is final`, "ok");
    $("#wd-amount").value = "";
    refreshAccount();
    views.l1.refresh();
  } catch (exc) { toast(String(exc), "err"); }
}

// ---------------------------------------------------------------- account

async function findAccount() {
  const r = await api.get(`/accounts?owner=${wallet.address}`);
  const acct = r.accounts.find((a) => a.subaccount === 0) ?? r.accounts[0];
  if (acct && S.accountId !== acct.id) setAccount(acct.id);
  return acct;
}

function setAccount(id) {
  if (S.accountId !== null) {
    for (const c of ["orders", "fills", "positions", "margin"]) stream.unsubscribe(`${c}:${S.accountId}`);
  }
  S.accountId = id;
  setText("#wallet-account", String(id));
  $("#app").dataset.account = String(id);
  stream.subscribe(`positions:${id}`, {
    snapshot: (d) => { S.positions = d.positions; dirty.account = true; },
    update: (d) => { S.positions = d.positions; dirty.account = true; views.risk.soon(); },
  });
  stream.subscribe(`margin:${id}`, {
    snapshot: (d) => { S.margin = d; dirty.account = true; renderTicketEstimates(); },
    update: (d) => { S.margin = d; dirty.account = true; renderTicketEstimates(); },
  });
  stream.subscribe(`orders:${id}`, {
    snapshot: (d) => { S.orders = d.orders; dirty.account = true; dirty.book = true; },
    update: (d) => {
      for (const ev of d.events) {
        const i = S.orders.findIndex((o) => o.order_id === ev.order_id);
        if (ev.status === "open") {
          const merged = { ...(i >= 0 ? S.orders[i] : { type: "limit", post_only: false, reduce_only: false }), ...ev };
          if (i >= 0) S.orders[i] = merged; else S.orders.push(merged);
        } else if (i >= 0) S.orders.splice(i, 1);
      }
      dirty.account = true; dirty.book = true;
    },
  });
  stream.subscribe(`fills:${id}`, {
    snapshot: (d) => { S.fills = [...d.fills].reverse(); dirty.account = true; },
    update: (d) => { for (const f of d.fills) S.fills.unshift(f); S.fills.length = Math.min(S.fills.length, 200); dirty.account = true; refreshAccountSoon(); },
  });
  refreshAccount();
}

let acctTimer = null;
function refreshAccountSoon() {
  if (acctTimer) return;
  acctTimer = setTimeout(() => { acctTimer = null; refreshAccount(); }, 250);
}

async function refreshAccount() {
  if (S.accountId === null) return;
  try {
    const a = await api.get(`/accounts/${S.accountId}`);
    S.account = a;
    S.positions = a.positions;
    S.orders = a.open_orders;
    S.margin = { collateral: a.collateral, equity: a.equity, initial_margin: a.initial_margin,
      maintenance_margin: a.maintenance_margin, free_collateral: a.free_collateral, margin_ratio: a.margin_ratio };
    setText("#acct-mode", `${a.margin_mode} margin · nonce ${a.nonce}`);
    dirty.account = true; dirty.book = true;
    renderTicketEstimates();
  } catch (exc) {
    if (!(exc instanceof ApiError && exc.status === 404)) console.warn("account", exc);
  }
}

function renderAccount() {
  const m = S.margin;
  setText("#a-collateral", m ? usd(m.collateral) : "—");
  setText("#a-equity", m ? usd(m.equity) : "—");
  setText("#a-initial", m ? usd(m.initial_margin) : "—");
  setText("#a-maint", m ? usd(m.maintenance_margin) : "—");
  setText("#a-free", m ? usd(m.free_collateral) : "—");
  setText("#a-ratio", m && m.margin_ratio !== null ? `${(num(m.margin_ratio) * 100).toFixed(2)}%` : "—");
  const ratio = m && m.margin_ratio !== null ? num(m.margin_ratio) : 0;
  const bar = $("#a-bar");
  bar.style.width = `${Math.min(100, ratio * 100).toFixed(1)}%`;
  bar.style.background = ratio >= 0.8 ? "var(--sell)" : ratio >= 0.5 ? "var(--warn)" : "var(--buy)";
  bar.title = "maintenance / equity: liquidation at 100%";

  // positions
  const pos = S.positions.map((p) => {
    const sp = S.bySymbol.get(p.symbol);
    const fp = (x) => (sp ? fmtPrice(sp, x) : x ?? "—");
    const long = p.side === "long";
    return el("tr", { dataset: { symbol: p.symbol } }, [
      el("td", {}, el("a", { href: "#", text: p.symbol, onclick: (e) => { e.preventDefault(); selectSymbol(p.symbol); } })),
      el("td", { class: `r ${long ? "buy-c" : "sell-c"}`, text: `${long ? "+" : "−"}${p.size}` }),
      el("td", { class: "r", text: fp(p.entry_price) }),
      el("td", { class: "r", text: fp(p.mark) }),
      el("td", { class: "r", text: usd(p.notional) }),
      el("td", { class: `r ${num(p.unrealised_pnl) >= 0 ? "buy-c" : "sell-c"}`, text: signed(p.unrealised_pnl) }),
      el("td", { class: "r", text: usd(p.initial_margin) }),
      el("td", { class: "r", text: usd(p.maintenance_margin) }),
      el("td", { class: "r warn-c", text: p.liquidation_price ? fp(p.liquidation_price) : "—" }),
      el("td", { class: "r" }, el("button", { class: "btn-x", text: "Close", title: "reduce-only market order for the whole position",
        onclick: () => closePosition(p) })),
    ]);
  });
  fillBody($("#positions"), pos, $("#positions-empty"));
  setText("#n-positions", String(S.positions.length));

  // open orders
  const ords = S.orders.map((o) => {
    const sp = S.bySymbol.get(o.symbol);
    const flags = [o.post_only && "post", o.reduce_only && "reduce", o.tif && o.tif !== "GTC" && o.tif].filter(Boolean).join(" ");
    return el("tr", { dataset: { orderId: String(o.order_id), symbol: o.symbol } }, [
      el("td", { text: o.symbol }),
      el("td", { class: o.side === "buy" ? "buy-c" : "sell-c", text: o.side }),
      el("td", { class: "r", text: sp ? fmtPrice(sp, o.price) : o.price }),
      el("td", { class: "r", text: o.size }),
      el("td", { class: "r", text: o.remaining }),
      el("td", { class: "muted", text: flags || "—" }),
      el("td", { class: "r muted", text: String(o.order_id) }),
      el("td", { class: "r" }, el("button", { class: "btn-x", text: "Cancel", onclick: () => signedCancel("order_id", o.order_id) })),
    ]);
  });
  fillBody($("#orders"), ords, $("#orders-empty"));
  setText("#n-orders", String(S.orders.length));

  // fills
  const fills = S.fills.slice(0, 100).map((f) => el("tr", {}, [
    el("td", { class: "muted", text: hms(f.time_ms) }),
    el("td", { text: f.symbol }),
    el("td", { class: f.side === "buy" ? "buy-c" : "sell-c", text: f.side }),
    el("td", { class: "r", text: f.price }),
    el("td", { class: "r", text: f.size }),
    el("td", { class: "r", text: f.fee }),
    el("td", { class: "muted", text: f.liquidity }),
  ]));
  fillBody($("#fills"), fills, $("#fills-empty"));
}

function closePosition(p) {
  selectSymbol(p.symbol).then(() => {
    setSide(p.side === "long" ? 1 : 0);
    setType("market");
    $("#t-size").value = p.size;
    $("#t-reduce").checked = true;
    renderTicketEstimates();
    ticketMsg("Review and submit to close the position.", "");
  });
}

async function faucet() {
  const btn = $("#btn-faucet");
  btn.disabled = true;
  try {
    const r = await api.post("/demo/faucet", { address: wallet.address });
    toast(`Deposited ${r.amount} mock USD through the L1 Vault (queue #${r.queue_index}); waiting for the sequencer…`, "ok", 6000);
    for (let i = 0; i < 60; i++) {
      await new Promise((res) => setTimeout(res, 500));
      const acct = await findAccount().catch(() => null);
      if (acct) {
        await refreshAccount();
        if (S.margin && num(S.margin.collateral) > 0) break;
      }
    }
    if (S.accountId === null) toast("The deposit has not reached the sequencer yet; try again shortly", "err");
  } catch (exc) {
    toast(String(exc), "err");
  } finally {
    btn.disabled = false;
  }
}

// ---------------------------------------------------------------- tabs & polling

function setTab(tab) {
  S.tab = tab;
  for (const b of $$("#tabs button")) b.classList.toggle("on", b.dataset.tab === tab);
  for (const t of $$(".tab")) t.classList.toggle("on", t.id === `tab-${tab}`);
  if (views[tab]) views[tab].show();
}

async function poll() {
  try {
    if (S.tab === "options") await views.options.refresh();
    else if (S.tab === "risk") await views.risk.refresh();
    else if (S.tab === "l1") await views.l1.refresh();
  } catch (exc) { console.warn("poll", exc); }
  setTimeout(poll, 2000);
}

async function slowPoll() {
  try {
    await refreshFunding();
    if (S.accountId === null) await findAccount().catch(() => null);
    else await refreshAccount();
    const before = S.instruments.length;
    await loadInstruments();
    if (S.instruments.length !== before) views.options.invalidate();
    const st = await api.get("/l1").catch(() => null);
    if (st) {
      setText("#ftr-root", st.enabled
        ? `L1 batch ${st.last_batch ?? "—"} · finalized ${st.finalized_height ?? "—"} · root ${short(st.finalized_state_root, 5)}${st.frozen ? " · FROZEN" : ""}`
        : "L1 disabled");
    }
  } catch (exc) { console.warn("slow poll", exc); }
  setTimeout(slowPoll, 5000);
}

// ---------------------------------------------------------------- start

function setConn(state) {
  const c = $("#conn");
  c.className = `conn ${state === "open" ? "conn-on" : state === "connecting" ? "conn-wait" : "conn-off"}`;
  c.textContent = state === "open" ? "● live" : state === "connecting" ? "● connecting" : "● offline";
}

async function main() {
  wallet = new DemoWallet();
  setText("#wallet-addr", short(wallet.address, 4));
  $("#wallet-addr").title = wallet.address;
  $("#app").dataset.address = wallet.address;
  priceChart = new PriceChart($("#price-chart"));
  depthChart = new DepthChart($("#depth-chart"));
  views = {
    options: new OptionsView({ api, S, onPick: pickOption }),
    risk: new RiskView({ api, S, chart: new RiskChart($("#risk-chart")) }),
    l1: new L1View({ api, S, wallet }),
  };

  S.info = await api.get("/info");
  wallet.configure(S.info);
  setText("#chain-label", `chain ${S.info.chain_id}${S.info.demo ? " · demo" : ""}`);
  if (!S.info.demo) $("#btn-faucet").style.display = "none";
  await loadInstruments();

  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  stream = new Stream(`${proto}//${location.host}/api/v1/ws`, { onStatus: setConn });
  stream.subscribe("marks", { snapshot: onMarks, update: onMarks });
  stream.connect();

  const first = S.instruments.find((i) => i.symbol === "BTC-PERP") ?? S.instruments[0];
  await selectSymbol(first.symbol);

  // events
  $("#instrument").addEventListener("change", (e) => selectSymbol(e.target.value));
  $("#t-buy").addEventListener("click", () => setSide(0));
  $("#t-sell").addEventListener("click", () => setSide(1));
  $("#t-limit").addEventListener("click", () => setType("limit"));
  $("#t-market").addEventListener("click", () => setType("market"));
  for (const id of ["#t-price", "#t-size"]) $(id).addEventListener("input", renderTicketEstimates);
  for (const id of ["#t-post", "#t-reduce", "#t-ioc"]) $(id).addEventListener("change", renderTicketEstimates);
  $("#ticket").addEventListener("submit", submitOrder);
  $("#btn-cancel-all").addEventListener("click", () => S.accountId !== null && signedCancel("all"));
  $("#btn-faucet").addEventListener("click", faucet);
  $("#btn-newkey").addEventListener("click", () => {
    if (!confirm("Forget this demo key and create a new wallet?")) return;
    DemoWallet.reset();
    location.reload();
  });
  $("#btn-withdraw").addEventListener("click", withdraw);
  $("#book-group").addEventListener("change", (e) => { S.group = BigInt(e.target.value); dirty.book = true; });
  for (const b of $$("#tabs button")) b.addEventListener("click", () => setTab(b.dataset.tab));
  for (const b of $$("#chart-res button")) b.addEventListener("click", () => {
    for (const x of $$("#chart-res button")) x.classList.toggle("on", x === b);
    S.res = Number(b.dataset.res);
    loadChart();
  });
  setSide(0);
  setType("limit");
  await findAccount().catch(() => null);
  requestAnimationFrame(frame);
  poll();
  setTimeout(slowPoll, 5000);
  $("#app").dataset.ready = "1";
}

function pickOption(symbol, price) {
  selectSymbol(symbol).then(() => {
    setType("limit");
    if (price) $("#t-price").value = price;
    renderTicketEstimates();
  });
}

// test and console hooks
window.__clearline = { S, api, get stream() { return stream; }, get wallet() { return wallet; } };

main().catch((exc) => {
  console.error(exc);
  setConn("closed");
  toast(`Cannot start: ${exc.message || exc}`, "err", 15000);
  $("#app").dataset.ready = "error";
});
