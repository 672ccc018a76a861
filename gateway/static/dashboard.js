// llm-gateway dashboard: polls /stats, keeps a short history in memory and draws it as SVG.
// No dependencies and no inline script (the page's Content-Security-Policy allows this file only).
"use strict";

(() => {
  const params = new URLSearchParams(location.search);
  const REFRESH_S = Math.max(1, Number(params.get("refresh")) || 3);
  const HISTORY_POINTS = Math.ceil(900 / REFRESH_S);  // 15 minutes of polls
  const MIN_SPAN_S = 10 * REFRESH_S;                   // the x axis covers at least ten polls
  const SVG_NS = "http://www.w3.org/2000/svg";

  const history = [];  // {t, rps, error, refused, lat: {p50,p95,p99}, ttft: {...}} from the 1m window
  let last = null;
  let windowName = "1h";
  let usageDim = "by_key";
  let stopped = false;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // -- formatting --
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);
  const fmtInt = (n) => (isNum(n) ? Math.round(n).toLocaleString("en-US") : "–");
  function fmtCompact(n) {
    if (!isNum(n)) return "–";
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(1) + "B";
    if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
    if (a >= 1e4) return (n / 1e3).toFixed(1) + "k";
    return fmtInt(n);
  }
  function fmtNum(n) {
    if (!isNum(n)) return "–";
    if (n === 0) return "0";
    if (Math.abs(n) < 10) return n.toFixed(2).replace(/\.?0+$/, "");
    if (Math.abs(n) < 100) return n.toFixed(1).replace(/\.0$/, "");
    return fmtCompact(n);
  }
  const fmtPct = (x) => (isNum(x) ? (x * 100).toFixed(x > 0 && x < 0.1 ? 2 : 1).replace(/\.?0+$/, "") + "%" : "–");
  function fmtMs(ms) {
    if (!isNum(ms)) return "–";
    if (ms >= 1000) return (ms / 1000).toFixed(ms >= 10000 ? 0 : 2) + " s";
    return (ms < 10 ? ms.toFixed(2) : ms.toFixed(0)) + " ms";
  }
  function fmtUsd(x) {
    if (!isNum(x)) return "–";
    if (x !== 0 && Math.abs(x) < 0.01) return "$" + x.toFixed(4);
    return "$" + x.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  }
  const fmtBytes = (b) => (isNum(b) ? (b / 2 ** 30).toFixed(1) + " GiB" : "–");
  const fmtClock = (t) => new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false });

  // -- polling --
  function setStatus(state, text) {
    $("status").dataset.state = state;
    $("status-text").textContent = text;
  }

  async function poll() {
    try {
      const res = await fetch("/stats", { credentials: "same-origin", cache: "no-store",
                                          headers: { Accept: "application/json" } });
      if (res.status === 401) {
        stopped = true;
        $("auth-lost").hidden = false;
        setStatus("error", "logged out");
        return;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      const data = await res.json();
      record(data);
      last = data;
      render();
      setStatus("ok", "live · " + fmtClock(Date.now() / 1000));
    } catch (err) {
      setStatus("error", "cannot reach /stats (" + err.message + ")");
    } finally {
      if (!stopped) setTimeout(poll, REFRESH_S * 1000);
    }
  }

  function record(data) {
    const w = (data.windows || {})["1m"];
    if (!w) return;
    history.push({
      t: Date.now() / 1000, rps: w.rps, error: w.error_rate, refused: w.rejected_rate,
      lat: w.latency_ms || {}, ttft: w.ttft_ms || {},
    });
    if (history.length > HISTORY_POINTS) history.shift();
  }

  // -- rendering --
  function render() {
    if (!last) return;
    renderTiles(last);
    renderCharts();
    renderBlocks(last);
    renderBudgets(last.budgets);
    renderBreakers(last);
    renderUsage(last);
    renderCache(last.cache_1h);
    renderGpus(last.gpu);
    renderFooter(last);
  }

  function counts(w) {
    const n = w.requests || 0;
    return {
      errors: isNum(w.errors) ? w.errors : Math.round((w.error_rate || 0) * n),
      refused: isNum(w.rejected) ? w.rejected : Math.round((w.rejected_rate || 0) * n),
    };
  }

  function renderTiles(data) {
    const w = (data.windows || {})[windowName] || {};
    const c = counts(w);
    for (const node of document.querySelectorAll(".win")) node.textContent = "(" + windowName + ")";
    $("kpi-requests").textContent = fmtInt(w.requests);
    $("kpi-rps").textContent = fmtNum(w.rps);
    $("kpi-errors").textContent = fmtInt(c.errors);
    $("kpi-error-rate").textContent = fmtPct(w.error_rate) + " of requests";
    $("kpi-refused").textContent = fmtInt(c.refused);
    $("kpi-refused-rate").textContent = fmtPct(w.rejected_rate) + " of requests";
    const lat = w.latency_ms || {}, ttft = w.ttft_ms || {};
    $("kpi-latency").textContent = fmtMs(lat.p95);
    $("kpi-latency-sub").textContent = "p50 " + fmtMs(lat.p50) + " · p99 " + fmtMs(lat.p99);
    $("kpi-ttft").textContent = fmtMs(ttft.p95);
    $("kpi-ttft-sub").textContent = "p50 " + fmtMs(ttft.p50) + " · p99 " + fmtMs(ttft.p99);
    $("kpi-inflight").textContent = fmtInt(data.in_flight);
    // /stats is the whole instance: every worker's windows merged.
    $("kpi-workers").textContent = data.workers ? fmtInt(data.workers) + (data.workers === 1 ? " worker" : " workers") : "";
    const byKey = Object.values((data.usage_1h || {}).by_key || {});
    const sum = (f) => byKey.reduce((a, r) => a + (r[f] || 0), 0);
    $("kpi-cost").textContent = fmtUsd(sum("cost_usd"));
    $("kpi-tokens").textContent = fmtCompact(sum("input_tokens")) + " in · " + fmtCompact(sum("output_tokens")) + " out tokens";
  }

  function renderCharts() {
    const pick = (f) => history.map((h) => ({ t: h.t, v: f(h) }));
    lineChart($("chart-rps"), [{ name: "req/s", cls: "s1", area: true, points: pick((h) => h.rps) }], fmtNum);
    lineChart($("chart-errors"), [
      { name: "errors (5xx)", cls: "s3", points: pick((h) => h.error) },
      { name: "refused (4xx)", cls: "s2", points: pick((h) => h.refused) },
    ], fmtPct);
    for (const [id, key] of [["chart-latency", "lat"], ["chart-ttft", "ttft"]]) {
      lineChart($(id), ["p50", "p95", "p99"].map((p, i) => (
        { name: p, cls: "s" + (i + 1), dash: p === "p99", points: pick((h) => h[key][p]) })), fmtMsShort);
    }
  }

  // One unit per axis: seconds only when the whole axis reaches two of them.
  const fmtMsShort = (ms, top) => (top >= 2000 ? fmtNum(ms / 1000) + "s" : fmtNum(ms));

  // The top of the y axis: four gridline steps of 1, 2, 2.5 or 5 times a power of ten.
  function niceMax(x) {
    if (!(x > 0)) return 1;
    const step = x / 4, p = 10 ** Math.floor(Math.log10(step));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= step) return 4 * m * p;
    return 40 * p;
  }

  function lineChart(node, series, fmt) {
    const width = Math.max(node.clientWidth, 200), height = Math.max(node.clientHeight, 120);
    const pad = { l: 46, r: 10, t: 8, b: 22 };
    node.setAttribute("viewBox", `0 0 ${width} ${height}`);
    node.replaceChildren();
    const all = series.flatMap((s) => s.points).filter((p) => isNum(p.v));
    const ts = series[0].points.map((p) => p.t);
    let legend = node.nextElementSibling;
    if (!legend || !legend.classList.contains("legend")) {
      legend = el("div", { class: "legend" });
      node.after(legend);
    }
    legend.replaceChildren(...series.map((s) => {
      const item = el("span", {}, s.name);
      item.prepend(el("i", { class: s.cls + (s.dash ? " dash" : "") }));
      return item;
    }));
    if (!ts.length) {
      node.append(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, "waiting for data…"));
      return;
    }
    const t1 = ts[ts.length - 1], t0 = Math.min(ts[0], t1 - 1);
    const span = Math.max(t1 - t0, MIN_SPAN_S);
    const ymax = niceMax(Math.max(0, ...all.map((p) => p.v)));
    const x = (t) => pad.l + ((t - t0) / span) * (width - pad.l - pad.r);
    const y = (v) => pad.t + (1 - v / ymax) * (height - pad.t - pad.b);
    for (let i = 0; i <= 4; i++) {
      const v = (ymax * i) / 4, yy = y(v);
      node.append(svg("line", { x1: pad.l, x2: width - pad.r, y1: yy, y2: yy, class: i ? "gridline" : "axis" }));
      node.append(svg("text", { x: pad.l - 6, y: yy + 4, "text-anchor": "end" }, fmt(v, ymax)));
    }
    for (const [t, anchor] of [[t0, "start"], [t0 + span / 2, "middle"], [t0 + span, "end"]]) {
      node.append(svg("text", { x: x(t), y: height - 6, "text-anchor": anchor }, fmtClock(t)));
    }
    for (const s of series) {
      // A null (no requests in the window) breaks the line rather than drawing a zero.
      let d = "", run = [];
      const runs = [];
      for (const p of s.points) {
        if (isNum(p.v)) run.push(p); else if (run.length) { runs.push(run); run = []; }
      }
      if (run.length) runs.push(run);
      for (const r of runs) {
        d += r.map((p, i) => (i ? "L" : "M") + x(p.t).toFixed(1) + " " + y(p.v).toFixed(1)).join(" ") + " ";
        if (s.area && r.length > 1) {
          const a = `M${x(r[0].t).toFixed(1)} ${y(0)} ` + r.map((p) => `L${x(p.t).toFixed(1)} ${y(p.v).toFixed(1)}`).join(" ")
            + ` L${x(r[r.length - 1].t).toFixed(1)} ${y(0)} Z`;
          node.append(svg("path", { d: a, class: "area " + s.cls }));
        }
        if (r.length === 1) node.append(svg("circle", { cx: x(r[0].t), cy: y(r[0].v), r: 2.5, class: s.cls }));
      }
      // p99 is dashed: with few requests it often equals p95, which stays visible through the gaps.
      if (d) node.append(svg("path", { d: d.trim(), class: "line " + s.cls + (s.dash ? " dash" : "") }));
      const lastPoint = s.points[s.points.length - 1];
      if (lastPoint && isNum(lastPoint.v)) {
        node.append(svg("circle", { cx: x(lastPoint.t), cy: y(lastPoint.v), r: 3, class: s.cls }));
      }
    }
    node.dataset.points = String(ts.length);
  }

  function barRow(name, value, fraction, text, fillClass, attrs) {
    const row = el("div", { class: "bar-row", ...(attrs || {}) });
    row.append(el("span", { class: "name", title: name }, name), el("span", { class: "num" }, text));
    const track = el("div", { class: "track" }), fill = el("div", { class: "fill " + (fillClass || "") });
    fill.style.width = Math.max(0, Math.min(1, fraction)) * 100 + "%";
    track.append(fill);
    row.append(track);
    return row;
  }

  const REASON_GROUPS = [
    ["Rate limits and budgets", "limit", (r) => /^(rate_limit|budget|store)\./.test(r)],
    ["Guardrails", "guard", (r) => r.startsWith("guardrail.")],
    ["Other", "", () => true],
  ];

  function renderBlocks(data) {
    const box = $("blocks");
    const reasons = (((data.windows || {})[windowName] || {}).top_block_reasons) || [];
    box.replaceChildren();
    if (!reasons.length) {
      box.append(el("p", { class: "empty-note" }, "No blocks in this window."));
      return;
    }
    const max = Math.max(...reasons.map((r) => r.count));
    const left = [...reasons];
    for (const [title, cls, test] of REASON_GROUPS) {
      const mine = left.filter((r) => test(r.reason));
      if (!mine.length) continue;
      for (const r of mine) left.splice(left.indexOf(r), 1);
      box.append(el("p", { class: "group-title" }, title));
      const bars = el("div", { class: "bars" });
      for (const r of mine) bars.append(barRow(r.reason, r.count, r.count / max, fmtInt(r.count), cls, { "data-reason": r.reason }));
      box.append(bars);
    }
  }

  const firstNum = (o, names) => { for (const n of names) if (isNum(o[n])) return o[n]; return null; };

  function renderBudgets(budgets) {
    const box = $("budgets");
    box.replaceChildren();
    if (budgets && budgets.error) {
      box.append(el("p", { class: "empty-note" }, "Budgets unavailable: " + budgets.error));
      return;
    }
    const entries = Array.isArray(budgets) ? budgets.map((b, i) => [b.id || b.rule || b.name || "budget " + (i + 1), b])
      : Object.entries(budgets || {});
    if (!entries.length) {
      box.append(el("p", { class: "empty-note", "data-empty": "budgets" }, "No budgets"));
      return;
    }
    const bars = el("div", { class: "bars" });
    for (const [name, b] of entries) {
      const used = firstNum(b, ["used", "spent", "spent_usd", "used_usd", "spent_tokens", "used_tokens"]);
      const limit = firstNum(b, ["limit", "limit_usd", "limit_tokens"]);
      const usd = /usd/i.test(b.unit || "") || isNum(b.spent_usd) || isNum(b.used_usd) || isNum(b.limit_usd);
      const f = usd ? fmtUsd : fmtCompact;
      const frac = isNum(used) && limit ? used / limit : 0;
      const label = name + (b.window ? " · " + b.window : "");
      bars.append(barRow(label, used, frac, f(used) + " / " + f(limit) + " (" + fmtPct(frac) + ")",
                         frac >= 0.9 ? "hot" : frac >= 0.7 ? "limit" : "", { "data-budget": name }));
    }
    box.append(bars);
  }

  function renderBreakers(data) {
    const box = $("breakers");
    box.replaceChildren();
    const detail = data.breaker_detail || Object.fromEntries(Object.entries(data.breakers || {}).map(([k, s]) => [k, { state: s }]));
    const names = Object.keys(detail).sort();
    if (!names.length) {
      box.append(el("p", { class: "empty-note" }, "No upstream targets."));
      return;
    }
    const list = el("div", { class: "breakers" });
    for (const name of names) {
      const b = detail[name] || {};
      const row = el("div", { class: "breaker", "data-breaker": name, "data-state": b.state || "" });
      const left = el("div");
      left.append(el("div", { class: "target", title: name }, name));
      const bits = [];
      if (isNum(b.consecutive_failures)) bits.push(b.consecutive_failures + " consecutive failures");
      if (isNum(b.error_rate)) bits.push(fmtPct(b.error_rate) + " errors");
      if (b.state === "open" && isNum(b.retry_in_s)) bits.push("retry in " + b.retry_in_s.toFixed(0) + " s");
      if (b.opened_count) bits.push("opened " + b.opened_count + "×");
      if (bits.length) left.append(el("div", { class: "detail" }, bits.join(" · ")));
      row.append(left, el("span", { class: "pill " + (b.state || "") }, (b.state || "?").replace("_", "-")));
      list.append(row);
    }
    box.append(list);
  }

  function renderUsage(data) {
    const rows = Object.entries(((data.usage_1h || {})[usageDim]) || {});
    rows.sort((a, b) => (b[1].cost_usd - a[1].cost_usd) || ((b[1].input_tokens + b[1].output_tokens) - (a[1].input_tokens + a[1].output_tokens)) || (b[1].requests - a[1].requests));
    const total = rows.reduce((a, [, r]) => a + r.input_tokens + r.output_tokens, 0);
    const body = $("usage").tBodies[0];
    body.replaceChildren();
    $("usage-dim").textContent = { by_key: "Key", by_team: "Team", by_model: "Model" }[usageDim];
    if (!rows.length) {
      const tr = el("tr"), td = el("td", { colspan: "6", class: "empty-note" }, "No usage in the last hour.");
      tr.append(td);
      body.append(tr);
      return;
    }
    for (const [name, r] of rows) {
      const tr = el("tr", { "data-name": name });
      tr.append(el("td", {}, name), el("td", { class: "num", "data-col": "requests" }, fmtInt(r.requests)),
                el("td", { class: "num" }, fmtInt(r.input_tokens)), el("td", { class: "num" }, fmtInt(r.output_tokens)),
                el("td", { class: "num" }, fmtUsd(r.cost_usd)));
      const share = el("td", { class: "share" }), track = el("div", { class: "track" }), fill = el("div", { class: "fill" });
      fill.style.width = (total ? ((r.input_tokens + r.output_tokens) / total) * 100 : 0) + "%";
      track.append(fill);
      share.append(track);
      tr.append(share);
      body.append(tr);
    }
  }

  // The response cache per alias (/stats `cache_1h`); the section shows once a [[cache]] rule has seen a request.
  function renderCache(cache) {
    const rows = Object.entries((cache || {}).by_alias || {});
    $("cache-section").hidden = !rows.length;
    const body = $("cache").tBodies[0];
    body.replaceChildren();
    rows.sort((a, b) => (b[1].saved_usd - a[1].saved_usd) || (b[1].hit - a[1].hit) || a[0].localeCompare(b[0]));
    for (const [alias, r] of rows) {
      const tr = el("tr", { "data-alias": alias });
      tr.append(el("td", {}, alias), el("td", { class: "num", "data-col": "hit" }, fmtInt(r.hit)),
                el("td", { class: "num", "data-col": "miss" }, fmtInt(r.miss)),
                el("td", { class: "num", "data-col": "bypass" }, fmtInt(r.bypass)),
                el("td", { class: "num", "data-col": "hit_ratio" }, fmtPct(r.hit_ratio)),
                el("td", { class: "num", "data-col": "saved_usd" }, fmtUsd(r.saved_usd)));
      const share = el("td", { class: "share" }), track = el("div", { class: "track" }), fill = el("div", { class: "fill" });
      fill.style.width = (isNum(r.hit_ratio) ? r.hit_ratio * 100 : 0) + "%";
      track.append(fill);
      share.append(track);
      tr.append(share);
      body.append(tr);
    }
  }

  function renderGpus(gpu) {
    const section = $("gpu-section");
    const list = Array.isArray(gpu) ? gpu : gpu && typeof gpu === "object" && !gpu.error
      ? Object.entries(gpu).map(([k, g]) => ({ index: k, ...g })) : [];
    section.hidden = !list.length;
    if (!list.length) return;
    const box = $("gpus");
    box.replaceChildren();
    for (const g of list) {
      const card = el("div", { class: "gpu" });
      card.append(el("div", { class: "gpu-name" }, ["GPU " + (g.index ?? ""), g.name].filter(Boolean).join(" · ")));
      let util = firstNum(g, ["utilization", "utilization_ratio", "util"]);
      if (isNum(util) && util > 1) util /= 100;
      if (isNum(util)) card.append(barRow("utilisation", util, util, fmtPct(util), util >= 0.9 ? "hot" : ""));
      const used = firstNum(g, ["memory_used_bytes", "mem_used_bytes"]), tot = firstNum(g, ["memory_total_bytes", "mem_total_bytes"]);
      if (isNum(used) && tot) card.append(barRow("memory", used, used / tot, fmtBytes(used) + " / " + fmtBytes(tot), used / tot >= 0.9 ? "hot" : "guard"));
      const temp = firstNum(g, ["temperature_c", "temperature_celsius", "temperature"]);
      if (isNum(temp)) card.append(barRow("temperature", temp, temp / 100, temp.toFixed(0) + " °C", temp >= 85 ? "hot" : "limit"));
      box.append(card);
    }
  }

  function renderFooter(data) {
    const c = data.config || {}, a = data.audit || {};
    $("foot-config").textContent = isNum(c.generation)
      ? `config generation ${c.generation} · ${c.reloads} reloads · ${c.reload_errors} reload errors` : "";
    $("foot-audit").textContent = isNum(a.next_seq) ? `audit: ${fmtInt(a.next_seq)} records · queue ${fmtInt(a.queue_depth)}` : "";
  }

  // -- controls --
  function bindSegment(attr, set) {
    const buttons = document.querySelectorAll(`button[data-${attr}]`);
    for (const b of buttons) {
      b.addEventListener("click", () => {
        for (const o of buttons) o.setAttribute("aria-pressed", String(o === b));
        set(b.dataset[attr]);
        render();
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    bindSegment("window", (v) => { windowName = v; });
    bindSegment("usage", (v) => { usageDim = v; });
    let pending = 0;
    window.addEventListener("resize", () => {
      cancelAnimationFrame(pending);
      pending = requestAnimationFrame(renderCharts);
    });
    renderCharts();
    poll();
  });
})();
