//! Measurement collection (per-worker HDR histograms) and the final report in
//! human-readable and JSON form.
//!
//! Owns: [`Stats`] (what a worker records), [`Report`] (merged results) and the
//! JSON schema `ferrodyn-bench/v1` documented in docs/benchmarks.md.
//!
//! Invariants:
//! - Latencies are recorded in microseconds, for successful operations only;
//!   values beyond the histogram range saturate at its maximum (60 s).
//! - `count` of an operation = successes + errors; `errors` = sum of
//!   `errors_by_type`.
//! - Recording a success never allocates; recording an error may (error names).
//! - The JSON field order and names are a stable interface: add fields, never
//!   rename or remove them without bumping `schema`.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::workload::OpKind;

/// Largest latency the histograms track, in microseconds.
const MAX_LATENCY_US: u64 = 60_000_000;

/// The JSON report schema identifier.
pub const SCHEMA: &str = "ferrodyn-bench/v1";

/// Measurements of one operation kind.
#[derive(Clone, Debug)]
pub struct OpStats {
    pub hist: Histogram<u64>,
    pub count: u64,
    /// (error type, count), in first-seen order; tiny, so a Vec beats a map.
    pub errors: Vec<(String, u64)>,
}

impl OpStats {
    fn new() -> Self {
        OpStats {
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("constant histogram bounds are valid"),
            count: 0,
            errors: Vec::new(),
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum()
    }

    fn add_error(&mut self, kind: &str, n: u64) {
        match self.errors.iter_mut().find(|(k, _)| k == kind) {
            Some((_, c)) => *c += n,
            None => self.errors.push((kind.to_string(), n)),
        }
    }
}

/// Everything one worker measured.
#[derive(Clone, Debug)]
pub struct Stats {
    pub ops: Vec<OpStats>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            ops: (0..OpKind::COUNT).map(|_| OpStats::new()).collect(),
        }
    }
}

impl Stats {
    #[inline]
    pub fn success(&mut self, op: OpKind, latency: Duration) {
        let s = &mut self.ops[op as usize];
        s.count += 1;
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        s.hist.saturating_record(us);
    }

    pub fn error(&mut self, op: OpKind, kind: &str) {
        let s = &mut self.ops[op as usize];
        s.count += 1;
        s.add_error(kind, 1);
    }

    pub fn merge(&mut self, other: &Stats) {
        for (a, b) in self.ops.iter_mut().zip(&other.ops) {
            a.count += b.count;
            // Same bounds on both sides, so adding cannot fail.
            let _ = a.hist.add(&b.hist);
            for (k, n) in &b.errors {
                a.add_error(k, *n);
            }
        }
    }
}

/// Latency summary in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// Merged result for one operation kind.
#[derive(Clone, Debug)]
pub struct OpReport {
    pub op: &'static str,
    pub count: u64,
    pub errors: u64,
    pub errors_by_type: Vec<(String, u64)>,
    /// Completed operations (successes and errors) per second.
    pub throughput: f64,
    pub latency_ms: Latency,
}

/// Configuration echoed in the report.
#[derive(Clone, Debug)]
pub struct RunInfo {
    pub endpoint: String,
    pub table: String,
    pub workload: &'static str,
    pub distribution: &'static str,
    pub connections: usize,
    pub keys: u64,
    pub item_size: usize,
    pub duration_secs: Option<f64>,
    pub requests: Option<u64>,
    pub warmup_secs: f64,
    pub region: String,
    pub loaded_items: u64,
}

/// The final merged report.
#[derive(Clone, Debug)]
pub struct Report {
    pub info: RunInfo,
    /// Measured wall time (excludes warmup and loading).
    pub elapsed_secs: f64,
    /// HTTP requests (all kinds except the composite read-modify-write).
    pub total_requests: u64,
    pub total_errors: u64,
    pub throughput: f64,
    pub operations: Vec<OpReport>,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

impl Report {
    pub fn build(info: RunInfo, stats: &Stats, elapsed: Duration) -> Report {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut operations = Vec::new();
        let (mut total_requests, mut total_errors) = (0, 0);
        for op in OpKind::ALL {
            let s = &stats.ops[op as usize];
            if s.count == 0 {
                continue;
            }
            let errors = s.error_count();
            if op.is_request() {
                total_requests += s.count;
                total_errors += errors;
            }
            let h = &s.hist;
            let latency_ms = if h.is_empty() {
                Latency {
                    p50: 0.0,
                    p95: 0.0,
                    p99: 0.0,
                    p999: 0.0,
                    max: 0.0,
                    mean: 0.0,
                }
            } else {
                Latency {
                    p50: ms(h.value_at_quantile(0.50)),
                    p95: ms(h.value_at_quantile(0.95)),
                    p99: ms(h.value_at_quantile(0.99)),
                    p999: ms(h.value_at_quantile(0.999)),
                    max: ms(h.max()),
                    mean: h.mean() / 1000.0,
                }
            };
            operations.push(OpReport {
                op: op.name(),
                count: s.count,
                errors,
                errors_by_type: s.errors.clone(),
                throughput: s.count as f64 / secs,
                latency_ms,
            });
        }
        Report {
            info,
            elapsed_secs: elapsed.as_secs_f64(),
            total_requests,
            total_errors,
            throughput: total_requests as f64 / secs,
            operations,
        }
    }

