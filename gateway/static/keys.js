// llm-gateway Keys page: the /admin/keys API in a table and a form. No dependencies, no inline script.
// Changes send `x-gateway-dashboard: 1`, which the session cookie needs to authorise a change.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const LIMITS = ["rpm", "tpm", "concurrency"];
  let keys = [];
  let role = "admin";
  let editing = null;  // the id of the key the form edits, or null: the form creates

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showError(message) {
    $("error").textContent = message;
    $("error").hidden = !message;
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers["x-gateway-dashboard"] = "1";
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store",
                                    body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401) {
      $("auth-lost").hidden = false;
      throw new Error("the session has ended");
    }
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = data.error || {};
      throw new Error((err.message || `HTTP ${res.status}`) + (err.param ? ` (field: ${err.param})` : ""));
    }
    return data;
  }

  // -- the table --
  const fmtTime = (iso) => (iso ? iso.replace("T", " ").replace(/(\.\d+)?Z$/, " UTC") : "never");
  function limitsText(l) {
    if (!l) return "–";
    const parts = Object.entries(l).filter(([, v]) => v !== null && v !== undefined)
      .map(([k, v]) => (k === "budget_usd" ? `$${v}` : k === "budget_window" ? `/${v}` : `${k} ${v}`));
    return parts.join(" ").replace(" /", "/") || "–";
  }
  function state(k) {
    if (k.revoked) return "revoked";
    if (k.expired) return "expired";
    return k.revoked === null ? "unknown" : "active";
  }

  // A cell: on phones a label and its value side by side (keys.css), on wider screens the value only.
  function cell(col, label, content) {
    const td = el("td", { "data-col": col });
    const value = el("span", { class: "cell-value" });
    if (typeof content === "string") value.textContent = content;
    else value.append(content);
    td.append(el("span", { class: "cell-label" }, label), value);
    return td;
  }

  function button(text, action, id) {
    return el("button", { type: "button", "data-action": action, "data-key": id }, text);
  }

  function render() {
    const body = $("keys").querySelector("tbody");
    body.replaceChildren();
    for (const k of keys) {
      const tr = el("tr", { "data-key": k.id, "data-source": k.source });
      const src = k.read_only ? el("span", { class: "pill ro", title: "a [[keys]] rule of the policy files" }, "config · read-only")
                              : el("span", { class: "pill api" }, "API");
      const st = state(k);
      const actions = el("span", { class: "row-actions" });
      if (!k.read_only && role === "admin") {
        actions.append(button("Edit", "edit", k.id));
        actions.append(k.revoked ? button("Unrevoke", "unrevoke", k.id) : button("Revoke", "revoke", k.id));
        actions.append(button("Rotate", "rotate", k.id));
      } else {
        actions.append(el("span", { class: "muted" }, "–"));
      }
      tr.append(cell("id", "Id", k.id), cell("source", "Source", src), cell("team", "Team", k.team || "–"),
                cell("models", "Models", k.models && k.models.length ? k.models.join(", ") : "all"),
                cell("state", "State", el("span", { class: `pill state-${st}` }, st)),
                cell("expires", "Expires", fmtTime(k.expires_at)), cell("limits", "Limits", limitsText(k.limits)),
                cell("actions", "Actions", actions));
      body.append(tr);
    }
    $("count").textContent = `(${keys.length})`;
  }

  async function load() {
    const data = await api("GET", "/admin/keys");
    keys = data.data;
    role = (data.you && data.you.role) || "admin";
    const store = data.store || {};
    $("store-note").textContent = store.persistent ? "" : `Memory store: ${store.note}`;
    $("store-note").hidden = !!store.persistent;
    $("role-note").hidden = role === "admin";
    $("editor").hidden = role !== "admin";
    render();
  }

  // -- the form --
  const list = (s) => s.split(",").map((x) => x.trim()).filter(Boolean);
  function readForm() {
    const f = $("key-form").elements;
    const body = {};
    for (const name of ["team", "user", "description"]) {
      const v = f[name].value.trim();
      if (v || editing) body[name] = v || null;
    }
    body.models = list(f.models.value);
    body.tags = list(f.tags.value);
    const exp = f.expires.value;
    if (exp || editing) body.expires_at = exp ? (exp.length === 16 ? exp + ":00" : exp) + "Z" : null;
    const limits = {};
    for (const name of LIMITS) if (f[name].value !== "") limits[name] = Number(f[name].value);
    if (f.budget_usd.value !== "") limits.budget_usd = Number(f.budget_usd.value);
    if (f.budget_window.value && f.budget_usd.value !== "") limits.budget_window = f.budget_window.value;
    if (Object.keys(limits).length) body.limits = limits;
    else if (editing) body.limits = null;
    if (!editing && f.id.value.trim()) body.id = f.id.value.trim();
    return body;
  }

  function fillForm(k) {
    const f = $("key-form").elements;
    f.id.value = k ? k.id : "";
    f.id.disabled = !!k;
    f.team.value = (k && k.team) || "";
    f.user.value = (k && k.user) || "";
    f.description.value = (k && k.description) || "";
    f.models.value = k ? k.models.join(", ") : "";
    f.tags.value = k ? k.tags.join(", ") : "";
    f.expires.value = k && k.expires_at ? k.expires_at.replace(/(\.\d+)?Z$/, "").slice(0, 19) : "";
    const l = (k && k.limits) || {};
    for (const name of LIMITS) f[name].value = l[name] ?? "";
    f.budget_usd.value = l.budget_usd ?? "";
    f.budget_window.value = l.budget_window || "";
    editing = k ? k.id : null;
    $("editor-title").textContent = k ? `Edit ${k.id}` : "Create a key";
    $("submit").textContent = k ? "Save changes" : "Create key";
    $("cancel-edit").hidden = !k;
  }

  function showSecret(title, secret, sub) {
    $("secret-title").textContent = title;
    $("secret").textContent = secret;
    $("secret-sub").textContent = sub || "";
    $("secret-box").hidden = false;
  }

  async function submit(ev) {
    ev.preventDefault();
    showError("");
    try {
      if (editing) {
        await api("PATCH", `/admin/keys/${encodeURIComponent(editing)}`, readForm());
      } else {
        const out = await api("POST", "/admin/keys", readForm());
        showSecret(`New key ${out.key.id}`, out.secret, out.store && !out.store.persistent ? out.store.note : "");
      }
      fillForm(null);
      await load();
    } catch (e) {
      showError(e.message);
    }
  }

  async function onAction(ev) {
    const b = ev.target.closest("button[data-action]");
    if (!b) return;
    const id = b.dataset.key;
    const path = `/admin/keys/${encodeURIComponent(id)}`;
    showError("");
    try {
      if (b.dataset.action === "edit") {
        fillForm(keys.find((k) => k.id === id));
        $("editor").scrollIntoView({ block: "start" });
        return;
      }
      if (b.dataset.action === "rotate") {
        $("rotate-id").textContent = id;
        $("rotate-dialog").dataset.key = id;
        $("rotate-dialog").showModal();
        return;
      }
      await api("POST", `${path}/${b.dataset.action}`);
      await load();
    } catch (e) {
      showError(e.message);
    }
  }

  async function onRotateClose() {
    const dialog = $("rotate-dialog");
    if (dialog.returnValue !== "rotate") return;
    const id = dialog.dataset.key;
    try {
      const out = await api("POST", `/admin/keys/${encodeURIComponent(id)}/rotate`,
                            { grace_s: Number($("rotate-grace").value || 0) });
      showSecret(`New secret for ${id}`, out.secret, `The previous secret works until ${fmtTime(out.previous_valid_until)}.`);
      await load();
    } catch (e) {
      showError(e.message);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("key-form").addEventListener("submit", submit);
    $("cancel-edit").addEventListener("click", () => fillForm(null));
    $("keys").addEventListener("click", onAction);
    $("rotate-dialog").addEventListener("close", onRotateClose);
    $("secret-done").addEventListener("click", () => {
      $("secret").textContent = "";
      $("secret-box").hidden = true;
    });
    $("secret-copy").addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText($("secret").textContent));
    load().catch((e) => showError(e.message));
  });
})();
