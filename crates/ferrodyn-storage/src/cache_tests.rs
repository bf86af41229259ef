//! Unit tests of the read cache (`cache.rs`). They live beside it rather than inside it because
//! the loom model test compiles `cache.rs` itself against loom's primitives, which only work
//! inside a model.

use crate::cache::*;
use crate::MemoryStorage;
use std::collections::HashMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::*;
use parking_lot::Mutex;

fn key(group: u8, writer: u8, which: u8) -> Vec<u8> {
    vec![b'g', b'r', b'o', b'u', b'p', 0, 0, group, writer, which]
}

fn value(raw: &[u8]) -> u64 {
    u64::from_be_bytes(raw.try_into().unwrap())
}

/// Writers bump counters (two keys per writer, written in one batch) while readers read
/// them through the cache: every writer reads its own last write, readers never see a
/// counter go back, and a scan never sees half of a batch.
#[test]
fn concurrent_reads_are_never_stale() {
    const WRITERS: u8 = 4;
    const ROUNDS: u64 = 2000;
    let s = Arc::new(CachedStorage::new(MemoryStorage::new(), 1 << 20));
    s.create_keyspace("t").unwrap();
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let s = &s;
            scope.spawn(move || {
                let group = w % 2;
                for n in 1..=ROUNDS {
                    let mut b = WriteBatch::new();
                    b.put("t", key(group, w, 0), n.to_be_bytes());
                    b.put("t", key(group, w, 1), n.to_be_bytes());
                    if n % 2 == 0 {
                        s.write(b, Durability::Buffered).unwrap();
                    } else {
                        s.commit(b).unwrap();
                    }
                    let got = s.get("t", &key(group, w, n as u8 % 2)).unwrap();
                    assert_eq!(got.map(|v| value(&v)), Some(n), "read your writes");
                }
            });
        }
        for r in 0..4u8 {
            let s = &s;
            scope.spawn(move || {
                let mut seen = [0u64; WRITERS as usize];
                for i in 0..ROUNDS * 2 {
                    let w = (i as u8).wrapping_add(r) % WRITERS;
                    let group = w % 2;
                    if i % 3 == 0 {
                        let lo = key(group, 0, 0);
                        let hi = key(group, u8::MAX, 0);
                        let mut pairs: HashMap<u8, Vec<u64>> = HashMap::new();
                        s.scan(
                            "t",
                            Bound::Included(&lo[..]),
                            Bound::Excluded(&hi[..]),
                            i % 2 == 0,
                            &mut |k, v| {
                                pairs.entry(k[8]).or_default().push(value(v));
                                true
                            },
                        )
                        .unwrap();
                        for (writer, values) in pairs {
                            assert_eq!(values.len(), 2);
                            assert_eq!(values[0], values[1], "half a batch");
                            let last = &mut seen[writer as usize];
                            assert!(values[0] >= *last, "went back");
                            *last = values[0];
                        }
                    } else {
                        let got = s.get("t", &key(group, w, (i % 2) as u8)).unwrap();
                        let v = got.map_or(0, |v| value(&v));
                        assert!(v >= seen[w as usize], "went back");
                        seen[w as usize] = v;
                    }
                }
            });
        }
    });
    for w in 0..WRITERS {
        for which in 0..2 {
            let got = s.get("t", &key(w % 2, w, which)).unwrap();
            assert_eq!(got.map(|v| value(&v)), Some(ROUNDS));
        }
    }
    assert!(s.weight() > 0, "the cache was used");
}

/// An engine whose next `get` or `scan` runs a hook after reading, as if a write landed
/// between the engine's answer and the cache's insert.
type Hook = Box<dyn FnOnce() + Send>;

/// The memory engine, with hooks that run inside its reads and writes.
#[derive(Default)]
struct Hooked {
    mem: MemoryStorage,
    /// Runs after the engine read of the next `get` or `scan`.
    hook: Mutex<Option<Hook>>,
    /// Runs inside the next `write`: before the batch is applied (`false`) or after.
    write_hook: Mutex<Option<(bool, Hook)>>,
    /// Point reads that reached the engine.
    gets: AtomicU64,
}

