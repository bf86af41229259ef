//! The engine-agnostic behavioural suite (feature `test-suite`): functions that check a fresh
//! [`Storage`] against the invariants of the crate docs, and a random-history property test
//! against a `BTreeMap` oracle ([`run_model`]). Every engine's tests call them: this crate's
//! `tests/suite.rs` for the embedded engines, and the tests of engines in other crates.
//!
//! The functions expect a storage without keyspaces (except [`run_model`], which resets its
//! own) and panic on the first difference.

use std::collections::BTreeMap;
use std::ops::Bound::{self, Excluded, Included, Unbounded};

use proptest::prelude::*;

use crate::{Durability, Storage, StorageError, WriteBatch};

/// Writes one key with a durable single-put batch.
pub fn put(s: &dyn Storage, ks: &str, k: &[u8], v: &[u8]) {
    let mut b = WriteBatch::new();
    b.put(ks, k, v);
    s.write(b, Durability::Sync).unwrap();
}

/// The keys a scan visits, at most `limit` of them.
pub fn collect(
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

/// Keys `[b'a', i]` for `i` in `range`.
pub fn keys(range: std::ops::Range<u8>) -> Vec<Vec<u8>> {
    range.map(|i| vec![b'a', i]).collect()
}

/// Point reads and writes, empty values, unstorable keys, validation before effect.
pub fn get_put_delete(s: &dyn Storage) {
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

/// Every combination of bounds, both directions, early stop, deleted keys.
pub fn scan_bounds(s: &dyn Storage) {
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

/// Batches across keyspaces (odd and long names); the last operation on a key wins.
pub fn atomic_batches(s: &dyn Storage) {
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

/// Dropping is idempotent and a re-created keyspace starts empty.
pub fn drop_keyspace(s: &dyn Storage) {
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

/// Snapshots see exactly the writes before them, keyspace drops and creations included.
pub fn snapshots(s: &dyn Storage) {
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

/// The oracle: `(keyspace index, key)` to value.
pub type Model = BTreeMap<(u8, Vec<u8>), Vec<u8>>;

/// One step of a random history.
#[derive(Debug, Clone)]
pub enum Action {
    Batch(Vec<(u8, Vec<u8>, Option<Vec<u8>>)>, bool),
    Scan(u8, Bound<Vec<u8>>, Bound<Vec<u8>>, bool, usize),
    Get(u8, Vec<u8>),
    TakeSnapshot,
    CheckSnapshot(usize),
    DropSnapshot(usize),
}

/// Short keys rich in 0x00 and 0xff.
pub fn small_key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![Just(0u8), Just(1u8), Just(255u8), any::<u8>()],
        1..4,
    )
}

/// Keys as the cache groups them: mostly a few 8-byte group prefixes (one of them all 0xff,
/// whose group runs to the end of the keyspace) with short suffixes, plus short keys.
/// Keys as the cache groups them.
pub fn grouped_key() -> BoxedStrategy<Vec<u8>> {
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

/// A random bound over keys of `key`.
pub fn bound_with(key: BoxedStrategy<Vec<u8>>) -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        Just(Unbounded),
        key.clone().prop_map(Included),
        key.prop_map(Excluded),
    ]
}

/// A random action over short keys and values.
pub fn action() -> impl Strategy<Value = Action> {
    action_with(small_key().boxed(), 0..8)
}

/// A random action over keys of `key` and values of lengths in `value_len`.
pub fn action_with(
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

/// The keyspaces the model test uses.
pub const KS: [&str; 3] = ["ks0", "ks1", "ks2"];

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Included(v) => Included(v.as_slice()),
        Excluded(v) => Excluded(v.as_slice()),
        Unbounded => Unbounded,
    }
}

/// What a scan of the model answers.
pub fn model_scan(
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

/// Collects what a scan delivers, stopping after `limit` entries.
pub fn scan_with(
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

/// Runs `actions` against `s` and the model and compares every answer. The keyspaces
/// [`KS`] are dropped and re-created first, so one storage serves many runs.
pub fn run_model(s: &dyn Storage, actions: &[Action]) {
    for ks in KS {
        s.drop_keyspace(ks).unwrap();
        s.create_keyspace(ks).unwrap();
    }
    let mut model = Model::new();
    let mut snaps: Vec<(Box<dyn crate::Snapshot>, Model)> = Vec::new();
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
