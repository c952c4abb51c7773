// The review inbox: the month's random sample of calls and the campaign trials' samples, each
// linked to the call page to listen and score against the account's pass line.

import { api } from "../api.js";
import { field, h, table } from "../dom.js";
import { dateTime, number, seconds } from "../format.js";
import { label, t } from "../i18n.js";

function columns(passScore) {
  const review = (c) => h("a", { href: `#/calls/${encodeURIComponent(c.call_sid)}?from=inbox`, class: "review-link",
    text: t("inbox.review") });
  const score = (c) => {
    if (c.score === null || c.score === undefined) return h("span", { class: "badge muted", text: t("inbox.unscored") });
    const pass = passScore === null || passScore === undefined || Number(c.score) >= Number(passScore);
    return h("span", { class: `badge ${pass ? "pass" : "fail"}`, text: number(c.score, 2) });
  };
  return [
    { label: t("col.started"), cell: (c) => (c.started_at ? dateTime(c.started_at) : c.started_local || t("common.none")) },
    { label: t("col.channel"), cell: (c) => c.channel || t("common.none") },
    { label: t("col.campaign"), cell: (c) => c.campaign || t("common.none") },
    { label: t("col.agent"), cell: (c) => c.agent || t("common.none") },
    { label: t("col.talk"), num: true, cell: (c) => seconds(c.talk_seconds) },
    { label: t("col.stage"), cell: (c) => label("stage", c.stage) },
    { label: t("col.value"), num: true, cell: (c) => number(c.value, 2) },
    { label: t("col.score"), num: true, cell: score },
    { label: t("col.open"), cell: review },
  ];
}

const rowsOf = (calls) => (calls || []).map((c) => ({ ...c, __attrs: { "data-call-sid": c.call_sid, class: "inbox-row" } }));

export async function renderInbox(ctx) {
  const { main, params } = ctx;
  // Without ?month= the API picks this month in the account's time zone.
  const month = /^\d{4}-\d{2}$/.test(params.get("month") || "") ? params.get("month") : undefined;
  const picker = h("input", { type: "month", name: "month", id: "f-month", value: month });
  const form = h("form", { class: "filters", id: "inbox-filters" }, field(t("inbox.month"), picker),
    h("div", { class: "filter-actions" }, h("button", { class: "button", type: "submit", text: t("common.apply") })));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ctx.go(picker.value ? `#/inbox?month=${encodeURIComponent(picker.value)}` : "#/inbox");
  });
  main.append(h("h1", { text: t("inbox.title") }), form);
  const inbox = await api.inbox(month);
  if (!ctx.current()) return;
  picker.value = inbox.month || month || "";
  const cols = columns(inbox.pass_score);
  const sample = inbox.sample || [];
  const scored = inbox.scored ?? sample.filter((c) => c.score !== null && c.score !== undefined).length;
  main.append(
    h("p", { class: "pass-line", id: "pass-line", text: t("inbox.passScore", { score: number(inbox.pass_score, 2) }) }),
    h("p", { class: "scored", id: "inbox-scored", text: t("inbox.scored", { scored, total: sample.length }) }),
    h("section", { class: "card", id: "inbox-sample" },
      h("h2", { text: t("inbox.sample") }),
      h("p", { class: "muted", text: t("inbox.sampleHelp") }),
      table(cols, rowsOf(inbox.sample), { className: "inbox", empty: t("inbox.empty") })));
  const trials = inbox.trials || [];
  if (trials.length) {
    main.append(h("section", { class: "card", id: "inbox-trials" }, h("h2", { text: t("inbox.trials") }),
      trials.map((trial) => h("div", { class: "trial" },
        h("h3", { text: [trial.channel, trial.campaign].filter(Boolean).join(" · ") || t("common.none") }),
        h("p", { class: `verdict verdict-${trial.verdict}`, text: t("inbox.verdict", { verdict: trial.verdict || t("common.none") }) }),
        table(cols, rowsOf(trial.calls), { className: "inbox", empty: t("inbox.empty") })))));
  }
}
