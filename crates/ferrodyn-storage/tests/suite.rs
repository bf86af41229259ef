//! Shared behavioural suite, instantiated for both engines (`memory::*` and `fjall::*`), plus
//! fjall-only tests: persistence across reopen, format-version checks and group commit.

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use ferrodyn_storage::{
    CachedStorage, Durability, FjallStorage, MemoryStorage, Storage, StorageError, WriteBatch,
};

fn put(s: &dyn Storage, ks: &str, k: &[u8], v: &[u8]) {
    let mut b = WriteBatch::new();
    b.put(ks, k, v);
    s.write(b, Durability::Sync).unwrap();
}

fn collect(
    s: &dyn Storage,
    ks: &str,
    lo: Bound<&[u8]>,
    hi: Bound<&[u8]>,
    rev: bool,
    limit: usize,
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    s.scan(ks, lo, hi, rev, &mut |k, _| {
        out.push(k.to_vec());
        out.len() < limit
    })
    .unwrap();
    out
}

fn keys(range: std::ops::Range<u8>) -> Vec<Vec<u8>> {
    range.map(|i| vec![b'a', i]).collect()
}

fn get_put_delete(s: &dyn Storage) {
    assert!(!s.keyspace_exists("t"));
    assert!(matches!(
        s.get("t", b"k"),
        Err(StorageError::KeyspaceNotFound(_))
    ));
    s.create_keyspace("t").unwrap();
    s.create_keyspace("t").unwrap(); // idempotent
    assert!(s.keyspace_exists("t"));
    assert_eq!(s.get("t", b"k").unwrap(), None);
    put(s, "t", b"k", b"v1");
    assert_eq!(s.get("t", b"k").unwrap().as_deref(), Some(&b"v1"[..]));
    put(s, "t", b"k", b"v2");
    assert_eq!(s.get("t", b"k").unwrap().as_deref(), Some(&b"v2"[..]));
    // Empty values are values.
    put(s, "t", b"e", b"");
    assert_eq!(s.get("t", b"e").unwrap().as_deref(), Some(&b""[..]));
    let mut b = WriteBatch::new();
    b.delete("t", &b"k"[..]);
    b.delete("t", &b"never"[..]);
    s.write(b, Durability::Buffered).unwrap();
    assert_eq!(s.get("t", b"k").unwrap(), None);
    // Unstorable keys read as absent, and are rejected in batches without partial effect.
    assert_eq!(s.get("t", b"").unwrap(), None);
    let mut b = WriteBatch::new();
    b.put("t", &b"x"[..], &b"1"[..]);
    b.put("t", Vec::new(), &b"1"[..]);
    assert!(matches!(
        s.write(b, Durability::Sync),
        Err(StorageError::InvalidArgument(_))
    ));
    let mut b = WriteBatch::new();
    b.put("t", &b"x"[..], &b"1"[..]);
    b.put("t", vec![7u8; 70_000], &b"1"[..]);
    assert!(s.write(b, Durability::Sync).is_err());
    let mut b = WriteBatch::new();
    b.put("t", &b"x"[..], &b"1"[..]);
    b.put("missing", &b"x"[..], &b"1"[..]);
    assert!(matches!(
        s.write(b, Durability::Sync),
        Err(StorageError::KeyspaceNotFound(_))
    ));
    assert_eq!(s.get("t", b"x").unwrap(), None);
    // Empty batches are fine.
    s.write(WriteBatch::new(), Durability::Sync).unwrap();
    // Large values and binary keys.
    let big = vec![0xABu8; 100_000];
    put(s, "t", &[0, 255, 0], &big);
    assert_eq!(s.get("t", &[0, 255, 0]).unwrap(), Some(big));
    assert!(s.stats("t").unwrap().approximate_keys >= 2);
    assert!(s.create_keyspace("").is_err());
}

