/* Logs page: advisor calls, orders, events and alerts with filters and paging. */
"use strict";
(function () {
  const { api, time, el, pill, labelCells, toast } = window.KMG;
  const PAGE = 50;
  let offset = 0;

  function row(item) {
    const details = el("details", {}, el("summary", { text: item.title }), el("pre", { class: "json", text: JSON.stringify(item.details, null, 2) }));
    return el("tr", {},
      el("td", { class: "nowrap", text: time(item.time) }),
      el("td", {}, pill(item.kind)),
      el("td", { class: "level-" + item.level, text: item.level }),
      el("td", { class: "nowrap", text: item.symbol || "" }),
      el("td", { class: "what wide" }, details, item.message ? el("div", { class: "muted small", text: item.message.slice(0, 400) }) : null));
  }

  async function load() {
    const form = new FormData(document.getElementById("log-filters"));
    const params = new URLSearchParams({ limit: PAGE, offset, kind: form.get("kind") });
    if (form.get("level")) params.set("level", form.get("level"));
    if (form.get("symbol")) params.set("symbol", form.get("symbol"));
    try {
      const r = await api("/logs?" + params);
      document.querySelector("#logs-table tbody").replaceChildren(...r.items.map(row));
      labelCells(document.getElementById("logs-table"));
      document.getElementById("logs-empty").hidden = r.items.length > 0;
      document.getElementById("prev").disabled = offset === 0;
      document.getElementById("next").disabled = !r.has_more;
      document.getElementById("page-info").textContent = r.items.length ? `${offset + 1}–${offset + r.items.length}` : "";
    } catch (err) { toast(err.message, true); }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const kind = new URLSearchParams(window.location.search).get("kind");
    if (kind) document.querySelector('#log-filters select[name="kind"]').value = kind;
    document.getElementById("log-filters").addEventListener("change", () => { offset = 0; load(); });
    document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
    document.getElementById("next").addEventListener("click", () => { offset += PAGE; load(); });
    load();
  });
})();
