// Both sides of one HTTP exchange, as a delivery record holds them (the API has masked the credentials).

import { h, prettyBody } from "./dom.js";

function headerList(headers) {
  const entries = Object.entries(headers ?? {});
  if (entries.length === 0) return h("p", { class: "muted" }, "No headers");
  return h(
    "dl",
    { class: "headers" },
    entries.map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
  );
}

function body(label, text, truncated) {
  if (!text) return h("p", { class: "muted" }, "Empty body");
  return [
    // Focusable, so a keyboard can scroll a long body.
    h("pre", { class: "body", tabindex: "0", "aria-label": label }, prettyBody(text)),
    truncated && h("p", { class: "muted" }, "Only the first 16 KiB of the body were kept."),
  ];
}

function panel(level, title, ...content) {
  return h("section", { class: "panel" }, h(`h${level}`, {}, title), content);
}

/** The request and the response of `record`, under headings of the given level. */
export function exchange(record, level = 2) {
  const sub = `h${level + 1}`;
  const { request, response } = record;
  return h(
    "div",
    { class: "exchange" },
    panel(
      level,
      "Request",
      request
        ? [
            h("p", { class: "status-line" }, h("code", {}, `${request.method} ${request.url}`)),
            h(sub, {}, "Headers"),
            headerList(request.headers),
            h(sub, {}, "Body"),
            body("Request body", request.body),
          ]
        : h("p", { class: "muted" }, "No request was sent."),
    ),
    panel(
      level,
      "Response",
      response
        ? [
            h("p", { class: "status-line" }, h("code", {}, response.status_text)),
            h(sub, {}, "Headers"),
            headerList(response.headers),
            response.headers_truncated && h("p", { class: "muted" }, "Headers cut: each value to 1 KiB, all to 16 KiB."),
            h(sub, {}, "Body"),
            body("Response body", response.body, response.body_truncated),
          ]
        : h("p", { class: "muted" }, "No response."),
      record.error && h("p", { class: "error-text" }, record.error),
    ),
  );
}
