// DOM helpers. Every value reaches the page as text (textContent, attribute values): item data
// is untrusted, and nothing here parses HTML.

/**
 * Creates an element. `attrs`: `class`, `text`, `on<event>` functions, `dataset` object,
 * boolean and string attributes; `children`: nodes, strings (as text), arrays, null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "value") el.value = v;
    else if (k === "checked" || k === "selected" || k === "disabled") el[k] = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
/** A fresh element id (for label/for pairs). */
export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}

/** A labelled form field: returns [wrapper, control]. */
export function field(label, control, hint) {
  if (!control.id) control.id = uid();
  const check = control.type === "checkbox";
  const wrap = h("div", { class: check ? "field check" : "field" }, h("label", { for: control.id, text: label }), control);
  if (hint) {
    const hintId = uid("hint");
    control.setAttribute("aria-describedby", hintId);
    wrap.appendChild(h("small", { id: hintId, class: "hint", text: hint }));
  }
  return [wrap, control];
}

/** A <select> of `[value, label]` (or plain strings). */
export function select(options, value, attrs = {}) {
  return h(
    "select",
    attrs,
    options.map((o) => {
      const [v, l] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === value, text: l });
    }),
  );
}

/** An inline error box for an API error (type and message as text), or a plain message. */
export function errorBox(err) {
  if (!err) return h("div", { class: "error-slot" });
  const type = err.type || (err.name && err.name !== "Error" ? err.name : "Error");
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", { class: "error-type", text: type, title: err.fullType || type }),
    h("span", { class: "error-message", text: err.message || String(err) }),
  );
}

/** A status line (polite live region). */
export function status(text) {
  return h("p", { class: "status", role: "status", text });
}

/** Human-readable bytes. */
export function formatBytes(n) {
  if (n === undefined || n === null) return "–";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}
