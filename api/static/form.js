// Adding and editing a webhook. The API's rules are the only ones: its 422 names each field
// ("retry.max_retries"), and the message appears next to the control with that name.

import { ApiError, call, endpointPath } from "./api.js";
import { EVENTS, OPERATIONAL_EVENTS, h, heading, notice } from "./dom.js";
import { flash, go, link } from "./router.js";

/**
 * A labelled control named after its API field, so an error about that field finds it; the
 * switches that show a part of the form take names beside their part's ("auth.enabled").
 * Its help and its error describe it.
 */
function field(name, label, control, help) {
  const id = `f-${name.replaceAll(".", "-")}`;
  control.id = id;
  control.dataset.field = name;
  if (help) {
    control.dataset.help = `${id}-help`;
    control.setAttribute("aria-describedby", control.dataset.help);
  }
  const labelled = [h("label", { for: id }, label), control];
  return h(
    "div",
    { class: control.type === "checkbox" ? "field checkbox" : "field" },
    control.type === "checkbox" ? labelled.reverse() : labelled,
    help && h("p", { class: "help", id: `${id}-help` }, help),
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }),
  );
}

/** A group of controls; errors about the whole group ("events", "custom_header") show under its legend. */
function group(name, legend, ...content) {
  const id = `f-${name.replaceAll(".", "-")}`;
  return h(
    "fieldset",
    { id, "data-field": name },
    h("legend", {}, legend),
    h("p", { class: "field-error", id: `${id}-error`, hidden: true }),
    content,
  );
}

const input = (props) => h("input", { type: "text", autocomplete: "off", spellcheck: "false", ...props });
const checkbox = (checked) => h("input", { type: "checkbox", checked });

/** Shows `part` only while `toggle` is checked; hidden controls are out of the tab order too. */
function reveal(toggle, part) {
  const sync = () => {
    part.hidden = !toggle.checked;
  };
  toggle.addEventListener("change", sync);
  sync();
  return part;
}

/**
 * A sub-object whose secret the API never shows back (auth's password, the header's value).
 * Left out when unchanged; the secret must be typed again to change the rest of it.
 */
function maskedChange(name, on, current, value, secret, label) {
  if (!on) return current ? { set: null } : {};
  if (value[secret] === "" && current) {
    const same = Object.entries(value).every(([key, v]) => key === secret || current[key] === v);
    const problem = [`${name}.${secret}`, `Enter the ${label} again: it is never shown, and this change needs it.`];
    return same ? {} : { problem };
  }
  return { set: value };
}

function controlFor(form, field) {
  for (let path = field; path; path = path.slice(0, Math.max(path.lastIndexOf("."), 0))) {
    const target = form.querySelector(`[data-field="${CSS.escape(path)}"]`);
    if (target) return target;
  }
  return null;
}

function clearErrors(form, summary) {
  summary.hidden = true;
  for (const target of form.querySelectorAll("[data-field]")) {
    target.removeAttribute("aria-invalid");
    if (target.dataset.help) target.setAttribute("aria-describedby", target.dataset.help);
    else target.removeAttribute("aria-describedby");
    const error = document.getElementById(`${target.id}-error`);
    error.hidden = true;
    error.textContent = "";
  }
}

function setError(target, message) {
  const error = document.getElementById(`${target.id}-error`);
  error.textContent = error.hidden ? message : `${error.textContent} ${message}`;
  error.hidden = false;
  if (target.tagName !== "FIELDSET") target.setAttribute("aria-invalid", "true");
  target.setAttribute("aria-describedby", [target.dataset.help, error.id].filter(Boolean).join(" "));
}

/** Each [field, message] next to its control; the rest in the summary, which is announced. */
function showErrors(form, summary, problems) {
  const elsewhere = [];
  let first = null;
  for (const [field, message] of problems) {
    const target = controlFor(form, field);
    if (target) {
      setError(target, message);
      first ??= target.tagName === "FIELDSET" ? target.querySelector("input") : target;
    } else {
      elsewhere.push(field && field !== "body" ? `${field}: ${message}` : message);
    }
  }
  summary.replaceChildren(h("p", {}, "The webhook was not saved. Please check the fields marked below."));
  if (elsewhere.length > 0) summary.append(h("ul", {}, elsewhere.map((message) => h("li", {}, message))));
  summary.hidden = false;
  (first ?? summary).focus();
}

