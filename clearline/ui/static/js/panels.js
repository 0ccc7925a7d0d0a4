// Bottom-panel views that poll the REST API while visible: options chain, risk, L1.
import { $, $$, el, setText, short, fillBody } from "./dom.js";
import { num, usd, signed } from "./decimal.js";

const fix = (x, dp) => (x === null || x === undefined || !Number.isFinite(Number(x)) ? "—" : Number(x).toFixed(dp));

export class OptionsView {
  constructor({ api, S, onPick }) {
    this.api = api; this.S = S; this.onPick = onPick;
    this.underlying = "BTC";
    this.expiry = null;
    this.data = null;
    for (const b of $$("#opt-underlying button")) b.addEventListener("click", () => {
      for (const x of $$("#opt-underlying button")) x.classList.toggle("on", x === b);
      this.underlying = b.dataset.u;
      this.expiry = null;
      this.refresh();
    });
    $("#opt-expiry").addEventListener("change", (e) => { this.expiry = Number(e.target.value); this.render(); });
  }

  show() { this.refresh(); }
  invalidate() { if (this.S.tab === "options") this.refresh(); }

  async refresh() {
    this.data = await this.api.get(`/options/chain?underlying=${this.underlying}`);
    this.render();
  }

  render() {
    const d = this.data;
    if (!d) return;
    const exps = d.expiries.map((e) => e.expiry_ms);
    if (!exps.includes(this.expiry)) this.expiry = exps[0] ?? null;
    const sel = $("#opt-expiry");
    const opts = exps.map((x) => el("option", { value: String(x), text: `exp ${new Date(x).toISOString().slice(0, 16).replace("T", " ")} UTC (${Math.max(0, Math.round((x - Date.now()) / 1000))}s)` }));
    sel.replaceChildren(...opts);
    if (this.expiry !== null) sel.value = String(this.expiry);
    setText("#opt-note", `index ${usd(d.index)} · forward ${usd(d.forward)} · IV and Greeks from Black-76 on the forward${d.time_scale && d.time_scale !== 1 ? ` (demo clock: 1 min = ${(d.time_scale / 1440).toFixed(0)} day)` : ""}`);
    const exp = d.expiries.find((e) => e.expiry_ms === this.expiry);
    const F = num(d.forward);
    let atm = null;
    if (exp) for (const s of exp.strikes) if (atm === null || Math.abs(num(s.strike) - F) < Math.abs(num(atm) - F)) atm = s.strike;
    const side = (o, itm) => {
      if (!o) return Array.from({ length: 8 }, () => el("td", { class: "r muted", text: "—" }));
      const cls = `r${itm ? " itm" : ""}`;
      const pick = (price) => () => this.onPick(o.symbol, price);
      return [
        el("td", { class: `${cls} clk buy-c`, text: o.bid ?? "—", title: `sell ${o.symbol} at the bid`, onclick: pick(o.bid) }),
        el("td", { class: `${cls} clk sell-c`, text: o.ask ?? "—", title: `buy ${o.symbol} at the ask`, onclick: pick(o.ask) }),
        el("td", { class: `${cls} clk`, text: o.mark ?? "—", dataset: { symbol: o.symbol }, onclick: pick(o.mark) }),
        el("td", { class: cls, text: o.iv === null || o.iv === undefined ? "—" : `${(o.iv * 100).toFixed(1)}%` }),
        el("td", { class: cls, text: fix(o.delta, 3) }),
        el("td", { class: cls, text: o.gamma === null || o.gamma === undefined ? "—" : Number(o.gamma).toExponential(2) }),
        el("td", { class: cls, text: fix(o.vega, 2) }),
        el("td", { class: cls, text: fix(o.theta, 2) }),
      ];
    };
    const rows = (exp ? exp.strikes : []).map((s) => {
      const K = num(s.strike);
      return el("tr", { class: s.strike === atm ? "atm" : "" }, [
        ...side(s.call, K < F), el("td", { class: "strike", text: usd(s.strike, 0) }), ...side(s.put, K > F),
      ]);
    });
    fillBody($("#chain"), rows, $("#chain-empty"));
  }
}

export class RiskView {
  constructor({ api, S, chart }) {
    this.api = api; this.S = S; this.chart = chart;
    this.timer = null;
  }

  show() { this.refresh(); }

  soon() {
    if (this.S.tab !== "risk" || this.timer) return;
    this.timer = setTimeout(() => { this.timer = null; this.refresh(); }, 300);
  }

