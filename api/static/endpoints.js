// The webhook list: add, edit, test and delete endpoints.

import { call, endpointPath } from "./api.js";
import { confirm } from "./dialogs.js";
import { EVENTS, errorPanel, h, heading, notice, table, time, withLocalTimes } from "./dom.js";
import { reenableAndRecover, recoverSince, testEndpoint } from "./endpoint-actions.js";
import { flash, link, render } from "./router.js";

const EVENT_NAMES = new Map(EVENTS);
const COLUMNS = [
  "Endpoint",
  "Events",
  "Basic auth",
  "Retry",
  "Custom header",
  "Signing",
  "Rate limit",
  "Ordering",
  "Health",
  "Actions",
];
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

/**
 * Healthy, failing (deliveries failed in a row: enough of them disable it; or POSTs failing like
 * an outage while a delivery still retries) or disabled, with the reason and its times in the
 * browser's zone.
 */
function health(endpoint) {
  if (endpoint.disabled) {
    return [
      h("span", { class: "badge badge-disabled" }, "disabled"),
      h("div", { class: "muted small reason" }, endpoint.disabled_reason ? withLocalTimes(endpoint.disabled_reason) : "Disabled by hand"),
    ];
  }
  const failed = endpoint.failed_deliveries_in_a_row;
  if (failed > 0) {
    return [
      h("span", { class: "badge badge-failed" }, "failing"),
      h("div", { class: "muted small" }, failed === 1 ? "The last delivery failed" : `${failed} deliveries failed in a row`),
      throttle(endpoint),
    ];
  }
  if (endpoint.posts_failing_since) {
    return [
      h("span", { class: "badge badge-failed" }, "failing"),
      h("div", { class: "muted small" }, "POSTs failing since ", time(endpoint.posts_failing_since)),
      throttle(endpoint),
    ];
  }
  return [h("span", { class: "badge badge-active" }, "healthy"), throttle(endpoint)];
}

/** Whether and how requests are signed; an Ed25519 key's public half is shown on hover (it is not a secret). */
function signing(endpoint) {
  const { signing } = endpoint;
  if (!signing) return h("span", { class: "muted" }, "not signed");
  return h("span", { class: "nowrap", title: signing.public_key ?? "" }, SCHEMES.get(signing.scheme) ?? signing.scheme);
}

function rateLimit(endpoint) {
  return endpoint.rate_limit ? h("span", { class: "nowrap" }, `≤ ${endpoint.rate_limit.per_second}/s`) : "no limit";
}

function ordering(endpoint) {
  return endpoint.ordering === "fifo" ? "FIFO per order" : "any order";
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
    rateLimit(endpoint),
    ordering(endpoint),
    health(endpoint),
    h(
      "div",
      { class: "row-actions" },
      h("a", { class: "button small", href: link(`/endpoints/${endpoint.id}`), "aria-label": `Edit ${name}` }, "Edit"),
      endpoint.disabled &&
        h(
          "button",
          {
            type: "button",
            class: "button small primary",
            "aria-label": `Re-enable & recover ${name}`,
            onclick: () => reenableAndRecover(endpoint),
          },
          "Re-enable & recover",
        ),
      h(
        "button",
        { type: "button", class: "button small", "aria-label": `Test ${name}`, onclick: () => testEndpoint(endpoint) },
        "Test",
      ),
      // A disabled endpoint's re-runs would be skipped (the API refuses them): re-enable first.
      !endpoint.disabled &&
        h(
          "button",
          {
            type: "button",
            class: "button small",
            "aria-label": `Recover failed deliveries of ${name}`,
            onclick: () => recoverSince(endpoint),
          },
          "Recover failed since…",
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
