// One call: summary, attribution with its confidence, the recording player (admin and manager:
// a fresh presigned URL on every press of play) and the outcome (stage, value, score, tags),
// editable by admin and manager through PATCH /v1/calls/{sid}.

import { api, ApiError } from "../api.js";
import { clear, field, h, notice, select } from "../dom.js";
import { errorText } from "../errors.js";
import { dateTime, number, percent, seconds } from "../format.js";
import { label, t } from "../i18n.js";
import { lastList, STAGES } from "./calls.js";

const EDITORS = ["admin", "manager"];

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([name, value, id]) => [
    h("dt", { text: name }),
    h("dd", { id, text: value === null || value === undefined || value === "" ? t("common.none") : String(value) }),
  ]));
}

function player(call) {
  const rec = call.recording;
  const box = h("section", { class: "card", id: "recording" }, h("h2", { text: t("call.recording") }));
  if (!rec || rec.status !== "stored") {
    box.append(h("p", { class: "muted", id: "no-recording",
      text: rec && rec.status ? t("call.recordingState", { status: rec.status }) : t("call.noRecording") }));
    return box;
  }
  const audio = h("audio", { id: "recording-audio", controls: true, preload: "none", class: "player" });
  audio.hidden = true;
  const status = h("div", { class: "player-status", id: "player-status" });
  // a link that expired while paused (5 minutes), or storage refusing it: say so, not a silent stall
  audio.addEventListener("error", () => {
    if (audio.getAttribute("src")) status.replaceChildren(notice(t("call.recordingFailed"), "error"));
  });
  const play = h("button", { class: "button", type: "button", id: "play-recording", text: `▶ ${t("call.play")}` });
  play.addEventListener("click", async () => {
    play.disabled = true;
    status.replaceChildren(h("span", { class: "muted", text: t("call.loadingRecording") }));
    try {
      const link = await api.recording(call.call_sid); // fresh: presigned URLs live 5 minutes
      audio.src = link.url;
      audio.hidden = false;
      status.replaceChildren(h("span", { class: "muted", text: t("call.recordingExpires", { time: dateTime(link.expires_at) }) }));
      try {
        await audio.play();
      } catch {
        // autoplay refused or no audio output: the controls are there to press
      }
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      status.replaceChildren(notice(errorText(err), "error"));
    } finally {
      play.disabled = false;
    }
  });
  box.append(h("div", { class: "player-row" }, play, audio), status);
  return box;
}

// Only what the form changed is sent (an explicit null removes a field): a save that changes nothing
// makes no request, and the call's other fields (set by the CRM, say) are left alone.
export function changedFields(before, after) {
  const same = (a, b) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  const out = {};
  for (const [key, value] of Object.entries(after)) {
    if (!same(key === "tags" ? before.tags || [] : before[key], value)) out[key] = value;
  }
  return out;
}

