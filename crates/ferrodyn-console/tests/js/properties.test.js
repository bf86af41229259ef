// Property tests (seeded, reproducible) for the console's parsers: Prometheus text with random
// label values (every escape), and DynamoDB JSON ⇄ plain JSON round trips of random items.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "../../assets/js/prom.js";
import { itemToPlain, plainToItem } from "../../assets/js/ddbjson.js";

/** xorshift32: the same cases on every run; the seed is in the failure message. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x100000000;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (a) => a[Math.floor(next() * a.length)] };
}

const CHARS = ['a', 'Z', '0', ' ', '"', '\\', '\n', '{', '}', ',', '=', 'é', '#', '\u2603'];

function randomString(r, max) {
  let s = "";
  for (let i = r.int(max); i > 0; i--) s += r.pick(CHARS);
  return s;
}

function escapeLabel(v) {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

test("Prometheus: rendered samples parse back to the same names, labels and values", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const samples = [];
    for (let i = r.int(6); i >= 0; i--) {
      const labels = {};
      for (let j = r.int(4); j > 0; j--) labels[r.pick(["table", "operation", "outcome", "le", "x_y"])] = randomString(r, 8);
      const value = r.pick([0, 1, 2.5, 1e-7, 123456789, Infinity, -3]);
      samples.push({ name: r.pick(["ferrodyn_a_total", "b:c", "_d"]), labels, value });
    }
    const text = samples
      .map((s) => {
        const ls = Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
        const v = s.value === Infinity ? "+Inf" : String(s.value);
        return `# HELP ${s.name} help\n${s.name}${ls.length ? `{${ls.join(",")}}` : ""} ${v}`;
      })
      .join("\n");
    assert.deepEqual(parse(text), samples, `seed ${seed}:\n${text}`);
  }
});

test("Prometheus: arbitrary text never throws", () => {
  for (let seed = 1; seed <= 500; seed++) {
    const r = rng(seed);
    const text = randomString(r, 60);
    assert.doesNotThrow(() => parse(text), `seed ${seed}`);
  }
});

function randomValue(r, depth) {
  const kinds = depth > 2 ? ["S", "N", "BOOL", "NULL"] : ["S", "N", "BOOL", "NULL", "M", "L"];
  switch (r.pick(kinds)) {
    case "S":
      return { S: randomString(r, 6) };
    case "N":
      return { N: String(r.pick([0, 1, -2, 3.25, 1e21, 123456789012345, -0.5])) };
    case "BOOL":
      return { BOOL: r.next() < 0.5 };
    case "NULL":
      return { NULL: true };
    case "M": {
      const m = {};
      for (let i = r.int(4); i > 0; i--) m[randomString(r, 5) || "k"] = randomValue(r, depth + 1);
      return { M: m };
    }
    default:
      return { L: Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1)) };
  }
}

test("DynamoDB JSON → plain JSON → DynamoDB JSON is the identity for lossless items", () => {
  for (let seed = 1; seed <= 300; seed++) {
    const r = rng(seed);
    const item = {};
    for (let i = r.int(6) + 1; i > 0; i--) item[randomString(r, 5) || "id"] = randomValue(r, 0);
    const lossy = { value: false };
    const plain = itemToPlain(item, lossy);
    assert.equal(lossy.value, false, `seed ${seed}`);
    const back = plainToItem(JSON.parse(JSON.stringify(plain)));
    assert.deepEqual(back, item, `seed ${seed}`);
  }
});
