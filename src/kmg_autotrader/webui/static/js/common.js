/* Shared helpers: authenticated fetch with CSRF, formatting, health, live events. */
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(path, options = {}) {
    const init = { method: options.method || "GET", headers: { Accept: "application/json" }, credentials: "same-origin" };
    if (init.method !== "GET") init.headers["X-CSRF-Token"] = csrf;
    if (options.body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.body);
    }
    const response = await fetch(path, init);
    if (response.status === 401) {
      window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      throw new ApiError(401, { detail: "session expired" });
    }
    let body = null;
    try { body = await response.json(); } catch (_) { body = null; }
    if (!response.ok) throw new ApiError(response.status, body);
    return body;
  }

  const nf = (digits) => new Intl.NumberFormat("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  /** Money in the quote currency: 2 decimals for USDT-sized values, more for BTC-sized ones. */
  function money(v, digits) {
    if (v === null || v === undefined) return "–";
    if (digits !== undefined) return nf(digits).format(v);
    const a = Math.abs(v);
    if (a === 0 || a >= 100) return nf(2).format(v);
    if (a >= 1) return new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 4 }).format(v);
    return new Intl.NumberFormat("en-US", { maximumSignificantDigits: 4 }).format(v);
  }
  function num(v) {
    if (v === null || v === undefined) return "–";
    const a = Math.abs(v);
    const d = a === 0 ? 2 : a >= 1000 ? 2 : a >= 1 ? 4 : 6;
    return new Intl.NumberFormat("en-US", { maximumFractionDigits: d }).format(v);
  }
  function pct(v, digits = 2, signed = false) {
    if (v === null || v === undefined) return "–";
    const s = (v * 100).toFixed(digits) + " %";
    return signed && v > 0 ? "+" + s : s;
  }
  function time(ms) {
    if (ms === null || ms === undefined) return "–";
    return new Date(ms).toISOString().slice(0, 16).replace("T", " ");
  }
  // ageSeconds: the age the server measured on the bot's clock (simulated in a demo)
  function ago(ms, ageSeconds) {
    if (!ms) return "–";
    const s = typeof ageSeconds === "number" ? ageSeconds : Math.max(0, (Date.now() - ms) / 1000);
    if (s < 90) return Math.round(s) + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 172800) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " d ago";
  }
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }
  function pill(text, kind = "") { return el("span", { class: "pill " + kind, text }); }
  /** Copy each column's header into its cells' data-label (a phone shows rows as stacked cards). */
  function labelCells(table) {
    if (!table) return;
    const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const tr of table.querySelectorAll("tbody tr")) {
      [...tr.children].forEach((td, i) => { if (heads[i]) td.dataset.label = heads[i]; });
    }
  }
  function signClass(v) { return v > 0 ? "pos" : v < 0 ? "neg" : ""; }

  let toastTimer = null;
  function toast(message, isError = false) {
    const node = document.getElementById("toast");
    if (!node) return;
    node.textContent = message;
    node.classList.toggle("error", isError);
    node.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { node.hidden = true; }, 4500);
  }

  async function refreshHealth() {
    const dot = document.getElementById("health-dot");
    const text = document.getElementById("health-text");
    if (!dot) return null;
    try {
      const h = await api("/health");
      dot.className = "dot dot-" + (h.status || "unknown");
      text.textContent = h.status === "ok" ? "healthy" : h.status;
      const badge = document.getElementById("paused-badge");
      if (badge) badge.hidden = !h.paused;
      document.dispatchEvent(new CustomEvent("kmg:health", { detail: h }));
      return h;
    } catch (err) {
      dot.className = "dot dot-down";
      text.textContent = "unreachable";
      return null;
    }
  }

  function live(handlers) {
    if (!window.EventSource) return null;
    const source = new EventSource("/events/stream");
    for (const [kind, fn] of Object.entries(handlers)) {
      source.addEventListener(kind, (e) => {
        try { fn(JSON.parse(e.data)); } catch (err) { console.warn("bad live event", err); }
      });
    }
    return source;
  }

  async function logout() {
    try { await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" }); }
    finally { window.location.assign("/login"); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("logout")?.addEventListener("click", logout);
    refreshHealth();
    setInterval(refreshHealth, 30000);
  });

  window.KMG = { api, ApiError, money, num, pct, time, ago, el, pill, labelCells, signClass, toast, refreshHealth, live };
})();
