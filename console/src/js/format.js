import { locale, t } from "./i18n.js";

const NONE = () => t("common.none");

// The account's time zone (the session's): calls are filtered by the account's days, so they are
// shown in its zone too, wherever the browser is. Unset: the browser's.
let zone;

export function setTimeZone(tz) {
  try {
    zone = tz ? new Intl.DateTimeFormat("en", { timeZone: tz }).resolvedOptions().timeZone : undefined;
  } catch {
    zone = undefined; // a zone this browser does not know
  }
}

export function dateTime(iso) {
  if (!iso) return NONE();
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short", timeZone: zone });
}

export function seconds(value) {
  if (value === null || value === undefined) return NONE();
  const s = Math.round(Number(value));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || value === "") return NONE();
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(Number(value));
}

/** A 0..1 ratio as a percentage. */
export function percent(value, digits = 0) {
  if (value === null || value === undefined) return NONE();
  return `${new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(Number(value) * 100)}%`;
}

/** The day ``date`` is in the account's time zone, YYYY-MM-DD. */
export function isoDay(date) {
  const parts = new Intl.DateTimeFormat("en", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(date);
  const part = (type) => parts.find((p) => p.type === type).value;
  return `${part("year")}-${part("month")}-${part("day")}`;
}
