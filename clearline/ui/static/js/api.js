// REST client for /api/v1 (docs/API.md) and the WebSocket stream client with resume by seq.

export class ApiError extends Error {
  constructor(status, body) {
    const e = body?.error ?? {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.code = e.code ?? null;
    this.name_ = e.name ?? "HTTP_" + status;
    this.retryAfterMs = e.retry_after_ms ?? null;
  }
  toString() { return `${this.name_}: ${this.message}`; }
}

export class Api {
  constructor(base = "/api/v1") { this.base = base; }

  async _req(method, path, body) {
    const opts = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body, (k, v) => (typeof v === "bigint" ? v.toString() : v));
    }
    let res;
    try {
      res = await fetch(this.base + path, opts);
    } catch (exc) {
      throw new ApiError(0, { error: { name: "NETWORK", message: `node unreachable (${exc.message})` } });
    }
    let data = null;
    const text = await res.text();
    try { data = text ? JSON.parse(text) : null; } catch { data = { error: { message: text.slice(0, 200) } }; }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  get(path) { return this._req("GET", path); }
  post(path, body) { return this._req("POST", path, body ?? {}); }
}

/**
 * One WebSocket carrying many channels. Each channel numbers its updates 1, 2, 3 …; a
 * snapshot carries the seq of the last update it includes. On reconnect (or on a gap) the
 * client re-subscribes with `since` = last processed seq and the node's `epoch`; the node
 * replays what was missed or sends a fresh snapshot — so a channel never skips silently.
 */
export class Stream {
  constructor(url, { onStatus = () => {} } = {}) {
    this.url = url;
    this.onStatus = onStatus;
    this.channels = new Map(); // name -> {handlers, seq, epoch, ready}
    this.ws = null;
    this.backoff = 300;
    this.closedByUser = false;
    this.stats = { connects: 0, snapshots: 0, updates: 0, gaps: 0, duplicates: 0, resumes: 0 };
    this._nextId = 1;
  }

  connect() {
    this.closedByUser = false;
    this.onStatus("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.stats.connects += 1;
      this.backoff = 300;
      this.onStatus("open");
      for (const name of this.channels.keys()) this._sendSubscribe(name);
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      this._dispatch(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      for (const ch of this.channels.values()) ch.ready = false;
      this.onStatus("closed");
      if (!this.closedByUser) {
        setTimeout(() => this.connect(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 5000);
      }
    };
    ws.onerror = () => {};
  }

  close() {
    this.closedByUser = true;
    if (this.ws) this.ws.close();
  }

  /** handlers: {snapshot(data, msg), update(data, msg), error(err)} */
  subscribe(name, handlers) {
    const prev = this.channels.get(name);
    this.channels.set(name, { handlers, seq: null, epoch: prev?.epoch ?? null, ready: false });
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this._sendSubscribe(name, true);
  }

  unsubscribe(name) {
    if (!this.channels.delete(name)) return;
    this._send({ op: "unsubscribe", channel: name });
  }

  _send(obj) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(obj));
  }

  _sendSubscribe(name, fresh = false) {
    const ch = this.channels.get(name);
    const op = { op: "subscribe", channel: name, id: this._nextId++ };
    if (!fresh && ch.seq !== null && ch.epoch) {
      op.since = ch.seq;
      op.epoch = ch.epoch;
      this.stats.resumes += 1;
    }
    ch.ready = false;
    this._send(op);
  }

  _dispatch(msg) {
    const ch = msg.channel ? this.channels.get(msg.channel) : null;
    switch (msg.type) {
      case "subscribed":
        if (ch && msg.epoch) ch.epoch = msg.epoch;
        return;
      case "snapshot":
        if (!ch) return;
        ch.seq = msg.seq;
        if (msg.epoch) ch.epoch = msg.epoch;
        ch.ready = true;
        this.stats.snapshots += 1;
        ch.handlers.snapshot?.(msg.data, msg);
        return;
      case "update":
        if (!ch) return;
        if (ch.seq === null) return; // before its snapshot: the snapshot will include it
        if (msg.seq <= ch.seq) { this.stats.duplicates += 1; return; }
        if (msg.seq !== ch.seq + 1) {
          // a gap: ask again from the last seq we have; ignore updates until it is filled
          this.stats.gaps += 1;
          if (ch.ready) this._sendSubscribe(msg.channel);
          return;
        }
        ch.seq = msg.seq;
        ch.ready = true;
        this.stats.updates += 1;
        ch.handlers.update?.(msg.data, msg);
        return;
      case "error":
        if (ch) ch.handlers.error?.(msg.error);
        else console.warn("ws error", msg.error);
        return;
      default:
    }
  }
}