fn scan_bounds(s: &dyn Storage) {
    s.create_keyspace("t").unwrap();
    let mut b = WriteBatch::new();
    for k in keys(0..20) {
        b.put("t", k.clone(), k);
    }
    s.write(b, Durability::Sync).unwrap();
    let all = keys(0..20);
    let rev = |mut v: Vec<Vec<u8>>| {
        v.reverse();
        v
    };
    let k = |i: u8| vec![b'a', i];
    let (k5, k10) = (k(5), k(10));
    type Case<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>, Vec<Vec<u8>>);
    let cases: Vec<Case> = vec![
        (Unbounded, Unbounded, all.clone()),
        (Included(&k5), Excluded(&k10), keys(5..10)),
        (Excluded(&k5), Excluded(&k10), keys(6..10)),
        (Included(&k5), Included(&k10), keys(5..11)),
        (Excluded(&k5), Included(&k10), keys(6..11)),
        (Unbounded, Excluded(&k5), keys(0..5)),
        (Excluded(&k10), Unbounded, keys(11..20)),
        (Included(b"a"), Included(b"b"), all.clone()),
        (Included(b"b"), Unbounded, vec![]),
        // Empty and inverted ranges.
        (Included(&k5), Excluded(&k5), vec![]),
        (Excluded(&k5), Included(&k5), vec![]),
        (Excluded(&k5), Excluded(&k5), vec![]),
        (Included(&k5), Included(&k5), vec![k(5)]),
        (Included(&k10), Included(&k5), vec![]),
        (Excluded(&k10), Excluded(&k5), vec![]),
    ];
    for (lo, hi, want) in cases {
        assert_eq!(
            collect(s, "t", lo, hi, false, usize::MAX),
            want,
            "{lo:?}..{hi:?}"
        );
        assert_eq!(
            collect(s, "t", lo, hi, true, usize::MAX),
            rev(want),
            "rev {lo:?}..{hi:?}"
        );
    }
    // Early stop.
    assert_eq!(collect(s, "t", Unbounded, Unbounded, false, 3), keys(0..3));
    assert_eq!(
        collect(s, "t", Unbounded, Unbounded, true, 3),
        rev(keys(17..20))
    );
    assert_eq!(
        collect(s, "t", Excluded(&k5), Unbounded, false, 2),
        keys(6..8)
    );
    // Deleted keys are skipped; values are delivered.
    let mut b = WriteBatch::new();
    b.delete("t", k(3));
    s.write(b, Durability::Sync).unwrap();
    let mut seen = Vec::new();
    s.scan("t", Unbounded, Excluded(&k5), true, &mut |key, v| {
        assert_eq!(key, v);
        seen.push(key.to_vec());
        true
    })
    .unwrap();
    assert_eq!(seen, vec![k(4), k(2), k(1), k(0)]);
    assert!(matches!(
        s.scan("nope", Unbounded, Unbounded, false, &mut |_, _| true),
        Err(StorageError::KeyspaceNotFound(_))
    ));
}

