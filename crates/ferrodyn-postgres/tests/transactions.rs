//! Transactions, counters, keyspaces and paging of [`PostgresStorage`] on a real PostgreSQL,
//! with several storages on one database standing for several Ferrodyn nodes.

mod common;

use std::ops::Bound::{Excluded, Included, Unbounded};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::TestDb;
use ferrodyn_postgres::{PgOptions, PostgresStorage};
use ferrodyn_storage::{Durability, Storage, StorageError, Transaction, WriteBatch};

/// Runs `f` in transactions until it does not end in a conflict.
fn retrying<T>(
    s: &dyn Storage,
    mut f: impl FnMut(Box<dyn Transaction>) -> Result<T, StorageError>,
) -> T {
    for _ in 0..1000 {
        let txn = s.begin().expect("begin");
        match f(txn) {
            Ok(v) => return v,
            Err(StorageError::Conflict(_)) => continue,
            Err(e) => panic!("transaction failed: {e}"),
        }
    }
    panic!("1000 conflicts in a row");
}

fn lock_rows(db: &TestDb) -> u64 {
    db.psql("SELECT count(*) FROM ferrodyn_kv WHERE v IS NULL")
        .parse()
        .expect("a count")
}

/// Waits (bounded) until no lock row is left: rollbacks of dropped transactions run on the
/// storage's runtime, shortly after the drop.
fn assert_no_lock_rows(db: &TestDb) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while lock_rows(db) != 0 {
        assert!(Instant::now() < deadline, "lock rows left behind");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn read_modify_write_from_two_nodes_is_exact() {
    const N: u64 = 100;
    let db = TestDb::new("increments");
    let nodes = [db.node(), db.node()];
    nodes[0].create_keyspace("t").unwrap();
    assert!(nodes[1].shared());
    std::thread::scope(|scope| {
        for node in &nodes {
            scope.spawn(move || {
                for _ in 0..N {
                    retrying(node, |mut txn| {
                        let old = txn.lock(&[("t", b"n")])?.remove(0);
                        let n = old.map_or(0, |v| u64::from_be_bytes(v.try_into().unwrap()));
                        let mut b = WriteBatch::new();
                        b.put("t", b"n", (n + 1).to_be_bytes());
                        txn.commit(b)
                    });
                }
            });
        }
    });
    let v = nodes[1].get("t", b"n").unwrap().unwrap();
    assert_eq!(u64::from_be_bytes(v.try_into().unwrap()), 2 * N);
}

#[test]
fn put_if_absent_race_has_one_winner_and_leaves_no_lock_rows() {
    const THREADS: usize = 8;
    let db = TestDb::new("put_if_absent");
    let nodes = [db.node(), db.node()];
    nodes[0].create_keyspace("t").unwrap();
    for round in 0..5u8 {
        let key = [b'k', round];
        let barrier = Barrier::new(THREADS);
        let winners: Vec<usize> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..THREADS)
                .map(|i| {
                    let (node, barrier) = (&nodes[i % 2], &barrier);
                    scope.spawn(move || {
                        barrier.wait();
                        retrying(node, |mut txn| {
                            let found = txn.lock(&[("t", &key)])?.remove(0);
                            if found.is_some() {
                                // Losers either commit nothing or just drop the transaction.
                                if i % 4 == 0 {
                                    txn.commit(WriteBatch::new())?;
                                }
                                return Ok(None);
                            }
                            let mut b = WriteBatch::new();
                            b.put("t", key, [i as u8]);
                            txn.commit(b)?;
                            Ok(Some(i))
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(
            nodes[1].get("t", &key).unwrap(),
            Some(vec![winners[0] as u8])
        );
    }
    // Absent keys locked and then not written, committed or dropped.
    let mut txn = nodes[0].begin().unwrap();
    assert_eq!(
        txn.lock(&[("t", b"a1"), ("t", b"a2")]).unwrap(),
        vec![None, None]
    );
    // Locking twice answers the same, and reading under a shared lock too.
    assert_eq!(txn.lock(&[("t", b"a1")]).unwrap(), vec![None]);
    assert_eq!(txn.read_shared(&[("t", b"a2")]).unwrap(), vec![None]);
    // Lock rows are invisible to everyone else.
    assert_eq!(nodes[1].get("t", b"a1").unwrap(), None);
    let mut seen = 0;
    nodes[1]
        .scan("t", Unbounded, Unbounded, false, &mut |_, _| {
            seen += 1;
            true
        })
        .unwrap();
    assert_eq!(seen, 5);
    let mut b = WriteBatch::new();
    b.delete("t", b"a2");
    txn.commit(b).unwrap();
    let mut txn = nodes[1].begin().unwrap();
    txn.lock(&[("t", b"a3")]).unwrap();
    drop(txn);
    assert_no_lock_rows(&db);
    assert_eq!(nodes[0].get("t", b"a1").unwrap(), None);
}

#[test]
fn counters_from_many_threads_are_exact() {
    const THREADS: u64 = 8;
    const N: u64 = 25;
    let db = TestDb::new("counters");
    let nodes = [db.node(), db.node()];
    nodes[0].create_keyspace("t").unwrap();
    nodes[0].create_keyspace("other").unwrap();
    std::thread::scope(|scope| {
        for i in 0..THREADS {
            let node = &nodes[(i % 2) as usize];
            scope.spawn(move || {
                for j in 0..N {
                    retrying(node, |mut txn| {
                        txn.add("t", b"c/1", 1);
                        txn.add("t", b"c/2", 2);
                        txn.add("t", b"c/1", 1);
                        txn.add("other", b"c/1", -1);
                        let mut b = WriteBatch::new();
                        b.put("t", format!("item-{i}-{j}"), b"v");
                        txn.commit(b)
                    });
                }
            });
        }
    });
    let total = (THREADS * N) as i64;
    assert_eq!(
        nodes[1].counters("t", b"c/").unwrap(),
        vec![(b"c/1".to_vec(), 2 * total), (b"c/2".to_vec(), 2 * total)]
    );
    assert_eq!(
        nodes[0].counters("t", b"c/2").unwrap(),
        vec![(b"c/2".to_vec(), 2 * total)]
    );
    assert_eq!(nodes[0].counters("t", b"d").unwrap(), vec![]);
    assert_eq!(
        nodes[0].counters("other", b"").unwrap(),
        vec![(b"c/1".to_vec(), -total)]
    );
    // Counters are not keys, and a rolled-back addition never counts.
    assert_eq!(nodes[0].get("t", b"c/1").unwrap(), None);
    let mut txn = nodes[0].begin().unwrap();
    txn.add("t", b"c/1", 1000);
    drop(txn);
    assert_eq!(nodes[0].counters("t", b"c/1").unwrap()[0].1, 2 * total);
    // Dropping the keyspace drops its counters.
    nodes[0].drop_keyspace("t").unwrap();
    nodes[0].create_keyspace("t").unwrap();
    assert_eq!(nodes[1].counters("t", b"").unwrap(), vec![]);
}

#[test]
fn deadlock_is_a_conflict_for_one_of_the_two() {
    let db = TestDb::new("deadlock");
    let nodes = [db.node(), db.node()];
    nodes[0].create_keyspace("t").unwrap();
    let barrier = Barrier::new(2);
    let results: Vec<Result<(), StorageError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = [(b"k1", b"k2"), (b"k2", b"k1")]
            .into_iter()
            .zip(&nodes)
            .map(|((first, second), node)| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut txn = node.begin().unwrap();
                    txn.lock(&[("t", first)]).unwrap();
                    barrier.wait();
                    let r = txn.lock(&[("t", second)]);
                    match r {
                        Ok(_) => {
                            let mut b = WriteBatch::new();
                            b.put("t", second, b"won");
                            txn.commit(b)
                        }
                        Err(e) => Err(e),
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StorageError::Conflict(_))))
        .count();
    let oks = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((conflicts, oks), (1, 1), "{results:?}");
    assert_no_lock_rows(&db);
}

/// A node whose lock waits give up after 200 ms (a wait that would block shows as Conflict).
fn impatient_node(db: &TestDb) -> PostgresStorage {
    PostgresStorage::connect(
        &db.url,
        PgOptions {
            lock_timeout: Some(Duration::from_millis(200)),
            ..common::options()
        },
    )
    .unwrap()
}

#[test]
fn lock_timeout_and_shared_locks() {
    let db = TestDb::new("lock_timeout");
    let node = db.node();
    let impatient = impatient_node(&db);
    node.create_keyspace("t").unwrap();
    let mut b = WriteBatch::new();
    b.put("t", b"k", b"v");
    node.write(b, Durability::Sync).unwrap();

    // A shared lock keeps exclusive lockers and writers out until it ends.
    let mut reader = node.begin().unwrap();
    assert_eq!(
        reader
            .read_shared(&[("t", b"k"), ("t", b"absent")])
            .unwrap(),
        vec![Some(b"v".to_vec()), None]
    );
    let mut second = node.begin().unwrap();
    assert_eq!(
        second.read_shared(&[("t", b"k")]).unwrap(),
        vec![Some(b"v".to_vec())]
    );
    let mut writer = impatient.begin().unwrap();
    assert!(matches!(
        writer.lock(&[("t", b"k")]),
        Err(StorageError::Conflict(_))
    ));
    // The transaction is dead after a conflict: it says so again.
    assert!(matches!(
        writer.lock(&[("t", b"other")]),
        Err(StorageError::Conflict(_))
    ));
    drop(writer);
    drop(second);
    reader.commit(WriteBatch::new()).unwrap();
    let mut writer = impatient.begin().unwrap();
    assert_eq!(
        writer.lock(&[("t", b"k")]).unwrap(),
        vec![Some(b"v".to_vec())]
    );

    // An exclusive lock keeps plain writes of other nodes waiting, and shows them nothing.
    let mut b = WriteBatch::new();
    b.put("t", b"k", b"blocked");
    assert!(matches!(
        impatient.write(b, Durability::Sync),
        Err(StorageError::Conflict(_))
    ));
    let mut b = WriteBatch::new();
    b.put("t", b"k", b"w");
    writer.commit(b).unwrap();
    assert_eq!(impatient.get("t", b"k").unwrap(), Some(b"w".to_vec()));
}

#[test]
fn transaction_errors_and_rollback() {
    let db = TestDb::new("txn_errors");
    let node = db.node();
    node.create_keyspace("t").unwrap();
    let mut txn = node.begin().unwrap();
    assert!(matches!(
        txn.lock(&[("nope", b"k")]),
        Err(StorageError::KeyspaceNotFound(_))
    ));
    // Unstorable keys are absent, and lock nothing.
    assert_eq!(
        txn.lock(&[("t", b""), ("t", b"k")]).unwrap(),
        vec![None, None]
    );
    let mut b = WriteBatch::new();
    b.put("t", b"k", b"v");
    b.put("t", Vec::new(), b"v");
    assert!(matches!(
        txn.commit(b),
        Err(StorageError::InvalidArgument(_))
    ));
    assert_no_lock_rows(&db);
    assert_eq!(node.get("t", b"k").unwrap(), None);
    // A write that is dropped before its commit leaves nothing.
    let mut txn = node.begin().unwrap();
    txn.lock(&[("t", b"k")]).unwrap();
    txn.add("t", b"c", 1);
    drop(txn);
    // The later operation on a key wins inside a commit too.
    let mut txn = node.begin().unwrap();
    txn.lock(&[("t", b"k")]).unwrap();
    let mut b = WriteBatch::new();
    b.put("t", b"k", b"first");
    b.put("t", b"k", b"second");
    b.put("t", b"gone", b"x");
    b.delete("t", b"gone");
    txn.commit(b).unwrap();
    assert_eq!(node.get("t", b"k").unwrap(), Some(b"second".to_vec()));
    assert_eq!(node.get("t", b"gone").unwrap(), None);
    assert_eq!(node.counters("t", b"").unwrap(), vec![]);
    // A transaction that never sent anything commits for free.
    node.begin().unwrap().commit(WriteBatch::new()).unwrap();
    assert_no_lock_rows(&db);
}

#[test]
fn keyspaces_are_shared_between_nodes() {
    let db = TestDb::new("keyspaces");
    let nodes: Vec<Arc<PostgresStorage>> = (0..2).map(|_| Arc::new(db.node())).collect();
    let barrier = Barrier::new(8);
    std::thread::scope(|scope| {
        for i in 0..8 {
            let (node, barrier) = (&nodes[i % 2], &barrier);
            scope.spawn(move || {
                barrier.wait();
                node.create_keyspace("same").unwrap();
                node.create_keyspace(&format!("own-{i}")).unwrap();
            });
        }
    });
    assert_eq!(
        db.psql("SELECT count(*) FROM ferrodyn_keyspaces WHERE name = 'same'"),
        "1"
    );
    assert_eq!(
        db.psql("SELECT count(DISTINCT id) FROM ferrodyn_keyspaces"),
        "9"
    );
    let mut b = WriteBatch::new();
    b.put("same", b"k", b"from 0");
    nodes[0].write(b, Durability::Sync).unwrap();
    assert_eq!(
        nodes[1].get("same", b"k").unwrap(),
        Some(b"from 0".to_vec())
    );
    // A keyspace created by another node is found on first use.
    let third = db.node();
    nodes[1].create_keyspace("late").unwrap();
    assert!(third.keyspace_exists("late"));
    assert_eq!(third.get("late", b"k").unwrap(), None);
    // Drops are seen by the existence checks of every node, and ids are never reused.
    let before = db.psql("SELECT max(id) FROM ferrodyn_keyspaces");
    nodes[0].drop_keyspace("late").unwrap();
    assert!(!nodes[1].keyspace_exists("late"));
    assert!(!third.list_keyspaces().contains(&"late".to_string()));
    nodes[1].create_keyspace("late").unwrap();
    let after: i64 = db
        .psql("SELECT id FROM ferrodyn_keyspaces WHERE name = 'late'")
        .parse()
        .unwrap();
    assert!(after > before.parse::<i64>().unwrap());
    assert_eq!(third.get("late", b"k").unwrap(), None);
}

#[test]
fn scans_page_through_large_ranges() {
    let db = TestDb::new("paging");
    let node = db.node();
    node.create_keyspace("t").unwrap();
    node.create_keyspace("u").unwrap();
    const N: u32 = 3000;
    let mut b = WriteBatch::new();
    for i in 0..N {
        b.put("t", i.to_be_bytes(), i.to_le_bytes());
    }
    b.put("u", 5u32.to_be_bytes(), b"other keyspace");
    node.write(b, Durability::Sync).unwrap();
    let scan = |lo, hi, rev, limit: usize| {
        let mut out = Vec::new();
        node.scan("t", lo, hi, rev, &mut |k, v| {
            let i = u32::from_be_bytes(k.try_into().unwrap());
            assert_eq!(v, i.to_le_bytes());
            out.push(i);
            out.len() < limit
        })
        .unwrap();
        out
    };
    assert_eq!(
        scan(Unbounded, Unbounded, false, usize::MAX),
        (0..N).collect::<Vec<_>>()
    );
    assert_eq!(
        scan(Unbounded, Unbounded, true, usize::MAX),
        (0..N).rev().collect::<Vec<_>>()
    );
    let (lo, hi) = (100u32.to_be_bytes(), 2500u32.to_be_bytes());
    assert_eq!(
        scan(Excluded(&lo[..]), Included(&hi[..]), false, usize::MAX),
        (101..=2500).collect::<Vec<_>>()
    );
    assert_eq!(
        scan(Included(&lo[..]), Excluded(&hi[..]), true, usize::MAX),
        (100..2500).rev().collect::<Vec<_>>()
    );
    assert_eq!(
        scan(Included(&lo[..]), Unbounded, false, 1500),
        (100..1600).collect::<Vec<_>>()
    );
    // Snapshots page through their own transaction, unaffected by later writes.
    let snap = node.snapshot();
    let mut b = WriteBatch::new();
    for i in (0..N).step_by(2) {
        b.delete("t", i.to_be_bytes());
    }
    node.write(b, Durability::Sync).unwrap();
    let mut n = 0;
    snap.scan("t", Unbounded, Unbounded, true, &mut |_, _| {
        n += 1;
        true
    })
    .unwrap();
    assert_eq!(n, N);
    assert_eq!(
        scan(Unbounded, Unbounded, false, usize::MAX).len(),
        (N / 2) as usize
    );
    // Stats are exact for small keyspaces.
    let stats = node.stats("t").unwrap();
    assert_eq!(stats.approximate_keys, u64::from(N / 2));
    assert_eq!(stats.approximate_bytes, u64::from(N / 2) * 8);
}

#[test]
fn newer_schema_is_refused() {
    let db = TestDb::new("schema");
    drop(db.node());
    assert_eq!(
        db.psql("SELECT value FROM ferrodyn_meta WHERE name = 'schema_version'"),
        "1"
    );
    db.psql("UPDATE ferrodyn_meta SET value = '7' WHERE name = 'schema_version'");
    match PostgresStorage::connect(&db.url, common::options()) {
        Err(StorageError::UnsupportedFormat {
            found: 7,
            supported: 1,
        }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("connected to a newer schema"),
    }
    assert!(matches!(
        PostgresStorage::connect(
            "postgres://x@127.0.0.1:1/db?sslmode=bogus",
            common::options()
        ),
        Err(StorageError::InvalidArgument(_))
    ));
    let started = Instant::now();
    assert!(matches!(
        PostgresStorage::connect(
            "postgres://x@127.0.0.1:1/db",
            PgOptions {
                connect_timeout: Duration::from_secs(1),
                ..common::options()
            }
        ),
        Err(StorageError::Unavailable(_))
    ));
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Keyspace lookups do not need a client of the (full) pool: a transaction holding the only
/// one still resolves a keyspace another node created; other callers wait a bounded time.
#[test]
fn a_full_pool_still_resolves_keyspaces() {
    let db = TestDb::new("full_pool");
    let small = PostgresStorage::connect(
        &db.url,
        PgOptions {
            pool_size: 1,
            acquire_timeout: Duration::from_millis(500),
            ..common::options()
        },
    )
    .unwrap();
    db.node().create_keyspace("t").unwrap();
    let mut txn = small.begin().unwrap();
    assert_eq!(txn.lock(&[("t", b"k")]).unwrap(), vec![None]);
    assert!(matches!(
        small.get("t", b"k"),
        Err(StorageError::Unavailable(_))
    ));
    let mut b = WriteBatch::new();
    b.put("t", b"k", b"v");
    txn.commit(b).unwrap();
    assert_eq!(small.get("t", b"k").unwrap(), Some(b"v".to_vec()));
}

/// `lock_with_shared`: shared reads and locks in one call; both kinds of lock are held.
#[test]
fn lock_with_shared_holds_both_locks() {
    let db = TestDb::new("lock_with_shared");
    let node = db.node();
    let impatient = impatient_node(&db);
    node.create_keyspace("catalog").unwrap();
    node.create_keyspace("t").unwrap();
    let mut b = WriteBatch::new();
    b.put("catalog", b"table", b"schema v1");
    b.put("t", b"item", b"old");
    node.write(b, Durability::Sync).unwrap();

    let mut txn = node.begin().unwrap();
    let (records, values) = txn
        .lock_with_shared(
            &[("catalog", b"table"), ("catalog", b"none")],
            &[("t", b"item"), ("t", b"absent"), ("t", b"")],
        )
        .unwrap();
    assert_eq!(records, vec![Some(b"schema v1".to_vec()), None]);
    assert_eq!(values, vec![Some(b"old".to_vec()), None, None]);
    // Another shared reader is fine; an exclusive locker of either key waits (and times out).
    let mut reader = impatient.begin().unwrap();
    assert_eq!(
        reader.read_shared(&[("catalog", b"table")]).unwrap(),
        vec![Some(b"schema v1".to_vec())]
    );
    drop(reader);
    for key in [("catalog", &b"table"[..]), ("t", &b"item"[..])] {
        let mut other = impatient.begin().unwrap();
        assert!(
            matches!(other.lock(&[key]), Err(StorageError::Conflict(_))),
            "{key:?}"
        );
    }
    let (records, values) = txn.lock_with_shared(&[], &[]).unwrap();
    assert!(records.is_empty() && values.is_empty());
    let mut b = WriteBatch::new();
    b.put("t", b"item", b"new");
    txn.commit(b).unwrap();
    assert_eq!(impatient.get("t", b"item").unwrap(), Some(b"new".to_vec()));
    assert_no_lock_rows(&db);
}

/// Nodes starting together on an empty database all come up, on one schema.
#[test]
fn nodes_starting_together_share_one_schema() {
    let db = TestDb::new("schema_race");
    let barrier = Barrier::new(6);
    let nodes: Vec<PostgresStorage> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    db.node()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        db.psql("SELECT count(*) FROM ferrodyn_meta"),
        "1",
        "one schema_version row"
    );
    nodes[0].create_keyspace("t").unwrap();
    assert!(nodes[5].keyspace_exists("t"));
}

/// Snapshots hold a client each for their whole life, beyond the pool's size: many open
/// snapshots neither block nor starve other calls, and their extra clients close afterwards.
#[test]
fn many_snapshots_do_not_exhaust_the_pool() {
    let db = TestDb::new("snapshots");
    let node = PostgresStorage::connect(
        &db.url,
        PgOptions {
            pool_size: 2,
            acquire_timeout: Duration::from_millis(500),
            ..common::options()
        },
    )
    .unwrap();
    node.create_keyspace("t").unwrap();
    let mut snaps = Vec::new();
    for i in 0..12u8 {
        let mut b = WriteBatch::new();
        b.put("t", b"k", [i]);
        node.write(b, Durability::Sync).unwrap();
        snaps.push(node.snapshot());
    }
    assert_eq!(node.get("t", b"k").unwrap(), Some(vec![11]));
    for (i, snap) in snaps.iter().enumerate() {
        assert_eq!(snap.get("t", b"k").unwrap(), Some(vec![i as u8]));
    }
    drop(snaps);
    let connections = || -> u64 {
        db.psql(&format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND pid <> pg_backend_pid()",
            db.name
        ))
        .parse()
        .unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    // Two pooled clients and two for keyspace lookups stay.
    while connections() > 4 {
        assert!(
            Instant::now() < deadline,
            "{} connections left",
            connections()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(node.get("t", b"k").unwrap(), Some(vec![11]));
}
