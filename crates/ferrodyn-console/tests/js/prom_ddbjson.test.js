// Unit tests of the console's Prometheus parser and DynamoDB JSON conversions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse, sum, sumBy, buckets, bucketDelta, quantile } from "../../assets/js/prom.js";
import { avToPlain, plainToItem, itemToPlain, cell, columns, typeOf } from "../../assets/js/ddbjson.js";

const TEXT = `# HELP ferrodyn_requests_total Answered API requests.
# TYPE ferrodyn_requests_total counter
ferrodyn_requests_total{operation="PutItem",outcome="ok"} 3
ferrodyn_requests_total{operation="PutItem",outcome="ValidationException"} 2
ferrodyn_requests_total{operation="GetItem",outcome="ok"} 5
ferrodyn_request_duration_seconds_bucket{operation="GetItem",le="0.001"} 4
ferrodyn_request_duration_seconds_bucket{operation="GetItem",le="0.002"} 5
ferrodyn_request_duration_seconds_bucket{operation="GetItem",le="+Inf"} 5
ferrodyn_request_duration_seconds_bucket{operation="PutItem",le="0.001"} 0
ferrodyn_request_duration_seconds_bucket{operation="PutItem",le="0.002"} 5
ferrodyn_request_duration_seconds_bucket{operation="PutItem",le="+Inf"} 5
ferrodyn_table_items{table="we\\"ird\\\\ name"} 7
ferrodyn_connections_open 1
bad line {
`;

test("parses samples, labels and escapes", () => {
  const s = parse(TEXT);
  assert.equal(s.length, 11);
  assert.equal(sum(s, "ferrodyn_requests_total"), 10);
  assert.equal(sum(s, "ferrodyn_requests_total", { outcome: "ok" }), 8);
  assert.deepEqual([...sumBy(s, "ferrodyn_requests_total", "operation")], [["PutItem", 5], ["GetItem", 5]]);
  assert.deepEqual(s.find((x) => x.name === "ferrodyn_table_items").labels, { table: 'we"ird\\ name' });
  assert.equal(sum(s, "ferrodyn_connections_open"), 1);
});

test("quantiles interpolate inside buckets", () => {
  const b = buckets(parse(TEXT), "ferrodyn_request_duration_seconds");
  assert.deepEqual(b, [[0.001, 4], [0.002, 10], [Infinity, 10]]);
  assert.equal(quantile(b, 0.4), 0.001);
  assert.ok(Math.abs(quantile(b, 0.7) - 0.0015) < 1e-12);
  assert.equal(quantile(b, 1), 0.002);
  assert.equal(quantile([[1, 0], [Infinity, 0]], 0.5), null);
  assert.equal(quantile([[1, 0], [Infinity, 3]], 0.5), 1);
  assert.deepEqual(bucketDelta(b, [[0.001, 1], [0.002, 2], [Infinity, 2]]), [[0.001, 3], [0.002, 8], [Infinity, 8]]);
});

test("DynamoDB JSON and plain JSON round trip, with lossy conversions flagged", () => {
  const item = { id: { S: "a" }, n: { N: "1.5" }, m: { M: { l: { L: [{ BOOL: true }, { NULL: true }] } } } };
  const lossy = { value: false };
  const plain = itemToPlain(item, lossy);
  assert.deepEqual(plain, { id: "a", n: 1.5, m: { l: [true, null] } });
  assert.equal(lossy.value, false);
  assert.deepEqual(plainToItem(plain), item);
  for (const av of [{ SS: ["a"] }, { B: "AAE=" }, { N: "12345678901234567890123" }]) {
    const l = { value: false };
    avToPlain(av, l);
    assert.equal(l.value, true, JSON.stringify(av));
  }
  assert.throws(() => plainToItem([1]));
  assert.equal(typeOf({ S: "x", N: "1" }), null);
  assert.deepEqual(cell({ SS: ["a", "b"] }), { type: "SS", text: "{a, b}" });
  assert.deepEqual(cell({ S: "<img src=x>" }), { type: "S", text: "<img src=x>" });
  assert.deepEqual(columns([{ b: {}, pk: {} }, { c: {} }], ["pk"]), ["pk", "b", "c"]);
});

test("formatItem puts one attribute per line and parses back", async () => {
  const { formatItem } = await import("../../assets/js/ddbjson.js");
  const item = { a: { S: "x\ny" }, b: { L: [{ N: "1" }] } };
  const text = formatItem(item);
  assert.equal(text, '{\n  "a": {"S":"x\\ny"},\n  "b": {"L":[{"N":"1"}]}\n}');
  assert.deepEqual(JSON.parse(text), item);
  assert.equal(formatItem({}), "{}");
});
