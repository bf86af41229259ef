//! A transaction on a node that has not seen a keyspace yet (another node just created it)
//! resolves it over its own connection: with every pooled connection held by such
//! transactions, none may wait for another from the same pool.

mod common;

use std::time::{Duration, Instant};

use ferrodyn_postgres::{PgOptions, PostgresStorage};
use ferrodyn_storage::{Storage, WriteBatch};

#[test]
fn a_transaction_resolves_a_new_keyspace_on_its_own_connection() {
    let db = common::TestDb::new("keyspaces");
    // The second node connects (and caches the keyspace map) before the keyspace exists.
    let creator = db.node();
    let node = PostgresStorage::connect(
        &db.url,
        PgOptions {
            pool_size: 1,
            acquire_timeout: Duration::from_secs(3),
            ..common::options()
        },
    )
    .expect("connect");
    creator.create_keyspace("fresh").unwrap();
    creator.create_keyspace("fresher").unwrap();
    creator.create_keyspace("freshest").unwrap();

    let began = Instant::now();
    let mut txn = node.begin().unwrap();
    // The transaction holds the pool's only connection from here on.
    assert_eq!(txn.lock(&[("fresh", b"k")]).unwrap(), vec![None]);
    txn.add("fresher", b"n", 5);
    let mut batch = WriteBatch::default();
    batch.put("fresh", b"k".as_slice(), b"v".as_slice());
    batch.put("freshest", b"k".as_slice(), b"w".as_slice());
    txn.commit(batch).unwrap();
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "the transaction waited {:?} for a connection",
        began.elapsed()
    );

    assert_eq!(creator.get("fresh", b"k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(creator.get("freshest", b"k").unwrap(), Some(b"w".to_vec()));
    assert_eq!(
        creator.counters("fresher", b"").unwrap(),
        vec![(b"n".to_vec(), 5)]
    );
}
