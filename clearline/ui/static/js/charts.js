// Charts: TradingView Lightweight Charts for the price (candles + mark line), Chart.js for
// the depth chart and the scenario P&L bars. Both libraries are pinned npm packages copied
// into ../vendor by `make` (see Makefile, UI_STAMP).
import {
  createChart, CandlestickSeries, LineSeries, HistogramSeries, ColorType, CrosshairMode, LineStyle,
} from "../vendor/lightweight-charts.mjs";

const C = {
  bg: "#11151c", text: "#7d8899", grid: "#1a202a", line: "#2a3342",
  buy: "#1fbf83", sell: "#f0506e", accent: "#4c8dff", warn: "#f0b44c",
  buyFill: "rgba(31,191,131,0.18)", sellFill: "rgba(240,80,110,0.18)",
};

/** Candles at a chosen resolution, fed by history and live trades; a mark line on top. */
export class PriceChart {
  constructor(el) {
    this.el = el;
    this.chart = createChart(el, {
      autoSize: true,
      layout: { background: { type: ColorType.Solid, color: C.bg }, textColor: C.text, fontSize: 11,
        fontFamily: "DejaVu Sans Mono, Menlo, monospace" },
      grid: { vertLines: { color: C.grid }, horzLines: { color: C.grid } },
      crosshair: { mode: CrosshairMode.Normal },
      rightPriceScale: { borderColor: C.line, scaleMargins: { top: 0.08, bottom: 0.22 } },
      timeScale: { borderColor: C.line, timeVisible: true, secondsVisible: true, rightOffset: 4 },
      localization: { priceFormatter: (p) => p.toLocaleString("en-US", { maximumFractionDigits: this.dp ?? 2, minimumFractionDigits: this.dp ?? 2 }) },
    });
    this.candles = this.chart.addSeries(CandlestickSeries, {
      upColor: C.buy, downColor: C.sell, wickUpColor: C.buy, wickDownColor: C.sell, borderVisible: false,
    });
    this.mark = this.chart.addSeries(LineSeries, {
      color: C.warn, lineWidth: 1, lineStyle: LineStyle.Dotted, priceLineVisible: false,
      lastValueVisible: true, title: "mark", crosshairMarkerVisible: false,
    });
    this.volume = this.chart.addSeries(HistogramSeries, {
      priceScaleId: "vol", priceFormat: { type: "volume" }, lastValueVisible: false, priceLineVisible: false,
    });
    this.chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    this.res = 5;
    this.reset();
  }

  reset() {
    this.bars = new Map(); // bucket start (s) -> {time, open, high, low, close, volume}
    this.markPts = new Map();
    this.candles.setData([]);
    this.mark.setData([]);
    this.volume.setData([]);
  }

  setPrecision(dp) {
    this.dp = dp;
    const minMove = Number((10 ** -dp).toFixed(dp));
    this.candles.applyOptions({ priceFormat: { type: "price", precision: dp, minMove } });
    this.mark.applyOptions({ priceFormat: { type: "price", precision: dp, minMove } });
  }

  /** Show `n` bars: all of them when there are many, else readable bars docked to the right. */
  fit(n) {
    const ts = this.chart.timeScale();
    if (n >= 60) { ts.fitContent(); return; }
    const width = this.el.clientWidth || 600;
    ts.applyOptions({ barSpacing: Math.max(6, Math.min(14, width / Math.max(n + 30, 1))) });
    ts.scrollToRealTime();
  }

  setResolution(seconds) {
    this.res = seconds;
  }

  _bucket(tMs) { return Math.floor(tMs / 1000 / this.res) * this.res; }

  /** Replace everything with trades [{t (ms), price (number), size (number)}] and marks [{t, price}]. */
  load(trades, marks = []) {
    this.reset();
    for (const tr of trades) this._addTrade(tr);
    for (const m of marks) this.markPts.set(this._bucket(m.t), m.price);
    this._redraw();
    this.chart.timeScale().scrollToRealTime();
  }

  /** Replace the candles with ready bars [{t (ms), open, high, low, close, volume}]. */
  loadBars(bars) {
    this.reset();
    for (const b of bars) {
      const time = this._bucket(b.t);
      const cur = this.bars.get(time);
      if (!cur) this.bars.set(time, { time, open: b.open, high: b.high, low: b.low, close: b.close, volume: b.volume ?? 0 });
      else {
        cur.high = Math.max(cur.high, b.high); cur.low = Math.min(cur.low, b.low);
        cur.close = b.close; cur.volume += b.volume ?? 0;
      }
    }
    this._redraw();
  }

  _addTrade({ t, price, size }) {
    const time = this._bucket(t);
    const b = this.bars.get(time);
    if (!b) {
      this.bars.set(time, { time, open: price, high: price, low: price, close: price, volume: size });
      return this.bars.get(time);
    }
    b.high = Math.max(b.high, price); b.low = Math.min(b.low, price); b.close = price; b.volume += size;
    return b;
  }

  _redraw() {
    const bars = [...this.bars.values()].sort((a, b) => a.time - b.time);
    this.candles.setData(bars.map(({ time, open, high, low, close }) => ({ time, open, high, low, close })));
    this.volume.setData(bars.map((b) => ({ time: b.time, value: b.volume,
      color: b.close >= b.open ? "rgba(31,191,131,0.35)" : "rgba(240,80,110,0.35)" })));
    const marks = [...this.markPts.entries()].sort((a, b) => a[0] - b[0]).map(([time, value]) => ({ time, value }));
    this.mark.setData(marks);
  }

