//! Point-in-time recovery: each table's change history, the settings
//! (UpdateContinuousBackups / DescribeContinuousBackups), reading a table as it was at any
//! instant of its restorable window, the changes between two instants (incremental exports),
//! and the retention sweep.
//!
//! # The history
//!
//! While recovery is enabled, every change of an item records the item's **old image** (its
//! value just before the change, or "absent") in the table's history keyspace, in the same
//! storage batch as the change itself (`write::stage_item_change`), under the key
//!
//! ```text
//! item storage key ‖ time (8 bytes, µs since the epoch, big-endian) ‖ tag (4 bytes)
//! ```
//!
//! Item storage keys are self-delimiting (`keys.rs`), so a table's history is grouped by item
//! and, within an item, ordered by time. The state of an item at instant `T` is the old image
//! of its first change after `T`, or, when it has not changed since `T`, its current value.
//! Reading a table at `T` therefore merges two ordered scans of one storage snapshot: the
//! table's items and its history. The history costs one old image per change (nothing per
//! unchanged item, nothing per second), and entries older than the recovery period are never
//! needed again (a restore to `T` only reads changes after `T`): the sweep deletes them.
//!
//! Invariants:
//! - times are strictly increasing within a process ([`change_time`]); changes of one item
//!   are serialized by its lock, so its history is in change order. Between the nodes of a
//!   cluster the order of one item's changes is that of their clocks (the tag tells two
//!   nodes' entries apart): the nodes' clocks must agree to within the precision a restore
//!   needs;
//! - every change after `enabled_at` has its entry: enabling installs the new definition and
//!   waits until no request holds the old one before it sets `enabled_at` (embedded engines),
//!   and on a shared engine every writer compares its definition with the catalog record
//!   under a shared lock (`locks.rs`);
//! - disabling recovery drops the history keyspace; enabling it again starts a new one.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use ferrodyn_model::{Error, Item};
use ferrodyn_storage::{Snapshot, WriteBatch};

use crate::table::{PitrSpec, TableDef};
use crate::{itemcodec, now_epoch, storage_err, Engine, Table};

/// Bytes after the item key in a history key: time (8) and tag (4).
const SUFFIX: usize = 12;
/// Entries read per page when merging scans.
const PAGE: usize = 512;
/// Seconds in a day.
const DAY: f64 = 86_400.0;
/// How often the retention sweep runs (it also runs once at start).
const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// The time of a change, in µs since the epoch: the wall clock, but strictly increasing within
/// this process, so two changes of one item never share a time.
pub(crate) fn change_time() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// This process's tag in history keys (random, so the nodes of a cluster differ).
fn tag() -> [u8; 4] {
    static TAG: OnceLock<[u8; 4]> = OnceLock::new();
    *TAG.get_or_init(|| {
        let id = uuid::Uuid::new_v4();
        let b = id.as_bytes();
        [b[0], b[1], b[2], b[3]]
    })
}

/// Epoch seconds → µs (saturating; negative times are 0).
pub(crate) fn micros(epoch_secs: f64) -> u64 {
    if epoch_secs <= 0.0 || !epoch_secs.is_finite() {
        return 0;
    }
    (epoch_secs * 1e6).round().min(u64::MAX as f64) as u64
}

/// Stages the history entry of a change of the item at `key` whose old image is `old`, when
/// the table has recovery enabled.
pub(crate) fn stage(def: &TableDef, key: &[u8], old: Option<&Item>, batch: &mut WriteBatch) {
    let Some(spec) = &def.pitr else { return };
    let mut k = Vec::with_capacity(key.len() + SUFFIX);
    k.extend_from_slice(key);
    k.extend_from_slice(&change_time().to_be_bytes());
    k.extend_from_slice(&tag());
    let value = match old {
        Some(item) => {
            let mut v = vec![1u8];
            v.extend_from_slice(&itemcodec::encode_item(item));
            v
        }
        None => vec![0u8],
    };
    batch.put(&spec.keyspace, k, value);
}

/// Splits a history key into (item key, time).
pub(crate) fn split(key: &[u8]) -> Option<(&[u8], u64)> {
    if key.len() <= SUFFIX {
        return None;
    }
    let (item, rest) = key.split_at(key.len() - SUFFIX);
    let time = u64::from_be_bytes(rest[..8].try_into().ok()?);
    Some((item, time))
}

