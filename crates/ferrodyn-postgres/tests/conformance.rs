//! The engine-agnostic storage suite (`ferrodyn_storage::conformance`) against
//! [`PostgresStorage`] on a real PostgreSQL, each test in its own database.

mod common;

use common::TestDb;
use ferrodyn_storage::conformance;
use proptest::prelude::*;

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        $(#[test] fn $name() {
            let db = TestDb::new(stringify!($name));
            conformance::$name(&db.node());
        })*
    };
}

suite!(
    get_put_delete,
    scan_bounds,
    atomic_batches,
    drop_keyspace,
    snapshots
);

/// Random histories against the `BTreeMap` oracle; few cases (each is dozens of round trips).
#[test]
fn matches_model() {
    let db = TestDb::new("matches_model");
    let storage = db.node();
    let config = ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(actions in prop::collection::vec(conformance::action(), 1..60))| {
        conformance::run_model(&storage, &actions);
    });
}
