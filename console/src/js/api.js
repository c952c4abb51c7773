// The console's API client. Same origin; the session is an HttpOnly cookie the browser sends
// (credentials: "same-origin"): no token is ever visible to this code or kept in web storage.
// Every request carries X-Calltrack-Console: 1, which cookie-authenticated requests require.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.message || body.error)) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

let expired = () => {};

/** What to do when a request answers 401 (the session ended or expired): set by app.js. */
export function onExpired(handler) {
  expired = handler;
}

function withQuery(path, query) {
  if (!query) return path;
  const qs = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") qs.set(key, String(value));
  }
  const text = qs.toString();
  return text ? `${path}?${text}` : path;
}

async function request(method, path, { query, body, signIn = false } = {}) {
  const headers = { "X-Calltrack-Console": "1", Accept: "application/json" };
  const init = { method, credentials: "same-origin", cache: "no-store", headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(withQuery(path, query), init);
  let data = null;
  if (resp.status !== 204) {
    const text = await resp.text();
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { message: text.slice(0, 200) };
      }
    }
  }
  if (resp.status === 401 && !signIn) {
    expired();
    throw new ApiError(401, data);
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

const sid = (callSid) => encodeURIComponent(callSid);

export const api = {
  session: () => request("GET", "/v1/session", { signIn: true }),
  signIn: (email, password, newPassword) => request("POST", "/v1/session", {
    body: newPassword ? { email, password, new_password: newPassword } : { email, password }, signIn: true,
  }),
  signOut: () => request("DELETE", "/v1/session", { signIn: true }),
  calls: (query) => request("GET", "/v1/calls", { query }),
  call: (callSid) => request("GET", `/v1/calls/${sid(callSid)}`),
  updateCall: (callSid, changes) => request("PATCH", `/v1/calls/${sid(callSid)}`, { body: changes }),
  recording: (callSid) => request("GET", `/v1/calls/${sid(callSid)}/recording`),
  inbox: (month) => request("GET", "/v1/reviews/inbox", { query: { month } }),
  report: (name, query) => request("GET", `/v1/reports/${name}`, { query }),
};
