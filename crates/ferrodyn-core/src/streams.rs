//! DynamoDB Streams: change records written atomically with the items they describe, the shard
//! layout, and the read side (ListStreams, DescribeStream, GetShardIterator, GetRecords).
//!
//! Owns the `streams` keyspace, which holds three kinds of entries (`sk` is the stream key,
//! `{table id}/{stream label}`, length-prefixed):
//! - `m ++ sk`: the stream's metadata (JSON [`Meta`]), kept until 24 hours after it is disabled;
//! - `s ++ sk ++ lane ++ start`: one shard (JSON [`ShardRec`]); `start` is its first sequence
//!   number, so the shard id (`shardId-{start:020}-{lane:08}`) is stable and sorts by age;
//! - `r ++ sk ++ lane ++ start ++ seq`: one change record of that shard.
//!
//! Invariants:
//! - a change record and the shard entry it opens are staged by [`stage`] into the same storage
//!   batch as the item change, so a record exists iff its item change was committed;
//! - sequence numbers of one table only grow (`max(last + 1, now_ms * 1000)`, and at open the
//!   counter resumes after the last stored record), also across restarts;
//! - a sequence number is staged while the writer holds the item's lock stripe and that stripe is
//!   held until the batch is written, so once a reader has taken (and released) the stripe of
//!   every sequence number allocated before it looked, all of those are committed or abandoned.
//!   Readers serve records only up to that watermark: a consumer never skips a record that is
//!   committed later with a smaller sequence number;
//! - an item is always in the lane picked by its partition hash, and a lane's shards follow each
//!   other (the child names its parent), so records of one item are in order along the lineage.
#![forbid(unsafe_code)]

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use ferrodyn_model::{Error, Item};
use ferrodyn_storage::{prefix_end, Transaction, WriteBatch};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::table::{KeyAttr, TableDef};
use crate::{itemcodec, now_epoch, storage_err, Engine, Table};

/// Keyspace of stream metadata, shards and records.
pub(crate) const STREAMS: &str = "streams";
/// Shards open at a time per stream (items map to one by partition hash).
pub const LANES: usize = 4;
/// A shard is closed (and a child opened) after this many records...
const ROLL_RECORDS: u64 = 100_000;
/// ... or once it is this old (seconds), at its next record.
const ROLL_SECS: f64 = 4.0 * 3600.0;
/// Records (and disabled streams) are kept this long (seconds).
pub const RETENTION_SECS: f64 = 24.0 * 3600.0;
/// Shard iterators expire after this long (seconds).
const ITERATOR_TTL_SECS: f64 = 15.0 * 60.0;
const MAX_RECORDS_BYTES: usize = 1 << 20;

thread_local! {
    /// Set while the TTL worker deletes expired items: their records name the service.
    static SERVICE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with change records attributed to the DynamoDB service (TTL deletions).
pub(crate) fn as_service<T>(f: impl FnOnce() -> T) -> T {
    SERVICE.with(|c| c.set(true));
    let out = f();
    SERVICE.with(|c| c.set(false));
    out
}

/// Per-table stream state, shared by every incarnation of the table's definition.
#[derive(Debug, Default)]
pub struct StreamState {
    inner: Mutex<StateInner>,
}

impl StreamState {
    /// A state whose shards close after `roll_records` records (and after [`ROLL_SECS`]).
    pub fn with_shard_records(roll_records: u64) -> StreamState {
        let st = StreamState::default();
        st.inner.lock().roll_records = roll_records;
        st
    }
}

#[derive(Debug, Default)]
struct StateInner {
    /// The stream whose lanes are described below.
    label: Option<String>,
    /// Lower bound of the next sequence number.
    next: u64,
    lanes: [Option<Lane>; LANES],
    /// Staged but possibly uncommitted sequence numbers, with the storage key of their item.
    in_flight: BTreeMap<u64, Vec<u8>>,
    /// Records after which a shard is closed (0: the default, [`ROLL_RECORDS`]).
    roll_records: u64,
    /// The storage generation the lanes were opened in: a reopen of the store may have lost
    /// the shard record of an open lane, so lanes staged against a newer store start afresh.
    generation: u64,
}

#[derive(Debug, Clone)]
struct Lane {
    start: u64,
    count: u64,
    opened: f64,
}

impl StateInner {
    fn allocate(&mut self, now: f64) -> u64 {
        let clock = ((now * 1000.0) as u64).saturating_mul(1000);
        let seq = self.next.max(clock).max(1);
        self.next = seq + 1;
        seq
    }
    fn reset_for(&mut self, label: &str) {
        if self.label.as_deref() != Some(label) {
            self.label = Some(label.to_string());
            self.lanes = Default::default();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    KeysOnly,
    NewImage,
    OldImage,
    NewAndOld,
}

impl View {
    fn parse(s: &str) -> View {
        match s {
            "NEW_IMAGE" => View::NewImage,
            "OLD_IMAGE" => View::OldImage,
            "NEW_AND_OLD_IMAGES" => View::NewAndOld,
            _ => View::KeysOnly,
        }
    }
}

/// Persisted description of one stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    arn: String,
    stream_key: String,
    table_name: String,
    table_id: String,
    label: String,
    view_type: String,
    hash_key: KeyAttr,
    range_key: Option<KeyAttr>,
    created: f64,
    disabled: Option<f64>,
}

/// Persisted description of one shard.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ShardRec {
    parent: Option<String>,
    created: f64,
}

/// Engine-wide stream catalog (by ARN), loaded at open and kept in step with table definitions.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    metas: Mutex<BTreeMap<String, Meta>>,
}

fn stream_key(def: &TableDef, label: &str) -> String {
    format!("{}/{label}", def.id)
}

fn prefixed(tag: u8, sk: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + sk.len() + 17);
    k.push(tag);
    k.extend_from_slice(&(sk.len().min(u16::MAX as usize) as u16).to_be_bytes());
    k.extend_from_slice(sk.as_bytes());
    k
}

fn shard_key(sk: &str, lane: u8, start: u64) -> Vec<u8> {
    let mut k = prefixed(b's', sk);
    k.push(lane);
    k.extend_from_slice(&start.to_be_bytes());
    k
}

fn record_prefix(sk: &str, lane: u8, start: u64) -> Vec<u8> {
    let mut k = prefixed(b'r', sk);
    k.push(lane);
    k.extend_from_slice(&start.to_be_bytes());
    k
}

