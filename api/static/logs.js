// Webhook logs: the seed's columns, its four filters plus order id and dates, and paging.

import { call } from "./api.js";
import { KINDS, retryButton } from "./delivery.js";
import { EVENTS, badge, errorPanel, h, heading, localInputValue, table, time, timeZone } from "./dom.js";
import { go, link, render } from "./router.js";

// The API's query parameters that the screen keeps in its URL (page_token aside).
const FILTERS = ["endpoint_id", "event", "result", "retried", "status_code", "order_id", "since", "until", "limit"];
const COLUMNS = [
  "Date",
  "Date End",
  "Order ID",
  "Transaction ID",
  "Carrier",
  "Endpoint",
  "Event",
  "Result",
  "Retry",
  "Time Spent",
  "Status",
  "Error",
  "Actions",
];

/** An ISO time as a datetime-local value, in the browser's time zone. */
function toLocalInput(iso) {
  const moment = new Date(iso);
  return !iso || Number.isNaN(moment.getTime()) ? "" : localInputValue(moment);
}

function select(name, label, options, value) {
  const id = `filter-${name}`;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("select", { id, name }, options.map(([option, text]) => h("option", { value: option, selected: option === value }, text))),
  );
}

function textInput(name, label, type, value) {
  const id = `filter-${name}`;
  return h("div", { class: "field" }, h("label", { for: id }, label), h("input", { id, name, type, value }));
}

function filterForm(params, endpoints) {
  const value = (name) => params.get(name) ?? "";
  const endpointOptions = endpoints.map((e) => [e.id, e.description ? `${e.url} (${e.description})` : e.url]);
  if (value("endpoint_id") && !endpoints.some((e) => e.id === value("endpoint_id"))) {
    endpointOptions.push([value("endpoint_id"), `${value("endpoint_id")} (deleted)`]);
  }
  const form = h(
    "form",
    { class: "card filters", role: "search", "aria-label": "Filter the logs", novalidate: true },
    select("endpoint_id", "Endpoint", [["", "All endpoints"], ...endpointOptions], value("endpoint_id")),
    select("event", "Event", [["", "All events"], ...EVENTS], value("event")),
    select(
      "result",
      "Result",
      [["", "All results"], ...["success", "failed", "pending", "skipped"].map((r) => [r, r])],
      value("result"),
    ),
    select(
      "retried",
      "Retry",
      [
        ["", "Any"],
        ["true", "Retried"],
        ["false", "Not retried"],
      ],
      value("retried"),
    ),
    textInput("status_code", "HTTP status", "number", value("status_code")),
    textInput("order_id", "Order ID", "text", value("order_id")),
    textInput("since", "Started from", "datetime-local", toLocalInput(value("since"))),
    textInput("until", "Started before", "datetime-local", toLocalInput(value("until"))),
    select("limit", "Rows per page", ["10", "25", "50", "100"].map((n) => [n, n]), value("limit") || "50"),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "button primary", id: "apply-filters" }, "Apply filters"),
      h("a", { class: "button", href: "#/logs" }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = {};
    for (const [name, raw] of new FormData(form)) {
      if (!raw) continue;
      // The inputs hold local wall-clock times; the API gets the instant they mean.
      chosen[name] = name === "since" || name === "until" ? new Date(raw).toISOString() : raw;
    }
    go(link("/logs", chosen));
  });
  return form;
}

function row(d) {
  const kind = d.kind && d.kind !== "event" ? KINDS[d.kind] ?? d.kind : null;
  return [
    time(d.date),
    time(d.date_end),
    d.order_id || "—",
    d.transaction_id || "—",
    d.carrier || "—",
    h("span", { class: "url", title: d.endpoint_id ?? "" }, d.endpoint_url ?? d.endpoint_id ?? "—"),
    [d.event ?? "—", kind && h("div", { class: "muted small" }, kind)],
    badge(d.result),
    String(d.retry),
    d.time_spent_ms == null ? "—" : `${d.time_spent_ms} ms`,
    d.status_code == null ? "—" : h("code", {}, String(d.status_code)),
    d.error ? h("span", { class: "error-text small" }, d.error) : "—",
    h(
      "div",
      { class: "row-actions" },
      h("a", { class: "button small", href: link(`/deliveries/${d.id}`), "aria-label": `Details of ${d.id}` }, "Details"),
      d.result !== "pending" && retryButton(d.id, "small"),
    ),
  ];
}

function results(params, page) {
  const filters = Object.fromEntries(FILTERS.filter((name) => params.get(name)).map((name) => [name, params.get(name)]));
  const pager = h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    params.get("page_token") && h("a", { class: "button", href: link("/logs", filters), id: "first-page" }, "First page"),
    page.next_page_token &&
      h(
        "a",
        { class: "button", href: link("/logs", { ...filters, page_token: page.next_page_token }), id: "next-page" },
        "Next page",
      ),
  );
  if (page.data.length === 0) return [h("div", { class: "empty" }, h("p", {}, "No deliveries match these filters.")), pager];
  return [table(`Newest first. Times in ${timeZone}.`, COLUMNS, page.data.map(row)), pager];
}

export async function logList(ctx) {
  const query = new URLSearchParams();
  for (const name of [...FILTERS, "page_token"]) {
    if (ctx.params.get(name)) query.set(name, ctx.params.get(name));
  }
  const [endpoints, page] = await Promise.all([
    call("GET", "/v1/endpoints"),
    // A refused filter (a bad date, an old page token) leaves the form in place to fix it.
    call("GET", `/v1/deliveries?${query}`).catch((error) => error),
  ]);
  const refresh = h("button", { type: "button", class: "button", id: "refresh-logs", onclick: render }, "Refresh");
  return [
    heading("Webhook logs", refresh),
    filterForm(ctx.params, endpoints),
    page instanceof Error ? errorPanel(page) : results(ctx.params, page),
  ];
}
