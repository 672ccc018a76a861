// llm-gateway dashboard: model comparison from /stats, polled every 5 s: per alias, its shadow candidate's
// pairs (means of both sides, answer similarity) beside the feedback on the alias (count, share positive,
// mean score), and input drift (PSI per feature, current window against the reference). No dependencies
// and no inline script.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);
  const num = (v, d = 2) => (isNum(v) ? String(+v.toFixed(d)) : "–");
  const usd = (x) => (!isNum(x) ? "–" : "$" + (x !== 0 && Math.abs(x) < 0.01 ? x.toFixed(4) : x.toFixed(2)));

  function el(tag, attrs, text) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    return n;
  }
  function row(cells, attrs) {
    const tr = el("tr", attrs);
    cells.forEach((c, i) => tr.append(el(i ? "td" : "th", i ? { class: "num" } : { scope: "row" }, c)));
    return tr;
  }

  function renderComparison(stats) {
    const body = document.querySelector("#comparison tbody");
    if (!body) return;
    body.replaceChildren();
    const shadow = (stats.shadow || {}).by_alias || {};
    const feedback = (stats.feedback || {}).by_alias || {};
    const aliases = [...new Set([...Object.keys(shadow), ...Object.keys(feedback)])].sort();
    for (const alias of aliases) {
      const s = shadow[alias] || {};
      const f = feedback[alias] || {};
      const p = s.primary || {}, c = s.shadow || {};
      body.append(row([
        alias, s.candidate || "–", String(s.pairs || 0), String(s.shadow_failed || 0),
        `${num(p.latency_ms, 0)} / ${num(c.latency_ms, 0)}`, `${num(p.output_tokens, 0)} / ${num(c.output_tokens, 0)}`,
        `${usd(p.cost_usd)} / ${usd(c.cost_usd)}`, num(s.jaccard), num(s.cosine),
        String(f.count || 0), f.count ? num(f.positive / f.count) : "–", num(f.mean_score),
      ], { "data-alias": alias }));
    }
    const sh = stats.shadow || {};
    const note = $("comparison-note");
    if (note) note.textContent = `sampled ${sh.sampled || 0}, dropped (queue full) ${sh.dropped || 0}`;
    if (!aliases.length) body.append(row(["No shadow pairs or feedback yet"]));
  }

  function renderDrift(stats) {
    const body = document.querySelector("#drift tbody");
    if (!body) return;
    body.replaceChildren();
    const drift = (stats.drift || {}).by_alias || {};
    for (const [alias, d] of Object.entries(drift).sort()) {
      for (const [feature, psi] of Object.entries(d.psi || {})) {
        const high = isNum(psi) && psi > ((stats.drift || {}).threshold || 0.2);
        body.append(row([alias, feature, num(psi, 3), String(d.current || 0), String(d.reference || 0)],
          { "data-alias": alias, "data-feature": feature, "data-high": high ? "1" : "0" }));
      }
    }
    if (!body.children.length) body.append(row(["Not enough traffic for drift yet"]));
  }

  async function tick() {
    try {
      const resp = await fetch("/stats", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (resp.ok) {
        const stats = await resp.json();
        renderComparison(stats);
        renderDrift(stats);
      }
    } catch (e) { /* the main script reports the connection state */ }
  }
  document.addEventListener("DOMContentLoaded", () => { tick(); setInterval(tick, 5000); });
})();