function outcomeForm(initial, onSaved) {
  let call = initial;
  const stage = select("stage", [["", t("stage.none")], ...STAGES.map((s) => [s, label("stage", s)])], call.stage);
  const value = h("input", { type: "number", name: "value", id: "f-value", min: "0", step: "any", inputmode: "decimal",
    value: call.value ?? "" });
  const score = h("input", { type: "number", name: "score", id: "f-score", min: "0", max: "100", step: "any",
    inputmode: "decimal", value: call.score ?? "" });
  const tags = h("input", { type: "text", name: "tags", id: "f-tags", value: (call.tags || []).join(", ") });
  const status = h("div", { class: "form-status", id: "outcome-status", "aria-live": "polite" });
  const save = h("button", { class: "button", type: "submit", id: "save-outcome", text: t("common.save") });
  const form = h("form", { class: "outcome", id: "outcome-form" },
    field(t("col.stage"), stage),
    field(t("col.value"), value),
    field(t("col.score"), score, t("call.scoreHint")),
    field(t("call.tags"), tags, t("call.tagsHint")),
    h("div", { class: "form-actions" }, save, status));
  const num = (input) => (input.value.trim() === "" ? null : Number(input.value));
  // the form shows what the call says now: after a save, and after a save refused because the
  // call changed meanwhile (a stale field would otherwise be sent back with the next save)
  const show = (c) => {
    stage.value = c.stage || "";
    value.value = c.value ?? "";
    score.value = c.score ?? "";
    tags.value = (c.tags || []).join(", ");
  };
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const wanted = {
      stage: stage.value || null,
      value: num(value),
      score: num(score),
      // the box shows the tags joined by ", ": read back only when edited, so a tag holding a
      // comma or "、" (set by a call rule or the API) is not split by saving another field
      tags: tags.value === (call.tags || []).join(", ") ? (call.tags || [])
        : tags.value.split(/[,、]/).map((s) => s.trim()).filter(Boolean),
    };
    if ((wanted.value !== null && !(wanted.value >= 0)) || (wanted.score !== null && !(wanted.score >= 0 && wanted.score <= 100))) {
      status.replaceChildren(notice(t("call.invalid", { message: `${t("col.value")} ≥ 0, ${t("col.score")} 0–100` }), "error"));
      return;
    }
    const changes = changedFields(call, wanted);
    if (!Object.keys(changes).length) {
      status.replaceChildren(notice(t("call.unchanged"), "ok"));
      return;
    }
    save.disabled = true;
    status.replaceChildren(h("span", { class: "muted", text: t("common.saving") }));
    try {
      // made on the version this form shows: a call changed since answers 409, not overwritten
      const body = Number.isInteger(call.version) ? { ...changes, version: call.version } : changes;
      const updated = await api.updateCall(call.call_sid, body);
      call = { ...call, ...updated };
      show(call);
      status.replaceChildren(notice(t("common.saved"), "ok"));
      onSaved(updated);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      if (err instanceof ApiError && err.status === 409) {
        try {
          call = await api.call(call.call_sid);
          show(call);
          onSaved(call);
          status.replaceChildren(notice(t("call.conflict"), "error"));
        } catch (again) {
          status.replaceChildren(notice(errorText(again), "error"));
        }
        return;
      }
      const text = err instanceof ApiError && err.status === 400 ? t("call.invalid", { message: err.message }) : errorText(err);
      status.replaceChildren(notice(text, "error"));
    } finally {
      save.disabled = false;
    }
  });
  return form;
}

function outcomeFacts(call) {
  return facts([
    [t("col.stage"), label("stage", call.stage), "v-stage"],
    [t("col.value"), call.value === null || call.value === undefined ? null : number(call.value, 2), "v-value"],
    [t("col.score"), call.score === null || call.score === undefined ? null : number(call.score, 2), "v-score"],
    [t("call.tags"), (call.tags || []).join(", "), "v-tags"],
  ]);
}

export async function renderCall(ctx, callSid) {
  const { main, session, params } = ctx;
  const call = await api.call(callSid);
  if (!ctx.current()) return;
  const back = params.get("from") === "inbox" ? ["#/inbox", t("nav.inbox")] : [lastList, t("call.back")];
  const canEdit = EDITORS.includes(session.role);
  const outcome = h("section", { class: "card", id: "outcome" }, h("h2", { text: t("call.outcome") }));
  const shown = h("div", { id: "outcome-facts" }, outcomeFacts(call));
  outcome.append(shown);
  if (canEdit) outcome.append(outcomeForm(call, (updated) => clear(shown).append(outcomeFacts(updated))));
  else outcome.append(h("p", { class: "muted", text: t("call.readOnly") }));
  const conversions = call.conversions || [];
  main.append(
    h("p", {}, h("a", { href: back[0], class: "back", text: back[1] })),
    h("h1", { text: t("call.title", { sid: call.call_sid }) }),
    h("div", { class: "grid" },
      h("section", { class: "card", id: "summary" }, h("h2", { text: t("call.summary") }), facts([
        [t("col.started"), dateTime(call.started_at)],
        [t("col.caller"), call.caller, "v-caller"],
        [t("call.tracking"), call.tracking_number],
        [t("col.status"), label("status", call.status), "v-status"],
        [t("col.talk"), seconds(call.talk_seconds)],
        [t("col.agent"), call.agent],
      ])),
      h("section", { class: "card", id: "attribution" }, h("h2", { text: t("call.attribution") }), facts([
        [t("col.channel"), call.channel, "v-channel"],
        [t("col.campaign"), call.campaign, "v-campaign"],
        [t("call.keyword"), call.keyword, "v-keyword"],
        [t("call.confidence"), call.confidence === null || call.confidence === undefined ? null : percent(call.confidence), "v-confidence"],
        [t("call.landing"), call.landing_page],
      ])),
      canEdit ? player(call) : null,
      outcome,
      h("section", { class: "card", id: "conversions" }, h("h2", { text: t("call.conversions") }),
        conversions.length
          ? h("ul", { class: "plain" }, conversions.map((c) => h("li", { text: `${c.destination || ""} · ${c.rule || ""} · ${c.status || ""}` })))
          : h("p", { class: "muted", text: t("call.noConversions") }))));
}
