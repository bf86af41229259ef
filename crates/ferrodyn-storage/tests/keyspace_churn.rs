//! Keyspace churn on the fjall engine: what creating and dropping keyspaces (a table or an index
//! each) leaves behind while the storage stays open, and what a reopen reclaims.
//!
//! fjall 3 records its keyspaces in an internal keyspace of its own (`keyspaces/0`) and keeps
//! every version of that keyspace's file list for as long as the database is open: its
//! maintenance runs with a garbage-collection watermark of 0, which collects nothing. Each
//! keyspace created or dropped therefore leaves a few small files there (and the memory of their
//! versions) until the next open. This test pins both halves of that behaviour: the growth is
//! small and linear while open (docs/reliability.md, "Soak", gives the rate under table churn),
//! and a reopen brings it back to a handful of files. Should a fjall release collect old
//! versions while open, the first assertion fails and the note in the docs can go.

use std::path::Path;

use ferrodyn_storage::{Durability, FjallStorage, Storage, WriteBatch};

/// Files under `keyspaces/0` (fjall's own keyspace catalog), its version files included.
fn catalog_files(dir: &Path) -> usize {
    fn count(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    count(&dir.join("keyspaces").join("0"))
}

#[test]
fn keyspace_churn_leaves_catalog_files_until_a_reopen() {
    const CYCLES: usize = 60;
    let dir = tempfile::tempdir().unwrap();
    let st = FjallStorage::open(dir.path()).unwrap();
    st.create_keyspace("kept").unwrap();
    let at_start = catalog_files(dir.path());
    for i in 0..CYCLES {
        let name = format!("churn{i}");
        st.create_keyspace(&name).unwrap();
        let mut batch = WriteBatch::default();
        batch.put(&name, b"k".to_vec(), b"v".to_vec());
        batch.put("kept", format!("k{i}").into_bytes(), b"v".to_vec());
        st.write(batch, Durability::Sync).unwrap();
        st.drop_keyspace(&name).unwrap();
    }
    let open_growth = catalog_files(dir.path()) - at_start;
    // About three files per cycle (one table for the creation, one for the drop, version
    // files); at least one per cycle is what "nothing collected while open" means.
    assert!(
        open_growth >= CYCLES,
        "fjall's catalog grew by {open_growth} files over {CYCLES} create/drop cycles: it now \
         collects old versions while open; update docs/reliability.md and this test"
    );
    drop(st);

    let st = FjallStorage::open(dir.path()).unwrap();
    let after_reopen = catalog_files(dir.path());
    eprintln!(
        "catalog files: {at_start} at start, +{open_growth} after {CYCLES} cycles, \
         {after_reopen} after a reopen"
    );
    assert!(
        after_reopen <= at_start + 8,
        "a reopen left {after_reopen} catalog files (started with {at_start})"
    );
    for i in 0..CYCLES {
        assert!(!st.keyspace_exists(&format!("churn{i}")));
        assert_eq!(
            st.get("kept", format!("k{i}").as_bytes())
                .unwrap()
                .as_deref(),
            Some(&b"v"[..])
        );
    }
}