export async function endpointForm(id) {
  const endpoint = id ? await call("GET", endpointPath(id)) : null;
  const url = input({ type: "url", inputmode: "url", value: endpoint?.url, placeholder: "https://shop.example.com/hooks" });
  const events = EVENTS.map(([value, label]) => {
    const box = h("input", {
      type: "checkbox",
      id: `f-event-${value}`,
      value,
      checked: endpoint ? endpoint.events.includes(value) : !OPERATIONAL_EVENTS.has(value),
    });
    return [box, h("div", { class: "field checkbox" }, box, h("label", { for: box.id }, label, " ", h("code", {}, value)))];
  });
  const authOn = checkbox(Boolean(endpoint?.auth));
  const username = input({ value: endpoint?.auth?.username });
  const password = input({ type: "password", autocomplete: "new-password" });
  const retryOn = checkbox(endpoint ? endpoint.retry.enabled : true);
  const maxRetries = input({ type: "number", min: 0, max: 10, step: 1, value: endpoint?.retry.max_retries ?? 3 });
  const headerOn = checkbox(Boolean(endpoint?.custom_header));
  const headerKey = input({ value: endpoint?.custom_header?.key, placeholder: "X-Shop-Token" });
  const headerValue = input({ type: "password", autocomplete: "new-password" });
  const perSecond = input({
    type: "number",
    inputmode: "decimal",
    min: 0,
    max: 1000,
    step: "any",
    value: endpoint?.rate_limit?.per_second,
    placeholder: "no limit",
  });
  const ordering = h(
    "select",
    {},
    [
      ["none", "Any order (fastest)"],
      ["fifo", "One at a time per order (FIFO)"],
    ].map(([value, label]) => h("option", { value, selected: (endpoint?.ordering ?? "none") === value }, label)),
  );
  const description = h("textarea", { rows: 3 }, endpoint?.description ?? "");
  const active = checkbox(endpoint ? !endpoint.disabled : true);
  const syncRetries = () => {
    maxRetries.disabled = !retryOn.checked;
  };
  retryOn.addEventListener("change", syncRetries);
  syncRetries();
  const kept = endpoint ? "Leave empty to keep the current one." : null;

  const summary = h("div", { class: "notice notice-error", role: "alert", tabindex: "-1", hidden: true });
  const save = h("button", { type: "submit", class: "button primary" }, endpoint ? "Save changes" : "Add Webhook");
  const form = h(
    "form",
    { class: "card form", novalidate: true },
    summary,
    field("url", "Endpoint URL", url, "Where the webhooks are POSTed, as JSON."),
    group("events", "Events", events.map(([, row]) => row)),
    group(
      "auth",
      "Basic authentication (optional)",
      field("auth.enabled", "Use HTTP Basic authentication", authOn),
      reveal(
        authOn,
        h(
          "div",
          { class: "grid-2" },
          field("auth.username", "Username", username),
          field("auth.password", "Password", password, endpoint?.auth ? kept : null),
        ),
      ),
    ),
    group(
      "retry",
      "Retry",
      field("retry.enabled", "Retry when a delivery fails", retryOn),
      field("retry.max_retries", "Maximum retries", maxRetries, "0 to 10 retries after the first attempt."),
    ),
    group(
      "custom_header",
      "Custom header (optional)",
      field("custom_header.enabled", "Send a custom header", headerOn),
      reveal(
        headerOn,
        h(
          "div",
          { class: "grid-2" },
          field("custom_header.key", "Header name", headerKey),
          field("custom_header.value", "Header value", headerValue, endpoint?.custom_header ? kept : null),
        ),
      ),
    ),
    group(
      "flow",
      "Flow control (optional)",
      h(
        "div",
        { class: "grid-2" },
        field(
          "rate_limit.per_second",
          "Rate limit (POSTs per second)",
          perSecond,
          "At most this many POSTs start in any second (0.5 is one every two seconds). Empty for no limit.",
        ),
        field(
          "ordering",
          "Ordering",
          ordering,
          "FIFO: an order's next webhook waits until the previous one is delivered or has failed all its retries.",
        ),
      ),
    ),
    field("description", "Description (optional)", description),
    endpoint &&
      group(
        "disabled",
        "Status",
        field("disabled.active", "Active: deliver events to this endpoint", active, endpoint.disabled_reason),
      ),
    h("div", { class: "actions" }, save, h("a", { class: "button", href: "#/endpoints" }, "Cancel")),
  );

  function read() {
    const body = {
      url: url.value.trim(),
      events: events.filter(([box]) => box.checked).map(([box]) => box.value),
      retry: { enabled: retryOn.checked, max_retries: maxRetries.value === "" ? null : Number(maxRetries.value) },
      rate_limit: perSecond.value === "" ? null : { per_second: Number(perSecond.value) },
      ordering: ordering.value,
    };
    // Only a status the merchant changed is sent: one the service set meanwhile (a 410, the
    // health rule) is not undone by saving another field.
    if (endpoint && active.checked === endpoint.disabled) body.disabled = !active.checked;
    // Nor is a description left as it was: one stored before today's rules (with a control
    // character) would make every other edit a 422.
    if (!endpoint || description.value !== endpoint.description) body.description = description.value;
    const problems = [];
    const changes = {
      auth: maskedChange(
        "auth",
        authOn.checked,
        endpoint?.auth,
        { username: username.value, password: password.value },
        "password",
        "password",
      ),
      custom_header: maskedChange(
        "custom_header",
        headerOn.checked,
        endpoint?.custom_header,
        { key: headerKey.value.trim(), value: headerValue.value },
        "value",
        "header value",
      ),
    };
    for (const [name, change] of Object.entries(changes)) {
      if ("set" in change) body[name] = change.set;
      if (change.problem) problems.push(change.problem);
    }
    return { body, problems };
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form, summary);
    const { body, problems } = read();
    if (problems.length > 0) {
      showErrors(form, summary, problems);
      return;
    }
    save.disabled = true;
    try {
      if (endpoint) {
        await call("PATCH", endpointPath(endpoint.id), body);
        flash(notice("success", "Webhook saved."));
      } else {
        const created = await call("POST", "/v1/endpoints", body);
        flash(
          notice(
            "success",
            "Webhook added. It was sent an Order Shipped sample, its first connection: ",
            h("a", { href: link("/logs", { endpoint_id: created.id }) }, "see it in the logs"),
            ".",
          ),
        );
      }
      go("#/endpoints");
    } catch (error) {
      const problems = error instanceof ApiError ? error.errors.map((e) => [e.field, e.message]) : [];
      showErrors(form, summary, problems.length > 0 ? problems : [["", error.message]]);
    } finally {
      save.disabled = false;
    }
  });

  return [heading(endpoint ? "Edit webhook" : "Add Webhook"), form];
}
