//! Figures the server reads from the engine at scrape time and that only grow while the
//! process runs (per-table activity, storage internals): encoded straight from the scrape as
//! counters, gauges and histograms, so nothing is registered per table and nothing is kept
//! between scrapes (a dropped table disappears at the next one).

use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// One table's activity (counts since the process started; see docs/operations.md).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TableActivityScrape {
    pub table: String,
    pub read_items: u64,
    pub read_bytes: u64,
    pub written_items: u64,
    pub written_bytes: u64,
    /// Capacity units consumed by the table itself.
    pub read_units: f64,
    pub write_units: f64,
    /// (index name, read units, write units) of each index used.
    pub indexes: Vec<(String, f64, f64)>,
    pub stream_records: u64,
    /// `None`: the table has no enabled stream (or lag is not followed on this storage).
    pub stream_lag_seconds: Option<f64>,
}

/// A histogram read at scrape time: `counts[i]` observations at most `bounds[i]`,
/// `counts[bounds.len()]` above the last bound.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct HistogramScrape {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum: f64,
}

/// The storage engine's internals; `None`: does not apply to this engine (not exported).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StorageScrape {
    pub memtable_bytes: Option<u64>,
    pub sealed_memtables: Option<u64>,
    pub pending_flushes: Option<u64>,
    pub journals: Option<u64>,
    pub journal_bytes: Option<u64>,
    pub active_compactions: Option<u64>,
    pub compactions: Option<u64>,
    pub segments: Option<u64>,
    pub block_cache_bytes: Option<u64>,
    pub block_cache_capacity_bytes: Option<u64>,
    pub read_cache_hits: Option<u64>,
    pub read_cache_misses: Option<u64>,
    pub read_cache_bytes: Option<u64>,
    pub fsync_seconds: Option<HistogramScrape>,
    pub group_commit_batches: Option<HistogramScrape>,
}

#[derive(Debug, Default)]
pub(crate) struct Current {
    pub(crate) activity: Vec<TableActivityScrape>,
    pub(crate) storage: StorageScrape,
}

/// The collector registered once; `render` stores the scrape's figures in it before encoding.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scraped(pub(crate) Arc<Mutex<Current>>);

type Labels<'a> = Vec<(&'static str, &'a str)>;

