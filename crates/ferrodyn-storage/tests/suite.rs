//! The shared behavioural suite (`ferrodyn_storage::conformance`), instantiated for the embedded
//! engines (`memory::*`, `fjall::*`, `cached::*`), plus fjall-only tests: persistence across
//! reopen, format-version checks and group commit.

use std::ops::Bound::{self, Excluded, Included, Unbounded};

use ferrodyn_storage::conformance::{action, action_with, collect, grouped_key, put, run_model};
use ferrodyn_storage::{
    CachedStorage, Durability, FjallStorage, MemoryStorage, Storage, StorageError, WriteBatch,
};

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $name() { ferrodyn_storage::conformance::$name(&ferrodyn_storage::MemoryStorage::new()) })*
        }
        mod fjall {
            $(#[test] fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let s = ferrodyn_storage::FjallStorage::open(dir.path()).unwrap();
                ferrodyn_storage::conformance::$name(&s)
            })*
        }
        mod cached {
            $(#[test] fn $name() {
                let s = ferrodyn_storage::CachedStorage::new(
                    ferrodyn_storage::MemoryStorage::new(),
                    1 << 20,
                );
                ferrodyn_storage::conformance::$name(&s)
            })*
        }
    };
}

suite!(
    get_put_delete,
    scan_bounds,
    atomic_batches,
    drop_keyspace,
    snapshots
);

/// With key-value separation, values flushed out of the memtable live in blob files; they
/// read back the same, through scans both ways, after overwrites and deletes, and after a
/// reopen.
#[test]
fn fjall_kv_separated_values_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let options = || ferrodyn_storage::FjallOptions {
        memtable_bytes: 1 << 20,
        kv_separation: Some(64),
        ..Default::default()
    };
    let value = |i: u32, round: u32| {
        let mut v = format!("{i:08}-{round}-").into_bytes();
        v.resize(300 + (i % 7) as usize * 100, b'a' + (i % 26) as u8);
        v
    };
    let n = 6000u32;
    let check = |s: &FjallStorage| {
        for i in (0..n).step_by(7) {
            let want = (i % 5 != 0).then(|| value(i, u32::from(i % 3 == 0)));
            assert_eq!(s.get("t", &i.to_be_bytes()).unwrap(), want, "key {i}");
        }
        let mut seen = Vec::new();
        s.scan("t", Unbounded, Unbounded, true, &mut |k, v| {
            let i = u32::from_be_bytes(k.try_into().unwrap());
            assert_eq!(v, value(i, u32::from(i % 3 == 0)));
            seen.push(i);
            true
        })
        .unwrap();
        let want: Vec<u32> = (0..n).rev().filter(|i| i % 5 != 0).collect();
        assert_eq!(seen, want);
    };
    {
        let s = FjallStorage::open_with(dir.path(), options()).unwrap();
        s.create_keyspace("t").unwrap();
        for round in 0..2 {
            for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
                let mut b = WriteBatch::new();
                for &i in chunk {
                    if round == 0 || i % 3 == 0 {
                        b.put("t", i.to_be_bytes(), value(i, round));
                    }
                    if round == 1 && i % 5 == 0 {
                        b.delete("t", i.to_be_bytes());
                    }
                }
                s.write(b, Durability::Buffered).unwrap();
            }
        }
        s.flush().unwrap();
        check(&s);
        // Memtables are flushed in the background; wait (bounded) for the first blob file.
        let blob_bytes = || -> u64 {
            walk_files(dir.path())
                .into_iter()
                .filter(|p| p.components().any(|c| c.as_os_str() == "blobs"))
                .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
                .sum()
        };
        for _ in 0..600 {
            if blob_bytes() > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(blob_bytes() > 0, "values went to blob files");
        check(&s);
    }
    let s = FjallStorage::open_with(dir.path(), options()).unwrap();
    check(&s);
}

fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn fjall_reopen_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = FjallStorage::open(dir.path()).unwrap();
        s.create_keyspace("t").unwrap();
        s.create_keyspace("gone").unwrap();
        s.create_keyspace("a long name / with separators").unwrap();
        put(&s, "t", b"sync", b"1");
        put(&s, "gone", b"k", b"1");
        let mut b = WriteBatch::new();
        b.put("t", &b"buffered"[..], &b"2"[..]);
        b.put("a long name / with separators", &b"k"[..], &b"3"[..]);
        s.write(b, Durability::Buffered).unwrap();
        s.drop_keyspace("gone").unwrap();
    }
    {
        let s = FjallStorage::open(dir.path()).unwrap();
        assert_eq!(
            s.list_keyspaces(),
            vec!["a long name / with separators".to_string(), "t".to_string()]
        );
        assert_eq!(s.get("t", b"sync").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(s.get("t", b"buffered").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(
            s.get("a long name / with separators", b"k")
                .unwrap()
                .as_deref(),
            Some(&b"3"[..])
        );
        // A re-created keyspace starts empty even if the old data was in the journal.
        s.create_keyspace("gone").unwrap();
        assert_eq!(s.get("gone", b"k").unwrap(), None);
        put(&s, "gone", b"k2", b"new");
        s.flush().unwrap();
    }
    let s = FjallStorage::open(dir.path()).unwrap();
    assert_eq!(s.get("gone", b"k").unwrap(), None);
    assert_eq!(s.get("gone", b"k2").unwrap().as_deref(), Some(&b"new"[..]));
    // The directory is locked while open.
    assert!(FjallStorage::open(dir.path()).is_err());
}

#[test]
fn fjall_raises_an_older_format_version_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = FjallStorage::open(dir.path()).unwrap();
        s.create_keyspace("t").unwrap();
        let mut b = WriteBatch::default();
        b.put("t", b"k", b"v".to_vec());
        s.write(b, Durability::Sync).unwrap();
    }
    let version = |dir: &std::path::Path| {
        let db = ::fjall::Database::builder(dir).open().unwrap();
        let meta = db
            .keyspace("ferrodyn.meta", ::fjall::KeyspaceCreateOptions::default)
            .unwrap();
        let v = meta.get("format-version").unwrap().unwrap();
        (db, meta, u64::from_be_bytes(v.as_ref().try_into().unwrap()))
    };
    {
        let (db, meta, v) = version(dir.path());
        assert_eq!(v, ferrodyn_storage::FORMAT_VERSION);
        meta.insert("format-version", 1u64.to_be_bytes()).unwrap();
        db.persist(::fjall::PersistMode::SyncAll).unwrap();
    }
    {
        let s = FjallStorage::open(dir.path()).unwrap();
        assert_eq!(s.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
    assert_eq!(version(dir.path()).2, ferrodyn_storage::FORMAT_VERSION);
}

#[test]
fn fjall_refuses_newer_format_and_foreign_data() {
    let dir = tempfile::tempdir().unwrap();
    drop(FjallStorage::open(dir.path()).unwrap());
    {
        let db = ::fjall::Database::builder(dir.path()).open().unwrap();
        let meta = db
            .keyspace("ferrodyn.meta", ::fjall::KeyspaceCreateOptions::default)
            .unwrap();
        meta.insert("format-version", 3u64.to_be_bytes()).unwrap();
        db.persist(::fjall::PersistMode::SyncAll).unwrap();
    }
    match FjallStorage::open(dir.path()) {
        Err(StorageError::UnsupportedFormat {
            found: 3,
            supported: 2,
        }) => {}
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("opened a newer format"),
    }

    let foreign = tempfile::tempdir().unwrap();
    {
        let db = ::fjall::Database::builder(foreign.path()).open().unwrap();
        let ks = db
            .keyspace("other", ::fjall::KeyspaceCreateOptions::default)
            .unwrap();
        ks.insert("a", "b").unwrap();
        db.persist(::fjall::PersistMode::SyncAll).unwrap();
    }
    assert!(matches!(
        FjallStorage::open(foreign.path()),
        Err(StorageError::Corrupt(_))
    ));
}

/// A crash between creating a fjall keyspace and recording its name leaves an orphan, which
/// the next open deletes; new ids never collide with it.
#[test]
fn fjall_deletes_orphaned_keyspaces() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = FjallStorage::open(dir.path()).unwrap();
        s.create_keyspace("t").unwrap();
        put(&s, "t", b"k", b"v");
    }
    {
        let db = ::fjall::Database::builder(dir.path()).open().unwrap();
        let orphan = db
            .keyspace("k99", ::fjall::KeyspaceCreateOptions::default)
            .unwrap();
        orphan.insert("stale", "x").unwrap();
        db.persist(::fjall::PersistMode::SyncAll).unwrap();
    }
    let s = FjallStorage::open(dir.path()).unwrap();
    assert_eq!(s.list_keyspaces(), vec!["t".to_string()]);
    s.create_keyspace("new").unwrap();
    assert_eq!(s.get("new", b"stale").unwrap(), None);
    assert_eq!(s.get("t", b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

/// N threads x M durable writes must share fsyncs, and each write is readable on return.
#[test]
fn fjall_group_commit_shares_fsyncs() {
    const THREADS: usize = 8;
    const WRITES: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let s = FjallStorage::open(dir.path()).unwrap();
    s.create_keyspace("t").unwrap();
    let before = s.fsync_count();
    let start = std::time::Instant::now();
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let s = &s;
            scope.spawn(move || {
                for i in 0..WRITES {
                    let key = format!("{t:02}-{i:04}");
                    let mut b = WriteBatch::new();
                    b.put("t", key.as_bytes(), &b"v"[..]);
                    s.write(b, Durability::Sync).unwrap();
                    assert!(s.get("t", key.as_bytes()).unwrap().is_some());
                }
            });
        }
    });
    let fsyncs = s.fsync_count() - before;
    let writes = (THREADS * WRITES) as u64;
    eprintln!(
        "group commit: {writes} sync writes, {fsyncs} fsyncs, {:?}",
        start.elapsed()
    );
    assert!(fsyncs * 2 <= writes, "{fsyncs} fsyncs for {writes} writes");
}

