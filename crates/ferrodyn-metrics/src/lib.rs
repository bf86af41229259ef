//! Ferrodyn's Prometheus metrics: one registry, rendered as Prometheus text on a scrape.
//!
//! Owns: metric names, labels, buckets and the text exposition (through `prometheus-client`),
//! plus a small reader of that text (`text`) for tests and tools.
//! Must not: know HTTP, JSON or the engine. The server records requests here and hands over
//! at scrape time what the engine knows (table item counts and sizes); nothing in the engine
//! depends on this crate.
//!
//! Invariants:
//! - The success path of a request touches only handles registered up front (one counter and
//!   one histogram per operation, found by binary search over a sorted name list): no label
//!   set is built or hashed per successful request. Errors build their label set (rare path).
//! - Labels are bounded: operation names come from the API model, outcomes from the fixed set
//!   of error types, tables from the catalog at scrape time (a dropped table disappears at the
//!   next scrape). Keys and item contents are never labels.
#![forbid(unsafe_code)]

mod scraped;
pub mod text;

pub use scraped::{HistogramScrape, StorageScrape, TableActivityScrape};

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The operation label of a request that failed before its operation was known (no or an
/// unknown `X-Amz-Target`, a bad signature, a body too large).
pub const UNKNOWN_OPERATION: &str = "unknown";
/// The outcome label of a request that succeeded.
pub const OK: &str = "ok";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: String,
    table: String,
}

/// One stream trigger's figures at scrape time (counts since the process started).
#[derive(Debug, Default, Clone)]
pub struct TriggerScrape {
    pub trigger_id: String,
    pub table: String,
    pub delivered: u64,
    pub failed: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub iterator_age_seconds: f64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: String,
}

/// Latency buckets in seconds: 100 µs to about 3.3 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 16,
    ))
}

/// The handles of one operation, registered up front.
struct OpHandles {
    ok: Counter,
    latency: Histogram,
}

/// What the server reads from the engine and the process when scraped.
#[derive(Debug, Default, Clone)]
pub struct Scrape {
    /// (table name, ItemCount, TableSizeBytes) of every table.
    pub tables: Vec<(String, u64, u64)>,
    /// Resident set size of the process, if known.
    pub resident_bytes: Option<u64>,
    /// Items deleted by TTL since the process started, if known.
    pub ttl_deleted: Option<u64>,
    /// Every stream trigger.
    pub triggers: Vec<TriggerScrape>,
    /// Every table's activity since the process started.
    pub activity: Vec<TableActivityScrape>,
    /// The storage engine's internals.
    pub storage: StorageScrape,
}

/// The server's metrics; one per server, shared by every connection.
pub struct Metrics {
    /// Operation names, sorted by (length, bytes) so that a lookup mostly compares integers;
    /// `handles[i]` belongs to `names[i]`.
    names: Vec<&'static str>,
    handles: Vec<OpHandles>,
    unknown: OpHandles,
    requests: Family<RequestLabels, Counter>,
    throttled: Family<OperationLabel, Counter>,
    connections_open: Gauge,
    connections: Counter,
    table_items: Family<TableLabel, Gauge>,
    table_bytes: Family<TableLabel, Gauge>,
    resident: Gauge,
    ttl_deleted: Gauge,
    trigger_delivered: Family<TriggerLabels, Gauge>,
    trigger_failed: Family<TriggerLabels, Gauge>,
    trigger_retried: Family<TriggerLabels, Gauge>,
    trigger_dead_lettered: Family<TriggerLabels, Gauge>,
    trigger_iterator_age: Family<TriggerLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// Figures encoded straight from the current scrape (`scraped.rs`).
    scraped: scraped::Scraped,
    /// Scrapes set the scrape-time gauges and encode under this lock, one at a time.
    registry: Mutex<Registry>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("operations", &self.names.len())
            .finish_non_exhaustive()
    }
}

/// A handle to one operation's pre-registered metrics (see [`Metrics::operation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpId(Option<usize>);

