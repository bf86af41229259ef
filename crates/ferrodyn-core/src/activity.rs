//! What each table did since the process started, for the server's metrics: items and bytes
//! read and written, capacity consumed by the table and by each index, stream records written
//! and how far the stream's readers are behind.
//!
//! Owns: [`Activity`], one per table in its runtime state ([`crate::Counters::activity`], kept
//! across definition changes like the other counters), and the scrape-time view
//! [`TableActivity`] ([`Engine::table_activity`]).
//!
//! Invariants:
//! - Figures are recorded where the operation already holds them (the item sizes it charges
//!   capacity on, its table's `Arc`): no extra read, no lookup by name, relaxed atomics only.
//!   Index shares take a small lock, and only for operations that touch an index.
//! - Capacity is what the operation's ConsumedCapacity reports with INDEXES (whether or not the
//!   client asked for it), kept in half units: every charge is a multiple of 0.5, so sums are
//!   exact.
//! - Only successful operations count (a failed condition, a cancelled transaction, a throttled
//!   request count nothing). Work the service does by itself (TTL deletions, index backfills,
//!   restores, imports) is not counted.
//! - Per process: on storage shared by several nodes each node counts what it served.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;

use crate::capacity::IndexUnits;
use crate::streams::LANES;
use crate::{Engine, Table};

/// A table's figures since the process started (see the module docs).
#[derive(Debug, Default)]
pub struct Activity {
    read_items: AtomicU64,
    read_bytes: AtomicU64,
    written_items: AtomicU64,
    written_bytes: AtomicU64,
    /// The table's own capacity, in half units.
    read_halves: AtomicU64,
    write_halves: AtomicU64,
    /// Each index's share: (name, read half units, write half units), in order of first use.
    indexes: Mutex<Vec<(String, u64, u64)>>,
    stream_records: AtomicU64,
    /// Per stream lane: the highest sequence number written and the first not yet read by any
    /// GetRecords (0: none unread).
    lanes: [Lane; LANES],
}

#[derive(Debug, Default)]
struct Lane {
    written: AtomicU64,
    unread_since: AtomicU64,
}

fn halves(units: f64) -> u64 {
    if units.is_finite() && units > 0.0 {
        (units * 2.0).round() as u64
    } else {
        0
    }
}

impl Activity {
    /// `items` items of `bytes` bytes in all were read (examined) from the table or an index.
    pub(crate) fn read(&self, items: u64, bytes: u64) {
        if items > 0 {
            self.read_items.fetch_add(items, Relaxed);
            self.read_bytes.fetch_add(bytes, Relaxed);
        }
    }

    /// A read consumed `units` read capacity of the table (`index: None`) or of an index.
    pub(crate) fn read_units(&self, index: Option<&str>, units: f64) {
        match index {
            None => {
                self.read_halves.fetch_add(halves(units), Relaxed);
            }
            Some(ix) => self.index_units(ix, halves(units), 0),
        }
    }

    /// An item of `bytes` bytes was written (put, updated or deleted; for a delete, the size
    /// of the item removed).
    pub(crate) fn wrote(&self, bytes: usize) {
        self.written_items.fetch_add(1, Relaxed);
        self.written_bytes.fetch_add(bytes as u64, Relaxed);
    }

    /// A write consumed `table_units` write capacity of the table and `indexes` of its indexes.
    pub(crate) fn write_units(&self, table_units: f64, indexes: &[IndexUnits]) {
        self.write_halves.fetch_add(halves(table_units), Relaxed);
        for ix in indexes {
            self.index_units(&ix.index, 0, halves(ix.units));
        }
    }

    fn index_units(&self, index: &str, read: u64, write: u64) {
        let mut ixs = self.indexes.lock();
        match ixs.iter_mut().find(|(n, _, _)| n == index) {
            Some((_, r, w)) => {
                *r += read;
                *w += write;
            }
            None => ixs.push((index.to_string(), read, write)),
        }
    }

    /// A stream record with sequence number `seq` was staged in `lane` (`seq` 0: numbered
    /// later, by a shared engine; it counts, but lag is not followed).
    pub(crate) fn stream_record(&self, lane: u8, seq: u64) {
        self.stream_records.fetch_add(1, Relaxed);
        if let Some(l) = self.lanes.get(lane as usize).filter(|_| seq > 0) {
            l.written.fetch_max(seq, Relaxed);
            let _ = l.unread_since.compare_exchange(0, seq, Relaxed, Relaxed);
        }
    }

    /// A GetRecords answered `lane` up to sequence number `after` (the last record it returned,
    /// or where its iterator stood); `next` is the first record it left unread, when known.
    pub(crate) fn stream_read(&self, lane: u8, after: u64, next: Option<u64>) {
        let Some(l) = self.lanes.get(lane as usize) else {
            return;
        };
        let since = l.unread_since.load(Relaxed);
        if since == 0 || since > after {
            // Nothing unread, or this reader is behind what another one already read.
            return;
        }
        if l.written.load(Relaxed) > after {
            let first = next.unwrap_or(after + 1);
            let _ = l
                .unread_since
                .compare_exchange(since, first, Relaxed, Relaxed);
        } else if l
            .unread_since
            .compare_exchange(since, 0, Relaxed, Relaxed)
            .is_ok()
            && l.written.load(Relaxed) > after
        {
            // A record written meanwhile is unread again.
            let _ = l
                .unread_since
                .compare_exchange(0, after + 1, Relaxed, Relaxed);
        }
    }

