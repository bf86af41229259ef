// The console's entry point: learns the server's authentication mode, keeps the session header
// and routes `#/page?param=value` to a page module. Pages render into <main> and return an
// optional cleanup function (timers) that runs when the page changes.

import { h, replace, errorBox } from "./dom.js";
import { detectMode, loadSession, clearSession } from "./api.js";
import * as tables from "./pages/tables.js";
import * as items from "./pages/items.js";
import * as partiql from "./pages/partiql.js";
import * as streams from "./pages/streams.js";
import * as metrics from "./pages/metrics.js";
import * as signin from "./pages/signin.js";

const PAGES = { tables, items, partiql, streams, metrics, signin };
const state = { mode: null, cleanup: null };

/** The current route: `{page, params}`. */
export function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [page, query] = hash.split("?");
  return { page: PAGES[page] ? page : "tables", params: new URLSearchParams(query || "") };
}

/** Navigates to a page with parameters. */
export function go(page, params = {}) {
  const q = new URLSearchParams(params).toString();
  const target = `#/${page}${q ? "?" + q : ""}`;
  if (location.hash === target) render();
  else location.hash = target;
}

function renderSession() {
  const el = document.getElementById("session");
  const s = loadSession();
  if (state.mode === "keys" && s) {
    replace(
      el,
      h("span", { text: `Signed in as ${s.accessKeyId} (${s.region})` }),
      h("button", { type: "button", onclick: signOut, text: "Sign out" }),
    );
  } else if (state.mode === "none") {
    replace(el, h("span", { title: "The server runs with --auth none", text: "No sign-in required" }));
  } else {
    replace(el);
  }
}

function signOut() {
  clearSession();
  go("signin");
}

async function render() {
  if (state.cleanup) {
    try {
      state.cleanup();
    } catch {
      /* a page's timers are gone either way */
    }
    state.cleanup = null;
  }
  const main = document.getElementById("main");
  let { page, params } = route();
  if (state.mode === "keys" && !loadSession() && page !== "signin") page = "signin";
  for (const a of document.querySelectorAll("nav a[data-page]")) {
    if (a.dataset.page === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  renderSession();
  document.title = `${page[0].toUpperCase()}${page.slice(1)} · Ferrodyn console`;
  replace(main);
  try {
    const cleanup = await PAGES[page].render(main, { params, go, mode: state.mode, onSession: renderSession });
    if (typeof cleanup === "function") state.cleanup = cleanup;
  } catch (e) {
    main.appendChild(errorBox(e));
  }
  document.body.dataset.page = page;
}

async function start() {
  const main = document.getElementById("main");
  try {
    state.mode = await detectMode();
  } catch (e) {
    replace(main, h("h1", { text: "Ferrodyn console" }), errorBox(e));
    return;
  }
  document.body.dataset.auth = state.mode;
  window.addEventListener("hashchange", render);
  await render();
}

start();
