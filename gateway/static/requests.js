// llm-gateway request log: filtered pages of /admin/requests, newest first, and one record's detail
// (/admin/requests/{entry}; the read is recorded in the audit log). No dependencies, no inline script.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const isNum = (x) => typeof x === "number" && Number.isFinite(x);
  let query = new URLSearchParams();
  let next = null;

  function el(tag, attrs, text) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  const ms = (v) => (isNum(v) ? (v >= 1000 ? (v / 1000).toFixed(2) + " s" : v.toFixed(0) + " ms") : "–");
  const usd = (v) => (isNum(v) ? "$" + (v !== 0 && v < 0.01 ? v.toFixed(5) : v.toFixed(3)) : "–");
  function when(t) {
    const d = new Date(t * 1000);
    return d.toISOString().replace("T", " ").slice(0, 19);
  }

  function row(r) {
    const tr = el("tr", { "data-entry": r.entry, "data-request-id": r.request_id || "" });
    const ents = Object.entries(r.entities || {}).map(([k, v]) => `${k}×${v}`).join(" ");
    const cells = [
      [when(r.time)], [r.request_id], [r.key_id || "–"], [r.team || "–"], [r.alias || "–"],
      [r.provider ? `${r.provider}/${r.model}` : "–"], [r.status, "num status-" + String(r.status)[0]],
      [r.reason || r.error_code || ""], [r.guardrail_action + (ents ? " · " + ents : "")],
      [(r.input_tokens || 0) + (r.output_tokens || 0), "num"], [usd(r.cost_usd), "num"], [ms(r.latency_ms), "num"], [ms(r.ttft_ms), "num"],
    ];
    const names = ["time", "request_id", "key", "team", "alias", "target", "status", "reason", "guardrail", "tokens", "cost", "latency", "ttft"];
    cells.forEach(([v, cls], i) => tr.append(el("td", { class: cls || "", "data-col": names[i] }, v)));
    tr.addEventListener("click", () => detail(r.entry));
    return tr;
  }

  async function page(cursor) {
    const q = new URLSearchParams(query);
    q.set("limit", "50");
    if (cursor) q.set("cursor", cursor);
    const err = $("log-error");
    const resp = await fetch("/admin/requests?" + q, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await resp.json();
    if (!resp.ok) {
      err.hidden = false;
      err.textContent = (body.error && body.error.message) || ("error " + resp.status);
      return;
    }
    err.hidden = true;
    const tbody = $("log").querySelector("tbody");
    tbody.replaceChildren(...body.data.map(row));
    if (!body.data.length) {  // (append returns nothing: build the row, then add it)
      const tr = el("tr");
      tr.append(el("td", { colspan: "13", class: "muted" }, "No matching requests"));
      tbody.append(tr);
    }
    next = body.next;
    $("next-page").disabled = !next;
    $("log").dataset.rows = String(body.data.length);
    $("log").dataset.source = body.source;
    $("log-count").textContent = `${body.data.length} shown · from the ${body.source} sink`;
  }

  async function detail(entry) {
    const resp = await fetch("/admin/requests/" + encodeURIComponent(entry), { credentials: "same-origin" });
    const body = await resp.json();
    $("detail").hidden = false;
    $("detail-entry").textContent = entry;
    $("detail-json").textContent = JSON.stringify(resp.ok ? body.record : body, null, 2);
    $("detail").dataset.entry = entry;
    $("detail").scrollIntoView({ block: "nearest" });
  }

  function readForm() {
    query = new URLSearchParams();
    for (const [k, v] of new FormData($("filters"))) if (String(v).trim()) query.set(k, String(v).trim());
    history.replaceState(null, "", "?" + query);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const initial = new URLSearchParams(location.search);
    for (const [k, v] of initial) { const f = $("filters").elements.namedItem(k); if (f) f.value = v; }
    readForm();
    $("filters").addEventListener("submit", (e) => { e.preventDefault(); readForm(); page(null); });
    $("next-page").addEventListener("click", () => next && page(next));
    $("first-page").addEventListener("click", () => page(null));
    page(null);
  });
})();