fn atomic_batches(s: &dyn Storage) {
    s.create_keyspace("a").unwrap();
    s.create_keyspace("b/with:odd chars é").unwrap();
    let long = "x".repeat(600);
    s.create_keyspace(&long).unwrap();
    put(s, "a", b"old", b"1");
    let mut b = WriteBatch::with_capacity(4);
    let owned = b"v1".to_vec();
    b.put("a", "k1", &owned);
    b.put("b/with:odd chars é", &b"k1"[..], &b"w1"[..]);
    b.put(&long, &b"k1"[..], &b"l1"[..]);
    b.delete("a", &b"old"[..]);
    // Later ops on the same key win.
    b.put("a", &b"dup"[..], &b"first"[..]);
    b.put("a", &b"dup"[..], &b"second"[..]);
    b.put("a", &b"gone"[..], &b"x"[..]);
    b.delete("a", &b"gone"[..]);
    assert_eq!(b.len(), 8);
    assert_eq!(b.iter().count(), 8);
    s.write(b, Durability::Sync).unwrap();
    assert_eq!(s.get("a", b"k1").unwrap().as_deref(), Some(&b"v1"[..]));
    assert_eq!(
        s.get("b/with:odd chars é", b"k1").unwrap().as_deref(),
        Some(&b"w1"[..])
    );
    assert_eq!(s.get(&long, b"k1").unwrap().as_deref(), Some(&b"l1"[..]));
    assert_eq!(s.get("a", b"old").unwrap(), None);
    assert_eq!(s.get("a", b"dup").unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(s.get("a", b"gone").unwrap(), None);
    let mut names = s.list_keyspaces();
    names.retain(|n| n != &long);
    assert_eq!(
        names,
        vec!["a".to_string(), "b/with:odd chars é".to_string()]
    );
}

fn drop_keyspace(s: &dyn Storage) {
    s.create_keyspace("t").unwrap();
    s.create_keyspace("u").unwrap();
    put(s, "t", b"k", b"v");
    put(s, "u", b"k", b"v");
    s.drop_keyspace("t").unwrap();
    s.drop_keyspace("t").unwrap(); // idempotent
    assert!(!s.keyspace_exists("t"));
    assert!(s.get("t", b"k").is_err());
    s.create_keyspace("t").unwrap();
    assert_eq!(s.get("t", b"k").unwrap(), None);
    assert_eq!(
        collect(s, "t", Unbounded, Unbounded, false, usize::MAX).len(),
        0
    );
    assert_eq!(s.get("u", b"k").unwrap().as_deref(), Some(&b"v"[..]));
}

fn snapshots(s: &dyn Storage) {
    s.create_keyspace("a").unwrap();
    s.create_keyspace("b").unwrap();
    put(s, "a", b"k", b"1");
    put(s, "a", b"del", b"x");
    let snap = s.snapshot();
    let mut b = WriteBatch::new();
    b.put("a", &b"k"[..], &b"2"[..]);
    b.put("a", &b"new"[..], &b"n"[..]);
    b.delete("a", &b"del"[..]);
    b.put("b", &b"k"[..], &b"b"[..]);
    s.write(b, Durability::Buffered).unwrap();
    let snap2 = s.snapshot();
    put(s, "a", b"k", b"3");
    s.create_keyspace("c").unwrap();
    put(s, "c", b"k", b"c");

    assert_eq!(snap.get("a", b"k").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(snap.get("a", b"new").unwrap(), None);
    assert_eq!(snap.get("a", b"del").unwrap().as_deref(), Some(&b"x"[..]));
    assert_eq!(snap.get("b", b"k").unwrap(), None);
    assert_eq!(snap.get("c", b"k").unwrap(), None);
    let mut seen = Vec::new();
    snap.scan("a", Unbounded, Unbounded, false, &mut |k, v| {
        seen.push((k.to_vec(), v.to_vec()));
        true
    })
    .unwrap();
    assert_eq!(
        seen,
        vec![
            (b"del".to_vec(), b"x".to_vec()),
            (b"k".to_vec(), b"1".to_vec())
        ]
    );
    assert_eq!(snap2.get("a", b"k").unwrap().as_deref(), Some(&b"2"[..]));
    assert_eq!(snap2.get("a", b"del").unwrap(), None);
    assert_eq!(s.get("a", b"k").unwrap().as_deref(), Some(&b"3"[..]));
    drop(snap);
    drop(snap2);
    // After the snapshots are gone, writes and reads keep working (version GC path).
    put(s, "a", b"k", b"4");
    let mut b = WriteBatch::new();
    b.delete("a", &b"new"[..]);
    s.write(b, Durability::Sync).unwrap();
    assert_eq!(s.get("a", b"k").unwrap().as_deref(), Some(&b"4"[..]));
    assert_eq!(
        collect(s, "a", Unbounded, Unbounded, false, usize::MAX),
        vec![b"k".to_vec()]
    );
    let snap3 = s.snapshot();
    s.drop_keyspace("b").unwrap();
    assert!(snap3.get("b", b"k").is_err());
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[test] fn $name() { super::$name(&ferrodyn_storage::MemoryStorage::new()) })*
        }
        mod fjall {
            $(#[test] fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let s = ferrodyn_storage::FjallStorage::open(dir.path()).unwrap();
                super::$name(&s)
            })*
        }
        mod cached {
            $(#[test] fn $name() {
                let s = ferrodyn_storage::CachedStorage::new(
                    ferrodyn_storage::MemoryStorage::new(),
                    1 << 20,
                );
                super::$name(&s)
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
        for t in 0..8 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..100 {
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

type Model = BTreeMap<(u8, Vec<u8>), Vec<u8>>;

#[derive(Debug, Clone)]
enum Action {
    Batch(Vec<(u8, Vec<u8>, Option<Vec<u8>>)>, bool),
    Scan(u8, Bound<Vec<u8>>, Bound<Vec<u8>>, bool, usize),
    Get(u8, Vec<u8>),
    TakeSnapshot,
    CheckSnapshot(usize),
    DropSnapshot(usize),
}

fn small_key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(1u8), Just(255u8), any::<u8>()],
        1..4,
    )
}

/// Keys as the cache groups them: mostly a few 8-byte group prefixes (one of them all 0xff,
/// whose group runs to the end of the keyspace) with short suffixes, plus short keys.
fn grouped_key() -> BoxedStrategy<Vec<u8>> {
    let prefix = prop_oneof![
        Just([7u8; 8].to_vec()),
        Just([7, 7, 7, 7, 7, 7, 7, 8].to_vec()),
        Just([255u8; 8].to_vec()),
    ];
    prop_oneof![
        1 => small_key(),
        4 => (prefix, prop::collection::vec(prop_oneof![Just(0u8), Just(255u8), any::<u8>()], 0..3))
            .prop_map(|(mut p, s)| {
                p.extend(s);
                p
            }),
    ]
    .boxed()
}

fn bound_with(key: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Unbounded),
        key.clone().prop_map(Included),
        key.prop_map(Excluded),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    action_with(small_key().boxed(), 0..8)
}

