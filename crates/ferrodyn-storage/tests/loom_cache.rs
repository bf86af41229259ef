//! Model checks of the read cache's invalidation protocol: `src/cache.rs` (the production
//! `CachedStorage`) compiled against loom's primitives (`ferrodyn_sim::sync`), in front of the
//! memory engine, under every interleaving of its shard locks and counters within a preemption
//! bound. (The memory engine's and the cache map's own locks are not modelled: each of their
//! calls runs as one step, as a batch is applied at once by every engine.)
//!
//! Promise checked: the cache never answers with a value older than the engine's at the start
//! of the read, and once writes stop it agrees with the engine (no stale row or group is left).
//!
//! The regular test run uses a small preemption bound; a longer run by hand:
//! `LOOM_MAX_PREEMPTIONS=3 cargo test --release -p ferrodyn-storage --test loom_cache -- --nocapture`

mod sync {
    pub(crate) use ferrodyn_sim::sync::*;
}

#[allow(dead_code)]
#[path = "../src/cache.rs"]
mod cache;

pub(crate) use ferrodyn_storage::{
    key_unstorable, prefix_end, range_is_empty, CommitTicket, Durability, DurableFuture,
    FileDamage, KeyspaceStats, Result, Snapshot, Storage, StorageStats, WriteBatch, WriteFault,
};

use std::ops::Bound;

use cache::CachedStorage;
use ferrodyn_sim::loom;
use ferrodyn_storage::MemoryStorage;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;

/// Preemption bound of the regular test run.
const PREEMPTIONS: usize = 2;

const KS: &str = "items";
/// Two keys of one group (same first 8 bytes).
const K1: &[u8] = b"group-01:a";
const K2: &[u8] = b"group-01:b";
const GROUP: &[u8] = b"group-01";

fn put(s: &CachedStorage<MemoryStorage>, key: &[u8], v: u8) {
    let mut b = WriteBatch::default();
    b.put(KS, key, vec![v]);
    s.write(b, Durability::Sync).unwrap();
}

fn get(s: &CachedStorage<MemoryStorage>, key: &[u8]) -> Option<u8> {
    s.get(KS, key).unwrap().map(|v| v[0])
}

fn scan_group(s: &dyn Storage) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    let end = prefix_end(GROUP).unwrap();
    s.scan(
        KS,
        Bound::Included(GROUP),
        Bound::Excluded(&end),
        false,
        &mut |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            true
        },
    )
    .unwrap();
    out
}

/// A cache holding `K1 = 0` as a row and the group, both read through it.
fn warm_cache() -> Arc<CachedStorage<MemoryStorage>> {
    let s = CachedStorage::new(MemoryStorage::new(), 1 << 20);
    s.create_keyspace(KS).unwrap();
    put(&s, K1, 0);
    assert_eq!(get(&s, K1), Some(0));
    scan_group(&s);
    Arc::new(s)
}

/// Two writers of one key and a reader of it: a read that starts after a write returned never
/// sees the value from before every write, and afterwards the cache agrees with the engine.
#[test]
fn a_read_after_a_write_never_sees_the_older_value() {
    ferrodyn_sim::model(
        "cache, 2 writers of a key and a reader",
        PREEMPTIONS,
        || {
            let s = warm_cache();
            let done = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
            let writers: Vec<_> = [1u8, 2]
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let (s, done) = (Arc::clone(&s), Arc::clone(&done));
                    thread::spawn(move || {
                        put(&s, K1, v);
                        done[i].store(true, Ordering::SeqCst);
                    })
                })
                .collect();
            let reader = {
                let (s, done) = (Arc::clone(&s), Arc::clone(&done));
                thread::spawn(move || {
                    let finished = done.iter().any(|d| d.load(Ordering::SeqCst));
                    let v = get(&s, K1);
                    if finished {
                        assert_ne!(v, Some(0), "read the value from before a finished write");
                    }
                })
            };
            for w in writers {
                w.join().unwrap();
            }
            reader.join().unwrap();
            assert_eq!(
                get(&s, K1),
                s.inner().get(KS, K1).unwrap().map(|v| v[0]),
                "the cache kept a stale row"
            );
        },
    );
}

/// A writer of one key, a writer of another key of the same group and a reader of the whole
/// group (a cached group): afterwards the group read through the cache, and each row, agree
/// with the engine.
#[test]
fn group_reads_and_writes_leave_nothing_stale() {
    ferrodyn_sim::model("cache, group reader and 2 writers", PREEMPTIONS, || {
        let s = warm_cache();
        let w1 = {
            let s = Arc::clone(&s);
            thread::spawn(move || put(&s, K1, 7))
        };
        let w2 = {
            let s = Arc::clone(&s);
            thread::spawn(move || put(&s, K2, 8))
        };
        let reader = {
            let s = Arc::clone(&s);
            thread::spawn(move || {
                let rows = scan_group(&*s);
                // Whatever interleaving: K1 is 0 or 7, K2 absent or 8.
                assert!(rows.len() <= 2);
                get(&s, K2)
            })
        };
        w1.join().unwrap();
        w2.join().unwrap();
        reader.join().unwrap();
        assert_eq!(scan_group(&*s), scan_group(s.inner()), "a stale group");
        assert_eq!(get(&s, K1), Some(7), "a stale row");
        assert_eq!(get(&s, K2), Some(8), "a stale row");
    });
}
