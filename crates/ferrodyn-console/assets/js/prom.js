// Prometheus text exposition format (0.0.4): parsing, and quantiles from histogram buckets.

/**
 * Samples of a scrape: `[{name, labels, value}]`. Comments, blank lines and malformed lines are
 * skipped; label values are unescaped (`\\`, `\"`, `\n`).
 */
export function parse(text) {
  const out = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const sample = parseLine(line);
    if (sample) out.push(sample);
  }
  return out;
}

function parseLine(line) {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
  if (!m) return null;
  const name = m[1];
  let i = name.length;
  const labels = {};
  if (line[i] === "{") {
    i += 1;
    for (;;) {
      while (line[i] === " " || line[i] === ",") i += 1;
      if (line[i] === "}") {
        i += 1;
        break;
      }
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(i));
      if (!lm) return null;
      i += lm[0].length;
      let value = "";
      for (;;) {
        if (i >= line.length) return null;
        const c = line[i];
        if (c === "\\") {
          const n = line[i + 1];
          value += n === "n" ? "\n" : n;
          i += 2;
        } else if (c === '"') {
          i += 1;
          break;
        } else {
          value += c;
          i += 1;
        }
      }
      labels[lm[1]] = value;
    }
  }
  const rest = line.slice(i).trim().split(/\s+/);
  if (rest.length === 0 || rest[0] === "") return null;
  const value = parseValue(rest[0]);
  if (Number.isNaN(value) && rest[0] !== "NaN") return null;
  return { name, labels, value };
}

function parseValue(s) {
  if (s === "+Inf") return Infinity;
  if (s === "-Inf") return -Infinity;
  return Number(s);
}

/** Sum of the samples named `name` whose labels match every entry of `where`. */
export function sum(samples, name, where = {}) {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

/** Samples named `name`, summed by the value of label `by`: `Map(labelValue → sum)`. */
export function sumBy(samples, name, by, keep = () => true) {
  const out = new Map();
  for (const s of samples) {
    if (s.name !== name || !keep(s.labels)) continue;
    const key = s.labels[by] ?? "";
    out.set(key, (out.get(key) || 0) + s.value);
  }
  return out;
}

/** Cumulative bucket counts of a histogram, summed over every other label: `[[le, count]]`. */
export function buckets(samples, histogram) {
  const byLe = sumBy(samples, `${histogram}_bucket`, "le");
  return [...byLe.entries()].map(([le, c]) => [parseValue(le), c]).sort((a, b) => a[0] - b[0]);
}

/** Bucket counts of `now` minus those of `before` (same bounds): the window's histogram. */
export function bucketDelta(now, before) {
  const prev = new Map(before.map(([le, c]) => [le, c]));
  return now.map(([le, c]) => [le, Math.max(0, c - (prev.get(le) || 0))]);
}

/**
 * The q-quantile (0..1) of cumulative buckets, interpolating linearly inside a bucket as
 * Prometheus's histogram_quantile does; null with no observations. An answer in the +Inf
 * bucket is the largest finite bound.
 */
export function quantile(cumulative, q) {
  if (cumulative.length === 0) return null;
  const total = cumulative[cumulative.length - 1][1];
  if (!(total > 0)) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of cumulative) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      if (count === prevCount) return le;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / (count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