  async refresh() {
    const id = this.S.accountId;
    if (id === null) { $("#risk-empty").style.display = "block"; this.chart.set([]); return; }
    const [risk, margin] = await Promise.all([
      this.api.get(`/accounts/${id}/risk`), this.api.get(`/accounts/${id}/margin`).catch(() => null),
    ]);
    const worst = risk.worst?.index;
    this.chart.set(risk.scenarios.map((s) => ({ label: s.label, pnl: num(s.pnl), binding: s.index === worst })));
    const hasPos = risk.scenarios.some((s) => num(s.pnl) !== 0) || (margin && margin.positions?.length);
    $("#risk-empty").style.display = hasPos ? "none" : "block";
    const rows = [
      ["Equity", usd(risk.equity)],
      ["Worst scenario", risk.worst ? `${risk.worst.label}` : "—"],
      ["Worst P&L", risk.worst ? signed(risk.worst.pnl) : "—"],
    ];
    if (margin) {
      rows.push(["Margin mode", margin.mode], ["Initial req.", usd(margin.initial)], ["Maint. req.", usd(margin.maintenance)],
        ["Free collateral", usd(margin.free_collateral)]);
      if (margin.binding_scenario) rows.push(["Binding scenario", margin.binding_scenario.label]);
      if (margin.short_option_minimum && num(margin.short_option_minimum) > 0) rows.push(["Short-option min.", usd(margin.short_option_minimum)]);
    }
    if (risk.without_risk_array?.length) rows.push(["No risk array yet", risk.without_risk_array.join(", ")]);
    $("#risk-summary").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
  }
}

export class L1View {
  constructor({ api, S, wallet }) {
    this.api = api; this.S = S; this.wallet = wallet;
  }

  show() { this.refresh(); }

  async refresh() {
    const d = await this.api.get("/l1");
    const card = (label, value, cls = "") => el("div", { class: `card ${cls}` }, [el("label", { text: label }), el("div", { text: value, title: value })]);
    if (!d.enabled) {
      $("#l1-cards").replaceChildren(card("L1", "disabled (node runs without an L1)", "bad"));
      return;
    }
    const escape = d.frozen ? `frozen · escape ${d.escape?.available ? "open" : "pending"} (${d.escape?.escaped?.length ?? 0} escaped)` : "not frozen";
    $("#l1-cards").replaceChildren(
      card("L1 block", String(d.l1_block)),
      card("Last batch", String(d.last_batch ?? "—")),
      card("Finalized height", String(d.finalized_height ?? "—"), "ok"),
      card("Finalized root", short(d.finalized_state_root, 6)),
      card("Challenge period", `${d.challenge_period_s}s`),
      card("Pending txs", String(d.pending_txs ?? "—")),
      card("Vault balance", `${usd(d.vault_balance)} USD`),
      card("L1 queue", `${d.queue?.consumed_l2 ?? "—"} / ${d.queue?.length ?? "—"} consumed`),
      card("Forced withdrawals", String(d.queue?.forced?.length ?? 0)),
      card("Escape hatch", escape, d.frozen ? "bad" : "ok"),
      card("Rollup", short(d.rollup, 5)),
      card("Vault", short(d.vault, 5)),
    );
    const batches = [...(d.batches || [])].sort((a, b) => b.number - a.number).slice(0, 30).map((b) => el("tr", { dataset: { batch: String(b.number) } }, [
      el("td", { class: "r", text: String(b.number) }),
      el("td", { text: short(b.state_root, 10), title: b.state_root }),
      el("td", { class: "r", text: String(b.txs) }),
      el("td", { class: "r", text: Number(b.data_bytes).toLocaleString("en-US") }),
      el("td", { class: "r", text: Number(b.gas_used).toLocaleString("en-US") }),
      el("td", {}, el("span", { class: `pill ${b.finalized ? "ok" : "pend"}`, text: b.finalized ? "finalized" : `challenge · ${b.reason ?? ""}` })),
    ]));
    fillBody($("#l1-batches"), batches);
    const mine = this.S.accountId;
    const wds = [...(d.withdrawals || [])].sort((a, b) => b.seq - a.seq).slice(0, 30).map((w) => el("tr", { class: w.account === mine ? "mine" : "" }, [
      el("td", { text: `${w.account}${w.account === mine ? " (you)" : ""}` }),
      el("td", { class: "r", text: usd(w.amount) }),
      el("td", { class: "r", text: w.batch === null || w.batch === undefined ? "—" : String(w.batch) }),
      el("td", {}, el("span", { class: `pill ${w.status === "paid" ? "ok" : "pend"}`, text: w.status })),
    ]));
    fillBody($("#l1-withdrawals"), wds);
  }
}
