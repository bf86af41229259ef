//! A read cache in front of any engine: [`CachedStorage`].
//!
//! On a large on-disk store every point read walks the LSM levels (filters, index blocks, data
//! blocks) and every range read opens an iterator on each level. The cache keeps, in memory,
//! * **rows**: the latest value (or absence) of recently read keys, for [`Storage::get`];
//! * **groups**: *all* entries whose key starts with the same [`GROUP_PREFIX`] bytes, read in
//!   one scan when a range read falls inside such a group and the group holds at most
//!   [`MAX_GROUP_BYTES`]; later range reads and point reads inside the group are answered from
//!   it. The layer above lays keys out so that a group is one partition (its keys start with an
//!   8-byte hash of the partition key), so a Query of a small partition becomes one lookup.
//!   Groups that are larger are remembered as such (`TooBig`) and read from the engine.
//!
//! Correctness does not depend on the key layout: a write drops the groups of the keys it
//! writes, and their rows too unless it may refresh them (below), whatever the keys mean.
//!
//! Invariants (the cache never answers with a value older than the engine's at the start of the
//! read, so the engine's guarantees in the crate docs carry over unchanged):
//! * Entries are keyed by a per-name *incarnation* id; dropping a keyspace forgets its id, so
//!   a keyspace re-created under the same name never sees the old entries.
//! * Each group maps to a shard with a `writing` count and an `epoch`. A writer increments
//!   `writing` of every shard it touches *before* the engine applies the batch, and afterwards,
//!   under the shard's lock, bumps `epoch`, removes the touched rows and groups and decrements
//!   `writing`. While `writing > 0` readers of the shard go straight to the engine, so no
//!   reader can be served an entry the engine has already overtaken.
//! * A reader that misses records `epoch`, reads the engine, and inserts what it read only if,
//!   under the shard's lock, `epoch` is unchanged: no write to the group finished in between.
//!   A write that overtook the value and is still running removes the entry when it finishes
//!   (its removal is ordered after the insert by the lock), and until then readers bypass.
//! * A writer replaces an already cached row with the value it wrote, instead of removing it,
//!   only if it was the shard's sole writer throughout: it began when `writing` was 0 and, at
//!   its end, `epoch` is the one it saw then (no other write ended) and `writing` is 1 (none
//!   is running). No other write of the key can then have been applied after it, so its value
//!   is the engine's. Every other writer removes the row.
//! * Snapshots bypass the cache (it holds only the latest values).
//! * A reopen of the engine underneath ([`Storage::on_reopen`]) empties the cache and moves
//!   every shard's epoch, before any read of the reopened store.

use std::collections::HashMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::sync::{AtomicU32, AtomicU64, Mutex, Ordering, RwLock};
use crate::{
    key_unstorable, prefix_end, range_is_empty, CommitTicket, Durability, DurableFuture,
    KeyspaceStats, Result, Snapshot, Storage, StorageStats, WriteBatch,
};

/// Keys sharing this many leading bytes form a group.
pub const GROUP_PREFIX: usize = 8;
/// Largest group (keys + values) kept whole.
pub const MAX_GROUP_BYTES: usize = 128 * 1024;
const SHARDS: usize = 256;
/// Bookkeeping bytes charged per entry on top of its keys and values.
const ENTRY_OVERHEAD: u64 = 64;

type Key = (u64, Box<[u8]>);

#[derive(Clone)]
enum Cached {
    /// The value of one key (`None`: absent).
    Row(Option<Arc<[u8]>>),
    /// Every entry of a group, ascending by key.
    Group(Arc<Group>),
    /// The group holds more than [`MAX_GROUP_BYTES`].
    TooBig,
}