/// The stored item of a history value (`None`: the item was absent).
pub(crate) fn image(value: &[u8]) -> Result<Option<&[u8]>, Error> {
    match value.split_first() {
        Some((0, _)) => Ok(None),
        Some((1, raw)) => Ok(Some(raw)),
        _ => Err(Error::internal("malformed history entry")),
    }
}

/// DescribeContinuousBackups' PointInTimeRecoveryDescription of an enabled table.
#[derive(Debug, Clone, PartialEq)]
pub struct PitrWindow {
    pub period_days: u32,
    /// Epoch seconds.
    pub earliest: f64,
    /// Epoch seconds.
    pub latest: f64,
}

/// The restorable window of a table with recovery enabled, now.
pub(crate) fn window(spec: &PitrSpec) -> PitrWindow {
    let now = now_epoch();
    PitrWindow {
        period_days: spec.period_days,
        earliest: spec.enabled_at.max(now - spec.period_days as f64 * DAY),
        latest: now,
    }
}

/// One item's change between two instants (incremental exports).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The key attributes.
    pub keys: Item,
    /// The item at the start of the period (`None`: absent).
    pub old: Option<Item>,
    /// The item at the end of the period (`None`: deleted).
    pub new: Option<Item>,
    /// When it was last written within the period (µs since the epoch).
    pub write_time_us: u64,
}

/// A stored (key, value) pair.
type Entry = (Vec<u8>, Vec<u8>);
/// What [`merge`] calls for each key: (item key, current value, history entries).
type MergeFn<'f> = dyn FnMut(&[u8], Option<&[u8]>, &Entries) -> Result<bool, Error> + 'f;
/// What walks call for each (item key, stored item); false stops.
pub(crate) type ItemFn<'f> = dyn FnMut(&[u8], &[u8]) -> Result<bool, Error> + 'f;

/// Ordered pages of one keyspace of a snapshot.
struct Pager<'a> {
    snap: &'a dyn Snapshot,
    keyspace: &'a str,
    after: Option<Vec<u8>>,
    buf: VecDeque<Entry>,
    done: bool,
}

impl<'a> Pager<'a> {
    fn new(snap: &'a dyn Snapshot, keyspace: &'a str) -> Self {
        Pager {
            snap,
            keyspace,
            after: None,
            buf: VecDeque::new(),
            done: false,
        }
    }

    fn fill(&mut self) -> Result<(), Error> {
        if !self.buf.is_empty() || self.done {
            return Ok(());
        }
        let lower = self
            .after
            .as_deref()
            .map_or(Bound::Unbounded, Bound::Excluded);
        let buf = &mut self.buf;
        self.snap
            .scan(
                self.keyspace,
                lower,
                Bound::Unbounded,
                false,
                &mut |k, v| {
                    buf.push_back((k.to_vec(), v.to_vec()));
                    buf.len() < PAGE
                },
            )
            .map_err(storage_err)?;
        match self.buf.back() {
            Some((k, _)) if self.buf.len() == PAGE => self.after = Some(k.clone()),
            _ => self.done = true,
        }
        Ok(())
    }

    fn peek(&mut self) -> Result<Option<&Entry>, Error> {
        self.fill()?;
        Ok(self.buf.front())
    }

    fn pop(&mut self) -> Option<Entry> {
        self.buf.pop_front()
    }
}

/// The history entries of one item, in time order: (time, old image).
type Entries = Vec<(u64, Option<Vec<u8>>)>;

