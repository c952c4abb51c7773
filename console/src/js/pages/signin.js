import { api, ApiError } from "../api.js";
import { clear, field, h, notice } from "../dom.js";
import { errorText } from "../errors.js";
import { language, setLanguage, t } from "../i18n.js";

const MESSAGES = { expired: ["signin.expired", "error"], signedOut: ["signin.signedOut", "info"] };

export function renderSignIn(ctx, message) {
  const { main } = ctx;
  clear(main);
  const status = h("div", { class: "signin-status", id: "signin-status" });
  if (message && MESSAGES[message]) {
    const [key, kind] = MESSAGES[message];
    status.append(notice(t(key), kind));
  }
  const email = h("input", { type: "email", name: "email", id: "email", autocomplete: "username", required: true });
  const password = h("input", {
    type: "password", name: "password", id: "password", autocomplete: "current-password", required: true,
  });
  const newPassword = h("input", {
    type: "password", name: "new_password", id: "new-password", autocomplete: "new-password", minlength: "8",
  });
  const newPasswordField = field(t("signin.newPassword"), newPassword, t("signin.newPasswordHint"));
  newPasswordField.hidden = true;
  const submit = h("button", { class: "button", type: "submit", id: "signin-submit", text: t("signin.submit") });
  const form = h("form", { class: "signin", id: "signin-form", novalidate: true },
    h("h1", { text: t("signin.title") }),
    status,
    field(t("signin.email"), email),
    field(t("signin.password"), password),
    newPasswordField,
    submit);
  const toggle = h("button", { class: "link", type: "button", id: "language-toggle", text: t("signin.language") });
  toggle.addEventListener("click", () => {
    setLanguage(language() === "ja" ? "en" : "ja");
    renderSignIn(ctx, message);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear(status);
    if (!email.value || !password.value) {
      status.append(notice(t("signin.wrong"), "error"));
      return;
    }
    submit.disabled = true;
    submit.textContent = t("signin.working");
    try {
      const session = await api.signIn(email.value.trim(), password.value, newPassword.value || undefined);
      password.value = "";
      newPassword.value = "";
      ctx.signedIn(session);
    } catch (err) {
      if (err instanceof ApiError && err.status === 409 && err.body.field === "new_password") {
        // A user created without a password signs in first with the temporary one, then sets theirs.
        newPasswordField.hidden = false;
        status.append(notice(t("signin.choosePassword"), "info"));
        submit.disabled = false;
        submit.textContent = t("signin.submit");
        newPassword.focus();
        return;
      }
      password.value = "";
      const text = err instanceof ApiError && err.status === 401 ? t("signin.wrong")
        : err instanceof ApiError && err.status === 400 ? err.message : errorText(err);
      status.append(notice(text, "error"));
      submit.disabled = false;
      submit.textContent = t("signin.submit");
      password.focus();
    }
  });
  main.append(h("section", { class: "card signin-card" }, form, h("p", { class: "center" }, toggle)));
  email.focus();
}
