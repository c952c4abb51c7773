// Reports: channels (table + bar chart), the weekday x hour heatmap (a 7 x 24 grid of CSS
// classes: no inline style), the trend (line chart), agents and number pools. Charts are drawn by
// Chart.js 4 (console/node_modules -> vendor/chart.umd.min.js; window.Chart).

import { api, ApiError } from "../api.js";
import { field, h, notice, table } from "../dom.js";
import { errorText } from "../errors.js";
import { isoDay, number, percent, seconds } from "../format.js";
import { t } from "../i18n.js";

const charts = new Set();
const COLORS = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed"];

function destroyCharts() {
  for (const chart of charts) chart.destroy();
  charts.clear();
}

function chart(id, config) {
  const canvas = h("canvas", { id, role: "img", "aria-label": id });
  const box = h("div", { class: "chart-box" }, canvas);
  if (window.Chart) {
    // Drawn once the canvas is in the document (Chart.js measures its container).
    queueMicrotask(() => {
      if (!canvas.isConnected) return;
      charts.add(new window.Chart(canvas, {
        ...config,
        options: { responsive: true, maintainAspectRatio: false, animation: false, ...(config.options || {}) },
      }));
    });
  }
  return box;
}

function section(id, title, ...children) {
  return h("section", { class: "card report", id }, h("h2", { text: title }), ...children);
}

function unavailable(id, title, err) {
  return section(id, title, notice(t("reports.unavailable", { message: errorText(err) }), "error"));
}

function channels(report) {
  const rows = report.rows || [];
  const cols = [
    { label: t("col.channel"), cell: (r) => r.key },
    { label: t("reports.calls"), num: true, cell: (r) => number(r.calls) },
    { label: t("reports.answered"), num: true, cell: (r) => number(r.answered) },
    { label: t("reports.answerRate"), num: true, cell: (r) => percent(r.answer_rate, 1) },
    { label: t("reports.leads"), num: true, cell: (r) => number(r.leads) },
    { label: t("reports.won"), num: true, cell: (r) => number(r.won) },
    { label: t("reports.wonValue"), num: true, cell: (r) => number(r.won_value, 2) },
    { label: t("reports.spend"), num: true, cell: (r) => number(r.spend, 2) },
    { label: t("reports.cpa"), num: true, cell: (r) => number(r.cpa, 2) },
    { label: t("reports.romi"), num: true, cell: (r) => percent(r.romi, 1) },
  ];
  const withTotal = rows.length && report.totals
    ? [...rows.map((r) => ({ ...r, __attrs: { "data-key": r.key } })),
      { ...report.totals, key: t("reports.total"), __attrs: { class: "total", "data-key": "total" } }]
    : [];
  return section("report-channels", t("reports.channels"),
    rows.length ? chart("chart-channels", {
      type: "bar",
      data: {
        labels: rows.map((r) => r.key),
        datasets: [
          { label: t("reports.calls"), data: rows.map((r) => r.calls), backgroundColor: COLORS[0] },
          { label: t("reports.answered"), data: rows.map((r) => r.answered), backgroundColor: COLORS[1] },
          { label: t("reports.leads"), data: rows.map((r) => r.leads), backgroundColor: COLORS[2] },
          { label: t("reports.won"), data: rows.map((r) => r.won), backgroundColor: COLORS[3] },
        ],
      },
      options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
    }) : null,
    table(cols, withTotal, { className: "report-channels", empty: t("reports.noData") }));
}

function heatmap(report) {
  const grid = report.grid || [];
  const max = Math.max(0, ...grid.flat().map((v) => Number(v) || 0));
  const level = (v) => (!v || !max ? 0 : Math.max(1, Math.ceil((Number(v) / max) * 5)));
  const hours = h("div", { class: "heat-row heat-head" }, h("span", { class: "heat-day" }),
    Array.from({ length: 24 }, (_, hour) => h("span", { class: "heat-hour", text: String(hour) })));
  const rows = grid.map((cells, day) => h("div", { class: "heat-row", "data-day": String(day) },
    h("span", { class: "heat-day", text: t(`weekday.${day}`) }),
    cells.map((v, hour) => h("span", {
      class: `heat-cell lvl${level(v)}`,
      title: `${t(`weekday.${day}`)} ${hour}:00 — ${v ?? 0}`,
      "data-value": String(v ?? 0),
      text: v ? String(v) : "",
    }))));
  return section("report-heatmap", t("reports.heatmap"), h("div", { class: "heatmap-wrap" },
    h("div", { class: "heatmap", role: "table" }, hours, rows)));
}

