// Metrics: polls GET /metrics, parses the Prometheus text and draws live charts on <canvas>:
// requests per second, latency percentiles (p50/p90/p99, interpolated in the histogram buckets
// of each polling window) and errors per operation; plus table sizes. Every chart has a text
// summary beside it for screen readers and tests.

import { h, field, select, errorBox, replace, formatBytes } from "../dom.js";
import { metricsText } from "../api.js";
import { parse, sum, sumBy, buckets, bucketDelta, quantile } from "../prom.js";

const HISTORY = 60;
const COLORS = ["#1f4e79", "#d97706", "#b42318", "#067647", "#6941c6", "#0e7490"];

export async function render(main) {
  const [everyField, every] = field("Refresh every", select([["1000", "1 s"], ["2000", "2 s"], ["5000", "5 s"], ["0", "Paused"]], "1000", { id: "refresh" }));
  const err = h("div", { class: "error-slot", id: "metrics-error" });
  const rateChart = chart("Requests per second", "chart-rate", ["requests/s"]);
  const latencyChart = chart("Latency (ms)", "chart-latency", ["p50", "p90", "p99"]);
  const errorChart = chart("Errors per second", "chart-errors", ["errors/s"]);
  const summary = h("dl", { class: "row", id: "metrics-summary" });
  const errorsTable = h("div", { id: "errors-by-op" });
  const tablesTable = h("div", { id: "metrics-tables" });
  main.append(
    h("div", { class: "row" }, h("h1", { text: "Metrics" }), everyField),
    err,
    h("div", { class: "panel" }, summary),
    h("div", { class: "charts" }, rateChart.el, latencyChart.el, errorChart.el),
    h("h2", { text: "Errors by operation and type (since start)" }),
    errorsTable,
    h("h2", { text: "Tables" }),
    tablesTable,
  );

  const history = [];
  let prev = null;
  let timer = null;
  let stopped = false;

  const poll = async () => {
    let samples;
    try {
      samples = parse(await metricsText());
      replace(err);
    } catch (e) {
      replace(err, errorBox(e));
      return;
    }
    const now = {
      t: performance.now() / 1000,
      requests: sum(samples, "ferrodyn_requests_total"),
      errors: sum(samples, "ferrodyn_requests_total") - sum(samples, "ferrodyn_requests_total", { outcome: "ok" }),
      buckets: buckets(samples, "ferrodyn_request_duration_seconds"),
    };
    if (prev) {
      const dt = Math.max(now.t - prev.t, 1e-3);
      const window = bucketDelta(now.buckets, prev.buckets);
      // A window without requests has no percentiles: drawn as 0, summarized as "–".
      const ms = (q) => {
        const v = quantile(window, q);
        return v === null ? 0 : v * 1000;
      };
      history.push({
        rate: Math.max(0, now.requests - prev.requests) / dt,
        errors: Math.max(0, now.errors - prev.errors) / dt,
        p50: ms(0.5),
        p90: ms(0.9),
        p99: ms(0.99),
        observed: quantile(window, 0.5) !== null,
      });
      if (history.length > HISTORY) history.shift();
    }
    prev = now;
    rateChart.draw(history.map((p) => [p.rate]));
    latencyChart.draw(history.map((p) => [p.p50, p.p90, p.p99]));
    errorChart.draw(history.map((p) => [p.errors]));
    const last = history[history.length - 1] || { rate: 0, errors: 0, p50: 0, p90: 0, p99: 0 };
    replace(summary,
      figure("Requests (total)", String(now.requests), "metric-requests"),
      figure("Requests/s", last.rate.toFixed(1), "metric-rate"),
      figure("p50 / p90 / p99", last.observed ? `${last.p50.toFixed(2)} / ${last.p90.toFixed(2)} / ${last.p99.toFixed(2)} ms` : "–", "metric-latency"),
      figure("Errors (total)", String(now.errors), "metric-errors"),
      figure("Connections open", String(sum(samples, "ferrodyn_connections_open")), "metric-connections"),
      figure("Resident memory", formatBytes(sum(samples, "ferrodyn_process_resident_memory_bytes")), "metric-memory"),
    );
    renderErrors(errorsTable, samples);
    renderTables(tablesTable, samples);
  };

  const schedule = () => {
    clearTimeout(timer);
    const ms = Number(every.value);
    if (!stopped && ms > 0) timer = setTimeout(async () => {
      await poll();
      schedule();
    }, ms);
  };
  every.addEventListener("change", schedule);
  await poll();
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function figure(label, value, id) {
  return h("div", { class: "field" }, h("dt", { class: "muted", text: label }), h("dd", { class: "figure", id, text: value }));
}

function renderErrors(el, samples) {
  const rows = samples.filter((s) => s.name === "ferrodyn_requests_total" && s.labels.outcome !== "ok" && s.value > 0);
  if (rows.length === 0) {
    replace(el, h("p", { class: "muted", text: "No errors answered." }));
    return;
  }
  rows.sort((a, b) => b.value - a.value);
  replace(el, h("table", { class: "data" },
    h("thead", {}, h("tr", {}, ["Operation", "Error type", "Count"].map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, rows.map((s) => h("tr", {}, h("td", { text: s.labels.operation }), h("td", { class: "cell", text: s.labels.outcome }), h("td", { text: String(s.value) })))),
  ));
}

function renderTables(el, samples) {
  const items = sumBy(samples, "ferrodyn_table_items", "table");
  const sizes = sumBy(samples, "ferrodyn_table_size_bytes", "table");
  if (items.size === 0) {
    replace(el, h("p", { class: "muted", text: "No tables." }));
    return;
  }
  replace(el, h("table", { class: "data" },
    h("thead", {}, h("tr", {}, ["Table", "Items", "Size"].map((c) => h("th", { scope: "col", text: c })))),
    h("tbody", {}, [...items.keys()].sort().map((t) => h("tr", {}, h("td", { text: t }), h("td", { text: String(items.get(t)) }), h("td", { text: formatBytes(sizes.get(t)) })))),
  ));
}

/** A line chart on a canvas, with a legend and a text description that follows the data. */
function chart(title, id, series) {
  const canvas = h("canvas", { id, role: "img", "aria-label": `${title}: no data yet`, width: 600, height: 220 });
  const el = h("figure", { class: "panel chart" },
    h("figcaption", {}, h("h3", { text: title })),
    canvas,
    h("div", { class: "legend" }, series.map((s, i) => h("span", {}, h("span", { class: `swatch s${i}`, "aria-hidden": "true" }), s))),
  );
  const draw = (points) => {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 600;
    const hgt = canvas.clientHeight || 220;
    if (canvas.width !== Math.round(w * dpr)) canvas.width = Math.round(w * dpr);
    if (canvas.height !== Math.round(hgt * dpr)) canvas.height = Math.round(hgt * dpr);
    const g = canvas.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, hgt);
    const left = 48, right = 10, top = 10, bottom = 22;
    const max = niceMax(Math.max(0, ...points.flat()));
    g.font = "11px system-ui, sans-serif";
    g.fillStyle = "#5b6470";
    g.strokeStyle = "#e4e7ec";
    g.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + ((hgt - top - bottom) * i) / 4;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(w - right, y);
      g.stroke();
      const v = max * (1 - i / 4);
      g.fillText(v >= 100 ? v.toFixed(0) : v.toFixed(v >= 10 ? 1 : 2), 4, y + 4);
    }
    g.fillText(`last ${HISTORY} samples`, left, hgt - 6);
    const n = points.length;
    const x = (i) => left + ((w - left - right) * (HISTORY - n + i)) / (HISTORY - 1);
    const y = (v) => top + (hgt - top - bottom) * (1 - v / max);
    series.forEach((_, s) => {
      g.strokeStyle = COLORS[s % COLORS.length];
      g.lineWidth = 2;
      g.beginPath();
      points.forEach((p, i) => (i === 0 ? g.moveTo(x(i), y(p[s])) : g.lineTo(x(i), y(p[s]))));
      g.stroke();
    });
    const last = points[points.length - 1];
    canvas.setAttribute("aria-label", last ? `${title}: latest ${series.map((s, i) => `${s} ${last[i].toFixed(2)}`).join(", ")}; peak ${Math.max(0, ...points.flat()).toFixed(2)}` : `${title}: no data yet`);
    canvas.dataset.peak = String(Math.max(0, ...points.flat()));
    canvas.dataset.points = String(n);
  };
  return { el, draw };
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}