fn family<V>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ty: MetricType,
    rows: &[(Labels<'_>, V)],
    mut put: impl FnMut(&mut prometheus_client::encoding::MetricEncoder<'_>, &V) -> std::fmt::Result,
) -> std::fmt::Result {
    let mut m = encoder.encode_descriptor(name, help, None, ty)?;
    for (labels, v) in rows {
        let mut f = m.encode_family(labels)?;
        put(&mut f, v)?;
    }
    Ok(())
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels<'_>, f64)],
) -> std::fmt::Result {
    family(encoder, name, help, MetricType::Counter, rows, |f, v| {
        f.encode_counter::<NoLabelSet, _, u64>(v, None)
    })
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(Labels<'_>, f64)],
) -> std::fmt::Result {
    family(encoder, name, help, MetricType::Gauge, rows, |f, v| {
        f.encode_gauge(v)
    })
}

fn histogram(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    h: &HistogramScrape,
) -> std::fmt::Result {
    let mut buckets: Vec<(f64, u64)> = h
        .bounds
        .iter()
        .copied()
        .zip(h.counts.iter().copied())
        .collect();
    buckets.push((f64::MAX, h.counts.get(h.bounds.len()).copied().unwrap_or(0)));
    let count = h.counts.iter().sum();
    let m = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
    struct H<'a>(f64, u64, &'a [(f64, u64)]);
    impl EncodeMetric for H<'_> {
        fn encode(
            &self,
            mut e: prometheus_client::encoding::MetricEncoder<'_>,
        ) -> std::fmt::Result {
            e.encode_histogram::<NoLabelSet>(self.0, self.1, self.2, None)
        }
        fn metric_type(&self) -> MetricType {
            MetricType::Histogram
        }
    }
    H(h.sum, count, &buckets).encode(m)
}

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let cur = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let e = &mut encoder;
        let per_table = |f: fn(&TableActivityScrape) -> f64| -> Vec<(Labels<'_>, f64)> {
            cur.activity
                .iter()
                .map(|t| (vec![("table", t.table.as_str())], f(t)))
                .collect()
        };
        counter(
            e,
            "table_read_items",
            "Items read from the table and its indexes: returned by GetItem, BatchGetItem and TransactGetItems, examined by Query and Scan (ScannedCount), checked by a transaction's ConditionCheck",
            &per_table(|t| t.read_items as f64),
        )?;
        counter(
            e,
            "table_read_bytes",
            "Bytes of the items counted by ferrodyn_table_read_items_total, by DynamoDB's item size rules",
            &per_table(|t| t.read_bytes as f64),
        )?;
        counter(
            e,
            "table_written_items",
            "Items put, updated or deleted in the table",
            &per_table(|t| t.written_items as f64),
        )?;
        counter(
            e,
            "table_written_bytes",
            "Bytes written: the new item's size for a put or update, the removed item's for a delete",
            &per_table(|t| t.written_bytes as f64),
        )?;
        counter(
            e,
            "table_consumed_read_capacity_units",
            "Read capacity units consumed by the table itself, as ConsumedCapacity reports them (index shares apart)",
            &per_table(|t| t.read_units),
        )?;
        counter(
            e,
            "table_consumed_write_capacity_units",
            "Write capacity units consumed by the table itself, as ConsumedCapacity reports them (index shares apart)",
            &per_table(|t| t.write_units),
        )?;
        let per_index = |read: bool| -> Vec<(Labels<'_>, f64)> {
            cur.activity
                .iter()
                .flat_map(|t| {
                    t.indexes.iter().map(move |(ix, r, w)| {
                        (
                            vec![("table", t.table.as_str()), ("index", ix.as_str())],
                            if read { *r } else { *w },
                        )
                    })
                })
                .collect()
        };
        counter(
            e,
            "index_consumed_read_capacity_units",
            "Read capacity units consumed by a secondary index (Query and Scan with IndexName)",
            &per_index(true),
        )?;
        counter(
            e,
            "index_consumed_write_capacity_units",
            "Write capacity units consumed by a secondary index (its share of the table's writes)",
            &per_index(false),
        )?;
        counter(
            e,
            "stream_records",
            "Stream records written for the table's changes",
            &per_table(|t| t.stream_records as f64),
        )?;
        let lag: Vec<(Labels<'_>, f64)> = cur
            .activity
            .iter()
            .filter_map(|t| {
                t.stream_lag_seconds
                    .map(|l| (vec![("table", t.table.as_str())], l))
            })
            .collect();
        gauge(
            e,
            "stream_consumer_lag_seconds",
            "Age of the oldest stream record that no GetRecords has read yet (0: all read), tables with an enabled stream",
            &lag,
        )?;

        let s = &cur.storage;
        let one = |v: Option<u64>| -> Vec<(Labels<'static>, f64)> {
            v.map(|v| (Vec::new(), v as f64)).into_iter().collect()
        };
        let gauges: [(&str, &str, Option<u64>); 9] = [
            (
                "storage_memtable_bytes",
                "Bytes held in memtables (active and sealed)",
                s.memtable_bytes,
            ),
            (
                "storage_sealed_memtables",
                "Sealed memtables waiting to be flushed",
                s.sealed_memtables,
            ),
            (
                "storage_pending_flushes",
                "Memtable flushes queued",
                s.pending_flushes,
            ),
            ("storage_journals", "Journal files on disk", s.journals),
            (
                "storage_journal_bytes",
                "Bytes of the journal files",
                s.journal_bytes,
            ),
            (
                "storage_active_compactions",
                "Compactions running now",
                s.active_compactions,
            ),
            (
                "storage_segments",
                "Disk segments (sorted table files) over all keyspaces",
                s.segments,
            ),
            (
                "storage_block_cache_bytes",
                "Bytes in the storage engine's block cache",
                s.block_cache_bytes,
            ),
            (
                "storage_block_cache_capacity_bytes",
                "Capacity of the storage engine's block cache",
                s.block_cache_capacity_bytes,
            ),
        ];
        for (name, help, v) in gauges {
            if v.is_some() {
                gauge(e, name, help, &one(v))?;
            }
        }
        if s.compactions.is_some() {
            counter(
                e,
                "storage_compactions",
                "Compactions finished",
                &one(s.compactions),
            )?;
        }
        if let (Some(h), Some(m)) = (s.read_cache_hits, s.read_cache_misses) {
            counter(
                e,
                "storage_read_cache_hits",
                "Reads the read cache answered from memory",
                &one(Some(h)),
            )?;
            counter(
                e,
                "storage_read_cache_misses",
                "Cacheable reads the read cache passed to the storage engine",
                &one(Some(m)),
            )?;
            let ratio = if h + m == 0 {
                0.0
            } else {
                h as f64 / (h + m) as f64
            };
            gauge(
                e,
                "storage_read_cache_hit_ratio",
                "Hits over hits and misses of the read cache since the process started",
                &[(Vec::new(), ratio)],
            )?;
        }
        if s.read_cache_bytes.is_some() {
            gauge(
                e,
                "storage_read_cache_bytes",
                "Bytes held by the read cache",
                &one(s.read_cache_bytes),
            )?;
        }
        if let Some(h) = &s.fsync_seconds {
            histogram(
                e,
                "storage_fsync_duration_seconds",
                "Time each group-commit journal fsync took",
                h,
            )?;
        }
        if let Some(h) = &s.group_commit_batches {
            histogram(
                e,
                "storage_group_commit_batches",
                "Durable write batches each group-commit fsync covered",
                h,
            )?;
        }
        Ok(())
    }
}