/// Every entry of a group in two allocations: all keys back to back, then all values back to
/// back, in one buffer, and the end offsets of each key and value. A binary search touches only
/// the key region and a scan reads both regions front to back, so a lookup in a cold group
/// costs a few cache lines instead of one heap object per key and per value.
///
/// Invariants: `ends` ascends by key; `ends[i].0` is the end of key `i` in `bytes[..keys_len]`
/// (key `i` starts where key `i - 1` ends); `ends[i].1` is the end of value `i` counted from
/// `keys_len`, likewise. Offsets fit in `u32` because a group holds at most
/// [`MAX_GROUP_BYTES`].
struct Group {
    bytes: Box<[u8]>,
    keys_len: usize,
    ends: Box<[(u32, u32)]>,
}

/// Collects a group's entries, in key order, into a [`Group`].
#[derive(Default)]
struct GroupBuilder {
    keys: Vec<u8>,
    values: Vec<u8>,
    ends: Vec<(u32, u32)>,
}

impl GroupBuilder {
    /// Bytes of keys and values pushed so far.
    fn bytes(&self) -> usize {
        self.keys.len() + self.values.len()
    }

    /// Appends an entry whose key is greater than every key pushed before.
    fn push(&mut self, key: &[u8], value: &[u8]) {
        self.keys.extend_from_slice(key);
        self.values.extend_from_slice(value);
        // MAX_GROUP_BYTES keeps both well inside u32; a larger group is never built.
        let offset = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        self.ends
            .push((offset(self.keys.len()), offset(self.values.len())));
    }

    fn build(self) -> Group {
        let keys_len = self.keys.len();
        let mut bytes = self.keys;
        bytes.extend_from_slice(&self.values);
        Group {
            bytes: bytes.into_boxed_slice(),
            keys_len,
            ends: self.ends.into_boxed_slice(),
        }
    }
}

impl Group {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Entry `i` of the region that starts at `base` and whose end offsets `end` picks: an
    /// entry starts where the one before it ends.
    fn slot(&self, base: usize, i: usize, end: impl Fn(&(u32, u32)) -> u32) -> &[u8] {
        let start = i.checked_sub(1).map_or(0, |p| end(&self.ends[p]) as usize);
        &self.bytes[base + start..base + end(&self.ends[i]) as usize]
    }

    fn key(&self, i: usize) -> &[u8] {
        self.slot(0, i, |e| e.0)
    }

    fn value(&self, i: usize) -> &[u8] {
        self.slot(self.keys_len, i, |e| e.1)
    }

    /// The number of entries whose key is below (`or_equal`: at most) `bound`.
    fn partition(&self, bound: &[u8], or_equal: bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let below = match self.key(mid).cmp(bound) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Equal => or_equal,
                std::cmp::Ordering::Greater => false,
            };
            if below {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let i = self.partition(key, false);
        (i < self.len() && self.key(i) == key).then(|| self.value(i))
    }

    /// Visits the entries between the bounds, in order; `false` from `f` stops.
    fn scan(
        &self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) {
        let start = match lower {
            Bound::Included(l) => self.partition(l, false),
            Bound::Excluded(l) => self.partition(l, true),
            Bound::Unbounded => 0,
        };
        let end = match upper {
            Bound::Included(u) => self.partition(u, true),
            Bound::Excluded(u) => self.partition(u, false),
            Bound::Unbounded => self.len(),
        };
        if start >= end {
            return;
        }
        if reverse {
            for i in (start..end).rev() {
                if !f(self.key(i), self.value(i)) {
                    return;
                }
            }
        } else {
            for i in start..end {
                if !f(self.key(i), self.value(i)) {
                    return;
                }
            }
        }
    }
}

#[derive(Clone)]
struct Weigher;

impl quick_cache::Weighter<Key, Cached> for Weigher {
    fn weight(&self, key: &Key, val: &Cached) -> u64 {
        let body = match val {
            Cached::Row(v) => v.as_ref().map_or(0, |v| v.len()),
            Cached::Group(g) => g.bytes.len() + g.ends.len() * 8,
            Cached::TooBig => 0,
        };
        ENTRY_OVERHEAD + key.1.len() as u64 + body as u64
    }
}

