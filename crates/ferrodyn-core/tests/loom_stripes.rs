//! Model checks of the item lock stripes (`src/stripes.rs`, compiled here against loom's
//! primitives through `ferrodyn_sim::sync`): mutual exclusion per stripe, no deadlock when
//! holders take several stripes named in any order, and serializability of transactions
//! against single-item writes that lock the same way.
//!
//! The regular test run uses a small preemption bound (seconds); a longer run by hand:
//! `LOOM_MAX_PREEMPTIONS=4 cargo test --release -p ferrodyn-core --test loom_stripes -- --nocapture`
//! (see docs/reliability.md for the figures).

mod sync {
    pub(crate) use ferrodyn_sim::sync::*;
}

#[allow(dead_code)]
#[path = "../src/stripes.rs"]
mod stripes;

use std::collections::BTreeSet;

use ferrodyn_sim::loom;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

use stripes::Stripes;

/// Preemption bound of the regular test run.
const PREEMPTIONS: usize = 2;

/// Few stripes, so that distinct keys can share one (as in production, where 4096 stripes
/// serve any number of items).
const N: usize = 4;

/// Marks stripes held for the duration of a critical section, checking nobody else holds them.
fn enter(holders: &[AtomicUsize], stripes: &[usize]) {
    for &s in stripes {
        assert_eq!(
            holders[s].fetch_add(1, Ordering::SeqCst),
            0,
            "stripe {s} held twice"
        );
    }
    thread::yield_now();
    for &s in stripes {
        holders[s].fetch_sub(1, Ordering::SeqCst);
    }
}

/// Holders that name overlapping stripes in opposite orders (and with a repeat) never hold a
/// stripe together and never deadlock (loom fails the test if every thread blocks).
#[test]
fn stripes_exclude_and_never_deadlock() {
    ferrodyn_sim::model("stripes, 3 holders", PREEMPTIONS, || {
        let stripes = Arc::new(Stripes::<N>::new());
        let holders: Arc<Vec<AtomicUsize>> =
            Arc::new((0..N).map(|_| AtomicUsize::new(0)).collect());
        let sets: [&'static [usize]; 3] = [&[0, 2], &[2, 0, 2], &[2]];
        let threads: Vec<_> = sets
            .into_iter()
            .map(|set| {
                let (s, h) = (Arc::clone(&stripes), Arc::clone(&holders));
                thread::spawn(move || {
                    let _guards = if let [one] = set {
                        s.lock_one(*one)
                    } else {
                        s.lock_many(set.to_vec())
                    };
                    let mut held = set.to_vec();
                    held.sort_unstable();
                    held.dedup();
                    enter(&h, &held);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!((0..N).all(|i| stripes.idle(i)), "every stripe released");
    });
}

/// The outcome of one operation of the serializability model.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Applied,
    ConditionFailed,
    Read(i64, i64),
}

/// Items `a` and `b` of one table, stored apart from their locks (as in storage).
struct Store {
    a: Mutex<i64>,
    b: Mutex<i64>,
}

fn store() -> Store {
    Store {
        a: Mutex::new(1),
        b: Mutex::new(0),
    }
}

fn get(m: &Mutex<i64>) -> i64 {
    *m.lock().unwrap()
}

fn set(m: &Mutex<i64>, v: i64) {
    *m.lock().unwrap() = v;
}

/// The operations, run under the stripes as the engine runs them: each locks every item it
/// touches before reading any, and writes before unlocking.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// TransactWriteItems: move 1 from `a` to `b`, on condition `a >= 1`.
    Transfer,
    /// PutItem with a condition: `a = 5` if `a = 1`.
    PutA,
    /// UpdateItem without a condition: `b = b + 10`.
    AddB,
    /// TransactGetItems of `a` and `b`.
    ReadBoth,
}

/// The stripe of item `name`, chosen as the engine chooses it.
fn key(name: &str) -> usize {
    Stripes::<N>::index("table-id", name.as_bytes())
}

impl Op {
    /// Runs the operation against `store`, locking through `stripes` when given (the
    /// concurrent run) or not (the sequential reference).
    fn run(self, store: &Store, stripes: Option<&Stripes<N>>) -> Outcome {
        let _guards = stripes.map(|s| match self {
            Op::Transfer | Op::ReadBoth => s.lock_many(vec![key("a"), key("b")]),
            Op::PutA => s.lock_one(key("a")),
            Op::AddB => s.lock_one(key("b")),
        });
        match self {
            Op::Transfer => {
                let a = get(&store.a);
                if a < 1 {
                    return Outcome::ConditionFailed;
                }
                let b = get(&store.b);
                set(&store.a, a - 1);
                set(&store.b, b + 1);
                Outcome::Applied
            }
            Op::PutA => {
                if get(&store.a) != 1 {
                    return Outcome::ConditionFailed;
                }
                set(&store.a, 5);
                Outcome::Applied
            }
            Op::AddB => {
                let b = get(&store.b);
                set(&store.b, b + 10);
                Outcome::Applied
            }
            Op::ReadBoth => {
                let a = get(&store.a);
                let b = get(&store.b);
                Outcome::Read(a, b)
            }
        }
    }
}

/// What a run produced: each operation's outcome (in the order given) and the final items.
type Observed = (Vec<Outcome>, i64, i64);

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

/// Every concurrent run of `ops` observes what some sequential order of the same operations
/// observes (every outcome and the final items).
fn check_serializable(name: &str, ops: &'static [Op], preemptions: usize) {
    ferrodyn_sim::model(name, preemptions, move || {
        // The sequential reference (computed inside the model: loom's primitives only work
        // there).
        let mut serial: BTreeSet<Observed> = BTreeSet::new();
        for order in permutations(ops.len()) {
            let s = store();
            let mut outcomes = vec![Outcome::Applied; ops.len()];
            for &i in &order {
                outcomes[i] = ops[i].run(&s, None);
            }
            serial.insert((outcomes, get(&s.a), get(&s.b)));
        }
        let stripes = Arc::new(Stripes::<N>::new());
        let s = Arc::new(store());
        let threads: Vec<_> = ops
            .iter()
            .map(|&op| {
                let (stripes, s) = (Arc::clone(&stripes), Arc::clone(&s));
                thread::spawn(move || op.run(&s, Some(&stripes)))
            })
            .collect();
        let outcomes: Vec<Outcome> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let observed = (outcomes, get(&s.a), get(&s.b));
        assert!(
            serial.contains(&observed),
            "not serializable: {observed:?}; sequential runs give {serial:?}"
        );
    });
}

/// Transactions are serializable against single-item writes on the same items.
#[test]
fn a_transaction_is_serializable_against_single_item_writes() {
    check_serializable(
        "transaction vs single-item writes",
        &[Op::Transfer, Op::PutA, Op::AddB],
        PREEMPTIONS,
    );
}

/// A transactional read sees a transaction entirely or not at all, beside a single write.
#[test]
fn a_transactional_read_sees_a_transaction_whole_or_not_at_all() {
    check_serializable(
        "transactional read vs transaction and write",
        &[Op::Transfer, Op::ReadBoth, Op::AddB],
        PREEMPTIONS,
    );
}
