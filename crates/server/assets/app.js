// bourse web UI: theme, the live WebSocket connection, and the pages' live parts.
// Amounts stay decimal strings end to end; estimates use BigInt, never floating point.
"use strict";

// ---- theme -------------------------------------------------------------------------------
(function theme() {
  const root = document.documentElement;
  const saved = localStorage.getItem("theme");
  if (saved === "dark" || saved === "light") root.dataset.theme = saved;
  document.addEventListener("DOMContentLoaded", () => {
    const button = document.getElementById("theme-toggle");
    if (!button) return;
    button.addEventListener("click", () => {
      const dark = root.dataset.theme
        ? root.dataset.theme === "dark"
        : window.matchMedia("(prefers-color-scheme: dark)").matches;
      root.dataset.theme = dark ? "light" : "dark";
      localStorage.setItem("theme", root.dataset.theme);
    });
  });
})();

// ---- exact decimals ----------------------------------------------------------------------
const Dec = {
  // "12.5" at scale 2 -> 1250n; null when not a plain non-negative decimal within the scale.
  parse(text, scale) {
    const m = /^(\d+)(?:\.(\d+))?$/.exec(String(text).trim());
    if (!m) return null;
    const frac = m[2] || "";
    if (frac.length > scale) return null;
    return BigInt(m[1] + frac.padEnd(scale, "0"));
  },
  format(units, scale) {
    const negative = units < 0n;
    let digits = (negative ? -units : units).toString().padStart(scale + 1, "0");
    let whole = scale ? digits.slice(0, -scale) : digits;
    let frac = scale ? digits.slice(-scale).replace(/0+$/, "") : "";
    return (negative ? "-" : "") + whole + (frac ? "." + frac : "");
  },
};

// ---- WebSocket with reconnect ------------------------------------------------------------
class Live {
  constructor(channels, onMessage, onOpen) {
    this.channels = channels;
    this.onMessage = onMessage;
    this.onOpen = onOpen;
    this.delay = 500;
    this.status = document.getElementById("live-status");
    this.setStatus("live data: connecting…", "");
    this.connect();
  }
  setStatus(text, cls) {
    if (!this.status) return;
    this.status.textContent = text;
    this.status.className = "status " + cls;
    document.querySelectorAll("[data-live]").forEach((el) => el.classList.toggle("stale", cls !== "live"));
  }
  subscribe(channel) {
    this.channels.push(channel);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op: "subscribe", channels: [channel] }));
  }
  unsubscribe(channel) {
    this.channels = this.channels.filter((c) => c !== channel);
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ op: "unsubscribe", channels: [channel] }));
  }
  connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      this.delay = 500;
      ws.send(JSON.stringify({ op: "subscribe", channels: this.channels }));
    });
    ws.addEventListener("message", (e) => {
      let msg;
      try { msg = JSON.parse(e.data); } catch { return; }
      if (msg.op === "subscribed") {
        if (!this.live) {
          this.live = true;
          this.setStatus("live data: connected", "live");
          if (this.onOpen) this.onOpen();
        }
      } else if (msg.op === "error") {
        this.setStatus("live data: " + msg.message, "down");
      } else if (msg.channel) {
        this.onMessage(msg);
      }
    });
    ws.addEventListener("close", () => {
      this.live = false;
      this.setStatus("live data: disconnected — reconnecting", "down");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 15000);
    });
  }
}

let sessionEnded = false;

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.headers["content-type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, options);
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && document.body.dataset.loggedIn === "true" && !sessionEnded) {
    // The session expired or was signed out elsewhere: log in again and come back here (once,
    // however many requests find out).
    sessionEnded = true;
    window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname + window.location.search));
  }
  if (!response.ok) {
    const error = new Error(data.message || response.statusText);
    error.code = data.code || "error";
    throw error;
  }
  return data;
}

