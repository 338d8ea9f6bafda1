/* Dashboard: metrics, equity curve, rejections, LLM confidence, positions, trades, flow, control. */
"use strict";
(function () {
  const { api, money, num, pct, time, ago, el, pill, labelCells, signClass, toast } = window.KMG;
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const C = { text: color("--text"), muted: color("--muted"), grid: "rgba(148,163,184,0.12)", accent: color("--accent"), good: color("--good"), bad: color("--bad"), warn: color("--warn") };

  Chart.defaults.color = C.muted;
  Chart.defaults.borderColor = C.grid;
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;

  const timeTicks = { callback: (v) => time(v).slice(5), maxRotation: 0, autoSkipPadding: 18 };
  let equityChart = null, rejectionsChart = null, confidenceChart = null;
  let equityTotal = 0, equityDownsampled = false;
  const MAX_LIVE_POINTS = 5000;

  /** Show a chart's box only when it has data (an empty chart is just confusing axes). */
  function showChart(canvasId, emptyId, hasData) {
    document.getElementById(canvasId).parentElement.hidden = !hasData;
    document.getElementById(emptyId).hidden = hasData;
    return hasData;
  }

  function equityNote(total, downsampled) {
    document.getElementById("equity-note").textContent = total ? `${total} points${downsampled ? " (downsampled)" : ""}` : "";
  }

  function setText(id, text, cls) {
    const node = document.getElementById(id);
    if (!node) return;
    node.textContent = text;
    if (cls !== undefined) node.className = "value " + cls;
  }

  async function loadMetrics() {
    const m = await api("/metrics");
    setText("m-equity", money(m.equity));
    document.getElementById("m-initial").textContent = m.initial_equity !== null ? "from " + money(m.initial_equity) : "no equity yet";
    const none = m.as_of === null;  // nothing recorded yet: no figure rather than 0 %
    setText("m-return", none ? "–" : pct(m.total_return, 2, true), signClass(m.total_return));
    document.getElementById("m-pnl").textContent = "realized " + money(m.realized_pnl);
    setText("m-drawdown", none ? "–" : pct(m.max_drawdown), m.max_drawdown > 0 ? "neg" : "");
    document.getElementById("m-sharpe").textContent = "Sharpe " + m.sharpe.toFixed(2);
    setText("m-winrate", m.trades ? pct(m.win_rate, 1) : "–");
    document.getElementById("m-trades").textContent = `${m.trades} trades · ${m.wins} won`;
    setText("m-pf", m.profit_factor === null ? (m.wins ? "∞" : "–") : m.profit_factor.toFixed(2));
    document.getElementById("m-fees").textContent = "fees " + money(m.fees_paid);
  }

  async function loadEquity() {
    const data = await api("/equity?max_points=600");
    const points = data.points.map((p) => ({ x: p.t, y: p.equity }));
    equityTotal = data.total_points;
    equityDownsampled = data.downsampled;
    equityNote(equityTotal, equityDownsampled);
    if (!showChart("equity-chart", "equity-empty", points.length > 0)) return;
    if (equityChart) {
      equityChart.data.datasets[0].data = points;
      fitX(equityChart);
      equityChart.update();
      return;
    }
    equityChart = new Chart(document.getElementById("equity-chart"), {
      type: "line",
      data: { datasets: [{ label: "Equity", data: points, borderColor: C.accent, backgroundColor: "rgba(56,189,248,0.12)", fill: true, pointRadius: 0, borderWidth: 2, tension: 0.15 }] },
      options: {
        maintainAspectRatio: false, parsing: false, normalized: true,
        interaction: { mode: "nearest", axis: "x", intersect: false },
        scales: { x: { type: "linear", ticks: timeTicks, grid: { display: false } }, y: { ticks: { maxTicksLimit: 7 } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { title: (items) => time(items[0].parsed.x), label: (item) => " " + money(item.parsed.y) } } },
      },
    });
    fitX(equityChart);
    equityChart.update();
  }

  /** The time axis spans the data exactly (a linear axis would round out to a "nice" end). */
  function fitX(chart) {
    const data = chart.data.datasets[0].data;
    chart.options.scales.x.min = data.length ? data[0].x : undefined;
    chart.options.scales.x.max = data.length ? data[data.length - 1].x : undefined;
  }

  function appendEquity(points) {
    if (!equityChart || !points || !points.length) return loadEquity();
    const data = equityChart.data.datasets[0].data;
    for (const p of points) data.push({ x: p.t, y: p.equity });
    if (data.length > MAX_LIVE_POINTS) data.splice(0, data.length - MAX_LIVE_POINTS);  // a page left open for weeks
    fitX(equityChart);
    equityChart.update();
    equityTotal += points.length;
    equityNote(equityTotal, equityDownsampled);
  }

  /** A category label short enough for a phone (the tooltip keeps the full reason). */
  function shortLabel(value) {
    const label = String(this.getLabelForValue(value));
    const max = window.innerWidth < 640 ? 20 : 32;
    return label.length > max ? label.slice(0, max - 1) + "…" : label;
  }

  async function loadRejections() {
    const r = await api("/signals/rejections?limit=8");
    const entries = [
      ...Object.entries(r.filter_counts).map(([k, v]) => ["filter: " + k, v]),
      ...Object.entries(r.advisor_counts).map(([k, v]) => ["advisor: " + k, v]),
      ...Object.entries(r.risk_counts).map(([k, v]) => ["risk: " + k, v]),
    ].sort((a, b) => b[1] - a[1]).slice(0, 10);
    const stageColor = (label) => label.startsWith("risk") ? C.bad : label.startsWith("advisor") ? C.warn : C.accent;
    const data = { labels: entries.map((e) => e[0]), datasets: [{ data: entries.map((e) => e[1]), backgroundColor: entries.map((e) => stageColor(e[0])), borderRadius: 4, maxBarThickness: 18 }] };
    if (!showChart("rejections-chart", "rejections-empty", entries.length > 0)) { /* nothing to draw */ }
    else if (rejectionsChart) { rejectionsChart.data = data; rejectionsChart.update(); }
    else {
      rejectionsChart = new Chart(document.getElementById("rejections-chart"), {
        type: "bar", data,
        options: { indexAxis: "y", maintainAspectRatio: false, plugins: { legend: { display: false } }, scales: { x: { ticks: { precision: 0 } }, y: { grid: { display: false }, ticks: { autoSkip: false, font: { size: 11 }, callback: shortLabel } } } },
      });
    }
    const list = document.getElementById("rejections-latest");
    list.replaceChildren(...r.latest.slice(0, 4).map((x) => el("li", { title: x.message || "" },
      el("div", { class: "line" },
        pill(x.stage, x.stage === "risk" ? "no" : x.stage === "advisor" ? "warn" : ""),
        el("strong", { text: x.symbol }), el("span", { text: x.reason }),
        el("span", { class: "when", text: time(x.timestamp).slice(5) })),
      x.message ? el("div", { class: "muted small ellipsis", text: x.message }) : null)));
  }

  async function loadConfidence() {
    const r = await api("/advisor/confidence?limit=200");
    const pts = r.points.filter((p) => p.confidence !== null);
    if (r.points.length) {
      const avg = pts.reduce((n, p) => n + p.confidence, 0) / (pts.length || 1);
      const invalid = r.points.filter((p) => !p.valid).length;
      document.getElementById("confidence-note").textContent =
        `${r.points.length} answers · average ${Math.round(avg * 100)} % · ${invalid} invalid or fallback`;
    }
    const series = (action, col) => ({
      label: action, data: pts.filter((p) => p.action === action).map((p) => ({ x: p.t, y: p.confidence })),
      borderColor: col, backgroundColor: col, pointRadius: 3, showLine: false,
    });
    const datasets = [series("buy", C.good), series("sell", C.bad), series("hold", C.muted)];
    datasets.push({ label: "trend", type: "line", data: pts.map((p) => ({ x: p.t, y: p.confidence })), borderColor: "rgba(56,189,248,0.5)", borderWidth: 1.5, pointRadius: 0, tension: 0.3 });
    if (!showChart("confidence-chart", "confidence-empty", pts.length > 0)) return;
    if (confidenceChart) { confidenceChart.data.datasets = datasets; confidenceChart.update(); return; }
    confidenceChart = new Chart(document.getElementById("confidence-chart"), {
      type: "scatter", data: { datasets },
      options: {
        maintainAspectRatio: false, parsing: false,
        scales: { x: { type: "linear", ticks: timeTicks, grid: { display: false } }, y: { min: 0, max: 1, ticks: { callback: (v) => (v * 100).toFixed(0) + " %" } } },
        plugins: { legend: { position: "bottom", labels: { boxWidth: 10, filter: (item) => item.text !== "trend" } }, tooltip: { callbacks: { title: (items) => time(items[0].parsed.x), label: (item) => ` ${item.dataset.label} ${(item.parsed.y * 100).toFixed(0)} %` } } },
      },
    });
  }

  async function loadPositions() {
    const r = await api("/positions");
    const rows = r.positions.map((p) => el("tr", {},
      el("td", {}, el("strong", { text: p.symbol })), el("td", { class: "num", text: num(p.amount) }),
      el("td", { class: "num", text: num(p.entry_price) }), el("td", { class: "num", text: money(p.cost) }),
      el("td", { class: "num", text: num(p.stop_loss) }), el("td", { class: "num", text: num(p.take_profit) }),
      el("td", { class: "nowrap", text: time(p.opened_at) })));
    document.querySelector("#positions-table tbody").replaceChildren(...rows);
    labelCells(document.getElementById("positions-table"));
    document.getElementById("positions-table").hidden = rows.length === 0;
    document.getElementById("positions-empty").hidden = rows.length > 0;
  }

  const TRADES_PAGE = 15;
  let tradesOffset = 0;

  async function loadTrades() {
    const r = await api(`/trades?limit=${TRADES_PAGE}&offset=${tradesOffset}`);
    if (!r.items.length && tradesOffset > 0) {  // the page emptied (a reset database): back to the newest
      tradesOffset = 0;
      return loadTrades();
    }
    const rows = r.items.map((t) => el("tr", {},
      el("td", {}, el("strong", { text: t.symbol })), el("td", { class: "num", text: num(t.amount) }),
      el("td", { class: "num", text: num(t.entry_price) }), el("td", { class: "num", text: num(t.exit_price) }),
      el("td", { class: "num " + signClass(t.realized_pnl), text: money(t.realized_pnl) }),
      el("td", { class: "num " + signClass(t.return_pct), text: t.return_pct === null ? "–" : t.return_pct.toFixed(2) + " %" }),
      el("td", {}, pill(t.exit_reason || "–", t.exit_reason === "take_profit" ? "ok" : t.exit_reason === "stop_loss" ? "no" : "")),
      el("td", { class: "nowrap", text: time(t.closed_at) })));
    document.querySelector("#trades-table tbody").replaceChildren(...rows);
    labelCells(document.getElementById("trades-table"));
    document.getElementById("trades-table").hidden = rows.length === 0;
    document.getElementById("trades-empty").hidden = rows.length > 0;
    document.getElementById("trades-prev").disabled = tradesOffset === 0;
    document.getElementById("trades-next").disabled = !r.has_more;
    document.getElementById("trades-pager").hidden = tradesOffset === 0 && !r.has_more;
    document.getElementById("trades-page").textContent = rows.length ? `${tradesOffset + 1}–${tradesOffset + rows.length}` : "";
  }

  function wireTradesPager() {
    document.getElementById("trades-prev").addEventListener("click", () => { tradesOffset = Math.max(0, tradesOffset - TRADES_PAGE); safe(loadTrades); });
    document.getElementById("trades-next").addEventListener("click", () => { tradesOffset += TRADES_PAGE; safe(loadTrades); });
  }

  function filterCell(s) {
    if (s.passed) return pill("passed", "ok");
    return el("span", {}, pill("rejected", "no"), " ", el("span", { class: "muted small", text: s.rejected_by || "" }));
  }
  function advisorCell(a) {
    if (!a) return pill("–", "skip");
    if (!a.valid) return pill(a.fallback || "invalid", "warn");
    return pill(`${a.action} ${a.confidence !== null ? Math.round(a.confidence * 100) + "%" : ""}`, a.action === "hold" ? "warn" : "ok");
  }
  function riskCell(r) {
    if (!r) return pill("–", "skip");
    return r.approved ? pill("approved", "ok") : el("span", {}, pill(r.reason_code, "no"));
  }
  function orderCell(orders) {
    if (!orders.length) return pill("–", "skip");
    const o = orders[0];
    return pill(`${o.side} ${o.status}`, o.status === "filled" ? "ok" : o.status === "rejected" ? "no" : "");
  }

  async function loadFlow() {
    const r = await api("/signals?limit=12");
    const rows = r.items.map((s) => el("tr", {},
      el("td", { class: "nowrap" }, time(s.timestamp), el("div", { class: "muted small", text: s.symbol })),
      el("td", {}, el("strong", { class: s.side === "buy" ? "pos" : "neg", text: s.side }), " ", s.rule, el("div", { class: "muted small", text: `${s.regime} · conf ${s.confidence !== null ? Math.round(s.confidence * 100) + "%" : "–"}` })),
      el("td", {}, filterCell(s)), el("td", {}, advisorCell(s.advisor)), el("td", {}, riskCell(s.risk)), el("td", {}, orderCell(s.orders))));
    document.querySelector("#flow-table tbody").replaceChildren(...rows);
    labelCells(document.getElementById("flow-table"));
    document.getElementById("flow-table").hidden = rows.length === 0;
    document.getElementById("flow-empty").hidden = rows.length > 0;
  }

  async function loadMl() {
    const m = await api("/ml/status");
    const node = document.getElementById("ml-status");
    if (m.status === "no_model") { node.textContent = m.message; return; }
    node.replaceChildren(el("strong", { text: `${m.name} ${m.version}` }), " · accuracy ",
      el("strong", { text: m.accuracy === null ? "–" : pct(m.accuracy, 1) }), " · trained " + time(m.trained_at));
  }

  function renderHealth(h) {
    const list = document.getElementById("health-list");
    if (!list || !h) return;
    const rows = [["Status", h.status], ["Feed", h.feed_status || "–"], ["Last candle", h.last_candle_at ? ago(h.last_candle_at, h.last_candle_age_s) : "–"],
      ["Advisor", h.advisor_status || "–"], ["Breaker", h.breaker_state || "–"], ["Trading", h.paused ? "paused" : "active"]];
    if (h.last_error) rows.push(["Last error", h.last_error]);
    list.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })]));
    document.getElementById("btn-pause").disabled = !!h.paused;
    document.getElementById("btn-resume").disabled = !h.paused;
    const tripped = String(h.breaker_state || "ok") !== "ok";
    const clear = document.getElementById("btn-clear-breaker");
    clear.disabled = !tripped;
    clear.title = tripped ? "Clear the tripped breaker (asks first)" : "Nothing is tripped";
  }

  function tripLines(c) {
    const out = [];
    if (c.breaker && c.breaker.tripped) out.push(`Drawdown breaker tripped ${c.breaker.tripped_at ? time(c.breaker.tripped_at) : ""}: ${c.breaker.reason || ""}`);
    if (c.kill_switch && c.kill_switch.tripped) out.push(`Daily loss kill-switch tripped ${c.kill_switch.tripped_at ? time(c.kill_switch.tripped_at) : ""}`);
    return out.length ? out : ["Nothing is tripped now."];
  }

  async function openClearDialog(dialog) {
    try {
      const c = await api("/control");
      document.getElementById("clear-breaker-trips").replaceChildren(...tripLines(c).map((t) => el("li", { text: t })));
      dialog.showModal();
    } catch (err) {
      toast(err.message, true);
    }
  }

  async function control(action, body) {
    try {
      const r = await api("/control/" + action, { method: "POST", body });
      toast(r.message);
    } catch (err) {
      toast(err.message, true);
    }
    await window.KMG.refreshHealth();
  }

  function wireControls() {
    document.getElementById("btn-pause").addEventListener("click", () => control("pause"));
    document.getElementById("btn-resume").addEventListener("click", () => control("resume"));
    const dialog = document.getElementById("flatten-dialog");
    document.getElementById("btn-flatten").addEventListener("click", () => dialog.showModal());
    dialog.addEventListener("close", () => { if (dialog.returnValue === "confirm") control("flatten", { confirm: true }); });
    const clearDialog = document.getElementById("clear-breaker-dialog");
    document.getElementById("btn-clear-breaker").addEventListener("click", () => openClearDialog(clearDialog));
    clearDialog.addEventListener("close", () => { if (clearDialog.returnValue === "confirm") control("clear-breaker", { confirm: true }); });
  }

  const safe = (fn) => fn().catch((err) => { if (err.status !== 401) toast(err.message, true); });
  // Live events come in bursts (an entry moves orders, positions, equity and signals at once):
  // every panel any of them asks for is reloaded once, shortly after the first of the burst.
  const queued = new Set();
  let pending = null;
  function soon(fns) {
    fns.forEach((fn) => queued.add(fn));
    if (pending !== null) return;
    pending = setTimeout(() => {
      pending = null;
      const due = [...queued];
      queued.clear();
      due.forEach(safe);
    }, 400);
  }

  document.addEventListener("kmg:health", (e) => renderHealth(e.detail));
  document.addEventListener("DOMContentLoaded", () => {
    wireControls();
    wireTradesPager();
    [loadMetrics, loadEquity, loadRejections, loadConfidence, loadPositions, loadTrades, loadFlow, loadMl].forEach(safe);
    window.KMG.live({
      equity: (d) => { appendEquity(d.points); soon([loadMetrics]); },
      orders: () => soon([loadPositions, loadTrades, loadFlow, loadMetrics]),
      trades: () => soon([loadTrades, loadMetrics, loadPositions]),
      positions: () => soon([loadPositions, loadMetrics]),
      signals: () => soon([loadFlow, loadRejections, loadConfidence]),
      control: () => window.KMG.refreshHealth(),
    });
  });
})();