function trend(report) {
  const points = report.points || [];
  return section("report-trend", t("reports.trend"), points.length ? chart("chart-trend", {
    type: "line",
    data: {
      labels: points.map((p) => p.period),
      datasets: [
        { label: t("reports.calls"), data: points.map((p) => p.calls), borderColor: COLORS[0], backgroundColor: COLORS[0] },
        { label: t("reports.answered"), data: points.map((p) => p.answered), borderColor: COLORS[1], backgroundColor: COLORS[1] },
        { label: t("reports.leads"), data: points.map((p) => p.leads), borderColor: COLORS[2], backgroundColor: COLORS[2] },
      ],
    },
    options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  }) : notice(t("reports.noData")));
}

function agents(report) {
  const cols = [
    { label: t("col.agent"), cell: (r) => r.agent },
    { label: t("reports.calls"), num: true, cell: (r) => number(r.calls) },
    { label: t("reports.answerRate"), num: true, cell: (r) => percent(r.answer_rate, 1) },
    { label: t("reports.aht"), num: true, cell: (r) => seconds(r.aht_seconds) },
    { label: t("reports.leads"), num: true, cell: (r) => number(r.leads) },
    { label: t("reports.won"), num: true, cell: (r) => number(r.won) },
    { label: t("reports.closeRate"), num: true, cell: (r) => percent(r.close_rate, 1) },
    { label: t("reports.wonValue"), num: true, cell: (r) => number(r.won_value, 2) },
  ];
  return section("report-agents", t("reports.agents"),
    table(cols, report.rows || [], { className: "report-agents", empty: t("reports.noData") }));
}

function pools(report) {
  const cols = [
    { label: t("reports.pool"), cell: (r) => r.pool },
    { label: t("col.channel"), cell: (r) => r.channel || t("common.none") },
    { label: t("reports.size"), num: true, cell: (r) => number(r.size) },
    { label: t("reports.leases"), num: true, cell: (r) => number(r.leases) },
    { label: t("reports.peak"), num: true, cell: (r) => number(r.peak_concurrent_leases) },
    // the demand: sessions shown a number at once, an exhausted pool's shared ones included (what
    // `pools advise` calls the peak)
    { label: t("reports.peakSessions"), num: true, cell: (r) => number(r.peak_concurrent_sessions) },
    { label: t("reports.utilisation"), num: true, cell: (r) => percent(r.utilisation, 1) },
    { label: t("reports.exhaustions"), num: true, cell: (r) => number(r.exhaustions) },
    // visitors shown no number: their address held dni.max_numbers_per_address already
    { label: t("reports.addressCapped"), num: true, cell: (r) => number(r.address_capped || 0) },
    { label: t("reports.accuracy"), num: true, cell: (r) => percent(r.estimated_accuracy, 1) },
    // the stack's advice (as `calltrack pools advise`): enough numbers for the peak sessions and for
    // 99% of calls to reach their session; a pool with no session in the window keeps its size
    { label: t("reports.recommended"), num: true, cell: (r) => number(r.advised_size) },
  ];
  return section("report-pools", t("reports.pools"),
    table(cols, (report.pools || []).map((r) => ({ ...r, __attrs: { "data-key": r.pool } })),
      { className: "report-pools", empty: t("reports.noData") }));
}

export async function renderReports(ctx) {
  const { main, params } = ctx;
  destroyCharts();
  const today = new Date();
  const monthAgo = new Date(today.getTime() - 29 * 86400000); // the account's day 29 days before
  const range = { from: params.get("from") || isoDay(monthAgo), to: params.get("to") || isoDay(today) };
  const from = h("input", { type: "date", name: "from", id: "f-from", value: range.from });
  const to = h("input", { type: "date", name: "to", id: "f-to", value: range.to });
  const form = h("form", { class: "filters", id: "report-filters" },
    field(t("calls.from"), from), field(t("calls.to"), to),
    h("div", { class: "filter-actions" }, h("button", { class: "button", type: "submit", text: t("common.apply") })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const qs = new URLSearchParams();
    if (from.value) qs.set("from", from.value);
    if (to.value) qs.set("to", to.value);
    ctx.go(`#/reports?${qs}`);
  });
  main.append(h("h1", { text: t("reports.title") }), form);
  const loading = h("p", { class: "loading", text: t("common.loading") });
  main.append(loading);
  const parts = [
    ["channels", "report-channels", "reports.channels", channels],
    ["heatmap", "report-heatmap", "reports.heatmap", heatmap],
    ["trend", "report-trend", "reports.trend", trend],
    ["agents", "report-agents", "reports.agents", agents],
    ["pools", "report-pools", "reports.pools", pools],
  ];
  const answers = await Promise.allSettled(parts.map(([name]) => api.report(name, range)));
  if (!ctx.current()) return;
  loading.remove();
  if (answers.some((a) => a.status === "rejected" && a.reason instanceof ApiError && a.reason.status === 401)) return;
  main.append(h("div", { class: "reports" }, parts.map(([, id, title, draw], i) => (answers[i].status === "fulfilled"
    ? draw(answers[i].value)
    : unavailable(id, t(title), answers[i].reason)))));
}