#[derive(Default)]
struct Shard {
    /// Writers between "before the engine applies" and "entries removed".
    writing: AtomicU32,
    /// Bumped by every finished write; guarded so that fills and invalidations serialize.
    epoch: Mutex<u64>,
    /// Cacheable reads of the shard answered from memory, and passed to the engine (counted
    /// per shard so that readers of different groups do not share a counter).
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A key written by a batch, between [`CachedStorage::begin_write`] and `end_write`.
struct Touched {
    /// Index of the key's shard.
    shard: usize,
    /// The key's cached row key.
    row: Key,
    /// When the write began on an idle shard: the shard's epoch then, and the value written
    /// (`None`: deleted).
    fresh: Option<(u64, Option<Arc<[u8]>>)>,
}

/// A cached key: the row key and its group's key.
fn row_key(id: u64, key: &[u8]) -> Key {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(b'r');
    k.extend_from_slice(key);
    (id, k.into_boxed_slice())
}

fn group_key(id: u64, group: &[u8]) -> Key {
    let mut k = Vec::with_capacity(GROUP_PREFIX + 1);
    k.push(b'g');
    k.extend_from_slice(group);
    (id, k.into_boxed_slice())
}

/// The group of a key, if it is long enough to have one.
fn group_of(key: &[u8]) -> Option<&[u8]> {
    key.get(..GROUP_PREFIX)
}

/// The group both bounds lie in (every key between them then belongs to it), if any.
fn common_group<'a>(lower: Bound<&'a [u8]>, upper: Bound<&[u8]>) -> Option<&'a [u8]> {
    let (Bound::Included(l) | Bound::Excluded(l)) = lower else {
        return None;
    };
    let (Bound::Included(u) | Bound::Excluded(u)) = upper else {
        return None;
    };
    let g = group_of(l)?;
    (group_of(u)? == g).then_some(g)
}

/// A [`Storage`] that answers repeated reads from memory. See the module docs.
pub struct CachedStorage<S> {
    inner: S,
    /// Shared with the engine's reopen listener (std's `Arc`: the model tests check the
    /// shard protocol, not this sharing).
    cache: std::sync::Arc<quick_cache::sync::Cache<Key, Cached, Weigher>>,
    shards: std::sync::Arc<[Shard]>,
    ids: RwLock<HashMap<String, u64>>,
    next_id: AtomicU64,
}

impl<S: Storage> CachedStorage<S> {
    /// Wraps `inner` with a cache of at most `capacity_bytes` of keys and values.
    pub fn new(inner: S, capacity_bytes: u64) -> Self {
        let estimated_items = (capacity_bytes / 2048).clamp(16, 1 << 22) as usize;
        let this = Self {
            inner,
            cache: std::sync::Arc::new(quick_cache::sync::Cache::with_weighter(
                estimated_items,
                capacity_bytes.max(1),
                Weigher,
            )),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            ids: RwLock::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        };
        // A reopen of the engine may lose writes that were visible (not yet durable): forget
        // everything. Every epoch moves first, so a reader that read the old store before the
        // reopen cannot insert what it read afterwards ([`Self::fill`]); the engine holds its
        // store closed meanwhile, so no reader reads the new store before the cache is empty.
        let (cache, shards) = (
            std::sync::Arc::clone(&this.cache),
            std::sync::Arc::clone(&this.shards),
        );
        this.inner.on_reopen(Box::new(move || {
            for shard in shards.iter() {
                *shard.epoch.lock() += 1;
            }
            cache.clear();
        }));
        this
    }

    /// The engine underneath.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Memory currently charged to the cache, in bytes.
    pub fn weight(&self) -> u64 {
        self.cache.weight()
    }