/// `commit` + `durable` from many threads: every future resolves, each write is visible when
/// `commit` returns, and fsyncs are shared. The memory engine hands out durable tickets.
#[test]
fn deferred_commits_resolve_and_share_fsyncs() {
    use std::future::Future;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    fn block_on(mut f: ferrodyn_storage::DurableFuture) -> ferrodyn_storage::Result<()> {
        let waker = Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(r) = std::pin::Pin::new(&mut f).poll(&mut cx) {
                return r;
            }
            std::thread::park();
        }
    }

    let mem = ferrodyn_storage::MemoryStorage::new();
    mem.create_keyspace("t").unwrap();
    let mut b = WriteBatch::new();
    b.put("t", b"k", b"v");
    let t = mem.commit(b).unwrap();
    assert!(t.is_durable_already());
    assert!(block_on(mem.durable(t)).is_ok());

    let dir = tempfile::tempdir().unwrap();
    let s = FjallStorage::open(dir.path()).unwrap();
    s.create_keyspace("t").unwrap();
    let before = s.fsync_count();
    std::thread::scope(|scope| {
        for t in 0..32 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..25 {
                    let key = format!("{t:02}-{i:04}");
                    let mut b = WriteBatch::new();
                    b.put("t", key.as_bytes(), &b"v"[..]);
                    let ticket = s.commit(b).unwrap();
                    assert!(!ticket.is_durable_already());
                    assert!(s.get("t", key.as_bytes()).unwrap().is_some());
                    block_on(s.durable(ticket)).unwrap();
                }
            });
        }
    });
    let fsyncs = s.fsync_count() - before;
    assert!(fsyncs * 2 <= 800, "{fsyncs} fsyncs for 800 writes");
    let mut n = 0;
    collect_all(&s, "t", &mut n);
    assert_eq!(n, 800);
}

fn collect_all(s: &dyn Storage, ks: &str, n: &mut usize) {
    s.scan(
        ks,
        Bound::Unbounded,
        Bound::Unbounded,
        false,
        &mut |_, _| {
            *n += 1;
            true
        },
    )
    .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Property test: random batches, scans and snapshots against a BTreeMap model.

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
    #[test]
    fn memory_matches_model(actions in prop::collection::vec(action(), 1..60)) {
        run_model(&MemoryStorage::new(), &actions);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn fjall_matches_model(actions in prop::collection::vec(action(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let s = FjallStorage::open(dir.path()).unwrap();
        run_model(&s, &actions);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// The read cache answers exactly as the engine beneath it, with keys grouped as the layer
    /// above groups them, and under eviction (a cache far smaller than the data).
    #[test]
    fn cached_memory_matches_model(
        actions in prop::collection::vec(action_with(grouped_key(), 0..8), 1..80),
        capacity in prop_oneof![Just(400u64), Just(1u64 << 20)],
    ) {
        run_model(&CachedStorage::new(MemoryStorage::new(), capacity), &actions);
    }

    /// Groups larger than the cache keeps whole are read from the engine, and stay correct
    /// as they grow and shrink across the limit.
    #[test]
    fn cached_memory_matches_model_with_large_groups(
        actions in prop::collection::vec(action_with(grouped_key(), 0..40_000), 1..40),
    ) {
        run_model(&CachedStorage::new(MemoryStorage::new(), 64 << 20), &actions);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn cached_fjall_matches_model(actions in prop::collection::vec(action_with(grouped_key(), 0..8), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let s = CachedStorage::new(FjallStorage::open(dir.path()).unwrap(), 1 << 20);
        run_model(&s, &actions);
    }
}

/// Dropping a keyspace forgets its cached entries: a keyspace re-created under the same name
/// starts empty.
#[test]
fn cached_keyspace_recreated_under_the_same_name_is_empty() {
    let s = CachedStorage::new(MemoryStorage::new(), 1 << 20);
    s.create_keyspace("t").unwrap();
    let key = b"groupkey-1";
    put(&s, "t", key, b"v");
    assert_eq!(s.get("t", key).unwrap().as_deref(), Some(&b"v"[..]));
    let group = collect(
        &s,
        "t",
        Included(b"groupkey"),
        Excluded(b"groupkez"),
        false,
        9,
    );
    assert_eq!(group, vec![key.to_vec()]);
    s.drop_keyspace("t").unwrap();
    s.create_keyspace("t").unwrap();
    assert_eq!(s.get("t", key).unwrap(), None);
    assert!(collect(
        &s,
        "t",
        Included(b"groupkey"),
        Excluded(b"groupkez"),
        false,
        9
    )
    .is_empty());
}