// "limit", "market", or "limit post-only" and the like (GTC is the default, not shown).
function orderKind(o) {
  return o.time_in_force && o.time_in_force !== "gtc" ? `${o.type} ${o.time_in_force.replace("_", "-")}` : o.type;
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function row(cells) {
  const tr = document.createElement("tr");
  cells.forEach((c) => tr.appendChild(c));
  return tr;
}

function setTicker(scope, t) {
  const set = (field, text, cls) => {
    const el = scope.querySelector(`[data-field="${field}"]`);
    if (!el) return;
    el.textContent = text;
    if (cls !== undefined) el.className = el.className.replace(/\b(up|down)\b/g, "").trim() + (cls ? " " + cls : "");
  };
  set("last", t.last || "–");
  const change = t.change_percent;
  set("change_percent", change == null ? "–" : change + " %", change == null ? "" : change.startsWith("-") ? "down" : /[1-9]/.test(change) ? "up" : "");
  set("high", t.high || "–");
  set("low", t.low || "–");
  const volume = scope.querySelector('[data-field="volume"]');
  if (volume) volume.textContent = t.volume + (volume.textContent.includes(" ") ? " " + volume.textContent.split(" ").pop() : "");
}

// ---- home: the markets table -------------------------------------------------------------
function homePage() {
  const rows = document.querySelectorAll("tr[data-market]");
  rows.forEach((r) => r.setAttribute("data-live", ""));
  const channels = Array.from(rows, (r) => "ticker:" + r.dataset.market);
  if (!channels.length) return;
  new Live(channels, (msg) => {
    if (msg.channel !== "ticker") return;
    const r = document.querySelector(`tr[data-market="${msg.ticker.market}"]`);
    if (r) setTicker(r, msg.ticker);
  });
}

// ---- market page -------------------------------------------------------------------------
function marketPage() {
  const root = document.querySelector(".market");
  const market = root.dataset.market;
  const priceScale = Number(root.dataset.priceScale);
  const quantityScale = Number(root.dataset.quantityScale);
  const loggedIn = root.dataset.loggedIn === "true";
  const book = { bids: new Map(), asks: new Map(), updateId: 0, synced: false, pending: [] };
  ["asks", "bids", "trades"].forEach((id) => document.getElementById(id).setAttribute("data-live", ""));

  function renderBook() {
    const levels = (side, descending) => Array.from(book[side].entries())
      .sort((a, b) => {
        const x = Dec.parse(a[0], priceScale), y = Dec.parse(b[0], priceScale);
        return descending ? (x < y ? 1 : x > y ? -1 : 0) : (x < y ? -1 : x > y ? 1 : 0);
      })
      .slice(0, 15);
    const asks = levels("asks", false).reverse();
    const bids = levels("bids", true);
    const fill = (id, list) => {
      const body = document.getElementById(id);
      body.replaceChildren(...list.map(([p, q]) => {
        const tr = row([cell(p, "num"), cell(q, "num")]);
        tr.tabIndex = 0;
        tr.dataset.price = p;
        return tr;
      }));
    };
    fill("asks", asks);
    fill("bids", bids);
    const bestAsk = asks.length ? asks[asks.length - 1][0] : null;
    const bestBid = bids.length ? bids[0][0] : null;
    document.getElementById("spread").textContent = bestAsk && bestBid
      ? "spread " + Dec.format(Dec.parse(bestAsk, priceScale) - Dec.parse(bestBid, priceScale), priceScale)
      : "–";
  }

  function applyDiff(d) {
    if (d.update_id <= book.updateId) return true;
    if (d.first_update_id > book.updateId + 1) return false; // a gap: resync
    for (const [p, q] of d.bids) { if (/^0(\.0*)?$/.test(q)) book.bids.delete(p); else book.bids.set(p, q); }
    for (const [p, q] of d.asks) { if (/^0(\.0*)?$/.test(q)) book.asks.delete(p); else book.asks.set(p, q); }
    book.updateId = d.update_id;
    return true;
  }

  async function syncBook() {
    book.synced = false;
    book.pending = [];
    const snapshot = await api("GET", `/markets/${market}/depth?limit=100`);
    book.bids = new Map(snapshot.bids);
    book.asks = new Map(snapshot.asks);
    book.updateId = snapshot.update_id;
    book.synced = true;
    const pending = book.pending;
    book.pending = [];
    for (const d of pending) if (!applyDiff(d)) return syncBook();
    renderBook();
  }

  const tradesBody = document.getElementById("trades");
  function addTrades(list) {
    for (const t of list) {
      const tr = row([cell(t.price, "num " + (t.taker_side === "buy" ? "up" : "down")), cell(t.quantity, "num"),
        cell(new Date(t.time_ms).toLocaleTimeString())]);
      tradesBody.prepend(tr);
    }
    while (tradesBody.children.length > 50) tradesBody.lastChild.remove();
  }

  async function loadTrades() {
    const list = await api("GET", `/markets/${market}/trades?limit=50`);
    tradesBody.replaceChildren();
    addTrades(list.slice().reverse());
  }

  const chart = priceChart(market);
  const channels = [`depth:${market}`, `trades:${market}`, `ticker:${market}`, chart.channel()];
  if (loggedIn) channels.push("orders", "fills", "balances");
  const live = new Live(channels, (msg) => {
    if (msg.channel === "depth" && msg.market === market) {
      if (!book.synced) { book.pending.push(msg); return; }
      if (!applyDiff(msg)) { syncBook(); return; }
      renderBook();
    } else if (msg.channel === "trades" && msg.market === market) {
      addTrades(msg.trades);
    } else if (msg.channel === "ticker") {
      setTicker(document.querySelector(".market-head"), msg.ticker);
    } else if (msg.channel === "candles" && msg.market === market) {
      chart.update(msg.interval, msg.candle);
    } else if (msg.channel === "orders" || msg.channel === "fills" || msg.channel === "balances") {
      scheduleAccountRefresh();
    }
  }, () => {
    // (Re)connected: everything missed while away is fetched again.
    syncBook().catch(() => {});
    loadTrades().catch(() => {});
    chart.load().catch(() => {});
    if (loggedIn) refreshAccount();
  });

  chart.onIntervalChange((before, after) => { live.unsubscribe(before); live.subscribe(after); });

  // Click a price level to put it in the order form.
  for (const id of ["asks", "bids"]) {
    const body = document.getElementById(id);
    const pick = (e) => {
      const tr = e.target.closest("tr[data-price]");
      const input = document.getElementById("order-price");
      if (tr && input) { input.value = tr.dataset.price; input.dispatchEvent(new Event("input")); }
    };
    body.addEventListener("click", pick);
    body.addEventListener("keydown", (e) => { if (e.key === "Enter") pick(e); });
  }

  if (loggedIn) accountParts(root, market, priceScale, quantityScale);
}

// The candlestick chart (vendored lightweight-charts). Prices become numbers here for drawing
// only; nothing drawn is ever sent back.
function priceChart(market) {
  let interval = "1m";
  const box = document.getElementById("chart");
  const lib = window.LightweightCharts;
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const colors = () => ({
    layout: { background: { color: css("--panel") }, textColor: css("--muted"), attributionLogo: false },
    grid: { vertLines: { color: css("--line") }, horzLines: { color: css("--line") } },
  });
  // The library's own attribution logo injects an inline <style>, which our CSP forbids; the
  // attribution its license asks for is the link under the chart (market.html) instead.
  const options = { autoSize: true, timeScale: { timeVisible: true }, ...colors() };
  const chart = lib ? lib.createChart(box, options) : null;
  const candles = chart && chart.addSeries(lib.CandlestickSeries, {
    upColor: css("--up"), downColor: css("--down"), wickUpColor: css("--up"), wickDownColor: css("--down"), borderVisible: false,
  });
  const volume = chart && chart.addSeries(lib.HistogramSeries, { priceFormat: { type: "volume" }, priceScaleId: "volume" });
  if (volume) volume.priceScale().applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  document.getElementById("theme-toggle")?.addEventListener("click", () => chart && chart.applyOptions(colors()));
  const bar = (c) => ({ time: Math.floor(c.open_ms / 1000), open: Number(c.open), high: Number(c.high), low: Number(c.low), close: Number(c.close) });
  const vol = (c) => ({ time: Math.floor(c.open_ms / 1000), value: Number(c.volume), color: Number(c.close) >= Number(c.open) ? css("--up") : css("--down") });
  let changed = () => {};
  document.querySelectorAll("[data-interval]").forEach((b) => b.addEventListener("click", () => {
    if (b.dataset.interval === interval) return;
    const before = `candles:${market}:${interval}`;
    interval = b.dataset.interval;
    document.querySelectorAll("[data-interval]").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
    changed(before, `candles:${market}:${interval}`);
    api_load();
  }));
  async function api_load() {
    if (!chart) return;
    const list = await api("GET", `/markets/${market}/candles?interval=${interval}&limit=500`);
    list.sort((a, b) => a.open_ms - b.open_ms);
    candles.setData(list.map(bar));
    volume.setData(list.map(vol));
    box.dataset.bars = String(list.length);
    if (list.length) box.dataset.last = list[list.length - 1].close;
  }
  return {
    channel: () => `candles:${market}:${interval}`,
    onIntervalChange: (f) => { changed = f; },
    load: api_load,
    update(i, c) {
      if (!chart || i !== interval) return;
      try {
        candles.update(bar(c));
        volume.update(vol(c));
        box.dataset.last = c.close;
      } catch {
        api_load().catch(() => {}); // an update older than the newest bar: reload instead
      }
    },
  };
}

let accountRefresh = null;
let refreshAccount = () => {};
function scheduleAccountRefresh() {
  clearTimeout(accountRefresh);
  accountRefresh = setTimeout(() => refreshAccount(), 100);
}

function accountParts(root, market, priceScale, quantityScale) {
  const base = root.dataset.base, quote = root.dataset.quote;
  const balances = {};
  const form = document.getElementById("order-form");
  const fields = { price: form.querySelector("#order-price"), quantity: form.querySelector("#order-quantity") };
  const errors = {
    price: document.getElementById("order-price-error"),
    quantity: document.getElementById("order-quantity-error"),
    form: document.getElementById("order-error"),
  };
  const status = document.getElementById("order-status");
  const typeSelect = document.getElementById("order-type");

  refreshAccount = async () => {
    try {
      const [bals, open, recent, fills] = await Promise.all([
        api("GET", "/balances"),
        api("GET", `/orders?market=${market}&status=open`),
        api("GET", `/orders?market=${market}&limit=20`),
        api("GET", `/fills?market=${market}&limit=20`),
      ]);
      for (const b of bals) balances[b.asset] = b;
      for (const asset of [base, quote]) {
        const dd = document.querySelector(`#balances [data-asset="${asset}"]`);
        const b = balances[asset];
        if (dd) dd.textContent = b ? `${b.available} available · ${b.locked} in orders` : "0";
      }
      document.getElementById("open-orders").replaceChildren(...open.orders.map((o) => {
        const cancel = document.createElement("button");
        cancel.type = "button";
        cancel.textContent = "Cancel";
        cancel.setAttribute("aria-label", `Cancel order ${o.id}`);
        cancel.addEventListener("click", async () => {
          cancel.disabled = true;
          try { await api("DELETE", `/orders/${o.id}`); } catch (e) { errors.form.textContent = e.message; }
          refreshAccount();
        });
        const actions = document.createElement("td");
        actions.appendChild(cancel);
        return row([cell(o.side, o.side === "buy" ? "up" : "down"), cell(orderKind(o)),
          cell(o.price || "market", "num"), cell(o.quantity || "", "num"), cell(o.filled_quantity, "num"), cell(o.status), actions]);
      }));
      document.getElementById("order-history").replaceChildren(...recent.orders.map((o) =>
        row([cell(new Date(o.created_ms).toLocaleTimeString()), cell(o.side, o.side === "buy" ? "up" : "down"),
          cell(orderKind(o)), cell(o.price || "market", "num"),
          cell(o.quantity || o.quote_amount || "", "num"), cell(o.filled_quantity, "num"), cell(o.status.replace("_", " "))])));
      document.getElementById("my-fills").replaceChildren(...fills.fills.map((f) =>
        row([cell(f.side, f.side === "buy" ? "up" : "down"), cell(f.price, "num"), cell(f.quantity, "num"),
          cell(`${f.fee} ${f.fee_asset}`, "num"), cell(f.role), cell(new Date(f.time_ms).toLocaleTimeString())])));
      estimate();
    } catch (e) {
      errors.form.textContent = e.message;
    }
  };

  document.getElementById("cancel-all-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await api("DELETE", `/orders?market=${market}`); } catch (err) { errors.form.textContent = err.message; }
    refreshAccount();
  });

  function side() { return form.querySelector('input[name="side"]:checked').value; }

  function estimate() {
    const out = document.getElementById("order-estimate");
    const isMarket = typeSelect.value === "market";
    fields.price.disabled = isMarket;
    const q = Dec.parse(fields.quantity.value, quantityScale);
    const p = Dec.parse(fields.price.value, priceScale);
    if (isMarket || q === null || p === null) { out.textContent = ""; return; }
    // price (quote scale) × quantity (base scale) -> quote scale
    const cost = (p * q) / (10n ** BigInt(quantityScale));
    const feeRate = Dec.parse(typeSelect.value === "post_only" ? root.dataset.makerFee : root.dataset.takerFee, 6) || 0n;
    // Fees are charged in the quote asset, on the notional.
    const fee = (cost * feeRate) / 1000000n;
    out.textContent = `${side() === "buy" ? "Cost" : "You receive"} ≈ ${Dec.format(cost, priceScale)} ${quote}; fee up to ${Dec.format(fee, priceScale)} ${quote}`;
  }
  form.addEventListener("input", estimate);
  form.addEventListener("change", estimate);

  form.querySelectorAll("[data-preset]").forEach((b) => b.addEventListener("click", () => {
    const share = BigInt(b.dataset.preset);
    let units = null;
    if (side() === "sell") {
      const avail = balances[base] && Dec.parse(balances[base].available, quantityScale);
      if (avail != null) units = (avail * share) / 100n;
    } else {
      const avail = balances[quote] && Dec.parse(balances[quote].available, priceScale);
      const p = Dec.parse(fields.price.value, priceScale);
      // A buy reserves its notional plus the fee at the higher of the two rates.
      const maker = Dec.parse(root.dataset.makerFee, 6) || 0n, taker = Dec.parse(root.dataset.takerFee, 6) || 0n;
      const feePpm = maker > taker ? maker : taker;
      if (avail != null && p) units = (avail * share * (10n ** BigInt(quantityScale)) * 1000000n) / (100n * p * (1000000n + feePpm));
    }
    const lot = Dec.parse(root.dataset.lot, quantityScale);
    if (units != null && lot) {
      units -= units % lot;
      fields.quantity.value = Dec.format(units, quantityScale);
      estimate();
    }
  }));

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    for (const k of Object.keys(errors)) errors[k].textContent = "";
    status.textContent = "";
    for (const k of Object.keys(fields)) fields[k].removeAttribute("aria-invalid");
    const type = typeSelect.value;
    const order = { market, side: side(), type: type === "market" ? "market" : "limit", quantity: fields.quantity.value.trim() };
    if (type !== "market") order.price = fields.price.value.trim();
    if (type === "post_only" || type === "ioc" || type === "fok") order.time_in_force = type;
    // The grid is checked here first so an obvious mistake is shown at once; the server
    // checks everything again.
    const onGrid = (field, text, scale, step, name) => {
      const units = Dec.parse(text, scale);
      const stepUnits = Dec.parse(step, scale);
      let problem = null;
      if (units === null) problem = `${name} must be a positive number with at most ${scale} decimals`;
      else if (units === 0n) problem = `${name} must be more than zero`;
      else if (stepUnits && units % stepUnits !== 0n) problem = `${name} must be a multiple of ${step}`;
      if (problem) {
        errors[field].textContent = problem;
        fields[field].setAttribute("aria-invalid", "true");
        fields[field].focus();
      }
      return !problem;
    };
    if (order.price !== undefined && !onGrid("price", order.price, priceScale, root.dataset.tick, "the price")) return;
    if (!onGrid("quantity", order.quantity, quantityScale, root.dataset.lot, "the amount")) return;
    const submit = document.getElementById("order-submit");
    submit.disabled = true;
    try {
      const placed = await api("POST", "/orders", order);
      status.textContent = `Order ${placed.order.id}: ${placed.order.status.replace("_", " ")}`;
    } catch (err) {
      const field = /price/.test(err.code + " " + err.message) ? "price"
        : /quantity|lot|notional|balance|funds/.test(err.code + " " + err.message) ? "quantity" : "form";
      errors[field].textContent = err.message;
      if (fields[field]) { fields[field].setAttribute("aria-invalid", "true"); fields[field].focus(); }
    } finally {
      submit.disabled = false;
      refreshAccount();
    }
  });
}

// The status page: the health figures again every 5 s; a failed fetch shows as unreachable.
function statusPage() {
  const set = (field, text) => {
    const el = document.querySelector(`#health [data-field="${field}"]`);
    if (el) el.textContent = text;
  };
  const overall = document.getElementById("overall");
  async function refresh() {
    try {
      const h = await api("GET", "/health");
      set("engine", h.engine_running ? "running" : "stopped");
      set("engine_seq", String(h.engine_seq));
      set("projector", h.projector_lag === 0 ? "up to date" : `${h.projector_lag} commands behind`);
      set("database", `${h.database} (${h.database_backend})`);
      set("websocket_clients", String(h.websocket_clients));
      overall.textContent = h.status === "ok" ? "All systems operational" : "Degraded: some parts are not working";
      overall.className = "overall " + (h.status === "ok" ? "up" : "down");
    } catch {
      overall.textContent = "The exchange does not answer";
      overall.className = "overall down";
    }
  }
  setInterval(refresh, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "home") homePage();
  else if (page === "market") marketPage();
  else if (page === "status") statusPage();
});
