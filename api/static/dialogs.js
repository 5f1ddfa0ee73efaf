// Modal dialogs on the native <dialog>: it traps focus, closes on Escape and gives focus back.

import { token } from "./api.js";
import { h } from "./dom.js";

let dialogs = 0;

/** A modal with a title; it is removed once closed. `closed` resolves to its return value. */
export function modal(title, { closable = true, wide = false } = {}) {
  const titleId = `dialog-title-${++dialogs}`;
  const body = h("div", { class: "dialog-body" });
  const dialog = h(
    "dialog",
    { "aria-labelledby": titleId, class: wide ? "wide" : null },
    h(
      "div",
      { class: "dialog-head" },
      h("h2", { id: titleId }, title),
      closable &&
        h("button", { type: "button", class: "icon-button", "aria-label": "Close", onclick: () => dialog.close() }, "×"),
    ),
    body,
  );
  const closed = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue);
    });
  });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, body, closed };
}

/** Asks before something that cannot be undone; Cancel has the focus, so Enter alone changes nothing. */
export async function confirm(title, message, action) {
  const { dialog, body, closed } = modal(title);
  body.append(
    h("p", {}, message),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", class: "button", autofocus: true, onclick: () => dialog.close("cancel") }, "Cancel"),
      h("button", { type: "button", class: "button danger", onclick: () => dialog.close("confirm") }, action),
    ),
  );
  dialog.querySelector("[autofocus]").focus();
  return (await closed) === "confirm";
}

let tokenAsked = null;

/** Asks for the API token once, however many calls were refused meanwhile; resolves when it is stored. */
export function askForToken(problem) {
  tokenAsked ??= new Promise((resolve) => {
    const { dialog, body } = modal("API token", { closable: false });
    // Nothing on the page works without a token, so Escape does not dismiss the question.
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    const input = h("input", {
      id: "token-input",
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": "token-help",
    });
    const hint = h("p", { class: "field-error", role: "alert", hidden: true });
    const submit = (event) => {
      event.preventDefault();
      const value = input.value.trim();
      if (!value) {
        hint.textContent = "Enter the token.";
        hint.hidden = false;
        return;
      }
      token.set(value);
      tokenAsked = null;
      dialog.close();
      resolve();
    };
    body.append(
      h(
        "form",
        { onsubmit: submit, novalidate: true },
        problem && h("p", { class: "notice notice-error", role: "alert" }, problem),
        h(
          "p",
          { id: "token-help" },
          "This service needs your account's API token. It is kept in this browser tab only, and sent as a Bearer token.",
        ),
        h("div", { class: "field" }, h("label", { for: "token-input" }, "API token"), input, hint),
        h("div", { class: "actions" }, h("button", { type: "submit", class: "button primary" }, "Continue")),
      ),
    );
    input.focus();
  });
  return tokenAsked;
}
