// Small DOM helpers (no framework).

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

/** el("td", {class: "r", text: "1.0"}, [children]) */
export function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of [].concat(children)) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function setText(sel, text) {
  const e = typeof sel === "string" ? $(sel) : sel;
  if (e && e.textContent !== text) e.textContent = text;
}

export function hms(ms) {
  const d = new Date(Number(ms));
  return d.toLocaleTimeString("en-GB", { hour12: false });
}

export function short(hex, n = 6) {
  if (!hex) return "—";
  const s = String(hex);
  return s.length <= 2 * n + 2 ? s : `${s.slice(0, n + 2)}…${s.slice(-n)}`;
}

export function toast(text, kind = "info", ms = 4000) {
  const box = $("#toasts");
  if (!box) return;
  const t = el("div", { class: `toast ${kind}`, text });
  box.append(t);
  while (box.children.length > 4) box.firstChild.remove();
  setTimeout(() => t.remove(), ms);
}

/** Replace a tbody's rows with `rows` (array of <tr>), keeping the element. */
export function fillBody(table, rows, emptyEl) {
  const tb = table.tBodies[0];
  tb.replaceChildren(...rows);
  if (emptyEl) emptyEl.style.display = rows.length ? "none" : "block";
}
