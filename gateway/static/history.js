// llm-gateway dashboard: charts from the stored history (/admin/history), drawn on page load, each with
// its own range (15m, 1h, 24h, 7d); the alerts, per-alias and per-provider panels, and budgets' time to
// exhaustion at the last hour's rate. No dependencies and no inline script.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);
  const cache = new Map();  // range -> {at, data}
  const ranges = {};  // chart id -> range

  function el(tag, attrs, text) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function svg(tag, attrs, text) {
    const n = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }
  const fmt = (v) => (!isNum(v) ? "–" : Math.abs(v) >= 1000 ? (v / 1000).toFixed(1) + "k" : Math.abs(v) < 10 ? String(+v.toFixed(3)) : v.toFixed(0));
  const fmtUsd = (x) => (!isNum(x) ? "–" : "$" + (x !== 0 && Math.abs(x) < 0.01 ? x.toFixed(4) : x.toFixed(2)));
  function fmtTime(t, step) {
    const d = new Date(t * 1000);
    return step >= 3600 ? `${d.getMonth() + 1}/${d.getDate()} ${String(d.getHours()).padStart(2, "0")}h`
      : `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
  }

  async function load(range) {
    const hit = cache.get(range);
    if (hit && Date.now() - hit.at < 10000) return hit.data;
    const resp = await fetch("/admin/history?range=" + range, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error("history " + resp.status);
    const data = await resp.json();
    cache.set(range, { at: Date.now(), data });
    return data;
  }

  function niceMax(x) {
    if (!(x > 0)) return 1;
    const step = x / 4, p = 10 ** Math.floor(Math.log10(step));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= step) return 4 * m * p;
    return 40 * p;
  }

  // series: [{name, values: [number|null per point]}]
  function chart(node, data, series) {
    const width = Math.max(node.clientWidth, 200), height = Math.max(node.clientHeight, 120);
    const pad = { l: 46, r: 10, t: 8, b: 22 };
    node.setAttribute("viewBox", `0 0 ${width} ${height}`);
    node.replaceChildren();
    const pts = data.points, n = pts.length;
    const all = series.flatMap((s) => s.values).filter(isNum);
    const ymax = niceMax(Math.max(0, ...all));
    const x = (i) => pad.l + (n > 1 ? i / (n - 1) : 0.5) * (width - pad.l - pad.r);
    const y = (v) => pad.t + (1 - v / ymax) * (height - pad.t - pad.b);
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4;
      node.append(svg("line", { x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: i ? "gridline" : "axis" }));
      node.append(svg("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
    }
    if (n) {
      for (const [i, a] of [[0, "start"], [Math.floor((n - 1) / 2), "middle"], [n - 1, "end"]]) {
        node.append(svg("text", { x: x(i), y: height - 6, "text-anchor": a }, fmtTime(pts[i].t, data.step_s)));
      }
    }
    let legend = node.nextElementSibling;
    if (!legend || !legend.classList.contains("legend")) { legend = el("div", { class: "legend" }); node.after(legend); }
    legend.replaceChildren(...series.map((s, k) => { const it = el("span", {}, s.name); it.prepend(el("i", { class: "s" + (k % 3 + 1) })); return it; }));
    let drawn = 0;
    series.forEach((s, k) => {
      let d = "", pen = false;
      s.values.forEach((v, i) => {
        if (!isNum(v)) { pen = false; return; }
        d += (pen ? "L" : "M") + x(i).toFixed(1) + " " + y(v).toFixed(1) + " ";
        pen = true;
      });
      if (d) { node.append(svg("path", { d: d.trim(), class: "line s" + (k % 3 + 1) })); drawn++; }
    });
    if (!all.some((v) => v > 0)) {
      node.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, "no requests in this range"));
    }
    node.dataset.points = String(n);
    node.dataset.total = String(pts.reduce((a, p) => a + p.requests, 0));
    node.dataset.lines = String(drawn);
  }

  function top(points, field, k) {
    const sum = {};
    for (const p of points) for (const [name, v] of Object.entries(p[field] || {})) sum[name] = (sum[name] || 0) + v;
    return Object.entries(sum).sort((a, b) => b[1] - a[1]).slice(0, k).map(([name]) => name);
  }

  const CHARTS = {
    requests: (d) => [{ name: "requests", values: d.points.map((p) => p.requests) }],
    errors: (d) => [{ name: "5xx", values: d.points.map((p) => p.errors) }, { name: "4xx", values: d.points.map((p) => p.refused) },
      { name: "refused by policy", values: d.points.map((p) => p.refusals) }],
    latency: (d) => ["p50", "p95", "p99"].map((q) => ({ name: q, values: d.points.map((p) => p.latency_ms[q]) })),
    ttft: (d) => ["p50", "p95", "p99"].map((q) => ({ name: q, values: d.points.map((p) => p.ttft_ms[q]) })),
    guardrail: (d) => [
      ...top(d.points, "entities", 3).map((e) => ({ name: "redacted " + e, values: d.points.map((p) => (p.entities || {})[e] || 0) })),
      ...top(d.points, "blocks", 3).map((r) => ({ name: "blocked " + r, values: d.points.map((p) => (p.blocks || {})[r] || 0) })),
    ].slice(0, 6),
    cost: (d) => [{ name: "USD", values: d.points.map((p) => p.cost_usd) }],
  };

  async function drawChart(id) {
    const node = $("hist-" + id);
    if (!node) return;
    try {
      const data = await load(ranges[id] || "1h");
      let series = CHARTS[id](data);
      if (!series.length) series = [{ name: "none", values: data.points.map(() => 0) }];
      chart(node, data, series);
      node.dataset.range = data.range;
    } catch (err) {
      node.replaceChildren(svg("text", { x: 20, y: 40, class: "empty" }, "history unavailable: " + err.message));
    }
  }

  function perTable(id, rows) {
    const body = $(id).querySelector("tbody");
    const entries = Object.entries(rows || {}).sort((a, b) => b[1].requests - a[1].requests);
    body.replaceChildren(...entries.map(([name, r]) => {
      const tr = el("tr", { "data-name": name });
      const ms = (v) => (isNum(v) ? v.toFixed(0) + " ms" : "–");
      tr.append(el("td", {}, name), el("td", { class: "num", "data-col": "requests" }, String(r.requests)),
        el("td", { class: "num", "data-col": "errors" }, String(r.errors)),
        el("td", { class: "num", "data-col": "p50" }, ms(r.p50_latency_ms)),
        el("td", { class: "num", "data-col": "p95" }, ms(r.p95_latency_ms)));
      return tr;
    }));
    if (!entries.length) {  // (append returns nothing: build the row, then add it)
      const tr = el("tr");
      tr.append(el("td", { colspan: "5", class: "muted" }, "No requests in the last hour"));
      body.append(tr);
    }
  }

  function eta(b, totals) {
    const dims = { key: "by_key", team: "by_team", model: "by_model" };
    const row = dims[b.scope] ? (totals[dims[b.scope]] || {})[b.subject] : totals;
    const perHour = row ? (b.unit === "usd" ? row.cost_usd : (row.tokens ?? (row.input_tokens + row.output_tokens))) : 0;
    const left = b.limit - b.spent;
    if (left <= 0) return "exhausted";
    if (!(perHour > 0)) return "no spend in the last hour";
    const hours = left / perHour;
    const at = Date.now() / 1000 + hours * 3600;
    if (b.resets_at && at > b.resets_at) return "resets first";
    return hours < 1 ? `${Math.round(hours * 60)} min` : hours < 48 ? `${hours.toFixed(1)} h` : `${(hours / 24).toFixed(1)} d`;
  }

  async function panels() {
    let stats = null;
    try {
      const resp = await fetch("/stats", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (resp.ok) stats = await resp.json();
    } catch (_) { /* the overview shows the connection state */ }
    let hour = null;
    try { hour = await load("1h"); } catch (_) { /* drawn as unavailable by the charts */ }
    if (hour) { perTable("per-alias", hour.totals.by_alias); perTable("per-provider", hour.totals.by_provider); }
    const alerts = $("alerts");
    const a = (stats && stats.alerts) || {};
    const rules = Object.entries(a.rules || {});
    const hooks = Object.entries(a.webhooks || {});
    alerts.replaceChildren();
    if (!rules.length && !hooks.length) alerts.append(el("p", { class: "empty-note" }, "No alert rules"));
    for (const [id, r] of rules) {
      const row = el("div", { class: "breaker", "data-alert": id });
      const state = r.firing ? "fired" : r.pending ? "pending" : "resolved";
      row.append(el("span", { class: "target" }, id), el("span", { class: "pill " + (r.firing ? "open" : r.pending ? "half_open" : "closed") }, state));
      alerts.append(row);
    }
    for (const [name, s] of hooks) {
      alerts.append(el("div", { class: "breaker detail", "data-webhook": name }, `${name}: ${JSON.stringify(s)}`));
    }
    await timeline();
    const box = $("budget-eta");
    const budgets = (stats && Array.isArray(stats.budgets)) ? stats.budgets : [];
    box.replaceChildren();
    if (!budgets.length) box.append(el("p", { class: "empty-note" }, "No budgets"));
    for (const b of budgets) {
      const used = b.limit ? b.spent / b.limit : 0;
      const row = el("div", { class: "bar-row", "data-budget": b.id + ":" + (b.subject || "") });
      row.append(el("span", { class: "name" }, `${b.id}${b.subject ? " · " + b.subject : ""} (${b.window})`),
        el("span", { class: "num" }, `${b.unit === "usd" ? fmtUsd(b.spent) : fmt(b.spent)} / ${b.unit === "usd" ? fmtUsd(b.limit) : fmt(b.limit)} · ${hour ? eta(b, hour.totals) : "–"}`));
      const track = el("div", { class: "track" });
      const fill = el("div", { class: "fill" + (used > 0.9 ? " hot" : used > 0.7 ? " limit" : "") });
      fill.style.width = Math.min(100, used * 100).toFixed(1) + "%";
      track.append(fill);
      row.append(track);
      box.append(row);
    }
  }

  // The alerts timeline (/admin/alerts/events): fired and resolved events, newest first, with each
  // webhook's delivery status.
  async function timeline() {
    const box = $("alert-events");
    if (!box) return;
    let data;
    try {
      const resp = await fetch("/admin/alerts/events?limit=20", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!resp.ok) throw new Error(String(resp.status));
      data = await resp.json();
    } catch (err) {
      box.replaceChildren(el("li", { class: "empty-note" }, "alert events unavailable: " + err.message));
      return;
    }
    box.dataset.events = String(data.data.length);
    if (!data.data.length) { box.replaceChildren(el("li", { class: "empty-note" }, "No alert events yet")); return; }
    box.replaceChildren(...data.data.map((e) => {
      const li = el("li", { class: "alert-event", "data-alert": e.alert, "data-status": e.status });
      const when = new Date(e.at * 1000);
      li.append(el("time", { datetime: when.toISOString() }, when.toLocaleString()),
        el("span", { class: "pill " + (e.status === "firing" ? "open" : "closed") }, e.status === "firing" ? "fired" : "resolved"),
        el("span", { class: "target" }, `${e.alert} (${e.severity})`),
        el("span", { class: "num" }, isNum(e.value) ? "value " + fmt(e.value) : "no data"));
      const hooks = el("span", { class: "deliveries" });
      for (const h of e.webhooks) {
        hooks.append(el("span", { class: "delivery " + h.status, "data-webhook": h.webhook, "data-delivery": h.status },
          `${h.webhook}: ${h.status}${h.error ? " (" + h.error + ")" : ""}`));
      }
      li.append(hooks);
      return li;
    }));
  }

  function drawAll() { Object.keys(CHARTS).forEach(drawChart); }

  document.addEventListener("DOMContentLoaded", () => {
    if (!$("history")) return;
    for (const fig of $("history").querySelectorAll("figure")) {
      const id = fig.querySelector("svg").id.slice(5);
      ranges[id] = "1h";
      for (const btn of fig.querySelectorAll("button[data-range]")) {
        btn.addEventListener("click", () => {
          ranges[id] = btn.dataset.range;
          for (const b of fig.querySelectorAll("button[data-range]")) b.setAttribute("aria-pressed", String(b === btn));
          drawChart(id);
        });
      }
    }
    drawAll();
    panels();
    setInterval(() => { cache.clear(); drawAll(); panels(); }, 15000);
  });
})();
