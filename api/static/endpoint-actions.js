// What the webhook list can do to one endpoint besides editing it: test it with an event of
// one's choice, re-run what failed since a moment, and re-enable a disabled one and recover.

import { ApiError, call, endpointPath } from "./api.js";
import { modal } from "./dialogs.js";
import { EVENTS, closingInstant, errorPanel, h, localInputValue, notice, time, timeZone } from "./dom.js";
import { exchange } from "./exchange.js";
import { flash, link, render } from "./router.js";

/** The events `POST …/test` sends a sample of. */
const TESTABLE = EVENTS.filter(([value]) => ["ORDER_SHIPPED", "ORDER_ERROR", "TRACKING_UPDATE"].includes(value));

/** The seed's rule: a test passes when the delivery's result is "success". */
function verdict(record) {
  const passed = record.result === "success";
  return h(
    "div",
    { class: `verdict ${passed ? "verdict-passed" : "verdict-failed"}`, role: "status" },
    h("strong", {}, passed ? "Test passed" : "Test failed"),
    h("span", {}, passed ? "The endpoint answered with JSON (or a 204)." : record.error),
  );
}

/** A labelled control with a place for the API's reason, as in the webhook form. */
function field(id, label, control, help) {
  control.id = id;
  control.setAttribute("aria-describedby", [help && `${id}-help`, `${id}-error`].filter(Boolean).join(" "));
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    control,
    help && h("p", { class: "help", id: `${id}-help` }, help),
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }),
  );
}

/** The API's refusal of `name` next to its control; any other failure above the form. */
function showFailure(form, name, control, error) {
  const mine = error instanceof ApiError ? error.errors.filter((e) => e.field === name) : [];
  const message = document.getElementById(`${control.id}-error`);
  message.textContent = mine.map((e) => e.message).join(" ");
  message.hidden = mine.length === 0;
  if (mine.length > 0) control.setAttribute("aria-invalid", "true");
  else control.removeAttribute("aria-invalid");
  form.querySelector(".form-problem")?.remove();
  if (mine.length > 0) control.focus();
  else form.prepend(h("div", { class: "form-problem" }, errorPanel(error)));
}

export async function testEndpoint(endpoint) {
  const { dialog, body } = modal("Test webhook", { wide: true });
  const event = h(
    "select",
    {},
    TESTABLE.map(([value, label]) => h("option", { value, selected: value === "TRACKING_UPDATE" }, label)),
  );
  const result = h("div", { "aria-live": "polite" });
  const send = h("button", { type: "submit", class: "button primary" }, "Send test");
  const form = h(
    "form",
    { novalidate: true },
    h("p", {}, "Sends a sample order event once, never retried, to ", h("code", {}, endpoint.url), "."),
    field("test-event", "Event", event, "Its sample order, as your endpoint would receive it."),
    h("div", { class: "actions" }, send),
  );
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    send.disabled = true;
    result.setAttribute("aria-busy", "true");
    result.replaceChildren(h("p", { class: "muted", role: "status" }, "Sending… waiting for its answer."));
    try {
      const record = await call("POST", `${endpointPath(endpoint.id)}/test`, { event: event.value });
      result.replaceChildren(
        verdict(record),
        exchange(record, 3),
        h(
          "p",
          {},
          h("a", { href: link(`/deliveries/${record.id}`), onclick: () => dialog.close() }, "Open this test in the logs"),
        ),
      );
    } catch (error) {
      result.replaceChildren(errorPanel(error));
    }
    result.removeAttribute("aria-busy");
    send.disabled = false;
  });
  body.append(form, result);
  event.focus();
}

function recovered(endpoint, answer, since) {
  const logs = h("a", { href: link("/logs", { endpoint_id: endpoint.id }) }, "see them in the logs");
  const found = `${answer.found} failed or skipped ${answer.found === 1 ? "delivery" : "deliveries"}`;
  const again = answer.found - answer.started;
  return [
    `${found} since `,
    time(since),
    answer.started === answer.found
      ? `: ${answer.started === 1 ? "it is" : "all are"} being sent again (`
      : `: ${answer.started} sent again, ${again} already recovered before (`,
    logs,
    ").",
  ];
}

/**
 * The dialog both recoveries share: a moment in the browser's zone (`since` to start with), and
 * `act(sinceIso)` on submit, which answers the notice for the list.
 */
function recoveryDialog(title, intro, since, action, act) {
  const { dialog, body } = modal(title);
  const input = h("input", { type: "datetime-local", value: localInputValue(since), required: true });
  const go = h("button", { type: "submit", class: "button primary" }, action);
  const form = h(
    "form",
    { novalidate: true },
    intro,
    field(
      "recover-since",
      "Failed since",
      input,
      `In your time zone (${timeZone}). Deliveries that ended failed or skipped since then are each sent again once, even if they began earlier.`,
    ),
    h(
      "div",
      { class: "actions" },
      go,
      h("button", { type: "button", class: "button", onclick: () => dialog.close() }, "Cancel"),
    ),
  );
  form.addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const moment = new Date(input.value);
    if (Number.isNaN(moment.getTime())) {
      showFailure(form, "since", input, new ApiError(422, { errors: [{ field: "since", message: "Pick a date and time." }] }));
      return;
    }
    go.disabled = true;
    form.setAttribute("aria-busy", "true");
    try {
      flash(await act(moment.toISOString()));
      dialog.close();
      render();
    } catch (error) {
      showFailure(form, "since", input, error);
    }
    form.removeAttribute("aria-busy");
    go.disabled = false;
  });
  body.append(form);
  input.focus();
  return dialog;
}

async function recover(endpoint, since) {
  return call("POST", `${endpointPath(endpoint.id)}/recover`, { since });
}

export function recoverSince(endpoint) {
  const dayAgo = new Date(Date.now() - 24 * 3600_000);
  recoveryDialog(
    "Recover failed deliveries",
    h("p", {}, "Send again what failed to ", h("code", {}, endpoint.url), ", with its current settings."),
    dayAgo,
    "Recover",
    async (since) => notice("success", ...recovered(endpoint, await recover(endpoint, since), since)),
  );
}

/**
 * Where recovery of a disabled endpoint starts: the moment its reason ends with (the start of
 * its run of failures, or its 410), else when it was last changed (disabled by hand).
 */
function failingSince(endpoint) {
  return new Date(closingInstant(endpoint.disabled_reason) ?? endpoint.updated_at);
}

export function reenableAndRecover(endpoint) {
  let enabled = false;
  let done = false;
  const dialog = recoveryDialog(
    "Re-enable & recover",
    h(
      "p",
      {},
      h("code", {}, endpoint.url),
      " gets new events again, with a fresh count of failures; then what failed or was skipped meanwhile is sent again.",
    ),
    failingSince(endpoint),
    "Re-enable and recover",
    async (since) => {
      if (!enabled) {
        await call("PATCH", endpointPath(endpoint.id), { disabled: false });
        enabled = true; // a failed recovery is tried again without re-enabling twice
      }
      const answer = await recover(endpoint, since);
      done = true;
      return notice("success", `Webhook ${endpoint.url} re-enabled. `, ...recovered(endpoint, answer, since));
    },
  );
  // Closed after re-enabling but without a recovery: the list must show it enabled all the same.
  dialog.addEventListener("close", () => {
    if (!enabled || done) return;
    flash(notice("success", `Webhook ${endpoint.url} re-enabled.`));
    render();
  });
}
