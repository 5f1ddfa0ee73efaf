// One delivery of the log: what was sent and received, a re-run, and its run in the Temporal Web UI.

import { call, deliveryPath } from "./api.js";
import { badge, errorPanel, externalLink, h, heading, notice, time } from "./dom.js";
import { exchange } from "./exchange.js";
import { flash, go, link, render } from "./router.js";

// A pending delivery is shown again this often, until it ends.
const PENDING_REFRESH_MS = 2000;

export const KINDS = {
  event: "event",
  first_connection: "first connection",
  test: "test",
  rerun: "re-run",
  recovery: "recovery re-run",
};

/** Re-runs a finished delivery as a new one, then shows the new one. */
export function retryButton(id, size = "") {
  const button = h("button", { type: "button", class: `button ${size}`, "aria-label": `Retry ${id}` }, "Retry");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const started = await call("POST", `${deliveryPath(id)}/retry`);
      flash(notice("success", "Re-run started as ", h("code", {}, started.id), "."));
      go(link(`/deliveries/${started.id}`));
    } catch (error) {
      flash(errorPanel(error));
      render();
    }
  });
  return button;
}

function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.filter(([, value]) => value !== undefined).map(([name, value]) => [h("dt", {}, name), h("dd", {}, value)]),
  );
}

function summary(d) {
  const pending = d.result === "pending";
  return h(
    "section",
    { class: "card", "aria-label": "Summary" },
    facts([
      ["Result", badge(d.result)],
      ["Event", [d.event, " ", h("span", { class: "muted" }, `(${KINDS[d.kind] ?? d.kind})`)]],
      ["Endpoint", [h("span", { class: "url" }, d.endpoint_url ?? "—"), " ", h("code", {}, d.endpoint_id)]],
      ["Order ID", d.order_id || "—"],
      ["Transaction ID", d.transaction_id || "—"],
      ["Carrier", d.carrier || "—"],
      ["Date", time(d.date)],
      ["Date End", time(d.date_end)],
      ["Time Spent", d.time_spent_ms == null ? "—" : `${d.time_spent_ms} ms`],
      [pending ? "Attempts so far" : "Retry", String(pending ? d.attempts.length : d.retry)],
      ["Next attempt", pending && d.next_attempt_at ? time(d.next_attempt_at) : undefined],
      ["Re-run of", d.rerun_of ? h("a", { href: link(`/deliveries/${d.rerun_of}`) }, d.rerun_of) : undefined],
      ["Error", d.error ? h("span", { class: "error-text" }, d.error) : undefined],
    ]),
    h(
      "div",
      { class: "actions" },
      !pending && retryButton(d.id),
      h("a", { class: "button", href: link("/logs", { endpoint_id: d.endpoint_id }) }, "Logs of this endpoint"),
      h("span", { class: "external" }, externalLink(d.web_ui_url, "Open the run in the Temporal Web UI ↗")),
    ),
  );
}

function phases(timings) {
  const named = [
    ["connect", timings?.connect_ms],
    ["TLS", timings?.tls_ms],
    ["first byte", timings?.ttfb_ms],
  ].filter(([, ms]) => ms != null);
  return named.map(([name, ms]) => `${name} ${Math.round(ms)} ms`).join(" · ");
}

/** Every POST of the delivery, oldest first: when, how long, what came back, and why it failed. */
function timeline(attempts) {
  if (attempts.length === 0) return null;
  return h(
    "section",
    { class: "card", "aria-label": "Attempts" },
    h("h2", {}, attempts.length === 1 ? "1 attempt" : `${attempts.length} attempts`),
    h(
      "ol",
      { class: "timeline" },
      attempts.map((a) =>
        h(
          "li",
          { class: a.error ? "attempt attempt-failed" : "attempt attempt-ok" },
          h(
            "div",
            { class: "attempt-head" },
            h("strong", {}, `#${a.number}`),
            " ",
            time(a.started_at),
            " ",
            h("code", {}, a.response ? a.response.status_text : "no response"),
            " ",
            h("span", { class: "muted" }, `${a.duration_ms} ms`),
          ),
          phases(a.timings) && h("div", { class: "muted small" }, phases(a.timings)),
          a.error && h("div", { class: "error-text small" }, a.error),
        ),
      ),
    ),
  );
}

export async function deliveryDetail(ctx) {
  const [id] = ctx.args;
  const content = h("div", { class: "stack" });
  const draw = async () => {
    const delivery = await call("GET", deliveryPath(id));
    if (!ctx.isCurrent()) return;
    const focused = document.activeElement?.id;
    const running = delivery.result === "pending";
    content.replaceChildren(
      ...[
        running && notice("info", "This delivery is still running; this page follows it until it ends."),
        summary(delivery),
        timeline(delivery.attempts ?? []),
        exchange(delivery),
      ].filter(Boolean),
    );
    if (focused) document.getElementById(focused)?.focus();
    if (running) {
      setTimeout(() => draw().catch((error) => content.replaceChildren(errorPanel(error, render))), PENDING_REFRESH_MS);
    }
  };
  await draw();
  return [heading("Delivery"), h("p", { class: "subtitle" }, h("code", {}, id)), content];
}
