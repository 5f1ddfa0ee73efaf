// The webhook list: add, edit, test and delete endpoints.

import { call, endpointPath } from "./api.js";
import { confirm, modal } from "./dialogs.js";
import { EVENTS, errorPanel, h, heading, notice, table, time } from "./dom.js";
import { exchange } from "./exchange.js";
import { flash, link, render } from "./router.js";

const EVENT_NAMES = new Map(EVENTS);
const COLUMNS = ["Endpoint", "Events", "Basic auth", "Retry", "Custom header", "Signing", "Flow control", "Status", "Actions"];
const SCHEMES = new Map([
  ["v1", "HMAC (v1)"],
  ["v1a", "Ed25519 (v1a)"],
]);

/** Its pause, when the receiver asked for one that is not over (429, 502, 503, 504). */
function throttle(endpoint) {
  const until = endpoint.throttled_until;
  if (!until || new Date(until) <= new Date()) return null;
  return h("div", { class: "small throttled" }, h("span", { class: "badge badge-pending" }, "throttled"), " until ", time(until));
}

function status(endpoint) {
  if (!endpoint.disabled) return [h("span", { class: "badge badge-active" }, "active"), throttle(endpoint)];
  return [
    h("span", { class: "badge badge-disabled" }, "disabled"),
    endpoint.disabled_reason && h("div", { class: "muted small" }, endpoint.disabled_reason),
  ];
}

/** How requests are signed; an Ed25519 key's public half is shown on hover (it is not a secret). */
function signing(endpoint) {
  const { signing } = endpoint;
  if (!signing) return "—";
  return h("span", { class: "nowrap", title: signing.public_key ?? "" }, SCHEMES.get(signing.scheme) ?? signing.scheme);
}

function flowControl(endpoint) {
  const parts = [];
  if (endpoint.rate_limit) parts.push(`≤ ${endpoint.rate_limit.per_second}/s`);
  if (endpoint.ordering === "fifo") parts.push("FIFO per order");
  return parts.length > 0 ? h("span", { class: "nowrap" }, parts.join(", ")) : "—";
}

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

async function runTest(endpoint) {
  const { dialog, body } = modal("Test webhook", { wide: true });
  body.setAttribute("aria-busy", "true");
  body.append(
    h("p", {}, "Sending the sample Tracking Update to ", h("code", {}, endpoint.url), "…"),
    h("p", { class: "muted", role: "status" }, "Waiting for its answer."),
  );
  try {
    const record = await call("POST", `${endpointPath(endpoint.id)}/test`);
    body.replaceChildren(
      verdict(record),
      exchange(record, 3),
      h(
        "p",
        {},
        h("a", { href: link(`/deliveries/${record.id}`), onclick: () => dialog.close() }, "Open this test in the logs"),
      ),
    );
  } catch (error) {
    body.replaceChildren(errorPanel(error));
  }
  body.removeAttribute("aria-busy");
}

async function remove(endpoint) {
  const message = `${endpoint.url} will receive nothing more, and its pending retries stop. Its logs stay.`;
  if (!(await confirm("Delete this webhook?", message, "Delete webhook"))) return;
  try {
    await call("DELETE", endpointPath(endpoint.id));
    flash(notice("success", `Webhook ${endpoint.url} deleted.`));
  } catch (error) {
    flash(errorPanel(error));
  }
  render();
}

function row(endpoint) {
  const name = endpoint.url;
  return [
    h(
      "div",
      {},
      h("div", { class: "url" }, endpoint.url),
      endpoint.description && h("div", { class: "muted small" }, endpoint.description),
    ),
    h(
      "ul",
      { class: "tags" },
      endpoint.events.map((event) => h("li", { class: "tag" }, EVENT_NAMES.get(event) ?? event)),
    ),
    endpoint.auth ? endpoint.auth.username : "—",
    h("span", { class: "nowrap" }, endpoint.retry.enabled ? `up to ${endpoint.retry.max_retries}` : "off"),
    endpoint.custom_header ? h("code", {}, endpoint.custom_header.key) : "—",
    signing(endpoint),
    flowControl(endpoint),
    status(endpoint),
    h(
      "div",
      { class: "row-actions" },
      h("a", { class: "button small", href: link(`/endpoints/${endpoint.id}`), "aria-label": `Edit ${name}` }, "Edit"),
      h(
        "button",
        { type: "button", class: "button small", "aria-label": `Test ${name}`, onclick: () => runTest(endpoint) },
        "Test",
      ),
      h(
        "a",
        { class: "button small", href: link("/logs", { endpoint_id: endpoint.id }), "aria-label": `Logs of ${name}` },
        "Logs",
      ),
      h(
        "button",
        { type: "button", class: "button small danger", "aria-label": `Delete ${name}`, onclick: () => remove(endpoint) },
        "Delete",
      ),
    ),
  ];
}

export async function endpointList() {
  const endpoints = await call("GET", "/v1/endpoints");
  const add = h("a", { class: "button primary", href: "#/endpoints/new" }, "Add Webhook");
  if (endpoints.length === 0) {
    return [
      heading("Webhooks", add),
      h(
        "div",
        { class: "empty" },
        h("p", {}, "No webhooks yet."),
        h("p", { class: "muted" }, "Add one to receive Order Shipped, Order Error and Tracking Update events."),
      ),
    ];
  }
  const caption = endpoints.length === 1 ? "1 endpoint" : `${endpoints.length} endpoints`;
  return [heading("Webhooks", add), table(caption, COLUMNS, endpoints.map(row))];
}