impl Metrics {
    /// Registers every metric, with per-operation handles for `operations` (duplicates are
    /// ignored).
    pub fn new(operations: impl IntoIterator<Item = &'static str>) -> Metrics {
        let mut names: Vec<&'static str> = operations.into_iter().collect();
        names.sort_unstable_by(|a, b| by_length(a, b));
        names.dedup();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<OperationLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let handles_for = |op: &str| OpHandles {
            ok: requests.get_or_create_owned(&RequestLabels {
                operation: op.to_owned(),
                outcome: OK.to_owned(),
            }),
            latency: latency.get_or_create_owned(&OperationLabel {
                operation: op.to_owned(),
            }),
        };
        let handles = names.iter().map(|op| handles_for(op)).collect();
        let unknown = handles_for(UNKNOWN_OPERATION);
        let m = Metrics {
            names,
            handles,
            unknown,
            requests,
            throttled: Family::default(),
            connections_open: Gauge::default(),
            connections: Counter::default(),
            table_items: Family::default(),
            table_bytes: Family::default(),
            resident: Gauge::default(),
            ttl_deleted: Gauge::default(),
            trigger_delivered: Family::default(),
            trigger_failed: Family::default(),
            trigger_retried: Family::default(),
            trigger_dead_lettered: Family::default(),
            trigger_iterator_age: Family::default(),
            scraped: scraped::Scraped::default(),
            registry: Mutex::new(Registry::with_prefix("ferrodyn")),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|e| e.into_inner());
            r.register(
                "requests",
                "Requests by operation and outcome (ok or the error type answered)",
                m.requests.clone(),
            );
            r.register_with_unit(
                "request_duration",
                "Time from the request's arrival to its answer, by operation",
                Unit::Seconds,
                latency,
            );
            r.register(
                "throttled_requests",
                "Requests refused by capacity enforcement (ProvisionedThroughputExceededException or ThrottlingException), by operation",
                m.throttled.clone(),
            );
            r.register(
                "connections_open",
                "Client connections open now",
                m.connections_open.clone(),
            );
            r.register(
                "connections",
                "Client connections accepted",
                m.connections.clone(),
            );
            r.register(
                "table_items",
                "Items in the table (DescribeTable's ItemCount), read at scrape time",
                m.table_items.clone(),
            );
            r.register_with_unit(
                "table_size",
                "Size of the table's items (DescribeTable's TableSizeBytes), read at scrape time",
                Unit::Bytes,
                m.table_bytes.clone(),
            );
            r.register_with_unit(
                "process_resident_memory",
                "Resident set size of the server process",
                Unit::Bytes,
                m.resident.clone(),
            );
            r.register(
                "ttl_deleted_items",
                "Items deleted by TTL sweeps since the process started",
                m.ttl_deleted.clone(),
            );
            r.register(
                "trigger_delivered_records",
                "Stream records acknowledged by a trigger's target since the process started",
                m.trigger_delivered.clone(),
            );
            r.register(
                "trigger_failed_batches",
                "Batches a trigger's target failed (error status, timeout, partial batch response) since the process started",
                m.trigger_failed.clone(),
            );
            r.register(
                "trigger_retried_batches",
                "Batches a trigger sent again (retries and bisected halves) since the process started",
                m.trigger_retried.clone(),
            );
            r.register(
                "trigger_dead_lettered_records",
                "Records a trigger handed to its on-failure destination (or dropped without one) since the process started",
                m.trigger_dead_lettered.clone(),
            );
            r.register_with_unit(
                "trigger_iterator_age",
                "Age of the last record a trigger delivered, when it was delivered",
                Unit::Seconds,
                m.trigger_iterator_age.clone(),
            );
            r.register_collector(Box::new(m.scraped.clone()));
        }
        m
    }

    /// The handle of an operation (an unknown name gets the `unknown` operation's handle).
    pub fn operation(&self, name: &str) -> OpId {
        OpId(self.names.binary_search_by(|n| by_length(n, name)).ok())
    }

    fn handles(&self, op: OpId) -> &OpHandles {
        op.0.and_then(|i| self.handles.get(i))
            .unwrap_or(&self.unknown)
    }

    /// The name of an operation handle (`unknown` for the unknown operation).
    pub fn operation_name(&self, op: OpId) -> &'static str {
        op.0.and_then(|i| self.names.get(i).copied())
            .unwrap_or(UNKNOWN_OPERATION)
    }

    /// Records one answered request: `outcome` is `Ok(())` or the error type answered.
    pub fn record(&self, op: OpId, outcome: Result<(), &str>, seconds: f64) {
        let h = self.handles(op);
        h.latency.observe(seconds);
        match outcome {
            Ok(()) => {
                h.ok.inc();
            }
            Err(error_type) => {
                let operation = self.operation_name(op).to_owned();
                if matches!(
                    error_type,
                    "ProvisionedThroughputExceededException" | "ThrottlingException"
                ) {
                    self.throttled
                        .get_or_create(&OperationLabel {
                            operation: operation.clone(),
                        })
                        .inc();
                }
                self.requests
                    .get_or_create(&RequestLabels {
                        operation,
                        outcome: error_type.to_owned(),
                    })
                    .inc();
            }
        }
    }

    /// A client connection was accepted; the returned guard counts it as open until dropped.
    pub fn connection(&self) -> ConnectionGuard<'_> {
        self.connections.inc();
        self.connections_open.inc();
        ConnectionGuard(self)
    }

    /// Renders every metric as Prometheus text (version 0.0.4 / OpenMetrics-compatible),
    /// after setting the scrape-time figures from `scrape`.
    pub fn render(&self, scrape: &Scrape) -> String {
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        self.table_items.clear();
        self.table_bytes.clear();
        for (table, items, bytes) in &scrape.tables {
            let label = TableLabel {
                table: table.clone(),
            };
            self.table_items
                .get_or_create(&label)
                .set(i64::try_from(*items).unwrap_or(i64::MAX));
            self.table_bytes
                .get_or_create(&label)
                .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
        }
        if let Some(rss) = scrape.resident_bytes {
            self.resident.set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        if let Some(n) = scrape.ttl_deleted {
            self.ttl_deleted.set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        for f in [
            &self.trigger_delivered,
            &self.trigger_failed,
            &self.trigger_retried,
            &self.trigger_dead_lettered,
        ] {
            f.clear();
        }
        self.trigger_iterator_age.clear();
        for t in &scrape.triggers {
            let label = TriggerLabels {
                trigger: t.trigger_id.clone(),
                table: t.table.clone(),
            };
            let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
            self.trigger_delivered
                .get_or_create(&label)
                .set(n(t.delivered));
            self.trigger_failed.get_or_create(&label).set(n(t.failed));
            self.trigger_retried.get_or_create(&label).set(n(t.retried));
            self.trigger_dead_lettered
                .get_or_create(&label)
                .set(n(t.dead_lettered));
            self.trigger_iterator_age
                .get_or_create(&label)
                .set(t.iterator_age_seconds);
        }
        {
            let mut cur = self.scraped.0.lock().unwrap_or_else(|e| e.into_inner());
            cur.activity = scrape.activity.clone();
            cur.storage = scrape.storage.clone();
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// Length first, then bytes: a total order that is cheap to search.
fn by_length(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// Counts a connection as open while alive.
pub struct ConnectionGuard<'a>(&'a Metrics);

impl Drop for ConnectionGuard<'_> {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

/// The resident set size of this process from `/proc/self/statm` (Linux), in bytes.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // The page size is 4 KiB on every platform Ferrodyn is built for (x86-64, aarch64 Linux
    // with 4 KiB pages); statm counts pages.
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_operation_and_outcome() {
        let m = Metrics::new(["PutItem", "GetItem"]);
        let put = m.operation("PutItem");
        let get = m.operation("GetItem");
        for _ in 0..3 {
            m.record(put, Ok(()), 0.001);
        }
        m.record(get, Err("ResourceNotFoundException"), 0.002);
        m.record(m.operation("Nope"), Err("UnknownOperationException"), 0.0);
        let text = m.render(&Scrape {
            tables: vec![("T".into(), 5, 120)],
            resident_bytes: Some(4096),
            ttl_deleted: None,
            triggers: vec![TriggerScrape {
                trigger_id: "t1".into(),
                table: "T".into(),
                delivered: 7,
                failed: 2,
                retried: 1,
                dead_lettered: 1,
                iterator_age_seconds: 0.5,
            }],
            ..Scrape::default()
        });
        let s = text::parse(&text).unwrap();
        let v = |name: &str, labels: &[(&str, &str)]| text::value(&s, name, labels);
        let trigger = [("trigger", "t1"), ("table", "T")];
        assert_eq!(v("ferrodyn_trigger_delivered_records", &trigger), Some(7.0));
        assert_eq!(v("ferrodyn_trigger_failed_batches", &trigger), Some(2.0));
        assert_eq!(v("ferrodyn_trigger_retried_batches", &trigger), Some(1.0));
        assert_eq!(
            v("ferrodyn_trigger_dead_lettered_records", &trigger),
            Some(1.0)
        );
        assert_eq!(
            v("ferrodyn_trigger_iterator_age_seconds", &trigger),
            Some(0.5)
        );
        assert_eq!(
            v(
                "ferrodyn_requests_total",
                &[("operation", "PutItem"), ("outcome", "ok")]
            ),
            Some(3.0)
        );
        assert_eq!(
            v(
                "ferrodyn_requests_total",
                &[
                    ("operation", "GetItem"),
                    ("outcome", "ResourceNotFoundException")
                ]
            ),
            Some(1.0)
        );
        assert_eq!(
            v(
                "ferrodyn_requests_total",
                &[
                    ("operation", "unknown"),
                    ("outcome", "UnknownOperationException")
                ]
            ),
            Some(1.0)
        );
        assert_eq!(
            v(
                "ferrodyn_request_duration_seconds_count",
                &[("operation", "PutItem")]
            ),
            Some(3.0)
        );
        assert_eq!(v("ferrodyn_table_items", &[("table", "T")]), Some(5.0));
        assert_eq!(
            v("ferrodyn_table_size_bytes", &[("table", "T")]),
            Some(120.0)
        );
        assert_eq!(
            v("ferrodyn_process_resident_memory_bytes", &[]),
            Some(4096.0)
        );
        // A table gone from the catalog is gone from the next scrape.
        let s = text::parse(&m.render(&Scrape::default())).unwrap();
        assert_eq!(
            text::value(&s, "ferrodyn_table_items", &[("table", "T")]),
            None
        );
    }

    #[test]
    fn every_registered_operation_is_found() {
        let ops = [
            "PutItem",
            "GetItem",
            "Query",
            "Scan",
            "TransactWriteItems",
            "DeleteItem",
        ];
        let m = Metrics::new(ops);
        for op in ops {
            assert_eq!(m.operation_name(m.operation(op)), op);
        }
        assert_eq!(m.operation("Putitem"), OpId(None));
        assert_eq!(m.operation_name(m.operation("")), UNKNOWN_OPERATION);
    }

    #[test]
    fn throttles_are_counted_apart() {
        let m = Metrics::new(["GetItem"]);
        m.record(
            m.operation("GetItem"),
            Err("ProvisionedThroughputExceededException"),
            0.0,
        );
        let s = text::parse(&m.render(&Scrape::default())).unwrap();
        assert_eq!(
            text::value(
                &s,
                "ferrodyn_throttled_requests_total",
                &[("operation", "GetItem")]
            ),
            Some(1.0)
        );
    }

    #[test]
    fn connections_open_and_total() {
        let m = Metrics::new([]);
        let a = m.connection();
        {
            let _b = m.connection();
        }
        let s = text::parse(&m.render(&Scrape::default())).unwrap();
        assert_eq!(text::value(&s, "ferrodyn_connections_open", &[]), Some(1.0));
        assert_eq!(
            text::value(&s, "ferrodyn_connections_total", &[]),
            Some(2.0)
        );
        drop(a);
    }

    #[test]
    fn scraped_figures_are_encoded_and_absent_ones_omitted() {
        let m = Metrics::new([]);
        let scrape = Scrape {
            activity: vec![TableActivityScrape {
                table: "T".into(),
                read_items: 3,
                read_bytes: 300,
                written_items: 2,
                written_bytes: 200,
                read_units: 1.5,
                write_units: 4.0,
                indexes: vec![("ix".into(), 0.5, 2.0)],
                stream_records: 2,
                stream_lag_seconds: Some(7.5),
            }],
            storage: StorageScrape {
                memtable_bytes: Some(1024),
                compactions: Some(4),
                read_cache_hits: Some(3),
                read_cache_misses: Some(1),
                fsync_seconds: Some(HistogramScrape {
                    bounds: vec![0.001, 0.01],
                    counts: vec![2, 1, 1],
                    sum: 0.5,
                }),
                ..StorageScrape::default()
            },
            ..Scrape::default()
        };
        let s = text::parse(&m.render(&scrape)).unwrap();
        let v = |name: &str, labels: &[(&str, &str)]| text::value(&s, name, labels);
        let t = [("table", "T")];
        let ix = [("table", "T"), ("index", "ix")];
        assert_eq!(v("ferrodyn_table_read_items_total", &t), Some(3.0));
        assert_eq!(v("ferrodyn_table_read_bytes_total", &t), Some(300.0));
        assert_eq!(v("ferrodyn_table_written_items_total", &t), Some(2.0));
        assert_eq!(v("ferrodyn_table_written_bytes_total", &t), Some(200.0));
        assert_eq!(
            v("ferrodyn_table_consumed_read_capacity_units_total", &t),
            Some(1.5)
        );
        assert_eq!(
            v("ferrodyn_table_consumed_write_capacity_units_total", &t),
            Some(4.0)
        );
        assert_eq!(
            v("ferrodyn_index_consumed_read_capacity_units_total", &ix),
            Some(0.5)
        );
        assert_eq!(
            v("ferrodyn_index_consumed_write_capacity_units_total", &ix),
            Some(2.0)
        );
        assert_eq!(v("ferrodyn_stream_records_total", &t), Some(2.0));
        assert_eq!(v("ferrodyn_stream_consumer_lag_seconds", &t), Some(7.5));
        assert_eq!(v("ferrodyn_storage_memtable_bytes", &[]), Some(1024.0));
        assert_eq!(v("ferrodyn_storage_compactions_total", &[]), Some(4.0));
        assert_eq!(v("ferrodyn_storage_read_cache_hits_total", &[]), Some(3.0));
        assert_eq!(v("ferrodyn_storage_read_cache_hit_ratio", &[]), Some(0.75));
        // Buckets are cumulative, the last one unbounded.
        let b = |le: &str| {
            v(
                "ferrodyn_storage_fsync_duration_seconds_bucket",
                &[("le", le)],
            )
        };
        assert_eq!(b("0.001"), Some(2.0));
        assert_eq!(b("0.01"), Some(3.0));
        assert_eq!(b("+Inf"), Some(4.0));
        assert_eq!(
            v("ferrodyn_storage_fsync_duration_seconds_count", &[]),
            Some(4.0)
        );
        assert_eq!(
            v("ferrodyn_storage_fsync_duration_seconds_sum", &[]),
            Some(0.5)
        );
        // What the engine does not have is not exported.
        assert_eq!(v("ferrodyn_storage_journals", &[]), None);
        assert_eq!(v("ferrodyn_storage_group_commit_batches_count", &[]), None);
        // A table gone from the catalog is gone from the next scrape.
        let s = text::parse(&m.render(&Scrape::default())).unwrap();
        assert_eq!(text::value(&s, "ferrodyn_table_read_items_total", &t), None);
        assert_eq!(
            text::value(&s, "ferrodyn_storage_memtable_bytes", &[]),
            None
        );
    }

    #[test]
    fn resident_memory_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(resident_bytes().is_some_and(|b| b > 0));
        }
    }
}
