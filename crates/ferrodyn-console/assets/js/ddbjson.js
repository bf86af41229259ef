// DynamoDB JSON (AttributeValue maps) and plain JSON: conversion both ways, and typed cell text.
// Plain JSON cannot say "set", "binary" or "number beyond a double": converting such an item to
// plain JSON reports it as lossy, and the editor keeps DynamoDB JSON for it.

const TYPES = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];

/** The type tag of an AttributeValue (`S`, `N`, ...), or null if it is not one. */
export function typeOf(av) {
  if (!av || typeof av !== "object" || Array.isArray(av)) return null;
  const keys = Object.keys(av);
  return keys.length === 1 && TYPES.includes(keys[0]) ? keys[0] : null;
}

/** Plain value of an AttributeValue; `lossy.value` becomes true if information is lost. */
export function avToPlain(av, lossy = { value: false }) {
  const t = typeOf(av);
  const v = t ? av[t] : undefined;
  switch (t) {
    case "S":
      return v;
    case "N": {
      const n = Number(v);
      if (!Number.isFinite(n) || significantDigits(v) > 15) lossy.value = true;
      return n;
    }
    case "BOOL":
      return !!v;
    case "NULL":
      return null;
    case "M":
      return itemToPlain(v, lossy);
    case "L":
      return v.map((x) => avToPlain(x, lossy));
    case "B":
    case "SS":
    case "NS":
    case "BS":
      lossy.value = true;
      return t === "NS" ? v.map(Number) : v;
    default:
      lossy.value = true;
      return null;
  }
}

/** Significant digits of a decimal string: up to 15 survive a trip through a double. */
function significantDigits(s) {
  const mantissa = String(s).trim().replace(/^[+-]/, "").split(/[eE]/)[0].replace(".", "");
  return mantissa.replace(/^0+/, "").replace(/0+$/, "").length;
}

/** Plain object of an item (attribute name → AttributeValue). */
export function itemToPlain(item, lossy = { value: false }) {
  const out = {};
  for (const [k, v] of Object.entries(item || {})) out[k] = avToPlain(v, lossy);
  return out;
}

/** AttributeValue of a plain JSON value. */
export function plainToAv(v) {
  if (v === null) return { NULL: true };
  if (typeof v === "string") return { S: v };
  if (typeof v === "number") return { N: String(v) };
  if (typeof v === "boolean") return { BOOL: v };
  if (Array.isArray(v)) return { L: v.map(plainToAv) };
  if (typeof v === "object") return { M: plainToItem(v) };
  throw new Error(`cannot store ${typeof v}`);
}

/** Item of a plain JSON object. */
export function plainToItem(obj) {
  if (!obj || typeof obj !== "object" || Array.isArray(obj)) throw new Error("An item is a JSON object");
  const out = {};
  for (const [k, v] of Object.entries(obj)) out[k] = plainToAv(v);
  return out;
}

/** A typed scalar from text for a key attribute of type `S`, `N` or `B`. */
export function scalar(type, text) {
  return { [type]: type === "N" ? text.trim() : text };
}

/** `{type, text}` for a results cell: the type tag and a compact rendering of the value. */
export function cell(av) {
  const t = typeOf(av);
  if (!t) return { type: "?", text: JSON.stringify(av) };
  const v = av[t];
  switch (t) {
    case "S":
    case "N":
    case "B":
      return { type: t, text: v };
    case "BOOL":
      return { type: t, text: v ? "true" : "false" };
    case "NULL":
      return { type: t, text: "null" };
    case "SS":
    case "NS":
    case "BS":
      return { type: t, text: `{${v.join(", ")}}` };
    default:
      return { type: t, text: JSON.stringify(avToPlain(av)) };
  }
}

/** Attribute names of items: the key attributes first, then the rest in first-seen order. */
export function columns(items, keyNames = []) {
  const seen = new Set(keyNames);
  const cols = [...keyNames];
  for (const item of items) {
    for (const k of Object.keys(item)) {
      if (!seen.has(k)) {
        seen.add(k);
        cols.push(k);
      }
    }
  }
  return cols;
}

/** An item as JSON text with one top-level attribute per line (easier to edit than one value
 * per line). */
export function formatItem(obj) {
  const entries = Object.entries(obj);
  if (entries.length === 0) return "{}";
  return `{\n${entries.map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`).join(",\n")}\n}`;
}