    fn id_of(&self, keyspace: &str) -> u64 {
        if let Some(&id) = self.ids.read().get(keyspace) {
            return id;
        }
        *self
            .ids
            .write()
            .entry(keyspace.to_owned())
            .or_insert_with(|| self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn shard_index(id: u64, group: &[u8]) -> usize {
        let mut h = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for &b in group {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        (h >> 32) as usize % SHARDS
    }

    fn shard(&self, id: u64, group: &[u8]) -> &Shard {
        &self.shards[Self::shard_index(id, group)]
    }

    /// Inserts what a reader read, unless a write to the group finished since the reader
    /// recorded `epoch`. A write still running may have overtaken the value, but it removes
    /// the entry when it finishes, and until then readers of the shard bypass the cache.
    fn fill(&self, shard: &Shard, epoch: u64, key: Key, value: Cached) {
        let current = shard.epoch.lock();
        if *current == epoch {
            self.cache.insert(key, value);
        }
    }

    /// Marks the shards of every key in the batch as being written; returns what
    /// [`Self::end_write`] needs for each key.
    fn begin_write(&self, batch: &WriteBatch) -> Vec<Touched> {
        let mut touched = Vec::with_capacity(batch.len());
        for op in batch.iter() {
            let Some(group) = group_of(op.key) else {
                continue;
            };
            let id = self.id_of(op.keyspace);
            let index = Self::shard_index(id, group);
            let shard = &self.shards[index];
            let epoch = shard.epoch.lock();
            // Only a write that starts on an idle shard can end as its sole writer.
            let fresh = (shard.writing.load(Ordering::SeqCst) == 0)
                .then(|| (*epoch, op.value.map(Arc::from)));
            shard.writing.fetch_add(1, Ordering::SeqCst);
            drop(epoch);
            touched.push(Touched {
                shard: index,
                row: row_key(id, op.key),
                fresh,
            });
        }
        touched
    }

    /// Ends the writes of the batch: refreshes or drops the written rows, drops their groups.
    /// `applied` is whether the engine accepted the batch.
    fn end_write(&self, touched: Vec<Touched>, applied: bool) {
        for Touched { shard, row, fresh } in touched {
            // A row key is the kind byte followed by the key, whose first bytes are the group.
            let group = group_key(row.0, &row.1[1..=GROUP_PREFIX]);
            let shard = &self.shards[shard];
            let mut epoch = shard.epoch.lock();
            // The sole writer of the shard from its start to now (it began on an idle shard,
            // no write ended since, none is running besides it) wrote the engine's latest
            // value of the key, so a cached row may take that value instead of being dropped.
            let sole = |start: u64| {
                applied && *epoch == start && shard.writing.load(Ordering::SeqCst) == 1
            };
            match fresh {
                Some((start, value)) if sole(start) => {
                    // Only rows already cached are refreshed: a write alone is no sign that
                    // the key will be read. An error means the row is not cached (or the new
                    // value was not admitted); either way nothing stale remains.
                    let _ = self.cache.replace(row, Cached::Row(value), true);
                }
                _ => {
                    self.cache.remove(&row);
                }
            }
            *epoch += 1;
            self.cache.remove(&group);
            shard.writing.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Reads a whole group from the engine: `None` if it holds more than [`MAX_GROUP_BYTES`].
    fn load_group(&self, keyspace: &str, group: &[u8]) -> Result<Option<Group>> {
        let end = prefix_end(group);
        let upper = match &end {
            Some(e) => Bound::Excluded(e.as_slice()),
            None => Bound::Unbounded,
        };
        let mut builder = GroupBuilder::default();
        let mut complete = true;
        self.inner.scan(
            keyspace,
            Bound::Included(group),
            upper,
            false,
            &mut |k, v| {
                if builder.bytes() + k.len() + v.len() > MAX_GROUP_BYTES {
                    complete = false;
                    return false;
                }
                builder.push(k, v);
                true
            },
        )?;
        Ok(complete.then(|| builder.build()))
    }
}

impl<S: Storage> Storage for CachedStorage<S> {
    fn create_keyspace(&self, name: &str) -> Result<()> {
        self.inner.create_keyspace(name)
    }

    fn drop_keyspace(&self, name: &str) -> Result<()> {
        let r = self.inner.drop_keyspace(name);
        // Entries under the old id become unreachable and age out.
        self.ids.write().remove(name);
        r
    }

    fn keyspace_exists(&self, name: &str) -> bool {
        self.inner.keyspace_exists(name)
    }

    fn list_keyspaces(&self) -> Vec<String> {
        self.inner.list_keyspaces()
    }

    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(group) = group_of(key).filter(|_| !key_unstorable(key)) else {
            return self.inner.get(keyspace, key);
        };
        let id = self.id_of(keyspace);
        let shard = self.shard(id, group);
        if shard.writing.load(Ordering::SeqCst) > 0 {
            shard.misses.fetch_add(1, Ordering::Relaxed);
            return self.inner.get(keyspace, key);
        }
        let row = row_key(id, key);
        match self.cache.get(&row) {
            Some(Cached::Row(v)) => {
                shard.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(v.map(|v| v.to_vec()));
            }
            Some(_) => {}
            None => {
                if let Some(Cached::Group(g)) = self.cache.get(&group_key(id, group)) {
                    shard.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(g.get(key).map(<[u8]>::to_vec));
                }
            }
        }
        shard.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = *shard.epoch.lock();
        let value = self.inner.get(keyspace, key)?;
        self.fill(
            shard,
            epoch,
            row,
            Cached::Row(value.as_deref().map(Arc::from)),
        );
        Ok(value)
    }

    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let Some(group) = common_group(lower, upper).filter(|_| !range_is_empty(lower, upper))
        else {
            return self.inner.scan(keyspace, lower, upper, reverse, f);
        };
        let id = self.id_of(keyspace);
        let shard = self.shard(id, group);
        if shard.writing.load(Ordering::SeqCst) > 0 {
            shard.misses.fetch_add(1, Ordering::Relaxed);
            return self.inner.scan(keyspace, lower, upper, reverse, f);
        }
        let gkey = group_key(id, group);
        match self.cache.get(&gkey) {
            Some(Cached::Group(g)) => {
                shard.hits.fetch_add(1, Ordering::Relaxed);
                g.scan(lower, upper, reverse, f);
                Ok(())
            }
            Some(_) => {
                shard.misses.fetch_add(1, Ordering::Relaxed);
                self.inner.scan(keyspace, lower, upper, reverse, f)
            }
            None => {
                shard.misses.fetch_add(1, Ordering::Relaxed);
                let epoch = *shard.epoch.lock();
                match self.load_group(keyspace, group)? {
                    Some(g) => {
                        let g = Arc::new(g);
                        g.scan(lower, upper, reverse, f);
                        self.fill(shard, epoch, gkey, Cached::Group(g));
                    }
                    None => {
                        self.fill(shard, epoch, gkey, Cached::TooBig);
                        self.inner.scan(keyspace, lower, upper, reverse, f)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let touched = self.begin_write(&batch);
        let r = self.inner.write(batch, durability);
        self.end_write(touched, r.is_ok());
        r
    }

    fn commit(&self, batch: WriteBatch) -> Result<CommitTicket> {
        let touched = self.begin_write(&batch);
        let r = self.inner.commit(batch);
        self.end_write(touched, r.is_ok());
        r
    }

    fn wait_durable(&self, ticket: CommitTicket) -> Result<()> {
        self.inner.wait_durable(ticket)
    }

    fn durable(&self, ticket: CommitTicket) -> DurableFuture {
        self.inner.durable(ticket)
    }

    fn snapshot(&self) -> Box<dyn Snapshot> {
        self.inner.snapshot()
    }

    fn stats(&self, keyspace: &str) -> Result<KeyspaceStats> {
        self.inner.stats(keyspace)
    }

    fn flush(&self) -> Result<()> {
        self.inner.flush()
    }

    fn fsync_count(&self) -> u64 {
        self.inner.fsync_count()
    }

    fn write_fault(&self) -> Option<crate::WriteFault> {
        self.inner.write_fault()
    }

    fn generation(&self) -> u64 {
        self.inner.generation()
    }

    fn on_reopen(&self, listener: Box<dyn Fn() + Send + Sync>) {
        self.inner.on_reopen(listener)
    }

    fn verify_files(&self) -> Result<Vec<crate::FileDamage>> {
        self.inner.verify_files()
    }

    fn storage_stats(&self) -> StorageStats {
        let count = |f: fn(&Shard) -> &AtomicU64| {
            self.shards
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum::<u64>()
        };
        StorageStats {
            read_cache_hits: Some(count(|s| &s.hits)),
            read_cache_misses: Some(count(|s| &s.misses)),
            read_cache_bytes: Some(self.cache.weight()),
            ..self.inner.storage_stats()
        }
    }
}

/// Tests of the pure parts (groups and their bounds); the tests of the cache as a whole, which
/// need real locks, are in `cache_tests.rs` (the loom model test compiles this file).
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_bounds() {
        let g = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let k = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(
            common_group(Bound::Included(&g), Bound::Excluded(&k)),
            Some(&g[..])
        );
        assert_eq!(common_group(Bound::Included(&g), Bound::Unbounded), None);
        assert_eq!(
            common_group(Bound::Included(&g[..7]), Bound::Excluded(&k)),
            None
        );
        let other = [1u8, 2, 3, 4, 5, 6, 7, 9];
        assert_eq!(
            common_group(Bound::Included(&g), Bound::Excluded(&other)),
            None
        );
        assert_eq!(prefix_end(&g), Some(vec![1, 2, 3, 4, 5, 6, 7, 9]));
        assert_eq!(prefix_end(&[1, 255]), Some(vec![2]));
        assert_eq!(prefix_end(&[255; 8]), None);
    }

    fn bound(kind: u8, key: &[u8]) -> Bound<&[u8]> {
        match kind % 3 {
            0 => Bound::Included(key),
            1 => Bound::Excluded(key),
            _ => Bound::Unbounded,
        }
    }

    proptest::proptest! {
        /// A packed group answers point reads and bounded scans (both directions, stopped
        /// early or not) exactly as an ordered map of its entries does.
        #[test]
        fn a_group_reads_like_an_ordered_map(
            entries in proptest::collection::btree_map(
                proptest::collection::vec(0u8..4, 0..4),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..6),
                0..12,
            ),
            probe in proptest::collection::vec(0u8..4, 0..4),
            lower in proptest::collection::vec(0u8..4, 0..4),
            upper in proptest::collection::vec(0u8..4, 0..4),
            kinds in (0u8..3, 0u8..3),
            reverse in proptest::prelude::any::<bool>(),
            limit in 0usize..14,
        ) {
            let mut builder = GroupBuilder::default();
            for (k, v) in &entries {
                builder.push(k, v);
            }
            let group = builder.build();
            proptest::prop_assert_eq!(group.get(&probe), entries.get(&probe).map(Vec::as_slice));

            let (lo, hi) = (bound(kinds.0, &lower), bound(kinds.1, &upper));
            let mut seen = Vec::new();
            group.scan(lo, hi, reverse, &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                seen.len() < limit
            });
            let in_range = |k: &[u8]| {
                (match lo {
                    Bound::Included(l) => k >= l,
                    Bound::Excluded(l) => k > l,
                    Bound::Unbounded => true,
                }) && (match hi {
                    Bound::Included(u) => k <= u,
                    Bound::Excluded(u) => k < u,
                    Bound::Unbounded => true,
                })
            };
            let mut expected: Vec<_> = entries
                .iter()
                .filter(|(k, _)| in_range(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            if reverse {
                expected.reverse();
            }
            expected.truncate(limit.max(1));
            proptest::prop_assert_eq!(seen, expected);
        }
    }
}
