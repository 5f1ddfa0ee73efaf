// Building the page from server data without ever parsing that data as HTML:
// every string becomes a text node or an attribute value, never markup.

/**
 * An element: `h("a", {href: "#/logs", onclick: fn}, "Logs", child)`.
 * Props starting with "on" are listeners; false, null and undefined props and children are left out.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
  return el;
}

/** Only http(s) links from the server become hrefs: a `javascript:` URL must never be clickable. */
function safeHref(url) {
  try {
    const parsed = new URL(url, location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/** A link to another site, in a new tab, or plain text when the URL is not http(s). */
export function externalLink(url, text) {
  const href = safeHref(url);
  return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" }, text) : text;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });

/** The browser's time zone, which every time on the page is shown in. */
export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** A time in the browser's zone; in a narrow column the date and the time of day wrap apart. */
export function time(iso) {
  if (!iso) return "—";
  const moment = new Date(iso);
  return h(
    "time",
    { datetime: iso, title: iso },
    h("span", { class: "nowrap" }, dateFormat.format(moment)),
    " ",
    h("span", { class: "nowrap" }, timeFormat.format(moment)),
  );
}

const RESULTS = new Set(["success", "failed", "pending", "skipped"]);

export function badge(result) {
  return h("span", { class: RESULTS.has(result) ? `badge badge-${result}` : "badge" }, result);
}

export const EVENTS = [
  ["ORDER_SHIPPED", "Order Shipped"],
  ["ORDER_ERROR", "Order Error"],
  ["TRACKING_UPDATE", "Tracking Update"],
  ["ENDPOINT_DISABLED", "Endpoint Disabled (operational)"],
  ["DELIVERY_FAILED", "Delivery Failed (operational)"],
];

/** The service's own events: a new webhook does not subscribe to them unless asked. */
export const OPERATIONAL_EVENTS = new Set(["ENDPOINT_DISABLED", "DELIVERY_FAILED"]);

/** A JSON body indented for reading; anything else as it came. */
export function prettyBody(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** A table whose cells carry their column's name, which narrow screens show beside each value. */
export function table(caption, columns, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "cards-on-narrow" },
      caption && h("caption", {}, caption),
      h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col" }, name)))),
      h(
        "tbody",
        {},
        rows.map((cells) =>
          h(
            "tr",
            {},
            // One box per cell, which narrow screens lay out beside the column's name.
            cells.map((cell, i) => h("td", { "data-label": columns[i] }, h("div", {}, cell))),
          ),
        ),
      ),
    ),
  );
}

/** A page heading; the router moves focus to it, so screen readers announce the new screen. */
export function heading(text, ...actions) {
  return h(
    "div",
    { class: "page-head" },
    h("h1", { tabindex: "-1" }, text),
    actions.length > 0 && h("div", { class: "actions" }, actions),
  );
}

/** A message above a screen's content; errors are announced at once. */
export function notice(kind, ...content) {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, content);
}

/** The message of a failed call, with a way to try again. */
export function errorPanel(error, retry) {
  return notice(
    "error",
    h("p", {}, error.message || String(error)),
    retry && h("button", { type: "button", class: "button", onclick: retry }, "Try again"),
  );
}

// An instant as the API writes it (2026-11-29T08:00:00.123456+00:00 or …Z), ending a sentence.
const CLOSING_INSTANT = /(?:^|\s)(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))$/;

/**
 * The instant that ends a sentence from the API (a disabled endpoint's reason ends with when),
 * or null. Only that one: an instant elsewhere may belong to a name, as in an event id
 * `evt-1999-01-01T00:00:00Z` that a reason quotes.
 */
export function closingInstant(text) {
  const match = (text ?? "").match(CLOSING_INSTANT);
  return match ? match[1] : null;
}

/** A sentence from the API with the instant that ends it shown in the browser's zone. */
export function withLocalTimes(text) {
  const instant = closingInstant(text);
  return instant ? [text.slice(0, text.length - instant.length), time(instant)] : [text];
}

/** `moment` as a datetime-local input's value, in the browser's zone, to the minute. */
export function localInputValue(moment) {
  const local = new Date(moment.getTime() - moment.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 16);
}