impl Hooked {
    fn run_hook(&self) {
        let hook = self.hook.lock().take();
        if let Some(h) = hook {
            h();
        }
    }
}

impl Storage for Hooked {
    fn create_keyspace(&self, name: &str) -> Result<()> {
        self.mem.create_keyspace(name)
    }
    fn drop_keyspace(&self, name: &str) -> Result<()> {
        self.mem.drop_keyspace(name)
    }
    fn keyspace_exists(&self, name: &str) -> bool {
        self.mem.keyspace_exists(name)
    }
    fn list_keyspaces(&self) -> Vec<String> {
        self.mem.list_keyspaces()
    }
    fn get(&self, keyspace: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let v = self.mem.get(keyspace, key);
        self.run_hook();
        v
    }
    fn scan(
        &self,
        keyspace: &str,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        reverse: bool,
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<()> {
        let r = self.mem.scan(keyspace, lower, upper, reverse, f);
        self.run_hook();
        r
    }
    fn write(&self, batch: WriteBatch, durability: Durability) -> Result<()> {
        let hook = self.write_hook.lock().take();
        match hook {
            Some((false, h)) => {
                h();
                self.mem.write(batch, durability)
            }
            Some((true, h)) => {
                let r = self.mem.write(batch, durability);
                h();
                r
            }
            None => self.mem.write(batch, durability),
        }
    }
    fn snapshot(&self) -> Box<dyn Snapshot> {
        self.mem.snapshot()
    }
    fn stats(&self, keyspace: &str) -> Result<KeyspaceStats> {
        self.mem.stats(keyspace)
    }
    fn flush(&self) -> Result<()> {
        self.mem.flush()
    }
}

/// A write that finishes while a reader is between its engine read and its insert makes
/// the reader drop what it read: the next reads see the write, not the older value.
#[test]
fn a_write_during_a_fill_wins() {
    let s = Arc::new(CachedStorage::new(Hooked::default(), 1 << 20));
    s.create_keyspace("t").unwrap();
    let k = key(0, 0, 0);
    for (scan, next) in [(false, 2u64), (true, 4)] {
        // Nothing of the group is cached after a write.
        let mut b = WriteBatch::new();
        b.put("t", &k, (next - 1).to_be_bytes());
        s.write(b, Durability::Sync).unwrap();
        let writer = Arc::downgrade(&s);
        let k2 = k.clone();
        *s.inner().hook.lock() = Some(Box::new(move || {
            let s = writer.upgrade().unwrap();
            let mut b = WriteBatch::new();
            b.put("t", &k2, next.to_be_bytes());
            s.write(b, Durability::Sync).unwrap();
        }));
        let scan_group = || {
            let mut got = Vec::new();
            s.scan(
                "t",
                Bound::Included(&k[..GROUP_PREFIX]),
                Bound::Excluded(&key(0, 1, 0)),
                false,
                &mut |_, v| {
                    got.push(value(v));
                    true
                },
            )
            .unwrap();
            got
        };
        let read = if scan {
            scan_group()[0]
        } else {
            value(&s.get("t", &k).unwrap().unwrap())
        };
        assert_eq!(read, next - 1, "the read itself saw the older value");
        assert_eq!(value(&s.get("t", &k).unwrap().unwrap()), next);
        assert_eq!(scan_group(), vec![next]);
    }
}

fn put(s: &CachedStorage<Hooked>, k: &[u8], v: u64) {
    let mut b = WriteBatch::new();
    b.put("t", k, v.to_be_bytes());
    s.write(b, Durability::Sync).unwrap();
}

/// A write with no other write of its shard running refreshes the cached row, so the
/// next point read of the key is answered from memory, with the written value.
#[test]
fn a_sole_writer_refreshes_the_cached_row() {
    let s = CachedStorage::new(Hooked::default(), 1 << 20);
    s.create_keyspace("t").unwrap();
    let k = key(0, 0, 0);
    put(&s, &k, 1);
    assert_eq!(value(&s.get("t", &k).unwrap().unwrap()), 1);
    assert_eq!(value(&s.get("t", &k).unwrap().unwrap()), 1);
    assert_eq!(
        s.inner().gets.load(Ordering::SeqCst),
        1,
        "the second read hit"
    );
    put(&s, &k, 2);
    assert_eq!(value(&s.get("t", &k).unwrap().unwrap()), 2);
    let mut b = WriteBatch::new();
    b.delete("t", &k);
    s.write(b, Durability::Sync).unwrap();
    assert_eq!(s.get("t", &k).unwrap(), None);
    assert_eq!(
        s.inner().gets.load(Ordering::SeqCst),
        1,
        "refreshed, not dropped"
    );
    // A key that was never read is not cached by writing it.
    let other = key(0, 1, 0);
    put(&s, &other, 7);
    assert_eq!(value(&s.get("t", &other).unwrap().unwrap()), 7);
    assert_eq!(s.inner().gets.load(Ordering::SeqCst), 2);
}

/// Two writes of one cached key that overlap, in either order of applying: the cache
/// ends with the engine's value, whichever write the engine applied last.
#[test]
fn overlapping_writers_leave_the_engines_value() {
    for b_applies_after_a in [false, true] {
        let s = Arc::new(CachedStorage::new(Hooked::default(), 1 << 20));
        s.create_keyspace("t").unwrap();
        let k = key(0, 0, 0);
        put(&s, &k, 1);
        s.get("t", &k).unwrap();
        // Writer B runs whole inside writer A's engine write, before or after A applies.
        let writer = Arc::downgrade(&s);
        let k2 = k.clone();
        *s.inner().write_hook.lock() = Some((
            b_applies_after_a,
            Box::new(move || put(&writer.upgrade().unwrap(), &k2, 3)),
        ));
        put(&s, &k, 2);
        let engine = value(&s.inner().mem.get("t", &k).unwrap().unwrap());
        assert_eq!(engine, if b_applies_after_a { 3 } else { 2 });
        assert_eq!(value(&s.get("t", &k).unwrap().unwrap()), engine);
        assert_eq!(value(&s.get("t", &k).unwrap().unwrap()), engine);
    }
}

/// A reopen that lost a write the cache had seen (a row and a whole group): the cache
/// answers with the reopened store's values afterwards.
#[test]
fn a_reopen_empties_the_cache() {
    let s = CachedStorage::new(MemoryStorage::new(), 1 << 20);
    s.create_keyspace("t").unwrap();
    let (k, other) = (key(1, 0, 0), key(1, 0, 1));
    let mut b = WriteBatch::new();
    b.put("t", k.clone(), 1u64.to_be_bytes());
    b.put("t", other.clone(), 1u64.to_be_bytes());
    s.write(b, Durability::Sync).unwrap();
    let scan = |s: &CachedStorage<MemoryStorage>| {
        let mut seen = Vec::new();
        s.scan(
            "t",
            Bound::Included(&key(1, 0, 0)),
            Bound::Included(&key(1, 0, 9)),
            false,
            &mut |k, v| {
                seen.push((k.to_vec(), value(v)));
                true
            },
        )
        .unwrap();
        seen
    };
    for _ in 0..2 {
        assert_eq!(s.get("t", &k).unwrap().map(|v| value(&v)), Some(1));
        assert_eq!(scan(&s).len(), 2);
    }
    let hits = s.storage_stats().read_cache_hits.unwrap();
    assert!(hits >= 2, "{hits} hits: the reads were cached");
    // The reopened store lacks the write of `other` and holds an older `k`.
    let mut b = WriteBatch::new();
    b.put("t", k.clone(), 0u64.to_be_bytes());
    b.delete("t", other.clone());
    s.inner().write(b, Durability::Sync).unwrap();
    s.inner().mark_reopened();
    assert_eq!(s.get("t", &k).unwrap().map(|v| value(&v)), Some(0));
    assert_eq!(s.get("t", &other).unwrap(), None);
    assert_eq!(scan(&s), vec![(k, 0)]);
}