fn record_key(sk: &str, lane: u8, start: u64, seq: u64) -> Vec<u8> {
    let mut k = record_prefix(sk, lane, start);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn meta_key(sk: &str) -> Vec<u8> {
    prefixed(b'm', sk)
}

fn lane_of(storage_key: &[u8]) -> u8 {
    // The first byte of a storage key is the top byte of the partition hash.
    storage_key.first().map(|b| b >> 6).unwrap_or(0)
}

pub fn shard_id(lane: u8, start: u64) -> String {
    format!("shardId-{start:020}-{lane:08}")
}

fn parse_shard_id(id: &str) -> Option<(u8, u64)> {
    let rest = id.strip_prefix("shardId-")?;
    let (start, lane) = rest.split_once('-')?;
    if start.len() != 20 || lane.len() != 8 {
        return None;
    }
    let lane: u8 = lane.parse().ok()?;
    ((lane as usize) < LANES).then_some(())?;
    Some((lane, start.parse().ok()?))
}

fn seq_string(seq: u64) -> String {
    format!("{seq:021}")
}

fn trim_cutoff_seq(now: f64, retention: f64) -> u64 {
    (((now - retention).max(0.0) * 1000.0) as u64).saturating_mul(1000)
}

/// How long after leaving the retention period records stay on disk: an iterator issued at
/// the trim horizon (or anywhere after it) stays readable for this long. Records are served
/// from the horizon `now - retention`, deleted only once older than `retention` plus this, and
/// GetRecords reports trimmed data only for a position behind that later horizon, so every
/// record after an accepted position is still there. Without the lag an iterator at the trim
/// horizon of a shard older than the retention was refused as trimmed as soon as the clock
/// moved on, though nothing after it had been deleted.
/// Stream records deleted per storage batch when trimming.
const TRIM_CHUNK: usize = 10_000;

fn trim_lag(retention: f64) -> f64 {
    ITERATOR_TTL_SECS.min(retention)
}

// ---- record encoding ----------------------------------------------------------------------

const REC_V1: u8 = 1;

fn put_blob(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&u32::MAX.to_be_bytes()),
    }
}

fn encode_record(
    event: u8,
    service: bool,
    created: f64,
    keys: &Item,
    old: Option<&Item>,
    new: Option<&Item>,
) -> Vec<u8> {
    let mut out = vec![REC_V1, event, u8::from(service)];
    out.extend_from_slice(&created.to_be_bytes());
    put_blob(&mut out, Some(&itemcodec::encode_item(keys)));
    put_blob(&mut out, old.map(itemcodec::encode_item).as_deref());
    put_blob(&mut out, new.map(itemcodec::encode_item).as_deref());
    out
}

/// One change record, as GetRecords returns it.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    pub event_id: String,
    /// INSERT, MODIFY or REMOVE.
    pub event_name: &'static str,
    pub sequence_number: String,
    /// Epoch seconds.
    pub created: f64,
    pub keys: Item,
    pub old_image: Option<Item>,
    pub new_image: Option<Item>,
    pub size_bytes: u64,
    pub view_type: String,
    /// True for deletions by the TTL service.
    pub by_service: bool,
}

pub(crate) fn decode_record(seq: u64, raw: &[u8], view_type: &str) -> Result<StreamRecord, Error> {
    let bad = || Error::internal("corrupt stream record");
    if raw.len() < 11 || raw[0] != REC_V1 {
        return Err(bad());
    }
    let event_name = match raw[1] {
        1 => "INSERT",
        2 => "MODIFY",
        3 => "REMOVE",
        _ => return Err(bad()),
    };
    let by_service = raw[2] != 0;
    let created = f64::from_be_bytes(raw[3..11].try_into().map_err(|_| bad())?);
    let mut pos = 11;
    let mut blob = || -> Result<Option<&[u8]>, Error> {
        let len = raw.get(pos..pos + 4).ok_or_else(bad)?;
        let len = u32::from_be_bytes(len.try_into().map_err(|_| bad())?);
        pos += 4;
        if len == u32::MAX {
            return Ok(None);
        }
        let b = raw.get(pos..pos + len as usize).ok_or_else(bad)?;
        pos += len as usize;
        Ok(Some(b))
    };
    let keys = blob()?.ok_or_else(bad)?;
    let old = blob()?;
    let new = blob()?;
    let size_bytes = (keys.len() + old.map_or(0, <[u8]>::len) + new.map_or(0, <[u8]>::len)) as u64;
    Ok(StreamRecord {
        event_id: format!("{seq:x}"),
        event_name,
        sequence_number: seq_string(seq),
        created,
        keys: itemcodec::decode_item(keys)?,
        old_image: old.map(itemcodec::decode_item).transpose()?,
        new_image: new.map(itemcodec::decode_item).transpose()?,
        size_bytes,
        view_type: view_type.to_string(),
        by_service,
    })
}

/// Checks that one entry of the `streams` keyspace decodes (`check.rs`): metadata and shard
/// entries as JSON, change records by their encoding (images included), lane rows by size,
/// each under a key of its kind's shape.
pub(crate) fn check_entry(key: &[u8], value: &[u8]) -> Result<(), String> {
    let tag = *key.first().ok_or("empty key")?;
    let len = key
        .get(1..3)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or("key cut short")?;
    let sk = key.get(3..3 + len).ok_or("key cut short")?;
    std::str::from_utf8(sk).map_err(|_| "stream key is not UTF-8".to_string())?;
    let rest = &key[3 + len..];
    let shape = |n: usize, what: &str| {
        if rest.len() == n {
            Ok(())
        } else {
            Err(format!("{what} key of the wrong length"))
        }
    };
    match tag {
        b'm' => {
            shape(0, "metadata")?;
            serde_json::from_slice::<Meta>(value)
                .map(|_| ())
                .map_err(|e| format!("metadata: {e}"))
        }
        b's' => {
            shape(9, "shard")?;
            serde_json::from_slice::<ShardRec>(value)
                .map(|_| ())
                .map_err(|e| format!("shard: {e}"))
        }
        b'r' => {
            shape(17, "record")?;
            let seq = u64::from_be_bytes(rest[9..17].try_into().map_err(|_| "record key")?);
            decode_record(seq, value, "NEW_AND_OLD_IMAGES")
                .map(|_| ())
                .map_err(|e| format!("change record {seq}: {e}"))
        }
        b'l' => {
            shape(1, "lane")?;
            LaneRow::decode(value)
                .map(|_| ())
                .ok_or_else(|| "lane row cut short".to_string())
        }
        other => Err(format!("unknown entry kind {other:#04x}")),
    }
}

// ---- write side ---------------------------------------------------------------------------

