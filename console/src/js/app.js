// The console's shell: the session, hash routing (#/calls, #/calls/<sid>, #/inbox, #/reports,
// #/signin), the header and sign-out. Pages render into <main> and get a context object.

import { api, ApiError, onExpired } from "./api.js";
import { clear, h, notice } from "./dom.js";
import { errorText } from "./errors.js";
import { setTimeZone } from "./format.js";
import { setLanguage, t } from "./i18n.js";
import { renderCall } from "./pages/call.js";
import { renderCalls } from "./pages/calls.js";
import { renderInbox } from "./pages/inbox.js";
import { renderReports } from "./pages/reports.js";
import { renderSignIn } from "./pages/signin.js";

const main = document.getElementById("main");
const top = document.getElementById("top");
const state = { session: null, message: null, render: 0 };

// A part that does not decode (a link cut short: "%E0%A4%A") is kept as typed: the page then says
// "not found" instead of the whole console stopping at "Loading…".
function decodePart(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

export function parseHash(hash) {
  const raw = (hash || "").replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodePart);
  return { parts, params: new URLSearchParams(query) };
}

export function go(route) {
  if (location.hash === route) render();
  else location.hash = route;
}

function showHeader(session) {
  top.hidden = !session;
  const who = document.getElementById("who");
  who.textContent = session ? `${session.email} · ${t(`role.${session.role}`)}` : "";
  const route = parseHash(location.hash).parts[0] || "calls";
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.dataset.route === route) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function signedIn(session) {
  state.session = session;
  if (session.language) setLanguage(session.language);
  setTimeZone(session.timezone);
  watchExpiry(session);
}

// When the session's token is due to expire, ask the server (its clock decides, not this one's):
// a 401 ends the session here too, even if the page makes no request meanwhile.
let expiryTimer = 0;
function watchExpiry(session, retry = 0) {
  clearTimeout(expiryTimer);
  const due = Date.parse(session.expires_at || "");
  if (!Number.isFinite(due)) return;
  const wait = Math.min(Math.max(due - Date.now() + 1000, retry), 2 ** 31 - 1);
  expiryTimer = setTimeout(async () => {
    if (state.session !== session) return;
    try {
      const fresh = await api.session();
      if (state.session !== session) return;
      state.session = fresh;
      watchExpiry(fresh, 60000); // still valid (clocks differ): look again in a minute at the latest
    } catch (err) {
      if (state.session !== session) return;
      if (err instanceof ApiError && err.status === 401) signedOut("expired");
      else watchExpiry(session, 60000);
    }
  }, wait);
}

function signedOut(message) {
  clearTimeout(expiryTimer);
  state.session = null;
  state.message = message || null;
  go("#/signin");
}

onExpired(() => {
  if (state.session) signedOut("expired");
  else if (parseHash(location.hash).parts[0] !== "signin") signedOut("expired");
});

async function render() {
  const token = ++state.render;
  const { parts, params } = parseHash(location.hash);
  const ctx = {
    session: state.session,
    params,
    main,
    go,
    current: () => token === state.render, // false once another route started rendering
    signedIn: (session) => {
      signedIn(session);
      state.message = null;
      const next = params.get("next");
      go(next && next.startsWith("#/") && !next.startsWith("#/signin") ? next : "#/calls");
    },
  };
  if (parts[0] === "signin" || !state.session) {
    showHeader(null);
    if (parts[0] !== "signin") {
      go(`#/signin?next=${encodeURIComponent(location.hash || "#/calls")}`);
      return;
    }
    const message = state.message;
    state.message = null;
    return renderSignIn(ctx, message);
  }
  showHeader(state.session);
  clear(main);
  try {
    if (parts[0] === "calls" && parts[1]) await renderCall(ctx, parts[1]);
    else if (parts[0] === "inbox") await renderInbox(ctx);
    else if (parts[0] === "reports") await renderReports(ctx);
    else if (parts[0] === "calls" || !parts[0]) await renderCalls(ctx);
    else main.append(notice(t("common.notFound"), "error"));
  } catch (err) {
    if (!ctx.current()) return;
    if (err instanceof ApiError && err.status === 401) return; // onExpired took over
    main.append(notice(errorText(err), "error"));
  }
}

document.getElementById("logout").addEventListener("click", async () => {
  try {
    await api.signOut();
  } catch {
    // the cookie is gone or the server is unreachable: either way, back to sign-in
  }
  signedOut("signedOut");
});

window.addEventListener("hashchange", render);

async function start() {
  setLanguage((navigator.language || "").toLowerCase().startsWith("ja") ? "ja" : "en");
  try {
    signedIn(await api.session());
  } catch (err) {
    state.session = null; // 401: not signed in (or the session expired); render() shows sign-in
    if (!(err instanceof ApiError && err.status === 401)) {
      // the network or the server failed: no reason to ask for the password again
      showHeader(null);
      const retry = h("button", { class: "button", type: "button", id: "retry-start", text: t("common.retry") });
      retry.addEventListener("click", () => start());
      clear(main).append(notice(errorText(err), "error"), retry);
      return;
    }
  }
  render();
}

start();