    /// Age in seconds (at `now`, seconds since the epoch) of the oldest record no GetRecords has
    /// read, over every lane; 0 when every record was read.
    fn lag_seconds(&self, now: f64) -> f64 {
        self.lanes
            .iter()
            .map(|l| l.unread_since.load(Relaxed))
            .filter(|&s| s > 0)
            // Sequence numbers are the write's wall clock in microseconds (or just above it).
            .map(|s| (now - s as f64 / 1_000_000.0).max(0.0))
            .fold(0.0, f64::max)
    }
}

/// One table's figures at scrape time (counts since the process started).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableActivity {
    pub table: String,
    /// Items read: returned by GetItem, BatchGetItem and TransactGetItems, examined by Query
    /// and Scan (their ScannedCount), checked by a TransactWriteItems ConditionCheck.
    pub read_items: u64,
    /// Their sizes by DynamoDB's item size rules.
    pub read_bytes: u64,
    /// Items put, updated or deleted (a delete of a missing item writes nothing).
    pub written_items: u64,
    /// The new item's size for a put or update, the removed item's for a delete.
    pub written_bytes: u64,
    /// Capacity consumed by the table itself (index shares apart).
    pub read_units: f64,
    pub write_units: f64,
    /// Each index's share: (index name, read units, write units).
    pub indexes: Vec<(String, f64, f64)>,
    /// Stream records written (0 for a table without a stream).
    pub stream_records: u64,
    /// Seconds since the oldest stream record no GetRecords has read yet was written; `None`
    /// for a table without an enabled stream.
    pub stream_lag_seconds: Option<f64>,
}

impl Engine {
    /// Every table's activity since the process started, sorted by table name.
    pub fn table_activity(&self) -> Vec<TableActivity> {
        let tables: Vec<std::sync::Arc<Table>> = self.tables.read().values().cloned().collect();
        let now = crate::now_epoch();
        let mut out: Vec<TableActivity> = tables
            .iter()
            .map(|t| {
                let a = &t.counters.activity;
                let streaming = t.def.stream.as_ref().is_some_and(|s| s.enabled);
                TableActivity {
                    table: t.def.name.clone(),
                    read_items: a.read_items.load(Relaxed),
                    read_bytes: a.read_bytes.load(Relaxed),
                    written_items: a.written_items.load(Relaxed),
                    written_bytes: a.written_bytes.load(Relaxed),
                    read_units: a.read_halves.load(Relaxed) as f64 / 2.0,
                    write_units: a.write_halves.load(Relaxed) as f64 / 2.0,
                    indexes: a
                        .indexes
                        .lock()
                        .iter()
                        .map(|(n, r, w)| (n.clone(), *r as f64 / 2.0, *w as f64 / 2.0))
                        .collect(),
                    stream_records: a.stream_records.load(Relaxed),
                    stream_lag_seconds: (streaming && !self.shared).then(|| a.lag_seconds(now)),
                }
            })
            .collect();
        out.sort_unstable_by(|a, b| a.table.cmp(&b.table));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_adds_in_half_units() {
        let a = Activity::default();
        a.read_units(None, 0.5);
        a.read_units(None, 1.5);
        a.read_units(Some("gsi"), 0.5);
        a.write_units(
            2.0,
            &[IndexUnits {
                index: "gsi".into(),
                global: true,
                units: 1.0,
            }],
        );
        assert_eq!(a.read_halves.load(Relaxed), 4);
        assert_eq!(a.write_halves.load(Relaxed), 4);
        assert_eq!(*a.indexes.lock(), vec![("gsi".to_string(), 1, 2)]);
    }

    #[test]
    fn lag_follows_the_oldest_unread_record() {
        let a = Activity::default();
        let us = |s: f64| (s * 1_000_000.0) as u64;
        assert_eq!(a.lag_seconds(100.0), 0.0);
        a.stream_record(0, us(10.0));
        a.stream_record(0, us(20.0));
        a.stream_record(1, us(30.0));
        assert_eq!(a.stream_records.load(Relaxed), 3);
        // Lane 0's first record is the oldest unread.
        assert_eq!(a.lag_seconds(100.0), 90.0);
        // Lane 0 read up to its first record; its second is now the oldest there.
        a.stream_read(0, us(10.0), Some(us(20.0)));
        assert_eq!(a.lag_seconds(100.0), 80.0);
        // Lane 0 read to its end: lane 1 is left.
        a.stream_read(0, us(20.0), None);
        assert_eq!(a.lag_seconds(100.0), 70.0);
        // A reader behind the others changes nothing.
        a.stream_read(1, 0, Some(us(30.0)));
        assert_eq!(a.lag_seconds(100.0), 70.0);
        a.stream_read(1, us(30.0), None);
        assert_eq!(a.lag_seconds(100.0), 0.0);
        // A new record is unread again.
        a.stream_record(1, us(40.0));
        assert_eq!(a.lag_seconds(100.0), 60.0);
    }
}
