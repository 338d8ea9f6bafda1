/* Risk editor: a field per parameter, saved with PUT /risk; errors shown under their field. */
"use strict";
(function () {
  const { api, time, el, toast } = window.KMG;
  let current = null;

  // every percentage is shown and typed in percent (20 = 20 %); the API stores the fraction
  function unitText(f) { return f.unit && f.unit !== "quote" ? f.unit : ""; }

  function withUnit(f, value) {
    const unit = unitText(f);
    return unit ? `${value} ${unit}` : String(value);
  }

  function hint(f) {
    const parts = [];
    if (f.minimum !== null) parts.push("≥ " + withUnit(f, f.minimum));
    if (f.exclusive_minimum !== null) parts.push("> " + withUnit(f, f.exclusive_minimum));
    if (f.maximum !== null) parts.push("≤ " + withUnit(f, f.maximum));
    if (f.exclusive_maximum !== null) parts.push("< " + withUnit(f, f.exclusive_maximum));
    return [f.description, parts.join(", ")].filter(Boolean).join(" · ");
  }

  function sourceNode(src) {
    if (!src) return el("div", { class: "hint source" });
    let text = "source: " + src.source;
    if (src.overrides !== null && src.overrides !== undefined) text += ` (overrides .env ${src.setting}=${src.overrides})`;
    return el("div", { class: "hint source", text });
  }

  function fieldNode(f, value, src) {
    const id = "risk-" + f.name;
    let input;
    if (f.type === "boolean") {
      input = el("input", { id, name: f.name, type: "checkbox" });
      input.checked = !!value;
      return el("div", { class: "field", "data-field": f.name },
        el("label", { class: "checkbox", for: id }, input, f.name.replaceAll("_", " ")),
        el("div", { class: "hint", text: f.description }), sourceNode(src), el("div", { class: "field-error", hidden: true }));
    }
    input = el("input", { id, name: f.name, type: "number", step: "any", inputmode: "decimal", value: value === null ? "" : String(value) });
    const unit = unitText(f);
    const label = f.name.replaceAll("_", " ") + (unit && !f.name.endsWith(unit) ? ` (${unit})` : "");
    return el("div", { class: "field", "data-field": f.name },
      el("label", { for: id, text: label }),
      el("div", { class: "with-unit" }, input, el("span", { class: "unit", text: unit })),
      el("div", { class: "hint", text: hint(f) }), sourceNode(src), el("div", { class: "field-error", hidden: true }));
  }

  function render(r) {
    current = r;
    const mode = (r.mode || "").toUpperCase();
    document.getElementById("risk-version").textContent = r.version ? `${mode} version ${r.version} · ${r.source} · ${time(r.updated_at)}` : `${mode} · .env and defaults (never edited)`;
    const sources = Object.fromEntries((r.sources || []).map((s) => [s.name, s]));
    document.getElementById("risk-fields").replaceChildren(...r.fields.map((f) => fieldNode(f, r.params[f.name], sources[f.name])));
    document.getElementById("risk-comment").value = "";
    clearErrors();
  }

  function clearErrors() {
    document.getElementById("risk-error").hidden = true;
    for (const node of document.querySelectorAll(".field")) {
      node.classList.remove("invalid");
      const e = node.querySelector(".field-error");
      e.hidden = true; e.textContent = "";
    }
  }

  function changes() {
    const out = {};
    for (const f of current.fields) {
      const input = document.getElementById("risk-" + f.name);
      let value;
      if (f.type === "boolean") value = input.checked;
      else if (input.value.trim() === "") value = null;
      else {
        value = Number(input.value);
        if (Number.isNaN(value)) value = input.value;
      }
      if (value !== current.params[f.name]) out[f.name] = value;
      input.closest(".field").classList.toggle("changed", value !== current.params[f.name]);
    }
    return out;
  }

  function showErrors(errors) {
    let general = [];
    for (const e of errors) {
      const name = e.field.replace(/^changes\./, "");
      const node = document.querySelector(`.field[data-field="${CSS.escape(name)}"]`);
      if (!node) { general.push(`${e.field}: ${e.message}`); continue; }
      node.classList.add("invalid");
      const box = node.querySelector(".field-error");
      box.textContent = e.message; box.hidden = false;
    }
    const banner = document.getElementById("risk-error");
    banner.textContent = "Not saved: " + (general.length ? general.join("; ") : "fix the highlighted fields.");
    banner.hidden = false;
  }

  async function save(event) {
    event.preventDefault();
    clearErrors();
    const diff = changes();
    if (!Object.keys(diff).length) { toast("Nothing changed."); return; }
    try {
      const r = await api("/risk", { method: "PUT", body: { changes: diff, comment: document.getElementById("risk-comment").value } });
      render(r);
      toast(`Saved as version ${r.version}.`);
    } catch (err) {
      if (err.status === 422 || err.status === 409) showErrors(err.body.errors || []);
      else toast(err.message, true);
    }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    document.getElementById("risk-form").addEventListener("submit", save);
    document.getElementById("risk-form").addEventListener("input", () => changes());
    document.getElementById("risk-reset").addEventListener("click", () => current && render(current));
    try { render(await api("/risk")); } catch (err) { toast(err.message, true); }
  });
})();
