// The call log: filters (date range, channel, status, agent, stage) kept in the hash, so a
// filtered view can be reloaded or shared; "Load more" follows next_cursor.

import { api } from "../api.js";
import { field, h, notice, select, table } from "../dom.js";
import { errorText } from "../errors.js";
import { dateTime, number, seconds } from "../format.js";
import { label, t } from "../i18n.js";

export const STATUSES = ["ringing", "answered", "missed", "busy", "failed", "canceled"];
export const STAGES = ["lead", "opportunity", "won", "lost"];
const FILTERS = ["from", "to", "channel", "status", "agent", "stage"];
const PAGE = 50;
// The list as last shown, filters included: a call's "Back to calls" returns to it.
export let lastList = "#/calls";

function filterForm(ctx, values) {
  const input = (name, type) => h("input", { type, name, id: `f-${name}`, value: values[name] || "" });
  const any = [["", t("calls.any")]];
  const form = h("form", { class: "filters", id: "call-filters" },
    field(t("calls.from"), input("from", "date")),
    field(t("calls.to"), input("to", "date")),
    field(t("calls.channel"), input("channel", "text")),
    field(t("calls.status"), select("status", [...any, ...STATUSES.map((s) => [s, label("status", s)])], values.status)),
    field(t("calls.agent"), input("agent", "text")),
    field(t("calls.stage"), select("stage", [...any, ...STAGES.map((s) => [s, label("stage", s)])], values.stage)),
    h("div", { class: "filter-actions" },
      h("button", { class: "button", type: "submit", id: "apply-filters", text: t("common.apply") }),
      h("a", { class: "button secondary", href: "#/calls", text: t("common.reset") })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const qs = new URLSearchParams();
    for (const name of FILTERS) {
      const value = (form.elements.namedItem(name).value || "").trim();
      if (value) qs.set(name, value);
    }
    const text = qs.toString();
    ctx.go(text ? `#/calls?${text}` : "#/calls");
  });
  return form;
}

export function callColumns() {
  const open = (c) => h("a", { href: `#/calls/${encodeURIComponent(c.call_sid)}`, class: "call-link", text: dateTime(c.started_at) });
  return [
    { label: t("col.started"), cell: open },
    { label: t("col.caller"), cell: (c) => c.caller || t("common.none") },
    { label: t("col.channel"), cell: (c) => c.channel || t("common.none") },
    { label: t("col.campaign"), cell: (c) => c.campaign || t("common.none") },
    { label: t("col.status"), cell: (c) => h("span", { class: `badge status-${c.status}`, text: label("status", c.status) }) },
    { label: t("col.talk"), num: true, cell: (c) => seconds(c.talk_seconds) },
    { label: t("col.agent"), cell: (c) => c.agent || t("common.none") },
    { label: t("col.stage"), cell: (c) => label("stage", c.stage) },
    { label: t("col.score"), num: true, cell: (c) => number(c.score, 2) },
  ];
}

export async function renderCalls(ctx) {
  const { main, params } = ctx;
  lastList = location.hash.startsWith("#/calls") ? location.hash : "#/calls";
  const values = Object.fromEntries(FILTERS.map((name) => [name, params.get(name) || ""]));
  const limit = Number(params.get("limit")); // a page size in the hash (#/calls?limit=20), 1..500
  const query = { ...values, limit: Number.isInteger(limit) && limit >= 1 && limit <= 500 ? limit : PAGE };
  main.append(h("h1", { text: t("calls.title") }), filterForm(ctx, values));
  const results = h("div", { class: "results", id: "call-results" }, h("p", { class: "loading", text: t("common.loading") }));
  main.append(results);
  const rows = [];
  const load = async (cursor) => {
    const page = await api.calls({ ...query, cursor });
    if (!ctx.current()) return;
    rows.push(...page.items.map((c) => ({ ...c, __attrs: { "data-call-sid": c.call_sid, class: "call-row" } })));
    results.replaceChildren(
      h("p", { class: "count", id: "call-count", text: t("calls.count", { count: rows.length }) }),
      table(callColumns(), rows, { className: "calls", empty: t("calls.empty") }));
    if (page.next_cursor) {
      const more = h("button", { class: "button secondary", type: "button", id: "more-calls", text: t("calls.more") });
      more.addEventListener("click", async () => {
        more.disabled = true;
        try {
          await load(page.next_cursor);
        } catch (err) {
          more.disabled = false;
          results.append(notice(errorText(err), "error"));
        }
      });
      results.append(h("div", { class: "more" }, more));
    }
  };
  try {
    await load(undefined);
  } catch (err) {
    if (ctx.current()) results.replaceChildren(); // the error is shown instead of "Loading…"
    throw err;
  }
}