fn action_with(
    key: BoxedStrategy<Vec<u8>>,
    value_len: std::ops::Range<usize>,
) -> impl Strategy<Value = Action> {
    let op = (
        0u8..3,
        key.clone(),
        prop::option::weighted(0.7, prop::collection::vec(any::<u8>(), value_len)),
    );
    prop_oneof![
        4 => (prop::collection::vec(op, 1..8), any::<bool>()).prop_map(|(o, s)| Action::Batch(o, s)),
        3 => (0u8..3, bound_with(key.clone()), bound_with(key.clone()), any::<bool>(), 1usize..10)
            .prop_map(|(k, l, u, r, n)| Action::Scan(k, l, u, r, n)),
        2 => (0u8..3, key).prop_map(|(k, key)| Action::Get(k, key)),
        1 => Just(Action::TakeSnapshot),
        1 => (0usize..4).prop_map(Action::CheckSnapshot),
        1 => (0usize..4).prop_map(Action::DropSnapshot),
    ]
}

const KS: [&str; 3] = ["ks0", "ks1", "ks2"];

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Included(v) => Included(v.as_slice()),
        Excluded(v) => Excluded(v.as_slice()),
        Unbounded => Unbounded,
    }
}

fn model_scan(
    m: &Model,
    ks: u8,
    lo: &Bound<Vec<u8>>,
    hi: &Bound<Vec<u8>>,
    rev: bool,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let in_range = |k: &Vec<u8>| {
        let lo_ok = match lo {
            Included(l) => k >= l,
            Excluded(l) => k > l,
            Unbounded => true,
        };
        let hi_ok = match hi {
            Included(h) => k <= h,
            Excluded(h) => k < h,
            Unbounded => true,
        };
        lo_ok && hi_ok
    };
    let it = m
        .iter()
        .filter(|((k_ks, k), _)| *k_ks == ks && in_range(k))
        .map(|((_, k), v)| (k.clone(), v.clone()));
    if rev {
        let mut v: Vec<_> = it.collect();
        v.reverse();
        v.truncate(limit);
        v
    } else {
        it.take(limit).collect()
    }
}

fn scan_with(
    f: impl FnOnce(&mut dyn FnMut(&[u8], &[u8]) -> bool),
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    f(&mut |k, v| {
        out.push((k.to_vec(), v.to_vec()));
        out.len() < limit
    });
    out
}

fn run_model(s: &dyn Storage, actions: &[Action]) {
    for ks in KS {
        s.create_keyspace(ks).unwrap();
    }
    let mut model = Model::new();
    let mut snaps: Vec<(Box<dyn ferrodyn_storage::Snapshot>, Model)> = Vec::new();
    for a in actions {
        match a {
            Action::Batch(ops, sync) => {
                let mut b = WriteBatch::new();
                for (ks, k, v) in ops {
                    match v {
                        Some(v) => {
                            b.put(KS[*ks as usize], k.clone(), v.clone());
                            model.insert((*ks, k.clone()), v.clone());
                        }
                        None => {
                            b.delete(KS[*ks as usize], k.clone());
                            model.remove(&(*ks, k.clone()));
                        }
                    }
                }
                let d = if *sync {
                    Durability::Sync
                } else {
                    Durability::Buffered
                };
                s.write(b, d).unwrap();
            }
            Action::Scan(ks, lo, hi, rev, limit) => {
                let got = scan_with(
                    |f| {
                        s.scan(KS[*ks as usize], as_ref(lo), as_ref(hi), *rev, f)
                            .unwrap()
                    },
                    *limit,
                );
                assert_eq!(got, model_scan(&model, *ks, lo, hi, *rev, *limit));
            }
            Action::Get(ks, k) => {
                assert_eq!(
                    s.get(KS[*ks as usize], k).unwrap(),
                    model.get(&(*ks, k.clone())).cloned()
                );
            }
            Action::TakeSnapshot => snaps.push((s.snapshot(), model.clone())),
            Action::CheckSnapshot(i) => {
                if let Some((snap, m)) = snaps.get(*i) {
                    for ks in 0..3u8 {
                        let got = scan_with(
                            |f| {
                                snap.scan(KS[ks as usize], Unbounded, Unbounded, false, f)
                                    .unwrap()
                            },
                            usize::MAX,
                        );
                        assert_eq!(
                            got,
                            model_scan(m, ks, &Unbounded, &Unbounded, false, usize::MAX)
                        );
                        for ((mks, k), v) in m.iter().filter(|((mks, _), _)| *mks == ks) {
                            assert_eq!(snap.get(KS[*mks as usize], k).unwrap().as_ref(), Some(v));
                        }
                    }
                }
            }
            Action::DropSnapshot(i) => {
                if *i < snaps.len() {
                    snaps.remove(*i);
                }
            }
        }
    }
    for ks in 0..3u8 {
        let got = scan_with(
            |f| {
                s.scan(KS[ks as usize], Unbounded, Unbounded, true, f)
                    .unwrap()
            },
            usize::MAX,
        );
        assert_eq!(
            got,
            model_scan(&model, ks, &Unbounded, &Unbounded, true, usize::MAX)
        );
    }
}

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