  /** A live trade. */
  trade(tr) {
    const last = this._lastTime();
    const b = this._addTrade(tr);
    if (last !== null && b.time < last) { this._redraw(); return; } // late trade: redraw
    this.candles.update({ time: b.time, open: b.open, high: b.high, low: b.low, close: b.close });
    this.volume.update({ time: b.time, value: b.volume,
      color: b.close >= b.open ? "rgba(31,191,131,0.35)" : "rgba(240,80,110,0.35)" });
  }

  /** A live mark price. */
  markPrice(t, price) {
    const time = this._bucket(t);
    const lastMark = this.markPts.size ? Math.max(...this.markPts.keys()) : null;
    this.markPts.set(time, price);
    if (lastMark !== null && time < lastMark) return;
    this.mark.update({ time, value: price });
  }

  _lastTime() {
    let m = null;
    for (const k of this.bars.keys()) if (m === null || k > m) m = k;
    return m;
  }
}

const chartDefaults = () => {
  const Chart = window.Chart;
  Chart.defaults.color = C.text;
  Chart.defaults.font.family = "DejaVu Sans Mono, Menlo, monospace";
  Chart.defaults.font.size = 10;
  Chart.defaults.borderColor = C.grid;
  Chart.defaults.animation = false;
  return Chart;
};

/** Cumulative depth: bids (green) and asks (red) as stepped filled areas over price. */
export class DepthChart {
  constructor(canvas) {
    const Chart = chartDefaults();
    this.chart = new Chart(canvas, {
      type: "line",
      data: { datasets: [
        { label: "bids", data: [], borderColor: C.buy, backgroundColor: C.buyFill, fill: "origin", pointRadius: 0, borderWidth: 1.5, tension: 0 },
        { label: "asks", data: [], borderColor: C.sell, backgroundColor: C.sellFill, fill: "origin", pointRadius: 0, borderWidth: 1.5, tension: 0 },
      ] },
      options: {
        responsive: true, maintainAspectRatio: false, parsing: false,
        interaction: { mode: "nearest", intersect: false },
        plugins: { legend: { display: false },
          tooltip: { callbacks: { label: (c) => `${c.dataset.label} Σ ${c.parsed.y} @ ${c.parsed.x}` } } },
        scales: {
          x: { type: "linear", ticks: { maxTicksLimit: 5 }, grid: { display: false } },
          y: { beginAtZero: true, ticks: { maxTicksLimit: 4 }, position: "right" },
        },
      },
    });
  }

  /** bids/asks: [[price, size], ...] best first (numbers). Drawn as explicit steps from the
   * touch outwards (cumulative size), so even one level a side shows. */
  set(bids, asks) {
    const steps = (levels) => {
      const pts = [];
      let cum = 0;
      for (const [p, s] of levels) {
        pts.push({ x: p, y: cum });
        cum += s;
        pts.push({ x: p, y: cum });
      }
      return pts;
    };
    const b = steps(bids).reverse();
    const a = steps(asks);
    const xs = [...b, ...a].map((p) => p.x);
    if (xs.length) {
      const lo = Math.min(...xs), hi = Math.max(...xs), pad = (hi - lo) * 0.04 || hi * 0.001 || 1;
      if (b.length) b.unshift({ x: lo - pad, y: b[0].y });
      if (a.length) a.push({ x: hi + pad, y: a.at(-1).y });
      this.chart.options.scales.x.min = lo - pad;
      this.chart.options.scales.x.max = hi + pad;
    }
    this.chart.data.datasets[0].data = b;
    this.chart.data.datasets[1].data = a;
    this.chart.update("none");
  }
}

/** Scenario P&L of an account: one bar per risk scenario, green gains and red losses. */
export class RiskChart {
  constructor(canvas) {
    const Chart = chartDefaults();
    this.chart = new Chart(canvas, {
      type: "bar",
      data: { labels: [], datasets: [{ label: "P&L (USD)", data: [], backgroundColor: [], borderWidth: 0 }] },
      options: {
        responsive: true, maintainAspectRatio: false,
        plugins: { legend: { display: false }, title: { display: true, text: "Scenario P&L (USD)", color: C.text },
          tooltip: { callbacks: { label: (c) => `${c.parsed.y.toLocaleString("en-US", { maximumFractionDigits: 2 })} USD` } } },
        scales: {
          x: { grid: { display: false }, ticks: { autoSkip: false, maxRotation: 60, minRotation: 40 } },
          y: { grid: { color: C.grid }, ticks: { callback: (v) => v.toLocaleString("en-US") } },
        },
      },
    });
  }

  /** rows: [{label, pnl (number), binding (bool)}] */
  set(rows) {
    const ds = this.chart.data.datasets[0];
    this.chart.data.labels = rows.map((r) => r.label);
    ds.data = rows.map((r) => r.pnl);
    ds.backgroundColor = rows.map((r) => (r.binding ? C.warn : r.pnl >= 0 ? C.buy : C.sell));
    this.chart.update("none");
  }
}
