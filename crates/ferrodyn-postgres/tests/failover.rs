//! A database restart, crash and failover under a running [`PostgresStorage`]: broken
//! clients are replaced, later operations succeed, acknowledged writes survive, and with a
//! two-host connection string the promoted standby is found.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferrodyn_pgtest::PgServer;
use ferrodyn_postgres::{PgOptions, PostgresStorage};
use ferrodyn_storage::{Durability, Storage, StorageError, WriteBatch};

fn put(s: &dyn Storage, key: &str, value: &[u8]) -> Result<(), StorageError> {
    let mut b = WriteBatch::new();
    b.put("t", key, value);
    s.write(b, Durability::Sync)
}

/// Retries `f` while it answers `Unavailable`, for at most 10 s.
fn eventually<T>(mut f: impl FnMut() -> Result<T, StorageError>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match f() {
            Ok(v) => return v,
            Err(StorageError::Unavailable(e)) if Instant::now() < deadline => {
                eprintln!("unavailable, retrying: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("operation failed: {e}"),
        }
    }
}

/// Writers run while the server restarts (`crash`: killed and started again); every write
/// they saw acknowledged is there afterwards, and every operation after the first success
/// succeeds.
fn writes_survive(crash: bool) {
    let server = PgServer::start().expect("start PostgreSQL");
    let node = PostgresStorage::connect(&server.url(), common::options()).unwrap();
    node.create_keyspace("t").unwrap();
    let stop = AtomicBool::new(false);
    let acked = Mutex::new(Vec::new());
    let unavailable = Mutex::new(0usize);
    std::thread::scope(|scope| {
        for t in 0..3 {
            let (node, stop, acked, unavailable) = (&node, &stop, &acked, &unavailable);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("{t}-{i}");
                    match put(node, &key, b"v") {
                        Ok(()) => acked.lock().unwrap().push(key),
                        Err(StorageError::Unavailable(_)) => {
                            *unavailable.lock().unwrap() += 1;
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => panic!("write failed: {e}"),
                    }
                    i += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        if crash {
            server.kill9().unwrap();
            std::thread::sleep(Duration::from_millis(200));
            server.start_again().unwrap();
        } else {
            server.restart().unwrap();
        }
        let acked_at_restart = acked.lock().unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(10);
        while acked.lock().unwrap().len() < acked_at_restart + 50 {
            assert!(Instant::now() < deadline, "no writes after the restart");
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
    });
    eprintln!(
        "{} writes acknowledged, {} unavailable",
        acked.lock().unwrap().len(),
        unavailable.lock().unwrap()
    );
    eventually(|| node.get("t", b"0-0"));
    for key in acked.lock().unwrap().iter() {
        assert_eq!(
            node.get("t", key.as_bytes()).unwrap(),
            Some(b"v".to_vec()),
            "{key}"
        );
    }
    // Everything works now, transactions included, without errors.
    for i in 0..20 {
        put(&node, &format!("after-{i}"), b"w").unwrap();
        let mut txn = node.begin().unwrap();
        txn.lock(&[("t", format!("after-{i}").as_bytes())]).unwrap();
        txn.commit(WriteBatch::new()).unwrap();
    }
}

#[test]
fn restart_is_survived() {
    writes_survive(false);
}

/// Idle clients whose connections a restart closed are never handed out again: reads right
/// after the restart succeed at once, every one of them.
#[test]
fn reads_right_after_a_restart_succeed() {
    let server = PgServer::start().expect("start PostgreSQL");
    let node = PostgresStorage::connect(&server.url(), common::options()).unwrap();
    node.create_keyspace("t").unwrap();
    put(&node, "k", b"v").unwrap();
    // Fill the pool with idle clients.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..20 {
                    node.get("t", b"k").unwrap();
                }
            });
        }
    });
    server.restart().unwrap();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(node.get("t", b"k").unwrap(), Some(b"v".to_vec()));
                }
            });
        }
    });
    let mut n = 0;
    node.scan(
        "t",
        std::ops::Bound::Unbounded,
        std::ops::Bound::Unbounded,
        false,
        &mut |_, _| {
            n += 1;
            true
        },
    )
    .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn crash_is_survived() {
    writes_survive(true);
}

/// Primary and hot standby; the node names both hosts with `target_session_attrs=read-write`
/// and reads eventually consistent data from the standby. While the primary is down, strong
/// reads are unavailable and eventual ones go on; once the standby is promoted, everything
/// works again.
#[test]
fn failover_to_a_promoted_standby() {
    let primary = PgServer::start().expect("start PostgreSQL");
    let node = PostgresStorage::connect(&primary.url(), common::options()).unwrap();
    node.create_keyspace("t").unwrap();
    put(&node, "before", b"1").unwrap();
    drop(node);
    let standby = primary.start_standby().expect("start a standby");
    let url = format!(
        "postgres://ferrodyn@127.0.0.1:{},127.0.0.1:{}/ferrodyn?target_session_attrs=read-write",
        primary.port(),
        standby.port()
    );
    let node = PostgresStorage::connect(
        &url,
        PgOptions {
            replica: Some(standby.url()),
            connect_timeout: Duration::from_secs(2),
            ..common::options()
        },
    )
    .unwrap();
    put(&node, "replicated", b"2").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while standby
        .psql("SELECT count(*) FROM ferrodyn_kv")
        .unwrap()
        .trim()
        != "2"
    {
        assert!(Instant::now() < deadline, "the standby never caught up");
        std::thread::sleep(Duration::from_millis(20));
    }

    primary.stop().unwrap();
    assert!(matches!(
        node.get("t", b"replicated"),
        Err(StorageError::Unavailable(_))
    ));
    assert!(matches!(
        put(&node, "lost", b"x"),
        Err(StorageError::Unavailable(_))
    ));
    assert_eq!(
        node.get_eventual("t", b"replicated").unwrap(),
        Some(b"2".to_vec())
    );
    let mut seen = Vec::new();
    node.scan_eventual(
        "t",
        std::ops::Bound::Unbounded,
        std::ops::Bound::Unbounded,
        false,
        &mut |k, _| {
            seen.push(k.to_vec());
            true
        },
    )
    .unwrap();
    assert_eq!(seen, vec![b"before".to_vec(), b"replicated".to_vec()]);

    standby.promote().unwrap();
    assert_eq!(eventually(|| node.get("t", b"before")), Some(b"1".to_vec()));
    put(&node, "after", b"3").unwrap();
    let mut txn = node.begin().unwrap();
    assert_eq!(
        txn.lock(&[("t", b"after")]).unwrap(),
        vec![Some(b"3".to_vec())]
    );
    txn.commit(WriteBatch::new()).unwrap();
    assert_eq!(
        node.get_eventual("t", b"after").unwrap(),
        Some(b"3".to_vec())
    );
}