/// Walks the items of a table (its `items` keyspace) and its history in one snapshot, calling
/// `f(item key, current value, history entries)` for every key that is either a current item
/// or has history, in key order. `f` returns false to stop.
fn merge(
    snap: &dyn Snapshot,
    items_ks: &str,
    history_ks: Option<&str>,
    f: &mut MergeFn<'_>,
) -> Result<(), Error> {
    let mut items = Pager::new(snap, items_ks);
    let mut history = history_ks.map(|ks| Pager::new(snap, ks));
    let mut entries: Entries = Vec::new();
    loop {
        let item_key = items.peek()?.map(|(k, _)| k.clone());
        let hist_key = match history.as_mut() {
            Some(h) => match h.peek()? {
                Some((k, _)) => Some(
                    split(k)
                        .ok_or_else(|| Error::internal("malformed history key"))?
                        .0
                        .to_vec(),
                ),
                None => None,
            },
            None => None,
        };
        let key = match (item_key, hist_key) {
            (None, None) => return Ok(()),
            (Some(a), None) => a,
            (None, Some(b)) => b,
            (Some(a), Some(b)) => a.min(b),
        };
        let current = match items.peek()? {
            Some((k, _)) if *k == key => items.pop().map(|(_, v)| v),
            _ => None,
        };
        entries.clear();
        if let Some(h) = history.as_mut() {
            while let Some((k, _)) = h.peek()? {
                match split(k) {
                    Some((ik, _)) if ik == key.as_slice() => {}
                    _ => break,
                }
                let Some((k, v)) = h.pop() else { break };
                let time = split(&k).map(|(_, t)| t).unwrap_or(0);
                entries.push((time, image(&v)?.map(<[u8]>::to_vec)));
            }
        }
        if !f(&key, current.as_deref(), &entries)? {
            return Ok(());
        }
    }
}

/// The stored value of an item at `at` (µs), from its current value and history.
fn state_at<'v>(current: Option<&'v [u8]>, entries: &'v Entries, at: u64) -> Option<&'v [u8]> {
    match entries.iter().find(|(t, _)| *t > at) {
        Some((_, old)) => old.as_deref(),
        None => current,
    }
}

impl Engine {
    /// UpdateContinuousBackups: enables or disables point-in-time recovery of a table.
    /// Returns the table's window when enabled.
    pub fn update_continuous_backups(
        &self,
        name: &str,
        enabled: bool,
        period_days: Option<u32>,
    ) -> Result<Option<PitrWindow>, Error> {
        if let Some(p) = period_days {
            if !(1..=35).contains(&p) {
                return Err(Error::validation(
                    "The provided RecoveryPeriodInDays is not valid. RecoveryPeriodInDays must be between 1 and 35 days.",
                ));
            }
            if !enabled {
                return Err(Error::validation(
                    "RecoveryPeriodInDays can only be specified when PointInTimeRecoveryEnabled is true.",
                ));
            }
        }
        let ddl = self.ddl.lock()?;
        let table = self.backup_table(name)?;
        let mut def = table.def.clone();
        let old_history = def.pitr.as_ref().map(|p| p.keyspace.clone());
        match (enabled, &mut def.pitr) {
            (true, Some(spec)) => {
                // Already enabled: only the period may change; the history stays.
                spec.period_days = period_days.unwrap_or(spec.period_days);
                let window = window(spec);
                self.replace_def(&table, def, "UpdateContinuousBackups")?;
                return Ok(Some(window));
            }
            (false, None) => return Ok(None),
            (true, None) => {
                let keyspace = format!("h-{}-{}", def.id, uuid::Uuid::new_v4().simple());
                self.storage
                    .create_keyspace(&keyspace)
                    .map_err(storage_err)?;
                def.pitr = Some(PitrSpec {
                    // Set below, once no request uses the old definition.
                    enabled_at: f64::MAX,
                    period_days: period_days.unwrap_or(35),
                    keyspace,
                });
            }
            (false, Some(_)) => def.pitr = None,
        }
        let old = self.replace_def(&table, def, "UpdateContinuousBackups")?;
        drop((ddl, table));
        if let Some(ks) = old_history {
            self.storage.drop_keyspace(&ks).map_err(storage_err)?;
        }
        if !enabled {
            return Ok(None);
        }
        // Every change from now on records its history: wait for the requests that still
        // use the definition without it, then open the window.
        crate::index::quiesce(Some(old));
        let _ddl = self.ddl.lock()?;
        let table = self.backup_table(name)?;
        let mut def = table.def.clone();
        let Some(spec) = def.pitr.as_mut() else {
            return Ok(None); // disabled again meanwhile
        };
        spec.enabled_at = now_epoch();
        let window = window(spec);
        self.replace_def(&table, def, "UpdateContinuousBackups")?;
        Ok(Some(window))
    }