/// Stages the change record of one item change (nothing when the table has no enabled stream or
/// the write changes nothing). Called by `write::stage_item_change` under the item's lock.
pub(crate) fn stage(
    table: &Table,
    key: &[u8],
    old: Option<&Item>,
    new: Option<&Item>,
    batch: &mut WriteBatch,
    shared: Option<&mut Vec<PendingRecord>>,
) {
    let def = &table.def;
    let (Some(spec), Some(label)) = (&def.stream, &def.stream_label) else {
        return;
    };
    if !spec.enabled {
        return;
    }
    let (event, any) = match (old, new) {
        (None, None) => return,
        (None, Some(n)) => (1u8, n),
        (Some(o), None) => (3u8, o),
        (Some(o), Some(n)) => {
            if o == n {
                return;
            }
            (2u8, n)
        }
    };
    let view = View::parse(spec.view_type.as_deref().unwrap_or("KEYS_ONLY"));
    let keys = crate::keys::key_map(def, any);
    let old_img = old.filter(|_| matches!(view, View::OldImage | View::NewAndOld));
    let new_img = new.filter(|_| matches!(view, View::NewImage | View::NewAndOld));
    let now = now_epoch();
    let service = SERVICE.with(Cell::get);
    let value = encode_record(event, service, now, &keys, old_img, new_img);
    let lane = lane_of(key);
    let sk = stream_key(def, label);
    if let Some(records) = shared {
        table.counters.activity.stream_record(lane, 0);
        // Numbered at commit, under the lane's database lock (`number_shared`).
        records.push(PendingRecord {
            stream_key: sk,
            lane,
            value,
        });
        return;
    }

    let mut st = table.counters.stream.inner.lock();
    st.reset_for(label);
    if let Some(g) = batch.generation().filter(|g| *g != st.generation) {
        st.generation = g;
        st.lanes = Default::default();
    }
    let seq = st.allocate(now);
    let roll = match &st.lanes[lane as usize] {
        None => true,
        Some(l) => {
            let limit = if st.roll_records == 0 {
                ROLL_RECORDS
            } else {
                st.roll_records
            };
            l.count >= limit || now - l.opened >= ROLL_SECS
        }
    };
    if roll {
        let parent = st.lanes[lane as usize]
            .as_ref()
            .map(|l| shard_id(lane, l.start));
        let rec = ShardRec {
            parent,
            created: now,
        };
        if let Ok(raw) = serde_json::to_vec(&rec) {
            batch.put(STREAMS, shard_key(&sk, lane, seq), raw);
        }
        st.lanes[lane as usize] = Some(Lane {
            start: seq,
            count: 0,
            opened: now,
        });
    }
    let start = match st.lanes[lane as usize].as_mut() {
        Some(l) => {
            l.count += 1;
            l.start
        }
        None => seq,
    };
    st.in_flight.insert(seq, key.to_vec());
    drop(st);
    table.counters.activity.stream_record(lane, seq);
    batch.put(STREAMS, record_key(&sk, lane, start, seq), value);
}

// ---- shared engines -----------------------------------------------------------------------
//
// On a shared engine several nodes write one stream, so a lane's state (its open shard, the
// records in it, the next sequence number) is a row of the `streams` keyspace instead of
// memory: `l ++ sk ++ lane` → [`LaneRow`]. A writer locks the rows of the lanes its records go
// to (after its item locks, in key order), numbers its records from them and writes them back
// in its own transaction. So within a lane, records commit in sequence-number order, and a
// reader that sees a record has seen every record of the lane with a smaller number: readers
// need no watermark.

/// A change record staged on a shared engine, numbered when its transaction commits.
#[derive(Debug)]
pub(crate) struct PendingRecord {
    stream_key: String,
    lane: u8,
    value: Vec<u8>,
}

/// The state of one lane of a stream on a shared engine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LaneRow {
    /// First sequence number of the lane's open shard.
    start: u64,
    /// Records in that shard.
    count: u64,
    /// When that shard was opened (seconds since the epoch).
    opened: f64,
    /// Lower bound of the lane's next sequence number.
    next: u64,
}

impl LaneRow {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32);
        v.extend_from_slice(&self.start.to_be_bytes());
        v.extend_from_slice(&self.count.to_be_bytes());
        v.extend_from_slice(&self.opened.to_bits().to_be_bytes());
        v.extend_from_slice(&self.next.to_be_bytes());
        v
    }

    pub(crate) fn decode(raw: &[u8]) -> Option<LaneRow> {
        let word = |i: usize| -> Option<u64> {
            Some(u64::from_be_bytes(
                raw.get(i * 8..i * 8 + 8)?.try_into().ok()?,
            ))
        };
        Some(LaneRow {
            start: word(0)?,
            count: word(1)?,
            opened: f64::from_bits(word(2)?),
            next: word(3)?,
        })
    }

    /// Opens a new shard of `lane` at the next sequence number (the old one, if any, becomes
    /// its parent), staging its shard entry.
    fn open(
        current: Option<LaneRow>,
        sk: &str,
        lane: u8,
        now: f64,
        batch: &mut WriteBatch,
    ) -> LaneRow {
        let clock = ((now * 1000.0) as u64).saturating_mul(1000);
        let start = current.map_or(0, |l| l.next).max(clock).max(1);
        let rec = ShardRec {
            parent: current.map(|l| shard_id(lane, l.start)),
            created: now,
        };
        if let Ok(raw) = serde_json::to_vec(&rec) {
            batch.put(STREAMS, shard_key(sk, lane, start), raw);
        }
        LaneRow {
            start,
            count: 0,
            opened: now,
            next: start,
        }
    }
}

/// The smallest sequence number at or above `floor` that `lane` may use. On a shared engine
/// each lane numbers its records on its own (from its row and the clock), so the lanes take
/// disjoint residues modulo [`LANES`]: no two records of a stream share a sequence number, nor
/// the event id derived from it.
fn lane_seq(floor: u64, lane: u8) -> u64 {
    let lanes = LANES as u64;
    let candidate = floor - floor % lanes + u64::from(lane) % lanes;
    if candidate >= floor {
        candidate
    } else {
        candidate + lanes
    }
}

fn lane_key(sk: &str, lane: u8) -> Vec<u8> {
    let mut k = prefixed(b'l', sk);
    k.push(lane);
    k
}

/// Numbers the change records of a transaction on a shared engine and stages them, with the
/// shards they open and their lanes' new state, into `batch`. Locks the lanes' rows.
pub(crate) fn number_shared(
    txn: &mut dyn Transaction,
    mut records: Vec<PendingRecord>,
    batch: &mut WriteBatch,
    roll_records: u64,
) -> Result<(), Error> {
    if records.is_empty() {
        return Ok(());
    }
    // Stable: records of one lane keep their staging order.
    records.sort_by(|a, b| (&a.stream_key, a.lane).cmp(&(&b.stream_key, b.lane)));
    let mut lanes: Vec<(String, u8)> = records
        .iter()
        .map(|r| (r.stream_key.clone(), r.lane))
        .collect();
    lanes.dedup();
    let keys: Vec<Vec<u8>> = lanes.iter().map(|(sk, l)| lane_key(sk, *l)).collect();
    let refs: Vec<(&str, &[u8])> = keys.iter().map(|k| (STREAMS, k.as_slice())).collect();
    let rows = txn.lock(&refs).map_err(crate::locks::txn_err)?;
    let limit = if roll_records == 0 {
        ROLL_RECORDS
    } else {
        roll_records
    };
    let now = now_epoch();
    let clock = ((now * 1000.0) as u64).saturating_mul(1000);
    let mut records = records.into_iter().peekable();
    for (((sk, lane), key), row) in lanes.iter().zip(&keys).zip(rows) {
        let mut state = row.as_deref().and_then(LaneRow::decode);
        while let Some(r) = records.next_if(|r| r.stream_key == *sk && r.lane == *lane) {
            let roll = state.is_none_or(|l| l.count >= limit || now - l.opened >= ROLL_SECS);
            let mut l = if roll {
                LaneRow::open(state, sk, *lane, now, batch)
            } else {
                state.unwrap_or(LaneRow {
                    start: 1,
                    count: 0,
                    opened: now,
                    next: 1,
                })
            };
            let seq = lane_seq(l.next.max(clock).max(1), *lane);
            l.next = seq + 1;
            l.count += 1;
            batch.put(STREAMS, record_key(sk, *lane, l.start, seq), r.value);
            state = Some(l);
        }
        if let Some(l) = state {
            batch.put(STREAMS, key.clone(), l.encode());
        }
    }
    Ok(())
}

