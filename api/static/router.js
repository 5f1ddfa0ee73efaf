// Screens live in the URL's fragment (#/logs?result=failed), so Back, reload and bookmarks work.

import { errorPanel } from "./dom.js";

const routes = [];
let generation = 0;
let shownPath = null;
let flashed = null;

/** `view(ctx)` builds the screen for fragments matching `pattern`; its groups arrive decoded in `ctx.args`. */
export function route(pattern, view) {
  routes.push([pattern, view]);
}

/** A notice for the next screen, such as "Webhook added" once the form has gone back to the list. */
export function flash(notice) {
  flashed = notice;
}

/** A fragment whose path segments are encoded one by one, so ids with slashes stay readable. */
export function link(path, params) {
  const encoded = path.split("/").map(encodeURIComponent).join("/");
  const query = params ? new URLSearchParams(params).toString() : "";
  return `#${encoded}${query ? `?${query}` : ""}`;
}

export function go(fragment) {
  if (location.hash === fragment) render();
  else location.hash = fragment;
}

function current() {
  const raw = location.hash.slice(1) || "/endpoints";
  const mark = raw.indexOf("?");
  const path = (mark < 0 ? raw : raw.slice(0, mark)).split("/").map(decodeURIComponent).join("/");
  return { path, params: new URLSearchParams(mark < 0 ? "" : raw.slice(mark + 1)) };
}

function markNavigation(path) {
  const section = path.startsWith("/endpoints") ? "endpoints" : "logs";
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

/** Builds the screen of the current fragment; a screen that is no longer current is dropped. */
export async function render() {
  const mine = ++generation;
  const { path, params } = current();
  const found = routes.map(([pattern, view]) => [path.match(pattern), view]).find(([match]) => match);
  if (!found) {
    go("#/endpoints");
    return;
  }
  const [match, view] = found;
  const notice = flashed;
  flashed = null;
  markNavigation(path);
  const main = document.getElementById("view");
  const focused = document.activeElement?.id;
  main.setAttribute("aria-busy", "true");
  const ctx = { params, args: match.slice(1), isCurrent: () => mine === generation };
  let content;
  try {
    content = await view(ctx);
  } catch (error) {
    content = errorPanel(error, render);
  }
  if (!ctx.isCurrent()) return;
  main.replaceChildren(...[notice, content].flat(Infinity).filter(Boolean));
  main.removeAttribute("aria-busy");
  // A new screen takes the focus to its heading; the same screen redrawn (new filters, a new
  // page) gives it back to the control that had it.
  if (path !== shownPath) (main.querySelector("h1") ?? main).focus();
  else if (focused) document.getElementById(focused)?.focus();
  shownPath = path;
}
