import { ApiError } from "./api.js";
import { t } from "./i18n.js";

/** A sentence for the user about a failed request. */
export function errorText(err) {
  if (err instanceof ApiError) {
    if (err.status === 403) return t("common.forbidden");
    if (err.status === 404) return t("common.notFound");
  }
  return t("common.error", { message: err && err.message ? err.message : String(err) });
}
