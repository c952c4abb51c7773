import { locale, t } from "./i18n.js";

const NONE = () => t("common.none");

export function dateTime(iso) {
  if (!iso) return NONE();
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(locale(), { dateStyle: "medium", timeStyle: "short" });
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

export function isoDay(date) {
  const y = date.getFullYear();
  const m = String(date.getMonth() + 1).padStart(2, "0");
  const d = String(date.getDate()).padStart(2, "0");
  return `${y}-${m}-${d}`;
}