// ---- engine side --------------------------------------------------------------------------

/// A stream as ListStreams returns it.
#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub arn: String,
    pub table_name: String,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct ShardInfo {
    pub shard_id: String,
    pub parent_shard_id: Option<String>,
    pub starting_sequence_number: String,
    pub ending_sequence_number: Option<String>,
}

/// DescribeStream's answer.
#[derive(Debug, Clone)]
pub struct StreamDescription {
    pub arn: String,
    pub label: String,
    /// ENABLED or DISABLED.
    pub status: &'static str,
    pub view_type: String,
    pub created: f64,
    pub table_name: String,
    pub hash_key: KeyAttr,
    pub range_key: Option<KeyAttr>,
    pub shards: Vec<ShardInfo>,
    pub last_evaluated_shard_id: Option<String>,
}

/// GetRecords' answer.
#[derive(Debug, Clone)]
pub struct RecordsPage {
    pub records: Vec<StreamRecord>,
    pub next_iterator: Option<String>,
}

/// Where an iterator points: after `after` in shard (lane, start) of stream `arn`.
pub(crate) struct Position {
    arn: String,
    lane: u8,
    start: u64,
    after: u64,
    issued_ms: u64,
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl Position {
    pub(crate) fn encode(&self) -> String {
        let body = format!(
            "{}|{}|{}|{}|{}",
            self.lane, self.start, self.after, self.issued_ms, self.arn
        );
        let mut out = format!("{:016x}", fnv(body.as_bytes()));
        for b in body.as_bytes() {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
    pub(crate) fn decode(s: &str) -> Option<Position> {
        if s.len() < 16 || !s.len().is_multiple_of(2) || !s.is_ascii() {
            return None;
        }
        let sum = u64::from_str_radix(&s[..16], 16).ok()?;
        let bytes: Option<Vec<u8>> = (16..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect();
        let bytes = bytes?;
        if fnv(&bytes) != sum {
            return None;
        }
        let body = String::from_utf8(bytes).ok()?;
        let mut parts = body.splitn(5, '|');
        Some(Position {
            lane: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
            after: parts.next()?.parse().ok()?,
            issued_ms: parts.next()?.parse().ok()?,
            arn: parts.next()?.to_string(),
        })
    }
}

/// The stream ARN a shard iterator was issued for (`None` if it is not one of ours). Used to
/// authorize GetRecords before the iterator is checked further.
pub fn iterator_stream_arn(iterator: &str) -> Option<String> {
    Position::decode(iterator).map(|p| p.arn)
}

fn invalid_arn() -> Error {
    Error::validation("Invalid StreamArn")
}

fn looks_like_stream_arn(arn: &str) -> bool {
    arn.starts_with("arn:") && arn.contains(":table/") && arn.contains("/stream/")
}

fn stream_not_found(arn: &str) -> Error {
    Error::ResourceNotFound(format!(
        "Requested resource not found: Stream: {arn} not found"
    ))
}

/// The error DynamoDB Streams names ExpiredIteratorException.
pub(crate) fn expired_iterator() -> Error {
    Error::ExpiredIterator(
        "Iterator expired. The iterator was created more than 15 minutes ago.".into(),
    )
}

/// The error DynamoDB Streams names TrimmedDataAccessException.
pub(crate) fn trimmed_data() -> Error {
    Error::TrimmedDataAccess(
        "The operation attempted to read past the oldest stream record in a shard (the data was trimmed).".into(),
    )
}

fn check_limit(limit: Option<i64>, max: i64, name: &str) -> Result<usize, Error> {
    match limit {
        None => Ok(max as usize),
        Some(l) if l < 1 => Err(Error::validation(format!(
            "1 validation error detected: Value '{l}' at '{name}' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(l) if l > max => Err(Error::validation(format!(
            "1 validation error detected: Value '{l}' at '{name}' failed to satisfy constraint: Member must have value less than or equal to {max}"
        ))),
        Some(l) => Ok(l as usize),
    }
}

impl Engine {
    /// Loads stream metadata and resumes per-table counters and lanes after the stored records.
    pub(crate) fn open_streams(&self) -> Result<(), Error> {
        self.storage.create_keyspace(STREAMS).map_err(storage_err)?;
        self.load_stream_metas()?;
        if self.shared {
            // Lanes are database rows (see "shared engines" above): nothing to resume.
            return self.sync_streams();
        }
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        self.resume_lanes(tables)
    }

    /// Reads the stored metadata of every stream into the registry (at open, and on shared
    /// engines before each use, since other nodes add and disable streams).
    fn load_stream_metas(&self) -> Result<(), Error> {
        let mut metas = Vec::new();
        let start = [b'm'];
        let end = [b'n'];
        self.storage
            .scan(
                STREAMS,
                Bound::Included(&start[..]),
                Bound::Excluded(&end[..]),
                false,
                &mut |_, v| {
                    if let Ok(m) = serde_json::from_slice::<Meta>(v) {
                        metas.push(m);
                    }
                    true
                },
            )
            .map_err(storage_err)?;
        let mut reg = self.streams.metas.lock();
        for m in metas {
            reg.insert(m.arn.clone(), m);
        }
        Ok(())
    }

    /// Resumes the in-memory lanes of every stream after its stored shards and records
    /// (embedded engines, at open).
    fn resume_lanes(&self, tables: Vec<Arc<Table>>) -> Result<(), Error> {
        for t in tables {
            let Some(label) = &t.def.stream_label else {
                continue;
            };
            let sk = stream_key(&t.def, label);
            let shards = self.shard_recs(&sk)?;
            let mut st = t.counters.stream.inner.lock();
            st.reset_for(label);
            for (lane, start, rec) in shards {
                let slot = &mut st.lanes[lane as usize];
                if slot.as_ref().is_none_or(|l| l.start < start) {
                    *slot = Some(Lane {
                        start,
                        count: 0,
                        opened: rec.created,
                    });
                }
                st.next = st.next.max(start + 1);
            }
            for lane in 0..LANES as u8 {
                let Some(l) = st.lanes[lane as usize].clone() else {
                    continue;
                };
                let (last, count) = self.last_record(&sk, lane, l.start)?;
                if let Some(slot) = st.lanes[lane as usize].as_mut() {
                    slot.count = count;
                }
                if let Some(last) = last {
                    st.next = st.next.max(last + 1);
                }
            }
        }
        self.sync_streams()?;
        Ok(())
    }

    /// (last sequence number, number of records) of one shard.
    fn last_record(&self, sk: &str, lane: u8, start: u64) -> Result<(Option<u64>, u64), Error> {
        let prefix = record_prefix(sk, lane, start);
        let end = prefix_end(&prefix);
        let mut last = None;
        let mut count = 0u64;
        self.storage
            .scan(
                STREAMS,
                Bound::Included(&prefix[..]),
                end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                false,
                &mut |k, _| {
                    if let Some(s) = k.get(k.len().saturating_sub(8)..) {
                        last = s.try_into().ok().map(u64::from_be_bytes);
                    }
                    count += 1;
                    count < ROLL_RECORDS
                },
            )
            .map_err(storage_err)?;
        Ok((last, count))
    }

    /// All shards of a stream: (lane, start, record).
    fn shard_recs(&self, sk: &str) -> Result<Vec<(u8, u64, ShardRec)>, Error> {
        let prefix = prefixed(b's', sk);
        let end = prefix_end(&prefix);
        let mut out = Vec::new();
        self.storage
            .scan(
                STREAMS,
                Bound::Included(&prefix[..]),
                end.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                false,
                &mut |k, v| {
                    let rest = &k[prefix.len()..];
                    if rest.len() == 9 {
                        let lane = rest[0];
                        let start = u64::from_be_bytes(rest[1..9].try_into().unwrap_or([0; 8]));
                        if let Ok(rec) = serde_json::from_slice::<ShardRec>(v) {
                            out.push((lane, start, rec));
                        }
                    }
                    true
                },
            )
            .map_err(storage_err)?;
        Ok(out)
    }

    /// Brings the stream catalog in step with the table definitions: registers new streams,
    /// opens their shards, and marks streams no longer enabled as disabled.
    pub(crate) fn sync_streams(&self) -> Result<(), Error> {
        if self.shared {
            self.load_stream_metas()?;
        }
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        let now = now_epoch();
        let mut live = HashMap::new();
        let mut reg = self.streams.metas.lock();
        let mut batch = WriteBatch::default();
        for t in &tables {
            let def = &t.def;
            let Some(label) = &def.stream_label else {
                continue;
            };
            let enabled = def.stream.as_ref().is_some_and(|s| s.enabled);
            let arn = format!(
                "{}/stream/{label}",
                def.arn(&self.config.region, &self.config.account)
            );
            live.insert(arn.clone(), enabled);
            let created = !reg.contains_key(&arn);
            if created {
                let meta = Meta {
                    arn: arn.clone(),
                    stream_key: stream_key(def, label),
                    table_name: def.name.clone(),
                    table_id: def.id.clone(),
                    label: label.clone(),
                    view_type: def
                        .stream
                        .as_ref()
                        .and_then(|s| s.view_type.clone())
                        .unwrap_or_else(|| "KEYS_ONLY".into()),
                    hash_key: def.hash_key.clone(),
                    range_key: def.range_key.clone(),
                    created: now,
                    disabled: (!enabled).then_some(now),
                };
                batch.put(
                    STREAMS,
                    meta_key(&meta.stream_key),
                    serde_json::to_vec(&meta).map_err(Error::internal)?,
                );
                reg.insert(arn.clone(), meta);
            }
            if enabled && self.shared {
                // The node that registers a stream opens its lanes; a lane whose opening was
                // lost (a crash in between) opens at its first record.
                if created {
                    let sk = stream_key(def, label);
                    self.retrying(&sk[..], |engine, sk| engine.open_lanes_shared(sk, now))?;
                }
            } else if enabled {
                // Every lane of an enabled stream has an open shard, even before any write.
                let sk = stream_key(def, label);
                let mut st = t.counters.stream.inner.lock();
                st.reset_for(label);
                let mut opened = WriteBatch::default();
                for lane in 0..LANES {
                    if st.lanes[lane].is_none() {
                        let seq = st.allocate(now);
                        let rec = ShardRec {
                            parent: None,
                            created: now,
                        };
                        opened.put(
                            STREAMS,
                            shard_key(&sk, lane as u8, seq),
                            serde_json::to_vec(&rec).map_err(Error::internal)?,
                        );
                        st.lanes[lane] = Some(Lane {
                            start: seq,
                            count: 0,
                            opened: now,
                        });
                    }
                }
                if !opened.is_empty() {
                    self.storage
                        .write(opened, self.config.durability)
                        .map_err(storage_err)?;
                }
            }
        }
        for (arn, meta) in reg.iter_mut() {
            if meta.disabled.is_none() && live.get(arn) != Some(&true) {
                // On a shared engine this node's catalog may lag behind the stream metadata
                // another node just wrote: only the stored definition can say it is disabled.
                if self.shared && self.stream_enabled_in_storage(meta)? {
                    continue;
                }
                meta.disabled = Some(now);
                batch.put(
                    STREAMS,
                    meta_key(&meta.stream_key),
                    serde_json::to_vec(&*meta).map_err(Error::internal)?,
                );
            }
        }
        drop(reg);
        if !batch.is_empty() {
            self.storage
                .write(batch, self.config.durability)
                .map_err(storage_err)?;
        }
        Ok(())
    }

    /// Opens a shard in every lane of stream `sk` that has none (shared engines), so that an
    /// enabled stream lists its shards before any write, as on DynamoDB.
    fn open_lanes_shared(&self, sk: &str, now: f64) -> Result<(), Error> {
        let keys: Vec<Vec<u8>> = (0..LANES as u8).map(|l| lane_key(sk, l)).collect();
        let present = keys
            .iter()
            .map(|k| self.storage.get(STREAMS, k).map(|v| v.is_some()))
            .collect::<Result<Vec<bool>, _>>()
            .map_err(storage_err)?;
        if present.iter().all(|p| *p) {
            return Ok(());
        }
        let mut txn = self.storage.begin().map_err(crate::locks::txn_err)?;
        let refs: Vec<(&str, &[u8])> = keys.iter().map(|k| (STREAMS, k.as_slice())).collect();
        let rows = txn.lock(&refs).map_err(crate::locks::txn_err)?;
        let mut batch = WriteBatch::default();
        for (lane, (key, row)) in keys.iter().zip(rows).enumerate() {
            if row.is_none() {
                let l = LaneRow::open(None, sk, lane as u8, now, &mut batch);
                batch.put(STREAMS, key.clone(), l.encode());
            }
        }
        txn.commit(batch).map_err(crate::locks::txn_err)
    }

    /// True if the stored catalog record of `meta`'s table still has that stream enabled.
    fn stream_enabled_in_storage(&self, meta: &Meta) -> Result<bool, Error> {
        let Some(raw) = self
            .storage
            .get(crate::CATALOG, meta.table_name.as_bytes())
            .map_err(storage_err)?
        else {
            return Ok(false);
        };
        let def: TableDef = serde_json::from_slice(&raw)
            .map_err(|e| Error::internal(format!("catalog record: {e}")))?;
        Ok(def.id == meta.table_id
            && def.stream_label.as_deref() == Some(meta.label.as_str())
            && def.stream.as_ref().is_some_and(|s| s.enabled))
    }

    /// The sequence number a LATEST iterator of `lane` starts after.
    fn latest_seq(&self, meta: &Meta, lane: u8) -> Result<u64, Error> {
        if self.shared {
            let row = self
                .storage
                .get(STREAMS, &lane_key(&meta.stream_key, lane))
                .map_err(storage_err)?;
            return Ok(row
                .as_deref()
                .and_then(LaneRow::decode)
                .map_or(0, |l| l.next.saturating_sub(1)));
        }
        let next = self
            .stream_table(meta)
            .map(|t| t.counters.stream.inner.lock().next)
            .unwrap_or(u64::MAX);
        Ok(next.saturating_sub(1))
    }

    fn meta(&self, arn: &str) -> Result<Meta, Error> {
        if !looks_like_stream_arn(arn) {
            return Err(invalid_arn());
        }
        self.sync_streams()?;
        self.streams
            .metas
            .lock()
            .get(arn)
            .cloned()
            .ok_or_else(|| stream_not_found(arn))
    }

    /// The live table a stream belongs to, if it still exists.
    fn stream_table(&self, meta: &Meta) -> Option<Arc<Table>> {
        self.tables
            .read()
            .get(&meta.table_name)
            .filter(|t| t.def.id == meta.table_id)
            .cloned()
    }

    /// Highest sequence number below which every record of `meta`'s table is committed (or
    /// abandoned). Waits, briefly, for writers that staged records and have not finished.
    fn watermark(&self, meta: &Meta) -> u64 {
        if self.shared {
            // Records of a lane commit in sequence order (see "shared engines" above).
            return u64::MAX;
        }
        let Some(table) = self.stream_table(meta) else {
            return u64::MAX;
        };
        let (pending, next) = {
            let st = table.counters.stream.inner.lock();
            let p: Vec<(u64, Vec<u8>)> =
                st.in_flight.iter().map(|(s, k)| (*s, k.clone())).collect();
            (p, st.next)
        };
        for (_, key) in &pending {
            // The writer holds this stripe from staging until its batch is written.
            self.locks.wait_stripe(&table.def.id, key);
        }
        let mut st = table.counters.stream.inner.lock();
        for (seq, _) in &pending {
            st.in_flight.remove(seq);
        }
        next.saturating_sub(1)
    }

    /// Forgets in-flight sequence numbers whose writers have finished (background upkeep).
    pub(crate) fn prune_in_flight(&self) {
        if self.shared {
            return;
        }
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        for t in tables {
            let pending: Vec<(u64, Vec<u8>)> = {
                let st = t.counters.stream.inner.lock();
                st.in_flight.iter().map(|(s, k)| (*s, k.clone())).collect()
            };
            let done: Vec<u64> = pending
                .into_iter()
                .filter(|(_, key)| self.locks.stripe_idle(&t.def.id, key))
                .map(|(s, _)| s)
                .collect();
            if !done.is_empty() {
                let mut st = t.counters.stream.inner.lock();
                for s in done {
                    st.in_flight.remove(&s);
                }
            }
        }
    }

    pub fn list_streams(
        &self,
        table_name: Option<&str>,
        exclusive_start: Option<&str>,
        limit: Option<i64>,
    ) -> Result<(Vec<StreamSummary>, Option<String>), Error> {
        let limit = check_limit(limit, 100, "limit")?;
        if let Some(s) = exclusive_start {
            if !looks_like_stream_arn(s) {
                return Err(invalid_arn());
            }
        }
        self.sync_streams()?;
        let reg = self.streams.metas.lock();
        let lower = match exclusive_start {
            Some(s) => Bound::Excluded(s.to_string()),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut more = false;
        for m in reg.range((lower, Bound::Unbounded)) {
            let m = m.1;
            if table_name.is_some_and(|t| t != m.table_name) {
                continue;
            }
            if out.len() == limit {
                more = true;
                break;
            }
            out.push(StreamSummary {
                arn: m.arn.clone(),
                table_name: m.table_name.clone(),
                label: m.label.clone(),
            });
        }
        let last = more.then(|| out.last().map(|s| s.arn.clone())).flatten();
        Ok((out, last))
    }

    /// All shards of a stream in shard-id order, with their ranges.
    fn shards(&self, meta: &Meta) -> Result<Vec<ShardInfo>, Error> {
        let mut recs = self.shard_recs(&meta.stream_key)?;
        recs.sort_by_key(|(lane, start, _)| (*lane, *start));
        let mut out = Vec::with_capacity(recs.len());
        for (i, (lane, start, rec)) in recs.iter().enumerate() {
            let has_child = recs.get(i + 1).is_some_and(|(l, _, _)| l == lane);
            let closed = has_child || meta.disabled.is_some();
            let ending = if closed {
                let (last, _) = self.last_record(&meta.stream_key, *lane, *start)?;
                Some(seq_string(last.unwrap_or(*start)))
            } else {
                None
            };
            out.push(ShardInfo {
                shard_id: shard_id(*lane, *start),
                parent_shard_id: rec.parent.clone(),
                starting_sequence_number: seq_string(*start),
                ending_sequence_number: ending,
            });
        }
        out.sort_by(|a, b| a.shard_id.cmp(&b.shard_id));
        Ok(out)
    }

    pub fn describe_stream(
        &self,
        arn: &str,
        exclusive_start_shard: Option<&str>,
        limit: Option<i64>,
        child_shards_of: Option<&str>,
    ) -> Result<StreamDescription, Error> {
        let limit = check_limit(limit, 100, "limit")?;
        if let Some(id) = child_shards_of {
            if parse_shard_id(id).is_none() {
                return Err(Error::validation(format!(
                    "Invalid ShardFilter.ShardId: {id}"
                )));
            }
        }
        let meta = self.meta(arn)?;
        let mut shards = self.shards(&meta)?;
        if let Some(parent) = child_shards_of {
            shards.retain(|s| s.parent_shard_id.as_deref() == Some(parent));
        }
        if let Some(start) = exclusive_start_shard {
            shards.retain(|s| s.shard_id.as_str() > start);
        }
        let last = (shards.len() > limit).then(|| shards[limit - 1].shard_id.clone());
        shards.truncate(limit);
        Ok(StreamDescription {
            arn: meta.arn.clone(),
            label: meta.label.clone(),
            status: if meta.disabled.is_some() {
                "DISABLED"
            } else {
                "ENABLED"
            },
            view_type: meta.view_type.clone(),
            created: meta.created,
            table_name: meta.table_name.clone(),
            hash_key: meta.hash_key.clone(),
            range_key: meta.range_key.clone(),
            shards,
            last_evaluated_shard_id: last,
        })
    }

    pub fn get_shard_iterator(
        &self,
        arn: &str,
        shard: &str,
        iterator_type: &str,
        sequence_number: Option<&str>,
    ) -> Result<String, Error> {
        let at = matches!(
            iterator_type,
            "AT_SEQUENCE_NUMBER" | "AFTER_SEQUENCE_NUMBER"
        );
        if !at && !matches!(iterator_type, "TRIM_HORIZON" | "LATEST") {
            return Err(Error::validation(format!(
                "1 validation error detected: Value '{iterator_type}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_SEQUENCE_NUMBER, TRIM_HORIZON]"
            )));
        }
        let seq = match (at, sequence_number) {
            (true, None) => {
                return Err(Error::validation(format!(
                    "Must specify a SequenceNumber for ShardIteratorType {iterator_type}"
                )))
            }
            (false, Some(_)) => {
                return Err(Error::validation(format!(
                    "Cannot specify a SequenceNumber for ShardIteratorType {iterator_type}"
                )))
            }
            (true, Some(s)) => Some(
                s.parse::<u64>()
                    .ok()
                    .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| Error::validation(format!("Invalid SequenceNumber: {s}")))?,
            ),
            (false, None) => None,
        };
        let meta = self.meta(arn)?;
        let shard_missing = || {
            Error::ResourceNotFound(format!(
                "Requested resource not found: Shard does not exist: {shard}"
            ))
        };
        let (lane, start) = parse_shard_id(shard).ok_or_else(shard_missing)?;
        if self
            .storage
            .get(STREAMS, &shard_key(&meta.stream_key, lane, start))
            .map_err(storage_err)?
            .is_none()
        {
            return Err(shard_missing());
        }
        let now = now_epoch();
        let cutoff = trim_cutoff_seq(now, self.config.stream_retention.as_secs_f64());
        let after = match (iterator_type, seq) {
            ("TRIM_HORIZON", _) => start.max(cutoff).saturating_sub(1),
            ("LATEST", _) => self.latest_seq(&meta, lane)?,
            ("AT_SEQUENCE_NUMBER", Some(s)) => s.saturating_sub(1),
            (_, Some(s)) => s,
            _ => start.saturating_sub(1),
        };
        if after.saturating_add(1) < cutoff && start < cutoff {
            return Err(trimmed_data());
        }
        Ok(Position {
            arn: meta.arn,
            lane,
            start,
            after,
            issued_ms: (now * 1000.0) as u64,
        }
        .encode())
    }

    pub fn get_records(&self, iterator: &str, limit: Option<i64>) -> Result<RecordsPage, Error> {
        let limit = check_limit(limit, 1000, "limit")?;
        let pos =
            Position::decode(iterator).ok_or_else(|| Error::validation("Invalid ShardIterator"))?;
        let now = now_epoch();
        if (now * 1000.0) as u64 > pos.issued_ms + (ITERATOR_TTL_SECS * 1000.0) as u64 {
            return Err(expired_iterator());
        }
        let meta = self.meta(&pos.arn)?;
        let retention = self.config.stream_retention.as_secs_f64();
        let cutoff = trim_cutoff_seq(now, retention + trim_lag(retention));
        if pos.after.saturating_add(1) < cutoff && pos.start < cutoff {
            return Err(trimmed_data());
        }
        // The watermark is taken before the shard list, so a child seen below opened after it.
        let watermark = self.watermark(&meta);
        let mut recs = self.shard_recs(&meta.stream_key)?;
        if !recs
            .iter()
            .any(|(l, s, _)| *l == pos.lane && *s == pos.start)
        {
            return Err(trimmed_data());
        }
        recs.retain(|(l, s, _)| *l == pos.lane && *s > pos.start);
        let child_start = recs.iter().map(|(_, s, _)| *s).min();
        let closed = meta.disabled.is_some() || child_start.is_some();

        let prefix = record_prefix(&meta.stream_key, pos.lane, pos.start);
        let lower = record_key(&meta.stream_key, pos.lane, pos.start, pos.after + 1);
        let upper_seq = watermark.min(u64::MAX - 1);
        let upper = record_key(&meta.stream_key, pos.lane, pos.start, upper_seq);
        let mut raw: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut bytes = 0usize;
        let mut exhausted = true;
        // The first record left for the next call, when the page ended before it.
        let mut next_seq = None;
        if pos.after < upper_seq {
            self.storage
                .scan(
                    STREAMS,
                    Bound::Included(&lower[..]),
                    Bound::Included(&upper[..]),
                    false,
                    &mut |k, v| {
                        let seq = k
                            .get(prefix.len()..)
                            .and_then(|s| s.try_into().ok())
                            .map(u64::from_be_bytes);
                        if raw.len() == limit || bytes + v.len() > MAX_RECORDS_BYTES {
                            exhausted = false;
                            next_seq = seq;
                            return false;
                        }
                        if let Some(s) = seq {
                            bytes += v.len();
                            raw.push((s, v.to_vec()));
                        }
                        true
                    },
                )
                .map_err(storage_err)?;
        }
        let mut records = Vec::with_capacity(raw.len());
        for (seq, v) in &raw {
            records.push(decode_record(*seq, v, &meta.view_type)?);
        }
        let after = raw.last().map_or(pos.after, |(s, _)| *s);
        if let Some(t) = self.stream_table(&meta) {
            t.counters.activity.stream_read(pos.lane, after, next_seq);
        }
        // A closed shard ends once everything before its child (or before the stream was
        // disabled) is committed and read.
        let ended = closed
            && exhausted
            && match child_start {
                Some(c) => watermark >= c,
                None => true,
            };
        let next_iterator = (!ended).then(|| {
            Position {
                arn: pos.arn.clone(),
                lane: pos.lane,
                start: pos.start,
                after,
                issued_ms: (now * 1000.0) as u64,
            }
            .encode()
        });
        Ok(RecordsPage {
            records,
            next_iterator,
        })
    }

    /// Deletes records older than the retention period, shards left empty and closed, and
    /// disabled streams past their retention (background upkeep).
    pub(crate) fn trim_streams(&self) -> Result<(), Error> {
        self.sync_streams()?;
        let now = now_epoch();
        let retention = self.config.stream_retention.as_secs_f64();
        let cutoff = trim_cutoff_seq(now, retention + trim_lag(retention));
        let metas: Vec<Meta> = self.streams.metas.lock().values().cloned().collect();
        for meta in metas {
            let expired = meta.disabled.is_some_and(|d| now - d > retention);
            let mut recs = self.shard_recs(&meta.stream_key)?;
            recs.sort_by_key(|(lane, start, _)| (*lane, *start));
            let mut batch = WriteBatch::default();
            for (i, (lane, start, _)) in recs.iter().enumerate() {
                let child = recs
                    .get(i + 1)
                    .filter(|(l, _, _)| l == lane)
                    .map(|(_, s, _)| *s);
                let prefix = record_prefix(&meta.stream_key, *lane, *start);
                let upper = if expired {
                    prefix_end(&prefix)
                } else {
                    Some(record_key(&meta.stream_key, *lane, *start, cutoff))
                };
                // Everything past the cutoff goes in this pass, in batches of TRIM_CHUNK keys
                // (bounded memory): a pass that stopped at one chunk per shard fell behind any
                // stream written faster than a chunk per sweep interval, and its store grew
                // without bound.
                loop {
                    let mut doomed = Vec::new();
                    self.storage
                        .scan(
                            STREAMS,
                            Bound::Included(&prefix[..]),
                            upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                            false,
                            &mut |k, _| {
                                doomed.push(k.to_vec());
                                doomed.len() < TRIM_CHUNK
                            },
                        )
                        .map_err(storage_err)?;
                    let more = doomed.len() >= TRIM_CHUNK;
                    let mut chunk = WriteBatch::default();
                    for k in doomed {
                        chunk.delete(STREAMS, k);
                    }
                    if !chunk.is_empty() {
                        self.storage
                            .write(chunk, self.config.durability)
                            .map_err(storage_err)?;
                    }
                    if !more {
                        break;
                    }
                }
                // A closed shard goes once its child (hence all its records) is past retention.
                if expired || child.is_some_and(|c| c < cutoff) {
                    batch.delete(STREAMS, shard_key(&meta.stream_key, *lane, *start));
                }
            }
            if expired {
                batch.delete(STREAMS, meta_key(&meta.stream_key));
            }
            if !batch.is_empty() {
                self.storage
                    .write(batch, self.config.durability)
                    .map_err(storage_err)?;
            }
            if expired {
                self.streams.metas.lock().remove(&meta.arn);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sweep trims everything past the cutoff, not one chunk per shard: with more than
    /// TRIM_CHUNK old records in one shard, nothing old is left after a single pass.
    #[test]
    fn one_sweep_trims_every_old_record_of_a_shard() {
        use ferrodyn_model::{AttributeValue as AV, Item, ScalarType};
        use ferrodyn_storage::{MemoryStorage, Storage};

        use crate::control::{CreateTableInput, KeySchemaElement, KeyType};
        use crate::items::PutItemInput;
        use crate::table::{BillingMode, KeyAttr, StreamSpec};
        use crate::{Engine, EngineConfig};

        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let engine = Engine::open(
            storage.clone(),
            EngineConfig {
                stream_retention: std::time::Duration::from_millis(500),
                ..EngineConfig::default()
            },
        )
        .unwrap();
        engine
            .create_table(CreateTableInput {
                name: "trimmed".into(),
                attribute_definitions: vec![KeyAttr {
                    name: "pk".into(),
                    ty: ScalarType::S,
                }],
                key_schema: vec![KeySchemaElement {
                    name: "pk".into(),
                    key_type: KeyType::Hash,
                }],
                billing_mode: Some(BillingMode::PayPerRequest),
                stream: Some(StreamSpec {
                    enabled: true,
                    view_type: Some("KEYS_ONLY".into()),
                }),
                ..Default::default()
            })
            .unwrap();
        let n = TRIM_CHUNK + 50;
        for i in 0..n {
            engine
                .put_item(PutItemInput {
                    table: "trimmed".into(),
                    // One key: every record lands in the same shard.
                    item: Item::from([
                        ("pk".to_string(), AV::S("k".into())),
                        ("n".to_string(), AV::N(i.to_string().parse().unwrap())),
                    ]),
                    ..Default::default()
                })
                .unwrap();
        }
        let count = || {
            let mut c = 0usize;
            storage
                .scan(
                    STREAMS,
                    Bound::Unbounded,
                    Bound::Unbounded,
                    false,
                    &mut |_, _| {
                        c += 1;
                        true
                    },
                )
                .unwrap();
            c
        };
        assert!(count() >= n, "every write has its stream record");
        // Past the retention and the trim lag (both 0.5 s here).
        std::thread::sleep(std::time::Duration::from_millis(1100));
        engine.trim_streams().unwrap();
        // What is left: the stream's meta and shard rows, no record.
        assert!(
            count() < 10,
            "{} stream entries left after one sweep",
            count()
        );
    }

    #[test]
    fn iterator_round_trip_and_tamper() {
        let p = Position {
            arn: "arn:aws:dynamodb:us-east-1:0:table/t/stream/x".into(),
            lane: 3,
            start: 17,
            after: 99,
            issued_ms: 5,
        };
        let s = p.encode();
        let q = Position::decode(&s).expect("decodes");
        assert_eq!((q.lane, q.start, q.after, q.issued_ms), (3, 17, 99, 5));
        assert_eq!(q.arn, p.arn);
        let mut bad = s.clone();
        bad.replace_range(20..22, "ff");
        assert!(Position::decode(&bad).is_none());
        assert!(Position::decode("garbage").is_none());
        assert!(Position::decode("é").is_none());
    }

    #[test]
    fn lanes_number_records_apart() {
        for floor in 1..200u64 {
            for lane in 0..LANES as u8 {
                let seq = lane_seq(floor, lane);
                assert!(
                    seq >= floor && seq < floor + LANES as u64,
                    "{floor} {lane}: {seq}"
                );
                assert_eq!(seq % LANES as u64, u64::from(lane));
            }
        }
        // The same floor in two lanes never gives the same number.
        for floor in [1u64, 1_796_535_738_197_000, u64::MAX / 2] {
            let numbers: std::collections::HashSet<u64> =
                (0..LANES as u8).map(|lane| lane_seq(floor, lane)).collect();
            assert_eq!(numbers.len(), LANES);
        }
    }

    #[test]
    fn shard_ids_parse_and_sort() {
        let a = shard_id(1, 5);
        assert_eq!(parse_shard_id(&a), Some((1, 5)));
        assert!(shard_id(0, 5) < shard_id(0, 40));
        assert!(parse_shard_id("shardId-x").is_none());
        assert!(parse_shard_id(&shard_id(9, 1)).is_none());
    }

    #[test]
    fn record_round_trip() {
        let mut keys = Item::new();
        keys.insert("p".into(), ferrodyn_model::AttributeValue::S("a".into()));
        let raw = encode_record(2, true, 12.5, &keys, None, Some(&keys));
        let r = decode_record(7, &raw, "NEW_IMAGE").expect("decodes");
        assert_eq!(r.event_name, "MODIFY");
        assert!(r.by_service);
        assert_eq!(r.new_image.as_ref(), Some(&keys));
        assert!(r.old_image.is_none());
        assert_eq!(r.sequence_number, "000000000000000000007");
        assert!(decode_record(7, &raw[..5], "NEW_IMAGE").is_err());
    }
}
