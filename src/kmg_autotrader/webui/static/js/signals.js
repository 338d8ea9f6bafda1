/* Signal flow page: every signal with its filter trace, advisor answer, risk verdict and orders. */
"use strict";
(function () {
  const { api, num, time, el, pill, toast } = window.KMG;
  const PAGE = 20;
  let offset = 0;

  const stageText = { filtered: ["stopped by a filter", "no"], advisor_vetoed: ["advisor said no", "warn"], risk_rejected: ["risk rejected", "no"], approved: ["approved", "ok"], ordered: ["ordered", "ok"], passed: ["passed filters", ""] };

  function step(label, node) { return el("span", { class: "step" }, el("span", { class: "muted small", text: label + " " }), node); }

  function card(s) {
    const [text, kind] = stageText[s.stage] || [s.stage, ""];
    const a = s.advisor, r = s.risk;
    const advisor = !a ? pill("not asked", "skip") : !a.valid ? pill(a.fallback || "invalid", "warn") : pill(`${a.action} ${a.confidence !== null ? Math.round(a.confidence * 100) + "%" : ""}`, a.action === s.side ? "ok" : "warn");
    const risk = !r ? pill("–", "skip") : r.approved ? pill("approved", "ok") : pill(r.reason_code, "no");
    const order = s.orders.length ? pill(`${s.orders[0].side} ${s.orders[0].status}`, s.orders[0].status === "filled" ? "ok" : "") : pill("–", "skip");
    const trace = el("ul", { class: "trace" }, s.trace.map((t) => el("li", {}, pill(t.passed ? "pass" : "fail", t.passed ? "ok" : "no"), " ", el("strong", { text: t.name }), " ", el("span", { class: "muted", text: t.reason }))));
    const detail = el("details", {}, el("summary", { text: "Why: filter trace, advisor reasoning, risk message" }),
      s.trace.length ? trace : el("p", { class: "muted", text: "No trace recorded." }),
      a && a.reasoning ? el("p", {}, el("strong", { text: "Advisor: " }), a.reasoning) : null,
      r ? el("p", {}, el("strong", { text: "Risk: " }), r.message, r.adjustments.length ? " (" + r.adjustments.join("; ") + ")" : "") : null,
      el("p", { class: "muted small", text: "Indicators: " + Object.entries(s.indicators).map(([k, v]) => `${k}=${num(v)}`).join(", ") }));
    return el("article", { class: "signal" },
      el("div", { class: "signal-head" }, el("strong", { text: s.symbol }), el("strong", { class: s.side === "buy" ? "pos" : "neg", text: s.side }),
        el("span", { text: s.rule }), el("span", { class: "muted small", text: `${s.strategy} · ${s.regime} · @ ${num(s.price)}` }), pill(text, kind),
        el("span", { class: "when", text: time(s.timestamp) })),
      el("div", { class: "steps" }, step("filters", s.passed ? pill("passed", "ok") : pill(s.rejected_by || "rejected", "no")), el("span", { class: "arrow", text: "→" }),
        step("advisor", advisor), el("span", { class: "arrow", text: "→" }), step("risk", risk), el("span", { class: "arrow", text: "→" }), step("order", order)),
      detail);
  }

  async function load() {
    const form = new FormData(document.getElementById("signal-filters"));
    const params = new URLSearchParams({ limit: PAGE, offset, status: form.get("status") });
    if (form.get("symbol")) params.set("symbol", form.get("symbol"));
    try {
      const r = await api("/signals?" + params);
      document.getElementById("signal-list").replaceChildren(...r.items.map(card));
      document.getElementById("signals-empty").hidden = r.items.length > 0;
      document.getElementById("prev").disabled = offset === 0;
      document.getElementById("next").disabled = !r.has_more;
      document.getElementById("page-info").textContent = r.items.length ? `${offset + 1}–${offset + r.items.length}` : "";
    } catch (err) { toast(err.message, true); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("signal-filters").addEventListener("change", () => { offset = 0; load(); });
    document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
    document.getElementById("next").addEventListener("click", () => { offset += PAGE; load(); });
    load();
    window.KMG.live({ signals: () => { if (offset === 0) load(); } });
  });
})();