    /// DescribeContinuousBackups: the table's window, `None` when recovery is disabled.
    pub fn describe_continuous_backups(&self, name: &str) -> Result<Option<PitrWindow>, Error> {
        let table = self.backup_table(name)?;
        Ok(table
            .def
            .pitr
            .as_ref()
            .filter(|s| s.enabled_at < f64::MAX)
            .map(window))
    }

    /// The table for a backup-API call: missing tables are `TableNotFoundException`.
    pub(crate) fn backup_table(&self, name: &str) -> Result<Arc<Table>, Error> {
        self.lookup(name)?
            .ok_or_else(|| Error::TableNotFound(format!("Table not found: {name}")))
    }

    /// Checks that `at` (epoch seconds) is restorable for `table` and returns the spec.
    pub(crate) fn restorable<'t>(&self, table: &'t Table, at: f64) -> Result<&'t PitrSpec, Error> {
        let spec = table
            .def
            .pitr
            .as_ref()
            .filter(|s| s.enabled_at < f64::MAX)
            .ok_or_else(|| {
                Error::PointInTimeRecoveryUnavailable(format!(
                    "Point in time recovery is not enabled for table '{}'",
                    table.def.name
                ))
            })?;
        let w = window(spec);
        // Restore times are to the second: the window's bounds are compared at that grain.
        if at < w.earliest.floor() || at > w.latest {
            return Err(Error::InvalidRestoreTime(
                "Invalid restore time specified. RestoreDateTime must be between EarliestRestorableDateTime and LatestRestorableDateTime.".into(),
            ));
        }
        Ok(spec)
    }

    /// Calls `f(item key, stored item)` for every item of `table` as it was at `at_us` (µs
    /// since the epoch), in key order, from one consistent snapshot. The table must have
    /// recovery enabled (see [`Engine::restorable`] for the window).
    pub(crate) fn walk_at(
        &self,
        def: &TableDef,
        snap: &dyn Snapshot,
        at_us: u64,
        f: &mut ItemFn<'_>,
    ) -> Result<(), Error> {
        let history = def.pitr.as_ref().map(|p| p.keyspace.as_str());
        merge(
            snap,
            &def.keyspace,
            history,
            &mut |key, current, entries| match state_at(current, entries, at_us) {
                Some(raw) => f(key, raw),
                None => Ok(true),
            },
        )
    }

    /// The items of table `name` as they were at `at` (epoch seconds, within the table's
    /// restorable window), in key order, from one consistent snapshot: `f` gets each one and
    /// returns false to stop. Returns the table's definition (for exports).
    pub fn read_table_at(
        &self,
        name: &str,
        at: f64,
        f: &mut dyn FnMut(Item) -> Result<bool, Error>,
    ) -> Result<TableDef, Error> {
        let table = self.backup_table(name)?;
        self.restorable(&table, at)?;
        let snap = self.storage.snapshot();
        self.walk_at(&table.def, &*snap, micros(at), &mut |_, raw| {
            f(itemcodec::decode_item(raw)?)
        })?;
        Ok(table.def.clone())
    }

    /// The items of table `name` that changed from `from` (inclusive) to `to` (exclusive),
    /// epoch seconds within the restorable window, in key order: `f` gets each change (the
    /// item before `from` and just before `to`) and returns false to stop. Items created and
    /// deleted again within the period are left out.
    pub fn read_changes(
        &self,
        name: &str,
        from: f64,
        to: f64,
        f: &mut dyn FnMut(Change) -> Result<bool, Error>,
    ) -> Result<TableDef, Error> {
        let table = self.backup_table(name)?;
        self.restorable(&table, from)?;
        self.restorable(&table, to)?;
        let (from_us, to_us) = (micros(from).max(1), micros(to).max(1));
        let def = table.def.clone();
        let snap = self.storage.snapshot();
        let history = def.pitr.as_ref().map(|p| p.keyspace.as_str());
        merge(
            &*snap,
            &def.keyspace,
            history,
            &mut |_, current, entries| {
                let Some(write_time_us) = entries
                    .iter()
                    .filter(|(t, _)| *t >= from_us && *t < to_us)
                    .map(|(t, _)| *t)
                    .next_back()
                else {
                    return Ok(true);
                };
                let decode = |raw: Option<&[u8]>| raw.map(itemcodec::decode_item).transpose();
                let old = decode(state_at(current, entries, from_us - 1))?;
                let new = decode(state_at(current, entries, to_us - 1))?;
                let Some(any) = new.as_ref().or(old.as_ref()) else {
                    return Ok(true);
                };
                let keys = crate::keys::key_map(&def, any);
                f(Change {
                    keys,
                    old,
                    new,
                    write_time_us,
                })
            },
        )?;
        Ok(def)
    }

    /// Deletes history older than each table's recovery period (background upkeep; at most
    /// every [`SWEEP_EVERY`]).
    pub(crate) fn trim_history(&self) -> Result<(), Error> {
        {
            let mut last = self.history_swept.lock();
            if last.is_some_and(|t| t.elapsed() < SWEEP_EVERY) {
                return Ok(());
            }
            *last = Some(std::time::Instant::now());
        }
        let tables: Vec<Arc<Table>> = self.tables.read().values().cloned().collect();
        for t in tables {
            let Some(spec) = &t.def.pitr else { continue };
            let cutoff = micros(now_epoch() - spec.period_days as f64 * DAY);
            self.trim_history_before(&spec.keyspace, cutoff)?;
        }
        Ok(())
    }

    /// Deletes the entries of a history keyspace older than `cutoff` (µs).
    pub(crate) fn trim_history_before(&self, keyspace: &str, cutoff: u64) -> Result<u64, Error> {
        let mut after: Option<Vec<u8>> = None;
        let mut deleted = 0;
        loop {
            let mut doomed = Vec::new();
            let mut seen = 0;
            let mut last = None;
            let r = self.storage.scan(
                keyspace,
                after.as_deref().map_or(Bound::Unbounded, Bound::Excluded),
                Bound::Unbounded,
                false,
                &mut |k, _| {
                    seen += 1;
                    if split(k).is_some_and(|(_, t)| t < cutoff) {
                        doomed.push(k.to_vec());
                    }
                    last = Some(k.to_vec());
                    seen < 4096
                },
            );
            if r.is_err() {
                return Ok(deleted); // disabled meanwhile
            }
            if !doomed.is_empty() {
                let mut batch = WriteBatch::default();
                deleted += doomed.len() as u64;
                for k in doomed {
                    batch.delete(keyspace, k);
                }
                self.storage
                    .write(batch, ferrodyn_storage::Durability::Buffered)
                    .map_err(storage_err)?;
            }
            if seen < 4096 {
                return Ok(deleted);
            }
            after = last;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_times_increase_strictly() {
        let mut prev = 0;
        for _ in 0..10_000 {
            let t = change_time();
            assert!(t > prev);
            prev = t;
        }
    }

    #[test]
    fn history_keys_split_back() {
        let key = b"item-key".to_vec();
        let mut k = key.clone();
        k.extend_from_slice(&42u64.to_be_bytes());
        k.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(split(&k), Some((&key[..], 42)));
        assert_eq!(split(&k[..SUFFIX]), None);
    }

    #[test]
    fn state_at_takes_the_first_change_after_the_instant() {
        let entries: Entries = vec![(10, None), (20, Some(b"a".to_vec())), (30, None)];
        let cur = Some(&b"c"[..]);
        assert_eq!(state_at(cur, &entries, 5), None);
        assert_eq!(state_at(cur, &entries, 10), Some(&b"a"[..]));
        assert_eq!(state_at(cur, &entries, 25), None);
        assert_eq!(state_at(cur, &entries, 30), cur);
        assert_eq!(state_at(None, &Vec::new(), 1), None);
    }
}

#[cfg(test)]
mod engine_tests {
    use std::sync::Arc;

    use ferrodyn_model::{AttributeValue as AV, Item};
    use ferrodyn_storage::MemoryStorage;

    use crate::items::{DeleteItemInput, PutItemInput};
    use crate::{now_epoch, Engine, EngineConfig};

    fn item(k: &str, v: &str) -> Item {
        Item::from([
            ("pk".to_string(), AV::S(k.into())),
            ("v".to_string(), AV::S(v.into())),
        ])
    }

    fn state(engine: &Engine, at: f64) -> Vec<(String, String)> {
        let mut out = Vec::new();
        engine
            .read_table_at("tbl", at, &mut |i| {
                let s = |n: &str| match i.get(n) {
                    Some(AV::S(s)) => s.clone(),
                    _ => String::new(),
                };
                out.push((s("pk"), s("v")));
                Ok(true)
            })
            .unwrap();
        out.sort();
        out
    }

    #[test]
    fn reads_at_each_instant_equal_the_recorded_states() {
        let engine = Engine::open(Arc::new(MemoryStorage::new()), EngineConfig::default()).unwrap();
        crate::create_hash_table(&engine, "tbl");
        let put = |k: &str, v: &str| {
            engine
                .put_item(PutItemInput {
                    table: "tbl".into(),
                    item: item(k, v),
                    ..Default::default()
                })
                .unwrap();
        };
        put("a", "before");
        engine.update_continuous_backups("tbl", true, None).unwrap();
        let mut expected = vec![(now_epoch(), state(&engine, now_epoch()))];
        for n in 0..60 {
            let k = format!("k{}", n % 4);
            if n % 7 == 3 {
                engine
                    .delete_item(DeleteItemInput {
                        table: "tbl".into(),
                        key: Item::from([("pk".to_string(), AV::S(k))]),
                        ..Default::default()
                    })
                    .unwrap();
            } else {
                put(&k, &format!("v{n}"));
            }
            std::thread::sleep(std::time::Duration::from_micros(300));
            let at = now_epoch();
            expected.push((at, state(&engine, at)));
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        for (at, want) in &expected {
            assert_eq!(&state(&engine, *at), want, "at {at}");
        }
    }

    fn history_entries(engine: &Engine) -> usize {
        let table = engine.table("tbl").unwrap();
        let ks = table.def.pitr.as_ref().unwrap().keyspace.clone();
        let mut n = 0;
        engine
            .storage
            .scan(
                &ks,
                std::ops::Bound::Unbounded,
                std::ops::Bound::Unbounded,
                false,
                &mut |_, _| {
                    n += 1;
                    true
                },
            )
            .unwrap();
        n
    }

    #[test]
    fn retention_reclaims_old_history_and_keeps_later_instants_exact() {
        let engine = Engine::open(Arc::new(MemoryStorage::new()), EngineConfig::default()).unwrap();
        crate::create_hash_table(&engine, "tbl");
        engine
            .update_continuous_backups("tbl", true, Some(1))
            .unwrap();
        let put = |k: &str, v: &str| {
            engine
                .put_item(PutItemInput {
                    table: "tbl".into(),
                    item: item(k, v),
                    ..Default::default()
                })
                .unwrap();
        };
        for n in 0..10 {
            put("a", &format!("old{n}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        let cutoff = now_epoch();
        std::thread::sleep(std::time::Duration::from_millis(2));
        put("a", "new1");
        let mid = now_epoch();
        std::thread::sleep(std::time::Duration::from_millis(2));
        put("b", "new2");
        let before_mid = state(&engine, mid);
        assert_eq!(history_entries(&engine), 12);
        // The entries of changes before the cutoff go; the window's later instants stay exact.
        let spec = engine.table("tbl").unwrap().def.pitr.clone().unwrap();
        let deleted = engine
            .trim_history_before(&spec.keyspace, super::micros(cutoff))
            .unwrap();
        assert_eq!(deleted, 10);
        assert_eq!(history_entries(&engine), 2);
        assert_eq!(state(&engine, mid), before_mid);
        assert_eq!(
            state(&engine, cutoff),
            vec![("a".to_string(), "old9".to_string())]
        );
        // Disabling drops the history; enabling again starts a new one.
        engine
            .update_continuous_backups("tbl", false, None)
            .unwrap();
        assert!(!engine.storage.keyspace_exists(&spec.keyspace));
        engine.update_continuous_backups("tbl", true, None).unwrap();
        assert_eq!(history_entries(&engine), 0);
    }
}