    pub fn op(&self, name: &str) -> Option<&OpReport> {
        self.operations.iter().find(|o| o.op == name)
    }

    /// The report as JSON (schema `ferrodyn-bench/v1`).
    pub fn to_json(&self) -> Value {
        let i = &self.info;
        let mut ops = Map::new();
        for o in &self.operations {
            let mut by_type = Map::new();
            for (k, n) in &o.errors_by_type {
                by_type.insert(k.clone(), json!(n));
            }
            let l = &o.latency_ms;
            ops.insert(
                o.op.to_string(),
                json!({
                    "count": o.count,
                    "errors": o.errors,
                    "errors_by_type": by_type,
                    "throughput": round3(o.throughput),
                    "latency_ms": {
                        "p50": l.p50, "p95": l.p95, "p99": l.p99, "p999": l.p999,
                        "max": l.max, "mean": round3(l.mean),
                    },
                }),
            );
        }
        json!({
            "schema": SCHEMA,
            "config": {
                "endpoint": i.endpoint,
                "table": i.table,
                "workload": i.workload,
                "distribution": i.distribution,
                "connections": i.connections,
                "keys": i.keys,
                "item_size": i.item_size,
                "duration_secs": i.duration_secs,
                "requests": i.requests,
                "warmup_secs": i.warmup_secs,
                "region": i.region,
                "loaded_items": i.loaded_items,
            },
            "elapsed_secs": round3(self.elapsed_secs),
            "total": {
                "requests": self.total_requests,
                "errors": self.total_errors,
                "throughput": round3(self.throughput),
            },
            "operations": ops,
        })
    }

    /// Human-readable table.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let i = &self.info;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "workload {} ({}), {} connections, {} keys, {} B items, {:.2} s measured against {}",
            i.workload,
            i.distribution,
            i.connections,
            i.keys,
            i.item_size,
            self.elapsed_secs,
            i.endpoint
        );
        let _ = writeln!(
            s,
            "{:<18} {:>10} {:>8} {:>12} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op", "count", "errors", "ops/s", "p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        for o in &self.operations {
            let l = &o.latency_ms;
            let _ = writeln!(
                s,
                "{:<18} {:>10} {:>8} {:>12.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                o.op, o.count, o.errors, o.throughput, l.p50, l.p95, l.p99, l.p999, l.max
            );
        }
        let _ = writeln!(
            s,
            "total: {} requests, {} errors, {:.1} requests/s",
            self.total_requests, self.total_errors, self.throughput
        );
        for o in &self.operations {
            for (k, n) in &o.errors_by_type {
                let _ = writeln!(s, "  {} error {}: {}", o.op, k, n);
            }
        }
        s
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RunInfo {
        RunInfo {
            endpoint: "http://x".into(),
            table: "t".into(),
            workload: "f",
            distribution: "zipfian",
            connections: 1,
            keys: 10,
            item_size: 1,
            duration_secs: Some(1.0),
            requests: None,
            warmup_secs: 0.0,
            region: "us-east-1".into(),
            loaded_items: 0,
        }
    }

    #[test]
    fn merge_and_report() {
        let mut a = Stats::default();
        let mut b = Stats::default();
        for ms in 1..=100u64 {
            a.success(OpKind::Get, Duration::from_millis(ms));
        }
        b.error(OpKind::Get, "ThrottlingException");
        b.error(OpKind::Get, "ThrottlingException");
        b.success(OpKind::Rmw, Duration::from_millis(3));
        a.merge(&b);
        let r = Report::build(info(), &a, Duration::from_secs(2));
        let g = r.op("get").unwrap();
        assert_eq!((g.count, g.errors), (102, 2));
        assert!((g.latency_ms.p50 - 50.0).abs() < 0.5, "{:?}", g.latency_ms);
        assert!((g.latency_ms.max - 100.0).abs() < 0.5);
        assert_eq!(r.total_requests, 102, "composite ops are not requests");
        assert!((r.throughput - 51.0).abs() < 1e-9);
        let j = r.to_json();
        assert_eq!(j["schema"], SCHEMA);
        assert_eq!(
            j["operations"]["get"]["errors_by_type"]["ThrottlingException"],
            2
        );
        assert_eq!(j["operations"]["read_modify_write"]["count"], 1);
        assert_eq!(j["total"]["requests"], 102);
        assert!(r.to_text().contains("ThrottlingException"));
    }
}
